"""Convolution and pooling ops on NHWC arrays; the arithmetic is in ``ember.kernels``."""
from ember.engine.backend import backend_name, get_array_module
from ember.engine.tensor import Function
from ember.kernels import get_kernel


def _k(name, arr):
    return get_kernel(name, backend_name(get_array_module(arr)))


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
        dx = dw = None
        if self.needs_input_grad[0]:
            dx = _k("conv2d_backward_data", g)(g, self.w, self.x.shape, *self.args)
        if self.needs_input_grad[1]:
            if self.cols is not None:
                dw = _k("conv2d_backward_weight_cols", g)(self.cols, g, self.w.shape, self.args[3])
            else:
                dw = _k("conv2d_backward_weight", g)(self.x, g, self.w.shape, *self.args)
        return dx, dw


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


class AvgPool2D(Function):
    def forward(self, x, pool=(2, 2), stride=(2, 2), pads=((0, 0), (0, 0))):
        self.shape, self.args = x.shape, (pool, stride, pads)
        return _k("avg_pool2d_forward", x)(x, pool, stride, pads)

    def backward(self, g):
        return _k("avg_pool2d_backward", g)(g, self.shape, *self.args)
