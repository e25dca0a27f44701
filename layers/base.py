"""The ``Layer`` base class, input specs, and the symbolic tensors of the functional API."""
import contextlib
import contextvars
import functools
import re

import numpy as np

from ember.engine import config
from ember.engine import functional as F
from ember.engine.tensor import Tensor
from ember.layers import initializers, regularizers

# every Layer class by its qualified name ("module.QualName"): names that cannot collide
LAYER_CLASSES = {}
# ember's own layer classes by their bare name, the name model files use ("Dense"); a user's class of
# the same name does not replace them (it loads through custom_objects)
BUILTIN_LAYERS = {}
_NAME_COUNTS = {}


def register_layer_class(cls):
    """Record ``cls`` under its qualified name, and under its bare name when it is ember's own."""
    qualified = f"{cls.__module__}.{cls.__qualname__}"
    LAYER_CLASSES[qualified] = cls
    if cls.__module__.startswith("ember."):
        known = BUILTIN_LAYERS.get(cls.__name__)
        if known is not None and f"{known.__module__}.{known.__qualname__}" != qualified:
            raise TypeError(f"two ember layer classes are named {cls.__name__!r}: {known.__module__} and "
                            f"{cls.__module__}; model files could not tell them apart")
        BUILTIN_LAYERS[cls.__name__] = cls


def _snake(name):
    # a word starts at an upper-case letter after a lower-case one or a digit, or at the last capital of an
    # acronym before a lower-case letter: LSTM -> lstm, SimpleRNN -> simple_rnn, Conv2D -> conv2d (Keras's names)
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()
    return words.replace("2_d", "2d").replace("1_d", "1d").replace("3_d", "3d")


# while a model is rebuilt from a file: how many weight elements may still be created (None: no limit)
_WEIGHT_BUDGET = contextvars.ContextVar("ember_weight_budget", default=None)
# while the outermost layer call runs: the list of (layer, loss) pairs that its activity penalties and
# add_loss tensors (and its sublayers') go into
_CALL_LOSSES = contextvars.ContextVar("ember_call_losses", default=None)


def _loss_tensor(value, what):
    """An added loss as a scalar Tensor (the sum of its elements, as Keras aggregates one)."""
    if not isinstance(value, Tensor):
        array = np.asarray(value)
        if array.dtype.kind not in "biuf":
            raise TypeError(f"{what}: expected a Tensor (or a number), got {value!r}")
        value = Tensor(array.astype(config.get_default_dtype()))
    return F.sum(value) if value.ndim else value


class WeightBudgetExceeded(ValueError):
    """A layer asked for more weights than the file being loaded holds."""


@contextlib.contextmanager
def weight_budget(elements):
    """Within this block, layers may create at most ``elements`` weight elements in all (checked before
    anything is allocated): an architecture read from a file cannot ask for more than the file holds."""
    token = _WEIGHT_BUDGET.set([int(elements)])
    try:
        yield
    finally:
        _WEIGHT_BUDGET.reset(token)


def _spend_weight_budget(layer_name, name, shape):
    budget = _WEIGHT_BUDGET.get()
    if budget is None:
        return
    count = 1
    for n in shape:
        count *= int(n)
    if count > budget[0]:
        raise WeightBudgetExceeded(f"layer '{layer_name}' asks for weight '{name}' of shape {tuple(shape)} "
                                   f"({count} elements), more than the {budget[0]} the file still holds")
    budget[0] -= count


def unique_name(prefix):
    _NAME_COUNTS[prefix] = _NAME_COUNTS.get(prefix, 0) + 1
    n = _NAME_COUNTS[prefix]
    return prefix if n == 1 else f"{prefix}_{n - 1}"


def to_tuple(value, n, what):
    """An int or a sequence of n ints as a tuple of n ints (Keras' conv argument convention)."""
    if isinstance(value, (int, np.integer)):
        return (int(value),) * n
    value = tuple(int(v) for v in value)
    if len(value) != n:
        raise ValueError(f"{what} must be an int or {n} ints, got {value}")
    return value


