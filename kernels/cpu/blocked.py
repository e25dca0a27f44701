"""Register-blocked direct convolution on NHWC arrays (stride 1, no dilation, one group), for small
layers whose matrix products are too thin for BLAS, such as LeNet-5's (5x5x1 -> 6 and 5x5x6 -> 16).

Each kernel is an outer product accumulated in registers over a reduction:
- forward: a block of P output pixels of one row times FB filters (FB = 16 or 8: two or one 256-bit
  registers of float32 per pixel), summed over the KH * KW * C taps; a pixel's taps in one kernel
  row are one contiguous run of KW * C values of the (zero-padded) input row, and the weights are laid
  out (filter block, KH, KW * C, FB), so each tap is one vector load of weights and one broadcast
  input value per pixel;
- weight gradient: K taps times FB filters, summed over all output pixels of a block of images (one
  vector load of the output gradient and K broadcast input values per pixel);
- data gradient: P output pixels times a chunk of RC values of their input rows' windows (KW * C
  values per kernel row), summed over the F filters, then added into the input gradient. The P pixels
  are every other pixel of two output rows (P / 2 in each), so that with C >= RC / 2 channels no two of
  them add into the same input values: the channels need no padding to RC lanes (LeNet's 6 channels,
  window rows of 30 values in four chunks of 8 instead of 40 in five).

Numba cannot name a vector register, so the accumulators are written out as scalars (P * FB of them)
by the generator below, and LLVM's SLP vectorizer packs them into vector registers (checked in
tests: the compiled code holds packed fused multiply-adds). The generated file is
``kernels/cpu/_blocked_gen.py`` (``python -m ember.kernels.cpu.blocked`` rewrites it; a test checks
it matches), a real module so that Numba caches its machine code on disk like every other kernel.

NOTE: Numba leaves LLVM's SLP vectorizer off (``numba.config.SLP_VECTORIZE``, default 0) and reads
that setting at each compilation, so these kernels are compiled (on their first call) with it
switched on for that call only. Measured on LeNet-5's second layer (128x14x14x6, 5x5x6 -> 16, float32,
2 threads, a busy 2-core machine): the generated forward kernel with P = 4 took 5.1-7.3 ms with SLP off
(scalar fused multiply-adds) and 0.55 ms with it on (eight packed ones per tap); P = 10 (one whole
output row) 0.42 ms, against 1.05 ms for im2col + GEMM.
"""
import os

import numba
import numpy as np

from ember.kernels.cpu.jit import parallel_above

# NOTE: compiling costs time once (then Numba's disk cache serves it), growing with block * FB: on the busy
# 2-core machine (load 6), threaded float32, forward P = 5 / 10 by 16 compiled in 12 / 26 s, the weight
# gradient K = 5 / 10 by 16 in 11 / 27 s; their run times there, min (median) of 4 x 5 x 20 calls: forward
# 1.28 (2.23) vs 1.05 (2.47) ms, weight gradient 1.92 (3.18) vs 1.62 (3.19) ms. A cold W2 (empty cache)
# took 108.7 s to its first step against 30.3 s before these kernels, both at load 5-6.
# With the bias and ReLU epilogue and the unsigned constants made once per thread (2026-12-05): LeNet-5's
# kernels compile in 19.5 s of CPU (the four blocked ones 14.9 s); a cold W2's first step 28.5, 34.1, 24.9 s against
# 31.9, 30.5, 52.9 s without the fused kernels (alternating pairs, another engineer's load of 0.5-1.4 cores).
# the generated kernels: (name, kind, block, FB); kind "forward": block = P pixels, "weight": K taps,
# "data": P pixels (with RC = FB values of the windows per chunk)
KERNELS = (
    ("forward", 10, 16),  # a whole 10-pixel row of LeNet's second layer: 20 registers of sums
    ("forward", 14, 8),   # few filters (LeNet's first layer: 6 of 8 lanes used, rows of 2 x 14 pixels)
    ("weight", 10, 16),   # ten taps by 16 filters
    ("weight", 25, 8),    # a whole 5x5 one-channel kernel by up to 8 filters
    ("data", 10, 8),      # ten pixels (five of each of two rows, every other one) by 8 window values
)


