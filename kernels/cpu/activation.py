"""ReLU family with Numba: one parallel pass instead of NumPy's mask, select and cast passes; and a
bias add fused with ReLU (or alone), one pass each way."""
import math

import numpy as np

from ember.kernels.cpu.jit import parallel_above, partial_sum_blocks, prange, serialized
from ember.kernels.registry import register


@parallel_above(8 << 20)
def _relu_forward(x, cap, slope, y):
    zero = slope - slope
    for i in prange(x.size):
        v = x[i]
        r = v  # x > 0, and NaN, which passes (as through np.maximum and np.minimum)
        if v <= 0:
            # with a zero slope, +0.0 as np.maximum gives: a negative value times 0 would be -0.0
            # (and -inf times 0 NaN)
            r = v * slope if slope != 0 else zero
        y[i] = r if not r > cap else cap


@parallel_above(8 << 20)
def _relu_backward(g, x, cap, slope, dx):
    for i in prange(x.size):
        v = x[i]
        if v >= cap:
            dx[i] = 0
        elif v > 0:
            dx[i] = g[i]
        else:
            # with a zero slope +0.0, as the reference's np.where(x > 0, g, 0), not g * 0 (-0.0 or NaN)
            dx[i] = g[i] * slope if slope != 0 else slope - slope


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


# NOTE: a bias on the last axis repeats with period C. The flat array is walked in runs of whole rows
# (at least RUN elements) against the bias tiled to that length, so the inner loop is long and
# vectorizes even for C = 6; row by row it would be six scalar operations. NumPy's broadcast add
# takes 0.39 ms on LeNet's 128x28x28x6 activations.
RUN = 512


