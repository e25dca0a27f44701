"""A Spark ML Pipeline with an ember classifier: iris (scikit-learn's copy) as a DataFrame, features
assembled and scaled by MLlib, a small network trained by NNClassifier, scored by MLlib's evaluator,
tuned by CrossValidator, saved as a PipelineModel and loaded back, and served from SQL.

    python examples/pipeline_iris.py [--master local[2]] [--epochs 10] [--out /tmp/ember-iris-pipeline]
"""
import argparse

import ember
from ember import optim
from ember.layers import Dense


def network(hidden):
    ember.set_seed(0)
    return ember.Sequential([Dense(hidden, activation="relu", input_shape=(4,)), Dense(3, activation="softmax")])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--out", default="/tmp/ember-iris-pipeline")
    args = parser.parse_args()

    from pyspark.ml import Pipeline, PipelineModel
    from pyspark.ml.evaluation import MulticlassClassificationEvaluator
    from pyspark.ml.feature import StandardScaler, VectorAssembler
    from pyspark.ml.functions import vector_to_array
    from pyspark.ml.tuning import CrossValidator, ParamGridBuilder
    from pyspark.sql import SparkSession
    from sklearn.datasets import load_iris

    from ember.zoo.pipeline import NNClassifier, register_udf

    ember.init_nncontext(master=args.master)
    spark = SparkSession.builder.getOrCreate()
    frame = load_iris(as_frame=True).frame
    frame.columns = [c.replace(" (cm)", "").replace(" ", "_") for c in frame.columns]
    df = spark.createDataFrame(frame)
    train, test = df.randomSplit([0.7, 0.3], seed=1)
    columns = [c for c in df.columns if c != "target"]

    clf = NNClassifier(network(16), featuresCol="scaled", labelCol="target", batchSize=8, maxEpoch=args.epochs,
                       optimMethod=optim.Adam(0.02))
    pipeline = Pipeline(stages=[VectorAssembler(inputCols=columns, outputCol="raw"),
                                StandardScaler(inputCol="raw", outputCol="scaled", withMean=True), clf])
    evaluator = MulticlassClassificationEvaluator(labelCol="target", metricName="accuracy")

    grid = ParamGridBuilder().addGrid(clf.learningRate, [0.01, 0.05]).addGrid(clf.model, [network(8), network(32)])
    cv = CrossValidator(estimator=pipeline, estimatorParamMaps=grid.build(), evaluator=evaluator, numFolds=2)
    tuned = cv.fit(train)  # (one model after another: each fit is itself distributed)
    fitted = tuned.bestModel
    print(f"cross-validated accuracy per setting: {[round(float(m), 3) for m in tuned.avgMetrics]}")
    print(f"test accuracy: {evaluator.evaluate(fitted.transform(test)):.3f}")

    fitted.write().overwrite().save(args.out)
    again = PipelineModel.load(args.out)
    same = again.transform(test).select("prediction").collect() == fitted.transform(test).select("prediction").collect()
    print(f"saved to {args.out}; loaded back with identical predictions: {same}")

    scaled = fitted.stages[1].transform(fitted.stages[0].transform(test))
    scaled.select(vector_to_array("scaled").alias("x")).createOrReplaceTempView("flowers")
    register_udf(spark, "iris_net", fitted.stages[-1].model)
    spark.sql("SELECT x, iris_net(x) AS probabilities FROM flowers LIMIT 3").show(truncate=False)


if __name__ == "__main__":
    main()
