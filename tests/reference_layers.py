"""Plain-loop NumPy references (independent of the im2col kernels) used by the layer tests."""
import numpy as np


def conv2d_nhwc(x, w, stride, pads, dilation=(1, 1), groups=1):
    n, h, wd, c = x.shape
    kh, kw, cg, f = w.shape
    xp = np.pad(x, ((0, 0), pads[0], pads[1], (0, 0)))
    ho = (xp.shape[1] - (kh - 1) * dilation[0] - 1) // stride[0] + 1
    wo = (xp.shape[2] - (kw - 1) * dilation[1] - 1) // stride[1] + 1
    fg = f // groups
    out = np.zeros((n, ho, wo, f))
    for i in range(ho):
        for j in range(wo):
            for a in range(kh):
                for b in range(kw):
                    pix = xp[:, i * stride[0] + a * dilation[0], j * stride[1] + b * dilation[1], :]
                    for g in range(groups):
                        outs, ins = slice(g * fg, (g + 1) * fg), slice(g * cg, (g + 1) * cg)
                        out[:, i, j, outs] += pix[:, ins] @ w[a, b, :, outs]
    return out


def conv2d_transpose_nhwc(x, w, stride, out_hw, pads, dilation=(1, 1)):
    """Scatter definition: every input pixel adds x @ w[a, b].T at its strided position."""
    n, h, wd, _ = x.shape
    kh, kw, f, _ = w.shape
    canvas = np.zeros((n, out_hw[0] + sum(pads[0]) + kh * dilation[0] + stride[0],
                       out_hw[1] + sum(pads[1]) + kw * dilation[1] + stride[1], f))
    for i in range(h):
        for j in range(wd):
            for a in range(kh):
                for b in range(kw):
                    r, c = i * stride[0] + a * dilation[0], j * stride[1] + b * dilation[1]
                    canvas[:, r, c, :] += x[:, i, j, :] @ w[a, b].T
    return canvas[:, pads[0][0]:pads[0][0] + out_hw[0], pads[1][0]:pads[1][0] + out_hw[1], :]


def pool2d_nhwc(x, pool, stride, pads, mode):
    n, h, w, c = x.shape
    ho = (h + sum(pads[0]) - pool[0]) // stride[0] + 1
    wo = (w + sum(pads[1]) - pool[1]) // stride[1] + 1
    out = np.zeros((n, ho, wo, c))
    for i in range(ho):
        for j in range(wo):
            r0, c0 = i * stride[0] - pads[0][0], j * stride[1] - pads[1][0]
            rows = slice(max(r0, 0), min(r0 + pool[0], h))
            cols = slice(max(c0, 0), min(c0 + pool[1], w))
            win = x[:, rows, cols, :]
            out[:, i, j, :] = win.max(axis=(1, 2)) if mode == "max" else win.mean(axis=(1, 2))
    return out


def lrn_nhwc(x, size, alpha, beta, k):
    c = x.shape[-1]
    out = np.empty_like(x)
    for ch in range(c):
        lo, hi = max(0, ch - (size - 1) // 2), min(c, ch + size // 2 + 1)
        s = (x[..., lo:hi] ** 2).sum(axis=-1)
        out[..., ch] = x[..., ch] / (k + alpha / size * s) ** beta
    return out


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def lstm(x, kernel, rec, bias, return_sequences=False):
    n, t, _ = x.shape
    u = rec.shape[0]
    h, c, seq = np.zeros((n, u)), np.zeros((n, u)), []
    for s in range(t):
        z = x[:, s] @ kernel + h @ rec + bias
        i, f, g, o = sigmoid(z[:, :u]), sigmoid(z[:, u:2 * u]), np.tanh(z[:, 2 * u:3 * u]), sigmoid(z[:, 3 * u:])
        c = f * c + i * g
        h = o * np.tanh(c)
        seq.append(h)
    return np.stack(seq, 1) if return_sequences else h


def gru(x, kernel, rec, bias):
    n, t, _ = x.shape
    u = rec.shape[0]
    h = np.zeros((n, u))
    for s in range(t):
        xz = x[:, s] @ kernel + bias[0]
        hz = h @ rec + bias[1]
        z = sigmoid(xz[:, :u] + hz[:, :u])
        r = sigmoid(xz[:, u:2 * u] + hz[:, u:2 * u])
        hh = np.tanh(xz[:, 2 * u:] + r * hz[:, 2 * u:])
        h = z * h + (1 - z) * hh
    return h


def simple_rnn(x, kernel, rec, bias):
    h = np.zeros((x.shape[0], rec.shape[0]))
    for s in range(x.shape[1]):
        h = np.tanh(x[:, s] @ kernel + h @ rec + bias)
    return h
