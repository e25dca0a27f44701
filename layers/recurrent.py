"""Recurrent layers with Keras weight layouts: SimpleRNN, LSTM (gates i, f, c, o), GRU (z, r, h).

With Keras's default activations (tanh; sigmoid gates), no recurrent dropout and NumPy arrays, a
layer runs as one fused op over the whole sequence (``ember.engine.ops.recurrent``). Otherwise it runs
the per-step path below: the input projection for all steps is one matrix product, and the time loop
runs the recurrent part with general ops (also the reference for the fused ops in the tests).
"""
import numpy as np

from ember.engine import config
from ember.engine import functional as F
from ember.engine.backend import get_array_module
from ember.engine.ops.activation import GRUCell, LSTMCell
from ember.engine.ops.recurrent import GRUSequence, LSTMSequence, SimpleRNNSequence
from ember.engine.tensor import Tensor
from ember.layers import activations, initializers, regularizers
from ember.layers.base import InputSpec, Layer, get_mask, keras1_arguments, set_mask

RNN_KERAS1 = ("output_dim", "init", "inner_init", "W_regularizer", "U_regularizer", "b_regularizer", "dropout_W",
              "dropout_U", "inner_activation", "input_dim", "bias")


class _RNN(Layer):
    input_spec = InputSpec(ndim=3)
    _gates = 1
    _sequence_op = None  # the fused op for the whole sequence, where the activations allow it
    # NOTE: W5 (IMDB LSTM, batch 32, 80 steps, 128 units) trained at 10 samples/s on the per-step path
    # (about 15 ops per step each way; torch 60), 75 fused (torch 26 in the same run; 2 threads, load
    # average 14-17 on 2 cores); fused, after the blocked per-step products and vectorized step kernels
    # (bench/run.py W5 --repeat 3, contended: other processes used about one core): 1 thread 1045
    # samples/s (torch 1368, 0.76x), 2 threads 942 (torch 303). Set False on a layer to run the per-step
    # path (the tests compare both).
    _sequence_fusion = True

    @keras1_arguments(*RNN_KERAS1)
    def __init__(self, units, activation="tanh", use_bias=True, kernel_initializer="glorot_uniform",
                 recurrent_initializer="orthogonal", bias_initializer="zeros", return_sequences=False,
                 go_backwards=False, return_state=False, dropout=0.0, recurrent_dropout=0.0, stateful=False,
                 unroll=False, kernel_regularizer=None, recurrent_regularizer=None, bias_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.recurrent_regularizer = regularizers.get(recurrent_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        if stateful:
            raise ValueError(f"{type(self).__name__}: stateful=True is not supported (each batch starts from zeros)")
        for what, rate in (("dropout", dropout), ("recurrent_dropout", recurrent_dropout)):
            if not 0 <= rate < 1:
                raise ValueError(f"{type(self).__name__}: {what} must be in [0, 1), got {rate!r}")
        self.return_state = bool(return_state)
        self.dropout, self.recurrent_dropout = float(dropout), float(recurrent_dropout)
        self.unroll = bool(unroll)  # accepted for Keras scripts; the loop over time is the same either way
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
        self.kernel = self.add_weight("kernel", (input_shape[-1], g), self.kernel_initializer,
                                      regularizer=self.kernel_regularizer)
        self.recurrent_kernel = self.add_weight("recurrent_kernel", (self.units, g), self.recurrent_initializer,
                                                regularizer=self.recurrent_regularizer)
        self.bias = self.add_weight("bias", self._bias_shape(), self._bias_init(),
                                    regularizer=self.bias_regularizer) if self.use_bias else None
        self.input_spec = InputSpec(ndim=3, axes={-1: input_shape[-1]})

    def _bias_shape(self):
        return (self._gates * self.units,)

    def _bias_init(self):
        return self.bias_initializer

    def _zeros(self, x):
        return Tensor(get_array_module(x.data).zeros((x.shape[0], self.units), dtype=x.dtype))

    def _dropout_mask(self, shape, rate, dtype):
        """Keras's RNN dropout: one keep mask per sequence, the same at every step, scaled by 1/(1-rate)."""
        return (config.rng().random(shape) >= rate).astype(dtype) / (1.0 - rate)

    def call(self, x, training=False):
        if x.shape[1] == 0:
            raise ValueError(f"Layer '{self.name}' ({type(self).__name__}): the input has 0 time steps; expected "
                             "(batch, steps >= 1, features)")
        mask = get_mask(x)
        if training and self.dropout > 0:
            x = x * self._dropout_mask((x.shape[0], 1, x.shape[2]), self.dropout, x.dtype)
        self._recurrent_mask = None
        if training and self.recurrent_dropout > 0:
            self._recurrent_mask = self._dropout_mask((x.shape[0], self.units), self.recurrent_dropout, x.dtype)
        op = self._sequence_op
        if (op is not None and self._sequence_fusion and self._recurrent_mask is None
                and get_array_module(x.data, self.kernel.data) is np):
            return self._call_fused(op, x, mask)
        projected = F.matmul(x, self.kernel)
        if self.bias is not None:
            projected = projected + (self.bias if self.bias.ndim == 1 else self.bias[0])
        steps = range(x.shape[1] - 1, -1, -1) if self.go_backwards else range(x.shape[1])
        state = self._initial_state(x)
        h = self._zeros(x)
        outputs = []
        for t in steps:
            h_new, new_state = self._step(projected[:, t, :], state)
            if mask is not None:  # a masked step leaves the state and the output as they were (Keras)
                keep = mask[:, t:t + 1]
                h_new = F.where(keep, h_new, h)
                new_state = tuple(F.where(keep, a, b) for a, b in zip(_as_tuple(new_state), _as_tuple(state)))
                new_state = new_state if isinstance(state, tuple) else new_state[0]
            h, state = h_new, new_state
            if self.return_sequences:
                outputs.append(h)
        y = F.stack(outputs, axis=1) if self.return_sequences else h
        if self.return_sequences and mask is not None:
            # NOTE: Keras passes the input's mask on unchanged, also with go_backwards (whose outputs are in
            # reversed time order); a Keras model that stacks a layer on such an RNN computes with that mask,
            # so ember does the same (checked against Keras 3 in tests/zoo/test_keras_import.py)
            set_mask(y, mask)
        if self.return_state:
            return [y] + list(_as_tuple(state))
        return y

    def _call_fused(self, op, x, mask):
        weights = (x, self.kernel, self.recurrent_kernel) + ((self.bias,) if self.bias is not None else ())
        mask_array = None if mask is None else np.asarray(mask.data if isinstance(mask, Tensor) else mask)
        if not self.return_state:  # only what the layer returns (no slice whose gradient scatters)
            y = op.apply(*weights, mask=mask_array, go_backwards=self.go_backwards,
                         outputs="sequence" if self.return_sequences else "last")
            if self.return_sequences and mask is not None:
                set_mask(y, mask)  # as on the per-step path (see the NOTE there)
            return y
        packed = op.apply(*weights, mask=mask_array, go_backwards=self.go_backwards)
        steps = x.shape[1]
        h = packed[:, steps - 1]
        y = (packed if op._extra == 0 else packed[:, :steps]) if self.return_sequences else h
        if self.return_sequences and mask is not None:
            set_mask(y, mask)  # as on the per-step path (see the NOTE there)
        if self.return_state:
            return [y, h] + ([packed[:, steps]] if op._extra else [])
        return y

    def _recurrent_input(self, h):
        return h if self._recurrent_mask is None else h * self._recurrent_mask

    def _initial_state(self, x):
        return self._zeros(x)

    def compute_output_shape(self, input_shape):
        out = (input_shape[0], input_shape[1], self.units) if self.return_sequences else (input_shape[0], self.units)
        if self.return_state:
            return [out] + [(input_shape[0], self.units)] * self._state_count
        return out

    _state_count = 1

    def get_config(self):
        return {**super().get_config(), "units": self.units, "activation": activations.serialize(self.activation),
                "use_bias": self.use_bias, "kernel_initializer": initializers.serialize(self.kernel_initializer),
                "recurrent_initializer": initializers.serialize(self.recurrent_initializer),
                "bias_initializer": initializers.serialize(self.bias_initializer),
                "return_sequences": self.return_sequences, "go_backwards": self.go_backwards,
                "return_state": self.return_state, "dropout": self.dropout, "recurrent_dropout": self.recurrent_dropout,
                "unroll": self.unroll,
                **regularizers.serialize_fields(self, "kernel_regularizer", "recurrent_regularizer",
                                                "bias_regularizer")}


def _as_tuple(state):
    return state if isinstance(state, tuple) else (state,)


class SimpleRNN(_RNN):
    """Fully connected recurrence: h_t = activation(x_t @ kernel + h_{t-1} @ recurrent_kernel + bias).

    Args:
        units: the size of the state.
        activation: name or function (default tanh).
        use_bias, kernel_initializer, recurrent_initializer, bias_initializer: as in Keras.
        return_sequences: return every step's output, not only the last.
        go_backwards: read the sequence in reverse.
        return_state: also return the final state.
        dropout, recurrent_dropout: dropout rates on the inputs and on the state, in [0, 1).
        stateful: not supported (must be False); ``unroll`` is accepted and changes nothing.

    Shape: (N, T, D) -> (N, units), or (N, T, units) with ``return_sequences``.

    Example:
        >>> import numpy as np
        >>> from ember.layers import SimpleRNN
        >>> SimpleRNN(4)(np.zeros((2, 5, 3))).shape
        (2, 4)
        >>> SimpleRNN(4, return_sequences=True)(np.zeros((2, 5, 3))).shape
        (2, 5, 4)
    """

    def __init__(self, units, **kwargs):
        super().__init__(units, **kwargs)
        if activations.serialize(self.activation) == "tanh":
            self._sequence_op = SimpleRNNSequence

    def _step(self, xw, h):
        h = self.activation(xw + F.matmul(self._recurrent_input(h), self.recurrent_kernel))
        return h, h


class LSTM(_RNN):
    """Long short-term memory; kernel (D, 4u), recurrent_kernel (u, 4u), bias (4u,), gates i, f, c, o.

    Args:
        units: the size of the state (u).
        activation: the cell activation (default tanh).
        recurrent_activation: the gate activation (default sigmoid).
        unit_forget_bias: start the forget-gate bias at 1 (Keras' default).
        **kwargs: the options of ``SimpleRNN`` (return_sequences, return_state, go_backwards, dropout...).

    Shape: (N, T, D) -> (N, units), or (N, T, units) with ``return_sequences``.

    Example:
        >>> import numpy as np
        >>> from ember.layers import LSTM
        >>> lstm = LSTM(4, return_state=True)
        >>> out, h, c = lstm(np.zeros((2, 5, 3)))
        >>> out.shape, h.shape, c.shape
        ((2, 4), (2, 4), (2, 4))
        >>> [w.shape for w in lstm.get_weights()]
        [(3, 16), (4, 16), (16,)]
    """

    _gates = 4
    _state_count = 2

    @keras1_arguments(*RNN_KERAS1)
    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", unit_forget_bias=True, **kwargs):
        super().__init__(units, activation=activation, **kwargs)
        self.recurrent_activation = activations.get(recurrent_activation)
        self.unit_forget_bias = bool(unit_forget_bias)
        # the Keras defaults run as one fused op; other activations through the general ops
        self._fused = (activations.serialize(self.activation) == "tanh"
                       and activations.serialize(self.recurrent_activation) == "sigmoid")
        self._sequence_op = LSTMSequence if self._fused else None

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
        z = xw + F.matmul(self._recurrent_input(h), self.recurrent_kernel)
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

    Args:
        units: the size of the state (u).
        activation: the candidate activation (default tanh).
        recurrent_activation: the gate activation (default sigmoid).
        **kwargs: the options of ``SimpleRNN`` (return_sequences, return_state, go_backwards, dropout...).

    Shape: (N, T, D) -> (N, units), or (N, T, units) with ``return_sequences``.

    Example:
        >>> import numpy as np
        >>> from ember.layers import GRU
        >>> gru = GRU(4, return_sequences=True)
        >>> gru(np.zeros((2, 5, 3))).shape
        (2, 5, 4)
        >>> [w.shape for w in gru.get_weights()]
        [(3, 12), (4, 12), (2, 12)]
    """

    _gates = 3

    @keras1_arguments(*RNN_KERAS1)
    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", **kwargs):
        super().__init__(units, activation=activation, **kwargs)
        self.recurrent_activation = activations.get(recurrent_activation)
        self._fused = (activations.serialize(self.activation) == "tanh"
                       and activations.serialize(self.recurrent_activation) == "sigmoid")
        self._sequence_op = GRUSequence if self._fused else None

    def _bias_shape(self):
        return (2, 3 * self.units)

    def _step(self, xw, h):
        u = self.units
        inner = F.matmul(self._recurrent_input(h), self.recurrent_kernel)
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
