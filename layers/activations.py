"""Activation functions by Keras name."""
from ember.engine import functional as F
from ember.engine.tensor import as_tensor


def hard_sigmoid(x):
    """Keras 3's ``hard_sigmoid``: ``relu6(x + 3) / 6``, i.e. 0 below -3, 1 above 3 and ``x / 6 + 0.5``
    between. (Keras 1 and 2 used a slope of 0.2 over [-2.5, 2.5]; ember follows Keras 3.)

    Example:
        >>> import numpy as np
        >>> from ember.layers.activations import hard_sigmoid
        >>> hard_sigmoid(np.array([-4.0, -1.5, 0.0, 1.5, 4.0])).numpy().tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
        True
    """
    return F.relu6(as_tensor(x) + 3.0) / 6.0


_ACTIVATIONS = {
    "relu": F.relu, "relu6": F.relu6, "leaky_relu": F.leaky_relu, "elu": F.elu, "gelu": F.gelu,
    "sigmoid": F.sigmoid, "hard_sigmoid": hard_sigmoid, "tanh": F.tanh, "softmax": F.softmax,
    "log_softmax": F.log_softmax, "softplus": F.softplus, "linear": F.linear,
}


def get(identifier):
    """The function for an activation name (``None`` means linear); callables pass through."""
    if identifier is None:
        return F.linear
    if callable(identifier):
        return identifier
    if identifier not in _ACTIVATIONS:
        raise ValueError(f"unknown activation {identifier!r}; expected one of {sorted(_ACTIVATIONS)}")
    return _ACTIVATIONS[identifier]


def serialize(fn):
    for name, f in _ACTIVATIONS.items():
        if f is fn:
            return name
    raise ValueError(f"cannot serialize activation {fn!r}: use a built-in activation name")


def is_builtin(fn):
    """Whether ``fn`` is one of the named activations (made of ember ops only)."""
    return any(f is fn for f in _ACTIVATIONS.values())


_WITH_BIAS = {F.relu: "relu", F.linear: None}  # the activations F.bias_add applies itself


def fused_with_bias(activation, bias, dtype):
    """The ``activation`` argument ("relu" or None) under which an op adds ``bias`` and applies
    ``activation`` itself (``F.bias_add``, ``F.conv2d``) to an output of ``dtype``; False when it cannot
    (no bias, another activation, another dtype)."""
    if bias is None or bias.ndim != 1 or bias.dtype != dtype or activation not in _WITH_BIAS:
        return False
    return _WITH_BIAS[activation]


def with_bias(activation, y, bias):
    """``activation(y + bias)`` for a bias on the last axis (``bias`` may be None). ReLU and linear
    run as one op with the bias add (``F.bias_add``); other activations run after it."""
    if bias is None:
        return activation(y)
    if activation in _WITH_BIAS and bias.ndim == 1 and y.ndim >= 1 and y.shape[-1] == bias.shape[0] \
            and y.dtype == bias.dtype:
        return F.bias_add(y, bias, _WITH_BIAS[activation])
    return activation(y + bias)
