"""``keras.datasets`` for ``import ember as keras``: ``mnist.load_data()`` as Keras returns it
(``(x_train, y_train), (x_test, y_test)``, uint8 images (N, 28, 28) and uint8 labels)."""
from ember.datasets import mnist

__all__ = ["mnist"]
