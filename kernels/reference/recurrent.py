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


# ---------------------------------------------------------------- one step of a fused sequence
# The fused sequence ops (ember.engine.ops.recurrent) run the time loop and the matrix products; these
# kernels are one step's elementwise part, written into arrays the op allocated once for all steps.
# xw (N, G) is the step's input projection (bias included), hu (N, G) = h_prev @ U, keep (N,) booleans:
# a row whose keep is False (a masked step) keeps its state. Backward: dz (N, G) is the gradient of the
# pre-activations (0 on masked rows) and dh_carry (N, u) the part of dh_prev that bypasses U (the
# whole dh on masked rows): dh_prev = dz @ U.T + dh_carry (GRU: dhu @ U.T + dh_carry).


@register("rnn_step_forward", "numpy")
def rnn_step_forward(xw, hu, h_prev, keep, h_out):
    """SimpleRNN (tanh): h_out = tanh(xw + hu) on kept rows, h_prev on masked rows."""
    h_out[...] = np.where(keep[:, None], np.tanh(xw + hu), h_prev)


@register("rnn_step_backward", "numpy")
def rnn_step_backward(dh, h, keep, dz, dh_carry):
    """dz = dh (1 - h^2) on kept rows (else 0); dh_carry = dh on masked rows (else 0)."""
    k = keep[:, None]
    dz[...] = np.where(k, dh * (1 - h * h), 0)
    dh_carry[...] = np.where(k, 0, dh)


@register("lstm_step_forward", "numpy")
def lstm_step_forward(xw, hu, h_prev, c_prev, keep, h_out, c_out, gates, tanh_c):
    """LSTM (sigmoid gates i, f, o; tanh candidate g; Keras order i, f, g, o): z = xw + hu,
    c' = f c + i g, h' = o tanh(c'); masked rows keep (h_prev, c_prev). ``gates`` (N, 4u) gets the
    activated i, f, g, o and ``tanh_c`` (N, u) tanh(c') on every row."""
    u = c_prev.shape[1]
    z = xw + hu
    gates[:, :2 * u] = _sigmoid(z[:, :2 * u])
    gates[:, 2 * u:3 * u] = np.tanh(z[:, 2 * u:3 * u])
    gates[:, 3 * u:] = _sigmoid(z[:, 3 * u:])
    i, f, g, o = gates[:, :u], gates[:, u:2 * u], gates[:, 2 * u:3 * u], gates[:, 3 * u:]
    c_new = f * c_prev + i * g
    tanh_c[...] = np.tanh(c_new)
    k = keep[:, None]
    h_out[...] = np.where(k, o * tanh_c, h_prev)
    c_out[...] = np.where(k, c_new, c_prev)


@register("lstm_step_backward", "numpy")
def lstm_step_backward(dh, dc, gates, tanh_c, c_prev, keep, dz, dh_carry, dc_prev):
    """Kept rows: dc' = dc + dh o (1 - tanh(c')^2); dz = [dc' g i(1-i), dc' c f(1-f), dc' i (1-g^2),
    dh tanh(c') o(1-o)]; dc_prev = dc' f; dh_carry = 0. Masked rows: dz = 0, dc_prev = dc, dh_carry = dh.
    ``dc_prev`` may be ``dc`` itself."""
    u = c_prev.shape[1]
    i, f, g, o = gates[:, :u], gates[:, u:2 * u], gates[:, 2 * u:3 * u], gates[:, 3 * u:]
    dc_new = dc + dh * o * (1 - tanh_c * tanh_c)
    k = keep[:, None]
    dz[:, :u] = np.where(k, dc_new * g * i * (1 - i), 0)
    dz[:, u:2 * u] = np.where(k, dc_new * c_prev * f * (1 - f), 0)
    dz[:, 2 * u:3 * u] = np.where(k, dc_new * i * (1 - g * g), 0)
    dz[:, 3 * u:] = np.where(k, dh * tanh_c * o * (1 - o), 0)
    dh_carry[...] = np.where(k, 0, dh)
    dc_prev[...] = np.where(k, dc_new * f, dc)


