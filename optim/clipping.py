"""Gradient clipping over (slices of) the flat gradient buffer, in place.

Clipping by global L2 norm needs the norm of the whole gradient: the local loop computes it from
the one buffer; the distributed loop adds the squared norms of the blocks (scalars) first.
"""
import math

from ember.engine.backend import get_array_module


def clip_by_value(grad, min_value, max_value):
    """Clamp every gradient element into [min_value, max_value], in place; returns ``grad``.

    Args:
        grad: a float array (the flat gradient or a block of it).
        min_value, max_value: the bounds (min <= max).

    Example:
        >>> import numpy as np
        >>> from ember.optim import clip_by_value
        >>> clip_by_value(np.array([-5.0, 0.5, 5.0]), -1.0, 1.0)
        array([-1. ,  0.5,  1. ])
    """
    if min_value > max_value:
        raise ValueError(f"gradient clipping: min {min_value} > max {max_value}")
    xp = get_array_module(grad)
    xp.clip(grad, min_value, max_value, out=grad)
    return grad


def squared_norm(grad):
    """Sum of squares as a Python float (for adding up blocks)."""
    return float((grad * grad).sum())


def clip_by_global_norm(grad, max_norm, total_squared_norm=None):
    """Scale ``grad`` in place so that the global L2 norm is at most ``max_norm``; returns the norm
    before clipping.

    Args:
        grad: a float array (the flat gradient or one block of it).
        max_norm: the largest norm allowed, > 0.
        total_squared_norm: the sum of squares over all blocks when ``grad`` is one block (None: ``grad``'s own).

    Example:
        >>> import numpy as np
        >>> from ember.optim import clip_by_global_norm
        >>> g = np.array([3.0, 4.0])
        >>> clip_by_global_norm(g, 1.0), g
        (5.0, array([0.6, 0.8]))
    """
    if max_norm <= 0:
        raise ValueError(f"gradient clipping: max L2 norm must be > 0, got {max_norm!r}")
    norm = math.sqrt(squared_norm(grad) if total_squared_norm is None else total_squared_norm)
    if norm > max_norm:
        grad *= max_norm / norm
    return norm
