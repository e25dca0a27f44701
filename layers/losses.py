"""Losses with Keras names: each maps (y_true, y_pred) to the batch mean as a scalar Tensor.

Cross-entropies on logits use log-softmax / softplus forms, which never overflow.
"""
import numpy as np

from ember.engine import functional as F
from ember.engine.ops.activation import Softmax, SoftmaxCrossEntropy
from ember.engine.tensor import Tensor

EPSILON = 1e-7


def _target(y_true, like):
    data = y_true.data if isinstance(y_true, Tensor) else np.asarray(y_true)
    return Tensor(data.astype(like.dtype, copy=False))


def _check_same_shape(name, y_true, y_pred):
    if tuple(y_true.shape) != tuple(y_pred.shape):
        raise ValueError(f"{name}: y_true shape {tuple(y_true.shape)} must equal y_pred shape {tuple(y_pred.shape)}")


class Loss:
    """Base class: ``loss(y_true, y_pred)`` -> scalar Tensor (mean over the batch)."""

    name = None

    def __call__(self, y_true, y_pred):
        if not isinstance(y_pred, Tensor):
            y_pred = Tensor(y_pred)
        return self.call(y_true, y_pred)

    def get_config(self):
        return {}

    def __repr__(self):
        return f"{type(self).__name__}({self.get_config()})"


def _softmax_logits(y_pred):
    """The input of the softmax that produced ``y_pred`` (over the last axis), or None."""
    ctx = y_pred._ctx
    if isinstance(ctx, Softmax) and ctx.axis in (-1, y_pred.ndim - 1):
        return ctx.parents[0]
    return None


class SparseCategoricalCrossentropy(Loss):
    """-log p[label]; labels are 0-based integers of shape (batch,) or (batch, 1).

    Args:
        from_logits: ``y_pred`` are unnormalised scores (recommended; log-softmax is used).
    """

    name = "sparse_categorical_crossentropy"

    def __init__(self, from_logits=False):
        self.from_logits = from_logits

    def call(self, y_true, y_pred):
        labels = np.asarray(y_true.data if isinstance(y_true, Tensor) else y_true)
        if labels.ndim == y_pred.ndim and labels.shape[-1] == 1:
            labels = labels[..., 0]
        if labels.shape != tuple(y_pred.shape[:-1]):
            raise ValueError(f"{self.name}: labels of shape {labels.shape} do not match predictions "
                             f"{tuple(y_pred.shape)}; expected shape {tuple(y_pred.shape[:-1])}")
        if labels.dtype.kind == "f":
            if not np.all(labels == np.floor(labels)):
                raise ValueError(f"{self.name}: labels must be integer class ids, got non-integral values")
        elif labels.dtype.kind not in "iu":
            raise TypeError(f"{self.name}: labels must be integer class ids, got dtype {labels.dtype}")
        labels = labels.astype(np.int64)
        classes = y_pred.shape[-1]
        if labels.size and (labels.min() < 0 or labels.max() >= classes):
            raise ValueError(f"{self.name}: labels must be in [0, {classes}) (0-based), got range "
                             f"[{labels.min()}, {labels.max()}]")
        logits = y_pred if self.from_logits else _softmax_logits(y_pred)
        if logits is not None:
            # NOTE: on a softmax output the loss is taken from that softmax's logits (as Keras does
            # on TensorFlow): the same value without clipping, and the exact gradient p - onehot.
            return SoftmaxCrossEntropy.apply(F.reshape(logits, (-1, classes)), labels=labels.reshape(-1))
        p = y_pred / F.sum(y_pred, axis=-1, keepdims=True)
        logp = F.log(F.clip(p, EPSILON, 1 - EPSILON))
        flat = F.reshape(logp, (-1, classes))
        picked = flat[np.arange(flat.shape[0]), labels.reshape(-1)]
        return -F.mean(picked)

    def get_config(self):
        return {"from_logits": self.from_logits}


class CategoricalCrossentropy(Loss):
    """-sum(y_true * log p) over classes; ``y_true`` one-hot (or soft) of the same shape."""

    name = "categorical_crossentropy"

    def __init__(self, from_logits=False):
        self.from_logits = from_logits

    def call(self, y_true, y_pred):
        y = _target(y_true, y_pred)
        _check_same_shape(self.name, y, y_pred)
        if self.from_logits:
            logp = F.log_softmax(y_pred, axis=-1)
        else:
            p = y_pred / F.sum(y_pred, axis=-1, keepdims=True)
            logp = F.log(F.clip(p, EPSILON, 1 - EPSILON))
        return -F.mean(F.sum(y * logp, axis=-1))

    def get_config(self):
        return {"from_logits": self.from_logits}


