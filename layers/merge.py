"""Merge layers: Add, Subtract, Multiply, Average, Maximum, Minimum, Concatenate; Keras 1's and BigDL's
``Merge``/``merge`` (by mode)."""
from ember.engine import functional as F
from ember.engine.tensor import as_tensor
from ember.layers.base import Layer


class _Merge(Layer):
    _takes_list = True

    def _check_shapes(self, shapes):
        if not isinstance(shapes, (list, tuple)) or len(shapes) < 2:
            raise ValueError(f"Layer '{self.name}' ({type(self).__name__}) expects a list of at least 2 inputs")
        first = shapes[0]
        for s in shapes[1:]:
            if len(s) != len(first) or any(a is not None and b is not None and a != b
                                          for a, b in zip(first[1:], s[1:])):
                raise ValueError(f"Layer '{self.name}' ({type(self).__name__}) expects inputs of equal shape, "
                                 f"got {[tuple(x) for x in shapes]}")

    def build(self, input_shape):
        self._check_shapes(input_shape)

    def __call__(self, inputs, training=None, **kwargs):
        if not isinstance(inputs, (list, tuple)):
            raise ValueError(f"Layer '{self.name}' ({type(self).__name__}) expects a list of inputs, got one")
        if self.built:
            self._check_shapes([tuple(x.shape) for x in inputs])
        return super().__call__(list(inputs), training=training, **kwargs)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0])

    def call(self, inputs, training=False):
        out = inputs[0]
        for x in inputs[1:]:
            out = self._merge(out, x)
        return out


class Add(_Merge):
    """Elementwise sum of a list of inputs of equal shape.

    Shape: a list of (N, ...) of one shape -> (N, ...).

    Example:
        >>> import numpy as np
        >>> from ember.layers import Add
        >>> Add()([np.array([[1.0, 2.0]]), np.array([[10.0, 20.0]])]).numpy().tolist()
        [[11.0, 22.0]]
    """

    fusable_activations = ("relu",)

    def _merge(self, a, b):
        return a + b

    def call(self, inputs, training=False, activation=None, overwrite=None):
        """``activation="relu"``: the ReLU that follows in the graph, in the same op as the last sum.
        ``overwrite``: the index of an input (of two) whose array the result may be written over (the model
        passes it when nothing else reads that input and its layer's backward does not keep it)."""
        if activation is None:
            return super().call(inputs, training)
        if activation != "relu":
            raise ValueError(f"Layer '{self.name}' (Add): activation must be None or 'relu', got {activation!r}")
        if overwrite is not None and len(inputs) == 2:
            first, last = inputs[overwrite], inputs[1 - overwrite]  # a + b == b + a exactly
            if first.shape == last.shape and first.dtype == last.dtype:
                return F.add_relu(first, last, overwrite=True)
        out = inputs[0]
        for x in inputs[1:-1]:
            out = out + x
        last = inputs[-1]
        if out.shape != last.shape or out.dtype != last.dtype:
            return F.relu(out + last)
        return F.add_relu(out, last)


class Subtract(_Merge):
    """``a - b`` for exactly two inputs.

    Shape: two (N, ...) of one shape -> (N, ...).

    Example:
        >>> import numpy as np
        >>> from ember.layers import Subtract
        >>> Subtract()([np.array([[5.0, 5.0]]), np.array([[1.0, 2.0]])]).numpy().tolist()
        [[4.0, 3.0]]
    """

    def _merge(self, a, b):
        return a - b


class Multiply(_Merge):
    """Elementwise product of a list of inputs of equal shape.

    Shape: a list of (N, ...) of one shape -> (N, ...).

    Example:
        >>> import numpy as np
        >>> from ember.layers import Multiply
        >>> Multiply()([np.array([[2.0, 3.0]]), np.array([[4.0, 5.0]])]).numpy().tolist()
        [[8.0, 15.0]]
    """

    def _merge(self, a, b):
        return a * b


class Maximum(_Merge):
    """Elementwise maximum of a list of inputs of equal shape.

    Shape: a list of (N, ...) of one shape -> (N, ...).

    Example:
        >>> import numpy as np
        >>> from ember.layers import Maximum
        >>> Maximum()([np.array([[1.0, 5.0]]), np.array([[3.0, 2.0]])]).numpy().tolist()
        [[3.0, 5.0]]
    """
    def _merge(self, a, b):
        return F.maximum(a, b)


class Minimum(_Merge):
    """Elementwise minimum of a list of inputs of equal shape.

    Shape: a list of (N, ...) of one shape -> (N, ...).

    Example:
        >>> import numpy as np
        >>> from ember.layers import Minimum
        >>> Minimum()([np.array([[1.0, 5.0]]), np.array([[3.0, 2.0]])]).numpy().tolist()
        [[1.0, 2.0]]
    """
    def _merge(self, a, b):
        return F.minimum(a, b)


