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
    """Element-wise ``a + b`` with NumPy broadcasting (also ``a + b`` on Tensors).

    Args:
        a: a Tensor (or array-like).
        b: a Tensor (or array-like), broadcast against ``a``.

    Example:
        >>> from ember.engine import Tensor, functional as F
        >>> F.add(Tensor([1.0, 2.0]), Tensor([10.0, 20.0]))
        Tensor([11. 22.], dtype=float32)
    """
    return _ew.Add.apply(a, b)


def sub(a, b):
    """Element-wise ``a - b`` with NumPy broadcasting (also ``a - b`` on Tensors).

    Args:
        a: a Tensor (or array-like).
        b: a Tensor (or array-like), broadcast against ``a``.

    Example:
        >>> from ember.engine import Tensor, functional as F
        >>> F.sub(Tensor([5.0, 7.0]), Tensor([1.0, 2.0]))
        Tensor([4. 5.], dtype=float32)
    """
    return _ew.Sub.apply(a, b)


def mul(a, b):
    """Element-wise ``a * b`` with NumPy broadcasting (also ``a * b`` on Tensors).

    Args:
        a: a Tensor (or array-like).
        b: a Tensor (or array-like), broadcast against ``a``.

    Example:
        >>> from ember.engine import Tensor, functional as F
        >>> F.mul(Tensor([[1.0, 2.0], [3.0, 4.0]]), Tensor([10.0, 100.0]))
        Tensor([[ 10. 200.]
         [ 30. 400.]], dtype=float32)
    """
    return _ew.Mul.apply(a, b)


def div(a, b):
    """Element-wise ``a / b`` with NumPy broadcasting (also ``a / b`` on Tensors).

    Args:
        a: a Tensor (or array-like).
        b: a Tensor (or array-like), broadcast against ``a``.

    Example:
        >>> from ember.engine import Tensor, functional as F
        >>> F.div(Tensor([1.0, 3.0]), Tensor([2.0, 4.0]))
        Tensor([0.5  0.75], dtype=float32)
    """
    return _ew.Div.apply(a, b)


def neg(a):
    """Element-wise ``-a`` (also ``-a`` on Tensors).

    Args:
        a: a Tensor.

    Example:
        >>> from ember.engine import Tensor, functional as F
        >>> F.neg(Tensor([1.0, -2.0]))
        Tensor([-1.  2.], dtype=float32)
    """
    return _ew.Neg.apply(a)


def power(a, exponent):
    """Element-wise ``a ** exponent`` for a constant exponent (also ``a ** p`` on Tensors).

    Args:
        a: a Tensor.
        exponent: a Python number (not differentiated).

    Example:
        >>> from ember.engine import Tensor, functional as F
        >>> x = Tensor([2.0, 3.0], requires_grad=True)
        >>> y = F.power(x, 2)
        >>> y.sum().backward()
        >>> y.numpy().tolist(), x.grad.tolist()
        ([4.0, 9.0], [4.0, 6.0])
    """
    return _ew.Pow.apply(a, exponent=exponent)


def exp(a):
    """Element-wise natural exponential.

    Args:
        a: a Tensor.

    Example:
        >>> from ember.engine import Tensor, functional as F
        >>> F.exp(Tensor([0.0, 1.0]))
        Tensor([1.     2.7183], dtype=float32)
    """
    return _ew.Exp.apply(a)


def log(a):
    """Element-wise natural logarithm (``-inf`` at 0, NaN below).

    Args:
        a: a Tensor.

    Example:
        >>> from ember.engine import Tensor, functional as F
        >>> F.log(Tensor([1.0, 100.0]))
        Tensor([0.     4.6052], dtype=float32)
    """
    return _ew.Log.apply(a)


def sqrt(a):
    """Element-wise square root.

    Args:
        a: a Tensor.

    Example:
        >>> from ember.engine import Tensor, functional as F
        >>> F.sqrt(Tensor([4.0, 9.0]))
        Tensor([2. 3.], dtype=float32)
    """
    return _ew.Sqrt.apply(a)


