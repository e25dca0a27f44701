"""The LSTM cell's elementwise part with Numba: one pass per row instead of a dozen NumPy ops."""
import math

import numba
import numpy as np
from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic, overload

from ember.kernels.cpu.jit import JIT, parallel_above, prange, serialized
from ember.kernels.registry import register


@parallel_above(1 << 20)
def _forward(z, c, hc, gates, tanh_c):
    n, u = c.shape
    for r in prange(n):
        for j in range(u):
            vi, vf, vg, vo = z[r, j], z[r, u + j], z[r, 2 * u + j], z[r, 3 * u + j]
            i = 1.0 / (1.0 + math.exp(-vi)) if vi >= 0 else math.exp(vi) / (1.0 + math.exp(vi))
            f = 1.0 / (1.0 + math.exp(-vf)) if vf >= 0 else math.exp(vf) / (1.0 + math.exp(vf))
            o = 1.0 / (1.0 + math.exp(-vo)) if vo >= 0 else math.exp(vo) / (1.0 + math.exp(vo))
            g = math.tanh(vg)
            c_new = f * c[r, j] + i * g
            t = math.tanh(c_new)
            gates[r, j], gates[r, u + j], gates[r, 2 * u + j], gates[r, 3 * u + j] = i, f, g, o
            tanh_c[r, j] = t
            hc[r, j] = o * t
            hc[r, u + j] = c_new


@parallel_above(1 << 20)
def _backward(dhc, gates, tanh_c, c, dz, dc):
    n, u = c.shape
    for r in prange(n):
        for j in range(u):
            i, f, g, o = gates[r, j], gates[r, u + j], gates[r, 2 * u + j], gates[r, 3 * u + j]
            t = tanh_c[r, j]
            dh = dhc[r, j]
            dc_new = dhc[r, u + j] + dh * o * (1 - t * t)
            dz[r, j] = dc_new * g * i * (1 - i)
            dz[r, u + j] = dc_new * c[r, j] * f * (1 - f)
            dz[r, 2 * u + j] = dc_new * i * (1 - g * g)
            dz[r, 3 * u + j] = dh * t * o * (1 - o)
            dc[r, j] = dc_new * f


@register("lstm_cell_forward", "numba", wrap=serialized)
def lstm_cell_forward(z, c):
    z, c = np.ascontiguousarray(z), np.ascontiguousarray(c)
    n, u = c.shape
    hc = np.empty((n, 2 * u), dtype=z.dtype)
    gates, tanh_c = np.empty_like(z), np.empty_like(c)
    _forward(z, c, hc, gates, tanh_c)
    return hc, gates, tanh_c


@register("lstm_cell_backward", "numba", wrap=serialized)
def lstm_cell_backward(dhc, gates, tanh_c, c):
    dz, dc = np.empty_like(gates), np.empty_like(c)
    _backward(np.ascontiguousarray(dhc), gates, tanh_c, np.ascontiguousarray(c), dz, dc)
    return dz, dc


@parallel_above(1 << 20)
def _gru_forward(xw, hu, h, h_new, gates):
    n, u = h.shape
    for row in prange(n):
        for j in range(u):
            vz = xw[row, j] + hu[row, j]
            vr = xw[row, u + j] + hu[row, u + j]
            z = 1.0 / (1.0 + math.exp(-vz)) if vz >= 0 else math.exp(vz) / (1.0 + math.exp(vz))
            r = 1.0 / (1.0 + math.exp(-vr)) if vr >= 0 else math.exp(vr) / (1.0 + math.exp(vr))
            c = math.tanh(xw[row, 2 * u + j] + r * hu[row, 2 * u + j])
            gates[row, j], gates[row, u + j], gates[row, 2 * u + j] = z, r, c
            h_new[row, j] = z * h[row, j] + (1 - z) * c


@parallel_above(1 << 20)
def _gru_backward(dh_new, gates, hu, h, dxw, dhu, dh):
    n, u = h.shape
    for row in prange(n):
        for j in range(u):
            z, r, c = gates[row, j], gates[row, u + j], gates[row, 2 * u + j]
            d = dh_new[row, j]
            dc = d * (1 - z) * (1 - c * c)
            dz = d * (h[row, j] - c) * z * (1 - z)
            dr = dc * hu[row, 2 * u + j] * r * (1 - r)
            dxw[row, j], dxw[row, u + j], dxw[row, 2 * u + j] = dz, dr, dc
            dhu[row, j], dhu[row, u + j], dhu[row, 2 * u + j] = dz, dr, dc * r
            dh[row, j] = d * z


