"""Losses with Keras names: each maps (y_true, y_pred) to the batch mean as a scalar Tensor.

Cross-entropies on logits use log-softmax / softplus forms, which never overflow. Every loss is a
class (``MeanSquaredError()``) and a function of the same name in snake case (``mean_squared_error``);
``get(name)`` gives the class's instance for a Keras name or alias ("mse", "mae", "kld", "huber_loss").

Example:
    >>> import numpy as np
    >>> from ember import losses
    >>> loss = losses.get("sparse_categorical_crossentropy")
    >>> round(loss(np.array([0, 2]), np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])).item(), 4)
    0.2899
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


def _check_probabilities(name, y_true):
    outside = ~((y_true.data >= 0) & (y_true.data <= 1))
    if outside.any():
        raise ValueError(f"{name}: targets must be in [0, 1]; got {float(y_true.data[outside].ravel()[0])} (for "
                         "class ids 0..K-1 use sparse_categorical_crossentropy)")


class Loss:
    """Base class: ``loss(y_true, y_pred)`` -> scalar Tensor (mean over the batch).

    A subclass sets ``name`` (its Keras name) and implements ``call(y_true, y_pred)`` with the engine's
    differentiable functions, so ``backward()`` on the result reaches the model's parameters.

    Example:
        >>> import numpy as np
        >>> from ember.engine import functional as F
        >>> from ember.layers.losses import Loss
        >>> class MeanFourthPower(Loss):
        ...     name = "mean_fourth_power"
        ...     def call(self, y_true, y_pred):
        ...         d = y_pred - np.asarray(y_true, dtype=y_pred.dtype)
        ...         return F.mean(d * d * d * d)
        >>> MeanFourthPower()(np.zeros(2), np.array([1.0, 2.0])).item()
        8.5
    """

    name = None

    def __call__(self, y_true, y_pred, sample_weight=None):
        """The batch loss; with ``sample_weight`` (one weight per sample) Keras's weighted form:
        ``sum(per_sample * sample_weight) / number of per-sample values``."""
        if not isinstance(y_pred, Tensor):
            y_pred = Tensor(y_pred)
        if sample_weight is None:
            return self.call(y_true, y_pred)
        return weighted_mean(self.per_sample(y_true, y_pred), sample_weight, self.name)

    def call(self, y_true, y_pred):
        """The loss of ``y_pred`` (a Tensor) against ``y_true``, as a scalar Tensor; subclasses implement it."""
        raise NotImplementedError(f"{type(self).__name__} must implement call(y_true, y_pred)")

    def per_sample(self, y_true, y_pred):
        """The loss of each sample (reduced over the last axis only, as Keras's loss functions return it), a
        Tensor of shape ``y_pred.shape[:-1]``; needed for ``sample_weight``."""
        raise NotImplementedError(f"{type(self).__name__} gives no per-sample losses (per_sample), so it cannot "
                                  "take sample_weight or class_weight; implement per_sample(y_true, y_pred)")

    def get_config(self):
        """The constructor's arguments as a dict (what ``repr`` shows and a saved model stores)."""
        return {}

    def __repr__(self):
        return f"{type(self).__name__}({self.get_config()})"


def weighted_mean(values, sample_weight, name="loss"):
    """``sum(values * w) / values.size`` with ``w`` (one weight per sample) broadcast over the trailing
    axes of ``values`` (Keras's "sum_over_batch_size" reduction with sample weights).

    Example:
        >>> import numpy as np
        >>> from ember import losses
        >>> per = losses.MeanSquaredError().per_sample(np.zeros((2, 2)), np.array([[1.0, 1.0], [2.0, 0.0]]))
        >>> losses.weighted_mean(per, np.array([3.0, 0.5])).item()  # (3 * 1 + 0.5 * 2) / 2
        2.0
    """
    w = np.asarray(sample_weight.data if isinstance(sample_weight, Tensor) else sample_weight, dtype=values.dtype)
    if w.ndim == values.ndim + 1 and w.shape[-1] == 1:
        w = w[..., 0]
    if values.ndim == 0 or w.ndim > values.ndim or tuple(w.shape) != tuple(values.shape[:w.ndim]):
        raise ValueError(f"{name}: sample_weight of shape {w.shape} does not fit per-sample losses of shape "
                         f"{tuple(values.shape)}; expected a loss giving one value per sample and one weight per "
                         "sample")
    w = w.reshape(w.shape + (1,) * (values.ndim - w.ndim))
    return F.sum(values * Tensor(w)) * (1.0 / max(values.size, 1))


class LossFunctionWrapper(Loss):
    """A loss written as a plain function ``fn(y_true, y_pred)`` (Keras's custom losses): ``y_true`` reaches it as
    a Tensor of ``y_pred``'s dtype, and its per-sample values are averaged over the batch (a scalar it returns
    is used as it is), as Keras does with the functions given to ``compile``.

    Example:
        >>> import numpy as np
        >>> from ember import backend as K
        >>> def mean_cube(y_true, y_pred):
        ...     return K.mean(K.abs(y_pred - y_true) * K.square(y_pred - y_true), axis=-1)
        >>> LossFunctionWrapper(mean_cube)(np.array([[0, 0]]), np.array([[1.0, 2.0]])).item()
        4.5
    """

    def __init__(self, fn):
        self.fn = fn
        self.name = getattr(fn, "__name__", "loss")

    def per_sample(self, y_true, y_pred):
        y = _target(y_true, y_pred)
        if y.ndim == y_pred.ndim - 1 and y_pred.shape[-1] == 1:  # labels (N,) against outputs (N, 1), as Keras
            y = Tensor(y.data.reshape(y_pred.shape))
        values = self.fn(y, y_pred)
        return values if isinstance(values, Tensor) else Tensor(np.asarray(values, dtype=y_pred.dtype))

    def call(self, y_true, y_pred):
        values = self.per_sample(y_true, y_pred)
        return values if values.ndim == 0 else F.mean(values)

    def __repr__(self):
        return f"LossFunctionWrapper({self.name})"


def _softmax_logits(y_pred):
    """The input of the softmax that produced ``y_pred`` (over the last axis), or None."""
    ctx = y_pred._ctx
    if isinstance(ctx, Softmax) and ctx.axis in (-1, y_pred.ndim - 1):
        return ctx.parents[0]
    return None


class SparseCategoricalCrossentropy(Loss):
    """Mean over the batch of -log p[label]: cross-entropy against integer class ids.

    Args:
        from_logits: ``y_pred`` are unnormalised scores (recommended; log-softmax is used). Otherwise
            ``y_pred`` are probabilities (rows are renormalised and clipped to [1e-7, 1 - 1e-7]); on the
            output of a softmax layer the loss is taken from that softmax's logits.

    Shape:
        ``y_true``: (batch,) or (batch, 1) 0-based integer labels; ``y_pred``: (batch, classes).

    Example:
        >>> import numpy as np
        >>> from ember import losses
        >>> logits = np.array([[2.0, 1.0, 0.1], [0.5, 0.2, 3.0]])
        >>> round(losses.SparseCategoricalCrossentropy(from_logits=True)(np.array([0, 2]), logits).item(), 4)
        0.2753
    """

    name = "sparse_categorical_crossentropy"

    def __init__(self, from_logits=False):
        self.from_logits = from_logits

    def _labels(self, y_true, y_pred):
        """The labels as 0-based int64 ids of shape ``y_pred.shape[:-1]``, checked."""
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
        return labels

    def call(self, y_true, y_pred):
        labels = self._labels(y_true, y_pred)
        logits = y_pred if self.from_logits else _softmax_logits(y_pred)
        if logits is not None:
            # NOTE: on a softmax output the loss is taken from that softmax's logits (as Keras does
            # on TensorFlow): the same value without clipping, and the exact gradient p - onehot.
            return SoftmaxCrossEntropy.apply(F.reshape(logits, (-1, y_pred.shape[-1])), labels=labels.reshape(-1))
        return -F.mean(self._picked_log_probabilities(y_pred, None, labels))

    @staticmethod
    def _picked_log_probabilities(y_pred, logits, labels):
        classes = y_pred.shape[-1]
        if logits is not None:
            logp = F.log_softmax(logits, axis=-1)
        else:
            p = y_pred / F.sum(y_pred, axis=-1, keepdims=True)
            logp = F.log(F.clip(p, EPSILON, 1 - EPSILON))
        flat = F.reshape(logp, (-1, classes))
        return flat[np.arange(flat.shape[0]), labels.reshape(-1)]

    def per_sample(self, y_true, y_pred):
        labels = self._labels(y_true, y_pred)
        logits = y_pred if self.from_logits else _softmax_logits(y_pred)
        picked = self._picked_log_probabilities(y_pred, logits, labels)
        return F.reshape(-picked, tuple(y_pred.shape[:-1]))

    def get_config(self):
        return {"from_logits": self.from_logits}


class CategoricalCrossentropy(Loss):
    """Mean over the batch of -sum(y_true * log p) over the classes (the last axis).

    Args:
        from_logits: ``y_pred`` are unnormalised scores (log-softmax is used); otherwise probabilities,
            renormalised and clipped to [1e-7, 1 - 1e-7].

    Shape:
        ``y_true`` one-hot (or soft) labels of the same shape as ``y_pred``, (batch, classes).

    Example:
        >>> import numpy as np
        >>> from ember import losses
        >>> onehot = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
        >>> round(losses.CategoricalCrossentropy()(onehot, np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])).item(), 4)
        0.2899
    """

    name = "categorical_crossentropy"

    def __init__(self, from_logits=False):
        self.from_logits = from_logits

    def call(self, y_true, y_pred):
        return F.mean(self.per_sample(y_true, y_pred))

    def per_sample(self, y_true, y_pred):
        y = _target(y_true, y_pred)
        _check_same_shape(self.name, y, y_pred)
        _check_probabilities(self.name, y)
        if self.from_logits:
            logp = F.log_softmax(y_pred, axis=-1)
        else:
            p = y_pred / F.sum(y_pred, axis=-1, keepdims=True)
            logp = F.log(F.clip(p, EPSILON, 1 - EPSILON))
        return -F.sum(y * logp, axis=-1)

    def get_config(self):
        return {"from_logits": self.from_logits}


class BinaryCrossentropy(Loss):
    """-(y log p + (1 - y) log(1 - p)), averaged over every element.

    Args:
        from_logits: ``y_pred`` are scores x with p = sigmoid(x) (computed as max(x, 0) - x y +
            log(1 + exp(-|x|)), which never overflows); otherwise probabilities clipped to [1e-7, 1 - 1e-7].

    Shape:
        ``y_true`` targets in [0, 1] of the same shape as ``y_pred``, or (N,) against ``y_pred`` (N, 1).

    Example:
        >>> import numpy as np
        >>> from ember import losses
        >>> round(losses.BinaryCrossentropy()(np.array([[1.0], [0.0]]), np.array([[0.9], [0.2]])).item(), 4)
        0.1643
    """

    name = "binary_crossentropy"

    def __init__(self, from_logits=False):
        self.from_logits = from_logits

    def _elements(self, y_true, y_pred):
        y = _target(y_true, y_pred)
        if y.ndim + 1 == y_pred.ndim and y_pred.shape[-1] == 1 and tuple(y.shape) == tuple(y_pred.shape[:-1]):
            y = Tensor(y.data.reshape(y_pred.shape))  # labels of shape (N,) against outputs (N, 1), as Keras takes
        _check_same_shape(self.name, y, y_pred)
        _check_probabilities(self.name, y)
        if self.from_logits:
            # max(x, 0) - x*y + log(1 + exp(-|x|))
            return F.relu(y_pred) - y_pred * y + F.softplus(-F.abs(y_pred))
        p = F.clip(y_pred, EPSILON, 1 - EPSILON)
        return -(y * F.log(p) + (1 - y) * F.log(1 - p))

    def call(self, y_true, y_pred):
        return F.mean(self._elements(y_true, y_pred))

    def per_sample(self, y_true, y_pred):
        per = self._elements(y_true, y_pred)
        return F.mean(per, axis=-1) if per.ndim > 1 else per

    def get_config(self):
        return {"from_logits": self.from_logits}


class MeanSquaredError(Loss):
    """mean((y_pred - y_true)^2) over every element (Keras names: "mean_squared_error", "mse").

    Shape:
        ``y_true`` and ``y_pred`` of the same shape.

    Example:
        >>> import numpy as np
        >>> from ember import losses
        >>> losses.MeanSquaredError()(np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[1.5, 2.0], [2.0, 4.0]])).item()
        0.3125
    """

    name = "mean_squared_error"

    def call(self, y_true, y_pred):
        y = _target(y_true, y_pred)
        _check_same_shape(self.name, y, y_pred)
        d = y_pred - y
        return F.mean(d * d)

    def per_sample(self, y_true, y_pred):
        y = _target(y_true, y_pred)
        _check_same_shape(self.name, y, y_pred)
        d = y_pred - y
        return _last_axis_mean(d * d)


class MeanAbsoluteError(Loss):
    """mean(|y_pred - y_true|) over every element (Keras names: "mean_absolute_error", "mae").

    Shape:
        ``y_true`` and ``y_pred`` of the same shape.

    Example:
        >>> import numpy as np
        >>> from ember import losses
        >>> losses.MeanAbsoluteError()(np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[1.5, 2.0], [2.0, 4.0]])).item()
        0.375
    """

    name = "mean_absolute_error"

    def call(self, y_true, y_pred):
        y = _target(y_true, y_pred)
        _check_same_shape(self.name, y, y_pred)
        return F.mean(F.abs(y_pred - y))

    def per_sample(self, y_true, y_pred):
        y = _target(y_true, y_pred)
        _check_same_shape(self.name, y, y_pred)
        return _last_axis_mean(F.abs(y_pred - y))


class Huber(Loss):
    """Mean of 0.5 d^2 where |d| <= delta, else delta * (|d| - 0.5 delta), with d = y_pred - y_true:
    squared error near the target, absolute error far from it (less sensitive to outliers).

    Args:
        delta: where the quadratic part ends (default 1.0).

    Shape:
        ``y_true`` and ``y_pred`` of the same shape.

    Example:
        >>> import numpy as np
        >>> from ember import losses
        >>> losses.Huber(delta=1.0)(np.array([0.0, 0.0]), np.array([0.5, 3.0])).item()  # (0.125 + 2.5) / 2
        1.3125
    """

    name = "huber"

    def __init__(self, delta=1.0):
        self.delta = float(delta)

    def call(self, y_true, y_pred):
        y = _target(y_true, y_pred)
        _check_same_shape(self.name, y, y_pred)
        return F.mean(self._elements(y, y_pred))

    def _elements(self, y, y_pred):
        a = F.abs(y_pred - y)
        quad = F.minimum(a, Tensor(np.asarray(self.delta, dtype=y_pred.dtype)))
        return quad * quad * 0.5 + (a - quad) * self.delta

    def per_sample(self, y_true, y_pred):
        y = _target(y_true, y_pred)
        _check_same_shape(self.name, y, y_pred)
        return _last_axis_mean(self._elements(y, y_pred))

    def get_config(self):
        return {"delta": self.delta}


class KLDivergence(Loss):
    """Kullback-Leibler divergence: mean over the batch of sum(y_true * log(y_true / y_pred)) over the
    last axis, both clipped to [1e-7, 1] (Keras names: "kl_divergence", "kld").

    Shape:
        ``y_true`` and ``y_pred``: probability distributions of the same shape, (batch, classes).

    Example:
        >>> import numpy as np
        >>> from ember import losses
        >>> round(losses.KLDivergence()(np.array([[0.5, 0.5]]), np.array([[0.9, 0.1]])).item(), 4)
        0.5108
    """

    name = "kl_divergence"

    def call(self, y_true, y_pred):
        return F.mean(self.per_sample(y_true, y_pred))

    def per_sample(self, y_true, y_pred):
        y = _target(y_true, y_pred)
        _check_same_shape(self.name, y, y_pred)
        yc = F.clip(y, EPSILON, 1.0)
        pc = F.clip(y_pred, EPSILON, 1.0)
        return F.sum(yc * F.log(yc / pc), axis=-1)


class Hinge(Loss):
    """mean(max(1 - y_true * y_pred, 0)) over every element, the SVM margin loss; labels in {0, 1} are
    mapped to {-1, 1} (as Keras does), labels in {-1, 1} are used as they are.

    Shape:
        ``y_true`` and ``y_pred`` (scores) of the same shape.

    Example:
        >>> import numpy as np
        >>> from ember import losses
        >>> losses.Hinge()(np.array([1.0, 0.0]), np.array([0.3, -2.0])).item()  # (0.7 + 0) / 2
        0.35
    """

    name = "hinge"

    def call(self, y_true, y_pred):
        y = _target(y_true, y_pred)
        _check_same_shape(self.name, y, y_pred)
        return F.mean(self._elements(y, y_pred))

    @staticmethod
    def _elements(y, y_pred):
        data = y.data
        if np.all((data == 0) | (data == 1)):
            y = Tensor(2 * data - 1)
        return F.relu(1 - y * y_pred)

    def per_sample(self, y_true, y_pred):
        y = _target(y_true, y_pred)
        _check_same_shape(self.name, y, y_pred)
        return _last_axis_mean(self._elements(y, y_pred))


def _last_axis_mean(values):
    """Per-sample values: the mean over the last axis (Keras's loss functions), a vector as it is."""
    return F.mean(values, axis=-1) if values.ndim > 1 else values


_BY_NAME = {cls.name: cls for cls in (SparseCategoricalCrossentropy, CategoricalCrossentropy, BinaryCrossentropy,
                                      MeanSquaredError, MeanAbsoluteError, Huber, KLDivergence, Hinge)}
_ALIASES = {"mse": "mean_squared_error", "mae": "mean_absolute_error", "kld": "kl_divergence",
            "kullback_leibler_divergence": "kl_divergence", "huber_loss": "huber"}


def names():
    """Every name and alias ``get`` accepts.

    Example:
        >>> from ember import losses
        >>> {"mse", "binary_crossentropy"} <= losses.names()
        True
    """
    return set(_BY_NAME) | set(_ALIASES)


def get(identifier):
    """A Loss from a Keras name or alias; a Loss instance or a function is returned as it is.

    Args:
        identifier: a name (``"sparse_categorical_crossentropy"``, ``"mse"``, ...), a Loss or a callable.

    Example:
        >>> from ember import losses
        >>> losses.get("mse")
        MeanSquaredError({})
        >>> losses.get("huber_loss")
        Huber({'delta': 1.0})
    """
    if isinstance(identifier, Loss) or (callable(identifier) and not isinstance(identifier, type)):
        return identifier
    if isinstance(identifier, str):
        name = _ALIASES.get(identifier, identifier)
        if name not in _BY_NAME:
            raise ValueError(f"unknown loss {identifier!r}; expected one of {sorted(_BY_NAME)}")
        return _BY_NAME[name]()
    raise TypeError(f"loss must be a name or a Loss, got {identifier!r}")


def sparse_categorical_crossentropy(y_true, y_pred, from_logits=False):
    """``SparseCategoricalCrossentropy`` as a function: the loss of ``y_pred`` against ``y_true`` as a scalar Tensor.

    Args:
        y_true: (batch,) 0-based integer labels.
        y_pred: (batch, classes) probabilities, or scores with ``from_logits=True``.
        from_logits: ``y_pred`` are unnormalised scores.

    Example:
        >>> import numpy as np
        >>> from ember import losses
        >>> logits = np.array([[2.0, 1.0, 0.1], [0.5, 0.2, 3.0]])
        >>> round(losses.sparse_categorical_crossentropy(np.array([0, 2]), logits, from_logits=True).item(), 4)
        0.2753
    """
    return SparseCategoricalCrossentropy(from_logits)(y_true, y_pred)


def categorical_crossentropy(y_true, y_pred, from_logits=False):
    """``CategoricalCrossentropy`` as a function: the loss of ``y_pred`` against ``y_true`` as a scalar Tensor.

    Args:
        y_true: (batch, classes) one-hot or soft labels.
        y_pred: (batch, classes) probabilities, or scores with ``from_logits=True``.
        from_logits: ``y_pred`` are unnormalised scores.

    Example:
        >>> import numpy as np
        >>> from ember import losses
        >>> onehot = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
        >>> logits = np.array([[2.0, 1.0, 0.1], [0.5, 0.2, 3.0]])
        >>> round(losses.categorical_crossentropy(onehot, logits, from_logits=True).item(), 4)
        0.2753
    """
    return CategoricalCrossentropy(from_logits)(y_true, y_pred)


def binary_crossentropy(y_true, y_pred, from_logits=False):
    """``BinaryCrossentropy`` as a function: the loss of ``y_pred`` against ``y_true`` as a scalar Tensor.

    Args:
        y_true: targets in [0, 1].
        y_pred: probabilities of the same shape, or scores with ``from_logits=True``.
        from_logits: ``y_pred`` are scores (p = sigmoid(y_pred)).

    Example:
        >>> import numpy as np
        >>> from ember import losses
        >>> scores = np.array([[2.0], [-1.0]])
        >>> round(losses.binary_crossentropy(np.array([[1.0], [0.0]]), scores, from_logits=True).item(), 4)
        0.2201
    """
    return BinaryCrossentropy(from_logits)(y_true, y_pred)


def mean_squared_error(y_true, y_pred):
    """``MeanSquaredError`` as a function: the loss of ``y_pred`` against ``y_true`` as a scalar Tensor.

    Args:
        y_true, y_pred: arrays (or Tensors) of the same shape.

    Example:
        >>> import numpy as np
        >>> from ember import losses
        >>> losses.mean_squared_error(np.array([1.0, 2.0]), np.array([2.0, 4.0])).item()
        2.5
    """
    return MeanSquaredError()(y_true, y_pred)


def mean_absolute_error(y_true, y_pred):
    """``MeanAbsoluteError`` as a function: the loss of ``y_pred`` against ``y_true`` as a scalar Tensor.

    Args:
        y_true, y_pred: arrays (or Tensors) of the same shape.

    Example:
        >>> import numpy as np
        >>> from ember import losses
        >>> losses.mean_absolute_error(np.array([1.0, 2.0]), np.array([2.0, 4.0])).item()
        1.5
    """
    return MeanAbsoluteError()(y_true, y_pred)


def huber(y_true, y_pred, delta=1.0):
    """``Huber`` as a function: the loss of ``y_pred`` against ``y_true`` as a scalar Tensor.

    Args:
        y_true, y_pred: arrays (or Tensors) of the same shape.
        delta: where the quadratic part ends.

    Example:
        >>> import numpy as np
        >>> from ember import losses
        >>> losses.huber(np.array([0.0, 0.0]), np.array([0.5, 3.0]), delta=2.0).item()  # (0.125 + 4) / 2
        2.0625
    """
    return Huber(delta)(y_true, y_pred)


def kl_divergence(y_true, y_pred):
    """``KLDivergence`` as a function: the loss of ``y_pred`` against ``y_true`` as a scalar Tensor.

    Args:
        y_true, y_pred: probability distributions over the last axis, of the same shape.

    Example:
        >>> import numpy as np
        >>> from ember import losses
        >>> losses.kl_divergence(np.array([[0.5, 0.5]]), np.array([[0.5, 0.5]])).item()
        0.0
    """
    return KLDivergence()(y_true, y_pred)


def hinge(y_true, y_pred):
    """``Hinge`` as a function: the loss of ``y_pred`` against ``y_true`` as a scalar Tensor.

    Args:
        y_true: labels in {-1, 1} (or {0, 1}).
        y_pred: scores of the same shape.

    Example:
        >>> import numpy as np
        >>> from ember import losses
        >>> losses.hinge(np.array([1.0, -1.0]), np.array([0.3, -2.0])).item()
        0.35
    """
    return Hinge()(y_true, y_pred)


# Keras's short names of the loss functions (``keras.losses.mse``)
mse = MSE = mean_squared_error
mae = MAE = mean_absolute_error
kld = KLD = kl_divergence
