"""3x3 stride-1 convolutions by Winograd's minimal filtering F(2x2, 3x3), on NHWC arrays.

Each 2x2 block of outputs ("tile") comes from a 4x4 patch ``d`` of the padded input:
``Y = A^T [(G g G^T) * (B^T d B)] A``, the product taken element by element over the 16 positions.
Over all tiles and channels that is 16 independent matrix products ``V[k] @ U[k]`` of shape
(tiles, C) @ (C, F): 16 * (N*Ho*Wo/4) * C * F multiply-adds instead of 9 * N*Ho*Wo * C * F, 2.25x
fewer, at the price of the two transforms (memory-bound, in Numba) and a rounding error a few times
that of the direct sum (relative 5e-7 instead of 2-4e-7 in float32 on ResNet-50's layers).

    B^T = [1  0 -1  0]     G = [1    0    0 ]     A^T = [1  1  1  0]
          [0  1  1  0]         [1/2  1/2  1/2]           [0  1 -1 -1]
          [0 -1  1  0]         [1/2 -1/2  1/2]
          [0  1  0 -1]         [0    0    1 ]

The tiles are processed in chunks so that the transformed input and the products stay in cache.
The backward pass with respect to the input is the same computation on the gradient with the
kernel turned by 180 degrees and its channel axes swapped (``backward_data``). The weight gradient
is the transpose of the forward map: dU[k] = V[k]^T @ (A dy A^T)[k] summed over tiles, then
dW = G^T dU G (``weight_grad``).

Measured on 2 cores (bench/conv.py, float32, forward / gradient with respect to the input, against
the best other route): ResNet-50's 56x56x64 layer 19.5 / 21.0 vs 32.8 / 30.9 ms, 28x28x128 14.0 /
13.6 vs 23.9 / 24.8 ms, 14x14x256 11.2 / 11.7 vs 20.0 / 18.7 ms, 7x7x512 14.4 / 17.8 vs 18.4 / 17.9 ms;
Inception's 28x28x96 -> 128 10.6 / 10.9 vs 18.0 / 18.3 ms. Weight gradient (another run): 22.3 vs
28.4, 14.9 vs 22.9, 11.5 vs 19.6, 15.9 vs 18.1 and 10.6 vs 17.0 ms on the same layers.
With few channels on either side the 16 products are too thin for BLAS: 28x28x16 -> 32 1.5 vs
1.0 ms forward, 14x14x24 -> 64 even, and VGG's first layer's input gradient (64 -> 3 channels) 165
vs 44 ms; hence ``MIN_CHANNELS``.
"""
import numpy as np

from ember.kernels.cpu.jit import JIT, njit, parallel_above, prange

MIN_CHANNELS = 32  # input and output channels (the inner and outer dimensions of the 16 products)
CHUNK_BYTES = 8 << 20  # transformed input of one chunk of tiles
# NOTE: the transforms are memory-bound: threads never paid for a chunk on two cores (bench/parallel.py,
# W3 + W4: input transform 31.8 ms serial vs 53.7 ms threaded over its 100 distinct calls, output
# 23.7 vs 37.7, gradient 25.9 vs 36.8), so the threaded twins run only above any chunk's size.
TRANSFORM_THREADS_ABOVE = 64 << 20


def eligible(x_shape, w_shape, stride, dilation, pads, dtype):
    """Whether a convolution takes this route: 3x3, stride 1, no dilation, padding at most 2."""
    kh, kw, c, f = w_shape
    return ((kh, kw) == (3, 3) and tuple(stride) == (1, 1) and tuple(dilation) == (1, 1)
            and dtype in (np.float32, np.float64) and x_shape[-1] == c and min(c, f) >= MIN_CHANNELS
            and all(0 <= p <= 2 for pair in pads for p in pair)
            and x_shape[1] + sum(pads[0]) >= 3 and x_shape[2] + sum(pads[1]) >= 3)


