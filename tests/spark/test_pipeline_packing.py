"""Feature rows packed on the JVM (ember.jvm.FeaturePacking: one binary value of float32 bytes per row)
give transform exactly the predictions of the plain route (arrays through Arrow lists), for array<float>,
array<double>, array<int> and MLlib vectors (dense and sparse), keep the row's columns, and bad rows
(null rows, null values inside arrays, wrong sizes) fail with errors naming the column."""
import json
import os
import subprocess
import sys
import tempfile
import zipfile

import numpy as np
import pytest

SCRIPT = r"""
import json, sys
import numpy as np
from pyspark.ml.linalg import Vectors, VectorUDT
from pyspark.sql import SparkSession, functions as F
from pyspark.sql.types import ArrayType, DoubleType, FloatType, IntegerType, LongType, StructField, StructType
import ember
from ember.layers import Dense
from ember.optim.spark.context import init_nncontext
from ember.zoo.pipeline import NNClassifierModel, NNModel, inference

conf = {"spark.ui.enabled": "false", "spark.sql.shuffle.partitions": "2"}
if sys.argv[1]:
    conf["spark.jars"] = sys.argv[1]
init_nncontext(master="local[2]", conf=conf).setLogLevel("ERROR")
spark = SparkSession.builder.getOrCreate()
ember.set_seed(0)
model = ember.Sequential([Dense(8, activation="relu", input_shape=(4,)), Dense(3, activation="softmax")])
x = np.random.default_rng(0).normal(size=(300, 4)).astype(np.float32)
x[::7, 1] = 0.0


def vector(row, i):
    if i % 2:
        nonzero = [j for j in range(4) if row[j] != 0]
        return Vectors.sparse(4, nonzero, [float(row[j]) for j in nonzero])
    return Vectors.dense([float(v) for v in row])


schema = StructType([StructField("id", LongType()), StructField("f", ArrayType(FloatType())),
                     StructField("d", ArrayType(DoubleType())), StructField("n", ArrayType(IntegerType())),
                     StructField("v", VectorUDT())])
df = spark.createDataFrame([(i, x[i].tolist(), x[i].astype(float).tolist(), (x[i] * 10).astype(int).tolist(),
                             vector(x[i], i)) for i in range(len(x))], schema).repartition(3)


def transform(stage, frame, packing):
    inference.FEATURE_PACKING = packing
    out = stage.transform(frame)
    packed = "ember_pack_features" in out._jdf.queryExecution().executedPlan().toString()
    return out.orderBy("id").collect(), packed, out.schema


try:  # packing needs Arrow UDFs (pyspark 4.1 and later); before, both routes are the plain one
    from pyspark.sql.functions import arrow_udf  # noqa: F401
    available = True
except ImportError:
    available = False
result = {"here": model.predict(x).tolist(), "columns": {}, "packing_available": available}
for col in ["f", "d", "n", "v"]:
    stage = NNModel(model, featuresCol=col, batchSize=64)
    plain, plain_packed, plain_schema = transform(stage, df, False)
    packed, packed_packed, packed_schema = transform(stage, df, True)
    result["columns"][col] = {
        "plain_packed": plain_packed, "packed_packed": packed_packed,
        "plain": [r.prediction for r in plain], "packed": [r.prediction for r in packed],
        "kept": all(a.asDict() == b.asDict() for a, b in zip(plain, packed)),
        "schema_equal": plain_schema == packed_schema}
classifier = NNClassifierModel(model, featuresCol="v", batchSize=64)
plain, _, _ = transform(classifier, df, False)
packed, packed_packed, _ = transform(classifier, df, True)
result["classifier"] = {"packed_packed": packed_packed,
                        "equal": [r.asDict() for r in plain] == [r.asDict() for r in packed]}
inference.FEATURE_PACKING = True
keras = model.predict(df, feature_cols="f").orderBy("id").collect()
result["keras_predict"] = [r.prediction for r in keras]


def error(frame, col="f"):
    try:
        NNModel(model, featuresCol=col).transform(frame).collect()
    except Exception as e:
        return str(e)
    return None


result["errors"] = {
    "null_row": error(df.withColumn("f", F.when(F.col("id") == 5, F.lit(None)).otherwise(F.col("f")))),
    "null_value": error(df.withColumn("f", F.when(F.col("id") == 5, F.array(F.lit(1.0), F.lit(None), F.lit(2.0),
                                                                            F.lit(3.0)).cast("array<float>"))
                                       .otherwise(F.col("f")))),
    "wrong_size": error(df.withColumn("f", F.slice("f", 1, 3))),
    "ragged": error(df.withColumn("f", F.when(F.col("id") == 5, F.slice("f", 1, 3)).otherwise(F.col("f")))),
    "sparse_size": error(spark.createDataFrame([(Vectors.sparse(3, [1], [2.0]),)], ["v"]), "v"),
}
print("RESULT " + json.dumps(result))
"""


