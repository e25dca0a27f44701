"""Batch normalisation over the rows of a (M, C) array: channels last, every other axis flattened
(NumPy reference). Statistics are per column; the variance is the biased one (divide by M)."""
import numpy as np

from ember.kernels.registry import register


def _normalized(x, mean, inv_std, gamma, beta):
    return (x - mean) * inv_std * gamma + beta


@register("batch_norm_forward_train", "numpy")
def batch_norm_forward_train(x, gamma, beta, eps, relu=False):
    """Returns (y, mean, var, inv_std): y = gamma * (x - mean) * inv_std + beta, inv_std = 1/sqrt(var + eps),
    then max(y, 0) when ``relu`` (batch norm and the ReLU after it as one op)."""
    mean = x.mean(axis=0)
    centered = x - mean
    var = (centered * centered).mean(axis=0)
    inv_std = (1.0 / np.sqrt(var + eps)).astype(x.dtype)
    y = _normalized(x, mean, inv_std, gamma, beta).astype(x.dtype, copy=False)
    return (np.maximum(y, 0) if relu else y), mean, var, inv_std


@register("batch_norm_backward", "numpy")
def batch_norm_backward(g, x, mean, inv_std, gamma, beta=None, relu=False):
    """Returns (dx, dgamma, dbeta) for ``batch_norm_forward_train`` (batch statistics); with ``relu``,
    ``g`` is first zeroed where the normalised value (recomputed with ``beta``) is not above 0."""
    m = x.shape[0]
    if relu:
        g = np.where(_normalized(x, mean, inv_std, gamma, beta) > 0, g, 0).astype(g.dtype, copy=False)
    xhat = (x - mean) * inv_std
    dbeta = g.sum(axis=0)
    dgamma = (g * xhat).sum(axis=0)
    dx = (gamma * inv_std / m) * (m * g - dbeta - xhat * dgamma)
    return dx.astype(g.dtype, copy=False), dgamma, dbeta


@register("scale_shift", "numpy")
def scale_shift(x, scale, shift, relu=False):
    """y = x * scale + shift per column (batch norm with fixed statistics, folded), then max(y, 0)
    when ``relu``."""
    y = (x * scale + shift).astype(x.dtype, copy=False)
    return np.maximum(y, 0) if relu else y


def _window_sums(v, before, after):
    """sum_{c' = c - before}^{c + after} v[:, c'] for every column c (zero beyond the edges)."""
    m, c = v.shape
    csum = np.zeros((m, c + 1), dtype=np.float64)
    np.cumsum(v, axis=1, out=csum[:, 1:])
    hi = np.minimum(np.arange(c) + after + 1, c)
    lo = np.maximum(np.arange(c) - before, 0)
    return csum[:, hi] - csum[:, lo]


@register("lrn_forward", "numpy")
def lrn_forward(x, size, alpha, beta, k):
    """Cross-channel LRN on (M, C): s = k + alpha / size * (window sum of x^2), y = x * s^-beta, the
    window [c - (size - 1) // 2, c + size // 2]. Returns (y, s)."""
    s = k + (alpha / size) * _window_sums(x.astype(np.float64) ** 2, (size - 1) // 2, size // 2)
    return (x * s ** -beta).astype(x.dtype), s.astype(x.dtype)


@register("lrn_backward", "numpy")
def lrn_backward(g, x, y, s, size, alpha, beta, k):
    """dx_j = g_j s_j^-beta - 2 alpha beta / size * x_j * sum over the c whose window holds j of g_c y_c / s_c."""
    t = (g * y / s).astype(np.float64)
    back = _window_sums(t, size // 2, (size - 1) // 2)  # the transposed window
    return (g * s ** -beta - (2 * alpha * beta / size) * x * back).astype(g.dtype)
