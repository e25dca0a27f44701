"""Max and average pooling on NHWC arrays with Numba, in parallel over the batch; the argmax and
the averaging rule (divide by the real, unpadded window size) are the reference's."""
import numpy as np

from ember.kernels.cpu.jit import parallel_above, prange, serialized
from ember.kernels.reference.pooling import _out_hw
from ember.kernels.registry import register


@parallel_above(1 << 20)
def _max_forward(x, kh, kw, sh, sw, pt, pl, y, arg):
    # channels innermost (contiguous in NHWC); the first valid tap initialises, later taps win only
    # when strictly greater, so ties go to the first tap in row-major order, as in the reference
    n, h, w, c = x.shape
    _, ho, wo, _ = y.shape
    for b in prange(n):
        for i in range(ho):
            for j in range(wo):
                first = True
                for a in range(kh):
                    yy = i * sh - pt + a
                    if yy < 0 or yy >= h:
                        continue
                    for q in range(kw):
                        xx = j * sw - pl + q
                        if xx < 0 or xx >= w:
                            continue
                        k = a * kw + q
                        if first:
                            for ch in range(c):
                                y[b, i, j, ch] = x[b, yy, xx, ch]
                                arg[b, i, j, ch] = k
                            first = False
                        else:
                            for ch in range(c):
                                v = x[b, yy, xx, ch]
                                if v > y[b, i, j, ch]:
                                    y[b, i, j, ch] = v
                                    arg[b, i, j, ch] = k
                if first:  # the window lies in the padding only
                    for ch in range(c):
                        y[b, i, j, ch] = -np.inf
                        arg[b, i, j, ch] = 0


@parallel_above(512 << 10)
def _max_backward(dy, arg, kh, kw, sh, sw, pt, pl, dx):
    # the tap's offset from a table instead of k // kw and k % kw (two integer divisions per value);
    # only windows that reach into the padding check their taps (a tap there gets no gradient).
    # GoogLeNet's pools (2 cores): 16x28x28x192 3x3/1 5.5 -> 2.5 ms, 16x112x112x64 3x3/2 12.0 -> 5.5 ms.
    n, h, w, c = dx.shape
    _, ho, wo, _ = dy.shape
    tap_row = np.empty(kh * kw, dtype=np.int64)
    tap_col = np.empty(kh * kw, dtype=np.int64)
    shift = np.empty(kh * kw, dtype=np.int64)
    for k in range(kh * kw):
        tap_row[k] = k // kw
        tap_col[k] = k % kw
        shift[k] = (tap_row[k] * w + tap_col[k]) * c
    g = dy.reshape(-1)
    idx = arg.reshape(-1)
    out = dx.reshape(-1)
    cu = np.uint64(c)
    for b in prange(n):
        for i in range(ho):
            y0 = i * sh - pt
            for j in range(wo):
                x0 = j * sw - pl
                o = np.uint64(((b * ho + i) * wo + j) * c)
                origin = ((b * h + y0) * w + x0) * c  # the window's corner, possibly in the padding
                if y0 >= 0 and x0 >= 0 and y0 + kh <= h and x0 + kw <= w:
                    for ch in range(cu):
                        out[np.uint64(origin + shift[idx[o + ch]]) + ch] += g[o + ch]
                else:
                    for ch in range(cu):
                        k = idx[o + ch]
                        yy = y0 + tap_row[k]
                        xx = x0 + tap_col[k]
                        if yy >= 0 and yy < h and xx >= 0 and xx < w:
                            out[np.uint64(origin + shift[k]) + ch] += g[o + ch]


# ---- 2x2 windows, stride 2, no padding (LeNet, VGG): the four taps unrolled, channels outermost ----
# Measured on LeNet's shapes: forward 1019 -> 186 us (128x28x28x6) and 86 -> 25 us (128x10x10x16).
# NOTE: the tap index is stored as int8 (a quarter of int64's bytes).
# With 8 channels or more the taps are compared without branches, which LLVM vectorizes over the
# channels; with fewer, the branches are faster. One thread, min of 60 calls, on a busy machine:
# 128x10x10x16 forward 0.089 -> 0.028 ms (branch-free, int8); 128x28x28x6 forward 0.29 -> 0.195 ms
# (branches, int8; branch-free 0.55 ms); backward 0.32 -> 0.28 ms (28x28x6), 0.08 ms either way (10x10x16).
BRANCH_FREE_MIN_CHANNELS = 8