def abs(a):  # noqa: A001 - mirrors numpy.abs
    """Element-wise absolute value (its gradient at 0 is 0).

    Args:
        a: a Tensor.

    Example:
        >>> from ember.engine import Tensor, functional as F
        >>> F.abs(Tensor([-1.5, 2.0]))
        Tensor([1.5 2. ], dtype=float32)
    """
    return _ew.Abs.apply(a)


def maximum(a, b):
    """Element-wise maximum of two tensors, with broadcasting.

    Args:
        a: a Tensor (or array-like).
        b: a Tensor (or array-like), broadcast against ``a``.

    Example:
        >>> from ember.engine import Tensor, functional as F
        >>> F.maximum(Tensor([1.0, 5.0]), Tensor([3.0, 2.0]))
        Tensor([3. 5.], dtype=float32)
    """
    return _ew.Maximum.apply(a, b)


def minimum(a, b):
    """Element-wise minimum of two tensors, with broadcasting.

    Args:
        a: a Tensor (or array-like).
        b: a Tensor (or array-like), broadcast against ``a``.

    Example:
        >>> from ember.engine import Tensor, functional as F
        >>> F.minimum(Tensor([1.0, 5.0]), Tensor([3.0, 2.0]))
        Tensor([1. 2.], dtype=float32)
    """
    return _ew.Minimum.apply(a, b)


def clip(a, low=None, high=None):
    """Limit the values of ``a`` to ``[low, high]``; the gradient is 0 where a value was clipped.

    Args:
        a: a Tensor.
        low: the lower bound, or None for none.
        high: the upper bound, or None for none.

    Example:
        >>> from ember.engine import Tensor, functional as F
        >>> F.clip(Tensor([-2.0, 0.5, 3.0]), low=0.0, high=1.0)
        Tensor([0.  0.5 1. ], dtype=float32)
    """
    return _ew.Clip.apply(a, low=low, high=high)


def where(condition, a, b):
    """Element-wise choice: ``a`` where ``condition`` is true, else ``b`` (``numpy.where``).

    Args:
        condition: a boolean array or Tensor (not differentiated).
        a: the values taken where true.
        b: the values taken where false.

    Example:
        >>> from ember.engine import Tensor, functional as F
        >>> import numpy as np
        >>> F.where(np.array([True, False]), Tensor([1.0, 2.0]), Tensor([-1.0, -2.0]))
        Tensor([ 1. -2.], dtype=float32)
    """
    cond = condition.data if isinstance(condition, Tensor) else condition
    return _ew.Where.apply(a, b, condition=cond)


def matmul(a, b):
    """Matrix product ``a @ b`` (batched over leading axes, as ``numpy.matmul``).

    Args:
        a: a Tensor of shape ``(..., n, k)``.
        b: a Tensor of shape ``(..., k, m)``.

    Example:
        >>> from ember.engine import Tensor, functional as F
        >>> F.matmul(Tensor([[1.0, 2.0]]), Tensor([[3.0], [4.0]]))
        Tensor([[11.]], dtype=float32)
    """
    return _la.MatMul.apply(a, b)


def sum(a, axis=None, keepdims=False):  # noqa: A001 - mirrors numpy.sum
    """Sum over ``axis`` (all axes by default).

    Args:
        a: a Tensor.
        axis: an int, a tuple of ints, or None for all axes.
        keepdims: keep the reduced axes with size 1.

    Example:
        >>> from ember.engine import Tensor, functional as F
        >>> x = Tensor([[1.0, 2.0], [3.0, 4.0]])
        >>> F.sum(x), F.sum(x, axis=0)
        (Tensor(10., dtype=float32), Tensor([4. 6.], dtype=float32))
    """
    return _red.Sum.apply(a, axis=axis, keepdims=keepdims)


