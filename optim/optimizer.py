"""BigDL's entry point: ``Optimizer(model, training_set, criterion, optim_method, end_trigger, batch_size)``,
the one place that picks the step engine from the training data:

- ``(x, y)`` NumPy arrays (lists of arrays for several inputs/outputs) or an ``ArrayDataset``: in this
  process (``LocalOptimizer``, ``optim/local.py``);
- a Spark RDD of ``(features, label)`` samples, or a DataFrame (``feature_cols``/``label_cols``): on
  Spark (``DistriOptimizer``, ``optim/spark/engine.py``).

Both are the same ``TrainingLoop`` (``optim/loop.py``) with the same setters, History, summaries,
checkpoints and progress lines; only the steps run elsewhere.
"""
import functools

import numpy as np

from ember.optim.dataset import ArrayDataset, is_spark_data
from ember.optim.local import LocalEngine, is_local_data
from ember.optim.loop import TrainingLoop
from ember.optim.stream import StreamEngine, is_batch_source


class _BigDLArguments:
    """BigDL's spellings of two setters: ``set_validation(batch_size, val_rdd=..., trigger, val_method)`` and
    ``set_checkpoint(trigger, path)`` (BigDL's argument order) beside ``set_checkpoint(path, trigger)``."""

    def set_validation(self, batch_size, val_set=None, trigger=None, val_method=None, val_rdd=None):
        if (val_set is None) == (val_rdd is None):
            raise TypeError("set_validation: give the validation set once, as val_set (or BigDL's val_rdd)")
        data = val_set if val_rdd is None else val_rdd
        if getattr(self, "label_base", 0):
            data = shift_labels(data, self.label_base)
        return super().set_validation(batch_size, data, trigger, val_method)

    def set_checkpoint(self, path, trigger=None, overwrite=False, isOverWrite=None):  # noqa: N803 - BigDL's name
        from ember.optim.triggers import Trigger

        if isinstance(path, Trigger):  # BigDL's order: set_checkpoint(trigger, path)
            path, trigger = trigger, path
        return super().set_checkpoint(path, trigger, overwrite if isOverWrite is None else isOverWrite)


class LocalOptimizer(_BigDLArguments, TrainingLoop):
    """Trains on this machine, one mini-batch after another (BigDL's LocalOptimizer).

    Example:
        >>> import numpy as np, ember
        >>> from ember.layers import Dense
        >>> from ember.optim import Optimizer, SGD, MaxEpoch
        >>> x = np.random.default_rng(0).normal(size=(64, 3)); y = (x.sum(1) > 0).astype(int)
        >>> model = ember.Sequential([Dense(2, activation="softmax", input_shape=(3,))])
        >>> opt = Optimizer(model, (x, y), "sparse_categorical_crossentropy", SGD(0.1), MaxEpoch(2), 16)
        >>> opt.set_progress(0).optimize() is model
        True
    """

    def __init__(self, model, training_set, criterion, optim_method=None, end_trigger=None, batch_size=32):
        engine = StreamEngine(training_set) if is_batch_source(training_set) else LocalEngine(training_set)
        super().__init__(model, engine, criterion, optim_method, end_trigger, batch_size)


