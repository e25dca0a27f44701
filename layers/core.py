"""Core layers: Input, Dense, Activation, Dropout, Flatten, Reshape, Permute, Lambda."""
import math

from ember.engine import config
from ember.engine import functional as F
from ember.layers import activations, initializers, regularizers
from ember.layers.base import InputSpec, Layer, SymbolicTensor, keras1_arguments, set_mask


class InputLayer(Layer):
    """The source of a functional graph; ``Input(...)`` returns its symbolic output.

    Args:
        shape: the input shape without the batch axis.
        batch_size: an optional fixed batch size.
        dtype: the input dtype (default: the engine's default float).
        name: the layer name.
        batch_input_shape: the shape with the batch axis (instead of ``shape`` and ``batch_size``).

    Example:
        >>> import numpy as np
        >>> from ember.layers import InputLayer, Dense
        >>> from ember.layers import Model
        >>> source = InputLayer(shape=(3,)).output
        >>> source.shape
        (None, 3)
        >>> model = Model(source, Dense(2)(source))
        >>> model.predict(np.zeros((4, 3)), verbose=0).shape
        (4, 2)
    """

    def __init__(self, shape=None, batch_size=None, dtype=None, name=None, batch_input_shape=None, **kwargs):
        if batch_input_shape is None:
            if shape is None:
                raise ValueError("Input: give shape (without the batch axis), e.g. Input(shape=(28, 28, 1))")
            batch_input_shape = (batch_size,) + tuple(shape)
        super().__init__(name=name, batch_input_shape=batch_input_shape, dtype=dtype, **kwargs)
        self.built = True
        dt = self.dtype or config.get_default_dtype()
        out = SymbolicTensor(self._batch_input_shape, dt, self, 0, 0)
        from ember.layers.base import Node

        self._inbound_nodes.append(Node(self, [], out))
        self.output = out

    def call(self, inputs, training=False):
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape


def Input(shape=None, batch_size=None, dtype=None, name=None):  # noqa: N802 - Keras' name
    """A symbolic input for the functional API.

    Example:
        >>> from ember.layers import Input, Dense, Model
        >>> inp = Input(shape=(4,))
        >>> model = Model(inp, Dense(2)(inp))
        >>> model.count_params()
        10
    """
    return InputLayer(shape=shape, batch_size=batch_size, dtype=dtype, name=name).output


class Dense(Layer):
    """y = activation(x @ kernel + bias) on the last axis.

    Args:
        units: output size.
        activation: name or function (default linear).
        use_bias: add a bias.
        kernel_initializer, bias_initializer: initializer names or objects.

    Shape: (batch, ..., in) -> (batch, ..., units); kernel (in, units), bias (units,).

    Example:
        >>> import numpy as np
        >>> from ember.layers import Dense
        >>> layer = Dense(2, kernel_initializer="ones", bias_initializer="zeros")
        >>> layer(np.array([[1.0, 2.0, 3.0]]))
        Tensor([[6. 6.]], dtype=float32, requires_grad=True)
        >>> [w.shape for w in layer.get_weights()]
        [(3, 2), (2,)]
    """

    supports_masking = True
    replay_safe = True

    input_spec = InputSpec(min_ndim=2)

    def replayable(self):
        return super().replayable() and activations.is_builtin(self.activation)

    @keras1_arguments("output_dim", "init", "W_regularizer", "b_regularizer", "bias", "input_dim")
    def __init__(self, units, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        if int(units) <= 0:
            raise ValueError(f"Dense: units must be a positive integer, got {units!r}")
        self.units = int(units)
        self.activation = activations.get(activation)
        self.use_bias = use_bias
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)

    def build(self, input_shape):
        in_dim = input_shape[-1]
        self.kernel = self.add_weight("kernel", (in_dim, self.units), self.kernel_initializer,
                                      regularizer=self.kernel_regularizer)
        self.bias = self.add_weight("bias", (self.units,), self.bias_initializer,
                                    regularizer=self.bias_regularizer) if self.use_bias else None
        self.input_spec = InputSpec(min_ndim=2, axes={-1: in_dim})

    def call(self, x, training=False):
        return activations.with_bias(self.activation, F.matmul(x, self.kernel), self.bias)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "activation": activations.serialize(self.activation),
                "use_bias": self.use_bias,
                "kernel_initializer": initializers.serialize(self.kernel_initializer),
                "bias_initializer": initializers.serialize(self.bias_initializer),
                **regularizers.serialize_fields(self, "kernel_regularizer", "bias_regularizer")}