_DIM_ORDERING = {"th": "channels_first", "tf": "channels_last", "default": "channels_last"}


def _keras1_value(old, value):
    if old == "dim_ordering":
        if value not in _DIM_ORDERING:
            raise ValueError(f"dim_ordering must be 'th', 'tf' or 'default', got {value!r}")
        return _DIM_ORDERING[value]
    if old == "input_dim":
        return (int(value),)
    return value


# Keras 1's argument names (also BigDL's Keras API) -> the names of today's Keras
KERAS1_NAMES = {"init": "kernel_initializer", "inner_init": "recurrent_initializer",
                "W_regularizer": "kernel_regularizer", "U_regularizer": "recurrent_regularizer",
                "b_regularizer": "bias_regularizer", "bias": "use_bias", "border_mode": "padding",
                "subsample": "strides", "dim_ordering": "data_format", "nb_filter": "filters", "output_dim": "units",
                "input_dim": "input_shape", "inner_activation": "recurrent_activation", "dropout_W": "dropout",
                "dropout_U": "recurrent_dropout", "filter_length": "kernel_size", "subsample_length": "strides",
                "pool_length": "pool_size", "stride": "strides", "p": "rate"}


def keras1_arguments(*names, **renames):
    """Let a layer's ``__init__`` take Keras 1's spellings of its arguments (``Dense(output_dim=10,
    init="he_normal", W_regularizer=l2(1e-4))``, ``border_mode``, ``subsample``, ``dim_ordering="th"``...): each
    is renamed to today's Keras name before the constructor runs (``dim_ordering`` "th"/"tf" becomes
    ``data_format`` "channels_first"/"channels_last", ``input_dim=n`` becomes ``input_shape=(n,)``). ``names``
    pick entries of ``KERAS1_NAMES``; ``renames`` add layer-specific ones. Giving both spellings is an error.

    Example:
        >>> from ember.layers import Dense, Sequential
        >>> layer = Dense(output_dim=3, init="zeros", input_dim=4)
        >>> layer.units, type(layer.kernel_initializer).__name__, Sequential([layer]).count_params()
        (3, 'Zeros', 15)
    """
    table = {n: KERAS1_NAMES[n] for n in names}
    table.update(renames)

    def wrap(init):
        @functools.wraps(init)
        def __init__(self, *args, **kwargs):
            spec = type(self).input_spec
            if "input_dim" in table and "input_dim" in kwargs and spec is not None and spec.ndim == 3:
                # a sequence layer's input_dim (and input_length): input_shape (input_length, input_dim)
                kwargs["input_shape"] = (kwargs.pop("input_length", None), int(kwargs.pop("input_dim")))
            for old, new in table.items():
                if old in kwargs:
                    if new in kwargs:
                        raise TypeError(f"{type(self).__name__}: give {new!r} or its Keras 1 name {old!r}, not both")
                    kwargs[new] = _keras1_value(old, kwargs.pop(old))
            return init(self, *args, **kwargs)

        return __init__

    return wrap


class InputSpec:
    """What a layer accepts: exact rank (with batch), minimum rank, fixed sizes on some axes.

    Args:
        ndim: the exact rank, batch axis included, or None.
        min_ndim: the minimum rank, or None.
        axes: a dict {axis: size} of sizes the input must have.

    Example:
        >>> import numpy as np
        >>> from ember.layers import Layer
        >>> from ember.layers.base import InputSpec
        >>> class Rank3(Layer):
        ...     input_spec = InputSpec(ndim=3)
        ...     def call(self, x, training=False):
        ...         return x
        >>> try:
        ...     Rank3(name="r")(np.zeros((2, 3)))
        ... except ValueError as e:
        ...     print(e)
        Layer 'r' (Rank3) expected input of rank 3 (batch included), got shape (2, 3)
    """

    def __init__(self, ndim=None, min_ndim=None, axes=None):
        self.ndim, self.min_ndim, self.axes = ndim, min_ndim, dict(axes or {})

    def check(self, layer, shape):
        where = f"Layer '{layer.name}' ({type(layer).__name__})"
        if self.ndim is not None and len(shape) != self.ndim:
            raise ValueError(f"{where} expected input of rank {self.ndim} (batch included), got shape {shape}")
        if self.min_ndim is not None and len(shape) < self.min_ndim:
            raise ValueError(f"{where} expected input of rank >= {self.min_ndim}, got shape {shape}")
        for axis, size in self.axes.items():
            if shape[axis] is not None and shape[axis] != size:
                raise ValueError(f"{where} expected axis {axis} of size {size}, got input shape {shape}")