class DistriOptimizer(_BigDLArguments, TrainingLoop):
    """Trains on a Spark RDD of ``(features, label)`` samples (or a DataFrame) by synchronous
    data-parallel SGD, parameters exchanged in blocks (BigDL's DistriOptimizer). Same setters as the
    local one, plus ``set_compression`` and ``set_drop_module_property``. ``Optimizer(...)`` makes one
    when given Spark data.

    Args:
        model, criterion, optim_method, end_trigger, batch_size: as in ``Optimizer``.
        training_set: a Spark RDD of ``(features, label)`` samples, or a DataFrame.
        feature_cols, label_cols: a DataFrame's columns (default "features" and "label").

    Example (the lines marked SKIP start Spark, a JVM, so they do not run as doctests):
        >>> import numpy as np, ember
        >>> from ember.layers import Dense
        >>> from ember.optim import Optimizer, SGD, MaxEpoch
        >>> ember.set_seed(0)
        >>> x = np.random.default_rng(0).normal(size=(64, 3)).astype("float32")
        >>> y = (x.sum(1) > 0).astype(int)
        >>> model = ember.Sequential([Dense(2, activation="softmax", input_shape=(3,))])
        >>> sc = ember.init_nncontext(master="local[2]")  # doctest: +SKIP
        >>> rdd = sc.parallelize(list(zip(x, y)), 2)  # doctest: +SKIP
        >>> opt = Optimizer(model, rdd, "sparse_categorical_crossentropy", SGD(0.5), MaxEpoch(5), 16)  # doctest: +SKIP
        >>> type(opt).__name__  # doctest: +SKIP
        'DistriOptimizer'
        >>> opt.set_progress(0).optimize() is model  # doctest: +SKIP
        True
    """

    def __init__(self, model, training_set, criterion, optim_method=None, end_trigger=None, batch_size=32,
                 feature_cols=None, label_cols=None):
        from ember.optim.spark.engine import SparkEngine

        holders = model.loss_function_holders() if hasattr(model, "loss_function_holders") else []
        if holders:
            raise ValueError(f"training on Spark: layer(s) {holders} hold add_loss functions (add_loss(lambda: ...)), "
                             "which the executors' copies of the model cannot carry; add the loss inside a layer's "
                             "call() (self.add_loss(tensor)), as a symbolic tensor of the model, or as a regularizer")
        engine = SparkEngine(training_set, feature_cols, label_cols)
        super().__init__(model, engine, criterion, optim_method, end_trigger, batch_size)

    @property
    def trainers(self):
        return self.engine.trainers

    @property
    def timings(self):
        """Seconds spent planning (counting and grouping the data), in training jobs and in validation; on Spark
        also ``loops_s``: the slowest trainer's iteration loops summed over the jobs (``jobs_s - loops_s`` is the
        jobs' one-time start and finish)."""
        return self.engine.timings

    @property
    def iteration_records(self):
        """Per iteration: loss, the slowest trainer's compute and synchronisation seconds, samples dropped; on
        Spark also ``iteration_s`` (the slowest trainer's compute + synchronisation) and the synchronisation's
        phases ``pull_s``, ``push_s``, ``reduce_s``, ``update_s`` (each the slowest trainer's)."""
        return self.engine.iteration_records


def Optimizer(model, training_set=None, criterion=None, optim_method=None, end_trigger=None,  # noqa: N802
              batch_size=32, feature_cols=None, label_cols=None, training_rdd=None):
    """An optimizer suited to ``training_set``: a ``LocalOptimizer`` for arrays, a ``DistriOptimizer``
    for a Spark RDD or DataFrame (see the module docstring).

    Args:
        model: an ember model (Sequential, Model or any layer with weights).
        training_set: ``(x, y)`` NumPy arrays, an ArrayDataset, a Spark RDD of (features, label) samples,
            a DataFrame, or batches one at a time (a generator, or a ``keras.utils.Sequence``; see
            ``optim/stream.py``).
        criterion: a loss (name, class instance, or a list with one per output).
        optim_method: an ember.optim method (default SGD(0.01)).
        end_trigger: when to stop (default MaxEpoch(1)).
        batch_size: the global mini-batch size (any size >= 1, whatever the partition count).
        feature_cols, label_cols: a DataFrame's columns (default "features" and "label").
        training_rdd: BigDL's name for ``training_set``.

    A criterion with ``label_base=1`` (BigDL's ClassNLLCriterion, CrossEntropyCriterion from ``ember.nn``)
    says the labels count from 1: they are shifted to 0-based here, for training and validation alike.

    Example:
        >>> import numpy as np, ember
        >>> from ember.layers import Dense
        >>> from ember.optim import Optimizer, SGD, MaxEpoch
        >>> ember.set_seed(0)
        >>> x = np.random.default_rng(0).normal(size=(64, 3)).astype("float32")
        >>> y = (x.sum(1) > 0).astype(int)
        >>> model = ember.Sequential([Dense(2, activation="softmax", input_shape=(3,))])
        >>> opt = Optimizer(model, (x, y), "sparse_categorical_crossentropy", SGD(0.5), MaxEpoch(5), batch_size=16)
        >>> type(opt).__name__
        'LocalOptimizer'
        >>> trained = opt.set_progress(0).optimize()
        >>> opt.state["epoch"], opt.state["iteration"]
        (6, 20)
        >>> bool((trained.predict(x, verbose=0).argmax(1) == y).mean() > 0.9)
        True
    """
    if (training_set is None) == (training_rdd is None):
        raise TypeError("Optimizer: give the training data once, as training_set (or BigDL's training_rdd)")
    if criterion is None:
        raise TypeError("Optimizer: give a criterion (a loss name or object)")
    training_set = training_rdd if training_set is None else training_set
    base = getattr(criterion, "label_base", 0)
    if base:
        training_set = shift_labels(training_set, base)
        criterion = criterion.zero_based()
    if is_local_data(training_set) or _is_batch_source(training_set):
        optimizer = LocalOptimizer(model, training_set, criterion, optim_method, end_trigger, batch_size)
    elif is_spark_data(training_set):
        optimizer = DistriOptimizer(model, training_set, criterion, optim_method, end_trigger, batch_size,
                                    feature_cols, label_cols)
    else:
        optimizer = None
    if optimizer is not None:
        optimizer.label_base = base
        return optimizer
    raise TypeError(f"Optimizer: training_set must be (x, y) NumPy arrays, an ArrayDataset, a Spark RDD of "
                    f"(features, label) samples or a DataFrame, got {type(training_set).__name__}")