@register("gru_cell_forward", "numba", wrap=serialized)
def gru_cell_forward(xw, hu, h):
    xw, hu, h = np.ascontiguousarray(xw), np.ascontiguousarray(hu), np.ascontiguousarray(h)
    h_new, gates = np.empty_like(h), np.empty_like(xw)
    _gru_forward(xw, hu, h, h_new, gates)
    return h_new, gates


@register("gru_cell_backward", "numba", wrap=serialized)
def gru_cell_backward(dh_new, gates, hu, h):
    dxw, dhu, dh = np.empty_like(gates), np.empty_like(gates), np.empty_like(h)
    _gru_backward(np.ascontiguousarray(dh_new), gates, np.ascontiguousarray(hu), np.ascontiguousarray(h),
                  dxw, dhu, dh)
    return dxw, dhu, dh


# ---------------------------------------------------------------- one step of a fused sequence
# One step's elementwise part for the fused sequence ops (ember.engine.ops.recurrent), written into
# arrays allocated once per sequence; the spec (argument meanings, masked rows) is in
# kernels/reference/recurrent.py. Each step is one pass over the rows, with no temporaries.


# NOTE: Numba calls libm's scalar expf/tanhf (about 70 ns each on the shared 2-core machine), which LLVM
# cannot vectorize: one LSTM step's five activations (32 x 128, float32) took 1.08 ms that way. The
# previous version ran NumPy's SIMD exp between three Numba passes (pre, mid, post) with four
# temporaries per step: 50-60 us per step. In float32 the activations now use the exp below, written
# with plain arithmetic and a bit cast so that LLVM vectorizes the whole step (AVX-512 here): one pass,
# 16k exps in about 15 us. float64 keeps libm (the reference's precision; the float64 tests compare to
# 1e-12), where speed is not the point.

@intrinsic
def _f32_from_bits(typingctx, bits):
    """The float32 whose IEEE bits are the int32 ``bits`` (a bit cast, no conversion)."""
    if not isinstance(bits, types.Integer):
        return None

    def codegen(context, builder, sig, args):
        return builder.bitcast(context.cast(builder, args[0], sig.args[0], types.int32), ir.FloatType())

    return types.float32(bits), codegen


_F0, _F1, _HALF = np.float32(0.0), np.float32(1.0), np.float32(0.5)
# exp(x) = 2^n exp(r), n = round(x / ln 2), r = x - n ln 2 (ln 2 in two parts, Cody and Waite), exp(r) a
# degree-7 polynomial on |r| <= ln(2)/2 (the single-precision coefficients of Moshier's Cephes expf):
# relative error < 1e-7 (measured 6e-8 against float64 over 16k values in [-87, 0])
_LOG2E, _LN2_HI, _LN2_LO = np.float32(1.44269504088896341), np.float32(0.693359375), np.float32(-2.12194440e-4)
_EXP_P = tuple(np.float32(v) for v in (1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2,
                                       1.6666665459e-1, 5.0000001201e-1))
_EXP_MIN = np.float32(-87.0)  # 2^n stays a normal float; exp(-87) = 1.6e-38
# tanh near 0 by its series (to v^7, error < 3e-10 relative below |v| = 0.1), where (1 - e)/(1 + e)
# would lose the leading digits
_TANH_SMALL = np.float32(0.1)
_T3, _T5, _T7 = np.float32(-1.0 / 3.0), np.float32(2.0 / 15.0), np.float32(-17.0 / 315.0)


@numba.njit(**JIT)
def _exp32(x):
    """exp(x) for float32 x <= 0 (below -87 it returns exp(-87)), vectorizable."""
    x = max(x, _EXP_MIN)
    n = np.floor(x * _LOG2E + _HALF)
    r = x - n * _LN2_HI - n * _LN2_LO
    p0, p1, p2, p3, p4, p5 = _EXP_P
    y = ((((p0 * r + p1) * r + p2) * r + p3) * r + p4) * r + p5
    y = y * (r * r) + r + _F1
    return y * _f32_from_bits((np.int32(n) + np.int32(127)) << np.int32(23))


def _sigmoid(v):
    """1 / (1 + exp(-v)) for one float32 or float64 scalar, inside Numba kernels (see the overload)."""
    return _sigmoid64(v)


def _tanh(v):
    """tanh(v) for one float32 or float64 scalar, inside Numba kernels (see the overload)."""
    return math.tanh(v)


def _sigmoid64(v):
    e = math.exp(-abs(v))
    return 1.0 / (1.0 + e) if v >= 0 else e / (1.0 + e)