class SymbolicTensor:
    """A placeholder in the functional API: a shape (batch = None) and the layer call that makes it.

    Args:
        shape: the shape, with None for the batch axis.
        dtype: the dtype of the values it stands for.
        layer: the layer whose call makes it.
        node_index: which call of that layer.
        tensor_index: which output of that call.

    Example:
        >>> import numpy as np
        >>> from ember.layers import Input, Dense
        >>> x = Dense(3, name="d")(Input(shape=(4,)))
        >>> x
        <SymbolicTensor shape=(None, 3) from 'd'>
    """

    def __init__(self, shape, dtype, layer, node_index, tensor_index=0):
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)
        self.history = (layer, node_index, tensor_index)

    @property
    def ndim(self):
        return len(self.shape)

    def __repr__(self):
        return f"<SymbolicTensor shape={self.shape} from '{self.history[0].name}'>"


class Node:
    """One call of a layer on symbolic inputs (``inputs`` keeps the call's single/list structure)."""

    def __init__(self, layer, inputs, outputs):
        self.layer, self.inputs, self.outputs = layer, inputs, outputs

    @property
    def input_list(self):
        return list(self.inputs) if isinstance(self.inputs, (list, tuple)) else [self.inputs]


def get_mask(tensor):
    """The (batch, steps) boolean mask attached to ``tensor`` by a masking layer, or None."""
    return getattr(tensor, "_keras_mask", None)


def set_mask(tensor, mask):
    """Attach ``mask`` ((batch, steps) booleans, or None) to ``tensor``; returns ``tensor``."""
    if isinstance(tensor, Tensor):
        tensor._keras_mask = mask
    return tensor


def _flatten(x):
    return list(x) if isinstance(x, (list, tuple)) else [x]


def _map_structure(fn, x):
    return [fn(v) for v in x] if isinstance(x, (list, tuple)) else fn(x)


