"""Spark ML estimators and models for ember (BigDL's NNFrames): ``NNEstimator`` -> ``NNModel`` and
``NNClassifier`` -> ``NNClassifierModel``, usable in ``Pipeline``, ``CrossValidator`` and
``TrainValidationSplit``, saved and loaded like MLlib's own stages.

``fit`` converts the DataFrame once into cached column batches (``optim.spark.data.dataframe_samples``) and
trains with ``ember.optim.Optimizer`` on the Spark engine, the same path as ``Optimizer(model, rdd, ...)``.
``transform`` runs batched inference on the executors (``inference.py``). Labels are 0-based.

Example:
    >>> from pyspark.ml import Pipeline                                   # doctest: +SKIP
    >>> from pyspark.ml.feature import VectorAssembler, StandardScaler
    >>> model = ember.Sequential([Dense(16, activation="relu", input_shape=(4,)), Dense(3, activation="softmax")])
    >>> clf = NNClassifier(model, "sparse_categorical_crossentropy", featuresCol="scaled", batchSize=32,
    ...                    maxEpoch=20, learningRate=0.1)
    >>> pipeline = Pipeline(stages=[VectorAssembler(inputCols=cols, outputCol="raw"),
    ...                             StandardScaler(inputCol="raw", outputCol="scaled"), clf])
    >>> fitted = pipeline.fit(train_df); fitted.transform(test_df).select("prediction")
"""
import functools
import json
import os
import time

from pyspark import __version__ as _pyspark_version
from pyspark.ml import Estimator, Model
from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.ml.param.shared import HasProbabilityCol, HasRawPredictionCol
from pyspark.ml.util import DefaultParamsReader, MLReadable, MLReader, MLWritable, MLWriter
from pyspark.sql import functions as F

from ember.layers import losses as losses_module
from ember.layers.base import Layer
from ember.optim import methods as methods_module
from ember.optim.spark.data import (
    DataFrameError,
    array_column,
    column_names,
    dataframe_samples,
    require_classic_session,
)
from ember.optim.triggers import EveryEpoch, MaxEpoch, Trigger
from ember.zoo.pipeline import tuning
from ember.zoo.pipeline.image import HasImagePreprocessing, image_features, image_input, transform_to_json
from ember.zoo.pipeline.inference import ModelShipment, input_shape, output_width, packed_features, prediction_udf

_PYSPARK_4 = int(_pyspark_version.split(".")[0]) >= 4

# ---------------------------------------------------------------- converters of the object Params


def _to_model(value):
    if not isinstance(value, Layer):
        raise TypeError(f"model: expected an ember model (Sequential, Model or a layer), got {type(value).__name__}")
    return value


def _to_criterion(value):
    """A loss from a name, an instance, or its saved form ``{"name": ..., "config": {...}}``."""
    if isinstance(value, dict):
        return type(losses_module.get(value["name"]))(**value.get("config", {}))
    return losses_module.get(value)


def _to_optim_method(value):
    """An ember.optim method from an instance, a name ("sgd", "adam", ...) or its saved form."""
    from ember.zoo.keras.models import get_optimizer

    if isinstance(value, dict):
        cls = getattr(methods_module, value["class_name"])
        method = cls.__new__(cls)
        method.load_state_dict({"class_name": value["class_name"], "learning_rate": value["learning_rate"],
                                "hyper": value["hyper"], "state": {}})
        return method
    return get_optimizer(value)


def _to_columns(value):
    """A column name, or a list of names (several numeric columns stacked into one vector)."""
    if isinstance(value, str):
        return value
    names = TypeConverters.toListString(value)
    if not names:
        raise ValueError("featuresCol: give at least one column")
    return names if len(names) > 1 else names[0]


def _to_shape(value):
    return None if value is None else TypeConverters.toListInt(value)


def _saved_form(name, value):
    """A Param value as JSON (losses and optimization methods by their settings; None for the model)."""
    if name == "model":
        return None
    if name == "imagePreprocessing" and value is not None:
        return transform_to_json(value)
    if name == "criterion" and not isinstance(value, str):
        return {"name": value.name, "config": value.get_config()}
    if name == "optimMethod" and not isinstance(value, str):
        return {"class_name": type(value).__name__, "learning_rate": value.learning_rate, "hyper": dict(value.hyper)}
    return value


