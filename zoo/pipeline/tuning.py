"""``fitMultiple`` for ember's estimators: how a grid of param maps (``CrossValidator``,
``TrainValidationSplit``) is trained.

- ``"parallel"``: every model of the grid at once, one Spark task per param map. The training data is
  collected once as NumPy arrays and broadcast (read once per executor); each task trains its model in
  its Python worker with the local engine of the same ``TrainingLoop`` (``Optimizer`` on arrays) and sends
  back the trained model file. Good for small models, where a distributed step costs more in
  synchronisation than in arithmetic.
- ``"sequential"``: one param map after another, each trained on Spark by all trainers (``fit``).
- ``"auto"`` (the default): ``"parallel"`` when every model of the grid has at most
  ``PARALLEL_MAX_PARAMS`` parameters, the features take at most ``PARALLEL_MAX_DATA_BYTES`` as float32,
  and no validation, checkpoint or summary is set (those belong to a distributed fit); else
  ``"sequential"``.

The mode is the estimators' ``fitMultipleMode`` Param. Each parallel fit is seeded from ember's generator
on the driver (one draw per param map, in order), so ``ember.set_seed`` makes a grid reproducible.
"""
import io
import threading

import numpy as np

PARALLEL_MAX_PARAMS = 1_000_000
PARALLEL_MAX_DATA_BYTES = 256 * 2 ** 20
MODES = ("auto", "parallel", "sequential")


def to_mode(value):
    """The ``fitMultipleMode`` Param's converter."""
    if value not in MODES:
        raise ValueError(f"fitMultipleMode: expected one of {', '.join(MODES)}, got {value!r}")
    return value


def _model_size(model):
    try:
        return model.count_params()
    except (ValueError, AttributeError):  # not built: its size is not known
        return None


def _distributed_only(estimator):
    """The settings that only a distributed fit has, set on ``estimator`` (names)."""
    names = {"_validation": "setValidation", "_checkpoint": "setCheckpoint",
             "_train_summary": "setTrainSummary", "_validation_summary": "setValidationSummary"}
    return [setter for attribute, setter in names.items() if getattr(estimator, attribute, None) is not None]


def parallel_fits(estimator, dataset, param_maps):
    """A thread-safe iterator of (index, model) training ``param_maps`` as Spark tasks, or None where
    ``estimator``'s ``fitMultipleMode`` (see the module's doc) says to fit them one after another."""
    mode = estimator.getFitMultipleMode()
    if mode == "sequential" or not param_maps:
        return None
    copies = [estimator.copy(params) for params in param_maps]
    for copy in copies:
        for required in (copy.model, copy.criterion):
            if not copy.isDefined(required):
                raise ValueError(f"{type(copy).__name__}: set {required.name} before fit")
    blocked = sorted({setter for copy in copies for setter in _distributed_only(copy)})
    if blocked:
        if mode == "parallel":
            raise ValueError(f"fitMultipleMode='parallel' trains each model in one task, without "
                             f"{', '.join(blocked)}; unset them or use fitMultipleMode='sequential'")
        return None
    sizes = [_model_size(copy.getModel()) for copy in copies]
    if mode == "auto" and any(size is None or size > PARALLEL_MAX_PARAMS for size in sizes):
        return None
    return _TaskFits(estimator, copies, dataset, param_maps, max_bytes=None if mode == "parallel" else
                     PARALLEL_MAX_DATA_BYTES)


class _TaskFits:
    """(index, model) pairs; the first ``next`` trains them all (one Spark job), under a lock, as
    ``pyspark.ml.base._FitMultipleIterator`` is used from CrossValidator's threads."""

    def __init__(self, estimator, copies, dataset, param_maps, max_bytes):
        self.estimator, self.copies, self.dataset, self.param_maps = estimator, copies, dataset, param_maps
        self.max_bytes = max_bytes
        self.lock = threading.Lock()
        self.models = None
        self.sequential = None
        self.counter = 0

    def __iter__(self):
        return self

    def __next__(self):
        with self.lock:
            index = self.counter
            if index >= len(self.copies):
                raise StopIteration("No models remaining.")
            self.counter += 1
            if self.models is None and self.sequential is None:
                self.models = train_in_tasks(self.copies, self.dataset, self.max_bytes)
                if self.models is None:  # the data is too large to broadcast: fit one after another
                    self.sequential = self.estimator.copy()
        if self.models is not None:
            return index, self.models[index]
        return index, self.sequential.fit(self.dataset, self.param_maps[index])

    next = __next__


