"""``keras.preprocessing`` for ``import ember as keras`` (``sequence.pad_sequences``)."""
from ember.preprocessing import sequence

__all__ = ["sequence"]
