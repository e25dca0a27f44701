"""A whole LSTM sequence in Numba: the time loop, its per-step matrix products and the gate arithmetic in
one compiled loop, with the batch split over the cores (the spec: kernels/reference/recurrent.py).

Each part of the batch (a range of rows) runs through all the steps on its own thread: the rows of
one part never read another's, so the parts need no synchronisation inside the loop. The products
call NumPy's own OpenBLAS (``cblas_?gemm``, see ``blas.numba_gemm``) from the compiled loop, on one
BLAS thread each, in blocks of columns small enough for OpenBLAS's unpacked small-matrix kernels (and
of at most ROW_BLOCK rows in the backward), with their B operands 64-byte aligned (``blas.aligned``).
Registered only where that library is found; elsewhere the op keeps its per-step loop in Python.
"""
import numba
import numpy as np
from numba.core import types
from numba.extending import overload

from ember.kernels.cpu.blas import NUMBA_GEMM_SYMBOLS, aligned, blas_threads, numba_gemm
from ember.kernels.cpu.jit import JIT, PARALLEL, THREADS, prange, serialized
from ember.kernels.cpu.recurrent import _sigmoid, _tanh
from ember.kernels.registry import register

AVAILABLE = bool(numba_gemm())

_ROW_MAJOR, _NO, _TR = 101, 111, 112


def _signature(real):
    ptr, i64, i32 = types.uint64, types.int64, types.int32
    return types.void(i32, i32, i32, i64, i64, i64, real, ptr, i64, ptr, i64, real, ptr, i64)


_sgemm = types.ExternalFunction(NUMBA_GEMM_SYMBOLS[np.dtype(np.float32)], _signature(types.float32))
_dgemm = types.ExternalFunction(NUMBA_GEMM_SYMBOLS[np.dtype(np.float64)], _signature(types.float64))


def _gemm(ta, tb, m, n, k, a, a_off, lda, b, b_off, ldb, beta, c, c_off, ldc):
    """C = op(A) op(B) + beta C (row-major) on the arrays' data from element offsets ``*_off``; Numba only."""
    raise NotImplementedError("_gemm runs inside Numba kernels only")


@overload(_gemm)
def _gemm_jit(ta, tb, m, n, k, a, a_off, lda, b, b_off, ldb, beta, c, c_off, ldc):
    if a.dtype == types.float32:
        fn, real, size = _sgemm, np.float32, 4
    elif a.dtype == types.float64:
        fn, real, size = _dgemm, np.float64, 8
    else:
        return None

    def impl(ta, tb, m, n, k, a, a_off, lda, b, b_off, ldb, beta, c, c_off, ldc):
        fn(np.int32(_ROW_MAJOR), np.int32(ta), np.int32(tb), m, n, k, real(1.0),
           a.ctypes.data + np.uint64(a_off * size), lda, b.ctypes.data + np.uint64(b_off * size), ldb, real(beta),
           c.ctypes.data + np.uint64(c_off * size), ldc)

    return impl


# NOTE: OpenBLAS (0.3.x, SkylakeX kernels) runs a product of at most 1e6 multiply-adds with its
# small-matrix kernels, which do not pack their operands; the per-step products of W5's shapes are
# just above (one part of 16 rows: (16, 257) @ (257, 512) = 2.1M), so each runs as a few products of
# blocks of columns (measured in the engine op's NOTE on SMALL_MACS: 4.7 -> 3.0 ms per 100 steps).
SMALL_MACS = 1_000_000
MIN_COLUMNS = 16
# a part of the batch has at least this many rows; fewer run serially
MIN_ROWS = 8
# NOTE: the backward's per-step products dz @ W.T and dz @ U.T, (m, 512) @ (512, 128) float32, ran at
# 77-81 GMAC/s as products of 16 rows in blocks of 64 columns, against 64-73 for 32 rows in blocks of 32
# (the widest under SMALL_MACS), B aligned, 100 products, CPU-time medians of 9, load 4; the LSTM's
# backward time loop for a batch of 32 on one thread: 8.9 -> 8.23 and 8.67 -> 8.06 ms (two runs,
# alternating in one process, medians of 21, load 4.5-4.7). The forward's (m, 257) @ (257, 512) ran as
# fast with 32 rows in blocks of 64 as with 16 in blocks of 128 (79). The backward's products run in
# blocks of at most this many rows.
ROW_BLOCK = 16
# below this many multiply-adds per sequence one thread runs it (a parallel launch costs 80-150 us)
PARALLEL_MACS = 1 << 24


