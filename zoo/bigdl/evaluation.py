"""BigDL's inference calls on an RDD of Samples: ``model.evaluate(rdd, batch_size, [Top1Accuracy()])``,
``model.predict(rdd)`` and ``model.predict_class(rdd)``, run on the executors (the model travels once per
executor in a broadcast, as ``ember.zoo.pipeline`` ships it).

Class ids count from 1 in BigDL: ``evaluate`` reads the labels as 1-based and ``predict_class`` returns
1-based ids unless ``label_base=0`` is given (the same switch as BigDL's criteria in ``ember.nn``).
"""
import types

import numpy as np

from ember.optim import validation as validation_module
from ember.optim.dataset import ArrayDataset, check_batch_size
from ember.optim.loop import evaluate_dataset, predict_arrays
from ember.optim.spark.trainer import stack_samples


class EvaluatedResult:
    """One validation method's result over the whole RDD (BigDL's ``EvaluatedResult``)."""

    def __init__(self, result, total_num, method):
        self.result, self.total_num, self.method = result, total_num, method

    def __repr__(self):
        return f"Evaluated result: {self.result}, total_num: {self.total_num}, method: {self.method}"


def _shipment(model, rdd):
    from ember.zoo.pipeline.inference import ModelShipment

    return ModelShipment(model, types.SimpleNamespace(sparkContext=rdd.context))


def _features(samples):
    """The feature batch of a partition's records: (features, label) samples or bare feature arrays."""
    if samples and isinstance(samples[0], tuple) and len(samples[0]) == 2:
        return stack_samples(samples)[0]
    return np.stack([np.asarray(s) for s in samples])


def evaluate_rdd(model, rdd, batch_size, methods, label_base=1):
    """BigDL's ``model.evaluate(val_rdd, batch_size, val_methods)``: a list of ``EvaluatedResult``, one per method.

    Example:
        >>> results = model.evaluate(test_rdd, 128, [Top1Accuracy()])   # doctest: +SKIP
        >>> print(results[0])                                            # doctest: +SKIP
        Evaluated result: 0.9801, total_num: 10000, method: Top1Accuracy
    """
    batch_size = check_batch_size(batch_size)
    if not methods:
        raise ValueError("evaluate: give the validation methods, e.g. model.evaluate(rdd, 128, [Top1Accuracy()])")
    methods = [validation_module.get(m) for m in methods]
    shipment = _shipment(model, rdd)
    base = int(label_base)

    def run(iterator):
        samples = list(iterator)
        if not samples:
            return
        x, y = stack_samples(samples)
        y = np.asarray(y)
        if base and y.size and np.issubdtype(y.dtype, np.number) and y.min() < base:
            raise ValueError(f"evaluate: labels count from {base} in BigDL's evaluate (label_base={base}), got a "
                             f"label {y.min()}; pass label_base=0 for 0-based labels")
        local = shipment.load()
        local.eval()
        yield evaluate_dataset(local, ArrayDataset(x, y - base), batch_size, methods)

    parts = rdd.mapPartitions(run).collect()
    if not parts:
        raise ValueError("evaluate: the RDD holds no samples")
    totals = [sum((p[k] for p in parts), None) for k in range(len(methods))]
    return [EvaluatedResult(r.result()[0], r.result()[1], type(m).__name__) for r, m in zip(totals, methods)]


def predict_rdd(model, rdd, batch_size=32):
    """BigDL's ``model.predict(rdd)``: an RDD with the model's output (an array) for each sample."""
    batch_size = check_batch_size(batch_size)
    shipment = _shipment(model, rdd)

    def run(iterator):
        samples = list(iterator)
        if not samples:
            return
        local = shipment.load()
        local.eval()
        out = predict_arrays(local, _features(samples), batch_size)
        yield from (out if not isinstance(out, list) else zip(*out))

    return rdd.mapPartitions(run)


def class_ids(outputs, label_base=1):
    """The argmax of each output row (output > 0.5 for a single column), plus ``label_base``."""
    out = np.asarray(outputs)
    if out.ndim == 1 or out.shape[-1] == 1:
        ids = (out.reshape(len(out), -1)[:, 0] > 0.5).astype(np.int64)
    else:
        ids = out.argmax(axis=-1)
    return ids + int(label_base)


def predict_class(model, data, batch_size=32, label_base=1):
    """BigDL's ``model.predict_class(data)``: class ids, 1-based as BigDL's (``label_base=0`` for 0-based); an
    RDD of ints for an RDD of Samples, else a NumPy array."""
    if hasattr(data, "mapPartitions"):
        base = int(label_base)
        return predict_rdd(model, data, batch_size).map(lambda out: int(class_ids(out[None], base)[0]))
    out = model.predict(data, batch_size)
    return class_ids(out[0] if isinstance(out, list) else out, label_base)
