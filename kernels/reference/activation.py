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
def add_relu_forward(a, b):
    """max(a + b, 0) for two arrays of one shape (a residual sum and the ReLU after it)."""
    return np.maximum(a + b, 0).astype(np.result_type(a, b), copy=False)
