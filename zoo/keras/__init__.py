"""The Keras-like API: ``Sequential`` and ``Model`` with compile/fit/evaluate/predict, callbacks."""
from ember.layers import Input
from ember.zoo.keras import callbacks
from ember.zoo.keras.models import Model, Sequential, get_optimizer, load_model

__all__ = ["Input", "Model", "Sequential", "callbacks", "get_optimizer", "load_model"]