@register("gru_step_forward", "numpy")
def gru_step_forward(xw, hu, b_rec, h_prev, keep, h_out, gates, hu_c):
    """GRU, Keras reset_after layout (gates z, r, candidate): hu = h_prev @ U without its bias b_rec (3u,).
    z = sigmoid(xw_z + hu_z + b_z), r = sigmoid(xw_r + hu_r + b_r), c = tanh(xw_c + r (hu_c + b_c)),
    h' = z h + (1 - z) c; masked rows keep h_prev. ``gates`` (N, 3u) gets z, r, c and ``hu_c`` (N, u)
    hu_c + b_c on every row."""
    u = h_prev.shape[1]
    hb = hu + b_rec
    gates[:, :2 * u] = _sigmoid(xw[:, :2 * u] + hb[:, :2 * u])
    z, r = gates[:, :u], gates[:, u:2 * u]
    hu_c[...] = hb[:, 2 * u:]
    gates[:, 2 * u:] = np.tanh(xw[:, 2 * u:] + r * hu_c)
    c = gates[:, 2 * u:]
    h_out[...] = np.where(keep[:, None], z * h_prev + (1 - z) * c, h_prev)


@register("gru_step_backward", "numpy")
def gru_step_backward(dh, gates, hu_c, h_prev, keep, dxw, dhu, dh_carry):
    """Kept rows: dc = dh (1-z)(1-c^2), dz = dh (h - c) z(1-z), dr = dc hu_c r(1-r); dxw = [dz, dr, dc],
    dhu = [dz, dr, dc r], dh_carry = dh z. Masked rows: dxw = dhu = 0, dh_carry = dh."""
    u = h_prev.shape[1]
    z, r, c = gates[:, :u], gates[:, u:2 * u], gates[:, 2 * u:]
    dc = dh * (1 - z) * (1 - c * c)
    dzz = dh * (h_prev - c) * z * (1 - z)
    dr = dc * hu_c * r * (1 - r)
    k = keep[:, None]
    dxw[:, :u] = np.where(k, dzz, 0)
    dxw[:, u:2 * u] = np.where(k, dr, 0)
    dxw[:, 2 * u:] = np.where(k, dc, 0)
    dhu[:, :2 * u] = dxw[:, :2 * u]
    dhu[:, 2 * u:] = np.where(k, dc * r, 0)
    dh_carry[...] = np.where(k, dh * z, dh)


# ---------------------------------------------------------------- a whole LSTM sequence
# The time loop with its matrix products, time-major, for the op's kernel path (ember.engine.ops.recurrent);
# the Numba kernels (kernels/cpu/sequence.py) split the batch over the threads.


@register("lstm_sequence_forward", "numpy")
def lstm_sequence_forward(xh, weights, keep, c, gates, tanh_c, h_offset):
    """All T steps of an LSTM. ``xh`` (T + 1, N, K) holds the rows [1, x_t, h_{t-1}] of each step (the 1
    only with a bias; h from column ``h_offset`` on, xh[0]'s the initial state); ``weights`` (K, G) =
    [b; W; U], so that a step's pre-activations are xh[t] @ weights. Writes h_t into
    xh[t + 1, :, h_offset:] (xh[T] holds only the final h), the cell state into c[t + 1] (c (T + 1, N, u),
    c[0] the initial one), and what the backward reads into gates[t] (N, G) and tanh_c[t] (N, u), or into
    gates[0] and tanh_c[0] when they hold one step. ``keep`` (T, N) booleans: see lstm_step_forward."""
    steps = xh.shape[0] - 1
    for t in range(steps):
        s = t if gates.shape[0] == steps else 0
        z = xh[t] @ weights
        lstm_step_forward(z, np.zeros_like(z), xh[t, :, h_offset:], c[t], keep[t], xh[t + 1, :, h_offset:], c[t + 1],
                          gates[s], tanh_c[s])


