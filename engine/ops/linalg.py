"""Matrix products (BLAS through NumPy, cuBLAS through CuPy)."""
import contextlib

import numpy as np

from ember.engine.backend import get_array_module
from ember.engine.ops.elementwise import unbroadcast
from ember.engine.tensor import Function
from ember.kernels.cpu.blas import blas_threads

# NOTE: OpenBLAS's threads keep spinning after each threaded product, on the cores that ember's threaded
# Numba kernels use next. Small products (LeNet-5's dense layers: at most 128 x 400 x 120 = 6.1M
# multiply-adds) run with OpenBLAS on one thread. W2 step on 2 cores, process CPU time per step (load 7-8):
# 34.8-39.5 ms with OpenBLAS on two threads, 9.4-10.1 ms on one (8.6-9.0 ms with everything on one).
SINGLE_THREAD_MACS = 1 << 24


def _threads(a, b):
    """OpenBLAS on one thread for a small product of NumPy arrays, else no change."""
    if type(a) is np.ndarray and a.size * (b.shape[-1] if b.ndim > 1 else 1) < SINGLE_THREAD_MACS:
        return blas_threads(1)
    return contextlib.nullcontext()


class MatMul(Function):
    """a @ b with NumPy's matmul semantics (batched, broadcasting leading axes)."""

    def forward(self, a, b):
        self.a, self.b = a, b
        with _threads(a, b):
            return a @ b

    def backward(self, g):
        with _threads(self.a, self.b):
            return self._backward(g)

    def _backward(self, g):
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
