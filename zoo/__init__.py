"""What users reach for: the Keras-like API, the model zoo, pretrained weights, importers, data sets."""
from ember.zoo.importers.keras import load_keras
from ember.zoo.importers.torch import load_torch

__all__ = ["load_keras", "load_torch"]