def kernel_name(kind, block, fb):
    return {"forward": "forward_p{}_f{}", "weight": "weight_grad_k{}_f{}", "data": "data_grad_s2_p{}_r{}"}[kind].format(
        block, fb)


def _u(v):
    return f"np.uint64({v})"


def _consts(count, ind):
    # u0, u1, ...: the unsigned constants of the indices, made once at the top of the threaded loop's body
    # (inside it, so that they stay constants there). NOTE: Numba's compile time grows with the statements of
    # the body; each written-out "np.uint64(q)" costs three (a global, an attribute, a call). LeNet's second
    # layer's forward kernel (P = 10, FB = 16, float32, empty cache, CPU time, load 4): threaded 6.87 -> 4.78
    # s, serial 3.31 -> 2.39 s, the same run time (0.533 against 0.554 ms, one thread) and machine code
    # (20 packed fused multiply-adds and 20 vmaxps).
    return [" " * ind + f"u{q} = np.uint64({q})" for q in range(count)]


def _forward_block(p_count, fb, ind):
    s = " " * ind
    lines = [s + " = ".join(f"a{p}_{q}" for q in range(fb)) + " = zero" for p in range(p_count)]
    lines += [s + "for a in range(kh):",
              s + "    xo = np.uint64(((b * hp + i + a) * wp + j) * c)",
              s + f"    wb = np.uint64((fb * kh + a) * kwc * {fb})",
              s + "    for k in range(np.uint64(kwc)):",
              s + f"        wk = wb + k * {_u(fb)}"]
    lines += [s + f"        w{q} = wf[wk + u{q}]" for q in range(fb)]
    for p in range(p_count):
        lines.append(s + f"        x{p} = xf[xo + u{p} * cu + k]")
        lines += [s + f"        a{p}_{q} += x{p} * w{q}" for q in range(fb)]
    # the bias, then the ReLU as max(v, lo): lo = 0, or -inf without the ReLU (NaN passes: Python's max keeps
    # v unless lo > v). NOTE: a select, not a branch: with "v if not v <= lo else zero" the P * FB conditional
    # expressions made as many blocks of Numba IR, and the threaded float32 kernels took 81 s (P = 10, FB =
    # 16) and 37 s (14 x 8) of CPU to compile in LeNet-5's first step, against 7 s and 5 s without the epilogue
    # (load 3-7, 2 cores); with max() 7.3 s (10 x 16), the same run time (0.535 against 0.540 ms, one thread).
    lines.append(s + "yo = np.uint64(((b * ho + i) * wo + j) * f + f0)")
    lines += [s + f"y{p} = yo + u{p} * fu" for p in range(p_count)]
    lines += [s + f"yf[y{p} + u{q}] = max(a{p}_{q} + c{q}, lo)" for p in range(p_count) for q in range(fb)]
    return lines


def _forward_source(p_count, fb):
    lines = [f"def {kernel_name('forward', p_count, fb)}(xp, wt, bias, lo, zero, y):",
             f'    """y (N, Ho, Wo, F) from the padded input xp (N, Hp, Wp, C) and wt (F / {fb}, KH, KW * C, {fb}), '
             'plus',
             f"    bias (F / {fb} * {fb}), then max(value, lo) (lo = 0 for a ReLU, -inf for none); Wo is a",
             f"    multiple of {p_count}, F of {fb} or else less than {fb}: each pixel's {fb} values are stored, then,",
             "    the last ones over the next pixel's first ones, stored after them (one thread takes whole images, in",
             "    order), except at the start of each image (the caller recomputes those pixels) and past the end of",
             '    y (the caller leaves room there)."""',
             "    n, hp, wp, c = xp.shape",
             "    nfb, kh, kwc, _ = wt.shape",
             "    _, ho, wo, f = y.shape",
             "    cu, fu = np.uint64(c), np.uint64(f)",
             "    xf, wf, yf = xp.reshape(-1), wt.reshape(-1), y.reshape(-1)",
             "    for b in prange(n):"]
    lines += _consts(max(fb, p_count), 8)
    lines += ["        for i in range(ho):",
              "            for fb in range(nfb):",
              f"                f0 = fb * {fb}"]
    lines += [" " * 16 + f"c{q} = bias[f0 + {q}]" for q in range(fb)]
    lines += [f"                for j in range(0, wo, {p_count}):"]
    lines += _forward_block(p_count, fb, 20)
    return "\n".join(lines) + "\n"


