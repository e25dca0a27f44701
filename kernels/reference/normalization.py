"""Batch normalisation over the rows of a (M, C) array: channels last, every other axis flattened
(NumPy reference). Statistics are per column; the variance is the biased one (divide by M)."""
import numpy as np

from ember.kernels.registry import register


@register("batch_norm_forward_train", "numpy")
def batch_norm_forward_train(x, gamma, beta, eps):
    """Returns (y, mean, var, inv_std): y = gamma * (x - mean) * inv_std + beta, inv_std = 1/sqrt(var + eps)."""
    mean = x.mean(axis=0)
    centered = x - mean
    var = (centered * centered).mean(axis=0)
    inv_std = (1.0 / np.sqrt(var + eps)).astype(x.dtype)
    return (centered * inv_std * gamma + beta).astype(x.dtype, copy=False), mean, var, inv_std


@register("batch_norm_backward", "numpy")
def batch_norm_backward(g, x, mean, inv_std, gamma):
    """Returns (dx, dgamma, dbeta) for ``batch_norm_forward_train`` (batch statistics)."""
    m = x.shape[0]
    xhat = (x - mean) * inv_std
    dbeta = g.sum(axis=0)
    dgamma = (g * xhat).sum(axis=0)
    dx = (gamma * inv_std / m) * (m * g - dbeta - xhat * dgamma)
    return dx.astype(g.dtype, copy=False), dgamma, dbeta


@register("scale_shift", "numpy")
def scale_shift(x, scale, shift):
    """y = x * scale + shift per column (batch norm with fixed statistics, folded)."""
    return (x * scale + shift).astype(x.dtype, copy=False)