def _keyword_only_after(*positional):
    """pyspark's ``keyword_only``, except that the first arguments (``model``, ``criterion``) may also be
    given by position, as in BigDL (``NNClassifier(model, criterion, batchSize=...)``)."""

    def decorate(func):
        @functools.wraps(func)
        def wrapper(self, *args, **kwargs):
            if len(args) > len(positional):
                raise TypeError(f"{func.__name__}: only {', '.join(positional)} may be given by position")
            for name, value in zip(positional, args):
                if name in kwargs:
                    raise TypeError(f"{func.__name__}: {name} given twice")
                kwargs[name] = value
            self._input_kwargs = kwargs
            return func(self, **kwargs)

        return wrapper

    return decorate


# ---------------------------------------------------------------- Params
class _NNParams(HasImagePreprocessing):
    """Params shared by the estimators and the models (``imagePreprocessing``: see ``image.py``)."""

    featuresCol = Param(Params._dummy(), "featuresCol", "features column: an MLlib vector, an array of numbers, "
                        "or a list of numeric columns stacked into one vector", typeConverter=_to_columns)
    predictionCol = Param(Params._dummy(), "predictionCol", "prediction column name",
                          typeConverter=TypeConverters.toString)
    batchSize = Param(Params._dummy(), "batchSize", "global mini-batch size (training: over all trainers; "
                      "inference: per forward pass)", typeConverter=TypeConverters.toInt)
    featureSize = Param(Params._dummy(), "featureSize", "shape of one sample's features (default: the model's "
                        "input shape)", typeConverter=_to_shape)

    def __init__(self):
        super().__init__()
        self._setDefault(featuresCol="features", predictionCol="prediction", batchSize=32, featureSize=None)

    def setFeaturesCol(self, value):
        return self._set(featuresCol=value)

    def getFeaturesCol(self):
        return self.getOrDefault(self.featuresCol)

    def setPredictionCol(self, value):
        return self._set(predictionCol=value)

    def getPredictionCol(self):
        return self.getOrDefault(self.predictionCol)

    def setBatchSize(self, value):
        return self._set(batchSize=value)

    def getBatchSize(self):
        return self.getOrDefault(self.batchSize)

    def setFeatureSize(self, value):
        return self._set(featureSize=value)

    def getFeatureSize(self):
        return self.getOrDefault(self.featureSize)


