"""Weight and activity penalties (Keras's ``keras.regularizers``): ``L1``, ``L2``, ``L1L2`` and their
lower-case names ``l1``, ``l2``, ``l1_l2``; ``OrthogonalRegularizer``.

A layer given ``kernel_regularizer``/``bias_regularizer`` (and ``recurrent_regularizer`` on RNNs,
``embeddings_regularizer`` on Embedding) adds ``regularizer(weight)`` to the training loss; one given
``activity_regularizer`` adds ``regularizer(output) / batch size`` for each call (Keras 3's rule, so the
weighting against the weight penalties does not change with the batch size). ``model.losses`` lists the
penalties of the last call; the training loss is the criterion's mean plus their sum, locally and on
Spark alike (there a trainer with n of the N samples contributes n times the penalty's gradient, so the
average over all trainers is the same sum).

Example:
    >>> import numpy as np
    >>> from ember import regularizers
    >>> float(regularizers.L1L2(l1=0.5, l2=0.25)(np.array([1.0, -2.0])).item())  # 0.5 * 3 + 0.25 * 5
    2.75
"""
import math

import numpy as np

from ember.engine import functional as F
from ember.engine.tensor import Tensor, as_tensor


def _factor(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


class Regularizer:
    """Base class: ``regularizer(x)`` -> a scalar Tensor penalty on ``x`` (a weight or a layer output).

    A subclass implements ``__call__`` with the engine's differentiable functions and ``get_config``.
    """

    def __call__(self, x):
        raise NotImplementedError(f"{type(self).__name__} must implement __call__(x)")

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.get_config().items())})"


class L1L2(Regularizer):
    """``l1 * sum(|x|) + l2 * sum(x^2)`` (Keras: both factors default to 0.0 here; the string "l1_l2" too).

    Example:
        >>> import numpy as np
        >>> float(L1L2(l2=0.1)(np.array([3.0, 4.0])).item())
        2.5
    """

    def __init__(self, l1=0.0, l2=0.0):
        self.l1 = _factor(0.0 if l1 is None else l1, "l1")
        self.l2 = _factor(0.0 if l2 is None else l2, "l2")

    def __call__(self, x):
        x = x if isinstance(x, Tensor) else Tensor(np.asarray(x, dtype=np.float64))
        total = None
        if self.l1:
            total = F.sum(F.abs(x)) * self.l1
        if self.l2:
            term = F.sum(x * x) * self.l2
            total = term if total is None else total + term
        if total is None:
            total = F.sum(x * 0.0)  # a zero that still belongs to the graph
        return total

    def get_config(self):
        return {"l1": self.l1, "l2": self.l2}


class L1(L1L2):
    """``l1 * sum(|x|)`` (default ``l1=0.01``, as Keras).

    Example:
        >>> import numpy as np
        >>> float(L1(0.5)(np.array([1.0, -2.0])).item())
        1.5
    """

    def __init__(self, l1=0.01):
        super().__init__(l1=0.01 if l1 is None else l1)

    def get_config(self):
        return {"l1": self.l1}


class L2(L1L2):
    """``l2 * sum(x^2)`` (default ``l2=0.01``, as Keras).

    Example:
        >>> import numpy as np
        >>> float(L2(0.5)(np.array([1.0, -2.0])).item())
        2.5
    """

    def __init__(self, l2=0.01):
        super().__init__(l2=0.01 if l2 is None else l2)

    def get_config(self):
        return {"l2": self.l2}


class OrthogonalRegularizer(Regularizer):
    """Keras 3's ``OrthogonalRegularizer``: pushes the rows (``mode="rows"``) or columns (``"columns"``) of a
    2-D weight towards being orthogonal. With ``u_i`` the L2-normalised rows (each divided by
    ``max(norm, 1e-7)``) of an (n, d) weight::

        penalty = factor * 0.5 * sum_{i != j} |u_i . u_j| / (n (n - 1) / 2)

    Args:
        factor: the weight of the penalty, >= 0 (default 0.01).
        mode: "rows" or "columns" (the rows of the transposed weight).

    Example:
        >>> import numpy as np
        >>> round(float(OrthogonalRegularizer(1.0)(np.array([[1.0, 0.0], [1.0, 1.0]])).item()), 6)  # cos 45 deg
        0.707107
        >>> float(OrthogonalRegularizer(1.0, mode="columns")(np.eye(3)).item())
        0.0
    """

    def __init__(self, factor=0.01, mode="rows"):
        self.factor = _factor(factor, "factor")
        if mode not in ("rows", "columns"):
            raise ValueError(f"OrthogonalRegularizer: mode must be 'rows' or 'columns', got {mode!r}")
        self.mode = mode

    def __call__(self, x):
        x = x if isinstance(x, Tensor) else Tensor(np.asarray(x, dtype=np.float64))
        if x.ndim != 2:
            raise ValueError(f"OrthogonalRegularizer: expected a 2-D weight (e.g. a Dense kernel), got shape {x.shape}")
        if self.mode == "columns":
            x = F.transpose(x)
        n = x.shape[0]
        if n < 2:
            raise ValueError(f"OrthogonalRegularizer: needs at least 2 {self.mode}, got a weight of shape {x.shape}")
        squares = F.sum(x * x, axis=1, keepdims=True)
        # x / max(norm, 1e-7), written so that an all-zero row has a finite gradient
        u = x / F.sqrt(F.maximum(squares, as_tensor(1e-14, like=squares)))
        product = F.matmul(u, F.transpose(u))
        off_diagonal = product * Tensor((1.0 - np.eye(n)).astype(product.dtype))
        return F.sum(F.abs(off_diagonal)) * (self.factor * 0.5 / (n * (n - 1) / 2.0))

    def get_config(self):
        return {"factor": self.factor, "mode": self.mode}


