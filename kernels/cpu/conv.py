"""Convolution on NHWC arrays with Numba: im2col / col2im loops in parallel over rows, and the
matrix products in BLAS (through NumPy). Same signatures and layouts as the NumPy reference
(``ember.kernels.reference.conv``), which is the specification. Depthwise convolutions
(groups = input channels) run direct loops with the channels innermost; other groupings use the
reference.
"""
import threading

import numba
import numpy as np

from ember.kernels.cpu import activation, blocked, direct, pooling, winograd
from ember.kernels.cpu.blas import gemm_accumulate
from ember.kernels.cpu.jit import parallel_above, prange, serialized
from ember.kernels.reference import conv as reference
from ember.kernels.registry import register


@parallel_above(2 << 20, work=lambda *a: a[-1].size)
def _im2col(xp, kh, kw, sh, sw, dh, dw, ho, wo, cols):
    # xp: the zero-padded input, flattened; cols: (rows, KH*KW*C). Branch-free: with dw == 1 the KW
    # taps of one kernel row are one contiguous run of KW*C values in both arrays.
    # NOTE: the offsets are unsigned on purpose. With signed ones Numba adds a negative-index
    # wraparound to every access, and LLVM then leaves the copy loops scalar: LeNet's second layer
    # took 1.6-2.2 ms here instead of 0.28 ms, ResNet-50's 56x56x64 3x3 18.5 ms instead of 5.2 ms.
    n, hp, wp, c = xp.shape
    k = kh * kw * c
    src = xp.reshape(-1)
    dst = cols.reshape(-1)
    cu = np.uint64(c)
    run = np.uint64(kw * c) if dw == 1 else cu
    taps = 1 if dw == 1 else kw
    for r in prange(n * ho):
        b = r // ho
        i = r - b * ho
        for j in range(wo):
            out = (r * wo + j) * k
            for a in range(kh):
                row_start = ((b * hp + i * sh + a * dh) * wp + j * sw) * c
                for q in range(taps):
                    s0 = np.uint64(row_start + q * dw * c)
                    o = np.uint64(out + (a * kw + q) * c)
                    for e in range(run):
                        dst[o + e] = src[s0 + e]


@parallel_above(8 << 20, work=lambda *a: a[-1].size)  # LeNet's 2.5M: 0.5 ms serial, 1.0 ms threaded
def _im2col_single_channel(xp, kh, kw, sh, sw, dh, dw, ho, wo, cols_t):
    # One input channel: the transposed matrix (KH*KW, rows), whose rows are runs of Wo values taken
    # from one padded input row each (contiguous with sw == 1), instead of rows of KW values.
    n, hp, wp = xp.shape
    rows = n * ho * wo
    src = xp.reshape(-1)
    dst = cols_t.reshape(-1)
    for r in prange(n * ho):
        b = r // ho
        i = r - b * ho
        for a in range(kh):
            line = (b * hp + i * sh + a * dh) * wp
            for q in range(kw):
                o = np.uint64((a * kw + q) * rows + r * wo)
                s0 = line + q * dw
                if sw == 1:
                    su = np.uint64(s0)
                    for j in range(np.uint64(wo)):
                        dst[o + j] = src[su + j]
                else:
                    for j in range(wo):
                        dst[o + np.uint64(j)] = src[np.uint64(s0 + j * sw)]


@parallel_above(16 << 20)
def _col2im(dcols, kh, kw, sh, sw, dh, dw, pt, pl, ho, wo, dx):
    # With dw == 1 the valid taps of one kernel row are one contiguous run in both arrays (as in
    # _im2col); offsets unsigned for the same reason. Runs instead of per-channel loops: LeNet's
    # 14x14x6 layer 1.06 -> 0.28 ms, 28x28x16 5x5 0.68 -> 0.42 ms, 56x56x64 3x3 6.8 -> 5.5 ms.
    n, h, w, c = dx.shape
    k = kh * kw * c
    src = dcols.reshape(-1)
    dst = dx.reshape(-1)
    for b in prange(n):
        for i in range(ho):
            for j in range(wo):
                row = ((b * ho + i) * wo + j) * k
                x0 = j * sw - pl
                for a in range(kh):
                    yy = i * sh - pt + a * dh
                    if yy < 0 or yy >= h:
                        continue
                    line = (b * h + yy) * w
                    q = 0
                    while q < kw:
                        xx = x0 + q * dw
                        if xx < 0:
                            q += 1
                            continue
                        if xx >= w:
                            break
                        # a run of taps: all remaining valid ones with dw == 1, else this one
                        last = min(kw, w - x0) if dw == 1 else q + 1
                        s0 = np.uint64(row + (a * kw + q) * c)
                        d0 = np.uint64((line + xx) * c)
                        for e in range(np.uint64((last - q) * c)):
                            dst[d0 + e] += src[s0 + e]
                        q = last


