"""Embedding lookup (row gather) and its gradient (row scatter-add), NumPy reference."""
import numpy as np

from ember.kernels.registry import register


@register("embedding_forward", "numpy")
def embedding_forward(table, ids):
    """table (V, D), ids (...) ints in [0, V) -> (..., D)."""
    return table[ids]


@register("embedding_backward", "numpy")
def embedding_backward(g, ids, num_rows):
    """The gradient of the table: rows of ``g`` (..., D) added at their ids (repeats add up)."""
    d = g.shape[-1]
    out = np.zeros((num_rows, d), dtype=g.dtype)
    np.add.at(out, ids.reshape(-1), g.reshape(-1, d))
    return out


@register("embedding_backward_into", "numpy")
def embedding_backward_into(g, ids, out):
    """embedding_backward added into ``out`` (V, D) in place: the rows of ``g`` (..., D) at their ids."""
    d = g.shape[-1]
    np.add.at(out, ids.reshape(-1), g.reshape(-1, d))