def block_width(m, k, n, min_columns=MIN_COLUMNS):
    """Columns per product of an (m, k) @ (k, n) product split for OpenBLAS's small-matrix kernels: n when
    m k n <= SMALL_MACS, else the widest multiple of ``min_columns`` that divides n and keeps each block
    under SMALL_MACS, else the widest such multiple (the last block narrower), at least ``min_columns``.

    Example:
        >>> from ember.kernels.cpu.sequence import block_width
        >>> block_width(16, 257, 512), block_width(32, 257, 512), block_width(4, 8, 8)
        (128, 64, 8)
    """
    if m * k * n <= SMALL_MACS:
        return n
    limit = SMALL_MACS // (m * k) // min_columns * min_columns
    for w in range(limit, 0, -min_columns):
        if n % w == 0:
            return w
    return max(limit, min_columns)


def parts(n, macs):
    """How many parts (threads) the batch of ``n`` rows is split into for ``macs`` multiply-adds in all:
    one below PARALLEL_MACS or with fewer than 2 * MIN_ROWS rows (unless ``set_parallel_mode("always")``),
    else at most one per thread.

    Example:
        >>> from ember.kernels.cpu.sequence import parts
        >>> parts(32, 1000)  # too little work for a parallel launch
        1
    """
    threads = min(numba.get_num_threads(), THREADS["n"])
    mode = THREADS["mode"]
    if mode == "never" or threads < 2 or n < 2:
        return 1
    if mode == "always":
        return min(threads, n)
    if macs < PARALLEL_MACS:
        return 1
    return max(1, min(threads, n // MIN_ROWS))


def _bounds(n, count, multiple=1):
    """count + 1 increasing bounds from 0 to n (inner ones rounded to ``multiple``)."""
    inner = [min(n, round(n * p / count / multiple) * multiple) for p in range(1, count)]
    return np.array([0] + inner + [n], dtype=np.int64)


# The gate arithmetic works on one row at a time in short loops over few arrays each, so that LLVM
# vectorizes them (see the NOTE above _lstm_step_forward in recurrent.py).
@numba.njit(**JIT)
def _lstm_forward_rows(xh, w, keep, c, gates, tanh_c, h0, r0, r1, wz):
    steps, n, kk = xh.shape[0] - 1, xh.shape[1], xh.shape[2]
    g = w.shape[1]
    u = g // 4
    m = r1 - r0
    z = np.empty((m, g), dtype=xh.dtype)
    for t in range(steps):
        s = t if gates.shape[0] == steps else 0
        for j in range(0, g, wz):
            _gemm(_NO, _NO, m, min(wz, g - j), kk, xh, (t * n + r0) * kk, kk, w, j, g, 0.0, z, j, g)
        for i in range(m):
            r = r0 + i
            zr, gr, tr = z[i], gates[s, r], tanh_c[s, r]
            cp, cn, hp, hn = c[t, r], c[t + 1, r], xh[t, r], xh[t + 1, r]
            for j in range(2 * u):  # i, f
                gr[j] = _sigmoid(zr[j])
            for j in range(2 * u, 3 * u):  # g
                gr[j] = _tanh(zr[j])
            for j in range(3 * u, 4 * u):  # o
                gr[j] = _sigmoid(zr[j])
            for j in range(u):  # c' (held in tanh_c for a moment)
                tr[j] = gr[u + j] * cp[j] + gr[j] * gr[2 * u + j]
            if keep[t, r]:
                for j in range(u):
                    cn[j] = tr[j]
                for j in range(u):
                    v = _tanh(tr[j])
                    tr[j] = v
                    hn[h0 + j] = gr[3 * u + j] * v
            else:
                for j in range(u):
                    tr[j] = _tanh(tr[j])
                for j in range(u):
                    cn[j] = cp[j]
                for j in range(u):
                    hn[h0 + j] = hp[h0 + j]


@numba.njit(**PARALLEL)
def _lstm_forward_parts(xh, w, keep, c, gates, tanh_c, h0, bounds, wz):
    for p in prange(bounds.shape[0] - 1):
        _lstm_forward_rows(xh, w, keep, c, gates, tanh_c, h0, bounds[p], bounds[p + 1], wz)


@numba.njit(**JIT)
def _lstm_backward_rows(wt, keep, c, gates, tanh_c, gh, has_gh, dh_last, dc_last, dz, dx, need_dx, backwards,
                        r0, r1, wx, wh):
    steps, n, g = dz.shape
    u = g // 4
    d = wt.shape[1] - u
    m = r1 - r0
    one, zero = dz.dtype.type(1), dz.dtype.type(0)
    dh, dc = np.empty((m, u), dtype=dz.dtype), np.empty((m, u), dtype=dz.dtype)
    for i in range(m):
        for j in range(u):
            dh[i, j] = dh_last[r0 + i, j]
            dc[i, j] = dc_last[r0 + i, j]
    for t in range(steps - 1, -1, -1):
        for i in range(m):
            r = r0 + i
            dhr, dcr, dzr = dh[i], dc[i], dz[t, r]
            gr, tr, cp = gates[t, r], tanh_c[t, r], c[t, r]
            if has_gh:
                ghr = gh[r, t]
                for j in range(u):
                    dhr[j] += ghr[j]
            if keep[t, r]:
                for j in range(u):  # dc'
                    v = tr[j]
                    dcr[j] += dhr[j] * gr[3 * u + j] * (one - v * v)
                for j in range(u):  # di, dg
                    a, b = gr[j], gr[2 * u + j]
                    dzr[j] = dcr[j] * b * a * (one - a)
                    dzr[2 * u + j] = dcr[j] * a * (one - b * b)
                for j in range(u):  # df
                    f = gr[u + j]
                    dzr[u + j] = dcr[j] * cp[j] * f * (one - f)
                for j in range(u):  # do
                    o = gr[3 * u + j]
                    dzr[3 * u + j] = dhr[j] * tr[j] * o * (one - o)
                for j in range(u):
                    dcr[j] *= gr[u + j]
                for j in range(u):  # dh_prev = dz @ U.T below
                    dhr[j] = zero
            else:  # a masked step: dz = 0, dh and dc pass unchanged
                for j in range(g):
                    dzr[j] = zero
        for i0 in range(0, m, ROW_BLOCK):
            mi = min(ROW_BLOCK, m - i0)
            if need_dx:
                tx = steps - 1 - t if backwards else t
                for j in range(0, d, wx):
                    _gemm(_NO, _NO, mi, min(wx, d - j), g, dz, (t * n + r0 + i0) * g, g, wt, j, d + u, 0.0,
                          dx, ((r0 + i0) * steps + tx) * d + j, steps * d)
            if t:
                for j in range(0, u, wh):
                    _gemm(_NO, _NO, mi, min(wh, u - j), g, dz, (t * n + r0 + i0) * g, g, wt, d + j, d + u, 1.0,
                          dh, i0 * u + j, u)


@numba.njit(**PARALLEL)
def _lstm_backward_parts(wt, keep, c, gates, tanh_c, gh, has_gh, dh_last, dc_last, dz, dx, need_dx, backwards,
                         bounds, wx, wh):
    for p in prange(bounds.shape[0] - 1):
        _lstm_backward_rows(wt, keep, c, gates, tanh_c, gh, has_gh, dh_last, dc_last, dz, dx, need_dx, backwards,
                            bounds[p], bounds[p + 1], wx, wh)


# NOTE: the weight gradient [1, X, H]^T dZ over all steps, (257, 3200) @ (3200, 512) float32, split for
# two threads: 3.17 ms per half over the rows (steps) against 3.46 ms per half over the columns
# (1 thread each, CPU-time medians of 9, load 4.8); the partial sums then cost one addition of (257, 512).
@numba.njit(**JIT)
def _weight_grad_rows(xh, col, dz, wg, i0, i1):
    """wg = xh[rows i0:i1, col:col + K]^T dz[rows i0:i1] (wg (K, G)), the rows those of the (T N, ...)
    arrays."""
    g, kk = dz.shape[2], xh.shape[2]
    _gemm(_TR, _NO, wg.shape[0], g, i1 - i0, xh, i0 * kk + col, kk, dz, i0 * g, g, 0.0, wg, 0, g)


@numba.njit(**PARALLEL)
def _weight_grad_parts(xh, col, dz, partial, bounds):
    for p in prange(bounds.shape[0] - 1):
        _weight_grad_rows(xh, col, dz, partial[p], bounds[p], bounds[p + 1])


def _weight_grad(xh, col, dz, wg, count):
    """wg (K, G) = xh[:T, :, col:col + K]^T dz over all steps and rows, in ``count`` parts over the rows
    (their partial sums added)."""
    steps, n = dz.shape[:2]
    if count < 2:
        _weight_grad_rows(xh, col, dz, wg, 0, steps * n)
        return
    partial = np.empty((count,) + wg.shape, dtype=wg.dtype)
    _weight_grad_parts(xh, col, dz, partial, _bounds(steps * n, count))
    np.sum(partial, axis=0, out=wg)


def lstm_sequence_forward(xh, weights, keep, c, gates, tanh_c, h_offset):
    """See the reference (kernels/reference/recurrent.py): the batch in ``parts`` over the threads."""
    steps, n, kk = xh.shape[0] - 1, xh.shape[1], xh.shape[2]
    g = weights.shape[1]
    count = parts(n, steps * n * kk * g)
    bounds = _bounds(n, count)
    wz = block_width(int(np.diff(bounds).max()), kk, g)
    weights = aligned(weights)  # B of every step's product (see the NOTE on ALIGNMENT in blas.py)
    with blas_threads(1):
        if count > 1:
            _lstm_forward_parts(xh, weights, keep, c, gates, tanh_c, h_offset, bounds, wz)
        else:
            _lstm_forward_rows(xh, weights, keep, c, gates, tanh_c, h_offset, 0, n, wz)


def lstm_sequence_backward(xh, weights_t, keep, c, gates, tanh_c, gh, dh_last, dc_last, dz, dx, wg,
                           go_backwards=False):
    """See the reference (kernels/reference/recurrent.py): the batch in parts over the threads for the
    time loop, then the columns of the weight gradient in parts."""
    steps, n, g = dz.shape
    u = g // 4
    d = weights_t.shape[1] - u
    count = parts(n, 3 * steps * n * (d + u) * g)
    bounds = _bounds(n, count)
    rows = min(int(np.diff(bounds).max()), ROW_BLOCK)  # the backward's products run in blocks of rows
    wx, wh = block_width(rows, g, d), block_width(rows, g, u)
    has_gh, need_dx = gh is not None, dx is not None
    dt = dz.dtype
    gh = gh if has_gh else np.empty((1, 1, 1), dtype=dt)
    dx = dx if need_dx else np.empty((1, 1, 1), dtype=dt)
    weights_t = aligned(weights_t)
    with blas_threads(1):
        if count > 1:
            _lstm_backward_parts(weights_t, keep, c, gates, tanh_c, gh, has_gh, dh_last, dc_last, dz, dx, need_dx,
                                 go_backwards, bounds, wx, wh)
        else:
            _lstm_backward_rows(weights_t, keep, c, gates, tanh_c, gh, has_gh, dh_last, dc_last, dz, dx, need_dx,
                                go_backwards, 0, n, wx, wh)
        if wg is not None:
            _weight_grad(xh, 0, dz, wg, count)


if AVAILABLE:
    register("lstm_sequence_forward", "numba", wrap=serialized)(lstm_sequence_forward)
    register("lstm_sequence_backward", "numba", wrap=serialized)(lstm_sequence_backward)


# ---------------------------------------------------------------- GRU (Keras reset_after layout)
@numba.njit(**JIT)
def _gru_forward_rows(xh, w, rec, b_rec, keep, gates, hu_c, h0, r0, r1, wx, wh):
    steps, n, kk = xh.shape[0] - 1, xh.shape[1], xh.shape[2]
    g = w.shape[1]
    u = g // 3
    m = r1 - r0
    one = xh.dtype.type(1)
    xw, hu = np.empty((m, g), dtype=xh.dtype), np.empty((m, g), dtype=xh.dtype)
    for t in range(steps):
        s = t if gates.shape[0] == steps else 0
        row = (t * n + r0) * kk
        for j in range(0, g, wx):
            _gemm(_NO, _NO, m, min(wx, g - j), h0, xh, row, kk, w, j, g, 0.0, xw, j, g)
        for j in range(0, g, wh):
            _gemm(_NO, _NO, m, min(wh, g - j), u, xh, row + h0, kk, rec, j, g, 0.0, hu, j, g)
        for i in range(m):
            r = r0 + i
            xr, hr, gr, cr, hp, hn = xw[i], hu[i], gates[s, r], hu_c[s, r], xh[t, r], xh[t + 1, r]
            for j in range(2 * u):  # z, r
                gr[j] = _sigmoid(xr[j] + (hr[j] + b_rec[j]))
            for j in range(u):
                cr[j] = hr[2 * u + j] + b_rec[2 * u + j]
            for j in range(u):  # candidate
                gr[2 * u + j] = _tanh(xr[2 * u + j] + gr[u + j] * cr[j])
            if keep[t, r]:
                for j in range(u):
                    v = gr[j]
                    hn[h0 + j] = v * hp[h0 + j] + (one - v) * gr[2 * u + j]
            else:
                for j in range(u):
                    hn[h0 + j] = hp[h0 + j]


@numba.njit(**PARALLEL)
def _gru_forward_parts(xh, w, rec, b_rec, keep, gates, hu_c, h0, bounds, wx, wh):
    for p in prange(bounds.shape[0] - 1):
        _gru_forward_rows(xh, w, rec, b_rec, keep, gates, hu_c, h0, bounds[p], bounds[p + 1], wx, wh)


@numba.njit(**JIT)
def _gru_backward_rows(xh, w_t, rec_t, keep, gates, hu_c, gh, has_gh, dh_last, dxw, dhu, dx, need_dx, backwards,
                       h0, r0, r1, wx, wh):
    steps, n, g = dxw.shape
    u = g // 3
    d = w_t.shape[1]
    m = r1 - r0
    one, zero = dxw.dtype.type(1), dxw.dtype.type(0)
    dh = np.empty((m, u), dtype=dxw.dtype)
    for i in range(m):
        for j in range(u):
            dh[i, j] = dh_last[r0 + i, j]
    for t in range(steps - 1, -1, -1):
        for i in range(m):
            r = r0 + i
            dhr, dxr, dur = dh[i], dxw[t, r], dhu[t, r]
            gr, cr, hp = gates[t, r], hu_c[t, r], xh[t, r]
            if has_gh:
                ghr = gh[r, t]
                for j in range(u):
                    dhr[j] += ghr[j]
            if keep[t, r]:
                for j in range(u):  # dc
                    a, c = gr[j], gr[2 * u + j]
                    dxr[2 * u + j] = dhr[j] * (one - a) * (one - c * c)
                for j in range(u):  # dz
                    a = gr[j]
                    dxr[j] = dhr[j] * (hp[h0 + j] - gr[2 * u + j]) * a * (one - a)
                for j in range(u):  # dr
                    a = gr[u + j]
                    dxr[u + j] = dxr[2 * u + j] * cr[j] * a * (one - a)
                for j in range(2 * u):
                    dur[j] = dxr[j]
                for j in range(u):
                    dur[2 * u + j] = dxr[2 * u + j] * gr[u + j]
                for j in range(u):  # the part of dh_prev that bypasses U: dh z
                    dhr[j] *= gr[j]
            else:  # a masked step: no gate gradients, dh passes unchanged
                for j in range(g):
                    dxr[j] = zero
                for j in range(g):
                    dur[j] = zero
        for i0 in range(0, m, ROW_BLOCK):
            mi = min(ROW_BLOCK, m - i0)
            if need_dx:
                tx = steps - 1 - t if backwards else t
                for j in range(0, d, wx):
                    _gemm(_NO, _NO, mi, min(wx, d - j), g, dxw, (t * n + r0 + i0) * g, g, w_t, j, d, 0.0,
                          dx, ((r0 + i0) * steps + tx) * d + j, steps * d)
            if t:
                for j in range(0, u, wh):
                    _gemm(_NO, _NO, mi, min(wh, u - j), g, dhu, (t * n + r0 + i0) * g, g, rec_t, j, u, 1.0,
                          dh, i0 * u + j, u)


@numba.njit(**PARALLEL)
def _gru_backward_parts(xh, w_t, rec_t, keep, gates, hu_c, gh, has_gh, dh_last, dxw, dhu, dx, need_dx, backwards,
                        h0, bounds, wx, wh):
    for p in prange(bounds.shape[0] - 1):
        _gru_backward_rows(xh, w_t, rec_t, keep, gates, hu_c, gh, has_gh, dh_last, dxw, dhu, dx, need_dx, backwards,
                           h0, bounds[p], bounds[p + 1], wx, wh)


def gru_sequence_forward(xh, weights, recurrent_kernel, b_rec, keep, gates, hu_c, h_offset):
    """See the reference (kernels/reference/recurrent.py): the batch in parts over the threads."""
    steps, n, kk = xh.shape[0] - 1, xh.shape[1], xh.shape[2]
    g = weights.shape[1]
    count = parts(n, steps * n * kk * g)
    bounds = _bounds(n, count)
    rows = int(np.diff(bounds).max())
    wx, wh = block_width(rows, h_offset, g), block_width(rows, kk - h_offset, g)
    weights, recurrent_kernel = aligned(weights), aligned(recurrent_kernel)
    with blas_threads(1):
        if count > 1:
            _gru_forward_parts(xh, weights, recurrent_kernel, b_rec, keep, gates, hu_c, h_offset, bounds, wx, wh)
        else:
            _gru_forward_rows(xh, weights, recurrent_kernel, b_rec, keep, gates, hu_c, h_offset, 0, n, wx, wh)


def gru_sequence_backward(xh, weights_t, recurrent_t, keep, gates, hu_c, gh, dh_last, dxw, dhu, dx, wgx, wgh,
                          go_backwards=False):
    """See the reference (kernels/reference/recurrent.py): the batch in parts over the threads for the
    time loop, then the columns of the weight gradients in parts."""
    steps, n, g = dxw.shape
    d, u = weights_t.shape[1], recurrent_t.shape[1]
    h0 = xh.shape[2] - u
    count = parts(n, 3 * steps * n * (d + u) * g)
    bounds = _bounds(n, count)
    rows = min(int(np.diff(bounds).max()), ROW_BLOCK)  # the backward's products run in blocks of rows
    wx, wh = block_width(rows, g, d), block_width(rows, g, u)
    has_gh, need_dx = gh is not None, dx is not None
    dt = dxw.dtype
    gh = gh if has_gh else np.empty((1, 1, 1), dtype=dt)
    dx = dx if need_dx else np.empty((1, 1, 1), dtype=dt)
    weights_t, recurrent_t = aligned(weights_t), aligned(recurrent_t)
    with blas_threads(1):
        args = (xh, weights_t, recurrent_t, keep, gates, hu_c, gh, has_gh, dh_last, dxw, dhu, dx, need_dx,
                go_backwards, h0)
        if count > 1:
            _gru_backward_parts(*args, bounds, wx, wh)
        else:
            _gru_backward_rows(*args, 0, n, wx, wh)
        if wgx is not None:
            _weight_grad(xh, 0, dxw, wgx, count)
        if wgh is not None:
            _weight_grad(xh, h0, dhu, wgh, count)


if AVAILABLE:
    register("gru_sequence_forward", "numba", wrap=serialized)(gru_sequence_forward)
    register("gru_sequence_backward", "numba", wrap=serialized)(gru_sequence_backward)
