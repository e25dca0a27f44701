"""Functions on Tensors (the ops' public face) and the Tensor operator methods.

Layers call these; users may too, e.g. inside a ``Lambda`` layer.
"""
import numpy as np

from ember.engine.ops import activation as _act
from ember.engine.ops import conv as _conv
from ember.engine.ops import elementwise as _ew
from ember.engine.ops import linalg as _la
from ember.engine.ops import reduction as _red
from ember.engine.ops import shape as _shape
from ember.engine.tensor import Tensor, as_tensor
from ember.kernels.reference.conv import conv_output_size  # noqa: F401 - re-exported for layers


def add(a, b):
    return _ew.Add.apply(a, b)


def sub(a, b):
    return _ew.Sub.apply(a, b)


def mul(a, b):
    return _ew.Mul.apply(a, b)


def div(a, b):
    return _ew.Div.apply(a, b)


def neg(a):
    return _ew.Neg.apply(a)


def power(a, exponent):
    return _ew.Pow.apply(a, exponent=exponent)


def exp(a):
    return _ew.Exp.apply(a)


def log(a):
    return _ew.Log.apply(a)


def sqrt(a):
    return _ew.Sqrt.apply(a)


def abs(a):  # noqa: A001 - mirrors numpy.abs
    return _ew.Abs.apply(a)


def maximum(a, b):
    return _ew.Maximum.apply(a, b)


def minimum(a, b):
    return _ew.Minimum.apply(a, b)


def clip(a, low=None, high=None):
    return _ew.Clip.apply(a, low=low, high=high)


def where(condition, a, b):
    cond = condition.data if isinstance(condition, Tensor) else condition
    return _ew.Where.apply(a, b, condition=cond)


def matmul(a, b):
    return _la.MatMul.apply(a, b)


def sum(a, axis=None, keepdims=False):  # noqa: A001 - mirrors numpy.sum
    return _red.Sum.apply(a, axis=axis, keepdims=keepdims)


def mean(a, axis=None, keepdims=False):
    return _red.Mean.apply(a, axis=axis, keepdims=keepdims)


def max(a, axis=None, keepdims=False):  # noqa: A001 - mirrors numpy.max
    return _red.Max.apply(a, axis=axis, keepdims=keepdims)


def min(a, axis=None, keepdims=False):  # noqa: A001 - mirrors numpy.min
    return _red.Min.apply(a, axis=axis, keepdims=keepdims)


def var(a, axis=None, keepdims=False):
    """Biased variance (divides by N), as batch/layer normalisation use."""
    centered = a - mean(a, axis=axis, keepdims=True)
    return mean(centered * centered, axis=axis, keepdims=keepdims)


def reshape(a, shape):
    return _shape.Reshape.apply(a, shape=tuple(shape))


def transpose(a, axes=None):
    return _shape.Transpose.apply(a, axes=axes)


def getitem(a, index):
    if isinstance(index, Tensor):
        index = index.data
    elif isinstance(index, tuple):
        index = tuple(i.data if isinstance(i, Tensor) else i for i in index)
    return _shape.GetItem.apply(a, index=index)


def concatenate(tensors, axis=0):
    return _shape.Concatenate.apply(*tensors, axis=axis)


def stack(tensors, axis=0):
    return _shape.Stack.apply(*tensors, axis=axis)


def pad(a, pad_width, value=0.0):
    return _shape.Pad.apply(a, pad_width=tuple(tuple(p) for p in pad_width), value=value)


def broadcast_to(a, shape):
    return _shape.BroadcastTo.apply(a, shape=tuple(shape))


# ---- activations ----
def relu(x, max_value=None, negative_slope=0.0):
    return _act.ReLU.apply(x, max_value=max_value, negative_slope=negative_slope)


def bias_add(x, bias, activation=None):
    """x + bias (bias 1-D, along the last axis), then ``activation`` (None or "relu") in the same op."""
    if activation not in (None, "relu"):
        raise ValueError(f"bias_add: activation must be None or 'relu', got {activation!r}")
    return _act.BiasActivation.apply(x, bias, activation=activation)


