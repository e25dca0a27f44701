"""``keras.activations`` for ``import ember as keras``: the activation functions by their Keras names
(``relu``, ``sigmoid``, ``hard_sigmoid``, ``softmax``...), ``get(name)`` and ``serialize(fn)``; a layer's
``activation="..."`` takes the same names.

Example:
    >>> import numpy as np
    >>> from ember import activations
    >>> activations.hard_sigmoid(np.array([0.0, 6.0])).numpy().tolist()
    [0.5, 1.0]
    >>> activations.get("relu") is activations.relu
    True
"""
from ember.engine.functional import (
    elu,
    gelu,
    leaky_relu,
    linear,
    log_softmax,
    relu,
    relu6,
    sigmoid,
    softmax,
    softplus,
    tanh,
)
from ember.layers.activations import get, hard_sigmoid, serialize

__all__ = ["elu", "gelu", "get", "hard_sigmoid", "leaky_relu", "linear", "log_softmax", "relu", "relu6",
           "serialize", "sigmoid", "softmax", "softplus", "tanh"]
