"""Keras 3 as a reference in tests: on its torch backend, so that no TensorFlow is needed."""
import importlib
import os

import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")


def keras_or_skip():
    """The ``keras`` module, or skip the test when Keras 3 on the torch backend is not there."""
    try:
        keras = importlib.import_module("keras")
    except ImportError:
        pytest.skip("pip install keras (Keras 3 on the torch backend) for the side-by-side check")
    if keras.backend.backend() != "torch":
        pytest.skip("Keras runs on its torch backend here (KERAS_BACKEND=torch)")
    return keras
