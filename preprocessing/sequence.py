"""``keras.preprocessing.sequence``: ``pad_sequences``."""
from ember.zoo.keras.utils import pad_sequences

__all__ = ["pad_sequences"]
