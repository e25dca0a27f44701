"""Batch normalisation with Numba: per-thread partial sums over row blocks (float64 accumulators),
then one pass that writes the output; ``xhat`` is recomputed in the backward pass, not stored."""
import numba
import numpy as np

from ember.kernels.cpu.jit import parallel_above, prange, serialized
from ember.kernels.registry import register


@parallel_above(8 << 20)
def _column_sums(x, shift, square, blocks, out):
    # out[t, c] = sum over the rows of block t of (x - shift) or (x - shift)^2
    m, c = x.shape
    step = (m + blocks - 1) // blocks
    for t in prange(blocks):
        for i in range(t * step, min(m, (t + 1) * step)):
            for j in range(c):
                d = x[i, j] - shift[j]
                out[t, j] += d * d if square else d


@parallel_above(8 << 20)
def _normalize(x, mean, inv_std, gamma, beta, y):
    m, c = x.shape
    for i in prange(m):
        for j in range(c):
            y[i, j] = (x[i, j] - mean[j]) * inv_std[j] * gamma[j] + beta[j]


@parallel_above(8 << 20)
def _backward_sums(g, x, mean, inv_std, blocks, out):
    # out[0, t, c] = sum g; out[1, t, c] = sum g * xhat
    m, c = x.shape
    step = (m + blocks - 1) // blocks
    for t in prange(blocks):
        for i in range(t * step, min(m, (t + 1) * step)):
            for j in range(c):
                out[0, t, j] += g[i, j]
                out[1, t, j] += g[i, j] * (x[i, j] - mean[j]) * inv_std[j]


@parallel_above(8 << 20)
def _backward_dx(g, x, mean, inv_std, gamma, dbeta, dgamma, dx):
    m, c = x.shape
    for i in prange(m):
        for j in range(c):
            xhat = (x[i, j] - mean[j]) * inv_std[j]
            dx[i, j] = gamma[j] * inv_std[j] / m * (m * g[i, j] - dbeta[j] - xhat * dgamma[j])


@parallel_above(8 << 20)
def _scale_shift(x, scale, shift, y):
    m, c = x.shape
    for i in prange(m):
        for j in range(c):
            y[i, j] = x[i, j] * scale[j] + shift[j]


def _blocks(m):
    return max(1, min(m, 4 * numba.get_num_threads()))


@register("batch_norm_forward_train", "numba", wrap=serialized)
def batch_norm_forward_train(x, gamma, beta, eps):
    x = np.ascontiguousarray(x)
    m, c = x.shape
    blocks = _blocks(m)
    sums = np.zeros((blocks, c))
    _column_sums(x, np.zeros(c, dtype=x.dtype), False, blocks, sums)
    mean = (sums.sum(axis=0) / m).astype(x.dtype)
    sums[...] = 0
    _column_sums(x, mean, True, blocks, sums)
    var = (sums.sum(axis=0) / m).astype(x.dtype)
    inv_std = (1.0 / np.sqrt(var + eps)).astype(x.dtype)
    y = np.empty_like(x)
    _normalize(x, mean, inv_std, gamma.astype(x.dtype, copy=False), beta.astype(x.dtype, copy=False), y)
    return y, mean, var, inv_std


@register("batch_norm_backward", "numba", wrap=serialized)
def batch_norm_backward(g, x, mean, inv_std, gamma):
    g, x = np.ascontiguousarray(g), np.ascontiguousarray(x)
    m, c = x.shape
    blocks = _blocks(m)
    sums = np.zeros((2, blocks, c))
    _backward_sums(g, x, mean, inv_std, blocks, sums)
    dbeta, dgamma = sums[0].sum(axis=0), sums[1].sum(axis=0)
    dx = np.empty_like(g)
    _backward_dx(g, x, mean, inv_std, gamma.astype(g.dtype, copy=False), dbeta.astype(g.dtype),
                 dgamma.astype(g.dtype), dx)
    return dx, dgamma.astype(g.dtype), dbeta.astype(g.dtype)


@register("scale_shift", "numba", wrap=serialized)
def scale_shift(x, scale, shift):
    x = np.ascontiguousarray(x)
    y = np.empty_like(x)
    _scale_shift(x, scale.astype(x.dtype, copy=False), shift.astype(x.dtype, copy=False), y)
    return y


@parallel_above(2 << 20, work=lambda x, size, *a: x.size * size)
def _lrn_forward(x, size, alpha, beta, k, y, s):
    m, c = x.shape
    before, after = (size - 1) // 2, size // 2
    for i in prange(m):
        for j in range(c):
            acc = 0.0
            for q in range(max(0, j - before), min(c, j + after + 1)):
                acc += x[i, q] * x[i, q]
            sj = k + alpha / size * acc
            s[i, j] = sj
            y[i, j] = x[i, j] * sj ** -beta


@parallel_above(2 << 20, work=lambda g, x, y, s, size, *a: g.size * size)
def _lrn_backward(g, x, y, s, size, alpha, beta, dx):
    m, c = x.shape
    before, after = (size - 1) // 2, size // 2
    coef = 2.0 * alpha * beta / size
    for i in prange(m):
        for j in range(c):
            acc = 0.0
            for q in range(max(0, j - after), min(c, j + before + 1)):  # the c whose window holds j
                acc += g[i, q] * y[i, q] / s[i, q]
            dx[i, j] = g[i, j] * s[i, j] ** -beta - coef * x[i, j] * acc


@register("lrn_forward", "numba", wrap=serialized)
def lrn_forward(x, size, alpha, beta, k):
    x = np.ascontiguousarray(x)
    y, s = np.empty_like(x), np.empty_like(x)
    _lrn_forward(x, int(size), float(alpha), float(beta), float(k), y, s)
    return y, s


@register("lrn_backward", "numba", wrap=serialized)
def lrn_backward(g, x, y, s, size, alpha, beta, k):
    dx = np.empty_like(g)
    _lrn_backward(np.ascontiguousarray(g), np.ascontiguousarray(x), np.ascontiguousarray(y),
                  np.ascontiguousarray(s), int(size), float(alpha), float(beta), dx)
    return dx
