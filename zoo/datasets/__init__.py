"""Public data sets as NumPy arrays (Keras' ``datasets`` layout)."""
from ember.zoo.datasets import mnist

__all__ = ["mnist"]
