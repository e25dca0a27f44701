"""``keras.optimizers.schedules`` for ``import ember as keras``: Keras 3's learning-rate schedules (defined in
``ember.zoo.keras.schedules``), to pass as an optimizer's ``learning_rate``.

Example:
    >>> from ember import optimizers
    >>> opt = optimizers.Adam(learning_rate=optimizers.schedules.CosineDecay(1e-3, decay_steps=1000))
    >>> opt.learning_rate_at(step=1000)
    0.0
"""
from ember.zoo.keras.schedules import (
                                       CosineDecay,
                                       CosineDecayRestarts,
                                       ExponentialDecay,
                                       InverseTimeDecay,
                                       LearningRateSchedule,
                                       PiecewiseConstantDecay,
                                       PolynomialDecay,
                                       deserialize,
                                       serialize,
)

__all__ = ["CosineDecay", "CosineDecayRestarts", "ExponentialDecay", "InverseTimeDecay", "LearningRateSchedule",
           "PiecewiseConstantDecay", "PolynomialDecay", "deserialize", "serialize"]
