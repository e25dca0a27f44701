"""2-D convolution on NHWC arrays by im2col + GEMM (NumPy reference).

Layouts: input ``x`` is (N, H, W, C); kernel ``w`` is (KH, KW, C // groups, F) as in Keras;
output is (N, Ho, Wo, F). ``pads`` is ((top, bottom), (left, right)). Groups are a batched
matrix product over (G, N*Ho*Wo, KH*KW*C/G) x (G, KH*KW*C/G, F/G), which also covers depthwise.
"""
import numpy as np
from numpy.lib.stride_tricks import as_strided

from ember.kernels.registry import register


def conv_output_size(size, k, stride, dilation, pad_total):
    """Output length of a convolution/pooling window sweep along one axis."""
    return (size + pad_total - (k - 1) * dilation - 1) // stride + 1


def _pad(x, pads, value=0.0):
    (pt, pb), (pl, pr) = pads
    if pt == pb == pl == pr == 0:
        return x
    return np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)), constant_values=value)


def windows(xp_, kh, kw, stride, dilation, ho, wo):
    """A strided view (N, Ho, Wo, KH, KW, C) of the padded input's receptive fields."""
    n, _, _, c = xp_.shape
    s0, s1, s2, s3 = xp_.strides
    sh, sw = stride
    dh, dw = dilation
    return as_strided(xp_, shape=(n, ho, wo, kh, kw, c),
                      strides=(s0, s1 * sh, s2 * sw, s1 * dh, s2 * dw, s3), writeable=False)


def _grouped_cols(win, groups):
    """(N, Ho, Wo, KH, KW, C) -> (G, N*Ho*Wo, KH*KW*C/G) contiguous."""
    n, ho, wo, kh, kw, c = win.shape
    cg = c // groups
    if groups == 1:
        return np.ascontiguousarray(win).reshape(1, n * ho * wo, kh * kw * c)
    w6 = win.reshape(n * ho * wo, kh, kw, groups, cg)
    return np.ascontiguousarray(w6.transpose(3, 0, 1, 2, 4)).reshape(groups, n * ho * wo, kh * kw * cg)


def _grouped_kernel(w, groups):
    """(KH, KW, C/G, F) -> (G, KH*KW*C/G, F/G)."""
    kh, kw, cg, f = w.shape
    fg = f // groups
    return w.reshape(kh, kw, cg, groups, fg).transpose(3, 0, 1, 2, 4).reshape(groups, kh * kw * cg, fg)


def _out_shape(x_shape, w_shape, stride, dilation, pads):
    n, h, wd, _ = x_shape
    kh, kw, _, f = w_shape
    ho = conv_output_size(h, kh, stride[0], dilation[0], sum(pads[0]))
    wo = conv_output_size(wd, kw, stride[1], dilation[1], sum(pads[1]))
    return n, ho, wo, f


@register("conv2d_forward", "numpy")
def conv2d_forward(x, w, stride, dilation, pads, groups):
    """y[n, i, j, f] = sum_{a, b, c} x_pad[n, i*sh + a*dh, j*sw + b*dw, g*C/G + c] * w[a, b, c, f]."""
    n, ho, wo, f = _out_shape(x.shape, w.shape, stride, dilation, pads)
    kh, kw = w.shape[:2]
    cols = _grouped_cols(windows(_pad(x, pads), kh, kw, stride, dilation, ho, wo), groups)
    y = np.matmul(cols, _grouped_kernel(w, groups))  # (G, M, F/G)
    if groups == 1:
        return y.reshape(n, ho, wo, f)
    return np.ascontiguousarray(y.transpose(1, 0, 2)).reshape(n, ho, wo, f)


