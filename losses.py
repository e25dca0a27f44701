"""``keras.losses`` for ``import ember as keras``: loss classes, functions and ``get`` (``ember.layers.losses``)."""
from ember.layers.losses import (
    BinaryCrossentropy,
    CategoricalCrossentropy,
    Hinge,
    Huber,
    KLDivergence,
    Loss,
    MeanAbsoluteError,
    MeanSquaredError,
    SparseCategoricalCrossentropy,
    binary_crossentropy,
    categorical_crossentropy,
    get,
    hinge,
    huber,
    kl_divergence,
    mean_absolute_error,
    mean_squared_error,
    sparse_categorical_crossentropy,
)

mse = MSE = mean_squared_error
mae = MAE = mean_absolute_error
kld = KLD = kl_divergence

__all__ = [
    "MAE", "MSE", "KLD", "BinaryCrossentropy", "CategoricalCrossentropy", "Hinge", "Huber", "KLDivergence", "Loss",
    "MeanAbsoluteError", "MeanSquaredError", "SparseCategoricalCrossentropy", "binary_crossentropy",
    "categorical_crossentropy", "get", "hinge", "huber", "kl_divergence", "kld", "mae", "mean_absolute_error",
    "mean_squared_error", "mse", "sparse_categorical_crossentropy",
]