def packing_jar(folder):
    """'' when ember's shipped jar already holds FeaturePacking, else a jar of it compiled from its source
    with javac into ``folder`` (skips the test without a JDK)."""
    from ember.optim.spark import blocks

    with zipfile.ZipFile(blocks.SHIPPED_JAR) as z:
        if "ember/jvm/FeaturePacking$Pack.class" in z.namelist():
            return ""
    try:
        javac, jars = blocks.find_java_tool("javac"), blocks.spark_jars_folder()
    except blocks.SparkSetupError as e:
        pytest.skip(f"no JDK to compile FeaturePacking.java: {e}")
    source = os.path.join(os.path.dirname(blocks.SHIPPED_JAR), "ember", "jvm", "FeaturePacking.java")
    classes = tempfile.mkdtemp(dir=folder)
    subprocess.run([javac, "--release", blocks.JAVA_RELEASE, "-Xlint:-options", "-nowarn", "-d", classes, "-cp",
                    os.path.join(jars, "*"), source], check=True, capture_output=True)
    jar = os.path.join(folder, "ember-packing.jar")
    with zipfile.ZipFile(jar, "w") as z:
        for root, _, names in os.walk(classes):
            for name in names:
                z.write(os.path.join(root, name), os.path.relpath(os.path.join(root, name), classes))
    return jar


def test_packed_batches_read_as_the_arrays_they_hold():
    import pyarrow as pa

    from ember.optim.spark.data import DataFrameError
    from ember.zoo.pipeline.inference import packed_to_numpy

    x = np.arange(24, dtype=np.float32).reshape(6, 4) - 7.5
    column = pa.array([row.tobytes() for row in x], pa.binary())
    np.testing.assert_array_equal(packed_to_numpy(column, "f"), x)
    np.testing.assert_array_equal(packed_to_numpy(column, "f", (2, 2)), x.reshape(6, 2, 2))
    np.testing.assert_array_equal(packed_to_numpy(column.slice(2, 3), "f"), x[2:5])  # a slice: offsets inside
    assert packed_to_numpy(column.slice(0, 0), "f", (4,)).shape == (0, 4)
    np.testing.assert_array_equal(packed_to_numpy(column.cast(pa.large_binary()).slice(1, 4), "f"), x[1:5])
    with pytest.raises(DataFrameError, match=r"column 'f' has 1 null row\(s\) in a batch of 3"):
        packed_to_numpy(pa.array([x[0].tobytes(), None, x[1].tobytes()], pa.binary()), "f")
    with pytest.raises(DataFrameError, match=r"column 'f' has 4 values per row but the model takes \(5,\)"):
        packed_to_numpy(column, "f", (5,))
    with pytest.raises(DataFrameError, match=r"rows of different sizes \(3 to 4 values\)"):
        packed_to_numpy(pa.array([x[0].tobytes(), x[1, :3].tobytes()], pa.binary()), "f")


def test_the_pandas_route_names_the_column_of_ragged_rows():
    """pyspark before 4.1 (no Arrow UDFs) predicts through pandas rows: the same error as the Arrow routes."""
    import pandas as pd

    from ember.zoo.pipeline.inference import stack_rows

    rows = pd.Series([np.arange(4.0), np.arange(4.0) + 1])
    np.testing.assert_array_equal(stack_rows(rows, "f", (2, 2)), np.stack(rows.to_numpy()).reshape(2, 2, 2))
    with pytest.raises(ValueError, match=r"column 'f' has rows of different sizes \(3 to 4 values\); every row"):
        stack_rows(pd.Series([np.zeros(4), np.zeros(3)]), "f", (4,))


@pytest.mark.spark
@pytest.mark.slow
def test_jvm_packing_gives_the_predictions_of_the_plain_route(tmp_path):
    jar = packing_jar(str(tmp_path))
    script = tmp_path / "packing.py"
    script.write_text(SCRIPT)
    done = subprocess.run([sys.executable, str(script), jar], capture_output=True, text=True, timeout=900)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, done.stdout[-2000:] + done.stderr[-4000:]
    r = json.loads(lines[0][len("RESULT "):])
    here = np.array(r["here"])
    import pyspark

    expected = r["packing_available"]  # each route ran where it should: packing wherever it can run
    assert expected == (tuple(int(v) for v in pyspark.__version__.split(".")[:2]) >= (4, 1))
    for col, seen in r["columns"].items():
        assert seen["packed_packed"] == expected and not seen["plain_packed"], col
        assert seen["packed"] == seen["plain"], col  # identical, not merely close
        assert seen["kept"] and seen["schema_equal"], col
        if col != "n":  # (the int column holds x * 10 rounded)
            np.testing.assert_allclose(np.array(seen["packed"]), here, rtol=1e-6, err_msg=col)
    assert r["classifier"]["packed_packed"] == expected and r["classifier"]["equal"]
    np.testing.assert_allclose(np.array(r["keras_predict"]), here, rtol=1e-6)
    errors = r["errors"]
    assert "column 'f' has 1 null row(s)" in errors["null_row"]
    if expected:
        assert "column 'f' holds null values inside its arrays (the first at index 1 of a row of 4 values)" \
            in errors["null_value"]
    else:  # pyspark 3.5's pandas route: the null arrives as NaN, which the model's input check refuses
        assert "holds NaN or infinite values" in errors["null_value"]
    assert "column 'f' has 3 values per row but the model takes (4,)" in errors["wrong_size"]
    assert "column 'f' has rows of different sizes (3 to 4 values)" in errors["ragged"]
    assert "column 'v' has 3 values per row but the model takes (4,)" in errors["sparse_size"]
