"""Embedding gradient with Numba: the scatter-add of rows, split over column blocks so that
threads never write the same element (NumPy's ``add.at`` is unbuffered and slow)."""
import numba
import numpy as np

from ember.kernels.cpu.jit import parallel_above, prange, serialized
from ember.kernels.registry import register


@parallel_above(1 << 20)
def _scatter_add(g, ids, blocks, out):
    n, d = g.shape
    step = (d + blocks - 1) // blocks
    for t in prange(blocks):
        lo = t * step
        hi = min(d, lo + step)
        for i in range(n):
            row = ids[i]
            for j in range(lo, hi):
                out[row, j] += g[i, j]


@register("embedding_backward", "numba", wrap=serialized)
def embedding_backward(g, ids, num_rows):
    d = g.shape[-1]
    out = np.zeros((num_rows, d), dtype=g.dtype)
    blocks = max(1, min(d, numba.get_num_threads()))
    _scatter_add(np.ascontiguousarray(g).reshape(-1, d), np.ascontiguousarray(ids, dtype=np.int64).reshape(-1),
                 blocks, out)
    return out


@register("embedding_backward_into", "numba", wrap=serialized)
def embedding_backward_into(g, ids, out):
    d = g.shape[-1]
    blocks = max(1, min(d, numba.get_num_threads()))
    _scatter_add(np.ascontiguousarray(g).reshape(-1, d), np.ascontiguousarray(ids, dtype=np.int64).reshape(-1),
                 blocks, out)