class Activation(Layer):
    """Applies an activation by name: relu, relu6, leaky_relu, elu, gelu, sigmoid, tanh, softmax, ...

    Args:
        activation: a name or a function of a Tensor.

    Shape: unchanged.

    Example:
        >>> import numpy as np
        >>> from ember.layers import Activation
        >>> Activation("relu")(np.array([[-1.0, 2.0]])).numpy().tolist() == [[0.0, 2.0]]
        True
        >>> Activation("softmax")(np.array([[0.0, 0.0]])).numpy().tolist()
        [[0.5, 0.5]]
    """

    supports_masking = True

    replay_safe = True

    def replayable(self):
        return super().replayable() and activations.is_builtin(self.activation)

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation = activations.get(activation)

    def call(self, x, training=False):
        return self.activation(x)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "activation": activations.serialize(self.activation)}


class ReLU(Layer):
    """Keras's ``ReLU`` layer: ``max(x, 0)`` (``negative_slope * x`` below 0), capped at ``max_value``.

    Example:
        >>> import numpy as np
        >>> from ember.layers import ReLU
        >>> ReLU(max_value=1.0)(np.array([[-2.0, 0.5, 3.0]])).numpy().tolist() == [[0.0, 0.5, 1.0]]
        True
    """

    supports_masking = True

    def __init__(self, max_value=None, negative_slope=0.0, threshold=0.0, **kwargs):
        super().__init__(**kwargs)
        if threshold:
            raise ValueError("ReLU: threshold other than 0 is not supported")
        if max_value is not None and max_value < 0:
            raise ValueError(f"ReLU: max_value must be >= 0, got {max_value!r}")
        self.max_value = None if max_value is None else float(max_value)
        self.negative_slope = float(negative_slope)

    def call(self, x, training=False):
        return F.relu(x, max_value=self.max_value, negative_slope=self.negative_slope)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "max_value": self.max_value, "negative_slope": self.negative_slope}


class Dropout(Layer):
    """Zeroes a fraction ``rate`` of inputs in training and scales the rest by 1/(1-rate); the identity
    in inference. Called outside a model, a layer follows its own mode (``train()``, the default, or
    ``eval()``) unless the call passes ``training``.

    Args:
        rate: the fraction to drop, in [0, 1).
        noise_shape: an optional shape of the keep/drop mask, broadcast over the input (1 shares a draw).

    Shape: unchanged.

    Example:
        >>> import numpy as np
        >>> from ember.layers import Dropout
        >>> import ember
        >>> ember.set_seed(0)
        >>> y = Dropout(0.5)(np.ones((1, 1000)), training=True).numpy()
        >>> sorted(set(y.ravel().tolist())), bool(400 < (y == 0).sum() < 600)
        ([0.0, 2.0], True)
        >>> Dropout(0.5)(np.ones((1, 3)), training=False).numpy().tolist()
        [[1.0, 1.0, 1.0]]
    """

    supports_masking = True

    @keras1_arguments("p")
    def __init__(self, rate, noise_shape=None, **kwargs):
        super().__init__(**kwargs)
        if not 0 <= rate < 1:
            raise ValueError(f"Dropout: rate must be in [0, 1), got {rate!r}")
        self.rate = float(rate)
        self.noise_shape = tuple(noise_shape) if noise_shape is not None else None

    def call(self, x, training=False):
        if not training or self.rate == 0:
            return x
        shape = x.shape if self.noise_shape is None else tuple(
            s if n is None else n for s, n in zip(x.shape, self.noise_shape))
        keep = config.rng().random(shape) >= self.rate
        mask = keep.astype(x.dtype) / (1.0 - self.rate)
        return x * mask

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "rate": self.rate,
                "noise_shape": list(self.noise_shape) if self.noise_shape else None}


class Flatten(Layer):
    """(batch, ...) -> (batch, prod(...)); ``channels_first`` input is flattened in channels-last order.

    Args:
        data_format: ``"channels_last"`` or ``"channels_first"``.

    Shape: (N, d1, d2, ...) -> (N, d1 * d2 * ...).

    Example:
        >>> import numpy as np
        >>> from ember.layers import Flatten
        >>> Flatten()(np.zeros((2, 3, 4, 5))).shape
        (2, 60)
    """

    input_spec = InputSpec(min_ndim=1)

    replay_safe = True

    def __init__(self, data_format="channels_last", **kwargs):
        super().__init__(**kwargs)
        self.data_format = _check_format(data_format)

    def call(self, x, training=False):
        if self.data_format == "channels_first" and x.ndim > 2:
            x = F.transpose(x, (0,) + tuple(range(2, x.ndim)) + (1,))
        return F.reshape(x, (x.shape[0], -1))

    def compute_output_shape(self, input_shape):
        rest = input_shape[1:]
        return (input_shape[0], None if None in rest else math.prod(rest))

    def get_config(self):
        return {**super().get_config(), "data_format": self.data_format}