_SCRATCH = threading.local()


def scratch(slot, shape, dtype):
    """A reused buffer for temporaries that do not outlive one kernel call (per thread, per slot).

    NOTE: a fresh 100 MB array costs tens of milliseconds of page faults on every call (measured:
    im2col of a 16x56x56x64 input took 28 ms into a new array, 5 ms into a reused one), so the
    largest im2col / col2im matrix is kept between calls.
    """
    buffers = getattr(_SCRATCH, "buffers", None)
    if buffers is None:
        buffers = _SCRATCH.buffers = {}
    dtype = np.dtype(dtype)
    size = int(np.prod(shape))
    buf = buffers.get((slot, dtype))
    if buf is None or buf.size < size:
        buf = buffers[(slot, dtype)] = np.empty(size, dtype=dtype)
    return buf[:size].reshape(shape)


def _is_pointwise(w_shape, stride, dilation, pads):
    return w_shape[0] == 1 and w_shape[1] == 1 and tuple(stride) == (1, 1) and pads == ((0, 0), (0, 0))


def im2col(x, kh, kw, stride, dilation, pads, ho, wo, keep=False):
    """The (N*Ho*Wo, KH*KW*C) matrix of receptive fields (zeros where the window hits padding); with one
    channel, the transposed view of a (KH*KW, N*Ho*Wo) array. It lives in a scratch buffer (use it
    before the next call), or in a new array with ``keep``."""
    n, _, _, c = x.shape
    if kh == 1 and kw == 1 and tuple(stride) == (1, 1) and pads == ((0, 0), (0, 0)):
        return np.ascontiguousarray(x).reshape(n * ho * wo, c)
    (pt, pb), (pl, pr) = pads
    if pt or pb or pl or pr:
        h, w = x.shape[1:3]
        xp = scratch("padded", (n, h + pt + pb, w + pl + pr, c), x.dtype)
        xp[:, :pt] = 0
        xp[:, pt + h:] = 0
        xp[:, pt:pt + h, :pl] = 0
        xp[:, pt:pt + h, pl + w:] = 0
        xp[:, pt:pt + h, pl:pl + w] = x
    else:
        xp = np.ascontiguousarray(x)
    shape = (n * ho * wo, kh * kw * c)
    if c == 1:
        # NOTE: with one channel a row of the usual layout is KH runs of KW values, which copy at
        # scalar speed; the transposed layout has runs of Wo. BLAS takes the transposed view as it is.
        # LeNet's 28x28x1 5x5 layer (2 cores): im2col 1.2-1.8 -> 0.4 ms, and its products 0.7 -> 0.9 ms
        # forward, 1.4 -> 1.3 ms for the weight gradient.
        t_shape = shape[::-1]
        cols_t = np.empty(t_shape, dtype=x.dtype) if keep else scratch("cols", t_shape, x.dtype)
        _im2col_single_channel(xp[..., 0], kh, kw, stride[0], stride[1], dilation[0], dilation[1], ho, wo, cols_t)
        return cols_t.T
    cols = np.empty(shape, dtype=x.dtype) if keep else scratch("cols", shape, x.dtype)
    _im2col(xp, kh, kw, stride[0], stride[1], dilation[0], dilation[1], ho, wo, cols)
    return cols


