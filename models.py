"""``keras.models`` for ``import ember as keras``: ``Sequential``, ``Model``, ``load_model``."""
from ember.zoo.keras.models import Model, Sequential, load_model

__all__ = ["Model", "Sequential", "load_model"]