class _NNTrainingParams(_NNParams):
    """Params of the estimators (what training needs)."""

    model = Param(Params._dummy(), "model", "the ember model to train (a copy is trained; this one is kept)",
                  typeConverter=_to_model)
    criterion = Param(Params._dummy(), "criterion", "loss: a name or an ember loss", typeConverter=_to_criterion)
    labelCol = Param(Params._dummy(), "labelCol", "label column (0-based class ids for classifiers)",
                     typeConverter=_to_columns)
    maxEpoch = Param(Params._dummy(), "maxEpoch", "number of epochs", typeConverter=TypeConverters.toInt)
    learningRate = Param(Params._dummy(), "learningRate", "learning rate (overrides the optimMethod's when set)",
                         typeConverter=TypeConverters.toFloat)
    optimMethod = Param(Params._dummy(), "optimMethod", "optimization method: a name ('sgd', 'adam', ...) or an "
                        "ember.optim method", typeConverter=_to_optim_method)
    gradientClipL2Norm = Param(Params._dummy(), "gradientClipL2Norm", "clip the gradient to this global L2 norm",
                               typeConverter=TypeConverters.toFloat)
    cachingSample = Param(Params._dummy(), "cachingSample", "cache the converted training batches in Spark "
                          "(when the DataFrame itself is not cached)", typeConverter=TypeConverters.toBoolean)
    fitMultipleMode = Param(Params._dummy(), "fitMultipleMode", "how fitMultiple (CrossValidator, "
                            "TrainValidationSplit) trains a grid: 'parallel' (one Spark task per param map, each "
                            "training locally on the broadcast data), 'sequential' (one distributed fit after "
                            "another) or 'auto' (parallel for small models and data; see zoo.pipeline.tuning)",
                            typeConverter=tuning.to_mode)

    def __init__(self):
        super().__init__()
        self._setDefault(labelCol="label", maxEpoch=1, learningRate=0.01, optimMethod="sgd", cachingSample=True,
                         fitMultipleMode="auto")
        self._validation = self._checkpoint = self._end_when = None
        self._train_summary = self._validation_summary = None

    def setModel(self, value):
        return self._set(model=value)

    def getModel(self):
        return self.getOrDefault(self.model)

    def setCriterion(self, value):
        return self._set(criterion=value)

    def getCriterion(self):
        return self.getOrDefault(self.criterion)

    def setLabelCol(self, value):
        return self._set(labelCol=value)

    def getLabelCol(self):
        return self.getOrDefault(self.labelCol)

    def setMaxEpoch(self, value):
        return self._set(maxEpoch=value)

    def getMaxEpoch(self):
        return self.getOrDefault(self.maxEpoch)

    def setLearningRate(self, value):
        return self._set(learningRate=value)

    def getLearningRate(self):
        return self.getOrDefault(self.learningRate)

    def setOptimMethod(self, value):
        return self._set(optimMethod=value)

    def getOptimMethod(self):
        return self.getOrDefault(self.optimMethod)

    def setGradientClippingByL2Norm(self, clip_norm):
        if clip_norm <= 0:
            raise ValueError(f"setGradientClippingByL2Norm: the norm must be > 0, got {clip_norm!r}")
        return self._set(gradientClipL2Norm=clip_norm)

    def setCachingSample(self, value):
        return self._set(cachingSample=value)

    def isCachingSample(self):
        return self.getOrDefault(self.cachingSample)

    def setFitMultipleMode(self, value):
        return self._set(fitMultipleMode=value)

    def getFitMultipleMode(self):
        return self.getOrDefault(self.fitMultipleMode)

    # ---- BigDL's settings that are not Params (objects, DataFrames): kept by copy() too ----
    def setValidation(self, trigger, val_df, val_method, batch_size):
        """Validate on DataFrame ``val_df`` (same columns as the training data) whenever ``trigger`` fires,
        with ``val_method`` (ValidationMethods or names such as "accuracy", "loss")."""
        if not isinstance(trigger, Trigger):
            raise TypeError(f"setValidation: trigger must be a Trigger (EveryEpoch, ...), got {trigger!r}")
        if not hasattr(val_df, "columns"):
            raise TypeError(f"setValidation: val_df must be a DataFrame, got {type(val_df).__name__}")
        self._validation = (trigger, val_df, list(val_method), int(batch_size))
        return self

    def setCheckpoint(self, path, trigger=None, isOverWrite=True):
        """Write training checkpoints into folder ``path`` whenever ``trigger`` fires (default: every epoch)."""
        self._checkpoint = (os.fspath(path), trigger or EveryEpoch(), bool(isOverWrite))
        return self

    def setTrainSummary(self, summary):
        self._train_summary = summary
        return self

    def setValidationSummary(self, summary):
        self._validation_summary = summary
        return self

    def setEndWhen(self, trigger):
        """Stop when ``trigger`` fires (replaces maxEpoch), e.g. ``MaxIteration(500)``."""
        if not isinstance(trigger, Trigger):
            raise TypeError(f"setEndWhen: expected a Trigger, got {trigger!r}")
        self._end_when = trigger
        return self


class _NNClassifierParams(HasRawPredictionCol, HasProbabilityCol):
    def __init__(self):
        super().__init__()
        self._setDefault(rawPredictionCol="rawPrediction", probabilityCol="probability")

    def setRawPredictionCol(self, value):
        return self._set(rawPredictionCol=value)

    def setProbabilityCol(self, value):
        return self._set(probabilityCol=value)