class Average(_Merge):
    """Elementwise mean of a list of inputs of equal shape.

    Shape: a list of (N, ...) of one shape -> (N, ...).

    Example:
        >>> import numpy as np
        >>> from ember.layers import Average
        >>> Average()([np.array([[1.0, 2.0]]), np.array([[3.0, 6.0]])]).numpy().tolist()
        [[2.0, 4.0]]
    """
    def call(self, inputs, training=False):
        return super().call(inputs) / len(inputs)

    def _merge(self, a, b):
        return a + b


class Concatenate(_Merge):
    """Joins a list of inputs along ``axis`` (default the last); other axes must match.

    Args:
        axis: the axis to join on.

    Shape: (N, ..., a), (N, ..., b) -> (N, ..., a + b) for the last axis.

    Example:
        >>> import numpy as np
        >>> from ember.layers import Concatenate
        >>> Concatenate()([np.zeros((2, 3)), np.ones((2, 4))]).shape
        (2, 7)
    """

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.axis = int(axis)

    def _check_shapes(self, shapes):
        if not isinstance(shapes, (list, tuple)) or len(shapes) < 2:
            raise ValueError(f"Layer '{self.name}' (Concatenate) expects a list of at least 2 inputs")
        ndim = len(shapes[0])
        axis = self.axis % ndim
        for s in shapes[1:]:
            if len(s) != ndim or any(i != axis and i != 0 and a is not None and b is not None and a != b
                                     for i, (a, b) in enumerate(zip(shapes[0], s))):
                raise ValueError(f"Layer '{self.name}' (Concatenate) expects inputs matching on all axes but "
                                 f"{self.axis}, got {[tuple(x) for x in shapes]}")

    def call(self, inputs, training=False):
        return F.concatenate(inputs, axis=self.axis % inputs[0].ndim)

    def compute_output_shape(self, input_shape):
        axis = self.axis % len(input_shape[0])
        out = list(input_shape[0])
        sizes = [s[axis] for s in input_shape]
        out[axis] = None if None in sizes else sum(sizes)
        return tuple(out)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


_MERGE_MODES = ("sum", "mul", "concat", "ave", "max", "dot", "cos")
_SIMPLE_MODES = {"sum": Add, "mul": Multiply, "ave": Average, "max": Maximum}


def _input_shape_of(layer):
    """The batch input shape a layer or single-input model was given, or None."""
    if getattr(layer, "_batch_input_shape", None) is not None:
        return tuple(layer._batch_input_shape)
    inputs = getattr(layer, "inputs", None) if getattr(layer, "_nodes", None) is not None else None
    return tuple(inputs[0].shape) if inputs is not None and len(inputs) == 1 else None


