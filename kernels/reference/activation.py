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