@njit(**JIT)
def _tile(tile, tiles_h, tiles_w):
    """(image, tile row, tile column) of a tile's flat index."""
    b = tile // (tiles_h * tiles_w)
    r = tile - b * tiles_h * tiles_w
    ti = r // tiles_w
    return b, ti, r - ti * tiles_w


# B^T has two non-zero entries per row: row u is e[FIRST[u]] + SIGN[u] * e[SECOND[u]]
_FIRST = (0, 1, 2, 1)
_SECOND = (2, 2, 1, 3)
_SIGN = (-1.0, 1.0, -1.0, -1.0)


@parallel_above(TRANSFORM_THREADS_ABOVE, work=lambda *a: a[-1].size)
def _input_transform(xp, tiles_h, tiles_w, t0, v):
    # xp: (N, 2*tiles_h + 2, 2*tiles_w + 2, C), the padded input; v: (16, T, C) for tiles t0..t0+T.
    # NOTE: one output plane per inner loop (four loads, one store): with all sixteen in one loop LLVM
    # cannot rule out aliasing between the streams and leaves it scalar (measured 3-5x slower).
    n, hp, wp, c = xp.shape
    count = v.shape[1]
    src = xp.reshape(-1)
    dst = v.reshape(-1)
    cu = np.uint64(c)
    for k in prange(count):
        b, ti, tj = _tile(t0 + k, tiles_h, tiles_w)
        base = ((b * hp + 2 * ti) * wp + 2 * tj) * c
        for u in range(4):
            su = src.dtype.type(_SIGN[u])
            for q in range(4):
                sq = src.dtype.type(_SIGN[q])
                a1 = np.uint64(base + (_FIRST[u] * wp + _FIRST[q]) * c)
                a2 = np.uint64(base + (_FIRST[u] * wp + _SECOND[q]) * c)
                a3 = np.uint64(base + (_SECOND[u] * wp + _FIRST[q]) * c)
                a4 = np.uint64(base + (_SECOND[u] * wp + _SECOND[q]) * c)
                o = np.uint64(((u * 4 + q) * count + k) * c)
                for ch in range(cu):
                    dst[o + ch] = (src[a1 + ch] + sq * src[a2 + ch]) + su * (src[a3 + ch] + sq * src[a4 + ch])


@parallel_above(TRANSFORM_THREADS_ABOVE, work=lambda *a: a[0].size)
def _output_transform(m, tiles_h, tiles_w, t0, y):
    # m: (16, T, F), the products for tiles t0..t0+T; y: (N, Ho, Wo, F). Row i of A^T sums positions
    # i, i+1, i+2 with signs (+, +, +) for i = 0 and (+, -, -) for i = 1.
    n, ho, wo, f = y.shape
    count = m.shape[1]
    src = m.reshape(-1)
    dst = y.reshape(-1)
    fu = np.uint64(f)
    for k in prange(count):
        b, ti, tj = _tile(t0 + k, tiles_h, tiles_w)
        for i in range(2):
            if 2 * ti + i >= ho:
                continue
            si = src.dtype.type(1.0 if i == 0 else -1.0)
            for j in range(2):
                if 2 * tj + j >= wo:
                    continue
                sj = src.dtype.type(1.0 if j == 0 else -1.0)
                d = np.uint64(((b * ho + 2 * ti + i) * wo + 2 * tj + j) * f)
                o00 = np.uint64((((i + 0) * 4 + j + 0) * count + k) * f)
                o01 = np.uint64((((i + 0) * 4 + j + 1) * count + k) * f)
                o02 = np.uint64((((i + 0) * 4 + j + 2) * count + k) * f)
                o10 = np.uint64((((i + 1) * 4 + j + 0) * count + k) * f)
                o11 = np.uint64((((i + 1) * 4 + j + 1) * count + k) * f)
                o12 = np.uint64((((i + 1) * 4 + j + 2) * count + k) * f)
                o20 = np.uint64((((i + 2) * 4 + j + 0) * count + k) * f)
                o21 = np.uint64((((i + 2) * 4 + j + 1) * count + k) * f)
                o22 = np.uint64((((i + 2) * 4 + j + 2) * count + k) * f)
                for ch in range(fu):
                    r0 = src[o00 + ch] + sj * (src[o01 + ch] + src[o02 + ch])
                    r1 = src[o10 + ch] + sj * (src[o11 + ch] + src[o12 + ch])
                    r2 = src[o20 + ch] + sj * (src[o21 + ch] + src[o22 + ch])
                    dst[d + ch] = r0 + si * (r1 + r2)


