"""ReLU family (NumPy reference): leaky slope below 0, optional cap ``max_value`` (ReLU6)."""
import numpy as np

from ember.kernels.registry import register


@register("relu_forward", "numpy")
def relu_forward(x, max_value, slope):
    """y = x for x > 0 else slope * x, then min(y, max_value) when a cap is given."""
    y = np.where(x > 0, x, x * slope) if slope else np.maximum(x, 0)
    if max_value is not None:
        y = np.minimum(y, max_value)
    return y.astype(x.dtype, copy=False)


@register("relu_backward", "numpy")
def relu_backward(g, x, max_value, slope):
    """dx = g where 0 < x (< max_value), slope * g where x <= 0, 0 at or above the cap."""
    d = np.where(x > 0, g, g * slope) if slope else np.where(x > 0, g, 0)
    if max_value is not None:
        d = np.where(x < max_value, d, 0)
    return d.astype(g.dtype, copy=False)


@register("bias_activation_forward", "numpy")
def bias_activation_forward(x, bias, relu):
    """y = x + bias (bias on the last axis), then max(y, 0) when ``relu``."""
    y = x + bias.astype(x.dtype, copy=False)
    return np.maximum(y, 0) if relu else y


@register("bias_activation_backward", "numpy")
def bias_activation_backward(g, y, relu):
    """dx = g where y > 0 (g itself without ``relu``); dbias = dx summed over every axis but the last."""
    dx = np.where(y > 0, g, 0).astype(g.dtype, copy=False) if relu else g
    dbias = dx.reshape(-1, g.shape[-1]).sum(axis=0, dtype=np.float64).astype(g.dtype)
    return dx, dbias


@register("add_relu_forward", "numpy")
def add_relu_forward(a, b, overwrite=False):
    """max(a + b, 0) for two arrays of one shape (a residual sum and the ReLU after it); ``overwrite``:
    written into ``a`` (which is returned)."""
    if overwrite and a.dtype == np.result_type(a, b):
        np.add(a, b, out=a)
        return np.maximum(a, 0, out=a)
    return np.maximum(a + b, 0).astype(np.result_type(a, b), copy=False)


@register("sigmoid_forward", "numpy")
def sigmoid_forward(x):
    """1 / (1 + exp(-x)), split by sign so that exp never overflows."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


@register("sigmoid_backward", "numpy")
def sigmoid_backward(g, y):
    """dx = g * y * (1 - y) from the output y."""
    return (g * y * (1 - y)).astype(g.dtype, copy=False)


@register("tanh_backward", "numpy")
def tanh_backward(g, y):
    """dx = g * (1 - y^2) from the output y."""
    return (g * (1 - y * y)).astype(g.dtype, copy=False)


@register("elu_forward", "numpy")
def elu_forward(x, alpha):
    """x for x > 0, alpha * (exp(x) - 1) elsewhere."""
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0))).astype(x.dtype, copy=False)


@register("elu_backward", "numpy")
def elu_backward(g, x, y, alpha):
    """dx = g for x > 0, g * alpha * exp(x) = g * (y + alpha) elsewhere."""
    return np.where(x > 0, g, g * (y + alpha)).astype(g.dtype, copy=False)


@register("softplus_forward", "numpy")
def softplus_forward(x):
    """log(1 + exp(x)), as max(x, 0) + log1p(exp(-|x|)) so that exp never overflows."""
    return (np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))).astype(x.dtype, copy=False)


@register("softplus_backward", "numpy")
def softplus_backward(g, y):
    """dx = g * sigmoid(x) = g * (1 - exp(-y)) from the output y (exact where y is tiny: -expm1)."""
    return (-g * np.expm1(-y)).astype(g.dtype, copy=False)
