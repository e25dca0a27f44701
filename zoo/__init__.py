"""What users reach for: the Keras-like API, the model zoo, pretrained weights, importers, data sets."""
from ember.zoo.importers.keras import load_keras
from ember.zoo.importers.torch import load_torch
from ember.zoo.vision import ImageClassifier

__all__ = ["ImageClassifier", "load_keras", "load_torch"]
