"""BigDL's criteria (``bigdl.nn.criterion``) as ember losses.

Class labels count from 1 in BigDL: ``ClassNLLCriterion`` and ``CrossEntropyCriterion`` take
``label_base=1`` by default, and ``ember.optim.Optimizer`` shifts such labels to 0-based for training
and validation alike. Pass ``label_base=0`` for 0-based labels.

Example:
    >>> import numpy as np
    >>> from ember.nn.criterion import ClassNLLCriterion
    >>> logp = np.log(np.array([[0.5, 0.5], [0.1, 0.9]]))
    >>> round(ClassNLLCriterion()(np.array([1, 2]), logp).item(), 4)
    0.4
"""
import numpy as np

from ember.engine import functional as F
from ember.engine.tensor import Tensor
from ember.layers import losses


def _labels(name, y_true, classes, base):
    labels = np.asarray(y_true.data if isinstance(y_true, Tensor) else y_true).reshape(-1)
    if labels.dtype.kind == "f" and not np.all(labels == np.floor(labels)):
        raise ValueError(f"{name}: labels must be integer class ids")
    labels = labels.astype(np.int64) - base
    if labels.size and (labels.min() < 0 or labels.max() >= classes):
        raise ValueError(f"{name}: labels must be in [{base}, {classes + base}) (label_base={base}), got range "
                         f"[{labels.min() + base}, {labels.max() + base}]")
    return labels


class ClassNLLCriterion(losses.Loss):
    """Negative log-likelihood of log-probabilities (Torch's): mean of -input[label] (``logProbAsInput=True``),
    or of -log(input[label]) for probabilities."""

    name = "class_nll"

    def __init__(self, weights=None, size_average=True, logProbAsInput=True, label_base=1):  # noqa: N803
        if weights is not None:
            raise ValueError("ClassNLLCriterion: class weights are not supported")
        self.size_average, self.log_prob_as_input, self.label_base = bool(size_average), logProbAsInput, label_base

    def zero_based(self):
        return ClassNLLCriterion(None, self.size_average, self.log_prob_as_input, 0)

    def call(self, y_true, y_pred):
        labels = _labels("ClassNLLCriterion", y_true, y_pred.shape[-1], self.label_base)
        logp = y_pred if self.log_prob_as_input else F.log(F.clip(y_pred, losses.EPSILON, 1.0))
        picked = F.reshape(logp, (-1, y_pred.shape[-1]))[np.arange(labels.size), labels]
        return -(F.mean(picked) if self.size_average else F.sum(picked))

    def get_config(self):
        return {"size_average": self.size_average, "logProbAsInput": self.log_prob_as_input,
                "label_base": self.label_base}


class CrossEntropyCriterion(losses.Loss):
    """Softmax cross-entropy of unnormalised scores against class ids (Torch's CrossEntropyCriterion)."""

    name = "cross_entropy"

    def __init__(self, weights=None, size_average=True, label_base=1):
        if weights is not None or not size_average:
            raise ValueError("CrossEntropyCriterion: only weights=None and size_average=True are supported")
        self.label_base = label_base

    def zero_based(self):
        return CrossEntropyCriterion(label_base=0)

    def call(self, y_true, y_pred):
        labels = _labels("CrossEntropyCriterion", y_true, y_pred.shape[-1], self.label_base)
        return losses.SparseCategoricalCrossentropy(from_logits=True)(labels, y_pred)

    def get_config(self):
        return {"label_base": self.label_base}


def MSECriterion(size_average=True):  # noqa: N802 - BigDL's name
    """Mean squared error."""
    return losses.MeanSquaredError()


def BCECriterion(weights=None, size_average=True):  # noqa: N802
    """Binary cross-entropy of probabilities."""
    return losses.BinaryCrossentropy()
