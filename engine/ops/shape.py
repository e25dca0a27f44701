"""Shape and indexing: reshape, transpose, indexing, concatenate, stack, pad."""
import numpy as np

from ember.engine.backend import backend_name, get_array_module
from ember.engine.tensor import Function
from ember.kernels import get_kernel


class Reshape(Function):
    def forward(self, a, shape=None):
        self.shape = a.shape
        return a.reshape(shape)

    def backward(self, g):
        return g.reshape(self.shape)


class Transpose(Function):
    def forward(self, a, axes=None):
        self.axes = tuple(range(a.ndim))[::-1] if axes is None else tuple(axes)
        return a.transpose(self.axes)

    def backward(self, g):
        inverse = [0] * len(self.axes)
        for i, ax in enumerate(self.axes):
            inverse[ax] = i
        return g.transpose(inverse)


def _kernel(name, arr):
    return get_kernel(name, backend_name(get_array_module(arr)))


class GetItem(Function):
    """a[index]; advanced (integer-array) indices scatter-add their gradients."""

    def forward(self, a, index=None):
        self.shape, self.dtype, self.index = a.shape, a.dtype, index
        return a[index]

    def backward(self, g):
        xp = get_array_module(g)
        out = xp.zeros(self.shape, dtype=self.dtype)
        if _is_basic(self.index):  # slices, integers, None, ...: each element is selected at most once
            out[self.index] = g
        elif xp.__name__ == "numpy":
            xp.add.at(out, self.index, g)
        else:  # cupyx.scatter_add equivalent
            out.scatter_add(self.index, g)
        return out


def _is_basic(index):
    """Whether ``index`` is basic indexing (NumPy's view rules: no element picked twice).

    NOTE: np.add.at over a plain slice, e.g. the last step (32, 128) of an LSTM's (32, 101, 128) output,
    took about 3 ms; an assignment takes microseconds."""
    parts = index if isinstance(index, tuple) else (index,)
    return all(p is None or p is Ellipsis or isinstance(p, (slice, int, np.integer)) and not isinstance(p, bool)
               for p in parts)


class EmbeddingLookup(Function):
    """table[ids]: table (V, D), ids integer array -> (*ids.shape, D); the gradient scatter-adds rows."""

    def forward(self, table, ids=None):
        self.ids, self.rows = ids, table.shape[0]
        return _kernel("embedding_forward", table)(table, ids)

    def backward(self, g):
        table = self.parents[0] if self.tracked else None
        grad = getattr(table, "grad", None)
        if (table is not None and table._ctx is None and type(g) is np.ndarray and type(grad) is np.ndarray
                and grad.shape == (self.rows, g.shape[-1]) and grad.dtype == g.dtype and grad.flags.c_contiguous):
            # NOTE: the table is a leaf whose gradient array exists (a view into the model's flat gradient
            # buffer): the rows are added into it here, and no (V, D) gradient goes back to be added in.
            # W5 (20,000 x 128 table) had np.zeros of 10 MB, the scatter, then .grad += that: a training
            # step took 33.5-34.2 ms of CPU time that way, 31.3-32.0 ms this way (1 thread, medians of 15
            # alternating steps, load 7.3).
            _kernel("embedding_backward_into", g)(g, self.ids, grad)
            return None
        return _kernel("embedding_backward", g)(g, self.ids, self.rows)


class Concatenate(Function):
    def forward(self, *arrays, axis=0):
        xp = get_array_module(*arrays)
        self.axis = axis
        self.sizes = [a.shape[axis] for a in arrays]
        return xp.concatenate(arrays, axis=axis)

    def backward(self, g):
        out, start = [], 0
        for size in self.sizes:
            idx = [slice(None)] * g.ndim
            idx[self.axis] = slice(start, start + size)
            out.append(g[tuple(idx)])
            start += size
        return tuple(out)


class Stack(Function):
    def forward(self, *arrays, axis=0):
        xp = get_array_module(*arrays)
        self.axis, self.n = axis, len(arrays)
        return xp.stack(arrays, axis=axis)

    def backward(self, g):
        xp = get_array_module(g)
        return tuple(xp.take(g, i, axis=self.axis) for i in range(self.n))


class Pad(Function):
    """Constant padding; ``pad_width`` as for ``numpy.pad``."""

    def forward(self, a, pad_width=None, value=0.0):
        xp = get_array_module(a)
        self.slices = tuple(slice(lo, lo + n) for (lo, _), n in zip(pad_width, a.shape))
        return xp.pad(a, pad_width, constant_values=value)

    def backward(self, g):
        return g[self.slices]


class BroadcastTo(Function):
    def forward(self, a, shape=None):
        xp = get_array_module(a)
        self.shape = a.shape
        return xp.broadcast_to(a, shape).copy()

    def backward(self, g):
        from ember.engine.ops.elementwise import unbroadcast

        return unbroadcast(g, self.shape)