# NOTE: thresholds from LeNet's pools (float32, min of 9 x 30 calls, serial vs threaded, load 6 on 2 cores):
# forward 128x28x28x6 0.213 vs 0.185 ms, 128x10x10x16 0.029 vs 0.045 ms; backward (measured on dy)
# 128x14x14x6 0.447 vs 0.322 ms, 128x5x5x16 0.090 vs 0.051 ms.
@parallel_above(512 << 10)
def _max_forward_2x2_branches(x, y, arg):
    n = x.shape[0]
    _, ho, wo, c = y.shape
    for r in prange(n * ho):
        b = r // ho
        i = r - b * ho
        for j in range(wo):
            for ch in range(c):
                best = x[b, 2 * i, 2 * j, ch]
                k = 0
                v = x[b, 2 * i, 2 * j + 1, ch]
                if v > best:  # strictly greater: ties go to the first tap, as in the reference
                    best = v
                    k = 1
                v = x[b, 2 * i + 1, 2 * j, ch]
                if v > best:
                    best = v
                    k = 2
                v = x[b, 2 * i + 1, 2 * j + 1, ch]
                if v > best:
                    best = v
                    k = 3
                y[b, i, j, ch] = best
                arg[b, i, j, ch] = k


@parallel_above(512 << 10)
def _max_forward_2x2(x, y, arg):
    n = x.shape[0]
    _, ho, wo, c = y.shape
    for r in prange(n * ho):
        b = r // ho
        i = r - b * ho
        for j in range(wo):
            for ch in range(c):
                v0 = x[b, 2 * i, 2 * j, ch]
                v1 = x[b, 2 * i, 2 * j + 1, ch]
                v2 = x[b, 2 * i + 1, 2 * j, ch]
                v3 = x[b, 2 * i + 1, 2 * j + 1, ch]
                # strictly greater: ties go to the first tap, as in the reference; NaN never wins
                k01 = v1 > v0
                m01 = v1 if k01 else v0
                k23 = v3 > v2
                m23 = v3 if k23 else v2
                upper = not (m23 > m01)
                y[b, i, j, ch] = m01 if upper else m23
                arg[b, i, j, ch] = (np.int8(1) if k01 else np.int8(0)) if upper else (np.int8(3) if k23 else np.int8(2))


# NOTE: the two input rows of each window row are zeroed, then each gradient stored at its tap: LeNet's
# 128x14x14x6 -> 28x28 (float32, one thread, CPU time, min of 9 x 30 calls at load 5-8) 0.30 ms with four
# selects per value, 0.175 ms this way.
# Threads from 64K pooled values: LeNet's second pooling (128x5x5x16, 51,200) takes 45 us serially, and an
# empty parallel launch alone took 19 us (workqueue, 2 threads, nice 10, load 0.9), so threads cannot halve
# it; bench/parallel.py at load 1.65 measured it 45 us serial against 273 us threaded (at load 6 earlier,
# 90 against 51 us). Its first pooling's 150,528 stays threaded (175 vs 418 us at load 1.65, 447 vs 322 at 6).
@parallel_above(64 << 10)
def _max_backward_2x2(dy, arg, dx):
    n, ho, wo, c = dy.shape
    _, h, w, _ = dx.shape
    g, taps, out = dy.reshape(-1), arg.reshape(-1), dx.reshape(-1)
    row, cu, two = np.uint64(w * c), np.uint64(c), np.uint64(2)
    for r in prange(n * ho):
        b = r // ho
        i = r - b * ho
        base = np.uint64((b * h + 2 * i) * w * c)
        for k in range(two * row):
            out[base + k] = 0
        src = np.uint64(r * wo * c)
        for j in range(np.uint64(wo)):
            o = base + two * j * cu
            s = src + j * cu
            for ch in range(cu):
                k = taps[s + ch]
                out[o + ch + (row if k >= 2 else np.uint64(0)) + (cu if k & 1 else np.uint64(0))] = g[s + ch]


