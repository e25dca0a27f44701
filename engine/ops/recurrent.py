"""Recurrent layers over a whole sequence as one op each: SimpleRNN (tanh), LSTM and GRU (sigmoid/tanh).

Forward, step by step: the input projection [1, x_t] @ [b; W] (the bias rides in the product), the
product h_{t-1} @ U, and one kernel for the elementwise part (``*_step_forward``). Backward walks the
steps in reverse: one kernel per step gives the pre-activation gradients dz (``*_step_backward``),
then dz @ U.T (the gradient of the previous state) and dz @ W.T (the step's dx, written in place);
after the loop one product [1, X, H_prev]^T dZ over all steps gives the bias, kernel and recurrent
kernel gradients together (the GRU, whose input and recurrent parts have different gradients, takes
[1, X]^T dZ_x, H_prev^T dZ_h and a sum). Each per-step product is one matmul call over stacked blocks
of columns small enough for OpenBLAS's unpacked small-matrix kernels (see SMALL_MACS).

Inputs x (N, T, D), kernel (D, G), recurrent_kernel (u, G), bias (G,) or, for the GRU, (2, G) (input
and recurrent bias, Keras's reset_after layout); ``mask`` (N, T) booleans, where a False step keeps
the state and repeats the previous output (Keras); ``go_backwards`` reads the steps in reverse and
returns the outputs in that (processing) order. The states start at zero.

``outputs`` says what the op returns: "packed" (the default) everything a layer may return in one
array (N, T + S - 1, u): the outputs h of the T steps in processing order (the last is the final h),
then for the LSTM the final cell state c; "sequence" only the T outputs (N, T, u); "last" only the
final h (N, u). A layer asks for what it returns, so that no slice of the packed array (whose
gradient is a scatter into zeros) sits between the op and the loss.
Internally arrays are time-major (T, N, ...), so that each step reads and writes contiguous rows.

Where NumPy's own OpenBLAS is found (``has_kernel(..., "numba")``) the LSTM and GRU run the whole time
loop, products included, in one Numba kernel per direction (kernels/cpu/sequence.py), the batch split
over the threads; the rows [1, x_t, h_{t-1}] of every step then live in one array xh (T + 1, N, ...)
whose h columns the kernel fills step by step (the LSTM's step product is xh[t] @ [b; W; U]). The
loop here, step by step in Python, is the path elsewhere and for SimpleRNN.
"""
import contextlib

import numpy as np

from ember.engine.backend import backend_name, get_array_module
from ember.engine.tensor import Function
from ember.kernels import get_cpu_kernels, get_kernel
from ember.kernels.cpu.blas import aligned, aligned_empty, blas_threads
from ember.kernels.registry import has_kernel

# NOTE: the per-step products h @ U are small (W5: (32, 128) @ (128, 512)); on 2 shared cores (load
# average 14) 80 of them took 24-31 ms with OpenBLAS on one thread and 2.3-820 ms (most runs > 200 ms)
# on two, whose threads wait for each other at every product. The time loops run BLAS on one thread
# below this many multiply-adds per step; the product over all steps ([1, X, H]^T dZ) keeps all.
SINGLE_THREAD_STEP_MACS = 1 << 24
OUTPUTS = ("packed", "sequence", "last")


def _k(name, arr):
    return get_kernel(name, backend_name(get_array_module(arr)))


def _loop_threads(n, u, g):
    return blas_threads(1) if n * u * g < SINGLE_THREAD_STEP_MACS else contextlib.nullcontext()


