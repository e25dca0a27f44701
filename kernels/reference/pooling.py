"""Max and average pooling on NHWC arrays (NumPy reference).

Average pooling divides by the number of real (unpadded) elements in each window, as Keras/TF do
for ``padding="same"``.
"""
import numpy as np

from ember.kernels.reference.conv import _pad, conv2d_backward_weight, conv_output_size, windows
from ember.kernels.registry import register


def _out_hw(shape, pool, stride, pads):
    ho = conv_output_size(shape[1], pool[0], stride[0], 1, sum(pads[0]))
    wo = conv_output_size(shape[2], pool[1], stride[1], 1, sum(pads[1]))
    return ho, wo


@register("max_pool2d_forward", "numpy")
def max_pool2d_forward(x, pool, stride, pads):
    """Returns (y, argmax) where argmax indexes the window (row-major over KH*KW)."""
    ho, wo = _out_hw(x.shape, pool, stride, pads)
    win = windows(_pad(x, pads, -np.inf), pool[0], pool[1], stride, (1, 1), ho, wo)
    n, _, _, kh, kw, c = win.shape
    flat = win.reshape(n, ho, wo, kh * kw, c)
    arg = flat.argmax(axis=3)
    y = np.take_along_axis(flat, arg[:, :, :, None, :], axis=3)[:, :, :, 0, :]
    return y, arg


@register("max_pool2d_backward", "numpy")
def max_pool2d_backward(dy, arg, x_shape, pool, stride, pads):
    n, h, w, c = x_shape
    (pt, pb), (pl, pr) = pads
    _, ho, wo, _ = dy.shape
    dxp = np.zeros((n, h + pt + pb, w + pl + pr, c), dtype=dy.dtype)
    sh, sw = stride
    for a in range(pool[0]):
        for b in range(pool[1]):
            mask = arg == a * pool[1] + b
            dxp[:, a:a + sh * (ho - 1) + 1:sh, b:b + sw * (wo - 1) + 1:sw, :] += np.where(mask, dy, 0)
    return dxp[:, pt:pt + h, pl:pl + w, :]


def _window_counts(x_shape, pool, stride, pads, dtype):
    ones = np.ones((1, x_shape[1], x_shape[2], 1), dtype=dtype)
    ho, wo = _out_hw(x_shape, pool, stride, pads)
    return windows(_pad(ones, pads), pool[0], pool[1], stride, (1, 1), ho, wo).sum(axis=(3, 4))


@register("avg_pool2d_forward", "numpy")
def avg_pool2d_forward(x, pool, stride, pads):
    ho, wo = _out_hw(x.shape, pool, stride, pads)
    win = windows(_pad(x, pads), pool[0], pool[1], stride, (1, 1), ho, wo)
    return win.sum(axis=(3, 4)) / _window_counts(x.shape, pool, stride, pads, x.dtype)


@register("avg_pool2d_backward", "numpy")
def avg_pool2d_backward(dy, x_shape, pool, stride, pads):
    n, h, w, c = x_shape
    (pt, pb), (pl, pr) = pads
    _, ho, wo, _ = dy.shape
    g = dy / _window_counts(x_shape, pool, stride, pads, dy.dtype)
    dxp = np.zeros((n, h + pt + pb, w + pl + pr, c), dtype=dy.dtype)
    sh, sw = stride
    for a in range(pool[0]):
        for b in range(pool[1]):
            dxp[:, a:a + sh * (ho - 1) + 1:sh, b:b + sw * (wo - 1) + 1:sw, :] += g
    return dxp[:, pt:pt + h, pl:pl + w, :]


@register("conv2d_backward_weight_pooled", "numpy")
def conv2d_backward_weight_pooled(x, dp, arg, y_shape, w_shape, stride, dilation, pads, groups, pool_args):
    """``conv2d_backward_weight`` of ``max_pool2d_backward(dp, arg, y_shape, *pool_args)``: the weight gradient
    of a convolution from the gradient at the output of a max pooling (its taps ``arg``) of its output."""
    dy = max_pool2d_backward(dp, arg, y_shape, *pool_args)
    return conv2d_backward_weight(x, dy, w_shape, stride, dilation, pads, groups)
