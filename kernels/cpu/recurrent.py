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
