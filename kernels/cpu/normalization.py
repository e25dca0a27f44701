"""Batch normalisation with Numba: per-thread partial sums over row blocks (float64 accumulators),
then one pass that writes the output; ``xhat`` is recomputed in the backward pass, not stored. Two
passes each way, with an optional ReLU fused in (its mask recomputed, not stored)."""
import numpy as np

from ember.kernels.cpu.jit import parallel_above, partial_sum_blocks, prange, serialized
from ember.kernels.registry import register


@parallel_above(8 << 20)
def _moments(x, shift, blocks, out):
    # out[0, t, c] = sum over the rows of block t of (x - shift), out[1, t, c] of (x - shift)^2: one
    # pass for mean and variance. The shift is a row of x, so the variance E[d^2] - E[d]^2 does not
    # cancel catastrophically, and the sums are float64.
    m, c = x.shape
    step = (m + blocks - 1) // blocks
    for t in prange(blocks):
        s1, s2 = out[0, t], out[1, t]
        for i in range(t * step, min(m, (t + 1) * step)):
            xi = x[i]
            for j in range(c):
                d = xi[j] - shift[j]
                s1[j] += d
                s2[j] += d * d


@parallel_above(8 << 20)
def _normalize(x, mean, inv_std, gamma, beta, relu, y):
    m, c = x.shape
    for i in prange(m):
        xi, yi = x[i], y[i]
        for j in range(c):
            # the backward recomputes this value in the same order, so a fused ReLU's mask is the
            # same bit for bit
            v = (xi[j] - mean[j]) * inv_std[j] * gamma[j] + beta[j]
            yi[j] = v if not (relu and v <= 0) else 0  # NaN passes, as in np.maximum


@parallel_above(8 << 20)
def _backward_sums(g, x, mean, inv_std, gamma, beta, relu, blocks, out):
    # out[0, t, c] = sum g; out[1, t, c] = sum g * xhat (g zeroed where a fused ReLU's output was 0)
    m, c = x.shape
    step = (m + blocks - 1) // blocks
    linear = np.float32(not relu)
    for t in prange(blocks):
        s1, s2 = out[0, t], out[1, t]
        for i in range(t * step, min(m, (t + 1) * step)):
            xi, gi = x[i], g[i]
            for j in range(c):
                # NOTE: g times a 0/1 mask: as a select (``g if ... else 0``) this loop ran 1.8x
                # slower. (An infinite g where the ReLU's output was 0 gives NaN here, not 0.)
                xhat = (xi[j] - mean[j]) * inv_std[j]
                gj = gi[j] * max(np.float32(xhat * gamma[j] + beta[j] > 0), linear)
                s1[j] += gj
                s2[j] += gj * xhat


@parallel_above(8 << 20)
def _backward_dx(g, x, mean, inv_std, gamma, beta, relu, dbeta, dgamma, dx):
    m, c = x.shape
    linear = np.float32(not relu)
    for i in prange(m):
        xi, gi, di = x[i], g[i], dx[i]
        for j in range(c):
            xhat = (xi[j] - mean[j]) * inv_std[j]
            gj = gi[j] * max(np.float32(xhat * gamma[j] + beta[j] > 0), linear)
            di[j] = gamma[j] * inv_std[j] / m * (m * gj - dbeta[j] - xhat * dgamma[j])


@parallel_above(8 << 20)
def _scale_shift(x, scale, shift, relu, y):
    m, c = x.shape
    for i in prange(m):
        xi, yi = x[i], y[i]
        for j in range(c):
            v = xi[j] * scale[j] + shift[j]
            yi[j] = v if not (relu and v <= 0) else 0


@register("batch_norm_forward_train", "numba", wrap=serialized)
def batch_norm_forward_train(x, gamma, beta, eps, relu=False):
    x = np.ascontiguousarray(x)
    m, c = x.shape
    blocks = partial_sum_blocks(m)
    sums = np.zeros((2, blocks, c))
    _moments(x, x[0].astype(np.float64), blocks, sums)
    shifted_mean = sums[0].sum(axis=0) / m
    var = np.maximum(sums[1].sum(axis=0) / m - shifted_mean * shifted_mean, 0).astype(x.dtype)
    mean = (shifted_mean + x[0]).astype(x.dtype)
    inv_std = (1.0 / np.sqrt(var + eps)).astype(x.dtype)
    y = np.empty_like(x)
    _normalize(x, mean, inv_std, gamma.astype(x.dtype, copy=False), beta.astype(x.dtype, copy=False), bool(relu), y)
    return y, mean, var, inv_std


@register("batch_norm_backward", "numba", wrap=serialized)
def batch_norm_backward(g, x, mean, inv_std, gamma, beta=None, relu=False):
    g, x = np.ascontiguousarray(g), np.ascontiguousarray(x)
    m, c = x.shape
    gamma = gamma.astype(g.dtype, copy=False)
    beta = np.zeros_like(gamma) if beta is None else beta.astype(g.dtype, copy=False)
    blocks = partial_sum_blocks(m)
    sums = np.zeros((2, blocks, c))
    _backward_sums(g, x, mean, inv_std, gamma, beta, bool(relu), blocks, sums)
    dbeta, dgamma = sums[0].sum(axis=0).astype(g.dtype), sums[1].sum(axis=0).astype(g.dtype)
    dx = np.empty_like(g)
    _backward_dx(g, x, mean, inv_std, gamma, beta, bool(relu), dbeta, dgamma, dx)
    return dx, dgamma, dbeta


@register("scale_shift", "numba", wrap=serialized)
def scale_shift(x, scale, shift, relu=False):
    x = np.ascontiguousarray(x)
    y = np.empty_like(x)
    _scale_shift(x, scale.astype(x.dtype, copy=False), shift.astype(x.dtype, copy=False), bool(relu), y)
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