# Keras's lower-case names are the classes themselves (keras.regularizers.l2(1e-4) is L2(1e-4))
l1, l2, l1_l2 = L1, L2, L1L2
orthogonal_regularizer = OrthogonalRegularizer
_BY_NAME = {"L1": L1, "L2": L2, "L1L2": L1L2, "l1": L1, "l2": L2, "l1_l2": L1L2,
            "OrthogonalRegularizer": OrthogonalRegularizer, "orthogonal_regularizer": OrthogonalRegularizer}
# user classes registered for loading (``register``); ``serialize`` names them by class name
_CUSTOM = {}


def register(cls):
    """Make a ``Regularizer`` subclass known by its class name, so that a saved model using it loads.

    Example:
        >>> @register
        ... class Half(Regularizer):
        ...     def __call__(self, x):
        ...         return F.sum(x) * 0.5
        >>> type(get({"class_name": "Half", "config": {}})).__name__
        'Half'
    """
    _CUSTOM[cls.__name__] = cls
    return cls


def get(identifier):
    """A regularizer from None, an instance, a name ("l1", "l2", "l1_l2", "L2"...), a class, a
    ``{"class_name", "config"}`` dict (what ``serialize`` writes) or any callable taking a tensor.

    Example:
        >>> get("l2")
        L2(l2=0.01)
        >>> get({"class_name": "L1L2", "config": {"l1": 0.0, "l2": 0.001}})
        L1L2(l1=0.0, l2=0.001)
    """
    if identifier is None or isinstance(identifier, Regularizer):
        return identifier
    if isinstance(identifier, str):
        cls = _BY_NAME.get(identifier) or _CUSTOM.get(identifier)
        if cls is None:
            raise ValueError(f"unknown regularizer {identifier!r}; expected one of {sorted(_BY_NAME)} or a "
                             "Regularizer instance such as L2(1e-4)")
        return cls()
    if isinstance(identifier, dict):
        name = identifier.get("class_name")
        cls = _BY_NAME.get(name) or _CUSTOM.get(name)
        if cls is None:
            raise ValueError(f"unknown regularizer class {name!r} in {identifier!r}; a custom one must be "
                             "registered with ember.regularizers.register")
        return cls.from_config(dict(identifier.get("config") or {}))
    if isinstance(identifier, type) and issubclass(identifier, Regularizer):
        return identifier()
    if callable(identifier):
        return identifier
    raise TypeError(f"regularizer: expected None, a name, a Regularizer or a callable, got {identifier!r}")


def serialize(regularizer):
    """``{"class_name", "config"}`` for a Regularizer (None stays None); a plain function cannot be saved."""
    if regularizer is None:
        return None
    if not isinstance(regularizer, Regularizer):
        raise ValueError(f"cannot save the regularizer {regularizer!r}: only Regularizer subclasses (with get_config) "
                         "can be written into a model file")
    return {"class_name": type(regularizer).__name__, "config": regularizer.get_config()}


def serialize_fields(layer, *names):
    """``{name: serialize(layer.<name>)}`` for the regularizer attributes that are set (a layer's get_config)."""
    return {name: serialize(getattr(layer, name)) for name in names if getattr(layer, name, None) is not None}


def activity_penalty(regularizer, output):
    """Keras 3's activity penalty of one output: ``regularizer(output) / batch size``."""
    value = regularizer(output)
    n = output.shape[0] if output.ndim > 0 else 1
    return value * (1.0 / n) if n else value


def total_penalty(losses):
    """The sum of a list of scalar penalty Tensors, or None when the list is empty."""
    total = None
    for loss in losses:
        total = loss if total is None else total + loss
    return total
