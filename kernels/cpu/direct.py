"""Direct convolution (no im2col, no BLAS) for layers with very few input channels, such as LeNet's
first layer (one channel, 5x5, six filters): stride 1, one group, any padding and dilation.

Each image is copied into a zero-padded planar buffer (C, Hp, Wp), flattened. Laying an output
row out with the padded width Wp (the last KW-1 columns of each row are scratch), every kernel tap
(c, a, q) reads one contiguous run of the buffer, starting at c*Hp*Wp + a*dh*Wp + q*dw, for all
outputs at once: the forward pass is, per filter, a sum of such runs scaled by the tap's weight,
and the weight gradient is, per tap and filter, one dot product of a run with the output gradient
(laid out the same way). Taps are taken five at a time, so that one pass over the accumulator
serves five multiply-adds. Threads split the batch.

NOTE (why, 2 cores shared with other engineers, float32, min of 40 calls): on LeNet's first layer
(128x28x28x1, 5x5x1x6, pad 2) im2col + GEMM took 1.8-2.1 ms forward (a (100352, 25) @ (25, 6)
product, too thin for BLAS) and the weight gradient's (25, 100352) @ (100352, 6) product 1.2-1.4 ms
(single thread; two threads did not help). The same layer as direct loops, one thread: forward
0.95 ms with taps five at a time (1.07 four at a time, 1.05 eight at a time, 1.45 one at a time);
with the layout changes below, forward 0.86 ms and weight gradient 0.81 ms.
On LeNet's second layer (6 channels, 16 filters) direct loops lost (1.5 ms vs 0.8 ms for the
GEMM), hence the rule in kernels/cpu/conv.py: one input channel only.
"""
import numba
import numpy as np

from ember.kernels.cpu.jit import JIT, parallel_above, prange

GROUP = 5  # taps per pass (hand-unrolled below)

# NOTE: the weight gradient's dot products are reductions; LLVM vectorizes a float reduction only
# when it may reorder the sum ("reassoc"), and "contract" lets it fuse multiply and add. Neither
# touches NaN or infinity handling. One thread, LeNet's first layer, min of 40: weight gradient 3.8 ms
# without fast-math flags, 17-21 ms with "contract" alone, 0.80 ms with both; forward 0.96 ms
# without, 0.85 ms with "contract" (fused multiply-adds).
REDUCE_FLAGS = {"reassoc", "contract"}


def tap_offsets(c, kh, kw, hp, wp, dh, dw):
    """Offsets into one image's flat (C, Hp, Wp) buffer of the C*KH*KW taps, in (c, a, q) order."""
    a = np.arange(kh).reshape(1, kh, 1) * dh * wp
    q = np.arange(kw).reshape(1, 1, kw) * dw
    ch = np.arange(c).reshape(c, 1, 1) * hp * wp
    return (ch + a + q).reshape(-1).astype(np.int64)


def _tap_weights(w):
    """(KH, KW, C, F) -> (C*KH*KW, F) in (c, a, q) order, contiguous."""
    kh, kw, c, f = w.shape
    return np.ascontiguousarray(w.transpose(2, 0, 1, 3).reshape(c * kh * kw, f))


@numba.njit(**JIT)
def _fill_planar(x, b, pt, pl, hp, wp, buf):
    # the interior of image b into buf (C, Hp, Wp); the padding of buf is already zero
    _, h, w, c = x.shape
    for ch in range(c):
        for i in range(h):
            row = (ch * hp + i + pt) * wp + pl
            for j in range(w):
                buf[row + j] = x[b, i, j, ch]


# NOTE: the layout changes run one filter at a time (a contiguous read, a strided write, or the reverse),
# not one pixel at a time: LeNet's first layer, 128 images, 0.31 -> 0.18 ms.
@numba.njit(**JIT)
def _to_nhwc(acc, wp, ho, wo, out):
    # acc (F, rows at the padded width) -> out, one image's (Ho, Wo, F) flattened
    f = acc.shape[0]
    for i in range(ho):
        for ff in range(f):
            src = acc[ff, i * wp:i * wp + wo]
            dst = out[i * wo * f + ff:]
            for j in range(wo):
                dst[j * f] = src[j]


@numba.njit(**JIT)
def _from_nhwc(src, wp, ho, wo, acc):
    # one image's (Ho, Wo, F) flattened -> acc (F, rows at the padded width); other columns untouched
    f = acc.shape[0]
    for i in range(ho):
        for ff in range(f):
            row = src[i * wo * f + ff:]
            dst = acc[ff, i * wp:i * wp + wo]
            for j in range(wo):
                dst[j] = row[j * f]


