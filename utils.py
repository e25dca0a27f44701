"""``keras.utils`` for ``import ember as keras``: ``to_categorical``, ``pad_sequences``, ``Sequence`` /
``PyDataset`` (batches read one at a time by ``fit``, ``evaluate`` and ``predict``), and Keras 1's
``np_utils`` (``from keras.utils import np_utils``)."""
import sys

from ember.optim.stream import PyDataset, Sequence
from ember.zoo.keras import np_utils
from ember.zoo.keras.utils import pad_sequences, to_categorical

sys.modules.setdefault(f"{__name__}.np_utils", np_utils)

__all__ = ["PyDataset", "Sequence", "np_utils", "pad_sequences", "to_categorical"]
