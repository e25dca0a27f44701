import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))

import ember  # noqa: E402
from ember.engine import config  # noqa: E402


@pytest.fixture(autouse=True)
def _engine_defaults():
    """Every test starts in float32 with a fixed seed and leaves no policy behind."""
    ember.set_default_dtype("float32")
    ember.set_seed(1234)
    config.set_check_numerics(False)
    yield
    ember.set_default_dtype("float32")
    config.set_check_numerics(False)


@pytest.fixture
def float64():
    ember.set_default_dtype("float64")
    yield
    ember.set_default_dtype("float32")


@pytest.fixture
def rng():
    return np.random.default_rng(0)