class BinaryCrossentropy(Loss):
    """-(y log p + (1 - y) log(1 - p)), averaged over the last axis then the batch."""

    name = "binary_crossentropy"

    def __init__(self, from_logits=False):
        self.from_logits = from_logits

    def call(self, y_true, y_pred):
        y = _target(y_true, y_pred)
        _check_same_shape(self.name, y, y_pred)
        if self.from_logits:
            # max(x, 0) - x*y + log(1 + exp(-|x|))
            per = F.relu(y_pred) - y_pred * y + F.softplus(-F.abs(y_pred))
        else:
            p = F.clip(y_pred, EPSILON, 1 - EPSILON)
            per = -(y * F.log(p) + (1 - y) * F.log(1 - p))
        return F.mean(per)

    def get_config(self):
        return {"from_logits": self.from_logits}


class MeanSquaredError(Loss):
    name = "mean_squared_error"

    def call(self, y_true, y_pred):
        y = _target(y_true, y_pred)
        _check_same_shape(self.name, y, y_pred)
        d = y_pred - y
        return F.mean(d * d)


class MeanAbsoluteError(Loss):
    name = "mean_absolute_error"

    def call(self, y_true, y_pred):
        y = _target(y_true, y_pred)
        _check_same_shape(self.name, y, y_pred)
        return F.mean(F.abs(y_pred - y))


class Huber(Loss):
    """0.5 d^2 where |d| <= delta, else delta * (|d| - 0.5 delta)."""

    name = "huber"

    def __init__(self, delta=1.0):
        self.delta = float(delta)

    def call(self, y_true, y_pred):
        y = _target(y_true, y_pred)
        _check_same_shape(self.name, y, y_pred)
        a = F.abs(y_pred - y)
        quad = F.minimum(a, Tensor(np.asarray(self.delta, dtype=y_pred.dtype)))
        return F.mean(quad * quad * 0.5 + (a - quad) * self.delta)

    def get_config(self):
        return {"delta": self.delta}


class KLDivergence(Loss):
    """sum(y_true * log(y_true / y_pred)) over the last axis, both clipped to [eps, 1]."""

    name = "kl_divergence"

    def call(self, y_true, y_pred):
        y = _target(y_true, y_pred)
        _check_same_shape(self.name, y, y_pred)
        yc = F.clip(y, EPSILON, 1.0)
        pc = F.clip(y_pred, EPSILON, 1.0)
        return F.mean(F.sum(yc * F.log(yc / pc), axis=-1))


class Hinge(Loss):
    """mean(max(1 - y_true * y_pred, 0)); labels in {0, 1} are mapped to {-1, 1} (Keras)."""

    name = "hinge"

    def call(self, y_true, y_pred):
        y = _target(y_true, y_pred)
        _check_same_shape(self.name, y, y_pred)
        data = y.data
        if np.all((data == 0) | (data == 1)):
            y = Tensor(2 * data - 1)
        return F.mean(F.relu(1 - y * y_pred))


_BY_NAME = {cls.name: cls for cls in (SparseCategoricalCrossentropy, CategoricalCrossentropy, BinaryCrossentropy,
                                      MeanSquaredError, MeanAbsoluteError, Huber, KLDivergence, Hinge)}
_ALIASES = {"mse": "mean_squared_error", "mae": "mean_absolute_error", "kld": "kl_divergence",
            "kullback_leibler_divergence": "kl_divergence", "huber_loss": "huber"}


def get(identifier):
    """A Loss from a Keras name (``"sparse_categorical_crossentropy"``), an instance or a function."""
    if isinstance(identifier, Loss) or (callable(identifier) and not isinstance(identifier, type)):
        return identifier
    if isinstance(identifier, str):
        name = _ALIASES.get(identifier, identifier)
        if name not in _BY_NAME:
            raise ValueError(f"unknown loss {identifier!r}; expected one of {sorted(_BY_NAME)}")
        return _BY_NAME[name]()
    raise TypeError(f"loss must be a name or a Loss, got {identifier!r}")


def sparse_categorical_crossentropy(y_true, y_pred, from_logits=False):
    return SparseCategoricalCrossentropy(from_logits)(y_true, y_pred)


def categorical_crossentropy(y_true, y_pred, from_logits=False):
    return CategoricalCrossentropy(from_logits)(y_true, y_pred)


def binary_crossentropy(y_true, y_pred, from_logits=False):
    return BinaryCrossentropy(from_logits)(y_true, y_pred)


def mean_squared_error(y_true, y_pred):
    return MeanSquaredError()(y_true, y_pred)


def mean_absolute_error(y_true, y_pred):
    return MeanAbsoluteError()(y_true, y_pred)


def huber(y_true, y_pred, delta=1.0):
    return Huber(delta)(y_true, y_pred)


def kl_divergence(y_true, y_pred):
    return KLDivergence()(y_true, y_pred)


def hinge(y_true, y_pred):
    return Hinge()(y_true, y_pred)
