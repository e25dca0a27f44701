"""DataFrame training and inference against the RDD path, side by side in one run (real MNIST).

    python bench/dataframe.py W1 W2 [--master local[2]] [--batch-size 128]

For each workload (W1 = MLP 784-512-256-10, W2 = LeNet-5), one epoch of 60,000 images, each fit timed
whole (set-up included):
  rdd        Optimizer(model, rdd) on an RDD of (image, label) samples, cached and counted beforehand
  dataframe  NNClassifier(model).fit(df) on a DataFrame of (features array<float>, label), cached and
             counted beforehand (the conversion to column batches is inside the timed fit)
and then inference on the 60,000 training images: NNClassifierModel.transform (all three output columns,
forced with the "noop" sink; batches of 1,000 rows) against model.predict on the same arrays in this process.
Each path is fitted --repeat times, alternating; the best fit of each is compared (the machine is shared
and noisy). Prints one JSON line per workload.

    python bench/dataframe.py W1 W2 --transform-only [--repeat 5]

skips the fits and splits transform's time (seconds for the 60,000 rows, --repeat rounds, alternating;
rows/s from the medians, and from the best round):
  jvm_scan         the JVM reading the cached features, nothing else (each row's first value, "noop" sink)
  jvm_packed       the same plus packing them (ember.jvm.FeaturePacking), nothing sent to Python
  jvm_arrow        the JVM writing the features as Arrow batches, nothing sent to Python
                   (Dataset.toArrowBatchRdd, counted)
  jvm_packed_arrow the same for the packed features
  transfer         an Arrow UDF over the features that returns zeros: the JVM's conversion, the batches
                   sent to the Python workers and a double back per row, no model
  packed_transfer  the same over the features packed on the JVM (ember.jvm.FeaturePacking)
  nnmodel          NNModel.transform (outputs as array<double>), features as Arrow lists (the plain route)
  nnmodel_packed   NNModel.transform with the features packed on the JVM (what transform does where the
                   session has ember's jar)
  classifier       NNClassifierModel.transform (rawPrediction, probability, prediction), plain route
  classifier_packed  the same, packed
  local_predict    model.predict on the same arrays in this process (its threads: all cores)
and the CPU seconds each part used (the JVM, its Python workers, this process), which the other
processes on a shared machine disturb less than wall time. "packed_bound_vs_local" is the best ratio that
transform could reach on these cores: the JVM's CPU seconds to write the packed batches (jvm_packed_arrow,
nothing sent) plus the workers' CPU seconds for the model (nnmodel_packed's less packed_transfer's, i.e.
receiving the batches costs nothing), spread perfectly over the cores, against local_predict's best wall time.
When the shipped ember-blocks.jar does not hold FeaturePacking yet, the class is compiled (javac) into a
temporary jar that the session loads.

    python bench/dataframe.py --cv [--repeat 2]

times CrossValidator (iris, 2 folds, a 3x2 grid over the learning rate and the hidden size, 2 epochs)
with fitMultipleMode "sequential" (one distributed fit after another) and "parallel" (one Spark task per
param map), alternating, and checks that both choose a model.
"""
import argparse
import json
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workloads", nargs="*")
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeat", type=int, default=2, help="fits per path, alternating (the machine is shared)")
    parser.add_argument("--transform-only", action="store_true", help="only transform's time, split in parts")
    parser.add_argument("--cv", action="store_true", help="CrossValidator's wall time by fitMultipleMode")
    args = parser.parse_args()
    if args.cv:
        return cross_validation_times(args)
    sys.path.insert(0, HERE)
    import models
    import pandas as pd
    from pyspark.sql import SparkSession
    from run import _mnist

    import ember
    from ember import optim
    from ember.optim.spark.context import init_nncontext
    from ember.optim.spark.data import rdd_from_arrays
    from ember.zoo.pipeline import NNClassifier

    conf = {"spark.ui.enabled": "false", "spark.sql.shuffle.partitions": "2", "spark.driver.memory": "3g",
            "spark.sql.execution.arrow.pyspark.enabled": "true"}
    jar = packing_jar()
    if jar:
        conf["spark.jars"] = jar
    sc = init_nncontext(master=args.master, conf=conf)
    sc.setLogLevel("ERROR")
    spark = SparkSession.builder.getOrCreate()
    parts = sc.defaultParallelism
    x, y, xt, yt = _mnist()
    rdd = rdd_from_arrays(sc, x, y, parts).cache()
    rdd.count()

    def frame(images, labels):
        pdf = pd.DataFrame({"features": list(images.reshape(len(images), -1)), "label": labels.astype(np.int64)})
        df = spark.createDataFrame(pdf, "features array<float>, label long").repartition(parts).cache()
        df.count()
        return df

    df, test_df = frame(x, y), frame(xt, yt)
    build = {"W1": models.mlp, "W2": models.lenet5}
    if args.transform_only:
        for workload in args.workloads:
            ember.set_seed(0)
            print(json.dumps(transform_parts(workload, build[workload](), df, test_df, x, args.repeat)), flush=True)
        sc.stop()
        return
    for workload in args.workloads:
        result = {"workload": workload, "master": args.master, "batch_size": args.batch_size,
                  "rdd_fit_s": [], "dataframe_fit_s": []}
        for _ in range(args.repeat):
            for path in ("rdd", "dataframe"):
                ember.set_seed(0)
                model = build[workload]()
                t = time.perf_counter()
                if path == "rdd":
                    opt = optim.Optimizer(model, rdd, "sparse_categorical_crossentropy",
                                          optim.SGD(0.01, momentum=0.9), optim.MaxEpoch(1), args.batch_size)
                    opt.set_progress(0, quiet=True).optimize()
                    trained = model
                else:
                    clf = NNClassifier(model, batchSize=args.batch_size, maxEpoch=1,
                                       optimMethod=optim.SGD(0.01, momentum=0.9))
                    fitted = clf.fit(df)
                    trained = fitted.model
                result[f"{path}_fit_s"].append(round(time.perf_counter() - t, 2))
                accuracy = float((trained.predict(xt, batch_size=1000).argmax(1) == yt).mean())
                result[f"{path}_test_accuracy"] = accuracy
        samples = -(-len(x) // args.batch_size) * args.batch_size
        for path in ("rdd", "dataframe"):
            result[f"{path}_samples_per_s"] = samples / min(result[f"{path}_fit_s"])
        result["dataframe_vs_rdd"] = result["dataframe_samples_per_s"] / result["rdd_samples_per_s"]
        fitted.setBatchSize(1000)
        fitted.transform(test_df).write.format("noop").mode("overwrite").save()  # workers start, model ships
        t = time.perf_counter()
        fitted.transform(df).write.format("noop").mode("overwrite").save()
        transform_s = time.perf_counter() - t
        t = time.perf_counter()
        trained.predict(x, batch_size=1000)
        local_s = time.perf_counter() - t
        result.update({"transform_rows_per_s": len(x) / transform_s, "local_predict_rows_per_s": len(x) / local_s,
                       "transform_vs_local": local_s / transform_s})
        print(json.dumps(result), flush=True)
    sc.stop()


def cross_validation_times(args):
    """CrossValidator's wall time with each fitMultipleMode (see the module's doc); one JSON line."""
    from pyspark.ml.evaluation import MulticlassClassificationEvaluator
    from pyspark.ml.feature import VectorAssembler
    from pyspark.ml.tuning import CrossValidator, ParamGridBuilder
    from pyspark.sql import SparkSession
    from sklearn.datasets import load_iris

    import ember
    from ember.layers import Dense
    from ember.optim.spark.context import init_nncontext
    from ember.zoo.pipeline import NNClassifier

    sc = init_nncontext(master=args.master, conf={"spark.ui.enabled": "false", "spark.sql.shuffle.partitions": "2"})
    sc.setLogLevel("ERROR")
    spark = SparkSession.builder.getOrCreate()
    frame = load_iris(as_frame=True).frame
    frame.columns = [f"c{i}" for i in range(4)] + ["target"]
    frame["fold"] = np.arange(len(frame)) % 2
    df = VectorAssembler(inputCols=[f"c{i}" for i in range(4)], outputCol="features").transform(
        spark.createDataFrame(frame).repartition(2)).cache()
    df.count()

    def mlp(hidden):
        ember.set_seed(0)
        return ember.Sequential([Dense(hidden, activation="relu", input_shape=(4,)), Dense(3, activation="softmax")])

    clf = NNClassifier(mlp(16), labelCol="target", batchSize=10, maxEpoch=2)
    grid = (ParamGridBuilder().addGrid(clf.learningRate, [0.001, 0.03, 0.1])
            .addGrid(clf.model, [mlp(4), mlp(24)]).build())
    evaluator = MulticlassClassificationEvaluator(labelCol="target", metricName="accuracy")
    seen = {"sequential": [], "parallel": []}
    for _ in range(args.repeat):
        for mode in seen:
            cv = CrossValidator(estimator=clf.copy().setFitMultipleMode(mode), estimatorParamMaps=grid,
                                evaluator=evaluator, numFolds=2, foldCol="fold")
            t = time.perf_counter()
            fitted = cv.fit(df)
            seen[mode].append(round(time.perf_counter() - t, 2))
            assert len(fitted.avgMetrics) == len(grid)
    print(json.dumps({"cross_validation_s": seen, "best_s": {m: min(v) for m, v in seen.items()},
                      "speedup": min(seen["sequential"]) / min(seen["parallel"])}), flush=True)
    sc.stop()


def packing_jar():
    """'' when the shipped ember-blocks.jar holds ember.jvm.FeaturePacking, else a temporary jar of it
    compiled from its source with javac (as the block service's jar is built)."""
    import subprocess
    import tempfile
    import zipfile

    from ember.optim.spark import blocks

    with zipfile.ZipFile(blocks.SHIPPED_JAR) as z:
        if "ember/jvm/FeaturePacking$Pack.class" in z.namelist():
            return ""
    source = os.path.join(os.path.dirname(blocks.SHIPPED_JAR), "ember", "jvm", "FeaturePacking.java")
    folder = tempfile.mkdtemp(prefix="ember-packing-")
    subprocess.run([blocks.find_java_tool("javac"), "--release", blocks.JAVA_RELEASE, "-Xlint:-options", "-nowarn",
                    "-d", folder, "-cp", os.path.join(blocks.spark_jars_folder(), "*"), source], check=True)
    jar = folder + ".jar"
    with zipfile.ZipFile(jar, "w") as z:
        for root, _, names in os.walk(folder):
            for name in names:
                z.write(os.path.join(root, name), os.path.relpath(os.path.join(root, name), folder))
    return jar


def _cpu_seconds():
    """CPU seconds used so far by (the JVM this process started, the JVM's Python workers, this process)."""
    ticks, table = os.sysconf("SC_CLK_TCK"), {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                text = f.read()
            with open(f"/proc/{pid}/comm") as f:
                name = f.read().strip()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2:].split()
        table[int(pid)] = (int(fields[1]), name, sum(int(v) for v in fields[11:15]) / ticks)
    children = {}
    for pid, (parent, _, _) in table.items():
        children.setdefault(parent, []).append(pid)
    jvms = [p for p in children.get(os.getpid(), []) if table[p][1] == "java"]
    workers, stack = 0.0, [c for p in jvms for c in children.get(p, [])]
    while stack:
        pid = stack.pop()
        workers += table[pid][2]
        stack += children.get(pid, [])
    return np.array([sum(table[p][2] for p in jvms), workers, table[os.getpid()][2]])


def transform_parts(workload, model, df, warm_df, x, repeat):
    """Seconds of each part of transform (see the module's doc), ``repeat`` alternating rounds."""
    from collections.abc import Iterator

    import pyarrow as pa
    from pyspark.sql.functions import arrow_udf

    from ember.zoo.pipeline import NNClassifierModel, NNModel, inference

    @arrow_udf("double")
    def zeros(batches: Iterator[pa.Array]) -> Iterator[pa.Array]:
        for batch in batches:
            yield pa.array(np.zeros(len(batch)))

    def noop(frame):
        frame.write.format("noop").mode("overwrite").save()

    def frames(packing):
        inference.FEATURE_PACKING = packing
        try:
            plain, classifier = NNModel(model, batchSize=1000), NNClassifierModel(model, batchSize=1000)
            noop(plain.transform(warm_df))  # workers start, the model ships
            noop(classifier.transform(warm_df))
            return plain.transform(df), classifier.transform(df)
        finally:
            inference.FEATURE_PACKING = True

    model.predict(x[:10])
    nnmodel, classifier = frames(False)
    nnmodel_packed, classifier_packed = frames(True)
    packed = inference.packed_features(df, ["features"])
    if packed is None:
        raise SystemExit("this session cannot pack features (no ember.jvm.FeaturePacking in its JVM)")
    from pyspark.sql import functions

    parts = {"jvm_scan": lambda: noop(df.select(functions.col("features")[0])),
             "jvm_packed": lambda: noop(df.select(functions.length(packed))),
             "jvm_arrow": lambda: df.select("features")._jdf.toArrowBatchRdd().count(),
             "jvm_packed_arrow": lambda: df.select(packed)._jdf.toArrowBatchRdd().count(),
             "transfer": lambda: noop(df.select(zeros("features"))),
             "packed_transfer": lambda: noop(df.select(zeros(packed))),
             "nnmodel": lambda: noop(nnmodel),
             "nnmodel_packed": lambda: noop(nnmodel_packed),
             "classifier": lambda: noop(classifier),
             "classifier_packed": lambda: noop(classifier_packed),
             "local_predict": lambda: model.predict(x, batch_size=1000)}
    seen = {name: [] for name in parts}
    cpu = {name: [] for name in parts}
    for _ in range(repeat):
        for name, run in parts.items():
            before = _cpu_seconds()
            t = time.perf_counter()
            run()
            seen[name].append(round(time.perf_counter() - t, 3))
            cpu[name].append(_cpu_seconds() - before)
    median = {name: float(np.median(times)) for name, times in seen.items()}
    best = {name: min(times) for name, times in seen.items()}
    result = {"workload": workload, "rows": len(x), "load_before": os.getloadavg()[0], "seconds": seen,
              "rows_per_s_median": {name: round(len(x) / t) for name, t in median.items()},
              "rows_per_s_best": {name: round(len(x) / t) for name, t in best.items()},
              "cpu_s_median_jvm_workers_driver": {name: np.round(np.median(v, axis=0), 2).tolist()
                                                  for name, v in cpu.items()}}
    cores = min(os.cpu_count(), df.sparkSession.sparkContext.defaultParallelism)
    jvm_handoff = min(v[0] for v in cpu["jvm_packed_arrow"])
    model_in_workers = min(v[1] for v in cpu["nnmodel_packed"]) - max(v[1] for v in cpu["packed_transfer"])
    result["packed_bound_vs_local"] = round(best["local_predict"] / ((jvm_handoff + model_in_workers) / cores), 3)
    result.update({f"{name}_vs_local_median": round(median["local_predict"] / median[name], 3)
                   for name in ("nnmodel", "nnmodel_packed", "classifier", "classifier_packed")})
    result.update({f"{name}_vs_local_best": round(best["local_predict"] / best[name], 3)
                   for name in ("nnmodel", "nnmodel_packed", "classifier", "classifier_packed")})
    return result


if __name__ == "__main__":
    main()
