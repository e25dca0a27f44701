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