def train_in_tasks(copies, dataset, max_bytes=None):
    """Train each estimator of ``copies`` (the same features and labels) in one Spark task of one job;
    their fitted models, in order, or None when the features would take more than ``max_bytes``."""
    from ember.engine.config import rng
    from ember.optim.spark.data import DataFrameError, dataframe_arrays, raise_data_error
    from ember.optim.spark.engine import custom_objects
    from ember.zoo.pipeline.inference import model_file_bytes

    first = copies[0]
    features, labels = first.getFeaturesCol(), first.getLabelCol()
    shapes = [copy._feature_shape(copy.getModel()) for copy in copies]
    x, y, checked = dataframe_arrays(dataset, features, labels, shapes[0], max_bytes)
    if x is None:
        return None
    for copy, shape in zip(copies, shapes):
        if (copy.getFeaturesCol(), copy.getLabelCol()) != (features, labels):
            raise ValueError("fitMultipleMode='parallel': every param map must use the same featuresCol and "
                             f"labelCol (found {features!r}/{labels!r} and {copy.getFeaturesCol()!r}/"
                             f"{copy.getLabelCol()!r})")
        width = int(np.prod(shape)) if shape is not None else checked.width
        if width != checked.width:
            raise DataFrameError(f"column {features!r} has {checked.width} values per row but a model of the grid "
                                 f"takes {tuple(shape)} ({width} values)")
        copy._check_labels(checked, copy.getModel())
    sc = dataset.sparkSession.sparkContext
    seeds = rng().integers(0, 2 ** 31 - 1, size=len(copies))
    jobs = [_job(copy, shape, int(seed)) for copy, shape, seed in zip(copies, shapes, seeds)]
    data = sc.broadcast((x, y))
    files = sc.broadcast([model_file_bytes(copy.getModel()) for copy in copies])
    found = [custom_objects(copy.getModel()) for copy in copies]
    try:
        trained = dict(sc.parallelize(range(len(copies)), len(copies))
                       .mapPartitions(_train_task(data, files, jobs, found)).collect())
    except Exception as error:  # noqa: BLE001 - bad data as a DataFrameError, the rest as it is
        raise_data_error(error)
    finally:
        data.unpersist()
        files.unpersist()
    from ember.engine.config import get_rng_state, set_rng_state
    from ember.layers.serialization import load_model

    state = get_rng_state()  # building the loaded models draws initial weights: the user's stream is kept
    try:
        models = [copy._copyValues(copy._model_class(load_model(io.BytesIO(trained[index]), found[index],
                                                                 compile=False)))
                  for index, copy in enumerate(copies)]
    finally:
        set_rng_state(state)
    return models


def label_shape(labels, model, criterion):
    """(1,) where one scalar label column meets a model of one output (a regression's ``mse`` compares
    (rows, 1) with (rows, 1)); else None (labels as they come; sparse class ids stay (rows,))."""
    from ember.zoo.pipeline.inference import output_width

    sparse = "sparse" in getattr(criterion, "name", str(criterion))
    return (1,) if isinstance(labels, str) and output_width(model) == 1 and not sparse else None


def _job(estimator, shape, seed):
    """What one task needs to train ``estimator``'s model (the loss and a fresh optimization method travel
    pickled with the task)."""
    from ember.optim.triggers import MaxEpoch

    return {"criterion": estimator.getCriterion(), "method": estimator._optim_method(),
            "end": estimator._end_when or MaxEpoch(estimator.getMaxEpoch()),
            "batch_size": int(estimator.getBatchSize()), "shape": shape, "seed": seed,
            "label_shape": label_shape(estimator.getLabelCol(), estimator.getModel(), estimator.getCriterion()),
            "clip": estimator.getOrDefault(estimator.gradientClipL2Norm)
            if estimator.isDefined(estimator.gradientClipL2Norm) else None}


def _train_task(data, files, jobs, found):
    """The function each task runs: train the models of its indexes locally, yield (index, model file)."""

    def run(indexes):
        from ember.engine.config import set_seed
        from ember.layers.serialization import load_model
        from ember.optim import Optimizer
        from ember.zoo.pipeline.inference import model_file_bytes

        x, y = data.value
        for index in indexes:
            job = jobs[index]
            model = load_model(io.BytesIO(files.value[index]), found[index], compile=False)
            inputs = x if job["shape"] is None else x.reshape((len(x),) + tuple(job["shape"]))
            labels = y if job["label_shape"] is None else y.reshape((len(y),) + tuple(job["label_shape"]))
            set_seed(job["seed"])
            opt = Optimizer(model, (inputs, labels), job["criterion"], job["method"], job["end"], job["batch_size"])
            if job["clip"] is not None:
                opt.set_gradclip_l2norm(job["clip"])
            opt.set_progress(0, quiet=True)  # a task's epoch lines would reach the driver's log as noise
            opt.optimize()
            yield index, model_file_bytes(model)

    return run