# ---------------------------------------------------------------- persistence
class _NNWriter(MLWriter):
    """Params as Spark ML metadata (``DefaultParamsWriter``'s layout) plus the ember model file (``model.save``:
    JSON + .npz in a zip, no pickle) of the model (and of an estimator's initial model), as one binary
    value in the Parquet folder ``model``. Both go through Spark's writers, so any path Spark can write
    works: local, ``file://``, ``hdfs://``, ``s3a://`` (Hadoop's FileSystem)."""

    def __init__(self, instance):
        super().__init__()
        self.instance = instance

    def saveImpl(self, path):
        from ember.zoo.pipeline.inference import model_file_bytes

        inst = self.instance
        params = {p.name: _saved_form(p.name, v) for p, v in inst._paramMap.items() if p.name != "model"}
        defaults = {p.name: _saved_form(p.name, v) for p, v in inst._defaultParamMap.items() if p.name != "model"}
        model = inst._stage_model()
        metadata = {"class": f"{type(inst).__module__}.{type(inst).__name__}", "timestamp": int(time.time() * 1000),
                    "sparkVersion": self.sparkSession.version, "uid": inst.uid, "paramMap": params,
                    "defaultParamMap": defaults, "emberModel": model is not None}  # DefaultParamsWriter's layout
        if model is not None:
            metadata["emberModelFile"] = _MODEL_FOLDER
        self.sparkSession.createDataFrame([(json.dumps(metadata),)], ["value"]).coalesce(1).write.text(
            _join(path, "metadata"))
        if model is not None:
            self.sparkSession.createDataFrame([(bytearray(model_file_bytes(model)),)], "model binary").coalesce(
                1).write.parquet(_join(path, _MODEL_FOLDER))


_MODEL_FOLDER = "model"


def _join(path, name):
    return path.rstrip("/") + "/" + name


class _NNReader(MLReader):
    def __init__(self, cls):
        super().__init__()
        self.cls = cls

    def load(self, path):
        import io

        from ember.layers.serialization import load_model

        # (pyspark 4 reads the metadata with a session; 3.5 only with a SparkContext, through sc.textFile)
        source = self.sparkSession if _PYSPARK_4 else self.sparkSession.sparkContext
        metadata = DefaultParamsReader.loadMetadata(path, source)
        instance = self.cls()
        instance._resetUid(metadata["uid"])
        DefaultParamsReader.getAndSetParams(instance, metadata, skipParams=["model"])
        if metadata.get("emberModelFile"):
            rows = self.sparkSession.read.parquet(_join(path, metadata["emberModelFile"])).collect()
            if len(rows) != 1:
                raise ValueError(f"{path}: the saved model folder {metadata['emberModelFile']!r} holds {len(rows)} "
                                 "rows; expected one model file")
            instance._set_stage_model(load_model(io.BytesIO(bytes(rows[0][0])), compile=False))
        elif metadata.get("emberModel"):  # saved by an earlier ember: model.ember written with local file IO
            instance._set_stage_model(load_model(os.path.join(_local_path(path), "model.ember"), compile=False))
        return instance


def _local_path(path):
    if path.startswith("file:"):
        return path[len("file:"):].replace("///", "/", 1) if path.startswith("file:///") else path[len("file:"):]
    if "://" in path:
        raise ValueError(f"load: {path!r} was saved by an earlier ember with local file IO; load it from a local "
                         "path")
    return path


class _NNPersistence(MLWritable, MLReadable):
    def write(self):
        return _NNWriter(self)

    @classmethod
    def read(cls):
        return _NNReader(cls)


# ---------------------------------------------------------------- estimators
def _copy_model(model):
    """A copy of ``model`` (architecture and weights) to train, so that the estimator's model is never
    changed (CrossValidator fits one estimator many times, each from the same start)."""
    from ember.layers.serialization import deserialize_layer, serialize_layer
    from ember.optim.spark.engine import custom_objects

    clone = deserialize_layer(serialize_layer(model), custom_objects(model))
    if getattr(model, "built", False):
        clone.set_weights(model.get_weights())
    return clone


