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


@parallel_above(1 << 20)
def _rnn_step_forward(xw, hu, h_prev, keep, h_out):
    n, u = h_prev.shape
    for r in prange(n):
        if keep[r]:
            for j in range(u):
                h_out[r, j] = math.tanh(xw[r, j] + hu[r, j])
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
    _rnn_step_forward(xw, hu, h_prev, keep, h_out)


@register("rnn_step_backward", "numba", wrap=serialized)
def rnn_step_backward(dh, h, keep, dz, dh_carry):
    _rnn_step_backward(dh, h, keep, dz, dh_carry)


@parallel_above(1 << 20)
def _lstm_step_forward(xw, hu, h_prev, c_prev, keep, h_out, c_out, gates, tanh_c):
    n, u = c_prev.shape
    for r in prange(n):
        k = keep[r]
        for j in range(u):
            vi = xw[r, j] + hu[r, j]
            vf = xw[r, u + j] + hu[r, u + j]
            vg = xw[r, 2 * u + j] + hu[r, 2 * u + j]
            vo = xw[r, 3 * u + j] + hu[r, 3 * u + j]
            i = 1.0 / (1.0 + math.exp(-vi)) if vi >= 0 else math.exp(vi) / (1.0 + math.exp(vi))
            f = 1.0 / (1.0 + math.exp(-vf)) if vf >= 0 else math.exp(vf) / (1.0 + math.exp(vf))
            o = 1.0 / (1.0 + math.exp(-vo)) if vo >= 0 else math.exp(vo) / (1.0 + math.exp(vo))
            g = math.tanh(vg)
            cp = c_prev[r, j]
            c_new = f * cp + i * g
            t = math.tanh(c_new)
            gates[r, j], gates[r, u + j], gates[r, 2 * u + j], gates[r, 3 * u + j] = i, f, g, o
            tanh_c[r, j] = t
            if k:
                h_out[r, j] = o * t
                c_out[r, j] = c_new
            else:
                h_out[r, j] = h_prev[r, j]
                c_out[r, j] = cp


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
    _lstm_step_forward(xw, hu, h_prev, c_prev, keep, h_out, c_out, gates, tanh_c)


@register("lstm_step_backward", "numba", wrap=serialized)
def lstm_step_backward(dh, dc, gates, tanh_c, c_prev, keep, dz, dh_carry, dc_prev):
    _lstm_step_backward(dh, dc, gates, tanh_c, c_prev, keep, dz, dh_carry, dc_prev)


@parallel_above(1 << 20)
def _gru_step_forward(xw, hu, b_rec, h_prev, keep, h_out, gates, hu_c):
    n, u = h_prev.shape
    for row in prange(n):
        k = keep[row]
        for j in range(u):
            vz = xw[row, j] + hu[row, j] + b_rec[j]
            vr = xw[row, u + j] + hu[row, u + j] + b_rec[u + j]
            z = 1.0 / (1.0 + math.exp(-vz)) if vz >= 0 else math.exp(vz) / (1.0 + math.exp(vz))
            r = 1.0 / (1.0 + math.exp(-vr)) if vr >= 0 else math.exp(vr) / (1.0 + math.exp(vr))
            hc = hu[row, 2 * u + j] + b_rec[2 * u + j]
            c = math.tanh(xw[row, 2 * u + j] + r * hc)
            gates[row, j], gates[row, u + j], gates[row, 2 * u + j] = z, r, c
            hu_c[row, j] = hc
            hp = h_prev[row, j]
            h_out[row, j] = z * hp + (1 - z) * c if k else hp


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
    _gru_step_forward(xw, hu, b_rec, h_prev, keep, h_out, gates, hu_c)


@register("gru_step_backward", "numba", wrap=serialized)
def gru_step_backward(dh, gates, hu_c, h_prev, keep, dxw, dhu, dh_carry):
    _gru_step_backward(dh, gates, hu_c, h_prev, keep, dxw, dhu, dh_carry)