def create(model, training_set, criterion, end_trigger=None, batch_size=32, optim_method=None, cores=None,
           bigdl_type="float"):
    """BigDL's factory ``Optimizer.create(model, training_set, criterion, end_trigger, batch_size, optim_method)``
    (its argument order): a local optimizer for ``(features, labels)`` arrays, a distributed one for an RDD of
    Samples, as ``Optimizer(...)`` picks. ``cores`` and ``bigdl_type`` are accepted and unused (the local
    engine uses the machine's threads; ember trains in the model's dtype).

    Example:
        >>> import numpy as np, ember
        >>> from ember.layers import Dense
        >>> from ember.optim import Optimizer, SGD, MaxEpoch
        >>> x = np.random.default_rng(0).normal(size=(32, 3)); y = (x[:, 0] > 0).astype(int)
        >>> model = ember.Sequential([Dense(2, activation="softmax", input_shape=(3,))])
        >>> opt = Optimizer.create(model, (x, y), "sparse_categorical_crossentropy", MaxEpoch(1), 8, SGD(0.1))
        >>> type(opt).__name__
        'LocalOptimizer'
    """
    if cores is not None and (int(cores) != cores or cores < 1):
        raise ValueError(f"Optimizer.create: cores must be an integer >= 1, got {cores!r}")
    return Optimizer(model, training_set, criterion, optim_method, end_trigger, batch_size)


Optimizer.create = create


def _is_batch_source(data):
    return not is_spark_data(data) and is_batch_source(data)


def _shift_sample(sample, base):
    x, y = sample
    return x, np.asarray(y) - base


def shift_labels(data, base):
    """``data`` ((x, y) arrays, an ArrayDataset or an RDD of (features, label) samples) with ``base``
    subtracted from the labels (BigDL's 1-based class ids to ember's 0-based ones)."""
    if is_spark_data(data):
        if not hasattr(data, "mapPartitions"):
            raise TypeError("label_base=1 takes arrays or an RDD of samples; shift a DataFrame's label column first")
        return data.map(functools.partial(_shift_sample, base=base))
    if isinstance(data, ArrayDataset):
        if data.y is None or len(data.y) != 1:
            raise ValueError("label_base=1 needs exactly one label array")
        return ArrayDataset(data.x if data.x_is_list else data.x[0], data.y[0] - base)
    if isinstance(data, tuple) and len(data) == 2:
        return data[0], np.asarray(data[1]) - base
    raise TypeError(f"label_base=1: expected (x, y) arrays, an ArrayDataset or an RDD, got {type(data).__name__}")