def _weight_block(k_count, fb, ind):
    s = " " * ind
    lines = [s + f"o{k} = np.uint64(offs[t0 + {k}])" for k in range(k_count)]
    lines += [s + " = ".join(f"a{k}_{q}" for q in range(fb)) + " = zero" for k in range(k_count)]
    lines += [s + "for b in range(b0, b1):",
              s + "    for i in range(ho):",
              s + "        xrow = np.uint64((b * hp + i) * wp * c)",
              s + f"        grow = np.uint64((b * ho + i) * wo * f + fb * {fb})",
              s + "        for j in range(np.uint64(wo)):",
              s + "            xo = xrow + j * cu",
              s + "            go = grow + j * fu"]
    lines += [s + f"            g{q} = gf[go + u{q}]" for q in range(fb)]
    for k in range(k_count):
        lines.append(s + f"            x{k} = xf[xo + o{k}]")
        lines += [s + f"            a{k}_{q} += x{k} * g{q}" for q in range(fb)]
    lines.append(s + f"po = np.uint64(((blk * nfb + fb) * taps + t0) * {fb})")
    lines += [s + f"pk{k} = po + {_u(k * fb)}" for k in range(k_count)]
    lines += [s + f"pf[pk{k} + u{q}] = a{k}_{q}" for k in range(k_count) for q in range(fb)]
    return lines


def _weight_source(k_count, fb):
    lines = [f"def {kernel_name('weight', k_count, fb)}(xp, dy, offs, zero, partial):",
             f'    """partial[block, F / {fb}, taps, {fb}]: the weight gradient summed over each block of images;',
             f'    dy has a multiple of {fb} filters, offs[t] is tap t\'s offset into a padded image (N, Hp, Wp, C);',
             f'    the number of taps is a multiple of {k_count}."""',
             "    n, hp, wp, c = xp.shape",
             "    _, ho, wo, f = dy.shape",
             "    blocks, nfb, taps, _ = partial.shape",
             "    cu, fu = np.uint64(c), np.uint64(f)",
             "    xf, gf, pf = xp.reshape(-1), dy.reshape(-1), partial.reshape(-1)",
             "    for blk in prange(blocks):"]
    lines += _consts(fb, 8)
    lines += ["        b0 = blk * n // blocks",
             "        b1 = (blk + 1) * n // blocks",
             "        for fb in range(nfb):",
             f"            for t0 in range(0, taps, {k_count}):"]
    lines += _weight_block(k_count, fb, 16)
    return "\n".join(lines) + "\n"


def _data_block(p_count, rc, ind):
    # pixel p: output row i + p // (P / 2), column j + 2 * (p % (P / 2))
    s = " " * ind
    half = p_count // 2
    lines = [s + " = ".join(f"a{p}_{r}" for r in range(rc)) + " = zero" for p in range(p_count)]
    lines += [s + "go = np.uint64(((b * ho + i) * f) * wo + j)",
              s + f"wb = np.uint64((ch * kh + a) * f * {rc})",
              s + "for ff in range(np.uint64(f)):",
              s + f"    wk = wb + ff * {_u(rc)}",
              s + "    gof = go + ff * wou"]
    lines += [s + f"    w{r} = wf[wk + u{r}]" for r in range(rc)]
    for p in range(p_count):
        row = "grow + " if p >= half else ""
        lines.append(s + f"    d{p} = gf[gof + {row}u{2 * (p % half)}]")
        lines += [s + f"    a{p}_{r} += d{p} * w{r}" for r in range(rc)]
    lines.append(s + f"xo = np.uint64(((b * hp + i + a) * wp + j) * c + ch * {rc})")
    for p in range(p_count):
        row = "xrow + " if p >= half else ""
        lines.append(s + f"x{p} = xo + {row}u{2 * (p % half)} * cu")
        lines += [s + f"xf[x{p} + u{r}] += a{p}_{r}" for r in range(rc)]
    return lines


