"""The whole-sequence LSTM kernels (kernels/cpu/sequence.py: the time loop in Numba, its products in NumPy's
OpenBLAS, the batch split over threads) against the NumPy reference, with masks, go_backwards, with and
without a bias, output gradients and input gradients, products in one block and in several, in float32
and float64, serial and threaded; and the reference against a plain NumPy LSTM."""
import numpy as np
import pytest

from ember.kernels import get_kernel
from ember.kernels.registry import has_kernel

pytest.importorskip("numba")
if not has_kernel("lstm_sequence_forward", "numba"):  # NumPy without its own OpenBLAS
    pytest.skip("no Numba whole-sequence kernels here", allow_module_level=True)

DTYPES = [(np.float64, 1e-12), (np.float32, 2e-5)]
# (batch, steps, features, units, bias, masked, go_backwards, output gradients per step, dx and wg)
CASES = [(1, 1, 1, 1, True, False, False, True, True), (5, 6, 3, 4, True, True, True, True, True),
         (7, 4, 5, 3, False, True, False, False, True), (6, 3, 4, 5, True, False, False, True, False),
         (33, 9, 20, 40, False, False, True, True, True)]


def make(rng, n, steps, d, u, bias, masked, dtype):
    o = int(bias)
    xh = np.empty((steps + 1, n, o + d + u), dtype=dtype)
    if o:
        xh[:, :, 0] = 1
    xh[:steps, :, o:o + d] = rng.normal(size=(steps, n, d))
    xh[steps, :, o:o + d] = 0
    xh[0, :, o + d:] = 0
    weights = (rng.normal(size=(o + d + u, 4 * u)) * 0.5).astype(dtype)
    keep = rng.random((steps, n)) > (0.35 if masked else -1)
    if masked:
        keep[:, 0] = False  # a sequence that is all padding
    return xh, weights, keep


def run_forward(backend, xh, weights, keep, u, rows=None):
    steps, n = xh.shape[0] - 1, xh.shape[1]
    xh = xh.copy()
    c = np.zeros((steps + 1, n, u), dtype=xh.dtype)
    rows = steps if rows is None else rows
    gates = np.full((rows, n, 4 * u), np.nan, dtype=xh.dtype)
    tanh_c = np.full((rows, n, u), np.nan, dtype=xh.dtype)
    get_kernel("lstm_sequence_forward", backend)(xh, weights, keep, c, gates, tanh_c, xh.shape[2] - u)
    return xh, c, gates, tanh_c


def run_backward(backend, fwd, weights, keep, u, grads, go_backwards, need_grads, bias=True):
    xh, c, gates, tanh_c = fwd
    steps, n, kk = xh.shape[0] - 1, xh.shape[1], xh.shape[2]
    weights_t = np.ascontiguousarray(weights[int(bias):].T)  # [W; U].T
    gh, dh_last, dc_last = grads
    dz = np.full((steps, n, 4 * u), np.nan, dtype=xh.dtype)
    dx = np.full((n, steps, weights_t.shape[1] - u), np.nan, dtype=xh.dtype) if need_grads else None
    wg = np.full((kk, 4 * u), np.nan, dtype=xh.dtype) if need_grads else None
    get_kernel("lstm_sequence_backward", backend)(xh, weights_t, keep, c, gates, tanh_c, gh, dh_last.copy(),
                                                  dc_last.copy(), dz, dx, wg, go_backwards)
    return [a for a in (dz, dx, wg) if a is not None]


def compare(a_list, b_list, rtol):
    for a, b in zip(a_list, b_list, strict=True):
        assert not np.isnan(a).any() and not np.isnan(b).any()
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol)


@pytest.mark.parametrize("dtype, rtol", DTYPES)
@pytest.mark.parametrize("n, steps, d, u, bias, masked, go_backwards, per_step, need_grads", CASES)
def test_lstm_sequence_kernels_match_reference(n, steps, d, u, bias, masked, go_backwards, per_step, need_grads,
                                               dtype, rtol, parallel_mode):
    rng = np.random.default_rng(n * 100 + steps)
    xh, weights, keep = make(rng, n, steps, d, u, bias, masked, dtype)
    fwd = {b: run_forward(b, xh, weights, keep, u) for b in ("numba", "reference")}
    compare(fwd["numba"], fwd["reference"], rtol)
    h0 = xh.shape[2] - u
    h = fwd["numba"][0][:, :, h0:]
    for t in range(steps):  # a masked step keeps h and c
        np.testing.assert_array_equal(h[t + 1][~keep[t]], h[t][~keep[t]])
    gh = rng.normal(size=(n, steps + 1, u)).astype(dtype) if per_step else None
    grads = gh, rng.normal(size=(n, u)).astype(dtype), rng.normal(size=(n, u)).astype(dtype)
    bwd = {b: run_backward(b, fwd[b], weights, keep, u, grads, go_backwards, need_grads, bias)
           for b in ("numba", "reference")}
    compare(bwd["numba"], bwd["reference"], rtol)
    if masked:
        assert not bwd["numba"][0][:, 0].any()  # no gradient flows into a padded step's gates