def mean(a, axis=None, keepdims=False):
    """Mean over ``axis`` (all axes by default).

    Args:
        a: a Tensor.
        axis: an int, a tuple of ints, or None for all axes.
        keepdims: keep the reduced axes with size 1.

    Example:
        >>> from ember.engine import Tensor, functional as F
        >>> F.mean(Tensor([[1.0, 2.0], [3.0, 4.0]]), axis=1, keepdims=True)
        Tensor([[1.5]
         [3.5]], dtype=float32)
    """
    return _red.Mean.apply(a, axis=axis, keepdims=keepdims)


def max(a, axis=None, keepdims=False):  # noqa: A001 - mirrors numpy.max
    """Maximum over ``axis`` (all axes by default); the gradient goes to the maximal entries.

    Args:
        a: a Tensor.
        axis: an int, a tuple of ints, or None for all axes.
        keepdims: keep the reduced axes with size 1.

    Example:
        >>> from ember.engine import Tensor, functional as F
        >>> F.max(Tensor([[1.0, 5.0], [3.0, 4.0]]), axis=0)
        Tensor([3. 5.], dtype=float32)
    """
    return _red.Max.apply(a, axis=axis, keepdims=keepdims)


def min(a, axis=None, keepdims=False):  # noqa: A001 - mirrors numpy.min
    """Minimum over ``axis`` (all axes by default); the gradient goes to the minimal entries.

    Args:
        a: a Tensor.
        axis: an int, a tuple of ints, or None for all axes.
        keepdims: keep the reduced axes with size 1.

    Example:
        >>> from ember.engine import Tensor, functional as F
        >>> F.min(Tensor([[1.0, 5.0], [3.0, 4.0]]), axis=1)
        Tensor([1. 3.], dtype=float32)
    """
    return _red.Min.apply(a, axis=axis, keepdims=keepdims)


def var(a, axis=None, keepdims=False):
    """Biased variance (divides by N) over ``axis``, as batch/layer normalisation use.

    Args:
        a: a Tensor.
        axis: an int, a tuple of ints, or None for all axes.
        keepdims: keep the reduced axes with size 1.

    Example:
        >>> from ember.engine import Tensor, functional as F
        >>> F.var(Tensor([1.0, 2.0, 3.0, 4.0]))
        Tensor(1.25, dtype=float32)
    """
    centered = a - mean(a, axis=axis, keepdims=True)
    return mean(centered * centered, axis=axis, keepdims=keepdims)


def reshape(a, shape):
    """The same values in a new shape (one dimension may be -1).

    Args:
        a: a Tensor.
        shape: the new shape, a tuple of ints.

    Example:
        >>> from ember.engine import Tensor, functional as F
        >>> F.reshape(Tensor([1.0, 2.0, 3.0, 4.0]), (2, -1)).shape
        (2, 2)
    """
    return _shape.Reshape.apply(a, shape=tuple(shape))


def transpose(a, axes=None):
    """Permute the axes (reverse them when ``axes`` is None), as ``numpy.transpose``.

    Args:
        a: a Tensor.
        axes: the new order of the axes, or None.

    Example:
        >>> from ember.engine import Tensor, functional as F
        >>> F.transpose(Tensor([[1.0, 2.0, 3.0]])).shape
        (3, 1)
        >>> F.transpose(Tensor([[[1.0, 2.0]]]), (2, 0, 1)).shape
        (2, 1, 1)
    """
    return _shape.Transpose.apply(a, axes=axes)


def getitem(a, index):
    """NumPy indexing ``a[index]`` (also ``a[...]`` on Tensors); the gradient scatters back.

    Args:
        a: a Tensor.
        index: an int, slice, array, Tensor of indices, or a tuple of them.

    Example:
        >>> from ember.engine import Tensor, functional as F
        >>> x = Tensor([[1.0, 2.0], [3.0, 4.0]])
        >>> F.getitem(x, (slice(None), 1))
        Tensor([2. 4.], dtype=float32)
    """
    if isinstance(index, Tensor):
        index = index.data
    elif isinstance(index, tuple):
        index = tuple(i.data if isinstance(i, Tensor) else i for i in index)
    return _shape.GetItem.apply(a, index=index)


