"""Spark ML with ember: NNClassifier in a Pipeline on a real table, persistence read back by a fresh
process, CrossValidator against an explicit loop over the same folds, the SQL UDF and a streaming query
against transform, DataFrame conversion of every feature column kind, and bad input refused early."""
import json
import subprocess
import sys

import numpy as np
import pytest

import ember
from ember import optim
from ember.layers import Dense
from ember.optim.spark.data import DataFrameError, dataframe_samples

pytestmark = pytest.mark.spark


@pytest.fixture(scope="module")
def spark(sc):
    from pyspark.sql import SparkSession

    return SparkSession.builder.getOrCreate()


@pytest.fixture(scope="module")
def iris(spark):
    from sklearn.datasets import load_iris

    frame = load_iris(as_frame=True).frame
    frame.columns = [c.replace(" (cm)", "").replace(" ", "_") for c in frame.columns]
    frame["id"] = np.arange(len(frame))
    return spark.createDataFrame(frame).repartition(2, "id").cache()


FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def mlp(hidden=16, inputs=4, classes=3):
    ember.set_seed(0)
    return ember.Sequential([Dense(hidden, activation="relu", input_shape=(inputs,)),
                             Dense(classes, activation="softmax")])


def predictions(df, order="id"):
    rows = df.orderBy(order).select("prediction", "probability").collect()
    return np.array([r.prediction for r in rows]), np.array([r.probability.toArray() for r in rows])


LOAD_IN_A_FRESH_SESSION = """
import json, sys
import numpy as np
from pyspark.sql import SparkSession
from pyspark.ml import PipelineModel

spark = SparkSession.builder.master("local[1]").config("spark.ui.enabled", "false").getOrCreate()
spark.sparkContext.setLogLevel("ERROR")
model = PipelineModel.load(sys.argv[1])
df = spark.read.parquet(sys.argv[2])
rows = model.transform(df).orderBy("id").select("prediction", "probability").collect()
print("RESULT " + json.dumps({"prediction": [r.prediction for r in rows],
                              "probability": [r.probability.toArray().tolist() for r in rows],
                              "stages": [type(s).__name__ for s in model.stages]}))
spark.stop()
"""