def _data_source(p_count, rc):
    lines = [f"def {kernel_name('data', p_count, rc)}(dyt, wt, zero, dxp):",
             "    \"\"\"dxp (N, Hp, Wp, C), zero on entry: the padded input's gradient, from dyt (N, Ho, F, Wo) and",
             f"    wt (chunks, KH, F, {rc}), the KW * C values of each kernel row's window in chunks of {rc} (the last",
             f"    one padded with zero weights); Ho is even, Wo a multiple of {p_count}, 2 * C >= {rc}, and Wp leaves",
             "    room for the last chunk past the last window. A block is every other pixel of two rows.\"\"\"",
             "    n, hp, wp, c = dxp.shape",
             "    chunks, kh, _, _ = wt.shape",
             "    _, ho, f, wo = dyt.shape",
             "    cu, wou = np.uint64(c), np.uint64(wo)",
             "    grow, xrow = np.uint64(f * wo), np.uint64(wp * c)",
             "    gf, wf, xf = dyt.reshape(-1), wt.reshape(-1), dxp.reshape(-1)",
             "    for b in prange(n):"]
    lines += _consts(max(rc, p_count - 1), 8)
    lines += ["        for i in range(0, ho, 2):",
             "            for ch in range(chunks):",
             "                for parity in range(2):",
             f"                    for j in range(parity, wo, {p_count}):",
             "                        for a in range(kh):"]
    lines += _data_block(p_count, rc, 28)
    return "\n".join(lines) + "\n"


def source():
    """The text of ``kernels/cpu/_blocked_gen.py``."""
    parts = ['"""Generated by ``python -m ember.kernels.cpu.blocked`` (see kernels/cpu/blocked.py); do not edit."""',
             "import numpy as np",
             "from numba import prange",
             "",
             "# ruff: noqa"]
    make = {"forward": _forward_source, "weight": _weight_source, "data": _data_source}
    for kind, block, fb in KERNELS:
        parts += ["", "", make[kind](block, fb).rstrip("\n")]
    return "\n".join(parts) + "\n"


# ---- the kernels and their calls ----
def _slp_on_first_call(kernel):
    """``kernel`` (a ``parallel_above`` dispatcher) with Numba's SLP vectorizer on while it compiles."""
    def call(*args):
        old = numba.config.SLP_VECTORIZE
        numba.config.SLP_VECTORIZE = 1
        try:
            return kernel(*args)
        finally:
            numba.config.SLP_VECTORIZE = old

    call.parallel, call.serial = getattr(kernel, "parallel", None), getattr(kernel, "serial", None)
    return call


def _make(kind, block, fb, work):
    from ember.kernels.cpu import _blocked_gen  # noqa: PLC0415 - generated, imported with its users

    fn = getattr(_blocked_gen, kernel_name(kind, block, fb))
    # "contract": fused multiply-adds (no reassociation: the sums are written out in order)
    return _slp_on_first_call(parallel_above(1 << 20, work=work, fastmath={"contract"})(fn))


_KERNELS = {}


def _kernel(kind, block, fb):
    key = (kind, block, fb)
    if key not in _KERNELS:
        work = {"forward": lambda xp, wt, bias, lo, zero, y: y.size * wt.shape[1] * wt.shape[2],
                "weight": lambda xp, dy, offs, zero, partial: dy.size * offs.size,
                "data": lambda dyt, wt, zero, dxp: dyt.size * wt.shape[0] * wt.shape[1] * wt.shape[3]}[kind]
        _KERNELS[key] = _make(kind, block, fb, work)
    return _KERNELS[key]


def _choose(kind, fb_wanted):
    """The generated kernel of ``kind`` whose lane count FB fits ``fb_wanted`` best (16 for many filters)."""
    options = [(block, fb) for k, block, fb in KERNELS if k == kind]
    fitting = [o for o in options if o[1] >= fb_wanted] or [max(options, key=lambda o: o[1])]
    return min(fitting, key=lambda o: o[1])


def eligible(x_shape, w_shape, stride, dilation, groups, dtype):
    """Whether the blocked kernels compute this convolution (stride 1, no dilation, one group, float)."""
    return (groups == 1 and tuple(stride) == (1, 1) and tuple(dilation) == (1, 1) and len(x_shape) == 4
            and x_shape[-1] == w_shape[2] and np.dtype(dtype) in (np.float32, np.float64))


def _pad(x, pads):
    (pt, pb), (pl, pr) = pads
    x = np.ascontiguousarray(x)
    if not (pt or pb or pl or pr):
        return x
    n, h, w, c = x.shape
    xp = np.zeros((n, h + pt + pb, w + pl + pr, c), dtype=x.dtype)
    xp[:, pt:pt + h, pl:pl + w] = x
    return xp