# ---- stride 1: a sum of shifted matrix products, no im2col ----
# With stride 1, every tap (a, q) of the kernel multiplies the same padded input, shifted by
# a*dh rows and q*dw columns. Laying the output out with the padded width (columns past Wo, rows
# past Ho are scratch), each shift is one contiguous (rows, C) slice of the flattened padded input,
# so y = sum over taps of slice(a, q) @ w[a, q]: KH*KW products accumulated in place by BLAS
# (beta = 1, kernels/cpu/blas.py), and no im2col matrix KH*KW times the input's size. Measured on
# 2 cores (bench/conv.py) against im2col with its unsigned copy loops, forward: ResNet-50's
# 56x56x64 3x3 layer 31.6 vs 35.5 ms, Inception's 5x5 16 -> 32 2.6 vs 3.7 ms. It loses where the
# padded width adds many rows to a large product (14x14x256 3x3: 22.6 vs 19.4 ms, 7x7x512: 27.9 vs
# 18.0) and where each tap's product is too thin for BLAS (LeNet's 28x28x1 5x5: 2.9 vs 1.8 ms; its
# 14x14x6 layer: 1.2 vs 0.7 ms), which the rule below leaves to im2col.
SHIFTED_MIN_CHANNELS = 8     # input channels: each tap's product has this inner dimension
SHIFTED_MAX_OVERHEAD = 1.2   # (padded rows) / (output rows) up to this,
SHIFTED_MAX_OVERHEAD_FEW_FILTERS = (1.35, 64)  # or up to 1.35 with at most 64 filters
# The weight gradient as shifted products is one (C, rows) @ (rows, F) product per tap, the rows
# including the padded layout's scratch ones: with few channels and filters and many scratch rows
# that is poor work for BLAS (LeNet's unpadded 5x5x6 -> 16 layer: 4.0 ms against 2.1 ms through
# im2col), so unless C * F reaches this or the overhead is small, the weight gradient uses im2col.
SHIFTED_MIN_WEIGHT_GRAD = 2048


def _overhead(x_shape, w_shape, dilation, pads):
    """(padded rows) / (output rows) of the shifted layout, or None when there is no output."""
    kh, kw = w_shape[:2]
    hp, wp = x_shape[1] + sum(pads[0]), x_shape[2] + sum(pads[1])
    ho, wo = hp - (kh - 1) * dilation[0], wp - (kw - 1) * dilation[1]
    return hp * wp / (ho * wo) if ho >= 1 and wo >= 1 else None


def _shifted(x_shape, w_shape, stride, dilation, pads, dtype):
    kh, kw, c, f = w_shape
    if (tuple(stride) != (1, 1) or kh * kw == 1 or dtype not in (np.float32, np.float64) or x_shape[-1] != c
            or c < SHIFTED_MIN_CHANNELS):
        return False
    overhead = _overhead(x_shape, w_shape, dilation, pads)
    limit, few = SHIFTED_MAX_OVERHEAD_FEW_FILTERS
    return overhead is not None and (overhead <= SHIFTED_MAX_OVERHEAD or (overhead <= limit and f <= few))


def _shifted_weight_grad(x_shape, w_shape, dilation, pads):
    return (w_shape[2] * w_shape[3] >= SHIFTED_MIN_WEIGHT_GRAD
            or _overhead(x_shape, w_shape, dilation, pads) <= SHIFTED_MAX_OVERHEAD)


def _padded(x, pads):
    (pt, pb), (pl, pr) = pads
    n, h, w, c = x.shape
    if not (pt or pb or pl or pr):
        return np.ascontiguousarray(x)
    xp = np.zeros((n, h + pt + pb, w + pl + pr, c), dtype=x.dtype)
    xp[:, pt:pt + h, pl:pl + w] = x
    return xp


def _shift_plan(xp_shape, w_shape, dilation):
    """Flat offsets of the KH*KW taps and the number of rows every tap's slice covers."""
    n, hp, wp, _ = xp_shape
    kh, kw = w_shape[:2]
    offsets = [a * dilation[0] * wp + q * dilation[1] for a in range(kh) for q in range(kw)]
    return offsets, n * hp * wp - offsets[-1]


def shifted_forward(x, w, dilation, pads):
    n, ho, wo, f = reference._out_shape(x.shape, w.shape, (1, 1), dilation, pads)
    xp = _padded(x, pads)
    _, hp, wp, c = xp.shape
    offsets, rows = _shift_plan(xp.shape, w.shape, dilation)
    flat = xp.reshape(-1, c)
    acc = np.zeros((n * hp * wp, f), dtype=x.dtype)
    taps = w.reshape(-1, c, f)
    for t, off in enumerate(offsets):
        gemm_accumulate(flat[off:off + rows], taps[t], acc[:rows])
    return np.ascontiguousarray(acc.reshape(n, hp, wp, f)[:, :ho, :wo])