@numba.njit(**JIT)
def _from_pooled(dp, arg, wp, acc):
    # one image's gradient at a 2x2 max pooling's output, dp (Ho / 2, Wo / 2, F), scattered to the tap
    # arg names in each window (0..3, row-major): acc (F, rows at the padded width), every window's four
    # values written (zeros but one); a last odd row or column is never written (left as it is, zero)
    hq, wq, f = dp.shape
    for i in range(hq):
        for ff in range(f):
            row = acc[ff, 2 * i * wp:(2 * i + 1) * wp + 2 * wq]
            for j in range(wq):
                k = arg[i, j, ff]
                v = dp[i, j, ff]
                row[2 * j] = v if k == 0 else 0
                row[2 * j + 1] = v if k == 1 else 0
                row[wp + 2 * j] = v if k == 2 else 0
                row[wp + 2 * j + 1] = v if k == 3 else 0


def _blocks(n):
    return min(n, 4 * numba.get_num_threads())


@parallel_above(2 << 20, work=lambda x, wt, *a: a[-1].size * wt.shape[0], fastmath={"contract"})
def _forward(x, wt, offs, pt, pl, hp, wp, blocks, y):
    # y (N, Ho, Wo, F) = sum over taps t of wt[t] times the run of the padded image at offs[t]
    n, ho, wo, f = y.shape
    taps = wt.shape[0]
    length = (ho - 1) * wp + wo
    full = taps - taps % 5
    for blk in prange(blocks):
        buf = np.zeros(x.shape[3] * hp * wp, dtype=x.dtype)
        acc = np.empty((f, length), dtype=y.dtype)
        for b in range(blk * n // blocks, (blk + 1) * n // blocks):
            _fill_planar(x, b, pt, pl, hp, wp, buf)
            acc[:] = 0
            for t in range(0, full, 5):
                x0 = buf[offs[t]:offs[t] + length]
                x1 = buf[offs[t + 1]:offs[t + 1] + length]
                x2 = buf[offs[t + 2]:offs[t + 2] + length]
                x3 = buf[offs[t + 3]:offs[t + 3] + length]
                x4 = buf[offs[t + 4]:offs[t + 4] + length]
                for ff in range(f):
                    w0, w1, w2, w3, w4 = wt[t, ff], wt[t + 1, ff], wt[t + 2, ff], wt[t + 3, ff], wt[t + 4, ff]
                    row = acc[ff]
                    for p in range(length):
                        row[p] += w0 * x0[p] + w1 * x1[p] + w2 * x2[p] + w3 * x3[p] + w4 * x4[p]
            for t in range(full, taps):
                x0 = buf[offs[t]:offs[t] + length]
                for ff in range(f):
                    w0 = wt[t, ff]
                    row = acc[ff]
                    for p in range(length):
                        row[p] += w0 * x0[p]
            _to_nhwc(acc, wp, ho, wo, y[b].reshape(-1))


# NOTE: filters three at a time: the five runs of the input loaded in one pass serve fifteen sums instead
# of five (loads per multiply-add 6/5 -> 8/15). LeNet's first layer (128x28x28x1, 5x5 -> 6, float32, one
# thread, CPU time, min of 9 x 20 calls at load 5-8): 0.86-0.92 -> 0.61-0.63 ms, of which 0.23 ms is the
# two layout changes. The filters are padded to a multiple of three (zero rows of dy) rather than handled one
# at a time after the groups: that second loop nest made the kernel's first compilation 4.1 s instead of
# 3.4 s (one-filter-at-a-time version: 3.0 s; CPU time, empty cache, load 5).


@parallel_above(2 << 20, work=lambda x, dy, arg, ho, wo, offs, *a: x.shape[0] * ho * wo * dy.shape[3] * offs.size,
                fastmath=REDUCE_FLAGS)
def _weight_grad(x, dy, arg, ho, wo, offs, pt, pl, hp, wp, zero, partial):
    # partial[blk, t, f] = sum over block blk's images of the run at offs[t] dotted with dy[..., f]; partial
    # has room for whole groups of three filters (the extra ones are dy's zeros). dy: the output gradient
    # (N, Ho, Wo, F), or, with arg of the same shape (not empty), the gradient at a 2x2 max pooling's output
    # and the taps its maxima came from
    n, f = x.shape[0], dy.shape[3]
    pooled = arg.size > 0
    blocks, taps, fp = partial.shape
    length = (ho - 1) * wp + wo
    full = taps - taps % 5
    for blk in prange(blocks):
        buf = np.zeros(x.shape[3] * hp * wp, dtype=x.dtype)
        g = np.zeros((fp, length), dtype=dy.dtype)  # dy at the padded width: the scratch columns stay 0
        part = partial[blk]
        for b in range(blk * n // blocks, (blk + 1) * n // blocks):
            _fill_planar(x, b, pt, pl, hp, wp, buf)
            if pooled:
                _from_pooled(dy[b], arg[b], wp, g[:f])
            else:
                _from_nhwc(dy[b].reshape(-1), wp, ho, wo, g[:f])
            for ff in range(0, fp, 3):
                d0, d1, d2 = g[ff], g[ff + 1], g[ff + 2]
                for t in range(0, full, 5):
                    x0 = buf[offs[t]:offs[t] + length]
                    x1 = buf[offs[t + 1]:offs[t + 1] + length]
                    x2 = buf[offs[t + 2]:offs[t + 2] + length]
                    x3 = buf[offs[t + 3]:offs[t + 3] + length]
                    x4 = buf[offs[t + 4]:offs[t + 4] + length]
                    s00 = s01 = s02 = s03 = s04 = zero
                    s10 = s11 = s12 = s13 = s14 = zero
                    s20 = s21 = s22 = s23 = s24 = zero
                    for p in range(length):
                        u0, u1, u2, u3, u4 = x0[p], x1[p], x2[p], x3[p], x4[p]
                        v = d0[p]
                        s00 += u0 * v
                        s01 += u1 * v
                        s02 += u2 * v
                        s03 += u3 * v
                        s04 += u4 * v
                        v = d1[p]
                        s10 += u0 * v
                        s11 += u1 * v
                        s12 += u2 * v
                        s13 += u3 * v
                        s14 += u4 * v
                        v = d2[p]
                        s20 += u0 * v
                        s21 += u1 * v
                        s22 += u2 * v
                        s23 += u3 * v
                        s24 += u4 * v
                    part[t, ff] += s00
                    part[t + 1, ff] += s01
                    part[t + 2, ff] += s02
                    part[t + 3, ff] += s03
                    part[t + 4, ff] += s04
                    part[t, ff + 1] += s10
                    part[t + 1, ff + 1] += s11
                    part[t + 2, ff + 1] += s12
                    part[t + 3, ff + 1] += s13
                    part[t + 4, ff + 1] += s14
                    part[t, ff + 2] += s20
                    part[t + 1, ff + 2] += s21
                    part[t + 2, ff + 2] += s22
                    part[t + 3, ff + 2] += s23
                    part[t + 4, ff + 2] += s24
                for t in range(full, taps):
                    x0 = buf[offs[t]:offs[t] + length]
                    s00 = s10 = s20 = zero
                    for p in range(length):
                        u0 = x0[p]
                        s00 += u0 * d0[p]
                        s10 += u0 * d1[p]
                        s20 += u0 * d2[p]
                    part[t, ff] += s00
                    part[t, ff + 1] += s10
                    part[t, ff + 2] += s20


def _geometry(x_shape, w_shape, dilation, pads):
    n, h, w, c = x_shape
    kh, kw = w_shape[:2]
    (pt, pb), (pl, pr) = pads
    hp, wp = h + pt + pb, w + pl + pr
    ho, wo = hp - (kh - 1) * dilation[0], wp - (kw - 1) * dilation[1]
    return hp, wp, ho, wo, tap_offsets(c, kh, kw, hp, wp, dilation[0], dilation[1])


def forward(x, w, dilation, pads):
    """y (N, Ho, Wo, F) of a stride-1 convolution of x (N, H, W, C) with w (KH, KW, C, F)."""
    hp, wp, ho, wo, offs = _geometry(x.shape, w.shape, dilation, pads)
    y = np.empty((x.shape[0], ho, wo, w.shape[3]), dtype=x.dtype)
    _forward(np.ascontiguousarray(x), _tap_weights(w).astype(x.dtype, copy=False), offs, pads[0][0], pads[1][0],
             hp, wp, _blocks(x.shape[0]), y)
    return y


def backward_weight(x, dy, w_shape, dilation, pads, pooled_arg=None):
    """dw (KH, KW, C, F) of a stride-1 convolution, from its input x and output gradient dy; or, with
    ``pooled_arg``, from the gradient dy at the output of a 2x2 max pooling (stride 2, no padding) of the
    convolution's output and the tap (0..3) each maximum came from (``max_pool2d_forward``'s arg): the
    scatter back to the convolution's output happens image by image inside the kernel.

    NOTE: LeNet's first layer (128x28x28x1, 5x5 -> 6, float32, one thread) spent 0.175 ms (serial) in the
    pooling's scatter to a fresh 128x28x28x6 array before this kernel, and the kernel reads that array.
    """
    hp, wp, ho, wo, offs = _geometry(x.shape, w_shape, dilation, pads)
    kh, kw, c, f = w_shape
    if pooled_arg is None:
        arg = np.empty((0, 0, 0, 0), dtype=np.int8)
    else:
        if dy.shape != pooled_arg.shape or dy.shape[1:3] != (ho // 2, wo // 2):
            raise ValueError(f"direct.backward_weight: the pooled gradient {dy.shape} and taps {pooled_arg.shape} "
                             f"must both be the 2x2 pooling of the ({ho}, {wo}) output")
        arg = np.ascontiguousarray(pooled_arg, dtype=np.int8)
    partial = np.zeros((_blocks(x.shape[0]), offs.size, -(-f // 3) * 3), dtype=dy.dtype)  # whole groups of 3
    _weight_grad(np.ascontiguousarray(x), np.ascontiguousarray(dy), arg, ho, wo, offs, pads[0][0], pads[1][0], hp,
                 wp, dy.dtype.type(0), partial)
    return np.ascontiguousarray(partial.sum(axis=0)[:, :f].reshape(c, kh, kw, f).transpose(1, 2, 0, 3))