class NNEstimator(_NNTrainingParams, _NNPersistence, Estimator):
    """Trains an ember model on a DataFrame (Spark ML ``Estimator``); ``fit`` returns an ``NNModel``.

    Args (Params, also settable with ``setX``): ``model``, ``criterion`` (may be given by position),
    ``featuresCol`` (vector, array or a list of numeric columns), ``labelCol``, ``predictionCol``,
    ``batchSize`` (the global batch), ``maxEpoch``, ``learningRate``, ``optimMethod``, ``featureSize``,
    ``gradientClipL2Norm``, ``cachingSample``, ``fitMultipleMode``.

    ``fitMultiple`` (what ``CrossValidator`` and ``TrainValidationSplit`` call) trains a grid of small
    models in parallel, one Spark task per param map on the broadcast data, and larger ones one after
    another, each distributed; ``fitMultipleMode`` ("auto", "parallel", "sequential") chooses
    (``ember.zoo.pipeline.tuning`` gives the limits).

    Example:
        >>> est = NNEstimator(model, "mse", featuresCol="x", labelCol="y", maxEpoch=5)  # doctest: +SKIP
        >>> est.fit(df).transform(df).select("prediction")                           # doctest: +SKIP
    """

    _model_class = None  # set below

    @_keyword_only_after("model", "criterion")
    def __init__(self, model=None, criterion=None, featuresCol="features", labelCol="label",
                 predictionCol="prediction", batchSize=32, maxEpoch=1, learningRate=0.01, optimMethod="sgd",
                 featureSize=None, gradientClipL2Norm=None, cachingSample=True, fitMultipleMode="auto"):
        super().__init__()
        self.setParams(**self._input_kwargs)

    @_keyword_only_after("model", "criterion")
    def setParams(self, model=None, criterion=None, featuresCol="features", labelCol="label",
                  predictionCol="prediction", batchSize=32, maxEpoch=1, learningRate=0.01, optimMethod="sgd",
                  featureSize=None, gradientClipL2Norm=None, cachingSample=True, fitMultipleMode="auto"):
        return self._set(**self._input_kwargs)

    # ---- what the writer needs ----
    def _stage_model(self):
        return self.getOrDefault(self.model) if self.isDefined(self.model) else None

    def _set_stage_model(self, model):
        self._set(model=model)

    # ---- training ----
    def _optim_method(self):
        method = _to_optim_method(_saved_form("optimMethod", self.getOptimMethod()))  # a fresh copy
        if self.isSet(self.learningRate):
            method.learning_rate = float(self.getLearningRate())
        return method

    def _feature_shape(self, model):
        shape = self.getFeatureSize()
        return tuple(shape) if shape is not None else input_shape(model)

    def _check_labels(self, samples, model):
        """Classifiers check their labels (see NNClassifier)."""

    def fitMultiple(self, dataset, paramMaps):
        """Fit a model for each param map: a thread-safe iterator of (index, model). Small models train in
        parallel, one Spark task each (``fitMultipleMode``; see ``ember.zoo.pipeline.tuning``).

        Example:
            >>> models = dict(clf.fitMultiple(df, ParamGridBuilder().addGrid(clf.learningRate,  # doctest: +SKIP
            ...                                   [0.01, 0.1]).build()))
        """
        require_classic_session(dataset, f"{type(self).__name__}.fitMultiple")
        fits = tuning.parallel_fits(self, dataset, paramMaps)
        return fits if fits is not None else super().fitMultiple(dataset, paramMaps)

    def _fit(self, dataset):
        from ember.optim import Optimizer

        for required in (self.model, self.criterion):
            if not self.isDefined(required):
                raise ValueError(f"{type(self).__name__}: set {required.name} before fit")
        require_classic_session(dataset, f"{type(self).__name__}.fit")
        model = _copy_model(self.getModel())
        shape = self._feature_shape(model)
        features, labels = self.getFeaturesCol(), self.getLabelCol()
        dataset, features = image_input(dataset, features, self.getImagePreprocessing())  # an image column
        label_shape = tuning.label_shape(labels, model, self.getCriterion())
        samples = dataframe_samples(dataset, features, labels, shape, cache=None if self.isCachingSample() else False,
                                    label_shape=label_shape)
        validation = None
        try:
            self._check_labels(samples, model)
            end = self._end_when or MaxEpoch(self.getMaxEpoch())
            opt = Optimizer(model, samples.rdd, self.getCriterion(), self._optim_method(), end, self.getBatchSize())
            if self._validation is not None:
                trigger, val_df, methods, batch_size = self._validation
                val_df = image_input(val_df, self.getFeaturesCol(), self.getImagePreprocessing())[0]
                validation = dataframe_samples(val_df, features, labels, shape, label_shape=label_shape)
                self._check_labels(validation, model)
                opt.set_validation(batch_size, validation.rdd, trigger, methods)
            if self._checkpoint is not None:
                path, trigger, overwrite = self._checkpoint
                opt.set_checkpoint(path, trigger, overwrite)
            if self._train_summary is not None:
                opt.set_train_summary(self._train_summary)
            if self._validation_summary is not None:
                opt.set_val_summary(self._validation_summary)
            if self.isDefined(self.gradientClipL2Norm):
                opt.set_gradclip_l2norm(self.getOrDefault(self.gradientClipL2Norm))
            opt.set_progress(0)
            opt.optimize()
        finally:
            samples.unpersist()
            if validation is not None:
                validation.unpersist()
        return self._copyValues(self._model_class(model))