def _tanh64(v):
    return math.tanh(v)


def _is_float32(t):
    return isinstance(t, types.Float) and t.bitwidth == 32


@overload(_sigmoid)
def _sigmoid_jit(v):
    if _is_float32(v):
        def sigmoid32(v):
            e = _exp32(-abs(v))
            s = _F1 / (_F1 + e)
            return s if v >= _F0 else e * s

        return sigmoid32
    return _sigmoid64


@overload(_tanh)
def _tanh_jit(v):
    if _is_float32(v):
        def tanh32(v):
            a = abs(v)
            e = _exp32(np.float32(-2.0) * a)
            t = (_F1 - e) / (_F1 + e)
            v2 = v * v
            small = v * (_F1 + v2 * (_T3 + v2 * (_T5 + v2 * _T7)))
            return small if a < _TANH_SMALL else (t if v >= _F0 else -t)

        return tanh32
    return _tanh64


@parallel_above(1 << 20)
def _rnn_step_forward(xw, hu, h_prev, keep, h_out):
    n, u = h_prev.shape
    for r in prange(n):
        if keep[r]:
            for j in range(u):
                h_out[r, j] = _tanh(xw[r, j] + hu[r, j])
        else:
            for j in range(u):
                h_out[r, j] = h_prev[r, j]


@parallel_above(1 << 20)
def _rnn_step_backward(dh, h, keep, dz, dh_carry):
    n, u = h.shape
    one, zero = h.dtype.type(1), h.dtype.type(0)
    for r in prange(n):
        if keep[r]:
            for j in range(u):
                dz[r, j] = dh[r, j] * (one - h[r, j] * h[r, j])
                dh_carry[r, j] = zero
        else:
            for j in range(u):
                dz[r, j] = zero
                dh_carry[r, j] = dh[r, j]


@register("rnn_step_forward", "numba", wrap=serialized)
def rnn_step_forward(xw, hu, h_prev, keep, h_out):
    _rnn_step_forward(xw, hu, h_prev, keep, h_out)


@register("rnn_step_backward", "numba", wrap=serialized)
def rnn_step_backward(dh, h, keep, dz, dh_carry):
    _rnn_step_backward(dh, h, keep, dz, dh_carry)


# NOTE: LLVM vectorizes a loop over arrays that may overlap only behind run-time overlap checks, and
# gives up beyond 8 of them: the LSTM step as one loop over 9 arrays ran scalar, 134 us per step
# (32 x 128, float32), against 10 us for 16k sigmoids in a loop over 2 arrays. So each row is done in
# several short loops that touch at most 3 arrays each (a row's 4u values stay in L1 between them).
@parallel_above(1 << 20)
def _lstm_step_forward(xw, hu, h_prev, c_prev, keep, h_out, c_out, gates, tanh_c):
    n, u = c_prev.shape
    for r in prange(n):
        for j in range(2 * u):  # i, f
            gates[r, j] = _sigmoid(xw[r, j] + hu[r, j])
        for j in range(2 * u, 3 * u):  # g
            gates[r, j] = _tanh(xw[r, j] + hu[r, j])
        for j in range(3 * u, 4 * u):  # o
            gates[r, j] = _sigmoid(xw[r, j] + hu[r, j])
        for j in range(u):  # c' (held in tanh_c for a moment)
            tanh_c[r, j] = gates[r, u + j] * c_prev[r, j] + gates[r, j] * gates[r, 2 * u + j]
        if keep[r]:
            for j in range(u):
                c_out[r, j] = tanh_c[r, j]
            for j in range(u):
                t = _tanh(tanh_c[r, j])
                tanh_c[r, j] = t
                h_out[r, j] = gates[r, 3 * u + j] * t
        else:
            for j in range(u):
                tanh_c[r, j] = _tanh(tanh_c[r, j])
            for j in range(u):
                c_out[r, j] = c_prev[r, j]
            for j in range(u):
                h_out[r, j] = h_prev[r, j]


