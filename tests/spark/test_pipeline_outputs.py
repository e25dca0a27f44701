"""NNModel's prediction column by the model's outputs (a double for one, an array for several) so that
RegressionEvaluator works, checked against NumPy; and persistence through Spark's writers (a file://
URI, Hadoop's FileSystem) with identical predictions after loading."""
import numpy as np
import pytest

import ember
from ember import optim
from ember.layers import Dense

pytestmark = pytest.mark.spark


@pytest.fixture(scope="module")
def spark(sc):
    from pyspark.sql import SparkSession

    return SparkSession.builder.getOrCreate()


@pytest.fixture(scope="module")
def regression(spark):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 3)).astype(np.float32)
    y = x @ np.array([1.5, -2.0, 0.5]) + 0.3 + 0.1 * rng.normal(size=400)
    two = np.stack([y, x[:, 0] - x[:, 1]], axis=1)
    rows = [(i, x[i].tolist(), float(y[i]), two[i].tolist()) for i in range(len(x))]
    df = spark.createDataFrame(rows, "id long, features array<float>, label double, pair array<double>")
    return x, y, two, df.repartition(2).cache()


def net(outputs):
    ember.set_seed(0)
    return ember.Sequential([Dense(8, activation="tanh", input_shape=(3,)), Dense(outputs)])


@pytest.mark.slow
def test_one_output_gives_a_double_that_regression_evaluator_scores_as_numpy_does(spark, regression):
    from pyspark.ml.evaluation import RegressionEvaluator

    from ember.zoo.pipeline import NNEstimator

    x, y, _, df = regression
    fitted = NNEstimator(net(1), "mse", batchSize=20, maxEpoch=8, optimMethod=optim.Adam(0.05)).fit(df)
    out = fitted.transform(df)
    assert dict(out.dtypes)["prediction"] == "double"
    rows = out.orderBy("id").select("prediction").collect()
    got = np.array([r.prediction for r in rows])
    mine = fitted.model.predict(x)[:, 0].astype(np.float64)
    np.testing.assert_allclose(got, mine, rtol=1e-6)
    for metric, expected in (("rmse", np.sqrt(np.mean((mine - y) ** 2))), ("mae", np.mean(np.abs(mine - y))),
                             ("r2", 1 - np.sum((mine - y) ** 2) / np.sum((y - y.mean()) ** 2))):
        value = RegressionEvaluator(metricName=metric).evaluate(out)
        np.testing.assert_allclose(value, expected, rtol=1e-9, err_msg=metric)
    assert RegressionEvaluator(metricName="r2").evaluate(out) > 0.9  # it learned the linear map

    estimator = NNEstimator(net(1), "mse", batchSize=20, maxEpoch=8, optimMethod=optim.Adam(0.05),
                            fitMultipleMode="parallel")  # one task trains it, labels shaped as fit shapes them
    (_, in_a_task), = list(estimator.fitMultiple(df, [{}]))
    assert RegressionEvaluator(metricName="r2").evaluate(in_a_task.transform(df)) > 0.9


def test_several_outputs_give_an_array_of_the_model_outputs(spark, regression):
    from ember.zoo.pipeline import NNModel

    x, _, two, df = regression
    model = net(2)
    out = NNModel(model, batchSize=64).transform(df)
    assert dict(out.dtypes)["prediction"] == "array<double>"
    got = np.array([r.prediction for r in out.orderBy("id").select("prediction").collect()])
    np.testing.assert_allclose(got, model.predict(x), rtol=1e-6)


@pytest.mark.slow
def test_save_and_load_through_spark_writers_on_a_file_uri(spark, regression, tmp_path):
    from pyspark.ml import Pipeline, PipelineModel
    from pyspark.ml.feature import StandardScaler
    from pyspark.ml.functions import array_to_vector

    from ember.zoo.pipeline import NNEstimator, NNModel

    x, _, _, df = regression
    df = df.withColumn("vec", array_to_vector("features"))
    pipeline = Pipeline(stages=[StandardScaler(inputCol="vec", outputCol="scaled"),
                                NNEstimator(net(1), "mse", featuresCol="scaled", batchSize=20, maxEpoch=1)])
    fitted = pipeline.fit(df)
    expected = [r.prediction for r in fitted.transform(df).orderBy("id").select("prediction").collect()]
    uri = (tmp_path / "pipeline").as_uri()  # file:///...: Hadoop's FileSystem, not Python's open
    assert uri.startswith("file:///")
    fitted.write().overwrite().save(uri)
    assert not list((tmp_path / "pipeline").rglob("*.ember"))  # the model file is a Parquet value
    assert list((tmp_path / "pipeline").rglob("*.parquet"))
    loaded = PipelineModel.load(uri)
    got = [r.prediction for r in loaded.transform(df).orderBy("id").select("prediction").collect()]
    assert got == expected
    stage = loaded.stages[-1]
    for a, b in zip(stage.model.get_weights(), fitted.stages[-1].model.get_weights()):
        np.testing.assert_array_equal(a, b)

    single = NNModel(net(1), featuresCol="features")
    single.save(str(tmp_path / "plain"))  # a plain local path as well
    again = NNModel.load(str(tmp_path / "plain"))
    np.testing.assert_array_equal(again.model.predict(x), single.model.predict(x))
    with pytest.raises(Exception, match="nosuchfs"):  # any scheme goes to Hadoop, which names the unknown one
        single.write().save("nosuchfs://host/ember/model")
