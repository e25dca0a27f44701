"""engine/ops/linalg.py: small products of NumPy arrays run with OpenBLAS on one thread (its threads
would keep spinning on the cores ember's threaded kernels use next); large ones keep every thread."""
import numpy as np
import pytest

from ember.engine import Tensor
from ember.engine import functional as F
from ember.engine.ops import linalg
from ember.kernels.cpu.blas import _thread_fns, blas_threads


@pytest.fixture
def openblas():
    fns = _thread_fns()
    if fns is None:
        pytest.skip("NumPy's OpenBLAS not found (MKL, Accelerate or not Linux)")
    set_fn, get_fn = fns
    before = get_fn()
    set_fn(2)
    yield get_fn
    set_fn(before)


def test_small_products_run_on_one_blas_thread(openblas):
    small = np.ones((128, 400), np.float32), np.ones((400, 120), np.float32)
    large = np.ones((1024, 1024), np.float32), np.ones((1024, 64), np.float32)
    with linalg._threads(*small):
        assert openblas() == 1
    assert openblas() == 2  # restored
    with linalg._threads(*large):
        assert openblas() == 2
    with linalg._threads(np.ones(3), np.ones(3)):  # a dot product
        assert openblas() == 1
    assert openblas() == 2


def test_matmul_values_and_gradients_unchanged(openblas, rng):
    a, b = rng.normal(size=(16, 9)), rng.normal(size=(9, 5))
    ta, tb = Tensor(a, requires_grad=True), Tensor(b, requires_grad=True)
    y = F.matmul(ta, tb)
    g = rng.normal(size=y.shape)
    (y * Tensor(g)).sum().backward()
    np.testing.assert_array_equal(y.numpy(), a @ b)
    with blas_threads(1):
        np.testing.assert_allclose(ta.grad, g @ b.T, rtol=1e-12)
        np.testing.assert_allclose(tb.grad, a.T @ g, rtol=1e-12)
    assert openblas() == 2