# A (4x2) = [[1, 0], [1, 1], [1, -1], [0, -1]]: the coefficients of dy's 2x2 tile in A dy A^T
_A = ((1.0, 0.0), (1.0, 1.0), (1.0, -1.0), (0.0, -1.0))


@parallel_above(TRANSFORM_THREADS_ABOVE, work=lambda *a: a[-1].size)
def _gradient_transform(gp, tiles_h, tiles_w, t0, m):
    # gp: (N, 2*tiles_h, 2*tiles_w, F), the output's gradient with zeros past Ho, Wo; m: (16, T, F),
    # A g A^T for tiles t0..t0+T (one output plane per inner loop, as in _input_transform)
    n, hp, wp, f = gp.shape
    count = m.shape[1]
    src = gp.reshape(-1)
    dst = m.reshape(-1)
    fu = np.uint64(f)
    for k in prange(count):
        b, ti, tj = _tile(t0 + k, tiles_h, tiles_w)
        s00 = np.uint64(((b * hp + 2 * ti) * wp + 2 * tj) * f)
        s01 = s00 + fu
        s10 = np.uint64(((b * hp + 2 * ti + 1) * wp + 2 * tj) * f)
        s11 = s10 + fu
        for u in range(4):
            for q in range(4):
                c00 = src.dtype.type(_A[u][0] * _A[q][0])
                c01 = src.dtype.type(_A[u][0] * _A[q][1])
                c10 = src.dtype.type(_A[u][1] * _A[q][0])
                c11 = src.dtype.type(_A[u][1] * _A[q][1])
                o = np.uint64(((u * 4 + q) * count + k) * f)
                for ch in range(fu):
                    top = c00 * src[s00 + ch] + c01 * src[s01 + ch]
                    dst[o + ch] = top + (c10 * src[s10 + ch] + c11 * src[s11 + ch])


def weight_transform(w):
    """U = G g G^T for every (input, output) channel pair: (3, 3, C, F) -> (16, C, F)."""
    half = w.dtype.type(0.5)

    def g_times(g0, g1, g2):
        return g0, (g0 + g1 + g2) * half, (g0 - g1 + g2) * half, g2

    u = np.empty((4, 4) + w.shape[2:], dtype=w.dtype)
    for i, row in enumerate(g_times(w[0], w[1], w[2])):
        for j, value in enumerate(g_times(row[0], row[1], row[2])):
            u[i, j] = value
    return u.reshape(16, w.shape[2], w.shape[3])


def _padded_tiles(x, ho, wo, pads):
    """x zero-padded to whole 2x2 output tiles (rows and columns past its padding are zeros too),
    and the number of tile rows and columns."""
    n, h, wd, c = x.shape
    (pt, _), (pl, _) = pads
    tiles_h, tiles_w = (ho + 1) // 2, (wo + 1) // 2
    xp = np.zeros((n, 2 * tiles_h + 2, 2 * tiles_w + 2, c), dtype=x.dtype)
    xp[:, pt:pt + h, pl:pl + wd] = x
    return xp, tiles_h, tiles_w