class NNModel(_NNParams, _NNPersistence, Model):
    """A trained ember model as a Spark ML ``Transformer``: ``transform`` appends ``predictionCol``, a
    double for a model of one output (so ``RegressionEvaluator`` works), else the outputs as
    ``array<double>``, computed on the executors in Arrow batches of ``batchSize`` rows per forward pass,
    with the weights broadcast once. Works on batch and streaming DataFrames.

    Example:
        >>> NNModel(model, featuresCol="features").transform(df).show()  # doctest: +SKIP
    """

    @_keyword_only_after("model")
    def __init__(self, model=None, featuresCol="features", predictionCol="prediction", batchSize=32,
                 featureSize=None):
        super().__init__()
        kwargs = dict(self._input_kwargs)
        self.model = _to_model(kwargs.pop("model")) if kwargs.get("model") is not None else None
        kwargs.pop("model", None)
        self._shipment = None
        self._set(**kwargs)

    @_keyword_only_after()
    def setParams(self, featuresCol="features", predictionCol="prediction", batchSize=32, featureSize=None):
        return self._set(**self._input_kwargs)

    def _stage_model(self):
        return self.model

    def _set_stage_model(self, model):
        self.model = model
        self._shipment = None

    def copy(self, extra=None):
        that = super().copy(extra)
        that._shipment = None  # (shared otherwise; harmless, but each copy ships on first use)
        return that

    def _feature_shape(self):
        shape = self.getFeatureSize()
        return tuple(shape) if shape is not None else input_shape(self.model)

    def _outputs(self, dataset, classify, scalar=False):
        if self.model is None:
            raise ValueError(f"{type(self).__name__} has no model")
        spark = dataset.sparkSession
        if self._shipment is None:
            self._shipment = ModelShipment(self.model, spark)
        features = column_names(self.getFeaturesCol(), "features")
        column = image_features(dataset, self.getFeaturesCol(), self.getImagePreprocessing())  # an image column
        packed = packed_features(dataset, features) if column is None else None
        udf = prediction_udf(self._shipment, "+".join(features), self._feature_shape(), int(self.getBatchSize()),
                             classify, scalar, packed=packed is not None)
        if packed is not None:
            return udf(packed)
        try:
            column = array_column(dataset, features, "features") if column is None else column
        except DataFrameError as error:
            raise DataFrameError(f"{type(self).__name__}.transform: {error}") from None
        return udf(column)

    def _transform(self, dataset):
        scalar = output_width(self.model) == 1  # one output: a double, as MLlib's regressors give it
        return dataset.withColumn(self.getPredictionCol(), self._outputs(dataset, classify=False, scalar=scalar))


