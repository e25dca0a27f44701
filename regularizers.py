"""``keras.regularizers`` for ``import ember as keras``: ``l1``, ``l2``, ``l1_l2``, ``L1``, ``L2``, ``L1L2``,
``OrthogonalRegularizer``, ``Regularizer``, ``get``, ``serialize`` (``ember.layers.regularizers``).

Example:
    >>> from ember import layers, regularizers
    >>> layers.Dense(4, kernel_regularizer=regularizers.l2(1e-4)).kernel_regularizer
    L2(l2=0.0001)
"""
from ember.layers.regularizers import (
    L1,
    L1L2,
    L2,
    OrthogonalRegularizer,
    Regularizer,
    get,
    l1,
    l1_l2,
    l2,
    orthogonal_regularizer,
    register,
    serialize,
)

__all__ = ["L1", "L1L2", "L2", "OrthogonalRegularizer", "Regularizer", "get", "l1", "l1_l2", "l2",
           "orthogonal_regularizer", "register", "serialize"]
