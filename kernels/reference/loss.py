"""Softmax + cross-entropy on logits, fused (NumPy reference): one pass for the loss and the
probabilities, and the gradient (p - onehot) without forming the one-hot matrix."""
import numpy as np

from ember.kernels.registry import register


@register("softmax_cross_entropy_forward", "numpy")
def softmax_cross_entropy_forward(logits, labels):
    """logits (N, C), labels (N,) int -> (losses (N,), probabilities (N, C)); losses = logsumexp - z[label]."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    s = e.sum(axis=1, keepdims=True)
    losses = np.log(s[:, 0]) - shifted[np.arange(len(labels)), labels]
    return losses.astype(logits.dtype, copy=False), (e / s).astype(logits.dtype, copy=False)


@register("softmax_cross_entropy_backward", "numpy")
def softmax_cross_entropy_backward(probs, labels, scale):
    """d(scale * sum of losses)/dlogits = scale * (p - onehot(labels))."""
    d = probs * scale
    d[np.arange(len(labels)), labels] -= scale
    return d.astype(probs.dtype, copy=False)
