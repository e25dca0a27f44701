"""The LSTM cell's elementwise part, fused (NumPy reference); the matrix products stay in BLAS.

z (N, 4u) are the pre-activations of the gates i, f, g (candidate), o (Keras order); c (N, u) the
previous cell state. Forward: i, f, o = sigmoid; g = tanh; c' = f c + i g; h = o tanh(c').
"""
import numpy as np

from ember.kernels.registry import register


def _sigmoid(v):
    e = np.exp(-np.abs(v))
    return np.where(v >= 0, 1 / (1 + e), e / (1 + e))


@register("lstm_cell_forward", "numpy")
def lstm_cell_forward(z, c):
    """Returns (hc (N, 2u) = [h, c'], gates (N, 4u) = activated i, f, g, o, tanh(c') (N, u))."""
    u = c.shape[1]
    gates = np.empty_like(z)
    gates[:, :2 * u] = _sigmoid(z[:, :2 * u])
    gates[:, 2 * u:3 * u] = np.tanh(z[:, 2 * u:3 * u])
    gates[:, 3 * u:] = _sigmoid(z[:, 3 * u:])
    i, f, g, o = gates[:, :u], gates[:, u:2 * u], gates[:, 2 * u:3 * u], gates[:, 3 * u:]
    c_new = f * c + i * g
    tanh_c = np.tanh(c_new)
    return np.concatenate([o * tanh_c, c_new], axis=1).astype(z.dtype), gates, tanh_c


@register("lstm_cell_backward", "numpy")
def lstm_cell_backward(dhc, gates, tanh_c, c):
    """From d[h, c'] to (dz, dc): dc' = dc'_in + dh o (1 - tanh(c')^2); di = dc' g, df = dc' c,
    dg = dc' i, do = dh tanh(c'), each times its activation's derivative; dc = dc' f."""
    u = c.shape[1]
    dh, dc_in = dhc[:, :u], dhc[:, u:]
    i, f, g, o = gates[:, :u], gates[:, u:2 * u], gates[:, 2 * u:3 * u], gates[:, 3 * u:]
    dc_new = dc_in + dh * o * (1 - tanh_c * tanh_c)
    dz = np.concatenate([dc_new * g * i * (1 - i), dc_new * c * f * (1 - f), dc_new * i * (1 - g * g),
                         dh * tanh_c * o * (1 - o)], axis=1)
    return dz.astype(dhc.dtype), (dc_new * f).astype(dhc.dtype)


@register("gru_cell_forward", "numpy")
def gru_cell_forward(xw, hu, h):
    """GRU step (Keras reset_after layout), gates z, r, candidate: xw = x W + b (N, 3u), hu = h U + b' (N, 3u).
    z = sigmoid(xw_z + hu_z), r = sigmoid(xw_r + hu_r), c = tanh(xw_c + r hu_c), h' = z h + (1 - z) c.
    Returns (h', gates (N, 3u) = z, r, c)."""
    u = h.shape[1]
    gates = np.empty_like(xw)
    gates[:, :2 * u] = _sigmoid(xw[:, :2 * u] + hu[:, :2 * u])
    z, r = gates[:, :u], gates[:, u:2 * u]
    gates[:, 2 * u:] = np.tanh(xw[:, 2 * u:] + r * hu[:, 2 * u:])
    c = gates[:, 2 * u:]
    return (z * h + (1 - z) * c).astype(xw.dtype), gates


@register("gru_cell_backward", "numpy")
def gru_cell_backward(dh_new, gates, hu, h):
    """From dh' to (dxw, dhu, dh): dc = dh'(1 - z)(1 - c^2); dz = dh'(h - c) z(1 - z);
    dr = dc hu_c r(1 - r); dxw = [dz, dr, dc], dhu = [dz, dr, dc r], dh = dh' z."""
    u = h.shape[1]
    z, r, c = gates[:, :u], gates[:, u:2 * u], gates[:, 2 * u:]
    dc = dh_new * (1 - z) * (1 - c * c)
    dz = dh_new * (h - c) * z * (1 - z)
    dr = dc * hu[:, 2 * u:] * r * (1 - r)
    dxw = np.concatenate([dz, dr, dc], axis=1).astype(dh_new.dtype)
    dhu = np.concatenate([dz, dr, dc * r], axis=1).astype(dh_new.dtype)
    return dxw, dhu, (dh_new * z).astype(dh_new.dtype)
