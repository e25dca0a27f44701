"""Merge layers: Add, Subtract, Multiply, Average, Maximum, Minimum, Concatenate."""
from ember.engine import functional as F
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

    def call(self, inputs, training=False, activation=None):
        """``activation="relu"``: the ReLU that follows in the graph, in the same op as the last sum."""
        if activation is None:
            return super().call(inputs, training)
        if activation != "relu":
            raise ValueError(f"Layer '{self.name}' (Add): activation must be None or 'relu', got {activation!r}")
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