class NNClassifier(_NNClassifierParams, NNEstimator):
    """``NNEstimator`` for classification with 0-based labels (a numeric column, e.g. from StringIndexer);
    ``fit`` returns an ``NNClassifierModel``. Labels are checked before training: integers in
    [0, classes) where the model's output gives the number of classes.

    Example:
        >>> clf = NNClassifier(model, "sparse_categorical_crossentropy", maxEpoch=10)  # doctest: +SKIP
        >>> MulticlassClassificationEvaluator().evaluate(clf.fit(df).transform(df))  # doctest: +SKIP
    """

    @_keyword_only_after("model", "criterion")
    def __init__(self, model=None, criterion="sparse_categorical_crossentropy", featuresCol="features",
                 labelCol="label", predictionCol="prediction", batchSize=32, maxEpoch=1, learningRate=0.01,
                 optimMethod="sgd", featureSize=None, gradientClipL2Norm=None, cachingSample=True,
                 rawPredictionCol="rawPrediction", probabilityCol="probability", fitMultipleMode="auto"):
        super(NNEstimator, self).__init__()  # (NNEstimator.__init__ would set its own Params' values)
        self._setDefault(criterion="sparse_categorical_crossentropy", rawPredictionCol="rawPrediction",
                         probabilityCol="probability")
        self.setParams(**self._input_kwargs)

    @_keyword_only_after("model", "criterion")
    def setParams(self, model=None, criterion="sparse_categorical_crossentropy", featuresCol="features",
                  labelCol="label", predictionCol="prediction", batchSize=32, maxEpoch=1, learningRate=0.01,
                  optimMethod="sgd", featureSize=None, gradientClipL2Norm=None, cachingSample=True,
                  rawPredictionCol="rawPrediction", probabilityCol="probability", fitMultipleMode="auto"):
        return self._set(**self._input_kwargs)

    def _check_labels(self, samples, model):
        column = self.getLabelCol()
        if not isinstance(column, str) or samples.label_max == -float("inf"):
            return
        if not samples.label_integral or samples.label_min < 0:
            raise DataFrameError(f"label column {column!r}: NNClassifier takes 0-based integer class ids, found "
                                 f"values from {samples.label_min} to {samples.label_max}"
                                 + (" (not all integers)" if not samples.label_integral else "")
                                 + "; index string labels with StringIndexer")
        outputs = getattr(model, "outputs", None) if getattr(model, "built", False) else None
        if outputs:
            width = outputs[0].shape[-1]
            classes = 2 if width == 1 else width
            if width is not None and samples.label_max >= classes:
                raise DataFrameError(f"label column {column!r} holds class {int(samples.label_max)} but the model "
                                     f"outputs {classes} classes (0 to {classes - 1})")


class NNClassifierModel(_NNClassifierParams, NNModel):
    """A trained classifier: ``transform`` appends ``rawPredictionCol`` and ``probabilityCol`` (MLlib dense
    vectors) and ``predictionCol`` (the 0-based class as a double), as MLlib's classifiers do, so
    ``MulticlassClassificationEvaluator`` and ``BinaryClassificationEvaluator`` work unchanged. A model with
    one sigmoid output gives two-class vectors [1 - p, p].

    Example:
        >>> NNClassifierModel(model).transform(df).select("prediction")  # doctest: +SKIP
    """

    @_keyword_only_after("model")
    def __init__(self, model=None, featuresCol="features", predictionCol="prediction", batchSize=32,
                 featureSize=None, rawPredictionCol="rawPrediction", probabilityCol="probability"):
        super(NNModel, self).__init__()  # (NNModel.__init__ would set its own Params' values)
        self._setDefault(rawPredictionCol="rawPrediction", probabilityCol="probability")
        kwargs = dict(self._input_kwargs)
        self.model = _to_model(kwargs.pop("model")) if kwargs.get("model") is not None else None
        kwargs.pop("model", None)
        self._shipment = None
        self._set(**kwargs)

    @_keyword_only_after()
    def setParams(self, featuresCol="features", predictionCol="prediction", batchSize=32, featureSize=None,
                  rawPredictionCol="rawPrediction", probabilityCol="probability"):
        return self._set(**self._input_kwargs)

    def _transform(self, dataset):
        from pyspark.ml.functions import array_to_vector

        hidden = "__ember_outputs"
        out = dataset.withColumn(hidden, self._outputs(dataset, classify=True))
        return (out.withColumn(self.getRawPredictionCol(), array_to_vector(F.col(f"{hidden}.raw")))
                .withColumn(self.getProbabilityCol(), array_to_vector(F.col(f"{hidden}.probability")))
                .withColumn(self.getPredictionCol(), F.col(f"{hidden}.prediction"))
                .drop(hidden))


NNEstimator._model_class = NNModel
NNClassifier._model_class = NNClassifierModel
