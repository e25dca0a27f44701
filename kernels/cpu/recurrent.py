"""The LSTM cell's elementwise part with Numba: one pass per row instead of a dozen NumPy ops."""
import math

import numpy as np

from ember.kernels.cpu.jit import parallel_above, prange, serialized
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
# kernels/reference/recurrent.py. One pass per row instead of 10-20 NumPy passes and temporaries.


# NOTE: Numba calls libm's scalar exp/tanh, about 70 ns each on the shared 2-core machine: the LSTM
# step's five activations took 1.08 ms per step (32 x 128, float32) in one Numba pass, against 12 us
# for NumPy's SIMD exp over the same 16k values. So each forward step runs in Numba passes around
# NumPy's exp: pass 1 writes -|v| (or -2|v| for a tanh) of each pre-activation v, NumPy exponentiates
# in place, pass 2 forms sigmoid(v) = 1/(1+e) or e/(1+e) and tanh(v) = sign(v)(1-e)/(1+e), e = exp(-2|v|).


@parallel_above(1 << 20)
def _rnn_step_pre(xw, hu, v, e):
    n, g = xw.shape
    for r in prange(n):
        for j in range(g):
            x = xw[r, j] + hu[r, j]
            v[r, j] = x
            e[r, j] = -2.0 * abs(x)


@parallel_above(1 << 20)
def _rnn_step_post(v, e, h_prev, keep, h_out):
    n, u = h_prev.shape
    for r in prange(n):
        if keep[r]:
            for j in range(u):
                t = (1.0 - e[r, j]) / (1.0 + e[r, j])
                h_out[r, j] = t if v[r, j] >= 0 else -t
        else:
            for j in range(u):
                h_out[r, j] = h_prev[r, j]


@parallel_above(1 << 20)
def _rnn_step_backward(dh, h, keep, dz, dh_carry):
    n, u = h.shape
    for r in prange(n):
        k = keep[r]
        for j in range(u):
            d = dh[r, j]
            if k:
                dz[r, j] = d * (1 - h[r, j] * h[r, j])
                dh_carry[r, j] = 0.0
            else:
                dz[r, j] = 0.0
                dh_carry[r, j] = d


@register("rnn_step_forward", "numba", wrap=serialized)
def rnn_step_forward(xw, hu, h_prev, keep, h_out):
    v, e = np.empty_like(xw), np.empty_like(xw)
    _rnn_step_pre(xw, hu, v, e)
    np.exp(e, out=e)
    _rnn_step_post(v, e, h_prev, keep, h_out)


@register("rnn_step_backward", "numba", wrap=serialized)
def rnn_step_backward(dh, h, keep, dz, dh_carry):
    _rnn_step_backward(dh, h, keep, dz, dh_carry)


@parallel_above(1 << 20)
def _lstm_step_pre(xw, hu, z, e):
    n, g = xw.shape
    u = g // 4
    for r in prange(n):
        for j in range(g):
            v = xw[r, j] + hu[r, j]
            z[r, j] = v
            e[r, j] = -2.0 * abs(v) if 2 * u <= j < 3 * u else -abs(v)


@parallel_above(1 << 20)
def _lstm_step_mid(z, e, c_prev, gates, c_new, e_c):
    n, u = c_prev.shape
    for r in prange(n):
        for j in range(u):
            ei, ef, eg, eo = e[r, j], e[r, u + j], e[r, 2 * u + j], e[r, 3 * u + j]
            i = 1.0 / (1.0 + ei) if z[r, j] >= 0 else ei / (1.0 + ei)
            f = 1.0 / (1.0 + ef) if z[r, u + j] >= 0 else ef / (1.0 + ef)
            o = 1.0 / (1.0 + eo) if z[r, 3 * u + j] >= 0 else eo / (1.0 + eo)
            g = (1.0 - eg) / (1.0 + eg)
            g = g if z[r, 2 * u + j] >= 0 else -g
            gates[r, j], gates[r, u + j], gates[r, 2 * u + j], gates[r, 3 * u + j] = i, f, g, o
            c = f * c_prev[r, j] + i * g
            c_new[r, j] = c
            e_c[r, j] = -2.0 * abs(c)


@parallel_above(1 << 20)
def _lstm_step_post(c_new, e_c, gates, h_prev, c_prev, keep, h_out, c_out, tanh_c):
    n, u = c_prev.shape
    for r in prange(n):
        k = keep[r]
        for j in range(u):
            c = c_new[r, j]
            t = (1.0 - e_c[r, j]) / (1.0 + e_c[r, j])
            t = t if c >= 0 else -t
            tanh_c[r, j] = t
            if k:
                h_out[r, j] = gates[r, 3 * u + j] * t
                c_out[r, j] = c
            else:
                h_out[r, j] = h_prev[r, j]
                c_out[r, j] = c_prev[r, j]