class Merge(Layer):
    """Keras 1's and BigDL's ``Merge``: joins a list of inputs by ``mode``.

    Modes: ``"sum"``, ``"mul"``, ``"ave"``, ``"max"`` (elementwise, inputs of one shape, as ``Add``,
    ``Multiply``, ``Average``, ``Maximum``), ``"concat"`` (along ``concat_axis``, as ``Concatenate``),
    ``"dot"`` (two (N, d) inputs -> (N, 1): ``sum(a * b)`` per sample) and ``"cos"`` (two (N, d) inputs
    -> (N, 1, 1): ``a.b / max(|a| |b|, 1e-7)``, the shapes of Keras 1 and BigDL).

    With ``layers`` (Keras 1's ``Merge([left_branch, right_branch], mode="concat")``), input ``i`` goes
    through ``layers[i]`` first; as the first layer of a ``Sequential`` the model takes one array per
    branch (each branch needs its input shape).

    Args:
        layers: optional list of branch layers or models, one per input.
        mode: one of the modes above (a function is not supported: use ``Lambda`` on the list).
        concat_axis: the axis of ``"concat"``.
        dot_axes: Keras 1's axes of ``"dot"``/``"cos"``; only the feature axis of 2-D inputs (-1 or 1).

    Example:
        >>> import numpy as np
        >>> from ember.layers import Merge
        >>> a, b = np.array([[1.0, 2.0]]), np.array([[3.0, 4.0]])
        >>> Merge(mode="sum")([a, b]).numpy().tolist(), Merge(mode="dot")([a, b]).numpy().tolist()
        ([[4.0, 6.0]], [[11.0]])
        >>> Merge(mode="concat")([a, b]).shape, Merge(mode="cos")([a, a]).shape
        ((1, 4), (1, 1, 1))
    """

    _takes_list = True
    config_holds_layers = True

    def __init__(self, layers=None, mode="sum", concat_axis=-1, dot_axes=-1, **kwargs):
        if callable(mode) or mode not in _MERGE_MODES:
            raise ValueError(f"Merge: mode must be one of {list(_MERGE_MODES)}, got {mode!r} (for a function, "
                             "apply a Lambda layer to the list of inputs)")
        if dot_axes not in (-1, 1, [1, 1], (1, 1), [-1, -1], (-1, -1)):
            raise ValueError(f"Merge: dot_axes {dot_axes!r}: only the feature axis of 2-D inputs (-1) is supported")
        branches = list(layers) if layers is not None else []
        if layers is not None and (len(branches) < 2 or not all(isinstance(b, Layer) for b in branches)):
            raise ValueError(f"Merge: layers must be a list of at least 2 layers or models, got {layers!r}")
        if branches and "input_shape" not in kwargs and "batch_input_shape" not in kwargs:
            shapes = [_input_shape_of(b) for b in branches]
            if all(s is not None for s in shapes):
                kwargs["batch_input_shape"] = shapes
        shapes = kwargs.pop("batch_input_shape", None)
        given = kwargs.pop("input_shape", None)  # BigDL's input_shape: one shape per input, without the batch
        if given is not None:
            if not all(isinstance(s, (list, tuple)) for s in given):
                raise ValueError(f"Merge: input_shape takes one shape per input, e.g. [(4,), (4,)], got {given!r}")
            shapes = [(None,) + tuple(s) for s in given]
        super().__init__(**kwargs)
        self.mode, self.concat_axis, self.dot_axes = mode, int(concat_axis), dot_axes
        self.branches = branches
        for i, branch in enumerate(branches):
            setattr(self, f"branch_{i}", branch)
        self._batch_input_shape = [tuple(s) for s in shapes] if shapes is not None else None
        join = _SIMPLE_MODES[mode]() if mode in _SIMPLE_MODES else (
            Concatenate(axis=concat_axis) if mode == "concat" else None)
        object.__setattr__(self, "_join", join)  # a helper holding no weights, not a sublayer

    def _branch_shapes(self, shapes):
        if not self.branches:
            return [tuple(s) for s in shapes]
        if len(shapes) != len(self.branches):
            raise ValueError(f"Layer '{self.name}' (Merge): {len(self.branches)} branches but {len(shapes)} inputs")
        return [tuple(b.compute_output_shape(tuple(s))) for b, s in zip(self.branches, shapes)]

    def build(self, input_shape):
        if not isinstance(input_shape, (list, tuple)) or len(input_shape) < 2:
            raise ValueError(f"Layer '{self.name}' (Merge) expects a list of at least 2 inputs")
        for branch, shape in zip(self.branches, input_shape):
            if not branch.built:
                branch.build(tuple(shape)) if hasattr(branch, "_build_graph") else branch._build_once([tuple(shape)])
        shapes = self._branch_shapes(input_shape)
        if self._join is not None:
            self._join._check_shapes(shapes)
        elif len(shapes) != 2 or any(len(s) != 2 for s in shapes) or (
                None not in (shapes[0][1], shapes[1][1]) and shapes[0][1] != shapes[1][1]):
            raise ValueError(f"Layer '{self.name}' (Merge): mode {self.mode!r} takes two inputs of shape "
                             f"(batch, features), as BigDL's; got {shapes}")

    def __call__(self, inputs, training=None, **kwargs):
        if not isinstance(inputs, (list, tuple)):
            raise ValueError(f"Layer '{self.name}' (Merge) expects a list of inputs, got one")
        return super().__call__(list(inputs), training=training, **kwargs)

    def call(self, inputs, training=False):
        if self.branches:
            inputs = [b(x, training=training) for b, x in zip(self.branches, inputs)]
        if self._join is not None:
            return self._join.call(inputs, training)
        a, b = inputs
        dot = F.sum(a * b, axis=1, keepdims=True)
        if self.mode == "dot":
            return dot
        norms = F.sqrt(F.sum(a * a, axis=1, keepdims=True) * F.sum(b * b, axis=1, keepdims=True))
        cos = dot / F.maximum(norms, as_tensor(1e-7, like=norms))
        return F.reshape(cos, (cos.shape[0], 1, 1))

    def compute_output_shape(self, input_shape):
        shapes = self._branch_shapes(input_shape)
        if self._join is not None:
            return self._join.compute_output_shape(shapes)
        return (shapes[0][0], 1) if self.mode == "dot" else (shapes[0][0], 1, 1)

    def get_config(self):
        from ember.layers.serialization import serialize_layer

        cfg = {**super().get_config(), "mode": self.mode, "concat_axis": self.concat_axis}
        if self.branches:
            cfg["layers"] = [serialize_layer(b) for b in self.branches]
        return cfg

    @classmethod
    def from_config(cls, config, custom_objects=None):
        from ember.layers.serialization import deserialize_layer

        config = dict(config)
        branches = config.pop("layers", None)
        if branches is not None:
            config["layers"] = [deserialize_layer(spec, custom_objects) for spec in branches]
        return cls(**config)


def merge(inputs, mode="sum", concat_axis=-1, dot_axes=-1, name=None):
    """Keras 1's and BigDL's functional ``merge``: ``Merge(mode=...)`` applied to the list ``inputs``.

    Example:
        >>> from ember.layers import Input, Dense, merge
        >>> a, b = Input(shape=(3,)), Input(shape=(3,))
        >>> merge([Dense(4)(a), Dense(4)(b)], mode="concat").shape
        (None, 8)
    """
    return Merge(mode=mode, concat_axis=concat_axis, dot_axes=dot_axes, name=name)(inputs)
