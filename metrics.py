"""``keras.metrics`` for ``import ember as keras``: metric classes with Keras's names (they are
``ember.optim`` validation methods) and ``get(name)``; ``compile(metrics=[...])`` takes either.

Example:
    >>> import numpy as np
    >>> from ember import metrics
    >>> metrics.SparseCategoricalAccuracy()(np.array([[0.9, 0.1], [0.2, 0.8]]), np.array([0, 0])).result()
    (0.5, 2)
"""
from ember.optim.validation import (
    AUC,
    MAE,
    MSE,
    BinaryAccuracy,
    CategoricalAccuracy,
    SparseCategoricalAccuracy,
    SparseTopKCategoricalAccuracy,
    TopKCategoricalAccuracy,
    ValidationMethod,
    get,
)

Metric = ValidationMethod
MeanAbsoluteError = MAE
MeanSquaredError = MSE

__all__ = [
    "AUC", "BinaryAccuracy", "CategoricalAccuracy", "MeanAbsoluteError", "MeanSquaredError", "Metric",
    "SparseCategoricalAccuracy", "SparseTopKCategoricalAccuracy", "TopKCategoricalAccuracy", "get",
]