@register("lstm_sequence_backward", "numpy")
def lstm_sequence_backward(xh, weights_t, keep, c, gates, tanh_c, gh, dh_last, dc_last, dz, dx, wg,
                           go_backwards=False):
    """The backward of lstm_sequence_forward over all steps (every step's gates and tanh_c recorded).
    ``weights_t`` (G, D + u) = [W; U].T; ``gh`` (N, T', u), T' >= T: the gradients of the outputs h_t in
    processing order (``gh[:, t]``), or None when only the final h is an output; ``dh_last`` and
    ``dc_last`` (N, u) the gradients of the final h (besides gh) and c. Writes dz (T, N, G), the
    gradients of the pre-activations; dx (N, T, D) = dz_t @ W.T in the input's time order (step t at
    dx[:, T - 1 - t] when ``go_backwards``), unless None; wg (K, G) = xh[:T]^T dz over all steps and
    rows (the gradients of [b; W; U]), unless None."""
    steps, n, g = dz.shape
    d = weights_t.shape[1] - g // 4
    dh, dc = dh_last.copy(), dc_last.copy()
    carry = np.empty_like(dh)
    for t in range(steps - 1, -1, -1):
        if gh is not None:
            dh = dh + gh[:, t]
        lstm_step_backward(dh, dc, gates[t], tanh_c[t], c[t], keep[t], dz[t], carry, dc)
        if dx is not None:
            dx[:, steps - 1 - t if go_backwards else t] = dz[t] @ weights_t[:, :d]
        dh = dz[t] @ weights_t[:, d:] + carry
    if wg is not None:
        wg[...] = xh[:steps].reshape(steps * n, -1).T @ dz.reshape(steps * n, g)


@register("gru_sequence_forward", "numpy")
def gru_sequence_forward(xh, weights, recurrent_kernel, b_rec, keep, gates, hu_c, h_offset):
    """All T steps of a GRU (Keras reset_after layout). ``xh`` as for lstm_sequence_forward (rows [1, x_t,
    h_{t-1}], h from column ``h_offset``); ``weights`` (h_offset, G) = [b; W] (the input bias, if any),
    ``recurrent_kernel`` (u, G), ``b_rec`` (G,) the recurrent bias. Writes h_t into xh[t + 1, :, h_offset:]
    and gates[t], hu_c[t] as gru_step_forward does (or [0] when they hold one step)."""
    steps = xh.shape[0] - 1
    for t in range(steps):
        s = t if gates.shape[0] == steps else 0
        h = xh[t, :, h_offset:]
        gru_step_forward(xh[t, :, :h_offset] @ weights, h @ recurrent_kernel, b_rec, h, keep[t],
                         xh[t + 1, :, h_offset:], gates[s], hu_c[s])


@register("gru_sequence_backward", "numpy")
def gru_sequence_backward(xh, weights_t, recurrent_t, keep, gates, hu_c, gh, dh_last, dxw, dhu, dx, wgx, wgh,
                          go_backwards=False):
    """The backward of gru_sequence_forward over all steps. ``weights_t`` (G, D) = W.T, ``recurrent_t``
    (G, u) = U.T; ``gh`` and ``dh_last`` as for lstm_sequence_backward. Writes dxw and dhu (T, N, G),
    the gradients of each step's input projection and of h @ U (see gru_step_backward); dx (N, T, D) =
    dxw_t @ W.T in the input's time order, unless None; wgx (h_offset, G) = [1, X]^T dxw (the gradients
    of [b; W]) and wgh (u, G) = H_prev^T dhu (of U) over all steps and rows, each unless None."""
    steps, n, g = dxw.shape
    u = recurrent_t.shape[1]
    h0 = xh.shape[2] - u
    dh = dh_last.copy()
    carry = np.empty_like(dh)
    for t in range(steps - 1, -1, -1):
        if gh is not None:
            dh = dh + gh[:, t]
        gru_step_backward(dh, gates[t], hu_c[t], xh[t, :, h0:], keep[t], dxw[t], dhu[t], carry)
        if dx is not None:
            dx[:, steps - 1 - t if go_backwards else t] = dxw[t] @ weights_t
        dh = dhu[t] @ recurrent_t + carry
    rows = xh[:steps].reshape(steps * n, -1)
    if wgx is not None:
        wgx[...] = rows[:, :h0].T @ dxw.reshape(steps * n, g)
    if wgh is not None:
        wgh[...] = rows[:, h0:].T @ dhu.reshape(steps * n, g)
