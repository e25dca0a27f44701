"""Keras 1's ``keras.utils.np_utils`` (``from keras.utils import np_utils``): ``to_categorical``.

Example:
    >>> from ember.utils import np_utils
    >>> np_utils.to_categorical([1, 0], 2).tolist()
    [[0.0, 1.0], [1.0, 0.0]]
"""
from ember.zoo.keras.utils import to_categorical

__all__ = ["to_categorical"]