class Reshape(Layer):
    """Reshape everything but the batch axis to ``target_shape`` (one entry may be -1).

    Args:
        target_shape: the new shape without the batch axis.

    Shape: (N, ...) -> (N, *target_shape).

    Example:
        >>> import numpy as np
        >>> from ember.layers import Reshape
        >>> Reshape((3, -1))(np.zeros((2, 12))).shape
        (2, 3, 4)
    """

    replay_safe = True

    def __init__(self, target_shape, **kwargs):
        super().__init__(**kwargs)
        self.target_shape = tuple(int(s) for s in target_shape)

    def _resolve(self, shape):
        size = math.prod(shape[1:])
        target = list(self.target_shape)
        known = math.prod(s for s in target if s != -1)
        if target.count(-1) > 1:
            raise ValueError(f"Layer '{self.name}' (Reshape): at most one -1 in target_shape {self.target_shape}")
        if -1 in target:
            if size % known:
                raise ValueError(f"Layer '{self.name}' (Reshape): cannot reshape input {shape} to {self.target_shape}")
            target[target.index(-1)] = size // known
        elif known != size:
            raise ValueError(f"Layer '{self.name}' (Reshape): input {shape} has {size} values per sample, "
                             f"target_shape {self.target_shape} needs {known}")
        return tuple(target)

    def call(self, x, training=False):
        return F.reshape(x, (x.shape[0],) + self._resolve(x.shape))

    def compute_output_shape(self, input_shape):
        return (input_shape[0],) + self._resolve(input_shape)

    def get_config(self):
        return {**super().get_config(), "target_shape": list(self.target_shape)}


class Permute(Layer):
    """Permute the non-batch axes; ``dims`` is 1-based as in Keras, e.g. (2, 1).

    Args:
        dims: a permutation of 1..rank-1.

    Shape: (N, d1, d2) -> (N, d2, d1) for ``dims=(2, 1)``.

    Example:
        >>> import numpy as np
        >>> from ember.layers import Permute
        >>> Permute((2, 1))(np.zeros((2, 3, 4))).shape
        (2, 4, 3)
    """

    def __init__(self, dims, **kwargs):
        super().__init__(**kwargs)
        self.dims = tuple(int(d) for d in dims)
        if sorted(self.dims) != list(range(1, len(self.dims) + 1)):
            raise ValueError(f"Permute: dims must be a permutation of 1..{len(self.dims)}, got {self.dims}")
        self.input_spec = InputSpec(ndim=len(self.dims) + 1)

    def call(self, x, training=False):
        return F.transpose(x, (0,) + self.dims)

    def compute_output_shape(self, input_shape):
        return (input_shape[0],) + tuple(input_shape[d] for d in self.dims)

    def get_config(self):
        return {**super().get_config(), "dims": list(self.dims)}


class Lambda(Layer):
    """Wraps a Python function of Tensors (``ember.engine.functional`` ops or Tensor methods).

    Custom layers are plain Python: the function is differentiated through automatically.
    To save a model with a Lambda, the function must be importable by name, and
    ``load_model(..., custom_objects={name: fn})`` must be given it (no code is unpickled).

    Example:
        >>> import numpy as np
        >>> from ember.layers import Lambda
        >>> Lambda(lambda t: t * 2)(np.ones((1, 2))).numpy().tolist()
        [[2.0, 2.0]]
    """

    def __init__(self, function, output_shape=None, arguments=None, **kwargs):
        super().__init__(**kwargs)
        if not callable(function):
            raise TypeError(f"Lambda: function must be callable, got {function!r}")
        self.function = function
        # a shape without the batch axis, or (Keras) a function of the input shape(s) giving the output shape
        self.output_shape = output_shape if callable(output_shape) or output_shape is None else tuple(output_shape)
        self.arguments = dict(arguments or {})

    def call(self, x, training=False):
        return self.function(x, **self.arguments)

    def compute_output_shape(self, input_shape):
        if callable(self.output_shape):
            return tuple(self.output_shape(input_shape))
        if self.output_shape is not None:
            return (None,) + self.output_shape
        return super().compute_output_shape(input_shape)

    def get_config(self):
        shape = self.output_shape
        if callable(shape):
            shape = getattr(shape, "__name__", repr(shape))
        return {**super().get_config(), "function": getattr(self.function, "__name__", repr(self.function)),
                "output_shape": list(shape) if isinstance(shape, tuple) and shape else shape or None,
                "arguments": self.arguments}


