"""``keras.utils`` for ``import ember as keras``: ``to_categorical``, ``pad_sequences``, ``Sequence`` /
``PyDataset`` (batches read one at a time by ``fit``, ``evaluate`` and ``predict``)."""
from ember.optim.stream import PyDataset, Sequence
from ember.zoo.keras.utils import pad_sequences, to_categorical

__all__ = ["PyDataset", "Sequence", "pad_sequences", "to_categorical"]