def _padded_grad(dy, hp, wp):
    """dy (N, Ho, Wo, F) laid out with the padded height and width, zeros elsewhere, flattened."""
    n, ho, wo, f = dy.shape
    g = np.zeros((n, hp, wp, f), dtype=dy.dtype)
    g[:, :ho, :wo] = dy
    return g.reshape(-1, f)


def shifted_backward_weight(x, dy, w_shape, dilation, pads):
    xp = _padded(x, pads)
    _, hp, wp, c = xp.shape
    offsets, rows = _shift_plan(xp.shape, w_shape, dilation)
    flat = xp.reshape(-1, c)
    g = _padded_grad(dy, hp, wp)[:rows]
    dw = np.empty((len(offsets), c, w_shape[-1]), dtype=dy.dtype)
    for t, off in enumerate(offsets):
        np.matmul(flat[off:off + rows].T, g, out=dw[t])
    return dw.reshape(w_shape)


# ---- few input channels: direct loops (kernels/cpu/direct.py) ----
# NOTE: measured on 2 shared cores, one thread, min of 30 calls, forward / weight gradient in ms, direct
# vs im2col + GEMM: LeNet's 28x28x1 5x5 -> 6 1.0 / 1.0 vs 2.1 / 2.2; 32x32x3 5x5 -> 6 2.6 / 2.8 vs more;
# 28x28x1 3x3 -> 8 0.73 / 1.01 vs 0.80 / 0.89 (even); 5x5 -> 16 2.7 / 3.5 vs 2.4 / 3.1 and 3x3 -> 16
# 1.9 / 2.5 vs 1.0 / 1.1 (BLAS wins from 16 filters); LeNet's 14x14x6 5x5 -> 16 1.5 vs 0.8 forward.
DIRECT_MAX_CHANNELS = 3
DIRECT_MAX_FILTERS = 8


def _direct(x_shape, w_shape, stride, groups, dtype):
    return (groups == 1 and tuple(stride) == (1, 1) and x_shape[-1] == w_shape[2] <= DIRECT_MAX_CHANNELS
            and w_shape[3] <= DIRECT_MAX_FILTERS and dtype in (np.float32, np.float64))


# ---- few channels and filters: register-blocked direct loops (kernels/cpu/blocked.py) ----
# NOTE: LeNet's second layer (128x14x14x6, 5x5x6 -> 16, float32, 2 threads, min of 7 x 20 calls on a
# machine at load 5.6 on 2 cores, so the figures are loose): forward 0.63 ms against 1.85 ms for
# im2col + GEMM (torch in the same run 0.70); weight gradient 0.66 ms against 4.1 ms for im2col + GEMM
# (forward included, as the cols route pays it); data gradient 1.58 ms against 3.55 ms for GEMM +
# col2im. LeNet's first layer (one channel, 6 filters; min / median of 3 x 7 x 20 calls at load 4.8):
# forward blocked (8 lanes, stored in place) 0.51 / 0.74 ms against the planar direct kernel 0.62 / 1.08
# (torch 0.54 min); its weight gradient stays direct (kernels/cpu/direct.py, checked first): 0.64 ms
# against 1.30 ms blocked (which pads the output gradient to 8 filters first). float64 keeps the routes
# it had. Only the measured kind of layer takes this route: up to 8 channels and 16 filters.
BLOCKED_MAX_CHANNELS = 8
BLOCKED_MAX_FILTERS = 16


def _blocked(x_shape, w_shape, stride, dilation, groups, dtype):
    return (blocked.eligible(x_shape, w_shape, stride, dilation, groups, dtype) and np.dtype(dtype) == np.float32
            and w_shape[2] <= BLOCKED_MAX_CHANNELS and w_shape[3] <= BLOCKED_MAX_FILTERS)


def _normalize_pads(pads):
    return tuple(tuple(int(v) for v in p) for p in pads)


