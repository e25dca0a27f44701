"""ReLU family with Numba: one parallel pass instead of NumPy's mask, select and cast passes."""
import math

import numpy as np

from ember.kernels.cpu.jit import parallel_above, prange, serialized
from ember.kernels.registry import register


@parallel_above(8 << 20)
def _relu_forward(x, cap, slope, y):
    for i in prange(x.size):
        v = x[i]
        r = v if v > 0 else v * slope
        y[i] = r if r < cap else cap


@parallel_above(8 << 20)
def _relu_backward(g, x, cap, slope, dx):
    for i in prange(x.size):
        v = x[i]
        if v >= cap:
            dx[i] = 0
        elif v > 0:
            dx[i] = g[i]
        else:
            dx[i] = g[i] * slope


@register("relu_forward", "numba", wrap=serialized)
def relu_forward(x, max_value, slope):
    x = np.ascontiguousarray(x)
    y = np.empty_like(x)
    scalar = x.dtype.type  # compute in the input's precision, as NumPy does
    _relu_forward(x.reshape(-1), scalar(math.inf if max_value is None else max_value), scalar(slope), y.reshape(-1))
    return y


@register("relu_backward", "numba", wrap=serialized)
def relu_backward(g, x, max_value, slope):
    g, x = np.ascontiguousarray(g), np.ascontiguousarray(x)
    dx = np.empty_like(g)
    scalar = g.dtype.type
    _relu_backward(g.reshape(-1), x.reshape(-1), scalar(math.inf if max_value is None else max_value), scalar(slope),
                   dx.reshape(-1))
    return dx
