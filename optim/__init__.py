"""Optimization methods (update rules over the flat parameter buffer); training loops come next."""
from ember.optim.methods import (
    SGD,
    Adadelta,
    Adagrad,
    Adam,
    Adamax,
    AdamW,
    OptimMethod,
    RMSprop,
    adadelta_update,
    adagrad_update,
    adam_update,
    adamax_update,
    rmsprop_update,
    sgd_update,
)

__all__ = [
    "SGD", "Adadelta", "Adagrad", "Adam", "AdamW", "Adamax", "OptimMethod", "RMSprop", "adadelta_update",
    "adagrad_update", "adam_update", "adamax_update", "rmsprop_update", "sgd_update",
]