def _ceil(v, m):
    return -(-v // m) * m


def forward(x, w, pads, bias=None, relu=False):
    """y (N, Ho, Wo, F) of a stride-1, undilated convolution of x (N, H, W, C) with w (KH, KW, C, F), plus
    ``bias`` (F,) when given, then max(y, 0) when ``relu`` (both applied as the sums are stored: the same
    values as ``bias_activation_forward`` on the convolution's output, without a pass over it).

    Example:
        >>> x, w = np.ones((1, 3, 3, 1), np.float32), np.ones((2, 2, 1, 1), np.float32)
        >>> forward(x, w, ((0, 0), (0, 0)))[0, :, :, 0].tolist()
        [[4.0, 4.0], [4.0, 4.0]]
        >>> forward(x, w, ((0, 0), (0, 0)), bias=np.array([-5.0], np.float32), relu=True)[0, :, :, 0].tolist()
        [[0.0, 0.0], [0.0, 0.0]]
    """
    kh, kw, c, f = w.shape
    n, h, wd, _ = x.shape
    (pt, pb), (pl, pr) = pads
    ho, wo = h + pt + pb - kh + 1, wd + pl + pr - kw + 1
    block, fb = _choose("forward", f)
    fp, wop = _ceil(f, fb), _ceil(wo, block)  # whole blocks of filters and of output pixels
    xp = _pad(x, ((pt, pb), (pl, pr + wop - wo)))
    wt = np.zeros((kh, kw * c, fp), dtype=x.dtype)
    wt[:, :, :f] = w.reshape(kh, kw * c, f)
    wt = np.ascontiguousarray(wt.reshape(kh, kw * c, fp // fb, fb).transpose(2, 0, 1, 3))
    bt = np.zeros(fp, dtype=x.dtype)
    if bias is not None:
        bt[:f] = bias
    scalar = x.dtype.type
    lo = scalar(0) if relu else scalar(-np.inf)  # the kernel stores max(value, lo)
    if wop == wo and fp != f and fp == fb:
        # fewer filters than lanes: stored in place, each pixel's extra lanes over the next pixel's first
        # ones (rewritten right after); y is followed by room for the last pixel's.
        # NOTE: instead of storing all lanes into a (N, Ho, Wo, FB) array and copying the F wanted out of
        # it, which took 0.53 ms for LeNet's first layer (NumPy's strided copy; the kernel 0.73 ms).
        room = np.empty(n * ho * wo * f + fb, dtype=x.dtype)
        y = room[:n * ho * wo * f].reshape(n, ho, wo, f)
        if y.size:
            _kernel("forward", block, fb)(xp, wt, bt, lo, scalar(0), y)
            # an image's first pixel may have been written over by the previous image's last one, on
            # another thread: recomputed (with the bias and the ReLU as the kernel applies them)
            first = np.tensordot(xp[1:, :kh, :kw], w, axes=3) + bt[:f]
            y[1:, 0, 0] = np.maximum(first, lo)
        return y
    y = np.empty((n, ho, wop, fp), dtype=x.dtype)
    if y.size:
        _kernel("forward", block, fb)(xp, wt, bt, lo, scalar(0), y)
    return y if (wop, fp) == (wo, f) else np.ascontiguousarray(y[:, :, :wo, :f])


def backward_weight(x, dy, w_shape, pads):
    """dw (KH, KW, C, F) of the convolution ``forward`` computes, from its input x and output gradient dy.

    Example:
        >>> x, dy = np.ones((1, 3, 3, 1), np.float32), np.ones((1, 2, 2, 1), np.float32)
        >>> backward_weight(x, dy, (2, 2, 1, 1), ((0, 0), (0, 0)))[:, :, 0, 0].tolist()
        [[4.0, 4.0], [4.0, 4.0]]
    """
    kh, kw, c, f = w_shape
    xp = _pad(x, pads)
    n, hp, wp, _ = xp.shape
    block, fb = _choose("weight", f)
    fp = _ceil(f, fb)
    dy = np.ascontiguousarray(dy)
    if fp != f:  # the kernel reads whole blocks of filters
        padded = np.zeros(dy.shape[:3] + (fp,), dtype=dy.dtype)
        padded[..., :f] = dy
        dy = padded
    taps = kh * kw * c
    offs = np.zeros(_ceil(taps, block), dtype=np.int64)  # whole groups of taps: the extra ones are dropped
    offs[:taps] = (np.arange(kh).reshape(kh, 1) * wp * c + np.arange(kw * c).reshape(1, kw * c)).reshape(-1)
    blocks = max(1, min(n, 4 * numba.get_num_threads()))
    partial = np.zeros((blocks, fp // fb, offs.size, fb), dtype=dy.dtype)
    if dy.size:
        _kernel("weight", block, fb)(xp, dy, offs, dy.dtype.type(0), partial)
    dw = partial.sum(axis=0)[:, :taps].transpose(1, 0, 2).reshape(taps, fp)[:, :f]
    return np.ascontiguousarray(dw.reshape(w_shape))


def backward_data(dy, w, x_shape, pads):
    """dx (N, H, W, C) of the convolution ``forward`` computes, from its output gradient dy.

    Example:
        >>> dy, w = np.ones((1, 2, 2, 1), np.float32), np.ones((2, 2, 1, 1), np.float32)
        >>> backward_data(dy, w, (1, 3, 3, 1), ((0, 0), (0, 0)))[0, :, :, 0].tolist()
        [[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]
    """
    kh, kw, c, f = w.shape
    n, h, wd, _ = x_shape
    (pt, pb), (pl, pr) = pads
    _, ho, wo, _ = dy.shape
    block, rc = _choose("data", 0)
    # NOTE: LeNet's second layer (128x10x10x16 -> 14x14x6, float32, one thread, CPU time, min of 9 x 20
    # calls at load 6-8): 1.43-1.44 ms with the channels padded to 8 and blocks of ten adjacent pixels,
    # 1.08-1.09 ms with every other pixel of two rows and windows of 30 values in four chunks. Adjacent
    # pixels without the padding (their chunks overlap by two values) took 2.2 ms: each block's additions
    # then wait for the previous pixel's stores.
    cp = max(c, rc // 2)  # blocks of every other pixel touch disjoint values from RC / 2 channels up
    kwc = kw * cp
    chunks = -(-kwc // rc)
    wt = np.zeros((kh, kw, cp, f), dtype=dy.dtype)
    wt[:, :, :c] = w
    wt_rows = np.zeros((kh, chunks * rc, f), dtype=dy.dtype)  # each window row in whole chunks, zeros after
    wt_rows[:, :kwc] = wt.reshape(kh, kwc, f)
    wt = np.ascontiguousarray(wt_rows.reshape(kh, chunks, rc, f).transpose(1, 0, 3, 2))  # (chunks, KH, F, RC)
    hop, wop = ho + ho % 2, _ceil(wo, block)  # pairs of rows, whole blocks of pixels: the extra ones are zeros
    dy = np.ascontiguousarray(dy)
    if (hop, wop) != (ho, wo):
        padded = np.zeros((n, hop, wop, f), dtype=dy.dtype)
        padded[:, :ho, :wo] = dy
        dy = padded
    room = -(-(chunks * rc - kwc) // cp)  # pixels past each row for the last chunk of its last window
    dxp = np.zeros((n, hop + kh - 1, wop + kw - 1 + room, cp), dtype=dy.dtype)
    if dy.size:
        # NOTE: the output gradient with the filters before the columns (N, Ho, F, Wo): a block's pixels are then
        # at constant offsets from one address per row, where with NHWC each took an address register of its
        # own (27 instructions per ten fused multiply-adds in the inner loop, 15 now); and the kernel rows
        # innermost, so that consecutive blocks add into the same input values (forwarded stores) or apart,
        # never partly overlapping. LeNet's second layer (128x10x10x16 -> 14x14x6, float32, one thread, CPU
        # time, min of 7 x 20 calls, load 5): 1.072 -> 0.975 (layout) -> 0.940 ms (order), transpose included.
        _kernel("data", block, rc)(np.ascontiguousarray(dy.transpose(0, 1, 3, 2)), wt, dy.dtype.type(0), dxp)
    return np.ascontiguousarray(dxp[:, pt:pt + h, pl:pl + wd, :c])


GENERATED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_blocked_gen.py")


def write():
    with open(GENERATED, "w") as f:
        f.write(source())


if __name__ == "__main__":
    write()
