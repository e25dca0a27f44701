"""Matrix products (BLAS through NumPy, cuBLAS through CuPy)."""
from ember.engine.backend import get_array_module
from ember.engine.ops.elementwise import unbroadcast
from ember.engine.tensor import Function


class MatMul(Function):
    """a @ b with NumPy's matmul semantics (batched, broadcasting leading axes)."""

    def forward(self, a, b):
        self.a, self.b = a, b
        return a @ b

    def backward(self, g):
        xp = get_array_module(g)
        a, b = self.a, self.b
        ga = gb = None
        if self.needs_input_grad[0]:
            if b.ndim == 1:
                ga = xp.multiply.outer(g, b) if a.ndim > 1 else g * b
            else:
                gg = g[..., None, :] if a.ndim == 1 else g
                ga = gg @ xp.swapaxes(b, -1, -2)
                if a.ndim == 1:
                    ga = ga[..., 0, :]
            ga = unbroadcast(ga, a.shape)
        if self.needs_input_grad[1]:
            if a.ndim == 1:
                gb = xp.multiply.outer(a, g) if b.ndim > 1 else g * a
            elif a.ndim == 2 and b.ndim == 2 and self.grad_out is not None and self.grad_out[1] is not None \
                    and self.grad_out[1].dtype == g.dtype:
                # a weight's gradient straight into its zeroed .grad: no new array, no pass adding it
                # (W1: 1.6 MB per step for the first layer)
                xp.matmul(a.T, g, out=self.grad_out[1])
                return ga, None
            else:
                gg = g[..., None] if b.ndim == 1 else g
                gb = xp.swapaxes(a, -1, -2) @ gg
                if b.ndim == 1:
                    gb = gb[..., 0]
            gb = unbroadcast(gb, b.shape)
        return ga, gb
