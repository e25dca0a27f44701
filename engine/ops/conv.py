"""Convolution and pooling ops on NHWC arrays; the arithmetic is in ``ember.kernels``."""
from ember.engine.backend import backend_name, get_array_module
from ember.engine.tensor import Function
from ember.kernels import get_kernel


def _k(name, arr):
    return get_kernel(name, backend_name(get_array_module(arr)))


def _conv_grads(g, x, w, cols, args, need_x, need_w):
    """(dx, dw) of y = conv(x, w) from y's gradient ``g`` (None where not needed); ``cols``: the forward's
    receptive-field matrix when it kept one."""
    dx = dw = None
    if need_x:
        dx = _k("conv2d_backward_data", g)(g, w, x.shape, *args)
    if need_w:
        if cols is not None:
            dw = _k("conv2d_backward_weight_cols", g)(cols, g, w.shape, args[3])
        else:
            dw = _k("conv2d_backward_weight", g)(x, g, w.shape, *args)
    return dx, dw


class Conv2D(Function):
    """y = conv(x, w): x (N, H, W, C), w (KH, KW, C/groups, F) -> (N, Ho, Wo, F)."""

    def forward(self, x, w, stride=(1, 1), dilation=(1, 1), pads=((0, 0), (0, 0)), groups=1):
        self.x, self.w = x, w
        self.args = stride, dilation, pads, groups
        self.cols = None
        if self.tracked and self.needs_input_grad[1]:
            # keep the receptive-field matrix (when small) so the weight gradient does not rebuild it
            y, self.cols = _k("conv2d_forward_cols", x)(x, w, stride, dilation, pads, groups)
            return y
        return _k("conv2d_forward", x)(x, w, stride, dilation, pads, groups)

    def backward(self, g):
        return _conv_grads(g, self.x, self.w, self.cols, self.args, *self.needs_input_grad[:2])


class Conv2DBiasActivation(Function):
    """y = conv(x, w) + bias, then max(y, 0) when ``activation == "relu"``, as one op: where the kernel
    can (kernels/cpu/blocked.py), the bias and the ReLU are applied as the convolution's sums are stored,
    without a pass over its output; elsewhere the convolution, then ``bias_activation_forward``.

    NOTE: LeNet-5's two layers (float32, 128 images) spent 0.24-0.35 ms and 0.09-0.13 ms of a training step
    in the separate bias + ReLU pass over the 128x28x28x6 and 128x10x10x16 outputs (in-step medians of
    200 steps, load 0.7-1.1 on 2 cores), more than the 0.18 / 0.03 ms the pass takes alone: a fresh
    output array and a cold cache.
    """

    def forward(self, x, w, bias, stride=(1, 1), dilation=(1, 1), pads=((0, 0), (0, 0)), groups=1, activation=None):
        self.x, self.w = x, w
        self.args = stride, dilation, pads, groups
        self.relu = activation == "relu"
        keep = self.tracked and self.needs_input_grad[1]
        y, self.cols = _k("conv2d_bias_activation_forward", x)(x, w, bias, self.relu, stride, dilation, pads,
                                                                groups, keep)
        self.y = y if self.relu else None
        return y

    def backward(self, g):
        gz, dbias = _k("bias_activation_backward", g)(g, self.y, self.relu)
        dx, dw = _conv_grads(gz, self.x, self.w, self.cols, self.args, *self.needs_input_grad[:2])
        return dx, dw, dbias


class Conv2DTranspose(Function):
    """The transpose (adjoint) of ``Conv2D``: x (N, H, W, Cin), w (KH, KW, Cout, Cin).

    ``out_hw`` is the output's spatial size; ``pads`` are the padding the adjoint convolution
    would apply to that output.
    """

    def forward(self, x, w, out_hw=None, stride=(1, 1), dilation=(1, 1), pads=((0, 0), (0, 0))):
        self.x, self.w = x, w
        self.args = stride, dilation, pads, 1
        out_shape = (x.shape[0], out_hw[0], out_hw[1], w.shape[2])
        return _k("conv2d_backward_data", x)(x, w, out_shape, *self.args)

    def backward(self, g):
        dx = dw = None
        if self.needs_input_grad[0]:
            dx = _k("conv2d_forward", g)(g, self.w, *self.args)
        if self.needs_input_grad[1]:
            dw = _k("conv2d_backward_weight", g)(g, self.x, self.w.shape, *self.args)
        return dx, dw


