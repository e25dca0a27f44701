"""BatchNormalization, LayerNormalization and LocalResponseNormalization."""
from ember.engine import functional as F
from ember.engine.backend import get_array_module
from ember.engine.ops.normalization import BatchNormInference, BatchNormTrain, LocalResponseNorm
from ember.engine.tensor import Tensor
from ember.layers import initializers
from ember.layers.base import InputSpec, Layer
from ember.layers.core import _check_format


class BatchNormalization(Layer):
    """Normalises each channel by the batch's statistics in training, by running ones in inference.

    running = momentum * running + (1 - momentum) * batch (biased batch variance, as Keras).
    A frozen layer (``trainable = False``, itself or through its model) runs in inference mode even in
    training, as in Keras 3: it normalises by the moving statistics and does not update them (the
    usual fine-tuning recipe).

    Args:
        axis: the channel axis (-1 for channels_last, 1 for channels_first).
        momentum, epsilon: as in Keras (0.99, 1e-3).
        center, scale: learn beta / gamma.
        beta_initializer, gamma_initializer, moving_mean_initializer, moving_variance_initializer:
            initializer names or objects.

    Shape: unchanged; weights gamma, beta, moving_mean, moving_variance of (channels,).

    Example:
        >>> import numpy as np
        >>> from ember.layers import BatchNormalization
        >>> bn = BatchNormalization(epsilon=0.0)
        >>> x = np.array([[1.0], [3.0]])
        >>> bn(x, training=True).numpy().tolist()
        [[-1.0], [1.0]]
        >>> [round(float(w[0]), 3) for w in bn.get_weights()]  # gamma, beta, moving mean, moving variance
        [1.0, 0.0, 0.02, 1.0]
        >>> bn.trainable = False  # frozen: the moving statistics, which stay as they are
        >>> [round(float(v), 3) for v in bn(x, training=True).numpy().ravel()]  # (x - 0.02) / sqrt(1.0)
        [0.98, 2.98]
        >>> round(float(bn.moving_mean.numpy()[0]), 3)
        0.02
    """

    input_spec = InputSpec(min_ndim=2)

    def __init__(self, axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True,
                 beta_initializer="zeros", gamma_initializer="ones", moving_mean_initializer="zeros",
                 moving_variance_initializer="ones", **kwargs):
        super().__init__(**kwargs)
        self.axis, self.momentum, self.epsilon = int(axis), float(momentum), float(epsilon)
        self.center, self.scale = center, scale
        self.inits = {k: initializers.get(v) for k, v in (
            ("beta_initializer", beta_initializer), ("gamma_initializer", gamma_initializer),
            ("moving_mean_initializer", moving_mean_initializer),
            ("moving_variance_initializer", moving_variance_initializer))}

    def build(self, input_shape):
        axis = self.axis % len(input_shape)
        c = input_shape[axis]
        self.gamma = self.add_weight("gamma", (c,), self.inits["gamma_initializer"]) if self.scale else None
        self.beta = self.add_weight("beta", (c,), self.inits["beta_initializer"]) if self.center else None
        self.moving_mean = self.add_weight("moving_mean", (c,), self.inits["moving_mean_initializer"], False)
        self.moving_variance = self.add_weight("moving_variance", (c,), self.inits["moving_variance_initializer"],
                                               False)
        self.input_spec = InputSpec(ndim=len(input_shape), axes={self.axis: c})

    fusable_activations = ("relu",)

    def keeps_output(self, activation=None):
        return activation is not None  # BatchNormInference keeps its output for the ReLU's gradient

    def call(self, x, training=False, activation=None):
        """``activation="relu"``: the ReLU that follows in the graph, computed in the same op (the
        model fuses BatchNormalization -> Activation("relu") this way)."""
        axis = self.axis % x.ndim
        c = x.shape[axis]
        if training and self.trainable:  # Keras 3: a frozen BatchNormalization runs in inference mode
            shape = [1] * x.ndim
            shape[axis] = c
            gamma = F.reshape(self.gamma, shape) if self.gamma is not None else _constant(x, shape, 1)
            beta = F.reshape(self.beta, shape) if self.beta is not None else _constant(x, shape, 0)
            axes = tuple(i for i in range(x.ndim) if i != axis)
            y, op = BatchNormTrain.apply_with_context(x, gamma, beta, axes=axes, eps=self.epsilon,
                                                      activation=activation)
            m = self.momentum
            self.moving_mean.data[...] = m * self.moving_mean.data + (1 - m) * op.mean.reshape(-1)
            self.moving_variance.data[...] = m * self.moving_variance.data + (1 - m) * op.var.reshape(-1)
            return y
        gamma = self.gamma if self.gamma is not None else _constant(x, (c,), 1)
        beta = self.beta if self.beta is not None else _constant(x, (c,), 0)
        return BatchNormInference.apply(x, gamma, beta, mean=self.moving_mean.data, var=self.moving_variance.data,
                                        axis=axis, eps=self.epsilon, activation=activation)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "momentum": self.momentum, "epsilon": self.epsilon,
                "center": self.center, "scale": self.scale,
                **{k: initializers.serialize(v) for k, v in self.inits.items()}}


