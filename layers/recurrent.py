"""Recurrent layers with Keras weight layouts: SimpleRNN, LSTM (gates i, f, c, o), GRU (z, r, h).

The input projection for all steps is one matrix product; the time loop runs the recurrent part.
"""
import numpy as np

from ember.engine import functional as F
from ember.engine.backend import get_array_module
from ember.engine.ops.activation import GRUCell, LSTMCell
from ember.engine.tensor import Tensor
from ember.layers import activations, initializers
from ember.layers.base import InputSpec, Layer


class _RNN(Layer):
    input_spec = InputSpec(ndim=3)
    _gates = 1

    def __init__(self, units, activation="tanh", use_bias=True, kernel_initializer="glorot_uniform",
                 recurrent_initializer="orthogonal", bias_initializer="zeros", return_sequences=False,
                 go_backwards=False, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)
        self.activation = activations.get(activation)
        self.use_bias = use_bias
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.recurrent_initializer = initializers.get(recurrent_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.return_sequences = bool(return_sequences)
        self.go_backwards = bool(go_backwards)

    def build(self, input_shape):
        g = self._gates * self.units
        self.kernel = self.add_weight("kernel", (input_shape[-1], g), self.kernel_initializer)
        self.recurrent_kernel = self.add_weight("recurrent_kernel", (self.units, g), self.recurrent_initializer)
        self.bias = self.add_weight("bias", self._bias_shape(), self._bias_init()) if self.use_bias else None
        self.input_spec = InputSpec(ndim=3, axes={-1: input_shape[-1]})

    def _bias_shape(self):
        return (self._gates * self.units,)

    def _bias_init(self):
        return self.bias_initializer

    def _zeros(self, x):
        return Tensor(get_array_module(x.data).zeros((x.shape[0], self.units), dtype=x.dtype))

    def call(self, x, training=False):
        if x.shape[1] == 0:
            raise ValueError(f"Layer '{self.name}' ({type(self).__name__}): the input has 0 time steps; expected "
                             "(batch, steps >= 1, features)")
        projected = F.matmul(x, self.kernel)
        if self.bias is not None:
            projected = projected + (self.bias if self.bias.ndim == 1 else self.bias[0])
        steps = range(x.shape[1] - 1, -1, -1) if self.go_backwards else range(x.shape[1])
        state = self._initial_state(x)
        outputs = []
        for t in steps:
            h, state = self._step(projected[:, t, :], state)
            if self.return_sequences:
                outputs.append(h)
        return F.stack(outputs, axis=1) if self.return_sequences else h

    def _initial_state(self, x):
        return self._zeros(x)

    def compute_output_shape(self, input_shape):
        if self.return_sequences:
            return (input_shape[0], input_shape[1], self.units)
        return (input_shape[0], self.units)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "activation": activations.serialize(self.activation),
                "use_bias": self.use_bias, "kernel_initializer": initializers.serialize(self.kernel_initializer),
                "recurrent_initializer": initializers.serialize(self.recurrent_initializer),
                "bias_initializer": initializers.serialize(self.bias_initializer),
                "return_sequences": self.return_sequences, "go_backwards": self.go_backwards}


class SimpleRNN(_RNN):
    """h_t = activation(x_t @ kernel + h_{t-1} @ recurrent_kernel + bias).

    Shape: (N, T, D) -> (N, units), or (N, T, units) with ``return_sequences``.
    """

    def _step(self, xw, h):
        h = self.activation(xw + F.matmul(h, self.recurrent_kernel))
        return h, h


class LSTM(_RNN):
    """Long short-term memory; kernel (D, 4u), recurrent_kernel (u, 4u), bias (4u,), gates i, f, c, o.

    Shape: (N, T, D) -> (N, units), or (N, T, units) with ``return_sequences``.
    """

    _gates = 4

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", unit_forget_bias=True, **kwargs):
        super().__init__(units, activation=activation, **kwargs)
        self.recurrent_activation = activations.get(recurrent_activation)
        self.unit_forget_bias = bool(unit_forget_bias)
        # the Keras defaults run as one fused op; other activations through the general ops
        self._fused = (activations.serialize(self.activation) == "tanh"
                       and activations.serialize(self.recurrent_activation) == "sigmoid")

    def _bias_init(self):
        if not self.unit_forget_bias:
            return self.bias_initializer
        base, u = self.bias_initializer, self.units

        def init(shape, dtype=None):
            b = np.asarray(base(shape, dtype))
            b[u:2 * u] = 1.0
            return b

        return init

    def _initial_state(self, x):
        return self._zeros(x), self._zeros(x)

    def _step(self, xw, state):
        h, c = state
        z = xw + F.matmul(h, self.recurrent_kernel)
        u = self.units
        if self._fused:
            hc = LSTMCell.apply(z, c)
            h = hc[:, :u]
            return h, (h, hc[:, u:])
        i = self.recurrent_activation(z[:, :u])
        f = self.recurrent_activation(z[:, u:2 * u])
        c = f * c + i * self.activation(z[:, 2 * u:3 * u])
        o = self.recurrent_activation(z[:, 3 * u:])
        h = o * self.activation(c)
        return h, (h, c)

    def get_config(self):
        return {**super().get_config(), "recurrent_activation": activations.serialize(self.recurrent_activation),
                "unit_forget_bias": self.unit_forget_bias}


class GRU(_RNN):
    """Gated recurrent unit, Keras' default ``reset_after=True`` layout: bias (2, 3u), gates z, r, h.

    h_t = z * h_{t-1} + (1 - z) * tanh(x W_h + b_h + r * (h_{t-1} U_h + b'_h)).
    """

    _gates = 3

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", **kwargs):
        super().__init__(units, activation=activation, **kwargs)
        self.recurrent_activation = activations.get(recurrent_activation)
        self._fused = (activations.serialize(self.activation) == "tanh"
                       and activations.serialize(self.recurrent_activation) == "sigmoid")

    def _bias_shape(self):
        return (2, 3 * self.units)

    def _step(self, xw, h):
        u = self.units
        inner = F.matmul(h, self.recurrent_kernel)
        if self.bias is not None:
            inner = inner + self.bias[1]
        if self._fused:
            h = GRUCell.apply(xw, inner, h)
            return h, h
        z = self.recurrent_activation(xw[:, :u] + inner[:, :u])
        r = self.recurrent_activation(xw[:, u:2 * u] + inner[:, u:2 * u])
        hh = self.activation(xw[:, 2 * u:] + r * inner[:, 2 * u:])
        h = z * h + (1 - z) * hh
        return h, h

    def get_config(self):
        return {**super().get_config(), "recurrent_activation": activations.serialize(self.recurrent_activation)}