def _check_format(data_format):
    if data_format not in ("channels_last", "channels_first"):
        raise ValueError(f"data_format must be 'channels_last' or 'channels_first', got {data_format!r}")
    return data_format


class SpatialDropout1D(Dropout):
    """Dropout of whole feature maps: one keep/drop draw per (sample, channel), shared by every step.

    Args:
        rate: the fraction of channels to drop, in [0, 1).

    Shape: (N, T, C) -> (N, T, C).

    Example:
        >>> import numpy as np
        >>> from ember.layers import SpatialDropout1D
        >>> import ember
        >>> ember.set_seed(0)
        >>> y = SpatialDropout1D(0.5)(np.ones((2, 4, 8)), training=True).numpy()
        >>> bool((y == y[:, :1, :]).all())  # each channel is kept or dropped for every step
        True
    """

    input_spec = InputSpec(ndim=3)

    def __init__(self, rate, **kwargs):
        super().__init__(rate, **kwargs)

    def call(self, x, training=False):
        self.noise_shape = (x.shape[0], 1, x.shape[2])
        return super().call(x, training)

    def get_config(self):
        cfg = super().get_config()
        cfg.pop("noise_shape")
        return cfg


class SpatialDropout2D(Dropout):
    """Dropout of whole feature maps: one keep/drop draw per (sample, channel), shared over H and W.

    Args:
        rate: the fraction of channels to drop, in [0, 1).
        data_format: ``"channels_last"`` or ``"channels_first"``.

    Shape: (N, H, W, C) (or (N, C, H, W) with ``channels_first``), unchanged.

    Example:
        >>> import numpy as np
        >>> from ember.layers import SpatialDropout2D
        >>> import ember
        >>> ember.set_seed(0)
        >>> y = SpatialDropout2D(0.5)(np.ones((2, 3, 3, 8)), training=True).numpy()
        >>> bool((y == y[:, :1, :1, :]).all())  # each channel is kept or dropped over all of H and W
        True
    """

    input_spec = InputSpec(ndim=4)

    def __init__(self, rate, data_format="channels_last", **kwargs):
        super().__init__(rate, **kwargs)
        self.data_format = _check_format(data_format)

    def call(self, x, training=False):
        n = x.shape[0]
        self.noise_shape = (n, x.shape[1], 1, 1) if self.data_format == "channels_first" else (n, 1, 1, x.shape[3])
        return super().call(x, training)

    def get_config(self):
        cfg = super().get_config()
        cfg.pop("noise_shape")
        return {**cfg, "data_format": self.data_format}


class RepeatVector(Layer):
    """Repeat each input vector ``n`` times along a new time axis: (N, D) -> (N, n, D).

    Example:
        >>> import numpy as np
        >>> from ember.layers import RepeatVector
        >>> RepeatVector(3)(np.ones((2, 4))).shape
        (2, 3, 4)
    """

    input_spec = InputSpec(ndim=2)

    def __init__(self, n, **kwargs):
        super().__init__(**kwargs)
        if int(n) < 1:
            raise ValueError(f"RepeatVector: n must be >= 1, got {n!r}")
        self.n = int(n)

    def call(self, x, training=False):
        return F.broadcast_to(F.reshape(x, (x.shape[0], 1, x.shape[1])), (x.shape[0], self.n, x.shape[1]))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.n, input_shape[1])

    def get_config(self):
        return {**super().get_config(), "n": self.n}


class Masking(Layer):
    """Mark the time steps whose features all equal ``mask_value`` as padding: the recurrent layers
    after it skip them (the state carries over), as in Keras. The values pass through unchanged.

    Shape: (N, T, ...) -> (N, T, ...), with a (N, T) mask attached.

    Example:
        >>> import numpy as np
        >>> from ember.layers import Masking
        >>> from ember.layers.base import get_mask
        >>> get_mask(Masking()(np.array([[[1.0], [0.0]]]))).tolist()
        [[True, False]]
    """

    input_spec = InputSpec(min_ndim=3)

    def __init__(self, mask_value=0.0, **kwargs):
        super().__init__(**kwargs)
        self.mask_value = float(mask_value)

    def call(self, x, training=False):
        data = x.data
        keep = (data != self.mask_value).any(axis=tuple(range(2, data.ndim)))
        y = x * keep[(...,) + (None,) * (data.ndim - 2)].astype(x.dtype)  # masked steps read as zeros (as Keras)
        return set_mask(y, keep)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "mask_value": self.mask_value}