class MaxPool2D(Function):
    def forward(self, x, pool=(2, 2), stride=(2, 2), pads=((0, 0), (0, 0))):
        self.shape, self.args = x.shape, (pool, stride, pads)
        y, self.arg = _k("max_pool2d_forward", x)(x, pool, stride, pads)
        return y

    def backward(self, g):
        return _k("max_pool2d_backward", g)(g, self.arg, self.shape, *self.args)


class BiasReLUMaxPool2D(Function):
    """max_pool2d(relu(x + bias)) recorded against x and bias, for a max pooling that takes the output y of
    a ``BiasActivation`` ReLU (given, not recomputed): the backward pass masks the pooled gradient by
    ``pooled > 0`` (the ReLU's own mask at each window's argmax, where the pooled value is y) and sums
    the bias gradient at the pooled size, then scatters it back, instead of scattering the gradient to
    y's size and masking it there.

    NOTE: LeNet-5's first pooling (128x28x28x6 -> 14x14, float32, one thread, CPU time): the ReLU
    backward at the full size took 0.30 ms; at the pooled size 0.08 ms.
    """

    def forward(self, x, bias, y=None, pool=(2, 2), stride=(2, 2), pads=((0, 0), (0, 0))):
        self.shape, self.args = y.shape, (pool, stride, pads)
        self.pooled, self.arg = _k("max_pool2d_forward", y)(y, pool, stride, pads)
        return self.pooled

    def backward(self, g):
        masked, dbias = _k("bias_activation_backward", g)(g, self.pooled, True)
        if not self.needs_input_grad[0]:
            return None, dbias
        return _k("max_pool2d_backward", g)(masked, self.arg, self.shape, *self.args), dbias


class ConvBiasReLUMaxPool2D(Function):
    """max_pool2d(relu(conv(x, w) + bias)) recorded against x, w and bias, for a max pooling that takes the
    output y of a ``Conv2DBiasActivation`` ReLU (given with that op, ``conv``, whose forward computed it):
    as ``BiasReLUMaxPool2D``, the backward pass masks the pooled gradient by ``pooled > 0`` and sums the
    bias gradient at the pooled size, scatters it back, then takes the convolution's gradients."""

    def forward(self, x, w, bias, y=None, conv=None, pool=(2, 2), stride=(2, 2), pads=((0, 0), (0, 0))):
        self.x, self.w, self.cols, self.conv_args = x, w, conv.cols, conv.args
        self.shape, self.args = y.shape, (pool, stride, pads)
        self.pooled, self.arg = _k("max_pool2d_forward", y)(y, pool, stride, pads)
        return self.pooled

    def backward(self, g):
        masked, dbias = _k("bias_activation_backward", g)(g, self.pooled, True)
        need_x, need_w = self.needs_input_grad[:2]
        if not (need_x or need_w):
            return None, None, dbias
        if not need_x and self.cols is None:
            # the weight gradient alone (a first layer): from the pooled gradient and the pooling's taps, which
            # the direct kernels scatter image by image instead of into a full-size array first
            dw = _k("conv2d_backward_weight_pooled", g)(self.x, masked, self.arg, self.shape, self.w.shape,
                                                         *self.conv_args, self.args)
            return None, dw, dbias
        dz = _k("max_pool2d_backward", g)(masked, self.arg, self.shape, *self.args)
        dx, dw = _conv_grads(dz, self.x, self.w, self.cols, self.conv_args, need_x, need_w)
        return dx, dw, dbias


class AvgPool2D(Function):
    def forward(self, x, pool=(2, 2), stride=(2, 2), pads=((0, 0), (0, 0))):
        self.shape, self.args = x.shape, (pool, stride, pads)
        return _k("avg_pool2d_forward", x)(x, pool, stride, pads)

    def backward(self, g):
        return _k("avg_pool2d_backward", g)(g, self.shape, *self.args)