@register("conv2d_forward", "numba", wrap=serialized)
def conv2d_forward(x, w, stride, dilation, pads, groups):
    pads = _normalize_pads(pads)
    if _depthwise(groups, x.shape[-1], w.shape):
        return depthwise_forward(x, w, stride, dilation, pads)
    if groups != 1:
        return reference.conv2d_forward(x, w, stride, dilation, pads, groups)
    if _blocked(x.shape, w.shape, stride, dilation, groups, x.dtype):
        return blocked.forward(x, w, pads)
    if _direct(x.shape, w.shape, stride, groups, x.dtype):
        return direct.forward(x, w, dilation, pads)
    if winograd.eligible(x.shape, w.shape, stride, dilation, pads, x.dtype):
        return winograd.forward(x, w, pads, scratch)
    if _shifted(x.shape, w.shape, stride, dilation, pads, x.dtype):
        return shifted_forward(x, w, dilation, pads)
    n, ho, wo, f = reference._out_shape(x.shape, w.shape, stride, dilation, pads)
    kh, kw = w.shape[:2]
    cols = im2col(x, kh, kw, stride, dilation, pads, ho, wo)
    return (cols @ w.reshape(-1, f)).reshape(n, ho, wo, f)


KEEP_COLS_BYTES = 16 * 2 ** 20  # keep the forward's im2col matrix for the weight gradient up to this size


@register("conv2d_forward_cols", "numba", wrap=serialized)
def conv2d_forward_cols(x, w, stride, dilation, pads, groups):
    pads = _normalize_pads(pads)
    if _depthwise(groups, x.shape[-1], w.shape):
        return depthwise_forward(x, w, stride, dilation, pads), None
    if groups != 1:
        return reference.conv2d_forward_cols(x, w, stride, dilation, pads, groups)
    if _blocked(x.shape, w.shape, stride, dilation, groups, x.dtype):
        return blocked.forward(x, w, pads), None  # its weight gradient is direct or blocked
    if _direct(x.shape, w.shape, stride, groups, x.dtype):
        return direct.forward(x, w, dilation, pads), None  # its weight gradient is direct too
    if winograd.eligible(x.shape, w.shape, stride, dilation, pads, x.dtype):
        return winograd.forward(x, w, pads, scratch), None  # the weight gradient takes its own route
    n, ho, wo, f = reference._out_shape(x.shape, w.shape, stride, dilation, pads)
    kh, kw, c = w.shape[:3]
    keep = n * ho * wo * kh * kw * c * x.dtype.itemsize <= KEEP_COLS_BYTES
    shifted = _shifted(x.shape, w.shape, stride, dilation, pads, x.dtype)
    if shifted and (not keep or _shifted_weight_grad(x.shape, w.shape, dilation, pads)):
        return shifted_forward(x, w, dilation, pads), None  # the weight gradient will not need im2col's matrix
    cols = im2col(x, kh, kw, stride, dilation, pads, ho, wo, keep=keep)
    y = (cols @ w.reshape(-1, f)).reshape(n, ho, wo, f)
    if _is_pointwise(w.shape, stride, dilation, pads):
        return y, cols[None]  # a view of x, which the op keeps anyway
    # (kept: written straight into its own array rather than copied out of the scratch buffer)
    return y, (cols[None] if keep else None)


@register("conv2d_bias_activation_forward", "numba", wrap=serialized)
def conv2d_bias_activation_forward(x, w, bias, relu, stride, dilation, pads, groups, keep_cols):
    """(y, cols): y = conv + bias, then the ReLU when ``relu``; cols as ``conv2d_forward_cols`` gives them
    when ``keep_cols``, else None. The blocked kernels apply the bias and the ReLU as they store the sums."""
    pads = _normalize_pads(pads)
    if _blocked(x.shape, w.shape, stride, dilation, groups, x.dtype) and bias.dtype == x.dtype:
        return blocked.forward(x, w, pads, bias, relu), None
    if keep_cols:
        y, cols = conv2d_forward_cols(x, w, stride, dilation, pads, groups)
    else:
        y, cols = conv2d_forward(x, w, stride, dilation, pads, groups), None
    return activation.bias_activation_forward(y, bias, relu), cols


@register("conv2d_backward_weight_cols", "numba", wrap=serialized)
def conv2d_backward_weight_cols(cols, dy, w_shape, groups):
    if groups != 1:
        return reference.conv2d_backward_weight_cols(cols, dy, w_shape, groups)
    f = w_shape[-1]
    return (cols[0].T @ dy.reshape(-1, f)).reshape(w_shape)


