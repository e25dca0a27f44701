"""c += a @ b through NumPy's own BLAS: every operand layout, slices, both dtypes, and the fallback."""
import numpy as np
import pytest

from ember.kernels.cpu import blas


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("a_t, b_t", [(False, False), (True, False), (False, True), (True, True)])
def test_gemm_accumulate_matches_numpy(dtype, a_t, b_t, rng):
    a = rng.normal(size=(7, 5) if not a_t else (5, 7)).astype(dtype)
    b = rng.normal(size=(5, 3) if not b_t else (3, 5)).astype(dtype)
    a, b = (a.T if a_t else a), (b.T if b_t else b)
    big = rng.normal(size=(12, 3)).astype(dtype)
    expected = big.copy()
    expected[2:9] += a @ b
    blas.gemm_accumulate(a, b, big[2:9])  # into a slice of a larger array, in place
    tol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(big, expected, rtol=tol, atol=tol)


def test_numpy_blas_is_found_here_and_the_fallback_gives_the_same(rng, monkeypatch):
    import sys

    if sys.platform.startswith("linux"):  # NumPy's wheels bring OpenBLAS on Linux
        assert blas.uses_numpy_blas()
    a, b = rng.normal(size=(6, 4)), rng.normal(size=(4, 2))
    c1, c2 = np.ones((6, 2)), np.ones((6, 2))
    blas.gemm_accumulate(a, b, c1)
    monkeypatch.setitem(blas._STATE, "gemm", {})
    blas.gemm_accumulate(a, b, c2)  # matmul + add
    np.testing.assert_allclose(c1, c2, rtol=1e-12)
    np.testing.assert_allclose(c1, 1 + a @ b, rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_aligned_arrays_start_at_64_bytes_and_keep_their_values(dtype, rng):
    for shape in [(3, 5), (1,), (0, 4), (7, 1, 3)]:
        a = blas.aligned_empty(shape, dtype)
        assert a.shape == shape and a.dtype == dtype and a.flags.c_contiguous
        assert a.size == 0 or a.ctypes.data % 64 == 0  # NumPy gives an empty view a pointer of its own
    base = rng.normal(size=(40, 9))
    for view in (base[1:].T, base[3:, 2:], base.astype(dtype)[1:]):
        b = blas.aligned(view, dtype)
        assert b.ctypes.data % 64 == 0 and b.flags.c_contiguous and b.dtype == dtype
        np.testing.assert_array_equal(b, view.astype(dtype))
    ready = blas.aligned(base[5:].T, dtype)
    assert blas.aligned(ready) is ready  # no copy when already aligned, contiguous and of the dtype
    assert blas.aligned(ready, np.float16) is not ready