# NOTE: OpenBLAS (0.3.x, SkylakeX kernels) runs a float32 product of at most 1e6 multiply-adds with its
# small-matrix kernels, which do not pack (copy) their operands. The per-step products are just above
# that: (32, 128) @ (128, 512) = 2.1M. Split into blocks of columns below it and run as one matmul call
# over the stacked blocks (float32, 1 thread, CPU-time medians of 21 runs of 100 steps, load 6-7.5):
# h @ U 4.71-4.83 -> 3.03-3.19 ms (4 or 8 blocks; 4.05-4.26 ms as separate calls per block, no gain
# from views instead of contiguous blocks); dz @ U.T (32, 512) @ (512, 128) 5.46-5.72 -> 3.81-4.37 ms
# (4 blocks; 4.68 ms in 8, 5.64 ms in 2); the input projection [1, x_t] @ [b; W] step by step 3.47 ms
# (4 blocks) against 3.89 ms in products of 4 steps and 4.27 ms as one product over all steps. The
# recurrent kernel (Keras's orthogonal initializer leaves it in Fortran order: 73 against 42 us a step
# for h @ U) and U.T (68 against 44.5 us) are copied into C-ordered blocks once per sequence.
SMALL_MACS = 1_000_000


def _block_width(n, k, cols, min_columns):
    """The widest multiple of ``min_columns`` that divides cols with n * k * width <= SMALL_MACS, or cols."""
    for w in range(SMALL_MACS // (n * k) // min_columns * min_columns, 0, -min_columns):
        if w < cols and cols % w == 0:
            return w
    return cols


def _split_columns(out, width):
    """The view (cols / width, ..., width) of ``out`` (..., cols): its blocks of columns first."""
    view = out.view()
    view.shape = out.shape[:-1] + (out.shape[-1] // width, width)  # raises rather than copy
    return np.moveaxis(view, -2, 0)


def _column_blocks(mat, out, min_columns=32):
    """(blocks, view) with ``np.matmul(x, blocks, out=view)`` the same as ``out[...] = x @ mat``:
    ``blocks`` (B, k, w) the C-ordered blocks of w columns of ``mat`` (k, cols), ``view`` (B, n, w) the
    matching view of ``out`` (n, cols); w from ``_block_width``."""
    n, (k, cols) = out.shape[0], mat.shape
    width = _block_width(n, k, cols, min_columns)
    blocks = aligned(mat.reshape(k, cols // width, width).transpose(1, 0, 2))  # B: see _stacked
    return blocks, _split_columns(out, width)


def _stacked(arrays, dtype, axis=0):
    """``np.concatenate(arrays, axis)`` as ``dtype`` into a 64-byte aligned array: the operand B of the
    kernels' per-step products (see the NOTE on ALIGNMENT in kernels/cpu/blas.py)."""
    shape = list(arrays[0].shape)
    shape[axis] = sum(a.shape[axis] for a in arrays)
    return np.concatenate(arrays, axis=axis, out=aligned_empty(shape, dtype))


class _Projection:
    """The input projection [1, x_t] @ [b; W] of each step in turn, into one (N, G) buffer that stays in
    cache for the step's kernel: ``for t, xw_t in projection`` (in order), ``.shape`` (T, N, G)."""

    def __init__(self, rows, weights, g):
        self.rows, self.weights = rows, weights
        self.shape, self.dtype = rows.shape[:2] + (g,), weights.dtype

    def __iter__(self):
        steps, n, g = self.shape
        buf = np.empty((n, g), dtype=self.dtype)
        blocks, view = _column_blocks(self.weights, buf, _Sequence.MIN_COLUMNS)
        for t in range(steps):
            np.matmul(self.rows[t], blocks, out=view)
            yield t, buf


class _Sequence(Function):
    """Shared part: time-major input, input projection, packing, and the GEMMs of the backward."""

    _extra = 0  # states packed after the T outputs (the LSTM's c)
    _shared_dz = True  # the input projection and h @ U have the same pre-activation gradient (not the GRU)

    def forward(self, x, kernel, recurrent_kernel, bias=None, mask=None, go_backwards=False, outputs="packed"):
        if outputs not in OUTPUTS:
            raise ValueError(f"{type(self).__name__}: outputs must be one of {OUTPUTS}, got {outputs!r}")
        if x.ndim != 3 or x.shape[1] == 0:
            raise ValueError(f"{type(self).__name__}: expected x of shape (batch, steps >= 1, features), "
                             f"got {x.shape}")
        n, steps, d = x.shape
        u, g = recurrent_kernel.shape
        if kernel.shape != (d, g):
            raise ValueError(f"{type(self).__name__}: kernel has shape {kernel.shape}, expected {(d, g)} "
                             f"for input features {d} and recurrent_kernel {recurrent_kernel.shape}")
        if bias is not None and bias.shape != self._bias_shape(g):
            raise ValueError(f"{type(self).__name__}: bias has shape {bias.shape}, expected "
                             f"{self._bias_shape(g)}{self._bias_layout}")
        xt = x.transpose(1, 0, 2)
        keep = np.ones((steps, n), dtype=bool) if mask is None else np.asarray(mask, dtype=bool).T
        if mask is not None and keep.shape != (steps, n):
            raise ValueError(f"{type(self).__name__}: mask has shape {np.shape(mask)}, expected {(n, steps)}")
        if go_backwards:
            xt, keep = xt[::-1], keep[::-1]
        keep = np.ascontiguousarray(keep)
        self.has_bias, self.go_backwards, self.shape = bias is not None, go_backwards, (n, steps, d, u)
        self.outputs = outputs
        self.in_kernel = self._loop_in_kernel(x)
        if self.in_kernel:
            return self._forward_in_kernel(xt, kernel, recurrent_kernel, bias, keep)
        # Rows [1, x_t, h_{t-1}] (the 1 only with a bias, h only where training needs it, see _grads):
        # [1, x_t] @ [b; W] is the input projection with its bias, without a pass adding the bias.
        # NOTE: (3200, 129) @ (129, 512) float32 from such rows took 3.48 ms (CPU-time median of 15,
        # 1 thread, load 5.5) against 3.34 + 0.46 ms for a contiguous X @ W and adding the bias
        o = int(bias is not None)
        wide = self.tracked and self._shared_dz
        xh = np.empty((steps, n, o + d + (u if wide else 0)), dtype=x.dtype)
        if o:
            xh[:, :, 0] = 1
        xh[:, :, o:o + d] = xt
        weights = kernel if bias is None else np.concatenate([self._input_bias(bias)[None], kernel])
        xw = _Projection(xh[:, :, :o + d], weights, g)
        h = np.zeros((steps + 1, n, u), dtype=x.dtype)  # h[0] the initial state, h[t + 1] after step t
        with _loop_threads(n, u, g):
            hu = np.empty((n, g), dtype=x.dtype)  # h_{t-1} @ U, the step's blocks of columns written in place
            extra = self._run(xw, hu, _column_blocks(recurrent_kernel, hu, self.MIN_COLUMNS), bias, keep, h)
        if outputs == "last":
            out = h[steps].copy()
        else:
            extra_rows = self._extra if outputs == "packed" else 0
            out = np.empty((n, steps + extra_rows, u), dtype=x.dtype)
            out[:, :steps] = h[1:].transpose(1, 0, 2)
            if extra_rows:
                out[:, steps] = extra
        if wide:
            xh[:, :, o + d:] = h[:steps]
        if self.tracked:
            self.xh, self.kernel, self.recurrent_kernel, self.keep, self.h = xh, kernel, recurrent_kernel, keep, h
        return out

    _bias_layout = ""
    _loop_kernel = None  # the kernel running the whole time loop (see _loop_in_kernel), where there is one

    def _loop_in_kernel(self, x):
        """Whether the time loop runs in one Numba kernel (``_loop_kernel``, registered where NumPy's
        OpenBLAS is found) rather than step by step here."""
        return (self._loop_kernel is not None and get_cpu_kernels() == "numba"
                and has_kernel(self._loop_kernel, "numba") and isinstance(x, np.ndarray)
                and x.dtype in (np.float32, np.float64))

    def _forward_in_kernel(self, xt, kernel, recurrent_kernel, bias, keep):
        """The forward as one kernel call (kernels/cpu/sequence.py, ``_loop_forward``), time-major rows
        [1, x_t, h_{t-1}] in one array xh (T + 1, N, ...) whose h columns the kernel writes step by step."""
        n, steps, d, u = self.shape
        dtype, o = xt.dtype, int(bias is not None)
        xh = np.empty((steps + 1, n, o + d + u), dtype=dtype)  # xh[T]: the final h (its x part unused)
        if o:
            xh[:, :, 0] = 1
        xh[:steps, :, o:o + d] = xt
        xh[steps, :, o:o + d] = 0
        xh[0, :, o + d:] = 0
        extra = self._loop_forward(xh, kernel, recurrent_kernel, bias, keep, o + d)
        if self.tracked:
            self.xh, self.kernel, self.recurrent_kernel, self.keep = xh, kernel, recurrent_kernel, keep
        if self.outputs == "last":
            return xh[steps, :, o + d:].copy()
        extra_rows = self._extra if self.outputs == "packed" else 0
        out = np.empty((n, steps + extra_rows, u), dtype=dtype)
        out[:, :steps] = xh[1:, :, o + d:].transpose(1, 0, 2)
        if extra_rows:
            out[:, steps] = extra
        return out

    def _backward_in_kernel(self, grad):
        """(gh, dh_last) for the kernel's backward: the output gradients (N, T', u) read step by step, or
        None when only the final h is returned, and the gradient of the final h besides them."""
        n, steps, d, u = self.shape
        dtype = self.xh.dtype
        if self.outputs == "last":
            gh, dh_last = None, np.array(grad, dtype=dtype)
        else:
            gh, dh_last = np.ascontiguousarray(grad, dtype=dtype), np.zeros((n, u), dtype=dtype)
        return self._loop_backward(gh, dh_last, grad)

    def _bias_shape(self, g):
        return (g,)

    def _input_bias(self, bias):
        return bias

    def _split_bias_grad(self, input_bias_grad, dz_rec):
        raise NotImplementedError  # only where the input and recurrent parts have different gradients

    def _grads(self, dz_in, dz_rec):
        """Gradients of x, kernel, recurrent_kernel (and bias) from the per-step pre-activation
        gradients: ``dz_in`` (T, N, G) of the input projection, ``dz_rec`` of h @ U."""
        n, steps, d, u = self.shape
        need = self.needs_input_grad
        o = int(self.has_bias)
        need_bias = self.has_bias and need[3]
        g2 = dz_in.reshape(steps * n, -1)
        xh = self.xh.reshape(steps * n, -1)
        dx = dkernel = drec = dbias = None
        if need[0]:
            dx = self.dx  # computed step by step in the reverse loop (see _input_grad_steps)
        if self._shared_dz:
            if need[1] or need[2] or need_bias:
                # NOTE: one product [1, X, H_prev]^T dZ for the bias, kernel and recurrent kernel gradients:
                # (256, 3200) @ (3200, 512) float32 took 7.15 ms against 8.23 ms for X^T dZ and H^T dZ
                # apart, plus 0.73 ms for the bias's sum (1 thread, CPU-time medians of 11, load 5.6)
                wg = xh.T @ g2
                dkernel = wg[o:o + d] if need[1] else None
                drec = wg[o + d:] if need[2] else None
                dbias = wg[0] if need_bias else None
        else:
            if need[1] or need_bias:
                wg = xh.T @ g2  # [1, X]^T dZ_x: the input bias's and the kernel's gradients
                dkernel = wg[o:] if need[1] else None
                dbias = self._split_bias_grad(wg[0], dz_rec) if need_bias else None
            if need[2]:
                drec = self.h[:steps].reshape(steps * n, u).T @ dz_rec.reshape(steps * n, -1)
        grads = (dx, dkernel, drec)
        return grads + (dbias,) if self.has_bias else grads

    def _output_grads(self, grad):
        """(gh, dh): gh a time-major view (T, N, u) of the gradients of the T outputs (None when only the
        final h is returned), dh a fresh (N, u) array, the gradient of the final h outside gh."""
        n, steps, d, u = self.shape
        if self.outputs == "last":
            return None, np.array(grad, dtype=grad.dtype)
        # NOTE: a view, not a time-major copy (0.4 ms per W5-sized pass): each step adds its (N, u) rows
        return grad[:, :steps].transpose(1, 0, 2), np.zeros((n, u), dtype=grad.dtype)

    def _state_grad(self, grad):
        """A fresh (N, u) array with the gradient of the final extra state (the LSTM's c)."""
        n, steps, d, u = self.shape
        if self.outputs == "packed":
            return np.array(grad[:, steps], dtype=grad.dtype)
        return np.zeros((n, u), dtype=grad.dtype)

    MIN_COLUMNS = 32  # the narrowest block of columns of a per-step product (see SMALL_MACS)

    def _input_grad_steps(self):
        """``f(t, dz_t)`` writing step t's dz_t @ W.T into ``self.dx`` (N, T, D), batch-major and in the
        input's time order, while dz_t is in cache; None when x needs no gradient.

        NOTE: step by step as one matmul over stacked column blocks (see SMALL_MACS): 4.37 ms for 100
        steps of (32, 512) @ (512, 128) float32, against 4.45 ms for one product over all steps and the
        copy to batch-major order (1 thread, CPU-time medians of 21, load 6)."""
        self.dx = None
        if not self.needs_input_grad[0]:
            return None
        n, steps, d, u = self.shape
        width = _block_width(n, self.kernel.shape[1], d, self.MIN_COLUMNS)
        blocks = aligned(self.kernel.T.reshape(-1, d // width, width).transpose(1, 0, 2))
        self.dx = np.empty((n, steps, d), dtype=self.h.dtype)
        views = np.moveaxis(_split_columns(self.dx, width), 2, 0)  # (T, B, N, w)
        last = steps - 1

        def step(t, dz_t):
            np.matmul(dz_t, blocks, out=views[last - t if self.go_backwards else t])

        return step

    def _state_products(self, dh):
        """(blocks, view) (see _column_blocks) for dh = dz @ U.T."""
        return _column_blocks(self.recurrent_kernel.T, dh, self.MIN_COLUMNS)

    def backward(self, grad):
        if self.in_kernel:
            return self._backward_in_kernel(grad)
        n, steps, d, u = self.shape
        with _loop_threads(n, u, self.recurrent_kernel.shape[1]):
            dz_in, dz_rec = self._reverse(grad)
        return self._grads(dz_in, dz_rec)


class SimpleRNNSequence(_Sequence):
    """h_t = tanh(x_t W + b + h_{t-1} U) over all steps (see the module docstring for the layout).

    Example:
        >>> import numpy as np
        >>> from ember.engine import Tensor
        >>> from ember.engine.ops.recurrent import SimpleRNNSequence
        >>> x, w, u = Tensor(np.ones((2, 3, 4))), Tensor(np.zeros((4, 5))), Tensor(np.zeros((5, 5)))
        >>> SimpleRNNSequence.apply(x, w, u).shape
        (2, 3, 5)
    """

    def _run(self, xw, hu, products, bias, keep, h):
        step = _k("rnn_step_forward", h)
        for t, xw_t in xw:
            np.matmul(h[t], products[0], out=products[1])
            step(xw_t, hu, h[t], keep[t], h[t + 1])

    def _reverse(self, grad):
        n, steps, d, u = self.shape
        gh, dh = self._output_grads(grad)
        step = _k("rnn_step_backward", dh)
        dz = np.empty_like(self.h[1:])
        carry = np.empty_like(dh)
        products = self._state_products(dh)
        input_grad = self._input_grad_steps()
        for t in range(steps - 1, -1, -1):
            if gh is not None:
                dh += gh[t]
            step(dh, self.h[t + 1], self.keep[t], dz[t], carry)
            if input_grad is not None:
                input_grad(t, dz[t])
            if t:
                np.matmul(dz[t], products[0], out=products[1])
                dh += carry
        return dz, dz


class LSTMSequence(_Sequence):
    """LSTM (gates i, f, c, o; sigmoid gates, tanh cell) over all steps; the output is (N, T + 1, u):
    the T outputs h, then the final cell state c (see the module docstring).

    Example:
        >>> import numpy as np
        >>> from ember.engine import Tensor
        >>> from ember.engine.ops.recurrent import LSTMSequence
        >>> x, w, u = Tensor(np.ones((2, 3, 4))), Tensor(np.zeros((4, 20))), Tensor(np.zeros((5, 20)))
        >>> LSTMSequence.apply(x, w, u).shape
        (2, 4, 5)
    """

    _extra = 1
    _loop_kernel = "lstm_sequence_forward"

    def _loop_forward(self, xh, kernel, recurrent_kernel, bias, keep, h0):
        steps, n, u = xh.shape[0] - 1, xh.shape[1], recurrent_kernel.shape[0]
        dtype = xh.dtype
        weights = _stacked(([bias[None]] if bias is not None else []) + [kernel, recurrent_kernel], dtype)
        c = np.zeros((steps + 1, n, u), dtype=dtype)
        rows = steps if self.tracked else 1  # one step's worth when nothing is recorded
        gates, tanh_c = np.empty((rows, n, 4 * u), dtype=dtype), np.empty((rows, n, u), dtype=dtype)
        _k("lstm_sequence_forward", xh)(xh, weights, keep, c, gates, tanh_c, h0)
        if self.tracked:
            self.c, self.gates, self.tanh_c = c, gates, tanh_c
        return c[steps]

    def _loop_backward(self, gh, dh_last, grad):
        n, steps, d, u = self.shape
        need, o, dtype = self.needs_input_grad, int(self.has_bias), self.xh.dtype
        dc_last = self._state_grad(grad)
        weights_t = _stacked([self.kernel.T, self.recurrent_kernel.T], dtype, axis=1)
        dz = aligned_empty((steps, n, 4 * u), dtype)  # B of the weight gradient's product
        dx = np.empty((n, steps, d), dtype=dtype) if need[0] else None
        need_bias = self.has_bias and need[3]
        wg = np.empty((o + d + u, 4 * u), dtype=dtype) if need[1] or need[2] or need_bias else None
        _k("lstm_sequence_backward", dz)(self.xh, weights_t, self.keep, self.c, self.gates, self.tanh_c, gh,
                                         dh_last, dc_last, dz, dx, wg, self.go_backwards)
        grads = (dx, wg[o:o + d] if need[1] else None, wg[o + d:] if need[2] else None)
        return grads + (wg[0] if need_bias else None,) if self.has_bias else grads

    def _run(self, xw, hu, products, bias, keep, h):
        steps, n, g = xw.shape
        step = _k("lstm_step_forward", h)
        c = np.zeros_like(h)
        # what the backward reads, for every step; one step's worth when nothing is recorded
        gates = np.empty((steps if self.tracked else 1, n, g), dtype=h.dtype)
        tanh_c = np.empty_like(h[1:] if self.tracked else h[:1])
        for t, xw_t in xw:
            np.matmul(h[t], products[0], out=products[1])
            s = t if self.tracked else 0
            step(xw_t, hu, h[t], c[t], keep[t], h[t + 1], c[t + 1], gates[s], tanh_c[s])
        if self.tracked:
            self.c, self.gates, self.tanh_c = c, gates, tanh_c
        return c[steps]

    def _reverse(self, grad):
        n, steps, d, u = self.shape
        gh, dh = self._output_grads(grad)
        step = _k("lstm_step_backward", dh)
        dz = np.empty_like(self.gates)
        carry = np.empty_like(dh)
        products = self._state_products(dh)
        input_grad = self._input_grad_steps()
        dc = self._state_grad(grad)  # updated in place, step by step
        for t in range(steps - 1, -1, -1):
            if gh is not None:
                dh += gh[t]
            step(dh, dc, self.gates[t], self.tanh_c[t], self.c[t], self.keep[t], dz[t], carry, dc)
            if input_grad is not None:
                input_grad(t, dz[t])
            if t:
                np.matmul(dz[t], products[0], out=products[1])
                dh += carry
        return dz, dz


class GRUSequence(_Sequence):
    """GRU (Keras reset_after layout: gates z, r, h; bias (2, 3u) = input and recurrent bias) over all
    steps (see the module docstring).

    Example:
        >>> import numpy as np
        >>> from ember.engine import Tensor
        >>> from ember.engine.ops.recurrent import GRUSequence
        >>> x, w, u = Tensor(np.ones((2, 3, 4))), Tensor(np.zeros((4, 15))), Tensor(np.zeros((5, 15)))
        >>> GRUSequence.apply(x, w, u, Tensor(np.zeros((2, 15)))).shape
        (2, 3, 5)
    """

    _shared_dz = False
    _bias_layout = " (input and recurrent bias, reset_after layout)"
    _loop_kernel = "gru_sequence_forward"

    def _loop_forward(self, xh, kernel, recurrent_kernel, bias, keep, h0):
        steps, n, u = xh.shape[0] - 1, xh.shape[1], recurrent_kernel.shape[0]
        dtype, g = xh.dtype, 3 * u
        weights = _stacked(([] if bias is None else [bias[0][None]]) + [kernel], dtype)
        b_rec = np.zeros(g, dtype=dtype) if bias is None else np.ascontiguousarray(bias[1], dtype=dtype)
        rows = steps if self.tracked else 1  # one step's worth when nothing is recorded
        gates, hu_c = np.empty((rows, n, g), dtype=dtype), np.empty((rows, n, u), dtype=dtype)
        _k("gru_sequence_forward", xh)(xh, weights, aligned(recurrent_kernel, dtype), b_rec, keep, gates, hu_c, h0)
        if self.tracked:
            self.gates, self.hu_c = gates, hu_c

    def _loop_backward(self, gh, dh_last, grad):
        n, steps, d, u = self.shape
        need, o, dtype, g = self.needs_input_grad, int(self.has_bias), self.xh.dtype, 3 * u
        need_bias = self.has_bias and need[3]
        dxw, dhu = aligned_empty((steps, n, g), dtype), aligned_empty((steps, n, g), dtype)  # see _stacked
        dx = np.empty((n, steps, d), dtype=dtype) if need[0] else None
        wgx = np.empty((o + d, g), dtype=dtype) if need[1] or need_bias else None
        wgh = np.empty((u, g), dtype=dtype) if need[2] else None
        w_t, rec_t = aligned(self.kernel.T, dtype), aligned(self.recurrent_kernel.T, dtype)
        _k("gru_sequence_backward", dxw)(self.xh, w_t, rec_t, self.keep, self.gates, self.hu_c, gh, dh_last, dxw, dhu,
                                         dx, wgx, wgh, self.go_backwards)
        grads = (dx, wgx[o:] if need[1] else None, wgh)
        return grads + (self._split_bias_grad(wgx[0], dhu) if need_bias else None,) if self.has_bias else grads


    def _bias_shape(self, g):
        return (2, g)

    def _input_bias(self, bias):
        return bias[0]

    def _run(self, xw, hu, products, bias, keep, h):
        steps, n, g = xw.shape
        step = _k("gru_step_forward", h)
        b_rec = np.zeros(g, dtype=h.dtype) if bias is None else np.ascontiguousarray(bias[1])
        # what the backward reads, for every step; one step's worth when nothing is recorded
        gates = np.empty((steps if self.tracked else 1, n, g), dtype=h.dtype)
        hu_c = np.empty_like(h[1:] if self.tracked else h[:1])
        for t, xw_t in xw:
            np.matmul(h[t], products[0], out=products[1])
            s = t if self.tracked else 0
            step(xw_t, hu, b_rec, h[t], keep[t], h[t + 1], gates[s], hu_c[s])
        if self.tracked:
            self.gates, self.hu_c = gates, hu_c

    def _reverse(self, grad):
        n, steps, d, u = self.shape
        gh, dh = self._output_grads(grad)
        step = _k("gru_step_backward", dh)
        dxw, dhu = np.empty_like(self.gates), np.empty_like(self.gates)
        carry = np.empty_like(dh)
        products = self._state_products(dh)
        input_grad = self._input_grad_steps()
        for t in range(steps - 1, -1, -1):
            if gh is not None:
                dh += gh[t]
            step(dh, self.gates[t], self.hu_c[t], self.h[t], self.keep[t], dxw[t], dhu[t], carry)
            if input_grad is not None:
                input_grad(t, dxw[t])
            if t:
                np.matmul(dhu[t], products[0], out=products[1])
                dh += carry
        return dxw, dhu

    def _split_bias_grad(self, input_bias_grad, dhu):
        return np.stack([input_bias_grad, dhu.sum(axis=(0, 1))])
