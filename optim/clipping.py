"""Gradient clipping over (slices of) the flat gradient buffer, in place.

Clipping by global L2 norm needs the norm of the whole gradient: the local loop computes it from
the one buffer; the distributed loop adds the squared norms of the blocks (scalars) first.
"""
import dataclasses
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


def variable_squared_norms(grad, bounds, offset=0):
    """The squared L2 norm of each variable's part of ``grad``, as a float64 array (one per variable).

    Args:
        grad: the flat gradient, or the block of it that starts at element ``offset``.
        bounds: each variable's ``(start, stop)`` in the flat gradient; parts outside the block count 0.

    Example:
        >>> import numpy as np
        >>> from ember.optim.clipping import variable_squared_norms
        >>> variable_squared_norms(np.array([3.0, 4.0, 1.0]), [(0, 2), (2, 3)])
        array([25.,  1.])
    """
    import numpy as np

    out = np.zeros(len(bounds))
    lo, hi = offset, offset + grad.size
    for k, (a, b) in enumerate(bounds):
        a, b = max(a, lo), min(b, hi)
        if a < b:
            out[k] = squared_norm(grad[a - offset:b - offset])
    return out


def clip_by_variable_norm(grad, bounds, clip_norm, squared_norms=None, offset=0):
    """Keras's ``clipnorm``: scale each variable's gradient to L2 norm at most ``clip_norm``, in place
    (``g * clip_norm / max(|g|, clip_norm)``); returns the norms before clipping.

    Args:
        grad: the flat gradient, or the block of it that starts at element ``offset``.
        bounds: each variable's ``(start, stop)`` in the flat gradient.
        clip_norm: the largest norm a variable's gradient may have, > 0.
        squared_norms: every variable's squared norm over the whole gradient (None: from ``grad``, which
            must then hold all of each variable it touches).

    Example:
        >>> import numpy as np
        >>> from ember.optim.clipping import clip_by_variable_norm
        >>> g = np.array([3.0, 4.0, 0.5])
        >>> _ = clip_by_variable_norm(g, [(0, 2), (2, 3)], 1.0); g
        array([0.6, 0.8, 0.5])
    """
    if clip_norm <= 0:
        raise ValueError(f"gradient clipping: clipnorm must be > 0, got {clip_norm!r}")
    if squared_norms is None:
        squared_norms = variable_squared_norms(grad, bounds, offset)
    norms = [math.sqrt(s) for s in squared_norms]
    lo, hi = offset, offset + grad.size
    for (a, b), norm in zip(bounds, norms):
        a, b = max(a, lo), min(b, hi)
        if a < b and norm > clip_norm:
            grad[a - offset:b - offset] *= clip_norm / norm
    return norms


@dataclasses.dataclass(frozen=True)
class Clipping:
    """The gradient clipping of a run, applied to the averaged gradient before the update rule: BigDL's
    constant and global L2-norm clipping (``set_gradclip_const``, ``set_gradclip_l2norm``), or one of Keras's
    ``clipvalue`` (the same as a constant clip to ``[-v, v]``), ``global_clipnorm`` (the same as the global
    L2 norm) and ``clipnorm`` (per variable).

    Example:
        >>> import numpy as np
        >>> from ember.optim.clipping import Clipping
        >>> g = np.array([3.0, 4.0, 0.5])
        >>> Clipping(variable_norm=1.0).apply(g, [(0, 2), (2, 3)]); g
        array([0.6, 0.8, 0.5])
    """
    const: tuple = None
    global_norm: float = None
    variable_norm: float = None

    def apply(self, grad, bounds):
        """Clip the whole flat gradient ``grad`` in place (``bounds``: the variables' (start, stop))."""
        if self.const is not None:
            clip_by_value(grad, *self.const)
        if self.global_norm is not None:
            clip_by_global_norm(grad, self.global_norm)
        if self.variable_norm is not None:
            clip_by_variable_norm(grad, bounds, self.variable_norm)