@register("conv2d_forward_cols", "numpy")
def conv2d_forward_cols(x, w, stride, dilation, pads, groups):
    """``conv2d_forward`` that also returns its receptive-field matrix (for ``conv2d_backward_weight_cols``),
    or None in its place when keeping it is not worth the memory."""
    n, ho, wo, f = _out_shape(x.shape, w.shape, stride, dilation, pads)
    kh, kw = w.shape[:2]
    cols = _grouped_cols(windows(_pad(x, pads), kh, kw, stride, dilation, ho, wo), groups)
    y = np.matmul(cols, _grouped_kernel(w, groups))
    y = y.reshape(n, ho, wo, f) if groups == 1 else np.ascontiguousarray(y.transpose(1, 0, 2)).reshape(n, ho, wo, f)
    return y, cols


@register("conv2d_bias_activation_forward", "numpy")
def conv2d_bias_activation_forward(x, w, bias, relu, stride, dilation, pads, groups, keep_cols):
    """(y, cols): y = conv2d_forward + bias, then max(y, 0) when ``relu`` (``bias_activation_forward``); cols
    the receptive fields as ``conv2d_forward_cols`` gives them when ``keep_cols``, else None."""
    from ember.kernels.reference.activation import bias_activation_forward  # noqa: PLC0415 - a sibling spec

    if keep_cols:
        y, cols = conv2d_forward_cols(x, w, stride, dilation, pads, groups)
    else:
        y, cols = conv2d_forward(x, w, stride, dilation, pads, groups), None
    return bias_activation_forward(y, bias, relu), cols


@register("conv2d_backward_weight_cols", "numpy")
def conv2d_backward_weight_cols(cols, dy, w_shape, groups):
    """dL/dw from the matrix ``conv2d_forward_cols`` returned."""
    kh, kw, cg, f = w_shape
    dwg = np.matmul(cols.transpose(0, 2, 1), _grouped_dy(dy, groups))
    return dwg.reshape(groups, kh, kw, cg, f // groups).transpose(1, 2, 3, 0, 4).reshape(w_shape)


def _grouped_dy(dy, groups):
    n, ho, wo, f = dy.shape
    if groups == 1:
        return dy.reshape(1, n * ho * wo, f)
    return np.ascontiguousarray(dy.reshape(n * ho * wo, groups, f // groups).transpose(1, 0, 2))


@register("conv2d_backward_weight", "numpy")
def conv2d_backward_weight(x, dy, w_shape, stride, dilation, pads, groups):
    """dL/dw for ``conv2d_forward``: cols^T @ dy per group."""
    kh, kw, cg, f = w_shape
    _, ho, wo, _ = dy.shape
    cols = _grouped_cols(windows(_pad(x, pads), kh, kw, stride, dilation, ho, wo), groups)
    dwg = np.matmul(cols.transpose(0, 2, 1), _grouped_dy(dy, groups))  # (G, K, F/G)
    return dwg.reshape(groups, kh, kw, cg, f // groups).transpose(1, 2, 3, 0, 4).reshape(w_shape)


@register("conv2d_backward_data", "numpy")
def conv2d_backward_data(dy, w, x_shape, stride, dilation, pads, groups):
    """dL/dx for ``conv2d_forward`` (also the forward of a transposed convolution): col2im."""
    n, h, wd, c = x_shape
    kh, kw, cg, f = w.shape
    _, ho, wo, _ = dy.shape
    dcols = np.matmul(_grouped_dy(dy, groups), _grouped_kernel(w, groups).transpose(0, 2, 1))
    dcols = dcols.reshape(groups, n, ho, wo, kh, kw, cg)
    (pt, pb), (pl, pr) = pads
    dxp = np.zeros((n, h + pt + pb, wd + pl + pr, c), dtype=dy.dtype)
    sh, sw = stride
    dh, dw = dilation
    for a in range(kh):
        for b in range(kw):
            r0, c0 = a * dh, b * dw
            target = dxp[:, r0:r0 + sh * (ho - 1) + 1:sh, c0:c0 + sw * (wo - 1) + 1:sw, :]
            if groups == 1:
                target += dcols[0, :, :, :, a, b, :]
            else:
                target += dcols[:, :, :, :, a, b, :].transpose(1, 2, 3, 0, 4).reshape(n, ho, wo, c)
    return dxp[:, pt:pt + h, pl:pl + wd, :]