def concatenate(tensors, axis=0):
    """Join tensors along an existing axis.

    Args:
        tensors: a sequence of Tensors with equal shapes except along ``axis``.
        axis: the axis to join on.

    Example:
        >>> from ember.engine import Tensor, functional as F
        >>> F.concatenate([Tensor([[1.0]]), Tensor([[2.0, 3.0]])], axis=1)
        Tensor([[1. 2. 3.]], dtype=float32)
    """
    return _shape.Concatenate.apply(*tensors, axis=axis)


def stack(tensors, axis=0):
    """Join tensors of one shape along a new axis.

    Args:
        tensors: a sequence of Tensors of the same shape.
        axis: the position of the new axis.

    Example:
        >>> from ember.engine import Tensor, functional as F
        >>> F.stack([Tensor([1.0, 2.0]), Tensor([3.0, 4.0])], axis=1)
        Tensor([[1. 3.]
         [2. 4.]], dtype=float32)
    """
    return _shape.Stack.apply(*tensors, axis=axis)


def pad(a, pad_width, value=0.0):
    """Pad with a constant, as ``numpy.pad(mode='constant')``.

    Args:
        a: a Tensor.
        pad_width: one ``(before, after)`` pair per axis.
        value: the fill value.

    Example:
        >>> from ember.engine import Tensor, functional as F
        >>> F.pad(Tensor([1.0, 2.0]), [(1, 2)], value=-1.0)
        Tensor([-1.  1.  2. -1. -1.], dtype=float32)
    """
    return _shape.Pad.apply(a, pad_width=tuple(tuple(p) for p in pad_width), value=value)


def broadcast_to(a, shape):
    """Broadcast to a larger shape (NumPy rules); the gradient sums over the copies.

    Args:
        a: a Tensor.
        shape: the target shape.

    Example:
        >>> from ember.engine import Tensor, functional as F
        >>> F.broadcast_to(Tensor([1.0, 2.0]), (2, 2))
        Tensor([[1. 2.]
         [1. 2.]], dtype=float32)
    """
    return _shape.BroadcastTo.apply(a, shape=tuple(shape))


# ---- activations ----
def relu(x, max_value=None, negative_slope=0.0):
    """Rectified linear unit ``max(x, 0)``, optionally capped and/or leaky (Keras ``relu``).

    Args:
        x: a Tensor.
        max_value: cap the output at this value, or None.
        negative_slope: the slope for negative inputs (0 is plain ReLU).

    Example:
        >>> from ember.engine import Tensor, functional as F
        >>> x = Tensor([-2.0, 1.0, 8.0])
        >>> F.relu(x, max_value=6.0).numpy().tolist() == [0.0, 1.0, 6.0]
        True
        >>> F.relu(x, negative_slope=0.5)
        Tensor([-1.  1.  8.], dtype=float32)
    """
    return _act.ReLU.apply(x, max_value=max_value, negative_slope=negative_slope)


def bias_add(x, bias, activation=None):
    """``x + bias`` (bias 1-D, along the last axis), then ``activation`` (None or "relu") in the same op.

    Args:
        x: a Tensor of shape ``(..., n)``.
        bias: a Tensor of shape ``(n,)``.
        activation: None or ``"relu"``.

    Example:
        >>> from ember.engine import Tensor, functional as F
        >>> F.bias_add(Tensor([[1.0, -3.0]]), Tensor([0.5, 1.0]), activation="relu").numpy().tolist() == [[1.5, 0.0]]
        True
    """
    if activation not in (None, "relu"):
        raise ValueError(f"bias_add: activation must be None or 'relu', got {activation!r}")
    return _act.BiasActivation.apply(x, bias, activation=activation)