def _run_length(c):
    return c * -(-RUN // c)  # whole rows of c, at least RUN elements


def _tiled(bias, c, dtype):
    return np.tile(bias.astype(dtype, copy=False), _run_length(c) // c)


@parallel_above(8 << 20)
def _bias_forward(x, tiled, relu, y):
    n, p = x.size, tiled.size
    for r in prange((n + p - 1) // p):
        # a run as its own slices: indices from 0 up, which LLVM can prove non-negative (with s + k,
        # Numba's wraparound check for negative indices stays in the loop and keeps it scalar)
        xs, ys = x[r * p:(r + 1) * p], y[r * p:(r + 1) * p]
        for k in range(xs.size):
            v = xs[k] + tiled[k]
            ys[k] = v if not (relu and v <= 0) else 0  # NaN passes, as in np.maximum


# NOTE: threads from 512K values: LeNet's 128x28x28x6 activations 0.856 ms serial, 0.347 ms threaded;
# its 128x10x10x16 ones 0.115 vs 0.129 ms (float32, min of 9 x 30 calls, load 6 on 2 cores).
@parallel_above(512 << 10)
def _bias_backward(g, y, relu, p, blocks, dx, acc):
    # dx = g where y > 0 (when relu); acc[t, k] = the sum of dx over block t's runs at offset k
    runs = (g.size + p - 1) // p
    step = (runs + blocks - 1) // blocks
    for t in prange(blocks):
        at = acc[t]
        for r in range(t * step, min(runs, (t + 1) * step)):
            gs, ys, ds = g[r * p:(r + 1) * p], y[r * p:(r + 1) * p], dx[r * p:(r + 1) * p]
            if relu:
                for k in range(gs.size):
                    ds[k] = gs[k] if ys[k] > 0 else 0
                gs = ds
            for k in range(gs.size):  # a loop of its own: with the store to ds in it, it stayed scalar
                at[k] += gs[k]


@register("bias_activation_forward", "numba", wrap=serialized)
def bias_activation_forward(x, bias, relu):
    x = np.ascontiguousarray(x)
    c = x.shape[-1]
    y = np.empty_like(x)
    _bias_forward(x.reshape(-1), _tiled(bias, c, x.dtype), bool(relu), y.reshape(-1))
    return y


@register("bias_activation_backward", "numba", wrap=serialized)
def bias_activation_backward(g, y, relu):
    g = np.ascontiguousarray(g)
    c = g.shape[-1]
    p = _run_length(c)
    blocks = partial_sum_blocks(-(-g.size // p))
    acc = np.zeros((blocks, p))
    dx = np.empty_like(g) if relu else g
    _bias_backward(g.reshape(-1), np.ascontiguousarray(y).reshape(-1) if relu else g.reshape(-1), bool(relu), p,
                   blocks, dx.reshape(-1), acc)
    return dx, acc.sum(axis=0).reshape(-1, c).sum(axis=0).astype(g.dtype)


def _flat(a):
    return np.ascontiguousarray(a).reshape(-1)


def _into_new(kernel, shape, *args):
    """``kernel(*args, out)`` with ``out`` a new array like the flat ``args[0]``, returned in ``shape``.
    NOTE: always a new output: a pass writing into one of its own inputs ran 10-30x slower."""
    out = np.empty_like(args[0])
    kernel(*args, out)
    return out.reshape(shape)


@parallel_above(8 << 20)
def _add_relu(a, b, y):
    for i in prange(a.size):
        v = a[i] + b[i]
        y[i] = v if not v <= 0 else 0


@parallel_above(8 << 20)
def _add_relu_into(a, b):
    for i in prange(a.size):
        v = a[i] + b[i]
        a[i] = v if not v <= 0 else 0


@register("add_relu_forward", "numba", wrap=serialized)
def add_relu_forward(a, b, overwrite=False):
    """``overwrite``: the result goes into ``a`` itself (returned), when ``a`` is a writable contiguous array."""
    if a.shape != b.shape or a.dtype != b.dtype or (overwrite and not _writable(a)):
        from ember.kernels.reference.activation import add_relu_forward as reference

        return reference(a, b, overwrite and _writable(a))
    if overwrite:
        _add_relu_into(a.reshape(-1), _flat(b))
        return a
    return _into_new(_add_relu, a.shape, _flat(a), _flat(b))


def _writable(a):
    return a.flags.c_contiguous and a.flags.writeable


# ---- sigmoid, tanh, ELU, softplus ----
# NOTE: Numba calls libm for exp/tanh one element at a time (1M float32: exp 2.0 ms, tanh 16.5 ms,
# erf 10.5 ms), while NumPy's own exp/expm1/log1p/tanh loops use SIMD (0.2-0.5 ms). So the
# transcendental step stays in NumPy, in place in one buffer, and a Numba pass does everything else
# (NumPy's where/divide/cast passes and their temporaries were the cost: sigmoid 5.4 ms per 1M).

def _exp_minus_abs(x):
    e = np.abs(x)
    np.negative(e, out=e)
    return np.exp(e, out=e)


@parallel_above(8 << 20)
def _sigmoid_from_exp(x, e, y):  # e = exp(-|x|)
    for i in prange(x.size):
        ei = e[i]
        y[i] = (1 if x[i] >= 0 else ei) / (1 + ei)


@parallel_above(8 << 20)
def _sigmoid_grad(g, y, dx):
    for i in prange(g.size):
        dx[i] = g[i] * y[i] * (1 - y[i])


@parallel_above(8 << 20)
def _tanh_grad(g, y, dx):
    for i in prange(g.size):
        dx[i] = g[i] * (1 - y[i] * y[i])


@parallel_above(8 << 20)
def _elu_from_expm1(x, em1, alpha, y):  # em1 = expm1(min(x, 0))
    for i in prange(x.size):
        y[i] = x[i] if x[i] > 0 else alpha * em1[i]


@parallel_above(8 << 20)
def _elu_grad(g, x, y, alpha, dx):
    for i in prange(g.size):
        dx[i] = g[i] if x[i] > 0 else g[i] * (y[i] + alpha)


@parallel_above(8 << 20)
def _softplus_from_log1p(x, l1p, y):  # l1p = log1p(exp(-|x|))
    for i in prange(x.size):
        y[i] = max(x[i], 0) + l1p[i]


@parallel_above(8 << 20)
def _times_minus(g, s, dx):
    for i in prange(g.size):
        dx[i] = -g[i] * s[i]


@register("sigmoid_forward", "numba", wrap=serialized)
def sigmoid_forward(x):
    xf = _flat(x)
    return _into_new(_sigmoid_from_exp, x.shape, xf, _exp_minus_abs(xf))


@register("sigmoid_backward", "numba", wrap=serialized)
def sigmoid_backward(g, y):
    return _into_new(_sigmoid_grad, g.shape, _flat(g), _flat(y))


@register("tanh_backward", "numba", wrap=serialized)
def tanh_backward(g, y):
    return _into_new(_tanh_grad, g.shape, _flat(g), _flat(y))


@register("elu_forward", "numba", wrap=serialized)
def elu_forward(x, alpha):
    xf = _flat(x)
    t = np.minimum(xf, 0)
    return _into_new(_elu_from_expm1, x.shape, xf, np.expm1(t, out=t), xf.dtype.type(alpha))


@register("elu_backward", "numba", wrap=serialized)
def elu_backward(g, x, y, alpha):
    return _into_new(_elu_grad, g.shape, _flat(g), _flat(x), _flat(y), g.dtype.type(alpha))


@register("softplus_forward", "numba", wrap=serialized)
def softplus_forward(x):
    xf = _flat(x)
    t = _exp_minus_abs(xf)
    return _into_new(_softplus_from_log1p, x.shape, xf, np.log1p(t, out=t))


@register("softplus_backward", "numba", wrap=serialized)
def softplus_backward(g, y):
    s = np.negative(_flat(y))
    return _into_new(_times_minus, g.shape, _flat(g), np.expm1(s, out=s))
