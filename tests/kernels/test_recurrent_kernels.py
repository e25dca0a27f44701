"""The per-step kernels of the fused recurrent sequence ops, Numba against the NumPy reference (the
spec), with masked rows, in float32 and float64, serial and threaded."""
import numpy as np
import pytest

from ember.kernels import get_kernel

pytest.importorskip("numba")

CASES = [(1, 1), (5, 7), (64, 32)]
DTYPES = [(np.float64, 1e-12), (np.float32, 1e-5)]

pytestmark = pytest.mark.usefixtures("parallel_mode")  # each test serial and threaded (conftest)

def run_both(name, inputs, outputs):
    """Run kernel ``name`` (Numba and reference) on ``inputs`` into fresh copies of ``outputs``."""
    results = []
    for backend in ("numba", "reference"):
        outs = [np.full_like(o, np.nan) for o in outputs]
        get_kernel(name, backend)(*inputs, *outs)
        results.append(outs)
    for a, b in zip(*results):
        assert not np.isnan(a).any() and not np.isnan(b).any()
    return results


def check(results, dtype, rtol):
    for a, b in zip(*results):
        assert a.dtype == b.dtype == dtype
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol)


def keep_rows(rng, n):
    keep = rng.random(n) > 0.4
    keep[0] = True
    if n > 1:
        keep[-1] = False
    return keep


@pytest.mark.parametrize("dtype, rtol", DTYPES)
@pytest.mark.parametrize("n, u", CASES)
def test_rnn_step_kernels_match_reference(n, u, dtype, rtol, rng):
    xw, hu = (rng.normal(size=(2, n, u)) * 2).astype(dtype)
    h_prev, dh = rng.normal(size=(2, n, u)).astype(dtype)
    keep = keep_rows(rng, n)
    fwd = run_both("rnn_step_forward", (xw, hu, h_prev, keep), [np.empty_like(h_prev)])
    check(fwd, dtype, rtol)
    h = fwd[1][0]
    np.testing.assert_array_equal(h[~keep], h_prev[~keep])  # a masked row keeps its state
    bwd = run_both("rnn_step_backward", (dh, h, keep), [np.empty_like(xw), np.empty_like(dh)])
    check(bwd, dtype, rtol)
    dz, carry = bwd[1]
    assert not dz[~keep].any() and not carry[keep].any()
    np.testing.assert_array_equal(carry[~keep], dh[~keep])


@pytest.mark.parametrize("dtype, rtol", DTYPES)
@pytest.mark.parametrize("n, u", CASES)
def test_lstm_step_kernels_match_reference(n, u, dtype, rtol, rng):
    xw, hu = (rng.normal(size=(2, n, 4 * u)) * 3).astype(dtype)
    h_prev, c_prev, dh, dc = rng.normal(size=(4, n, u)).astype(dtype)
    keep = keep_rows(rng, n)
    fwd = run_both("lstm_step_forward", (xw, hu, h_prev, c_prev, keep),
                   [np.empty_like(h_prev), np.empty_like(c_prev), np.empty_like(xw), np.empty_like(c_prev)])
    check(fwd, dtype, rtol)
    h, c, gates, tanh_c = fwd[1]
    np.testing.assert_array_equal(h[~keep], h_prev[~keep])
    np.testing.assert_array_equal(c[~keep], c_prev[~keep])
    # the cell against the existing one-step kernel (same math, no mask)
    hc, ref_gates, _ = get_kernel("lstm_cell_forward", "reference")(xw + hu, c_prev)
    np.testing.assert_allclose(h[keep], hc[keep, :u], rtol=rtol, atol=rtol)
    np.testing.assert_allclose(gates, ref_gates, rtol=rtol, atol=rtol)
    bwd = run_both("lstm_step_backward", (dh, dc, gates, tanh_c, c_prev, keep),
                   [np.empty_like(xw), np.empty_like(dh), np.empty_like(dc)])
    check(bwd, dtype, rtol)
    dz, carry, dc_prev = bwd[1]
    assert not dz[~keep].any() and not carry[keep].any()
    np.testing.assert_array_equal(dc_prev[~keep], dc[~keep])
    # the Numba kernel may write dc_prev over dc (the op does)
    dc_inplace, out = dc.copy(), [np.empty_like(xw), np.empty_like(dh)]
    get_kernel("lstm_step_backward", "numba")(dh, dc_inplace, gates, tanh_c, c_prev, keep, *out, dc_inplace)
    np.testing.assert_allclose(dc_inplace, dc_prev, rtol=rtol, atol=rtol)


@pytest.mark.parametrize("dtype, rtol", DTYPES)
@pytest.mark.parametrize("n, u", CASES)
def test_gru_step_kernels_match_reference(n, u, dtype, rtol, rng):
    xw, hu = (rng.normal(size=(2, n, 3 * u)) * 3).astype(dtype)
    b_rec = rng.normal(size=3 * u).astype(dtype)
    h_prev, dh = rng.normal(size=(2, n, u)).astype(dtype)
    keep = keep_rows(rng, n)
    fwd = run_both("gru_step_forward", (xw, hu, b_rec, h_prev, keep),
                   [np.empty_like(h_prev), np.empty_like(xw), np.empty_like(h_prev)])
    check(fwd, dtype, rtol)
    h, gates, hu_c = fwd[1]
    np.testing.assert_array_equal(h[~keep], h_prev[~keep])
    h_cell, _ = get_kernel("gru_cell_forward", "reference")(xw, hu + b_rec, h_prev)
    np.testing.assert_allclose(h[keep], h_cell[keep], rtol=rtol, atol=rtol)
    bwd = run_both("gru_step_backward", (dh, gates, hu_c, h_prev, keep),
                   [np.empty_like(xw), np.empty_like(xw), np.empty_like(dh)])
    check(bwd, dtype, rtol)
    dxw, dhu, carry = bwd[1]
    assert not dxw[~keep].any() and not dhu[~keep].any()
    np.testing.assert_array_equal(carry[~keep], dh[~keep])
