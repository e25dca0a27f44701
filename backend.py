"""``keras.backend`` (``from keras import backend as K``) for ``import ember as keras``: the tensor functions
that Keras example scripts call in custom losses, metrics and ``Lambda`` layers (``K.sqrt``, ``K.sum``,
``K.square``, ``K.maximum``, ``K.mean``, ``K.epsilon()``...), over ember's differentiable ops, and the data
layout queries (``image_data_format()``, Keras 1's ``image_dim_ordering()``).

Arguments may be Tensors or arrays; a Tensor comes back, and gradients flow through Tensor arguments.

Example:
    >>> import numpy as np
    >>> from ember import backend as K
    >>> K.sqrt(K.maximum(K.sum(K.square(np.array([[3.0, 4.0]])), axis=1, keepdims=True), K.epsilon())).item()
    5.0
"""
import numpy as np

from ember.engine import config
from ember.engine import functional as F
from ember.engine.tensor import Tensor

_EPSILON = 1e-7


def _t(x):
    if isinstance(x, Tensor):
        return x
    return Tensor(np.asarray(x, dtype=config.get_default_dtype()) if not hasattr(x, "dtype")
                  or np.asarray(x).dtype.kind in "biu" else np.asarray(x))


def epsilon():
    """The fuzz factor Keras adds to avoid dividing by zero (1e-7)."""
    return _EPSILON


def floatx():
    """The default float type's name ("float32" unless set with ember.set_default_dtype)."""
    return np.dtype(config.get_default_dtype()).name


def image_data_format():
    """"channels_last": ember's layers default to (N, H, W, C)."""
    return "channels_last"


def image_dim_ordering():
    """Keras 1's name of the layout: "tf" (channels last)."""
    return "tf"


def sqrt(x):
    return F.sqrt(_t(x))


def square(x):
    x = _t(x)
    return x * x


def abs(x):  # noqa: A001 - Keras's name
    return F.abs(_t(x))


def exp(x):
    return F.exp(_t(x))


def log(x):
    return F.log(_t(x))


def sum(x, axis=None, keepdims=False):  # noqa: A001 - Keras's name
    return F.sum(_t(x), axis=axis, keepdims=keepdims)


def mean(x, axis=None, keepdims=False):
    return F.mean(_t(x), axis=axis, keepdims=keepdims)


def max(x, axis=None, keepdims=False):  # noqa: A001 - Keras's name
    return F.max(_t(x), axis=axis, keepdims=keepdims)


def min(x, axis=None, keepdims=False):  # noqa: A001 - Keras's name
    return F.min(_t(x), axis=axis, keepdims=keepdims)


def maximum(x, y):
    x, y = _t(x), _t(y)
    return F.maximum(x, y.astype(x.dtype) if hasattr(y, "astype") and y.dtype != x.dtype else y)


def minimum(x, y):
    x, y = _t(x), _t(y)
    return F.minimum(x, y.astype(x.dtype) if hasattr(y, "astype") and y.dtype != x.dtype else y)


def clip(x, min_value, max_value):
    return F.clip(_t(x), min_value, max_value)


def cast(x, dtype):
    """``x`` as ``dtype`` (booleans become 0/1)."""
    x = _t(x)
    return F.cast(Tensor(x.data.astype(np.float64)) if x.dtype == np.bool_ else x, np.dtype(dtype))


def equal(x, y):
    """Element-wise equality as booleans (no gradient)."""
    return Tensor(np.equal(_t(x).data, _t(y).data))


def greater(x, y):
    return Tensor(np.greater(_t(x).data, _t(y).data))


def less(x, y):
    return Tensor(np.less(_t(x).data, _t(y).data))


def dot(x, y):
    return F.matmul(_t(x), _t(y))


def concatenate(tensors, axis=-1):
    return F.concatenate([_t(t) for t in tensors], axis=axis)


def reshape(x, shape):
    return F.reshape(_t(x), tuple(shape))


def softmax(x, axis=-1):
    return F.softmax(_t(x), axis=axis)


def relu(x):
    return F.relu(_t(x))


def sigmoid(x):
    return F.sigmoid(_t(x))


def tanh(x):
    return F.tanh(_t(x))