@register("conv2d_backward_weight", "numba", wrap=serialized)
def conv2d_backward_weight(x, dy, w_shape, stride, dilation, pads, groups):
    pads = _normalize_pads(pads)
    if _depthwise(groups, x.shape[-1], w_shape):
        return depthwise_backward_weight(x, dy, w_shape, stride, dilation, pads)
    if groups != 1:
        return reference.conv2d_backward_weight(x, dy, w_shape, stride, dilation, pads, groups)
    if _direct(x.shape, w_shape, stride, groups, dy.dtype):
        return direct.backward_weight(x, dy, w_shape, dilation, pads)
    if _blocked(x.shape, w_shape, stride, dilation, groups, dy.dtype):
        return blocked.backward_weight(x, dy, w_shape, pads)
    if winograd.eligible(x.shape, w_shape, stride, dilation, pads, dy.dtype):
        return winograd.weight_grad(x, dy, pads, scratch)
    if (_shifted(x.shape, w_shape, stride, dilation, pads, dy.dtype)
            and _shifted_weight_grad(x.shape, w_shape, dilation, pads)):
        return shifted_backward_weight(x, dy, w_shape, dilation, pads)
    kh, kw, _, f = w_shape
    _, ho, wo, _ = dy.shape
    cols = im2col(x, kh, kw, stride, dilation, pads, ho, wo)
    return (cols.T @ dy.reshape(-1, f)).reshape(w_shape)


@register("conv2d_backward_weight_pooled", "numba", wrap=serialized)
def conv2d_backward_weight_pooled(x, dp, arg, y_shape, w_shape, stride, dilation, pads, groups, pool_args):
    """The weight gradient from the gradient ``dp`` at the output of a max pooling (``pool_args``: pool,
    stride, pads; ``arg`` its taps) of the convolution's output (``y_shape``): the direct kernels scatter a
    2x2 pooling's gradient image by image as they go; otherwise the pooling's backward, then the weight
    gradient."""
    pads = _normalize_pads(pads)
    if _direct(x.shape, w_shape, stride, groups, dp.dtype) and pooling._is_2x2(*pool_args) and arg.dtype == np.int8:
        return direct.backward_weight(x, dp, w_shape, dilation, pads, pooled_arg=arg)
    dy = pooling.max_pool2d_backward(dp, arg, y_shape, *pool_args)
    return conv2d_backward_weight(x, dy, w_shape, stride, dilation, pads, groups)


@register("conv2d_backward_data", "numba", wrap=serialized)
def conv2d_backward_data(dy, w, x_shape, stride, dilation, pads, groups):
    pads = _normalize_pads(pads)
    if _depthwise(groups, x_shape[-1], w.shape):
        return depthwise_backward_data(dy, w, x_shape, stride, dilation, pads)
    if groups != 1:
        return reference.conv2d_backward_data(dy, w, x_shape, stride, dilation, pads, groups)
    if _blocked(x_shape, w.shape, stride, dilation, groups, dy.dtype):
        return blocked.backward_data(dy, w, x_shape, pads)
    if winograd.backward_data_eligible(dy.shape, w.shape, stride, dilation, pads, dy.dtype):
        return winograd.backward_data(dy, w, pads, scratch)
    return col2im_backward_data(dy, w, x_shape, stride, dilation, pads)


def col2im_backward_data(dy, w, x_shape, stride, dilation, pads):
    """dx as one matrix product into the (rows, KH*KW*C) layout, then col2im (or the product alone
    for pointwise convolutions)."""
    kh, kw, c, f = w.shape
    n, ho, wo, _ = dy.shape
    dy2 = np.ascontiguousarray(dy).reshape(-1, f)
    if _is_pointwise(w.shape, stride, dilation, pads) and tuple(x_shape[1:3]) == (ho, wo):
        return (dy2 @ w.reshape(-1, f).T).reshape(x_shape)
    dcols = np.matmul(dy2, w.reshape(-1, f).T, out=scratch("dcols", (dy2.shape[0], kh * kw * c), dy.dtype))
    dx = np.zeros(x_shape, dtype=dy.dtype)
    _col2im(dcols, kh, kw, stride[0], stride[1], dilation[0], dilation[1], pads[0][0], pads[1][0], ho, wo, dx)
    return dx