@pytest.mark.slow
def test_pipeline_on_iris_trains_evaluates_saves_and_loads_in_a_fresh_process(spark, iris, tmp_path):
    from pyspark.ml import Pipeline
    from pyspark.ml.evaluation import MulticlassClassificationEvaluator
    from pyspark.ml.feature import StandardScaler, VectorAssembler

    from ember.zoo.pipeline import NNClassifier, NNClassifierModel
    from ember.zoo.pipeline.nnframes import NNClassifier as FromNNFrames

    assert FromNNFrames is NNClassifier
    train, test = iris.randomSplit([0.7, 0.3], seed=1)
    initial = mlp()
    before = [w.copy() for w in initial.get_weights()]
    clf = NNClassifier(initial, featuresCol="scaled", labelCol="target", batchSize=8, maxEpoch=6,
                       optimMethod=optim.Adam(0.02))
    pipeline = Pipeline(stages=[VectorAssembler(inputCols=FEATURES, outputCol="raw"),
                                StandardScaler(inputCol="raw", outputCol="scaled", withMean=True), clf])
    fitted = pipeline.fit(train)
    for a, b in zip(initial.get_weights(), before):  # the estimator's model is not changed (a copy trains)
        np.testing.assert_array_equal(a, b)
    stage = fitted.stages[-1]
    assert isinstance(stage, NNClassifierModel) and stage.getFeaturesCol() == "scaled" and stage.getBatchSize() == 8
    out = fitted.transform(test)
    assert {"rawPrediction", "probability", "prediction", "target", "id"} <= set(out.columns)
    accuracy = MulticlassClassificationEvaluator(labelCol="target", metricName="accuracy").evaluate(out)
    assert accuracy > 0.85, accuracy
    pred, prob = predictions(out)
    np.testing.assert_allclose(prob.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(pred, prob.argmax(axis=1))

    path = str(tmp_path / "pipeline")
    fitted.write().overwrite().save(path)
    fitted.write().overwrite().save(path)  # overwrite really replaces
    test.write.parquet(str(tmp_path / "test.parquet"))
    script = tmp_path / "load.py"
    script.write_text(LOAD_IN_A_FRESH_SESSION)
    done = subprocess.run([sys.executable, str(script), path, str(tmp_path / "test.parquet")], capture_output=True,
                          text=True, timeout=300)
    result = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert result, done.stdout[-2000:] + done.stderr[-3000:]
    loaded = json.loads(result[0][len("RESULT "):])
    assert loaded["stages"] == ["VectorAssembler", "StandardScalerModel", "NNClassifierModel"]
    np.testing.assert_array_equal(loaded["prediction"], pred)
    np.testing.assert_array_equal(np.array(loaded["probability"]), prob)
    assert "pickle" not in " ".join(p.name for p in (tmp_path / "pipeline").rglob("*"))

    clf.write().overwrite().save(str(tmp_path / "estimator"))  # the estimator too, with its initial model
    again = NNClassifier.load(str(tmp_path / "estimator"))
    assert again.getBatchSize() == 8 and again.getMaxEpoch() == 6 and again.getLabelCol() == "target"
    assert type(again.getOptimMethod()).__name__ == "Adam" and again.getOptimMethod().learning_rate == 0.02
    for a, b in zip(again.getModel().get_weights(), before):
        np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_cross_validator_picks_the_best_and_its_metrics_match_an_explicit_loop(spark, iris):
    from pyspark.ml.evaluation import MulticlassClassificationEvaluator
    from pyspark.ml.feature import VectorAssembler
    from pyspark.ml.tuning import CrossValidator, ParamGridBuilder

    from ember.zoo.pipeline import NNClassifier

    data = VectorAssembler(inputCols=FEATURES, outputCol="features").transform(iris)
    data = data.withColumn("fold", (data.id % 2).cast("int")).cache()
    clf = NNClassifier(mlp(), labelCol="target", batchSize=10, maxEpoch=2, fitMultipleMode="sequential")
    grid = (ParamGridBuilder().addGrid(clf.learningRate, [0.001, 0.03, 0.1])
            .addGrid(clf.model, [mlp(4), mlp(24)]).build())
    evaluator = MulticlassClassificationEvaluator(labelCol="target", metricName="accuracy")
    ember.set_seed(7)  # the engine's generator draws each fit's shuffling seed: the same sequence below
    cv = CrossValidator(estimator=clf, estimatorParamMaps=grid, evaluator=evaluator, numFolds=2,
                        foldCol="fold").fit(data)
    assert len(cv.avgMetrics) == 6
    ember.set_seed(7)
    explicit = np.zeros(len(grid))
    for fold in range(2):  # CrossValidator's order: each fold, then each param map
        train, validation = data.filter(data.fold != fold), data.filter(data.fold == fold)
        for j, params in enumerate(grid):
            explicit[j] += evaluator.evaluate(clf.fit(train, params).transform(validation)) / 2
    np.testing.assert_allclose(cv.avgMetrics, explicit, rtol=1e-12)
    best = int(np.argmax(explicit))
    assert cv.bestModel.model.count_params() == grid[best][clf.model].count_params()
    assert max(cv.avgMetrics) > min(cv.avgMetrics)  # the grid matters: a choice was made


def test_sql_udf_and_a_streaming_query_give_the_predictions_of_transform(spark, tmp_path):
    from pyspark.sql import functions as F

    from ember.zoo.pipeline import NNModel, register_udf

    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 4))
    df = spark.createDataFrame([(i, x[i].tolist()) for i in range(len(x))], "id long, features array<double>")
    model = mlp(8)
    batch = NNModel(model, batchSize=64).transform(df).orderBy("id").collect()
    expected = np.array([r.prediction for r in batch])
    np.testing.assert_allclose(expected, model.predict(x.astype(np.float32)), rtol=1e-6)
    assert batch[0].features == x[0].tolist()  # the row's own columns are kept

    register_udf(spark, "ember_predict", model)
    df.createOrReplaceTempView("points")
    sql = spark.sql("SELECT id, ember_predict(features) AS p FROM points ORDER BY id").collect()
    np.testing.assert_array_equal(np.array([r.p for r in sql]), expected)

    source = tmp_path / "incoming"
    df.repartition(3).write.parquet(str(source))
    stream = spark.readStream.schema(df.schema).parquet(str(source))
    assert stream.isStreaming
    query = (NNModel(model, batchSize=64).transform(stream).withColumn("p", F.col("prediction"))
             .writeStream.format("memory").queryName("ember_stream").trigger(availableNow=True).start())
    query.awaitTermination(120)
    streamed = spark.table("ember_stream").orderBy("id").collect()
    np.testing.assert_array_equal(np.array([r.p for r in streamed]), expected)


