"""Layer wrappers: ``TimeDistributed`` (a layer applied to every time step) and ``Bidirectional``
(a recurrent layer run forwards and backwards)."""
from ember.engine import functional as F
from ember.layers.base import InputSpec, Layer, get_mask, set_mask


def _serialize(layer):
    from ember.layers.serialization import serialize_layer

    return serialize_layer(layer)


def _deserialize(spec, custom_objects=None):
    from ember.layers.serialization import deserialize_layer

    return deserialize_layer(spec, custom_objects)


class TimeDistributed(Layer):
    """Apply ``layer`` to each step of (N, T, ...) inputs, with the same weights for every step.

    Shape: (N, T, ...) -> (N, T, ...layer output without its batch axis).

    Example:
        >>> import numpy as np
        >>> from ember.layers import Dense, TimeDistributed
        >>> TimeDistributed(Dense(4))(np.zeros((2, 5, 3))).shape
        (2, 5, 4)
    """

    input_spec = InputSpec(min_ndim=3)
    supports_masking = True
    config_holds_layers = True

    def __init__(self, layer, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(layer, Layer):
            raise TypeError(f"TimeDistributed expects a Layer, got {type(layer).__name__}")
        self.layer = layer

    def build(self, input_shape):
        self.layer._build_once([(None,) + tuple(input_shape[2:])])

    def call(self, x, training=False):
        n, t = x.shape[:2]
        y = self.layer(F.reshape(x, (n * t,) + tuple(x.shape[2:])), training=training)
        return F.reshape(y, (n, t) + tuple(y.shape[1:]))

    def compute_output_shape(self, input_shape):
        inner = self.layer.compute_output_shape((None,) + tuple(input_shape[2:]))
        return (input_shape[0], input_shape[1]) + tuple(inner[1:])

    def get_config(self):
        return {**super().get_config(), "layer": _serialize(self.layer)}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        return cls(_deserialize(config.pop("layer"), custom_objects), **config)


_MERGES = ("concat", "sum", "mul", "ave", None)


class Bidirectional(Layer):
    """Run a recurrent ``layer`` over the sequence forwards and a copy of it backwards, and merge the two.

    Args:
        layer: an LSTM, GRU or SimpleRNN.
        merge_mode: ``"concat"`` (default), ``"sum"``, ``"mul"``, ``"ave"``, or None (a list of both outputs).
        backward_layer: the backward layer (default: ``layer``'s config with ``go_backwards`` flipped).

    Weights: the forward layer's, then the backward layer's (Keras's order). With ``return_sequences`` the
    backward outputs are put back in time order before merging, as in Keras.

    Example:
        >>> import numpy as np
        >>> from ember.layers import LSTM, Bidirectional
        >>> Bidirectional(LSTM(4, return_sequences=True))(np.zeros((2, 5, 3))).shape
        (2, 5, 8)
    """

    input_spec = InputSpec(ndim=3)
    config_holds_layers = True

    def __init__(self, layer, merge_mode="concat", backward_layer=None, **kwargs):
        super().__init__(**kwargs)
        if not hasattr(layer, "go_backwards") or not hasattr(layer, "return_sequences"):
            raise TypeError(f"Bidirectional expects a recurrent layer (LSTM, GRU, SimpleRNN), got "
                            f"{type(layer).__name__}")
        if merge_mode not in _MERGES:
            raise ValueError(f"Bidirectional: merge_mode must be one of {_MERGES}, got {merge_mode!r}")
        self.merge_mode = merge_mode
        self.forward_layer = layer
        if backward_layer is None:
            cfg = layer.get_config()
            cfg.update(name=f"backward_{layer.name}", go_backwards=not layer.go_backwards)
            cfg.pop("batch_input_shape", None)
            backward_layer = type(layer).from_config(cfg)
        if backward_layer.return_sequences != layer.return_sequences:
            raise ValueError("Bidirectional: the forward and backward layers must agree on return_sequences")
        self.backward_layer = backward_layer
        self.return_sequences = layer.return_sequences
        self.return_state = getattr(layer, "return_state", False)
        if self.return_state:
            raise ValueError("Bidirectional: return_state=True on the wrapped layer is not supported")

    @property
    def supports_masking(self):
        return self.return_sequences

    def build(self, input_shape):
        self.forward_layer._build_once([tuple(input_shape)])
        self.backward_layer._build_once([tuple(input_shape)])

    def call(self, x, training=False):
        mask = get_mask(x)
        y_fwd = self.forward_layer(x, training=training)
        y_bwd = self.backward_layer(x, training=training)
        if self.return_sequences:
            y_bwd = F.getitem(y_bwd, (slice(None), slice(None, None, -1)))
        if self.merge_mode is None:
            return [y_fwd, y_bwd]
        if self.merge_mode == "concat":
            y = F.concatenate([y_fwd, y_bwd], axis=-1)
        elif self.merge_mode == "sum":
            y = y_fwd + y_bwd
        elif self.merge_mode == "mul":
            y = y_fwd * y_bwd
        else:
            y = (y_fwd + y_bwd) * 0.5
        return set_mask(y, mask) if self.return_sequences else y

    def compute_output_shape(self, input_shape):
        shape = self.forward_layer.compute_output_shape(input_shape)
        if self.merge_mode is None:
            return [shape, shape]
        if self.merge_mode == "concat":
            return tuple(shape[:-1]) + (shape[-1] * 2,)
        return shape

    def get_config(self):
        return {**super().get_config(), "layer": _serialize(self.forward_layer), "merge_mode": self.merge_mode,
                "backward_layer": _serialize(self.backward_layer)}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        layer = _deserialize(config.pop("layer"), custom_objects)
        backward = _deserialize(config.pop("backward_layer"), custom_objects)
        return cls(layer, backward_layer=backward, **config)
