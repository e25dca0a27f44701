"""``keras.datasets.mnist``: ``load_data()`` as Keras returns it (see ``ember.zoo.datasets.mnist`` for where
the data comes from)."""
import numpy as np

from ember.zoo.datasets import mnist as _mnist


def load_data(path=None, download_if_missing=True):
    """``(x_train, y_train), (x_test, y_test)``: uint8 images (n, 28, 28) and uint8 labels 0-9, as Keras's.

    Args:
        path: a folder with the four IDX files or an ``mnist.pkl.gz`` (default: see ``ember.zoo.datasets.mnist``).
        download_if_missing: when False, raise FileNotFoundError instead of downloading.
    """
    (x_train, y_train), (x_test, y_test) = _mnist.load_data(path, download_if_missing)
    return (x_train, y_train.astype(np.uint8)), (x_test, y_test.astype(np.uint8))


__all__ = ["load_data"]
