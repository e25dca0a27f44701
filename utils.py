"""``keras.utils`` for ``import ember as keras``: ``to_categorical``, ``pad_sequences``."""
from ember.zoo.keras.utils import pad_sequences, to_categorical

__all__ = ["pad_sequences", "to_categorical"]