def add_relu(a, b):
    """max(a + b, 0) as one op; a and b must have the same shape."""
    if tuple(a.shape) != tuple(b.shape):
        raise ValueError(f"add_relu: the inputs must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    return _act.AddReLU.apply(a, b)


def relu6(x):
    return relu(x, max_value=6.0)


def leaky_relu(x, negative_slope=0.2):
    """Leaky ReLU; the default slope 0.2 is Keras' (``negative_slope``)."""
    return relu(x, negative_slope=negative_slope)


def elu(x, alpha=1.0):
    return _act.ELU.apply(x, alpha=alpha)


def gelu(x):
    return _act.GELU.apply(x)


def sigmoid(x):
    return _act.Sigmoid.apply(x)


def tanh(x):
    return _act.Tanh.apply(x)


def softplus(x):
    return _act.Softplus.apply(x)


def softmax(x, axis=-1):
    return _act.Softmax.apply(x, axis=axis)


def log_softmax(x, axis=-1):
    return _act.LogSoftmax.apply(x, axis=axis)


def linear(x):
    return x


# ---- convolution and pooling (NHWC) ----
def conv2d(x, w, stride=(1, 1), dilation=(1, 1), pads=((0, 0), (0, 0)), groups=1):
    return _conv.Conv2D.apply(x, w, stride=tuple(stride), dilation=tuple(dilation),
                              pads=tuple(map(tuple, pads)), groups=groups)


def conv2d_transpose(x, w, out_hw, stride=(1, 1), dilation=(1, 1), pads=((0, 0), (0, 0))):
    return _conv.Conv2DTranspose.apply(x, w, out_hw=tuple(out_hw), stride=tuple(stride),
                                       dilation=tuple(dilation), pads=tuple(map(tuple, pads)))


def max_pool2d(x, pool, stride, pads=((0, 0), (0, 0))):
    return _conv.MaxPool2D.apply(x, pool=tuple(pool), stride=tuple(stride), pads=tuple(map(tuple, pads)))


def avg_pool2d(x, pool, stride, pads=((0, 0), (0, 0))):
    return _conv.AvgPool2D.apply(x, pool=tuple(pool), stride=tuple(stride), pads=tuple(map(tuple, pads)))


def same_padding(size, k, stride, dilation=1):
    """TF/Keras 'same' padding (before, after) for one axis: output = ceil(size / stride)."""
    eff = (k - 1) * dilation + 1
    out = -(-size // stride)
    total = np.maximum((out - 1) * stride + eff - size, 0)
    return int(total // 2), int(total - total // 2)


# ---- Tensor operator methods ----
def _varargs(args):
    """``t.reshape(2, 3)`` and ``t.reshape((2, 3))`` mean the same (NumPy's convention)."""
    return tuple(args[0]) if len(args) == 1 and isinstance(args[0], (tuple, list)) else tuple(args)


def _bind():
    T = Tensor
    T.__add__ = lambda a, b: add(a, as_tensor(b, like=a))
    T.__radd__ = lambda a, b: add(as_tensor(b, like=a), a)
    T.__sub__ = lambda a, b: sub(a, as_tensor(b, like=a))
    T.__rsub__ = lambda a, b: sub(as_tensor(b, like=a), a)
    T.__mul__ = lambda a, b: mul(a, as_tensor(b, like=a))
    T.__rmul__ = lambda a, b: mul(as_tensor(b, like=a), a)
    T.__truediv__ = lambda a, b: div(a, as_tensor(b, like=a))
    T.__rtruediv__ = lambda a, b: div(as_tensor(b, like=a), a)
    T.__neg__ = neg
    T.__pow__ = lambda a, p: power(a, p)
    T.__matmul__ = lambda a, b: matmul(a, as_tensor(b))
    T.__rmatmul__ = lambda a, b: matmul(as_tensor(b), a)
    T.__getitem__ = getitem
    T.sum = sum
    T.mean = mean
    T.max = max
    T.min = min
    T.var = var
    T.exp = exp
    T.log = log
    T.sqrt = sqrt
    T.abs = abs
    T.relu = relu
    T.sigmoid = sigmoid
    T.tanh = tanh
    T.softmax = softmax
    T.log_softmax = log_softmax
    T.matmul = matmul
    T.reshape = lambda a, *shape: reshape(a, _varargs(shape))
    T.transpose = lambda a, *axes: transpose(a, _varargs(axes) or None)
    T.flatten = lambda a: reshape(a, (a.shape[0], -1)) if a.ndim > 1 else a
    T.clip = clip


_bind()


def cast(a, dtype):
    """Differentiable dtype conversion."""
    if a.dtype == np.dtype(dtype):
        return a
    return _ew.Cast.apply(a, dtype=np.dtype(dtype))
