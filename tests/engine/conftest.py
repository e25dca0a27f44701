"""Fixtures of the engine tests."""
import pytest

from ember.kernels import get_cpu_kernels, set_cpu_kernels


@pytest.fixture(params=["numba", "reference"])
def kernels(request):
    """The CPU kernel set: a test using this runs with the Numba kernels and with the NumPy reference."""
    before = get_cpu_kernels()
    set_cpu_kernels(request.param)
    yield request.param
    set_cpu_kernels(before)