def _is_2x2(pool, stride, pads):
    return tuple(pool) == (2, 2) and tuple(stride) == (2, 2) and tuple(map(tuple, pads)) == ((0, 0), (0, 0))


@parallel_above(1 << 20)
def _avg(x, kh, kw, sh, sw, pt, pl, out, backward):
    # forward: out (N, Ho, Wo, C) from x (N, H, W, C); backward: out (N, H, W, C) += x (dy) / count
    if backward:
        n, ho, wo, c = x.shape
        _, h, w, _ = out.shape
    else:
        n, h, w, c = x.shape
        _, ho, wo, _ = out.shape
    for b in prange(n):
        for i in range(ho):
            r0 = max(i * sh - pt, 0)
            r1 = min(i * sh - pt + kh, h)
            for j in range(wo):
                c0 = max(j * sw - pl, 0)
                c1 = min(j * sw - pl + kw, w)
                count = (r1 - r0) * (c1 - c0)
                for ch in range(c):
                    if backward:
                        g = x[b, i, j, ch] / count
                        for yy in range(r0, r1):
                            for xx in range(c0, c1):
                                out[b, yy, xx, ch] += g
                    else:
                        s = 0.0
                        for yy in range(r0, r1):
                            for xx in range(c0, c1):
                                s += x[b, yy, xx, ch]
                        out[b, i, j, ch] = s / count


@register("max_pool2d_forward", "numba", wrap=serialized)
def max_pool2d_forward(x, pool, stride, pads):
    ho, wo = _out_hw(x.shape, pool, stride, pads)
    n, _, _, c = x.shape
    y = np.empty((n, ho, wo, c), dtype=x.dtype)
    # the tap's index in its window, in the smallest integer type that holds it
    arg = np.empty((n, ho, wo, c), dtype=np.int8 if pool[0] * pool[1] <= 127 else np.int64)
    if _is_2x2(pool, stride, pads):
        kernel = _max_forward_2x2 if c >= BRANCH_FREE_MIN_CHANNELS else _max_forward_2x2_branches
        kernel(np.ascontiguousarray(x), y, arg)
        return y, arg
    _max_forward(np.ascontiguousarray(x), pool[0], pool[1], stride[0], stride[1], pads[0][0], pads[1][0], y, arg)
    return y, arg


@register("max_pool2d_backward", "numba", wrap=serialized)
def max_pool2d_backward(dy, arg, x_shape, pool, stride, pads):
    if _is_2x2(pool, stride, pads):
        even = x_shape[1] % 2 == 0  # no row left out of the windows (the kernel zeroes whole rows)
        dx = np.empty(x_shape, dtype=dy.dtype) if even else np.zeros(x_shape, dtype=dy.dtype)
        _max_backward_2x2(np.ascontiguousarray(dy), np.ascontiguousarray(arg), dx)
        return dx
    dx = np.zeros(x_shape, dtype=dy.dtype)
    _max_backward(np.ascontiguousarray(dy), arg, pool[0], pool[1], stride[0], stride[1], pads[0][0], pads[1][0], dx)
    return dx


@register("avg_pool2d_forward", "numba", wrap=serialized)
def avg_pool2d_forward(x, pool, stride, pads):
    ho, wo = _out_hw(x.shape, pool, stride, pads)
    n, _, _, c = x.shape
    y = np.empty((n, ho, wo, c), dtype=x.dtype)
    _avg(np.ascontiguousarray(x), pool[0], pool[1], stride[0], stride[1], pads[0][0], pads[1][0], y, False)
    return y


@register("avg_pool2d_backward", "numba", wrap=serialized)
def avg_pool2d_backward(dy, x_shape, pool, stride, pads):
    dx = np.zeros(x_shape, dtype=dy.dtype)
    _avg(np.ascontiguousarray(dy), pool[0], pool[1], stride[0], stride[1], pads[0][0], pads[1][0], dx, True)
    return dx