@parallel_above(1 << 20)
def _lstm_step_backward(dh, dc, gates, tanh_c, c_prev, keep, dz, dh_carry, dc_prev):
    n, u = c_prev.shape
    for r in prange(n):
        k = keep[r]
        for j in range(u):
            d, dcj = dh[r, j], dc[r, j]
            if k:
                i, f, g, o = gates[r, j], gates[r, u + j], gates[r, 2 * u + j], gates[r, 3 * u + j]
                t = tanh_c[r, j]
                dc_new = dcj + d * o * (1 - t * t)
                dz[r, j] = dc_new * g * i * (1 - i)
                dz[r, u + j] = dc_new * c_prev[r, j] * f * (1 - f)
                dz[r, 2 * u + j] = dc_new * i * (1 - g * g)
                dz[r, 3 * u + j] = d * t * o * (1 - o)
                dh_carry[r, j] = 0.0
                dc_prev[r, j] = dc_new * f
            else:
                dz[r, j] = dz[r, u + j] = dz[r, 2 * u + j] = dz[r, 3 * u + j] = 0.0
                dh_carry[r, j] = d
                dc_prev[r, j] = dcj


@register("lstm_step_forward", "numba", wrap=serialized)
def lstm_step_forward(xw, hu, h_prev, c_prev, keep, h_out, c_out, gates, tanh_c):
    z, e = np.empty_like(xw), np.empty_like(xw)
    c_new, e_c = np.empty_like(c_prev), np.empty_like(c_prev)
    _lstm_step_pre(xw, hu, z, e)
    np.exp(e, out=e)
    _lstm_step_mid(z, e, c_prev, gates, c_new, e_c)
    np.exp(e_c, out=e_c)
    _lstm_step_post(c_new, e_c, gates, h_prev, c_prev, keep, h_out, c_out, tanh_c)


@register("lstm_step_backward", "numba", wrap=serialized)
def lstm_step_backward(dh, dc, gates, tanh_c, c_prev, keep, dz, dh_carry, dc_prev):
    _lstm_step_backward(dh, dc, gates, tanh_c, c_prev, keep, dz, dh_carry, dc_prev)


@parallel_above(1 << 20)
def _gru_step_pre(xw, hu, b_rec, v, e):
    n, g2 = v.shape
    for r in prange(n):
        for j in range(g2):
            x = xw[r, j] + hu[r, j] + b_rec[j]
            v[r, j] = x
            e[r, j] = -abs(x)


@parallel_above(1 << 20)
def _gru_step_mid(v, e, xw, hu, b_rec, gates, hu_c, vc, e_c):
    n, u = hu_c.shape
    for r in prange(n):
        for j in range(u):
            ez, er = e[r, j], e[r, u + j]
            z = 1.0 / (1.0 + ez) if v[r, j] >= 0 else ez / (1.0 + ez)
            rr = 1.0 / (1.0 + er) if v[r, u + j] >= 0 else er / (1.0 + er)
            gates[r, j], gates[r, u + j] = z, rr
            hc = hu[r, 2 * u + j] + b_rec[2 * u + j]
            hu_c[r, j] = hc
            x = xw[r, 2 * u + j] + rr * hc
            vc[r, j] = x
            e_c[r, j] = -2.0 * abs(x)


@parallel_above(1 << 20)
def _gru_step_post(vc, e_c, h_prev, keep, gates, h_out):
    n, u = h_prev.shape
    for r in prange(n):
        k = keep[r]
        for j in range(u):
            c = (1.0 - e_c[r, j]) / (1.0 + e_c[r, j])
            c = c if vc[r, j] >= 0 else -c
            gates[r, 2 * u + j] = c
            z, hp = gates[r, j], h_prev[r, j]
            h_out[r, j] = z * hp + (1 - z) * c if k else hp


@parallel_above(1 << 20)
def _gru_step_backward(dh, gates, hu_c, h_prev, keep, dxw, dhu, dh_carry):
    n, u = h_prev.shape
    for row in prange(n):
        k = keep[row]
        for j in range(u):
            d = dh[row, j]
            if k:
                z, r, c = gates[row, j], gates[row, u + j], gates[row, 2 * u + j]
                dc = d * (1 - z) * (1 - c * c)
                dz = d * (h_prev[row, j] - c) * z * (1 - z)
                dr = dc * hu_c[row, j] * r * (1 - r)
                dxw[row, j], dxw[row, u + j], dxw[row, 2 * u + j] = dz, dr, dc
                dhu[row, j], dhu[row, u + j], dhu[row, 2 * u + j] = dz, dr, dc * r
                dh_carry[row, j] = d * z
            else:
                dxw[row, j] = dxw[row, u + j] = dxw[row, 2 * u + j] = 0.0
                dhu[row, j] = dhu[row, u + j] = dhu[row, 2 * u + j] = 0.0
                dh_carry[row, j] = d


@register("gru_step_forward", "numba", wrap=serialized)
def gru_step_forward(xw, hu, b_rec, h_prev, keep, h_out, gates, hu_c):
    n, u = h_prev.shape
    v, e = np.empty((n, 2 * u), dtype=xw.dtype), np.empty((n, 2 * u), dtype=xw.dtype)
    vc, e_c = np.empty_like(h_prev), np.empty_like(h_prev)
    _gru_step_pre(xw, hu, b_rec, v, e)
    np.exp(e, out=e)
    _gru_step_mid(v, e, xw, hu, b_rec, gates, hu_c, vc, e_c)
    np.exp(e_c, out=e_c)
    _gru_step_post(vc, e_c, h_prev, keep, gates, h_out)


@register("gru_step_backward", "numba", wrap=serialized)
def gru_step_backward(dh, gates, hu_c, h_prev, keep, dxw, dhu, dh_carry):
    _gru_step_backward(dh, gates, hu_c, h_prev, keep, dxw, dhu, dh_carry)