def _chunks(scratch, tiles, c, f, dtype):
    """(first tile, V buffer (16, count, C), M buffer (16, count, F)) per chunk of tiles."""
    chunk = int(min(tiles, max(64, CHUNK_BYTES // (16 * max(c, f) * np.dtype(dtype).itemsize))))
    v_buf = scratch("winograd_v", (16 * chunk * c,), dtype)
    m_buf = scratch("winograd_m", (16 * chunk * f,), dtype)
    for t0 in range(0, tiles, chunk):
        count = min(chunk, tiles - t0)
        yield t0, v_buf[:16 * count * c].reshape(16, count, c), m_buf[:16 * count * f].reshape(16, count, f)


def forward(x, w, pads, scratch):
    """y = conv2d(x, w) with stride 1, for ``eligible`` shapes. ``scratch(slot, shape, dtype)`` lends
    reused buffers (kernels/cpu/conv.py)."""
    n, h, wd, c = x.shape
    f = w.shape[-1]
    ho, wo = h + sum(pads[0]) - 2, wd + sum(pads[1]) - 2
    xp, tiles_h, tiles_w = _padded_tiles(x, ho, wo, pads)
    u = weight_transform(w)
    y = np.empty((n, ho, wo, f), dtype=x.dtype)
    for t0, v, m in _chunks(scratch, n * tiles_h * tiles_w, c, f, x.dtype):
        _input_transform(xp, tiles_h, tiles_w, t0, v)
        np.matmul(v, u, out=m)
        _output_transform(m, tiles_h, tiles_w, t0, y)
    return y


def weight_grad(x, dy, pads, scratch):
    """dW for y = conv2d(x, w) with stride 1 (``eligible`` shapes): per chunk of tiles the 16 products
    V^T @ (A dy A^T), (C, tiles) @ (tiles, F), summed, then G^T dU G."""
    n, h, wd, c = x.shape
    _, ho, wo, f = dy.shape
    xp, tiles_h, tiles_w = _padded_tiles(x, ho, wo, pads)
    if (ho, wo) == (2 * tiles_h, 2 * tiles_w):
        gp = np.ascontiguousarray(dy)
    else:  # partial tiles: the missing outputs have no gradient
        gp = np.zeros((n, 2 * tiles_h, 2 * tiles_w, f), dtype=dy.dtype)
        gp[:, :ho, :wo] = dy
    du = np.zeros((16, c, f), dtype=x.dtype)
    part = np.empty((16, c, f), dtype=x.dtype)
    for t0, v, m in _chunks(scratch, n * tiles_h * tiles_w, c, f, x.dtype):
        _input_transform(xp, tiles_h, tiles_w, t0, v)
        _gradient_transform(gp, tiles_h, tiles_w, t0, m)
        np.matmul(v.transpose(0, 2, 1), m, out=part)
        du += part
    # dW = G^T dU G, G^T = [[1, 1/2, 1/2, 0], [0, 1/2, -1/2, 0], [0, 1/2, 1/2, 1]]
    half = x.dtype.type(0.5)
    du = du.reshape(4, 4, c, f)

    def gt_times(d0, d1, d2, d3):
        return d0 + (d1 + d2) * half, (d1 - d2) * half, (d1 + d2) * half + d3

    dw = np.empty((3, 3, c, f), dtype=x.dtype)
    for a, row in enumerate(gt_times(du[0], du[1], du[2], du[3])):
        for q, value in enumerate(gt_times(row[0], row[1], row[2], row[3])):
            dw[a, q] = value
    return dw


def backward_data_eligible(dy_shape, w_shape, stride, dilation, pads, dtype):
    """Whether the gradient with respect to the input takes this route (``backward_data``)."""
    kh, kw, c, f = w_shape
    return eligible(dy_shape, (kh, kw, f, c), stride, dilation, backward_data_pads(pads), dtype)


def backward_data_pads(pads):
    """The padding under which the gradient with respect to the input is a forward convolution."""
    return tuple((2 - a, 2 - b) for a, b in pads)


def backward_data(dy, w, pads, scratch):
    """dx for y = conv2d(x, w) with stride 1 (``eligible`` with the channel axes swapped): the
    forward convolution of dy with the kernel turned by 180 degrees, F and C swapped."""
    return forward(dy, w[::-1, ::-1].transpose(0, 1, 3, 2), backward_data_pads(pads), scratch)