def test_every_feature_column_kind_converts_to_the_same_batches(spark):
    from pyspark.ml.linalg import Vectors

    rows = [(0, [1.0, 0.0, 2.5], 1.0, 0.0, 2.5, 1), (1, [0.0, 0.0, 0.0], 0.0, 0.0, 0.0, 0),
            (2, [0.0, -3.0, 0.0], 0.0, -3.0, 0.0, 2)]
    df = spark.createDataFrame(
        [(i, Vectors.dense(a), Vectors.sparse(3, {k: v for k, v in enumerate(a) if v}), a, p, q, r, y)
         for i, a, p, q, r, y in rows], ["id", "dense", "sparse", "arr", "a", "b", "c", "label"]).coalesce(1)
    got = {}
    for name, cols in (("dense", "dense"), ("sparse", "sparse"), ("arr", "arr"), ("numeric", ["a", "b", "c"])):
        samples = dataframe_samples(df, cols, "label")
        blocks = samples.rdd.collect()
        samples.unpersist()
        got[name] = (np.concatenate([b.x for b in blocks]), np.concatenate([b.y for b in blocks]))
        assert samples.rows == 3 and samples.label_max == 2 and samples.label_integral
    for name, (xs, ys) in got.items():
        np.testing.assert_array_equal(xs, np.array([r[1] for r in rows], dtype=np.float32), err_msg=name)
        assert xs.dtype == np.float32
        np.testing.assert_array_equal(ys, [1, 0, 2])


def test_bad_input_is_refused_before_training_with_the_column_named(spark):
    from pyspark.sql import functions as F

    from ember.zoo.pipeline import NNClassifier

    good = spark.createDataFrame([([0.1 * i, 1.0, 2.0, 3.0], i % 3) for i in range(30)],
                                 "features array<double>, label long")
    clf = NNClassifier(mlp(), maxEpoch=1)
    cases = [
        (good.withColumn("features", F.lit("text")), "column 'features' has type string"),
        (good.withColumn("features", F.array(F.lit(1.0), F.lit(2.0), F.lit(3.0))),
         "column 'features' has 3 values per row but the model takes (4,)"),
        (good.withColumn("features", F.when(F.col("label") == 1, F.lit(None)).otherwise(F.col("features"))),
         "column 'features' has"),
        (good.withColumn("label", F.col("label") + 3), "holds class 5 but the model outputs 3 classes"),
        (good.withColumn("label", F.col("label") - 1), "0-based integer class ids"),
        (good.filter("label > 10"), "the DataFrame is empty"),
        (good.drop("label"), "not in the DataFrame"),
    ]
    for bad, message in cases:
        with pytest.raises(DataFrameError, match=message.replace("(", r"\(").replace(")", r"\)")):
            clf.fit(bad)


def test_keras_predict_evaluate_and_optimizer_take_dataframes(spark):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 4)).astype(np.float32)
    y = (x[:, 0] - x[:, 2] > 0).astype(np.int64)
    df = spark.createDataFrame([(x[i].tolist(), int(y[i])) for i in range(len(x))], "f array<float>, y long")
    model = mlp(8, classes=2)
    model.compile(optim.SGD(0.2, momentum=0.9), "sparse_categorical_crossentropy", ["accuracy"])
    model.fit(df, batch_size=20, epochs=3, verbose=0, feature_cols="f", label_cols="y")
    local = model.evaluate(x, y, batch_size=50)
    spread = model.evaluate(df, batch_size=50, feature_cols="f", label_cols="y")
    np.testing.assert_allclose(spread, local, rtol=1e-5)
    assert spread[1] > 0.85
    out = model.predict(df, feature_cols="f").collect()
    np.testing.assert_allclose(np.array([r.prediction for r in out]), model.predict(x), rtol=1e-5)