@pytest.mark.parametrize("dtype, rtol", DTYPES)
def test_untracked_forward_keeps_one_step(dtype, rtol, parallel_mode):
    """Gates and tanh(c) of one step only (inference): the same h and c as with every step kept."""
    rng = np.random.default_rng(3)
    xh, weights, keep = make(rng, 9, 5, 4, 6, True, True, dtype)
    full = run_forward("numba", xh, weights, keep, 6)
    one = run_forward("numba", xh, weights, keep, 6, rows=1)
    np.testing.assert_array_equal(one[0], full[0])
    np.testing.assert_array_equal(one[1], full[1])


def test_products_in_blocks_of_columns(monkeypatch, parallel_mode):
    """With a small bound on a block's multiply-adds every per-step product runs as several blocks of
    columns (and a narrower last one); the results are those of whole products."""
    from ember.kernels.cpu import sequence

    assert sequence.block_width(16, 257, 512) == 128 and sequence.block_width(32, 257, 512) == 64
    assert sequence.block_width(16, 512, 128) == 64 and sequence.block_width(2, 3, 5) == 5
    rng = np.random.default_rng(4)
    n, steps, d, u = 6, 4, 40, 40
    xh, weights, keep = make(rng, n, steps, d, u, True, True, np.float64)
    reference = run_forward("reference", xh, weights, keep, u)
    grads = rng.normal(size=(n, steps, u)), rng.normal(size=(n, u)), rng.normal(size=(n, u))
    ref_bwd = run_backward("reference", reference, weights, keep, u, grads, False, True)
    monkeypatch.setattr(sequence, "SMALL_MACS", 3 * 81 * 48)
    assert sequence.block_width(3, 81, 160) == 32  # divides
    assert sequence.block_width(3, 81, 60) == 48  # a last block of 12 columns
    assert sequence.block_width(6, 160, 40) == 16  # dz @ W.T here: blocks of 16, 16 and 8 columns
    blocked = run_forward("numba", xh, weights, keep, u)
    compare(blocked, reference, 1e-12)
    compare(run_backward("numba", blocked, weights, keep, u, grads, False, True), ref_bwd, 1e-12)
    # the GRU's products: [1, x_t] @ [b; W] (81 - 40 rows) and h @ U (40 rows), (6, 120) @ (120, 40)
    gru_w, rec = np.ascontiguousarray(weights[:41, :120]), np.ascontiguousarray(weights[41:, :120])
    b_rec = weights[0, :120]
    assert sequence.block_width(6, 120, 40) == 16
    gru = [run_gru(b, xh, gru_w, rec, b_rec, keep, True, grads[:2]) for b in ("numba", "reference")]
    compare(gru[0], gru[1], 1e-12)


def test_parts():
    from ember.kernels.cpu import jit, sequence

    before = jit.THREADS["mode"]
    try:
        jit.set_parallel_mode("auto")
        assert sequence.parts(32, 1000) == 1  # too little work for a parallel launch
        assert sequence.parts(1, 1 << 30) == 1
        jit.set_parallel_mode("never")
        assert sequence.parts(32, 1 << 30) == 1
        jit.set_parallel_mode("always")
        threads = min(jit.numba.get_num_threads(), jit.THREADS["n"])
        assert sequence.parts(3, 10) == min(threads, 3)
    finally:
        jit.set_parallel_mode(before)
    bounds = sequence._bounds(33, 2)
    assert bounds.tolist() == [0, 16, 33] or bounds.tolist() == [0, 17, 33]
    assert sequence._bounds(512, 3, 16).tolist() == [0, 176, 336, 512]


@pytest.mark.parametrize("bias", [False, True])
def test_reference_is_an_lstm(bias):
    """The reference sequence against a plain NumPy LSTM (Keras gate order i, f, g, o), no mask."""
    rng = np.random.default_rng(5)
    n, steps, d, u = 3, 5, 4, 2
    xh, weights, keep = make(rng, n, steps, d, u, bias, False, np.float64)
    xh_out, c, _, _ = run_forward("reference", xh, weights, keep, u)
    o = int(bias)
    b = weights[0] if bias else np.zeros(4 * u)
    w, rec = weights[o:o + d], weights[o + d:]

    def sigmoid(v):
        return 1 / (1 + np.exp(-v))

    h, cell = np.zeros((n, u)), np.zeros((n, u))
    for t in range(steps):
        z = xh[t, :, o:o + d] @ w + h @ rec + b
        i, f, g, out = sigmoid(z[:, :u]), sigmoid(z[:, u:2 * u]), np.tanh(z[:, 2 * u:3 * u]), sigmoid(z[:, 3 * u:])
        cell = f * cell + i * g
        h = out * np.tanh(cell)
        np.testing.assert_allclose(xh_out[t + 1, :, o + d:], h, rtol=1e-13)
        np.testing.assert_allclose(c[t + 1], cell, rtol=1e-13)