def add_relu(a, b, overwrite=False):
    """``max(a + b, 0)`` as one op (a residual connection and its activation).

    Args:
        a: a Tensor.
        b: a Tensor of the same shape as ``a``.
        overwrite: write the result over ``a``'s array (saves one array of memory). Only when nothing
            reads ``a`` afterwards and the op that made ``a`` did not keep it for its backward pass.

    Example:
        >>> from ember.engine import Tensor, functional as F
        >>> F.add_relu(Tensor([1.0, -3.0]), Tensor([1.0, 1.0])).numpy().tolist() == [2.0, 0.0]
        True
    """
    if tuple(a.shape) != tuple(b.shape):
        raise ValueError(f"add_relu: the inputs must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    return _act.AddReLU.apply(a, b, overwrite=overwrite) if overwrite else _act.AddReLU.apply(a, b)


def relu6(x):
    """ReLU capped at 6: ``min(max(x, 0), 6)`` (MobileNet).

    Args:
        x: a Tensor.

    Example:
        >>> from ember.engine import Tensor, functional as F
        >>> F.relu6(Tensor([-1.0, 3.0, 7.0])).numpy().tolist() == [0.0, 3.0, 6.0]
        True
    """
    return relu(x, max_value=6.0)


def leaky_relu(x, negative_slope=0.2):
    """Leaky ReLU: ``x`` for positive inputs, ``negative_slope * x`` otherwise; the default 0.2 is Keras'.

    Args:
        x: a Tensor.
        negative_slope: the slope for negative inputs.

    Example:
        >>> from ember.engine import Tensor, functional as F
        >>> F.leaky_relu(Tensor([-1.0, 2.0]))
        Tensor([-0.2  2. ], dtype=float32)
    """
    return relu(x, negative_slope=negative_slope)


def elu(x, alpha=1.0):
    """Exponential linear unit: ``x`` for positive inputs, ``alpha * (exp(x) - 1)`` otherwise.

    Args:
        x: a Tensor.
        alpha: the scale of the negative part.

    Example:
        >>> from ember.engine import Tensor, functional as F
        >>> F.elu(Tensor([-1.0, 2.0]))
        Tensor([-0.6321  2.    ], dtype=float32)
    """
    return _act.ELU.apply(x, alpha=alpha)


def gelu(x):
    """Gaussian error linear unit ``x * Phi(x)``.

    Args:
        x: a Tensor.

    Example:
        >>> from ember.engine import Tensor, functional as F
        >>> F.gelu(Tensor([-1.0, 0.0, 1.0]))
        Tensor([-0.1587  0.      0.8413], dtype=float32)
    """
    return _act.GELU.apply(x)


def sigmoid(x):
    """Logistic sigmoid ``1 / (1 + exp(-x))``.

    Args:
        x: a Tensor.

    Example:
        >>> from ember.engine import Tensor, functional as F
        >>> F.sigmoid(Tensor([0.0, 2.0]))
        Tensor([0.5    0.8808], dtype=float32)
    """
    return _act.Sigmoid.apply(x)


def tanh(x):
    """Hyperbolic tangent.

    Args:
        x: a Tensor.

    Example:
        >>> from ember.engine import Tensor, functional as F
        >>> F.tanh(Tensor([0.0, 1.0]))
        Tensor([0.     0.7616], dtype=float32)
    """
    return _act.Tanh.apply(x)


def softplus(x):
    """Softplus ``log(1 + exp(x))``, computed without overflow.

    Args:
        x: a Tensor.

    Example:
        >>> from ember.engine import Tensor, functional as F
        >>> F.softplus(Tensor([0.0, 100.0]))
        Tensor([  0.6931 100.    ], dtype=float32)
    """
    return _act.Softplus.apply(x)


def softmax(x, axis=-1):
    """Softmax along ``axis``: non-negative values that sum to 1.

    Args:
        x: a Tensor.
        axis: the axis to normalise over.

    Example:
        >>> from ember.engine import Tensor, functional as F
        >>> F.softmax(Tensor([[1.0, 1.0], [0.0, 2.0]]))
        Tensor([[0.5    0.5   ]
         [0.1192 0.8808]], dtype=float32)
    """
    return _act.Softmax.apply(x, axis=axis)


def log_softmax(x, axis=-1):
    """``log(softmax(x))`` along ``axis``, computed stably.

    Args:
        x: a Tensor.
        axis: the axis to normalise over.

    Example:
        >>> from ember.engine import Tensor, functional as F
        >>> F.log_softmax(Tensor([0.0, 0.0]))
        Tensor([-0.6931 -0.6931], dtype=float32)
    """
    return _act.LogSoftmax.apply(x, axis=axis)


def linear(x):
    """The identity activation (Keras ``linear``): returns ``x`` itself.

    Args:
        x: a Tensor.

    Example:
        >>> from ember.engine import Tensor, functional as F
        >>> x = Tensor([1.0])
        >>> F.linear(x) is x
        True
    """
    return x


# ---- convolution and pooling (NHWC) ----
def conv2d(x, w, stride=(1, 1), dilation=(1, 1), pads=((0, 0), (0, 0)), groups=1, bias=None, activation=None):
    """2-D convolution (cross-correlation) in NHWC layout, with weights ``(kh, kw, in/groups, out)``;
    with ``bias``, ``conv + bias`` and then ``activation`` (None or "relu") in the same op.

    Args:
        x: input of shape ``(batch, height, width, in_channels)``.
        w: kernel of shape ``(kh, kw, in_channels // groups, out_channels)``.
        stride: ``(sh, sw)``.
        dilation: ``(dh, dw)``.
        pads: ``((top, bottom), (left, right))`` zero padding.
        groups: channel groups (``in_channels`` for depthwise).
        bias: None, or a Tensor of shape ``(out_channels,)`` added to the output.
        activation: None or ``"relu"`` (with a bias), applied after it.

    Example:
        >>> from ember.engine import Tensor, functional as F
        >>> import numpy as np
        >>> x = Tensor(np.arange(16.0).reshape(1, 4, 4, 1))
        >>> w = Tensor(np.ones((2, 2, 1, 1)))
        >>> y = F.conv2d(x, w, stride=(2, 2))
        >>> y.shape, y.numpy()[0, :, :, 0].tolist()
        ((1, 2, 2, 1), [[10.0, 18.0], [42.0, 50.0]])
        >>> F.conv2d(x, w, stride=(2, 2), bias=Tensor([-20.0]), activation="relu").numpy()[0, :, :, 0].tolist()
        [[0.0, 0.0], [22.0, 30.0]]
    """
    if bias is None:
        if activation is not None:
            raise ValueError(f"conv2d: activation {activation!r} is applied with a bias only; got bias=None "
                             "(apply the activation to the output instead)")
        return _conv.Conv2D.apply(x, w, stride=tuple(stride), dilation=tuple(dilation),
                                  pads=tuple(map(tuple, pads)), groups=groups)
    if activation not in (None, "relu"):
        raise ValueError(f"conv2d: activation must be None or 'relu', got {activation!r}")
    return _conv.Conv2DBiasActivation.apply(x, w, bias, stride=tuple(stride), dilation=tuple(dilation),
                                            pads=tuple(map(tuple, pads)), groups=groups, activation=activation)


def conv2d_transpose(x, w, out_hw, stride=(1, 1), dilation=(1, 1), pads=((0, 0), (0, 0))):
    """Transposed 2-D convolution (the gradient of ``conv2d`` with respect to its input), NHWC.

    Args:
        x: input of shape ``(batch, height, width, in_channels)``.
        w: kernel of shape ``(kh, kw, out_channels, in_channels)``.
        out_hw: the ``(height, width)`` of the output.
        stride: ``(sh, sw)``.
        dilation: ``(dh, dw)``.
        pads: ``((top, bottom), (left, right))`` cropped from the full output.

    Example:
        >>> from ember.engine import Tensor, functional as F
        >>> import numpy as np
        >>> x = Tensor(np.ones((1, 2, 2, 1)))
        >>> w = Tensor(np.ones((2, 2, 1, 1)))
        >>> F.conv2d_transpose(x, w, out_hw=(4, 4), stride=(2, 2)).shape
        (1, 4, 4, 1)
    """
    return _conv.Conv2DTranspose.apply(x, w, out_hw=tuple(out_hw), stride=tuple(stride),
                                       dilation=tuple(dilation), pads=tuple(map(tuple, pads)))


def max_pool2d(x, pool, stride, pads=((0, 0), (0, 0))):
    """2-D max pooling in NHWC layout.

    Args:
        x: input of shape ``(batch, height, width, channels)``.
        pool: the window ``(ph, pw)``.
        stride: ``(sh, sw)``.
        pads: ``((top, bottom), (left, right))`` padding (never the maximum).

    Example:
        >>> from ember.engine import Tensor, functional as F
        >>> import numpy as np
        >>> x = Tensor(np.arange(16.0).reshape(1, 4, 4, 1))
        >>> F.max_pool2d(x, (2, 2), (2, 2)).numpy()[0, :, :, 0].tolist()
        [[5.0, 7.0], [13.0, 15.0]]
    """
    ctx = getattr(x, "_ctx", None)
    if type(ctx) is _act.BiasActivation and ctx.relu:
        # the pooling of a recorded bias + ReLU: one op against its inputs, whose backward applies the
        # ReLU's mask at the pooled size (x keeps its own node for any other use of it)
        z, bias = ctx.parents
        return _conv.BiasReLUMaxPool2D.apply(z, bias, y=x.data, pool=tuple(pool), stride=tuple(stride),
                                             pads=tuple(map(tuple, pads)))
    if type(ctx) is _conv.Conv2DBiasActivation and ctx.relu:
        # the same for a convolution with its bias and ReLU in one op: one op against its inputs
        return _conv.ConvBiasReLUMaxPool2D.apply(*ctx.parents, y=x.data, conv=ctx, pool=tuple(pool),
                                                 stride=tuple(stride), pads=tuple(map(tuple, pads)))
    return _conv.MaxPool2D.apply(x, pool=tuple(pool), stride=tuple(stride), pads=tuple(map(tuple, pads)))


def avg_pool2d(x, pool, stride, pads=((0, 0), (0, 0))):
    """2-D average pooling in NHWC layout.

    Args:
        x: input of shape ``(batch, height, width, channels)``.
        pool: the window ``(ph, pw)``.
        stride: ``(sh, sw)``.
        pads: ``((top, bottom), (left, right))`` padding.

    Example:
        >>> from ember.engine import Tensor, functional as F
        >>> import numpy as np
        >>> x = Tensor(np.arange(16.0).reshape(1, 4, 4, 1))
        >>> F.avg_pool2d(x, (2, 2), (2, 2)).numpy()[0, :, :, 0].tolist()
        [[2.5, 4.5], [10.5, 12.5]]
    """
    return _conv.AvgPool2D.apply(x, pool=tuple(pool), stride=tuple(stride), pads=tuple(map(tuple, pads)))


def same_padding(size, k, stride, dilation=1):
    """TF/Keras 'same' padding ``(before, after)`` for one axis: the output size is ``ceil(size / stride)``.

    Args:
        size: the input length along the axis.
        k: the kernel size.
        stride: the stride.
        dilation: the kernel dilation.

    Example:
        >>> from ember.engine import Tensor, functional as F
        >>> F.same_padding(5, 3, 1), F.same_padding(6, 3, 2)
        ((1, 1), (0, 1))
    """
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
    """Differentiable dtype conversion (returns ``a`` itself when it already has ``dtype``).

    Args:
        a: a Tensor.
        dtype: the target NumPy dtype.

    Example:
        >>> from ember.engine import Tensor, functional as F
        >>> F.cast(Tensor([1.5]), "float64")
        Tensor([1.5], dtype=float64)
    """
    if a.dtype == np.dtype(dtype):
        return a
    return _ew.Cast.apply(a, dtype=np.dtype(dtype))
