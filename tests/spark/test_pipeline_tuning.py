"""fitMultiple of ember's estimators: a grid of small models trained as Spark tasks (each locally, on the
broadcast data) equals training each model in this process with the same seed; CrossValidator's
avgMetrics over such a grid equal an explicit loop; the mode is chosen by size and overridable."""
import numpy as np
import pytest

import ember
from ember import optim
from ember.layers import Dense

pytestmark = pytest.mark.spark

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


@pytest.fixture(scope="module")
def spark(sc):
    from pyspark.sql import SparkSession

    return SparkSession.builder.getOrCreate()


@pytest.fixture(scope="module")
def data(spark):
    from pyspark.ml.feature import VectorAssembler
    from sklearn.datasets import load_iris

    frame = load_iris(as_frame=True).frame
    frame.columns = [c.replace(" (cm)", "").replace(" ", "_") for c in frame.columns]
    frame["id"] = np.arange(len(frame))
    df = spark.createDataFrame(frame).repartition(2, "id")
    df = VectorAssembler(inputCols=FEATURES, outputCol="features").transform(df)
    return df.withColumn("fold", (df.id % 2).cast("int")).cache()


def mlp(hidden=16):
    ember.set_seed(0)
    return ember.Sequential([Dense(hidden, activation="relu", input_shape=(4,)), Dense(3, activation="softmax")])


def arrays(df):
    rows = df.select("features", "target").collect()  # the DataFrame's row order, as fitMultiple collects it
    return np.array([r.features.toArray() for r in rows], dtype=np.float32), np.array([r.target for r in rows])


def train_here(hidden, learning_rate, seed, x, y):
    """One model of the grid trained in this process, as a task trains it."""
    model = mlp(hidden)
    ember.set_seed(int(seed))
    optim.Optimizer(model, (x, y), "sparse_categorical_crossentropy", optim.SGD(learning_rate), optim.MaxEpoch(2),
                    10).set_progress(0).optimize()
    return model


def grid_of(clf):
    from pyspark.ml.tuning import ParamGridBuilder

    return (ParamGridBuilder().addGrid(clf.learningRate, [0.001, 0.03, 0.1])
            .addGrid(clf.model, [mlp(4), mlp(24)]).build())


def hidden_of(params, clf):
    return params[clf.model].layers[0].units


@pytest.mark.slow
def test_a_parallel_grid_equals_training_each_model_here_and_cross_validation_an_explicit_loop(spark, data):
    from pyspark.ml.evaluation import MulticlassClassificationEvaluator
    from pyspark.ml.tuning import CrossValidator

    from ember.zoo.pipeline import NNClassifier, NNClassifierModel
    from ember.zoo.pipeline.tuning import _TaskFits

    clf = NNClassifier(mlp(), labelCol="target", batchSize=10, maxEpoch=2)
    grid = grid_of(clf)
    assert clf.getFitMultipleMode() == "auto"
    train = data.filter(data.fold != 0)
    x, y = arrays(train)

    ember.set_seed(3)
    fits = clf.fitMultiple(train, grid)
    assert isinstance(fits, _TaskFits)  # small models: one Spark task per param map
    fitted = dict(fits)
    seeds = np.random.default_rng(3).integers(0, 2 ** 31 - 1, size=len(grid))  # the driver's draws, in order
    for j, params in enumerate(grid):
        assert isinstance(fitted[j], NNClassifierModel) and fitted[j].getFeaturesCol() == "features"
        here = train_here(hidden_of(params, clf), params[clf.learningRate], seeds[j], x, y)
        for a, b in zip(fitted[j].model.get_weights(), here.get_weights()):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
        start = params[clf.model].get_weights()  # the grid's models are not changed
        assert not np.array_equal(start[0], here.get_weights()[0])

    evaluator = MulticlassClassificationEvaluator(labelCol="target", metricName="accuracy")
    ember.set_seed(7)
    cv = CrossValidator(estimator=clf, estimatorParamMaps=grid, evaluator=evaluator, numFolds=2,
                        foldCol="fold", parallelism=2).fit(data)
    generator = np.random.default_rng(7)
    explicit = np.zeros(len(grid))
    for fold in range(2):  # CrossValidator's order: each fold, then the param maps (one draw each)
        seeds = generator.integers(0, 2 ** 31 - 1, size=len(grid))
        (x, y), (xv, yv) = arrays(data.filter(data.fold != fold)), arrays(data.filter(data.fold == fold))
        for j, params in enumerate(grid):
            model = train_here(hidden_of(params, clf), params[clf.learningRate], seeds[j], x, y)
            explicit[j] += float((model.predict(xv).argmax(axis=1) == yv).mean()) / 2
    np.testing.assert_allclose(cv.avgMetrics, explicit, rtol=1e-12)
    assert max(explicit) > min(explicit)


def test_the_mode_is_chosen_by_size_and_can_be_overridden(spark, data, monkeypatch):
    from ember.optim.triggers import EveryEpoch
    from ember.zoo.pipeline import NNClassifier, tuning

    clf = NNClassifier(mlp(), labelCol="target", batchSize=10, maxEpoch=1)
    grid = grid_of(clf)
    assert isinstance(clf.fitMultiple(data, grid), tuning._TaskFits)
    monkeypatch.setattr(tuning, "PARALLEL_MAX_PARAMS", 100)  # mlp(24) has 195 parameters: too large now
    assert not isinstance(clf.fitMultiple(data, grid), tuning._TaskFits)  # Spark's one-after-another iterator
    assert isinstance(clf.copy().setFitMultipleMode("parallel").fitMultiple(data, grid), tuning._TaskFits)
    sequential = clf.copy().setFitMultipleMode("sequential")
    monkeypatch.setattr(tuning, "PARALLEL_MAX_PARAMS", 10 ** 6)
    assert not isinstance(sequential.fitMultiple(data, grid), tuning._TaskFits)

    validated = clf.copy().setValidation(EveryEpoch(), data, ["accuracy"], 10)
    assert not isinstance(validated.fitMultiple(data, grid), tuning._TaskFits)  # a distributed fit's setting
    with pytest.raises(ValueError, match="without setValidation"):
        validated.setFitMultipleMode("parallel").fitMultiple(data, grid)
    with pytest.raises(ValueError, match="fitMultipleMode: expected one of auto, parallel, sequential"):
        clf.setFitMultipleMode("threads")


def test_a_parallel_grid_refuses_bad_labels_before_training(spark, data):
    from pyspark.sql import functions as F

    from ember.optim.spark.data import DataFrameError
    from ember.zoo.pipeline import NNClassifier

    clf = NNClassifier(mlp(), labelCol="target", batchSize=10, maxEpoch=1, fitMultipleMode="parallel")
    bad = data.withColumn("target", F.col("target") + 2)
    with pytest.raises(DataFrameError, match="holds class 4 but the model outputs 3 classes"):
        next(iter(clf.fitMultiple(bad, grid_of(clf))))