class Layer:
    """Base class of everything with (possibly zero) weights that maps tensors to tensors.

    Subclasses implement ``build(input_shape)`` (create weights with ``add_weight``), ``call(x)``
    and ``compute_output_shape``; ``get_config`` returns the constructor arguments. A layer called
    on a ``SymbolicTensor`` records a graph node (functional API); on a ``Tensor`` or array it computes.

    Args:
        name: unique name (default: from the class name).
        trainable: whether the weights receive updates.
        input_shape: shape without the batch axis, to build eagerly (first layer of a model).
        batch_input_shape, batch_size: the same with the batch axis / a fixed batch size.
        dtype: the dtype of the weights (default: the engine's default float).

    Example:
        >>> import numpy as np
        >>> from ember.layers import Layer
        >>> class Scale(Layer):
        ...     def build(self, input_shape):
        ...         self.w = self.add_weight("w", (input_shape[-1],), initializer="ones")
        ...     def call(self, x, training=False):
        ...         return x * self.w
        ...     def compute_output_shape(self, input_shape):
        ...         return input_shape
        >>> layer = Scale()
        >>> layer(np.array([[1.0, 2.0]])).numpy().tolist(), layer.count_params()
        ([[1.0, 2.0]], 2)
    """

    input_spec = None
    _dtype_kind = "f"  # inputs are cast to the layer's floating dtype
    # a mask on the input (Embedding(mask_zero=True), Masking) is attached to the output unchanged (layers that
    # keep the time axis: Dense, Dropout, Activation...); layers that consume or make masks set it themselves
    supports_masking = False
    # activations this layer can apply itself (``call(x, activation=name)``): a model runs such a
    # layer and the Activation layer after it as one op when nothing else reads the layer's output
    fusable_activations = ()
    # whether a call computes its output from its inputs and weights through ember ops only (no state
    # updated, no randomness, no arrays made in Python from the data): a model of such layers may have
    # its training call recorded once and replayed (``ember.engine.replay``); see ``replayable``
    replay_safe = False

    def replayable(self):
        """Whether this layer's training calls may be replayed from a recording: its own class (not only a
        parent class, whose ``call`` a subclass may replace) says ``replay_safe``, and no activity regularizer."""
        return type(self).__dict__.get("replay_safe", False) and self.activity_regularizer is None

    # whether this layer's backward pass may read its own output (so another op must not overwrite it); True
    # unless a layer knows better (BatchNormalization without a fused activation keeps only its input)
    def keeps_output(self, activation=None):
        return True

    # penalties (see ``losses``); set per instance by __init__, class defaults for layers made without it
    activity_regularizer = None
    _weight_regularizers = ()
    _outermost_call = True
    _call_losses = ()  # (layer, loss) pairs of the last call this layer took part in (shared with that call)
    _loss_callables = ()  # add_loss(zero-argument function): evaluated whenever the losses are read

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        register_layer_class(cls)

    def __init__(self, name=None, trainable=True, input_shape=None, batch_input_shape=None, dtype=None,
                 batch_size=None, activity_regularizer=None, **kwargs):
        if kwargs:
            raise TypeError(f"{type(self).__name__}: unexpected keyword argument(s) {sorted(kwargs)}")
        object.__setattr__(self, "_sublayers", {})
        self.name = name or unique_name(_snake(type(self).__name__))
        self.trainable = trainable
        self.built = False
        self.training = True
        self._weights = []  # (Tensor, trainable, initializer) in creation order
        self._weight_regularizers = []  # (Tensor, regularizer)
        self._call_losses = []
        self.activity_regularizer = regularizers.get(activity_regularizer)
        self._inbound_nodes = []
        self.dtype = np.dtype(dtype) if dtype is not None else None
        if batch_input_shape is not None:
            self._batch_input_shape = tuple(batch_input_shape)
        elif input_shape is not None:
            self._batch_input_shape = (batch_size,) + tuple(input_shape)
        else:
            self._batch_input_shape = None

    def __setattr__(self, key, value):
        if isinstance(value, Layer):
            self._sublayers[key] = value
        object.__setattr__(self, key, value)
        if key == "trainable" and "_weights" in self.__dict__:
            for tensor, tr, _ in self._weights:
                tensor.requires_grad = bool(value and tr)
            for layer in self.layers:
                layer.trainable = value

    # ---- weights ----
    def add_weight(self, name, shape, initializer="glorot_uniform", trainable=True, regularizer=None):
        """Create, initialise and track a weight; returns its Tensor. ``regularizer`` (a name or a
        ``Regularizer``) adds its penalty on this weight to the training loss (see ``losses``)."""
        _spend_weight_budget(self.name, name, shape)
        init = initializers.get(initializer)
        dtype = self.dtype or config.get_default_dtype()
        tensor = Tensor(init(shape, dtype), requires_grad=trainable and self.trainable, name=f"{self.name}/{name}")
        self._weights.append((tensor, trainable, init))
        regularizer = regularizers.get(regularizer)
        if regularizer is not None:
            self._weight_regularizers.append((tensor, regularizer))
        return tensor

    def add_loss(self, loss):
        """Add a loss to the training loss (Keras's ``add_loss``); ``losses`` lists it, ``fit`` adds it.

        - A Tensor computed inside ``call`` (the usual use): counted for that call, like an activity
          penalty, locally and on Spark. A Tensor with several elements counts as its sum (as Keras).
        - A Tensor added outside a call: counted until this layer's next call (Keras 3's rule).
        - A function of no arguments (Keras 2's ``model.add_loss(lambda: ...)``, e.g. a penalty on
          weights): called every time the losses are read, so it follows the weights.
        - On a functional ``Model``: a symbolic tensor of its graph (Keras 2's ``model.add_loss(kl)``),
          computed in every call of the model.
        A list adds each. Losses added this way are not written into saved model files.

        Example:
            >>> import numpy as np
            >>> from ember.engine import functional as F
            >>> from ember.layers import Dense
            >>> class Sparse(Dense):
            ...     def call(self, x, training=False):
            ...         out = super().call(x, training)
            ...         self.add_loss(F.mean(F.abs(out)) * 0.1)
            ...         return out
            >>> layer = Sparse(2, kernel_initializer="ones")
            >>> _ = layer(np.ones((4, 3)))
            >>> [round(float(p.item()), 4) for p in layer.losses]  # 0.1 * mean |3|
            [0.3]
        """
        if isinstance(loss, (list, tuple)):
            for item in loss:
                self.add_loss(item)
            return
        if isinstance(loss, SymbolicTensor):
            raise ValueError(f"Layer '{self.name}' ({type(self).__name__}): add_loss of a symbolic tensor works on "
                             "the functional Model whose graph computes it (model.add_loss(tensor)); inside a "
                             "layer's call, add_loss takes the concrete Tensor")
        if callable(loss) and not isinstance(loss, Tensor):
            if "_loss_callables" not in self.__dict__:
                self._loss_callables = []
            self._loss_callables.append(loss)
            return
        loss = _loss_tensor(loss, f"Layer '{self.name}': add_loss")
        collected = _CALL_LOSSES.get()
        if collected is not None:
            collected.append((self, loss))
        else:
            self._call_losses = list(self._call_losses) + [(self, loss)]

    @property
    def losses(self):
        """The penalties to add to the training loss (Keras's ``layer.losses``): every weight regularizer's
        penalty on the current weights (of this layer and its sublayers) and every ``add_loss`` function's
        value, then the activity penalties and ``add_loss`` tensors of the last call, as scalar Tensors that
        ``backward`` reaches the weights through.

        Example:
            >>> import numpy as np
            >>> from ember.layers import Dense
            >>> layer = Dense(2, kernel_initializer="ones", kernel_regularizer="l2", activity_regularizer="l1")
            >>> _ = layer(np.ones((4, 3)))
            >>> [round(float(p.item()), 4) for p in layer.losses]  # 0.01 * 6 ones; 0.01 * (4 * 2 * 3) / 4
            [0.06, 0.06]
        """
        found, seen = [], set()

        def weight_penalties(layer):
            if id(layer) in seen:
                return
            seen.add(id(layer))
            for tensor, regularizer in layer._weight_regularizers:
                found.append(regularizer(tensor))
            for fn in layer._loss_callables:
                found.append(_loss_tensor(fn(), f"Layer '{layer.name}': the add_loss function {fn!r}"))
            for sub in layer._sublayers.values():
                weight_penalties(sub)

        weight_penalties(self)
        return found + self._last_call_losses(seen)

    def _last_call_losses(self, own):
        """The activity penalties and add_loss tensors of this layer's last call that came from the layers
        whose ids are in ``own`` (this one and its sublayers), as Keras's ``losses`` of a sublayer."""
        if self._outermost_call:  # everything its call collected (a layer called inside a Lambda too)
            return [loss for _, loss in self._call_losses]
        return [loss for layer, loss in self._call_losses if id(layer) in own]

    def penalty(self):
        """The sum of ``losses`` as one scalar Tensor, or None when there is no penalty."""
        if not self._call_losses and not self._has_standing_losses():
            return None
        return regularizers.total_penalty(self.losses)

    def loss_function_holders(self):
        """The names of the layers (this one and its sublayers) holding ``add_loss`` functions: they stay
        in this process (a model file or a Spark executor's copy of the model does not carry them)."""
        names = [self.name] if self._loss_callables else []
        for sub in self._sublayers.values():
            names += [n for n in sub.loss_function_holders() if n not in names]
        return names

    def _has_standing_losses(self):
        """Whether this layer or a sublayer has weight regularizers or add_loss functions."""
        return bool(self._weight_regularizers) or bool(self._loss_callables) or any(
            s._has_standing_losses() for s in self._sublayers.values())

    def reset_parameters(self):
        """Re-draw every weight from its initializer, in place (views stay valid)."""
        for tensor, _, init in self._weights:
            tensor.data[...] = init(tensor.shape, tensor.dtype)
        for layer in self._sublayers.values():
            layer.reset_parameters()

    @property
    def layers(self):
        return list(self._sublayers.values())

    @property
    def trainable_weights(self):
        if not self.trainable:
            return []
        own = [t for t, tr, _ in self._weights if tr]
        return _unique(own + [w for layer in self.layers for w in layer.trainable_weights])

    @property
    def non_trainable_weights(self):
        if not self.trainable:
            return _unique([t for t, _, _ in self._weights] + [w for layer in self.layers for w in layer.weights])
        own = [t for t, tr, _ in self._weights if not tr]
        return _unique(own + [w for layer in self.layers for w in layer.non_trainable_weights])

    @property
    def weights(self):
        """All weights, Keras order: trainable first, then non-trainable."""
        return _unique(self.trainable_weights + self.non_trainable_weights)

    def get_weights(self):
        """Copies of the weights as NumPy arrays, in ``weights`` order."""
        return [np.array(w.numpy(), copy=True) for w in self.weights]

    def set_weights(self, arrays):
        """Copy ``arrays`` into the weights (shapes must match exactly)."""
        weights = self.weights
        if len(arrays) != len(weights):
            raise ValueError(f"{self.name}.set_weights: expected {len(weights)} arrays, got {len(arrays)}")
        for w, a in zip(weights, arrays):
            a = np.asarray(a)
            if a.shape != w.shape:
                raise ValueError(f"{self.name}.set_weights: weight '{w.name}' has shape {w.shape}, got {a.shape}")
            w.data[...] = a

    def count_params(self):
        if not self.built:
            raise ValueError(f"Layer '{self.name}' is not built yet: call it on an input or give input_shape")
        return int(sum(w.size for w in self.weights))

    # ---- training mode ----
    def train(self, mode=True):
        """Set training mode (Dropout drops, BatchNormalization uses batch statistics)."""
        self.training = bool(mode)
        for layer in self.layers:
            layer.train(mode)
        return self

    def eval(self):
        """Set inference mode."""
        return self.train(False)

    # ---- building and calling ----
    def build(self, input_shape):
        self.built = True

    def call(self, inputs, training=False):  # pragma: no cover - interface
        raise NotImplementedError

    def compute_output_shape(self, input_shape):
        """Shape of the output for ``input_shape`` (batch axis None). Default: run a dummy batch."""
        shapes = input_shape if isinstance(input_shape, list) else [input_shape]
        dummies = [Tensor(np.zeros(tuple(1 if d is None else d for d in s), dtype=config.get_default_dtype()))
                   for s in shapes]
        with config.no_grad():
            out = self.call(dummies if isinstance(input_shape, list) else dummies[0], training=False)
        return _map_structure(lambda t: (None,) + tuple(t.shape[1:]), out)

    def _check_input(self, shapes):
        if self.input_spec is not None:
            for s in shapes:
                self.input_spec.check(self, s)

    def _build_once(self, shapes):
        if not self.built:
            self._check_input(shapes)
            self.build(shapes if len(shapes) > 1 or self._takes_list else shapes[0])
            self.built = True

    _takes_list = False

    def __call__(self, inputs, training=None, **kwargs):
        flat = _flatten(inputs)
        if flat and all(isinstance(x, SymbolicTensor) for x in flat):
            return self._call_symbolic(inputs, **kwargs)
        if any(isinstance(x, SymbolicTensor) for x in flat):
            raise TypeError(f"Layer '{self.name}': cannot mix symbolic and concrete inputs")
        masks = [get_mask(x) for x in flat]
        tensors = [set_mask(self._prepare(x), m) if m is not None else self._prepare(x) for x, m in zip(flat, masks)]
        self._build_once([tuple(t.shape) for t in tensors])
        self._check_input([tuple(t.shape) for t in tensors])
        if config.check_numerics_enabled():
            for t in tensors:
                if t.dtype.kind == "f" and not np.all(np.isfinite(t.numpy())):
                    raise ValueError(f"Layer '{self.name}' ({type(self).__name__}) got NaN or infinite input")
        x = tensors if isinstance(inputs, (list, tuple)) else tensors[0]
        mode = self.training if training is None else bool(training)
        collected = _CALL_LOSSES.get()
        token = _CALL_LOSSES.set([]) if collected is None else None
        # every layer of the call shares its list of (layer, loss) pairs: its ``losses`` picks its own
        self._call_losses = _CALL_LOSSES.get()
        self._outermost_call = token is not None
        try:
            out = self.call(x, training=mode, **kwargs)
            if self.activity_regularizer is not None:
                _CALL_LOSSES.get().extend((self, regularizers.activity_penalty(self.activity_regularizer, o))
                                          for o in _flatten(out) if isinstance(o, Tensor))
        finally:
            if token is not None:
                _CALL_LOSSES.reset(token)
        if self.supports_masking and len(masks) == 1 and masks[0] is not None and get_mask(out) is None \
                and isinstance(out, Tensor) and out.shape[:2] == tensors[0].shape[:2]:
            set_mask(out, masks[0])
        return out

    def _prepare(self, x):
        t = x if isinstance(x, Tensor) else Tensor(np.asarray(x) if not hasattr(x, "__cuda_array_interface__") else x)
        kind = t.dtype.kind
        if kind not in "biuf":
            raise TypeError(f"Layer '{self.name}' ({type(self).__name__}) expects numeric input, got dtype {t.dtype}")
        if self._dtype_kind == "f":
            want = self.dtype or config.get_default_dtype()
            if t.dtype != want:
                t = F.cast(t, want)
        return t

    def _call_symbolic(self, inputs, **kwargs):
        flat = _flatten(inputs)
        shapes = [x.shape for x in flat]
        self._build_once(shapes)
        self._check_input(shapes)
        out_shape = self.compute_output_shape(shapes if isinstance(inputs, (list, tuple)) else shapes[0])
        dtype = self.dtype or config.get_default_dtype()
        index = len(self._inbound_nodes)
        if isinstance(out_shape, list):
            outputs = [SymbolicTensor(s, dtype, self, index, i) for i, s in enumerate(out_shape)]
        else:
            outputs = SymbolicTensor(out_shape, dtype, self, index, 0)
        self._inbound_nodes.append(Node(self, inputs, outputs))
        return outputs

    # ---- config ----
    def get_config(self):
        """Constructor arguments as a JSON-serialisable dict."""
        cfg = {"name": self.name, "trainable": self.trainable}
        if self._batch_input_shape is not None:
            cfg["batch_input_shape"] = list(self._batch_input_shape)
        if self.dtype is not None:
            cfg["dtype"] = self.dtype.name
        if self.activity_regularizer is not None:
            cfg["activity_regularizer"] = regularizers.serialize(self.activity_regularizer)
        return cfg

    @classmethod
    def from_config(cls, config_dict):
        return cls(**config_dict)

    def __repr__(self):
        cfg = self.get_config()
        cfg.pop("trainable", None)
        args = ", ".join(f"{k}={v!r}" for k, v in cfg.items())
        return f"{type(self).__name__}({args})"


def _unique(tensors):
    seen, out = set(), []
    for t in tensors:
        if id(t) not in seen:
            seen.add(id(t))
            out.append(t)
    return out
