"""Activations and (log-)softmax, each with its closed-form gradient."""
import math

from ember.engine.backend import backend_name, get_array_module
from ember.engine.tensor import Function
from ember.kernels import get_kernel


def _k(name, arr):
    return get_kernel(name, backend_name(get_array_module(arr)))


class ReLU(Function):
    """max(x, 0) with an optional leaky slope and cap; the arithmetic is the ``relu_*`` kernels."""

    def forward(self, x, max_value=None, negative_slope=0.0):
        self.x, self.max_value, self.slope = x, max_value, negative_slope
        return _k("relu_forward", x)(x, max_value, negative_slope)

    def backward(self, g):
        return _k("relu_backward", g)(g, self.x, self.max_value, self.slope)


class BiasActivation(Function):
    """y = x + bias on the last axis, then ReLU when ``activation == "relu"``: one pass each way
    (the bias gradient is summed in the same pass that masks the incoming gradient)."""

    def forward(self, x, bias, activation=None):
        self.relu = activation == "relu"
        y = _k("bias_activation_forward", x)(x, bias, self.relu)
        self.y = y if self.relu else None
        return y

    def backward(self, g):
        return _k("bias_activation_backward", g)(g, self.y, self.relu)


class AddReLU(Function):
    """max(a + b, 0) for inputs of one shape, as one op (a residual block's sum and its ReLU).
    ``overwrite``: the result is written over ``a``'s array (its values are lost; backward needs neither input)."""

    def forward(self, a, b, overwrite=False):
        self.y = _k("add_relu_forward", a)(a, b, overwrite) if overwrite else _k("add_relu_forward", a)(a, b)
        return self.y

    def backward(self, g):
        d = _k("relu_backward", g)(g, self.y, None, 0.0)
        return d, d


class ELU(Function):
    def forward(self, x, alpha=1.0):
        self.x, self.alpha = x, alpha
        self.y = _k("elu_forward", x)(x, alpha)
        return self.y

    def backward(self, g):
        return _k("elu_backward", g)(g, self.x, self.y, self.alpha)


class GELU(Function):
    """Exact GELU: x * Phi(x) (Keras ``approximate=False``, torch default)."""

    def forward(self, x):
        xp = get_array_module(x)
        self.x = x
        self.cdf = 0.5 * (1.0 + get_kernel("erf", backend_name(xp))(x / math.sqrt(2.0)))
        return x * self.cdf

    def backward(self, g):
        xp = get_array_module(g)
        pdf = xp.exp(-0.5 * self.x * self.x) / math.sqrt(2.0 * math.pi)
        return g * (self.cdf + self.x * pdf)


class Sigmoid(Function):
    def forward(self, x):
        self.y = _k("sigmoid_forward", x)(x)
        return self.y

    def backward(self, g):
        return _k("sigmoid_backward", g)(g, self.y)


class Tanh(Function):
    def forward(self, x):
        self.y = get_array_module(x).tanh(x)  # NumPy's tanh is SIMD (0.19 ms per 1M float32)
        return self.y

    def backward(self, g):
        return _k("tanh_backward", g)(g, self.y)


class Softplus(Function):
    def forward(self, x):
        self.y = _k("softplus_forward", x)(x)
        return self.y

    def backward(self, g):
        return _k("softplus_backward", g)(g, self.y)


class Softmax(Function):
    def forward(self, x, axis=-1):
        xp = get_array_module(x)
        self.axis = axis
        e = xp.exp(x - x.max(axis=axis, keepdims=True))
        self.y = e / e.sum(axis=axis, keepdims=True)
        return self.y

    def backward(self, g):
        return self.y * (g - (g * self.y).sum(axis=self.axis, keepdims=True))


class LogSoftmax(Function):
    def forward(self, x, axis=-1):
        xp = get_array_module(x)
        self.axis = axis
        shifted = x - x.max(axis=axis, keepdims=True)
        self.y = shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))
        return self.y

    def backward(self, g):
        xp = get_array_module(g)
        return g - xp.exp(self.y) * g.sum(axis=self.axis, keepdims=True)


class SoftmaxCrossEntropy(Function):
    """mean over rows of -log softmax(logits)[label]: logits (N, C), labels (N,) 0-based ints (fused)."""

    def forward(self, logits, labels=None):
        self.labels = labels
        losses, self.probs = _k("softmax_cross_entropy_forward", logits)(logits, labels)
        return losses.mean()

    def backward(self, g):
        n = self.probs.shape[0]
        scale = g.item() / n if hasattr(g, "item") else g / n
        return _k("softmax_cross_entropy_backward", self.probs)(self.probs, self.labels, scale)


class LSTMCell(Function):
    """The elementwise part of an LSTM step (sigmoid/tanh gates, Keras order i, f, g, o), fused:
    z (N, 4u), c (N, u) -> [h, c'] (N, 2u)."""

    def forward(self, z, c):
        self.c = c
        hc, self.gates, self.tanh_c = _k("lstm_cell_forward", z)(z, c)
        return hc

    def backward(self, g):
        dz, dc = _k("lstm_cell_backward", g)(g, self.gates, self.tanh_c, self.c)
        return dz, dc


class GRUCell(Function):
    """The elementwise part of a GRU step (Keras reset_after layout, sigmoid/tanh), fused:
    xw (N, 3u), hu (N, 3u), h (N, u) -> h' (N, u)."""

    def forward(self, xw, hu, h):
        self.hu, self.h = hu, h
        h_new, self.gates = _k("gru_cell_forward", xw)(xw, hu, h)
        return h_new

    def backward(self, g):
        return _k("gru_cell_backward", g)(g, self.gates, self.hu, self.h)
