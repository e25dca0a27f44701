"""BigDL's entry point: ``Optimizer(model, training_set, criterion, optim_method, end_trigger, batch_size)``,
the one place that picks the step engine from the training data:

- ``(x, y)`` NumPy arrays (lists of arrays for several inputs/outputs) or an ``ArrayDataset``: in this
  process (``LocalOptimizer``, ``optim/local.py``);
- a Spark RDD of ``(features, label)`` samples, or a DataFrame (``feature_cols``/``label_cols``): on
  Spark (``DistriOptimizer``, ``optim/spark/engine.py``).

Both are the same ``TrainingLoop`` (``optim/loop.py``) with the same setters, History, summaries,
checkpoints and progress lines; only the steps run elsewhere.
"""
from ember.optim.dataset import is_spark_data
from ember.optim.local import LocalEngine, is_local_data
from ember.optim.loop import TrainingLoop


class LocalOptimizer(TrainingLoop):
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
        super().__init__(model, LocalEngine(training_set), criterion, optim_method, end_trigger, batch_size)


class DistriOptimizer(TrainingLoop):
    """Trains on a Spark RDD of ``(features, label)`` samples (or a DataFrame) by synchronous
    data-parallel SGD, parameters exchanged in blocks (BigDL's DistriOptimizer). Same setters as the
    local one, plus ``set_compression`` and ``set_drop_module_property``."""

    def __init__(self, model, training_set, criterion, optim_method=None, end_trigger=None, batch_size=32,
                 feature_cols=None, label_cols=None):
        from ember.optim.spark.engine import SparkEngine

        engine = SparkEngine(training_set, feature_cols, label_cols)
        super().__init__(model, engine, criterion, optim_method, end_trigger, batch_size)

    @property
    def trainers(self):
        return self.engine.trainers

    @property
    def timings(self):
        """Seconds spent planning (counting and grouping the data), in training jobs and in validation."""
        return self.engine.timings

    @property
    def iteration_records(self):
        """Per iteration: loss, the slowest trainer's compute and synchronisation seconds, samples dropped."""
        return self.engine.iteration_records


def Optimizer(model, training_set, criterion, optim_method=None, end_trigger=None, batch_size=32,  # noqa: N802
              feature_cols=None, label_cols=None):
    """An optimizer suited to ``training_set`` (see the module docstring).

    Args:
        model: an ember model (Sequential, Model or any layer with weights).
        training_set: ``(x, y)`` NumPy arrays, an ArrayDataset, a Spark RDD of (features, label) samples,
            or a DataFrame.
        criterion: a loss (name, class instance, or a list with one per output).
        optim_method: an ember.optim method (default SGD(0.01)).
        end_trigger: when to stop (default MaxEpoch(1)).
        batch_size: the global mini-batch size (any size >= 1, whatever the partition count).
        feature_cols, label_cols: a DataFrame's columns (default "features" and "label").
    """
    if is_local_data(training_set):
        return LocalOptimizer(model, training_set, criterion, optim_method, end_trigger, batch_size)
    if is_spark_data(training_set):
        return DistriOptimizer(model, training_set, criterion, optim_method, end_trigger, batch_size,
                               feature_cols, label_cols)
    raise TypeError(f"Optimizer: training_set must be (x, y) NumPy arrays, an ArrayDataset, a Spark RDD of "
                    f"(features, label) samples or a DataFrame, got {type(training_set).__name__}")