def _constant(x, shape, value):
    """A constant tensor on ``x``'s device and dtype (gamma/beta when scale/center are off)."""
    return Tensor(get_array_module(x.data).full(shape, value, dtype=x.dtype))


class LayerNormalization(Layer):
    """Normalises each sample over ``axis`` (default the last), then scales and shifts.

    Args:
        axis: the axis (or axes) to normalise over.
        epsilon: added to the variance.
        center, scale: learn beta / gamma.
        beta_initializer, gamma_initializer: initializer names or objects.

    Shape: unchanged; gamma and beta have the shape of the normalised axes.

    Example:
        >>> import numpy as np
        >>> from ember.layers import LayerNormalization
        >>> LayerNormalization(epsilon=0.0)(np.array([[1.0, 3.0], [0.0, 10.0]])).numpy().tolist()
        [[-1.0, 1.0], [-1.0, 1.0]]
    """

    input_spec = InputSpec(min_ndim=2)

    def __init__(self, axis=-1, epsilon=1e-3, center=True, scale=True, beta_initializer="zeros",
                 gamma_initializer="ones", **kwargs):
        super().__init__(**kwargs)
        self.axis = tuple(axis) if isinstance(axis, (list, tuple)) else (int(axis),)
        self.epsilon, self.center, self.scale = float(epsilon), center, scale
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)

    def build(self, input_shape):
        ndim = len(input_shape)
        axes = sorted(a % ndim for a in self.axis)
        shape = tuple(input_shape[a] for a in axes)
        self.gamma = self.add_weight("gamma", shape, self.gamma_initializer) if self.scale else None
        self.beta = self.add_weight("beta", shape, self.beta_initializer) if self.center else None
        self.input_spec = InputSpec(ndim=ndim, axes={a: input_shape[a] for a in axes})

    def call(self, x, training=False):
        axes = tuple(sorted(a % x.ndim for a in self.axis))
        mean = F.mean(x, axis=axes, keepdims=True)
        centered = x - mean
        var = F.mean(centered * centered, axis=axes, keepdims=True)
        y = centered / F.sqrt(var + self.epsilon)
        shape = [x.shape[i] if i in axes else 1 for i in range(x.ndim)]
        if self.gamma is not None:
            y = y * F.reshape(self.gamma, shape)
        if self.beta is not None:
            y = y + F.reshape(self.beta, shape)
        return y

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "axis": list(self.axis), "epsilon": self.epsilon, "center": self.center,
                "scale": self.scale, "beta_initializer": initializers.serialize(self.beta_initializer),
                "gamma_initializer": initializers.serialize(self.gamma_initializer)}


class LocalResponseNormalization(Layer):
    """Cross-channel LRN (AlexNet / Inception-v1; Caffe and torch ``LocalResponseNorm`` convention).

    y_c = x_c / (k + alpha / size * sum_{c' in window(c)} x_{c'}^2) ** beta, window of ``size``
    channels centred on c (zero beyond the edges).

    Args:
        size: the number of channels in the window.
        alpha, beta, k: the constants of the formula above.
        data_format: ``"channels_last"`` or ``"channels_first"``.

    Shape: unchanged.

    Example:
        >>> import numpy as np
        >>> from ember.layers import LocalResponseNormalization
        >>> lrn = LocalResponseNormalization(size=1, alpha=1.0, beta=1.0, k=1.0)
        >>> lrn(np.array([[[[1.0, 2.0]]]])).numpy().ravel().tolist()  # x / (1 + x ** 2)
        [0.5, 0.4000000059604645]
    """

    input_spec = InputSpec(ndim=4)

    def __init__(self, size=5, alpha=1e-4, beta=0.75, k=1.0, data_format="channels_last", **kwargs):
        super().__init__(**kwargs)
        self.size, self.alpha, self.beta, self.k = int(size), float(alpha), float(beta), float(k)
        self.data_format = _check_format(data_format)

    def call(self, x, training=False):
        args = {"size": self.size, "alpha": self.alpha, "beta": self.beta, "k": self.k}
        if self.data_format == "channels_first":
            y = LocalResponseNorm.apply(F.transpose(x, (0, 2, 3, 1)), **args)
            return F.transpose(y, (0, 3, 1, 2))
        return LocalResponseNorm.apply(x, **args)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "size": self.size, "alpha": self.alpha, "beta": self.beta, "k": self.k,
                "data_format": self.data_format}