# ---- depthwise (groups == input channels): direct loops, channels innermost ----
@parallel_above(2 << 20, work=lambda x, w, *a: a[-1].size * w.shape[0] * w.shape[1])
def _depthwise_forward(x, w, sh, sw, dh, dw, pt, pl, y):
    n, h, wd, c = x.shape
    kh, kw, _, f = w.shape
    mult = f // c
    _, ho, wo, _ = y.shape
    for r in prange(n * ho):
        b = r // ho
        i = r % ho
        for j in range(wo):
            for ff in range(f):
                y[b, i, j, ff] = 0
            for a in range(kh):
                yy = i * sh - pt + a * dh
                if yy < 0 or yy >= h:
                    continue
                for q in range(kw):
                    xx = j * sw - pl + q * dw
                    if xx < 0 or xx >= wd:
                        continue
                    for ch in range(c):
                        v = x[b, yy, xx, ch]
                        for k in range(mult):
                            y[b, i, j, ch * mult + k] += v * w[a, q, 0, ch * mult + k]


@parallel_above(2 << 20, work=lambda dy, w, *a: dy.size * w.shape[0] * w.shape[1])
def _depthwise_backward_data(dy, w, sh, sw, dh, dw, pt, pl, dx):
    n, h, wd, c = dx.shape
    kh, kw, _, f = w.shape
    mult = f // c
    _, ho, wo, _ = dy.shape
    for b in prange(n):
        for i in range(ho):
            for j in range(wo):
                for a in range(kh):
                    yy = i * sh - pt + a * dh
                    if yy < 0 or yy >= h:
                        continue
                    for q in range(kw):
                        xx = j * sw - pl + q * dw
                        if xx < 0 or xx >= wd:
                            continue
                        for ch in range(c):
                            s = dx[b, yy, xx, ch]
                            for k in range(mult):
                                s += dy[b, i, j, ch * mult + k] * w[a, q, 0, ch * mult + k]
                            dx[b, yy, xx, ch] = s


@parallel_above(2 << 20, work=lambda x, dy, *a: dy.size * a[-1].shape[1] * a[-1].shape[2])
def _depthwise_backward_weight(x, dy, sh, sw, dh, dw, pt, pl, partial):
    n, h, wd, c = x.shape
    blocks, kh, kw, _, f = partial.shape
    mult = f // c
    _, ho, wo, _ = dy.shape
    for t in prange(blocks):
        for r in range(t, n * ho, blocks):
            b = r // ho
            i = r % ho
            for j in range(wo):
                for a in range(kh):
                    yy = i * sh - pt + a * dh
                    if yy < 0 or yy >= h:
                        continue
                    for q in range(kw):
                        xx = j * sw - pl + q * dw
                        if xx < 0 or xx >= wd:
                            continue
                        for ch in range(c):
                            v = x[b, yy, xx, ch]
                            for k in range(mult):
                                partial[t, a, q, 0, ch * mult + k] += v * dy[b, i, j, ch * mult + k]


def _depthwise(groups, x_channels, w_shape):
    return groups > 1 and groups == x_channels and w_shape[2] == 1


def _depthwise_args(stride, dilation, pads):
    return stride[0], stride[1], dilation[0], dilation[1], pads[0][0], pads[1][0]


def depthwise_forward(x, w, stride, dilation, pads):
    n, ho, wo, f = reference._out_shape(x.shape, w.shape, stride, dilation, pads)
    y = np.empty((n, ho, wo, f), dtype=x.dtype)
    _depthwise_forward(np.ascontiguousarray(x), np.ascontiguousarray(w), *_depthwise_args(stride, dilation, pads), y)
    return y


def depthwise_backward_data(dy, w, x_shape, stride, dilation, pads):
    dx = np.zeros(x_shape, dtype=dy.dtype)
    _depthwise_backward_data(np.ascontiguousarray(dy), np.ascontiguousarray(w),
                             *_depthwise_args(stride, dilation, pads), dx)
    return dx


def depthwise_backward_weight(x, dy, w_shape, stride, dilation, pads):
    blocks = max(1, min(x.shape[0] * dy.shape[1], numba.get_num_threads()))
    partial = np.zeros((blocks,) + tuple(w_shape), dtype=dy.dtype)
    _depthwise_backward_weight(np.ascontiguousarray(x), np.ascontiguousarray(dy),
                               *_depthwise_args(stride, dilation, pads), partial)
    return partial.sum(axis=0).astype(dy.dtype, copy=False)