@parallel_above(1 << 20)
def _lstm_step_backward(dh, dc, gates, tanh_c, c_prev, keep, dz, dh_carry, dc_prev):
    n, u = c_prev.shape
    one, zero = c_prev.dtype.type(1), c_prev.dtype.type(0)
    for r in prange(n):  # short loops (see the NOTE above the forward); dc_prev may be dc itself
        if keep[r]:
            for j in range(u):  # dc' (held in dc_prev until the end)
                t = tanh_c[r, j]
                dc_prev[r, j] = dc[r, j] + dh[r, j] * gates[r, 3 * u + j] * (one - t * t)
            for j in range(u):  # di, dg
                i, g = gates[r, j], gates[r, 2 * u + j]
                dz[r, j] = dc_prev[r, j] * g * i * (one - i)
                dz[r, 2 * u + j] = dc_prev[r, j] * i * (one - g * g)
            for j in range(u):  # df
                f = gates[r, u + j]
                dz[r, u + j] = dc_prev[r, j] * c_prev[r, j] * f * (one - f)
            for j in range(u):  # do
                o = gates[r, 3 * u + j]
                dz[r, 3 * u + j] = dh[r, j] * tanh_c[r, j] * o * (one - o)
            for j in range(u):
                dc_prev[r, j] = dc_prev[r, j] * gates[r, u + j]
            for j in range(u):
                dh_carry[r, j] = zero
        else:
            for j in range(4 * u):
                dz[r, j] = zero
            for j in range(u):
                dh_carry[r, j] = dh[r, j]
            for j in range(u):
                dc_prev[r, j] = dc[r, j]


@register("lstm_step_forward", "numba", wrap=serialized)
def lstm_step_forward(xw, hu, h_prev, c_prev, keep, h_out, c_out, gates, tanh_c):
    _lstm_step_forward(xw, hu, h_prev, c_prev, keep, h_out, c_out, gates, tanh_c)


@register("lstm_step_backward", "numba", wrap=serialized)
def lstm_step_backward(dh, dc, gates, tanh_c, c_prev, keep, dz, dh_carry, dc_prev):
    _lstm_step_backward(dh, dc, gates, tanh_c, c_prev, keep, dz, dh_carry, dc_prev)


@parallel_above(1 << 20)
def _gru_step_forward(xw, hu, b_rec, h_prev, keep, h_out, gates, hu_c):
    n, u = h_prev.shape
    one = h_prev.dtype.type(1)
    for r in prange(n):  # short loops over at most 3 arrays each (see the NOTE above the LSTM's)
        for j in range(2 * u):  # z, r
            gates[r, j] = _sigmoid(xw[r, j] + (hu[r, j] + b_rec[j]))
        for j in range(u):
            hu_c[r, j] = hu[r, 2 * u + j] + b_rec[2 * u + j]
        for j in range(u):  # candidate
            gates[r, 2 * u + j] = _tanh(xw[r, 2 * u + j] + gates[r, u + j] * hu_c[r, j])
        if keep[r]:
            for j in range(u):
                z = gates[r, j]
                h_out[r, j] = z * h_prev[r, j] + (one - z) * gates[r, 2 * u + j]
        else:
            for j in range(u):
                h_out[r, j] = h_prev[r, j]


@parallel_above(1 << 20)
def _gru_step_backward(dh, gates, hu_c, h_prev, keep, dxw, dhu, dh_carry):
    n, u = h_prev.shape
    one, zero = h_prev.dtype.type(1), h_prev.dtype.type(0)
    for row in prange(n):  # short loops (see the NOTE above the LSTM's forward)
        if keep[row]:
            for j in range(u):  # dc
                z, c = gates[row, j], gates[row, 2 * u + j]
                dxw[row, 2 * u + j] = dh[row, j] * (one - z) * (one - c * c)
            for j in range(u):  # dz
                z = gates[row, j]
                dxw[row, j] = dh[row, j] * (h_prev[row, j] - gates[row, 2 * u + j]) * z * (one - z)
            for j in range(u):  # dr
                r = gates[row, u + j]
                dxw[row, u + j] = dxw[row, 2 * u + j] * hu_c[row, j] * r * (one - r)
            for j in range(2 * u):
                dhu[row, j] = dxw[row, j]
            for j in range(u):
                dhu[row, 2 * u + j] = dxw[row, 2 * u + j] * gates[row, u + j]
            for j in range(u):
                dh_carry[row, j] = dh[row, j] * gates[row, j]
        else:
            for j in range(3 * u):
                dxw[row, j] = zero
            for j in range(3 * u):
                dhu[row, j] = zero
            for j in range(u):
                dh_carry[row, j] = dh[row, j]


@register("gru_step_forward", "numba", wrap=serialized)
def gru_step_forward(xw, hu, b_rec, h_prev, keep, h_out, gates, hu_c):
    _gru_step_forward(xw, hu, b_rec, h_prev, keep, h_out, gates, hu_c)


@register("gru_step_backward", "numba", wrap=serialized)
def gru_step_backward(dh, gates, hu_c, h_prev, keep, dxw, dhu, dh_carry):
    _gru_step_backward(dh, gates, hu_c, h_prev, keep, dxw, dhu, dh_carry)
