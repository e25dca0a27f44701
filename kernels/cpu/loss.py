"""Softmax + cross-entropy on logits with Numba: one parallel pass over the rows each way."""
import math

import numpy as np

from ember.kernels.cpu.jit import parallel_above, prange, serialized
from ember.kernels.registry import register


@parallel_above(1 << 20)
def _forward(z, labels, losses, p):
    n, c = z.shape
    for i in prange(n):
        m = z[i, 0]
        for j in range(1, c):
            if z[i, j] > m:
                m = z[i, j]
        s = 0.0
        for j in range(c):
            e = math.exp(z[i, j] - m)
            p[i, j] = e
            s += e
        inv = 1.0 / s
        for j in range(c):
            p[i, j] *= inv
        losses[i] = math.log(s) - (z[i, labels[i]] - m)


@parallel_above(1 << 20)
def _backward(p, labels, scale, d):
    n, c = p.shape
    for i in prange(n):
        for j in range(c):
            d[i, j] = p[i, j] * scale
        d[i, labels[i]] -= scale


@register("softmax_cross_entropy_forward", "numba", wrap=serialized)
def softmax_cross_entropy_forward(logits, labels):
    z = np.ascontiguousarray(logits)
    losses = np.empty(z.shape[0], dtype=z.dtype)
    p = np.empty_like(z)
    _forward(z, np.ascontiguousarray(labels, dtype=np.int64), losses, p)
    return losses, p


@register("softmax_cross_entropy_backward", "numba", wrap=serialized)
def softmax_cross_entropy_backward(probs, labels, scale):
    d = np.empty_like(probs)
    _backward(np.ascontiguousarray(probs), np.ascontiguousarray(labels, dtype=np.int64), probs.dtype.type(scale), d)
    return d
