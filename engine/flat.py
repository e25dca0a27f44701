"""One contiguous buffer per dtype for a set of parameters, and one for their gradients.

Each parameter's ``.data`` and ``.grad`` become views into the buffers, so synchronising blocks of
parameters is a slice, a checkpoint is one array, and an optimizer update is one vectorised call.
"""
from ember.engine.backend import get_array_module


class FlatParameters:
    """Re-homes ``params`` (Tensors) into flat buffers, keeping their current values.

    Attributes:
        data: dict dtype-name -> 1-D parameter buffer.
        grad: dict dtype-name -> 1-D gradient buffer (zeros initially).
        params: the parameters, in buffer order.
    """

    def __init__(self, params):
        self.params = list(params)
        self.data, self.grad, self.offsets = {}, {}, []
        sizes = {}
        for p in self.params:
            key = p.dtype.name
            self.offsets.append((key, sizes.get(key, 0)))
            sizes[key] = sizes.get(key, 0) + p.size
        xp = get_array_module(*(p.data for p in self.params)) if self.params else None
        for key, total in sizes.items():
            self.data[key] = xp.empty(total, dtype=key)
            self.grad[key] = xp.zeros(total, dtype=key)
        for p, (key, start) in zip(self.params, self.offsets):
            view = self.data[key][start:start + p.size].reshape(p.shape)
            view[...] = p.data
            p.data = view
            p.grad = self.grad[key][start:start + p.size].reshape(p.shape)

    def is_current(self, params):
        """True while ``params`` are exactly these and still views of the buffers."""
        if len(params) != len(self.params):
            return False
        for p, q, (key, _) in zip(params, self.params, self.offsets):
            if p is not q or p.data.base is not self.data[key] or p.grad is None or p.grad.base is not self.grad[key]:
                return False
        return True

    def zero_grad(self, deferred=False):
        """Zero every gradient. ``deferred``: for a loop whose backward pass follows at once (the training
        loops' own step), only mark them zero: the backward pass writes each gradient it reaches instead of
        adding it (``Tensor._grad_zero``), and ``flush_zero`` then zeroes those it did not reach. Until
        then the ``.grad`` arrays hold stale values.

        NOTE: W1's step spent 0.12-0.13 ms of its 2.4 ms writing zeros into 2 MB of gradients that the
        backward pass then overwrote (the products write the weights' gradients in place)."""
        if not deferred:
            for g in self.grad.values():
                g[...] = 0
        for p in self.params:  # ``Tensor.backward`` may then write their gradients instead of adding them
            p._grad_zero = True

    def flush_zero(self):
        """After a ``zero_grad(deferred=True)`` and the backward pass: zero the gradients it did not reach."""
        for p in self.params:
            if p._grad_zero:
                p.grad[...] = 0