def run_gru(backend, xh, weights, rec, b_rec, keep, bias, grads=None, go_backwards=False, need_grads=True, rows=None):
    """GRU forward (and backward with ``grads`` = (gh, dh_last)): weights (o + D, G) = [b; W], rec (u, G)."""
    steps, n, kk = xh.shape[0] - 1, xh.shape[1], xh.shape[2]
    u, g = rec.shape
    xh = xh.copy()
    rows = steps if rows is None else rows
    gates, hu_c = np.full((rows, n, g), np.nan, dtype=xh.dtype), np.full((rows, n, u), np.nan, dtype=xh.dtype)
    get_kernel("gru_sequence_forward", backend)(xh, weights, rec, b_rec, keep, gates, hu_c, kk - u)
    if grads is None:
        return [xh, gates, hu_c]
    gh, dh_last = grads
    weights_t, rec_t = np.ascontiguousarray(weights[int(bias):].T), np.ascontiguousarray(rec.T)
    dxw, dhu = np.full((2, steps, n, g), np.nan, dtype=xh.dtype)
    dx = np.full((n, steps, weights_t.shape[1]), np.nan, dtype=xh.dtype) if need_grads else None
    wgx = np.full(weights.shape, np.nan, dtype=xh.dtype) if need_grads else None
    wgh = np.full(rec.shape, np.nan, dtype=xh.dtype) if need_grads else None
    get_kernel("gru_sequence_backward", backend)(xh, weights_t, rec_t, keep, gates, hu_c, gh, dh_last.copy(), dxw,
                                                 dhu, dx, wgx, wgh, go_backwards)
    return [a for a in (xh, gates, hu_c, dxw, dhu, dx, wgx, wgh) if a is not None]


@pytest.mark.parametrize("dtype, rtol", DTYPES)
@pytest.mark.parametrize("n, steps, d, u, bias, masked, go_backwards, per_step, need_grads", CASES)
def test_gru_sequence_kernels_match_reference(n, steps, d, u, bias, masked, go_backwards, per_step, need_grads,
                                              dtype, rtol, parallel_mode):
    rng = np.random.default_rng(n * 100 + steps + 1)
    xh, weights, keep = make(rng, n, steps, d, u, bias, masked, dtype)
    o = int(bias)
    weights = weights[:, :3 * u].copy()
    weights, rec = np.ascontiguousarray(weights[:o + d]), np.ascontiguousarray(weights[o + d:])
    b_rec = rng.normal(size=3 * u).astype(dtype)
    gh = rng.normal(size=(n, steps + 1, u)).astype(dtype) if per_step else None
    grads = gh, rng.normal(size=(n, u)).astype(dtype)
    results = {b: run_gru(b, xh, weights, rec, b_rec, keep, bias, grads, go_backwards, need_grads)
               for b in ("numba", "reference")}
    compare(results["numba"], results["reference"], rtol)
    h = results["numba"][0][:, :, o + d:]
    for t in range(steps):  # a masked step keeps h
        np.testing.assert_array_equal(h[t + 1][~keep[t]], h[t][~keep[t]])
    one = run_gru("numba", xh, weights, rec, b_rec, keep, bias, rows=1)  # one step's gates (inference)
    np.testing.assert_array_equal(one[0], results["numba"][0])


@pytest.mark.parametrize("bias", [False, True])
def test_gru_reference_is_a_gru(bias):
    """The reference GRU sequence against a plain NumPy GRU (Keras reset_after, gates z, r, h), no mask."""
    rng = np.random.default_rng(6)
    n, steps, d, u = 3, 5, 4, 2
    xh, weights, keep = make(rng, n, steps, d, u, bias, False, np.float64)
    o = int(bias)
    weights, rec = np.ascontiguousarray(weights[:o + d, :3 * u]), np.ascontiguousarray(weights[o + d:, :3 * u])
    b_rec = rng.normal(size=3 * u)
    xh_out = run_gru("reference", xh, weights, rec, b_rec, keep, bias)[0]
    b = weights[0] if bias else np.zeros(3 * u)

    def sigmoid(v):
        return 1 / (1 + np.exp(-v))

    h = np.zeros((n, u))
    for t in range(steps):
        xw, hu = xh[t, :, o:o + d] @ weights[o:] + b, h @ rec + b_rec
        z, r = sigmoid(xw[:, :u] + hu[:, :u]), sigmoid(xw[:, u:2 * u] + hu[:, u:2 * u])
        h = z * h + (1 - z) * np.tanh(xw[:, 2 * u:] + r * hu[:, 2 * u:])
        np.testing.assert_allclose(xh_out[t + 1, :, o + d:], h, rtol=1e-13)
