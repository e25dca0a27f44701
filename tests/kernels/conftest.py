"""Fixtures of the kernel tests."""
import pytest


@pytest.fixture(params=["serial", "threaded"])
def parallel_mode(request):
    """Every kernel is compiled twice (with and without threads): a test using this runs with each."""
    from ember.kernels.cpu.jit import THREADS, set_parallel_mode

    before = THREADS["mode"]
    set_parallel_mode("never" if request.param == "serial" else "always")
    yield request.param
    set_parallel_mode(before)
