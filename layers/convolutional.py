"""Convolution, pooling and padding layers (Keras names; ``channels_last`` by default).

Internally every spatial op runs on NHWC arrays; ``channels_first`` inputs are transposed in and
out, and 1-D inputs get a unit height.
"""
from ember.engine import functional as F
from ember.layers import activations, initializers, regularizers
from ember.layers.base import InputSpec, Layer, get_mask, keras1_arguments, to_tuple
from ember.layers.core import _check_format


def _check_padding(padding, allowed=("valid", "same")):
    if padding not in allowed:
        raise ValueError(f"padding must be one of {allowed}, got {padding!r}")
    return padding


def _to_nhwc(x, data_format):
    return F.transpose(x, (0, 2, 3, 1)) if data_format == "channels_first" else x


def _from_nhwc(y, data_format):
    return F.transpose(y, (0, 3, 1, 2)) if data_format == "channels_first" else y


def _spatial(shape, data_format):
    """(H, W, C) of a 4-D shape in either format."""
    return (shape[2], shape[3], shape[1]) if data_format == "channels_first" else tuple(shape[1:4])


def _pack(n, h, w, c, data_format):
    return (n, c, h, w) if data_format == "channels_first" else (n, h, w, c)


def _pads(size, k, stride, dilation, padding):
    if padding == "same":
        return F.same_padding(size, k, stride, dilation)
    if padding == "causal":
        return ((k - 1) * dilation, 0)
    return (0, 0)


def _out_len(size, k, stride, dilation, padding, layer=None):
    if size is None:
        return None
    out = F.conv_output_size(size, k, stride, dilation, sum(_pads(size, k, stride, dilation, padding)))
    if out < 1:
        span = (k - 1) * dilation + 1
        where = f"Layer '{layer.name}' ({type(layer).__name__}): " if layer is not None else ""
        raise ValueError(f"{where}its window of {span} (kernel {k}, dilation {dilation}) does not fit an input of "
                         f"size {size} with padding '{padding}'; expected inputs of at least {span} along that axis, "
                         "or padding='same'")
    return out


class Conv2D(Layer):
    """2-D convolution: ``filters`` kernels of ``kernel_size`` over (H, W).

    Args:
        filters: number of output channels.
        kernel_size, strides, dilation_rate: int or pair.
        padding: ``"valid"`` or ``"same"`` (output = ceil(input / stride)).
        groups: split input and output channels into this many independent groups.
        activation: name or function applied to the output (default linear).
        use_bias: add a bias per filter.
        kernel_initializer, bias_initializer: initializer names or objects.
        data_format: ``"channels_last"`` (N, H, W, C) or ``"channels_first"`` (N, C, H, W).

    Shape: (N, H, W, C) -> (N, Ho, Wo, filters); kernel (KH, KW, C / groups, filters).

    Example:
        >>> import numpy as np
        >>> from ember.layers import Conv2D
        >>> conv = Conv2D(4, 3, padding="same", strides=2)
        >>> conv(np.zeros((2, 8, 8, 3))).shape
        (2, 4, 4, 4)
        >>> [w.shape for w in conv.get_weights()]
        [(3, 3, 3, 4), (4,)]
    """

    input_spec = InputSpec(ndim=4)
    replay_safe = True

    def replayable(self):
        return super().replayable() and activations.is_builtin(self.activation)

    @keras1_arguments("nb_filter", "border_mode", "subsample", "dim_ordering", "init", "W_regularizer",
                      "b_regularizer", "bias")
    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid", data_format="channels_last",
                 dilation_rate=(1, 1), groups=1, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros", kernel_regularizer=None,
                 bias_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.filters = int(filters)
        self.kernel_size = to_tuple(kernel_size, 2, "kernel_size")
        self.strides = to_tuple(strides, 2, "strides")
        self.padding = _check_padding(padding)
        self.data_format = _check_format(data_format)
        self.dilation_rate = to_tuple(dilation_rate, 2, "dilation_rate")
        self.groups = int(groups)
        if self.filters % self.groups:
            raise ValueError(f"{type(self).__name__}: filters ({filters}) must be divisible by groups ({groups})")
        self.activation = activations.get(activation)
        self.use_bias = use_bias
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)

    def build(self, input_shape):
        c = _spatial(input_shape, self.data_format)[2]
        if c % self.groups:
            raise ValueError(f"Layer '{self.name}': input channels ({c}) must be divisible by groups ({self.groups})")
        self.kernel = self.add_weight("kernel", self.kernel_size + (c // self.groups, self.filters),
                                      self.kernel_initializer, regularizer=self.kernel_regularizer)
        self.bias = self._bias_weight()
        axis = 1 if self.data_format == "channels_first" else -1
        self.input_spec = InputSpec(ndim=4, axes={axis: c})

    def _bias_weight(self):
        if not self.use_bias:
            return None
        return self.add_weight("bias", (self.filters,), self.bias_initializer, regularizer=self.bias_regularizer)

    def _conv(self, x, kernel, groups, **bias_activation):
        h, w, _ = x.shape[1:]
        pads = tuple(_pads(s, k, st, d, self.padding) for s, k, st, d in
                     zip((h, w), self.kernel_size, self.strides, self.dilation_rate))
        return F.conv2d(x, kernel, self.strides, self.dilation_rate, pads, groups, **bias_activation)

    def call(self, x, training=False):
        x = _to_nhwc(x, self.data_format)
        fused = activations.fused_with_bias(self.activation, self.bias, x.dtype)
        if fused is not False:  # the bias and the activation in the convolution's op
            y = self._conv(x, self.kernel, self.groups, bias=self.bias, activation=fused)
            return _from_nhwc(y, self.data_format)
        y = self._conv(x, self.kernel, self.groups)
        return _from_nhwc(activations.with_bias(self.activation, y, self.bias), self.data_format)

    def compute_output_shape(self, input_shape):
        h, w, _ = _spatial(input_shape, self.data_format)
        ho, wo = (_out_len(s, k, st, d, self.padding, self) for s, k, st, d in
                  zip((h, w), self.kernel_size, self.strides, self.dilation_rate))
        return _pack(input_shape[0], ho, wo, self.filters, self.data_format)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": list(self.kernel_size),
                "strides": list(self.strides), "padding": self.padding, "data_format": self.data_format,
                "dilation_rate": list(self.dilation_rate), "groups": self.groups,
                "activation": activations.serialize(self.activation), "use_bias": self.use_bias,
                "kernel_initializer": initializers.serialize(self.kernel_initializer),
                "bias_initializer": initializers.serialize(self.bias_initializer),
                **regularizers.serialize_fields(self, "kernel_regularizer", "bias_regularizer")}


class Conv1D(Layer):
    """1-D convolution over (steps, channels); padding ``valid``, ``same`` or ``causal``.

    Args:
        filters: number of output channels.
        kernel_size, strides, dilation_rate: ints.
        padding: ``"valid"``, ``"same"`` or ``"causal"`` (left padding only: step t sees steps <= t).
        groups: split input and output channels into this many independent groups.
        activation, use_bias, kernel_initializer, bias_initializer: as in ``Conv2D``.
        data_format: ``"channels_last"`` (N, L, C) or ``"channels_first"`` (N, C, L).

    Shape: (N, L, C) -> (N, Lo, filters); kernel (K, C / groups, filters).

    Example:
        >>> import numpy as np
        >>> from ember.layers import Conv1D
        >>> Conv1D(8, 3)(np.zeros((2, 10, 4))).shape
        (2, 8, 8)
        >>> Conv1D(8, 3, padding="causal")(np.zeros((2, 10, 4))).shape
        (2, 10, 8)
    """

    input_spec = InputSpec(ndim=3)

    @keras1_arguments("nb_filter", "filter_length", "border_mode", "subsample_length", "init", "W_regularizer",
                      "b_regularizer", "bias", "input_dim")
    def __init__(self, filters, kernel_size, strides=1, padding="valid", data_format="channels_last",
                 dilation_rate=1, groups=1, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros", kernel_regularizer=None,
                 bias_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.filters = int(filters)
        self.kernel_size = to_tuple(kernel_size, 1, "kernel_size")[0]
        self.strides = to_tuple(strides, 1, "strides")[0]
        self.padding = _check_padding(padding, ("valid", "same", "causal"))
        self.data_format = _check_format(data_format)
        self.dilation_rate = to_tuple(dilation_rate, 1, "dilation_rate")[0]
        self.groups = int(groups)
        self.activation = activations.get(activation)
        self.use_bias = use_bias
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)

    def build(self, input_shape):
        c = input_shape[1] if self.data_format == "channels_first" else input_shape[-1]
        if c % self.groups or self.filters % self.groups:
            raise ValueError(f"Layer '{self.name}': channels ({c}) and filters ({self.filters}) "
                             f"must be divisible by groups ({self.groups})")
        self.kernel = self.add_weight("kernel", (self.kernel_size, c // self.groups, self.filters),
                                      self.kernel_initializer, regularizer=self.kernel_regularizer)
        self.bias = self.add_weight("bias", (self.filters,), self.bias_initializer,
                                    regularizer=self.bias_regularizer) if self.use_bias else None
        self.input_spec = InputSpec(ndim=3, axes={1 if self.data_format == "channels_first" else -1: c})

    def call(self, x, training=False):
        if self.data_format == "channels_first":
            x = F.transpose(x, (0, 2, 1))
        n, length, c = x.shape
        pads = ((0, 0), _pads(length, self.kernel_size, self.strides, self.dilation_rate, self.padding))
        kernel = F.reshape(self.kernel, (1,) + self.kernel.shape)
        y = F.conv2d(F.reshape(x, (n, 1, length, c)), kernel, (1, self.strides), (1, self.dilation_rate),
                     pads, self.groups)
        y = F.reshape(y, (n, y.shape[2], self.filters))
        y = activations.with_bias(self.activation, y, self.bias)
        return F.transpose(y, (0, 2, 1)) if self.data_format == "channels_first" else y

    def compute_output_shape(self, input_shape):
        length = input_shape[2] if self.data_format == "channels_first" else input_shape[1]
        lo = _out_len(length, self.kernel_size, self.strides, self.dilation_rate, self.padding, self)
        return (input_shape[0], self.filters, lo) if self.data_format == "channels_first" else (
            input_shape[0], lo, self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size,
                "strides": self.strides, "padding": self.padding, "data_format": self.data_format,
                "dilation_rate": self.dilation_rate, "groups": self.groups,
                "activation": activations.serialize(self.activation), "use_bias": self.use_bias,
                "kernel_initializer": initializers.serialize(self.kernel_initializer),
                "bias_initializer": initializers.serialize(self.bias_initializer),
                **regularizers.serialize_fields(self, "kernel_regularizer", "bias_regularizer")}


class DepthwiseConv2D(Conv2D):
    """Depthwise 2-D convolution: each input channel gets ``depth_multiplier`` kernels of its own.

    Args:
        kernel_size, strides, dilation_rate: int or pair.
        padding: ``"valid"`` or ``"same"``.
        depth_multiplier: kernels per input channel.
        activation, use_bias, depthwise_initializer, bias_initializer, data_format: as in ``Conv2D``.

    Shape: (N, H, W, C) -> (N, Ho, Wo, C * depth_multiplier); kernel (KH, KW, C, depth_multiplier).

    Example:
        >>> import numpy as np
        >>> from ember.layers import DepthwiseConv2D
        >>> layer = DepthwiseConv2D(3, depth_multiplier=2)
        >>> layer(np.zeros((1, 5, 5, 3))).shape
        (1, 3, 3, 6)
        >>> layer.get_weights()[0].shape
        (3, 3, 3, 2)
    """

    def __init__(self, kernel_size, strides=(1, 1), padding="valid", depth_multiplier=1,
                 data_format="channels_last", dilation_rate=(1, 1), activation=None, use_bias=True,
                 depthwise_initializer="glorot_uniform", bias_initializer="zeros", depthwise_regularizer=None,
                 **kwargs):
        super().__init__(1, kernel_size, strides, padding, data_format, dilation_rate, 1, activation, use_bias,
                         depthwise_initializer, bias_initializer, kernel_regularizer=depthwise_regularizer, **kwargs)
        self.depth_multiplier = int(depth_multiplier)

    def build(self, input_shape):
        c = _spatial(input_shape, self.data_format)[2]
        self.filters = c * self.depth_multiplier
        self.depthwise_kernel = self.add_weight("depthwise_kernel", self.kernel_size + (c, self.depth_multiplier),
                                                self.kernel_initializer, regularizer=self.kernel_regularizer)
        self.bias = self._bias_weight()
        axis = 1 if self.data_format == "channels_first" else -1
        self.input_spec = InputSpec(ndim=4, axes={axis: c})

    def call(self, x, training=False):
        c = self.depthwise_kernel.shape[2]
        kernel = F.reshape(self.depthwise_kernel, self.kernel_size + (1, c * self.depth_multiplier))
        y = self._conv(_to_nhwc(x, self.data_format), kernel, c)
        return _from_nhwc(activations.with_bias(self.activation, y, self.bias), self.data_format)

    def compute_output_shape(self, input_shape):
        c = _spatial(input_shape, self.data_format)[2]
        self.filters = c * self.depth_multiplier
        return super().compute_output_shape(input_shape)

    def get_config(self):
        cfg = super().get_config()
        for key in ("filters", "groups"):
            cfg.pop(key)
        cfg["depthwise_initializer"] = cfg.pop("kernel_initializer")
        if "kernel_regularizer" in cfg:
            cfg["depthwise_regularizer"] = cfg.pop("kernel_regularizer")
        return {**cfg, "depth_multiplier": self.depth_multiplier}


class Conv2DTranspose(Conv2D):
    """Transposed 2-D convolution (the adjoint of Conv2D), e.g. for upsampling decoders.

    Output size per axis: ``same``: in * stride; ``valid``: in * stride + max(k - stride, 0);
    with ``output_padding``: (in - 1) * stride + k - 2 * pad + output_padding (Keras' rule).

    Args:
        filters: number of output channels.
        kernel_size, strides, dilation_rate: int or pair.
        padding: ``"valid"`` or ``"same"``.
        output_padding: int or pair, or None (see above).
        activation, use_bias, kernel_initializer, bias_initializer, data_format: as in ``Conv2D``.

    Shape: (N, H, W, C) -> (N, Ho, Wo, filters); kernel (KH, KW, filters, C).

    Example:
        >>> import numpy as np
        >>> from ember.layers import Conv2DTranspose
        >>> Conv2DTranspose(2, 3, strides=2, padding="same")(np.zeros((1, 4, 4, 3))).shape
        (1, 8, 8, 2)
        >>> Conv2DTranspose(2, 3, strides=2)(np.zeros((1, 4, 4, 3))).shape
        (1, 9, 9, 2)
    """

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid", output_padding=None,
                 data_format="channels_last", dilation_rate=(1, 1), activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros", **kwargs):
        super().__init__(filters, kernel_size, strides, padding, data_format, dilation_rate, 1, activation,
                         use_bias, kernel_initializer, bias_initializer, **kwargs)
        self.output_padding = None if output_padding is None else to_tuple(output_padding, 2, "output_padding")

    def build(self, input_shape):
        c = _spatial(input_shape, self.data_format)[2]
        self.kernel = self.add_weight("kernel", self.kernel_size + (self.filters, c), self.kernel_initializer,
                                      regularizer=self.kernel_regularizer)
        self.bias = self._bias_weight()
        self.input_spec = InputSpec(ndim=4, axes={1 if self.data_format == "channels_first" else -1: c})

    def _out_len(self, size, i):
        if size is None:
            return None
        k = (self.kernel_size[i] - 1) * self.dilation_rate[i] + 1
        s = self.strides[i]
        if self.output_padding is None:
            return size * s if self.padding == "same" else size * s + max(k - s, 0)
        pad = k // 2 if self.padding == "same" else 0
        return (size - 1) * s + k - 2 * pad + self.output_padding[i]

    def call(self, x, training=False):
        x = _to_nhwc(x, self.data_format)
        out_hw = tuple(self._out_len(x.shape[1 + i], i) for i in range(2))
        pads = tuple(_pads(out_hw[i], self.kernel_size[i], self.strides[i], self.dilation_rate[i], self.padding)
                     for i in range(2))
        y = F.conv2d_transpose(x, self.kernel, out_hw, self.strides, self.dilation_rate, pads)
        return _from_nhwc(activations.with_bias(self.activation, y, self.bias), self.data_format)

    def compute_output_shape(self, input_shape):
        h, w, _ = _spatial(input_shape, self.data_format)
        return _pack(input_shape[0], self._out_len(h, 0), self._out_len(w, 1), self.filters, self.data_format)

    def get_config(self):
        cfg = super().get_config()
        cfg.pop("groups")
        return {**cfg, "output_padding": list(self.output_padding) if self.output_padding else None}


class _Pooling2D(Layer):
    input_spec = InputSpec(ndim=4)
    _op = None

    @keras1_arguments("border_mode", "dim_ordering")
    def __init__(self, pool_size=(2, 2), strides=None, padding="valid", data_format="channels_last", **kwargs):
        super().__init__(**kwargs)
        self.pool_size = to_tuple(pool_size, 2, "pool_size")
        self.strides = self.pool_size if strides is None else to_tuple(strides, 2, "strides")
        self.padding = _check_padding(padding)
        self.data_format = _check_format(data_format)

    def call(self, x, training=False):
        x = _to_nhwc(x, self.data_format)
        pads = tuple(_pads(s, k, st, 1, self.padding) for s, k, st in zip(x.shape[1:3], self.pool_size, self.strides))
        return _from_nhwc(type(self)._op(x, self.pool_size, self.strides, pads), self.data_format)

    def compute_output_shape(self, input_shape):
        h, w, c = _spatial(input_shape, self.data_format)
        ho, wo = (_out_len(s, k, st, 1, self.padding, self) for s, k, st in
                  zip((h, w), self.pool_size, self.strides))
        return _pack(input_shape[0], ho, wo, c, self.data_format)

    def get_config(self):
        return {**super().get_config(), "pool_size": list(self.pool_size), "strides": list(self.strides),
                "padding": self.padding, "data_format": self.data_format}


class MaxPooling2D(_Pooling2D):
    """Max over ``pool_size`` windows (padding ``same`` pads with -inf).

    Args:
        pool_size: int or pair.
        strides: int or pair; None means ``pool_size``.
        padding: ``"valid"`` or ``"same"``.
        data_format: ``"channels_last"`` or ``"channels_first"``.

    Shape: (N, H, W, C) -> (N, Ho, Wo, C).

    Example:
        >>> import numpy as np
        >>> from ember.layers import MaxPooling2D
        >>> x = np.arange(16.0).reshape(1, 4, 4, 1)
        >>> MaxPooling2D()(x).numpy()[0, :, :, 0].tolist()
        [[5.0, 7.0], [13.0, 15.0]]
    """

    replay_safe = True
    _op = staticmethod(F.max_pool2d)


class AveragePooling2D(_Pooling2D):
    """Mean over ``pool_size`` windows; with ``same`` padding only real elements are averaged.

    Args:
        pool_size: int or pair.
        strides: int or pair; None means ``pool_size``.
        padding: ``"valid"`` or ``"same"``.
        data_format: ``"channels_last"`` or ``"channels_first"``.

    Shape: (N, H, W, C) -> (N, Ho, Wo, C).

    Example:
        >>> import numpy as np
        >>> from ember.layers import AveragePooling2D
        >>> x = np.arange(16.0).reshape(1, 4, 4, 1)
        >>> AveragePooling2D()(x).numpy()[0, :, :, 0].tolist()
        [[2.5, 4.5], [10.5, 12.5]]
    """

    replay_safe = True
    _op = staticmethod(F.avg_pool2d)


class _GlobalPooling2D(Layer):
    input_spec = InputSpec(ndim=4)

    def __init__(self, data_format="channels_last", keepdims=False, **kwargs):
        super().__init__(**kwargs)
        self.data_format = _check_format(data_format)
        self.keepdims = bool(keepdims)

    def _axes(self):
        return (2, 3) if self.data_format == "channels_first" else (1, 2)

    def compute_output_shape(self, input_shape):
        _, _, c = _spatial(input_shape, self.data_format)
        if self.keepdims:
            return _pack(input_shape[0], 1, 1, c, self.data_format)
        return (input_shape[0], c)

    def get_config(self):
        return {**super().get_config(), "data_format": self.data_format, "keepdims": self.keepdims}


class GlobalAveragePooling2D(_GlobalPooling2D):
    """Mean over H and W.

    Args:
        data_format: ``"channels_last"`` or ``"channels_first"``.
        keepdims: keep H and W as axes of size 1.

    Shape: (N, H, W, C) -> (N, C), or (N, 1, 1, C) with ``keepdims``.

    Example:
        >>> import numpy as np
        >>> from ember.layers import GlobalAveragePooling2D
        >>> x = np.arange(8.0).reshape(1, 2, 2, 2)
        >>> GlobalAveragePooling2D()(x).numpy().tolist()
        [[3.0, 4.0]]
    """

    def call(self, x, training=False):
        return F.mean(x, axis=self._axes(), keepdims=self.keepdims)


class GlobalMaxPooling2D(_GlobalPooling2D):
    """Max over H and W.

    Args:
        data_format: ``"channels_last"`` or ``"channels_first"``.
        keepdims: keep H and W as axes of size 1.

    Shape: (N, H, W, C) -> (N, C), or (N, 1, 1, C) with ``keepdims``.

    Example:
        >>> import numpy as np
        >>> from ember.layers import GlobalMaxPooling2D
        >>> x = np.arange(8.0).reshape(1, 2, 2, 2)
        >>> GlobalMaxPooling2D()(x).numpy().tolist()
        [[6.0, 7.0]]
    """

    def call(self, x, training=False):
        return F.max(x, axis=self._axes(), keepdims=self.keepdims)


class ZeroPadding2D(Layer):
    """Pads H and W with zeros.

    Args:
        padding: int, (h, w), or ((top, bottom), (left, right)).
        data_format: ``"channels_last"`` or ``"channels_first"``.

    Shape: (N, H, W, C) -> (N, H + top + bottom, W + left + right, C).

    Example:
        >>> import numpy as np
        >>> from ember.layers import ZeroPadding2D
        >>> ZeroPadding2D(((1, 0), (2, 2)))(np.ones((1, 3, 3, 2))).shape
        (1, 4, 7, 2)
    """

    input_spec = InputSpec(ndim=4)

    def __init__(self, padding=(1, 1), data_format="channels_last", **kwargs):
        super().__init__(**kwargs)
        if isinstance(padding, int):
            padding = ((padding, padding), (padding, padding))
        elif all(isinstance(p, int) for p in padding):
            padding = ((padding[0], padding[0]), (padding[1], padding[1]))
        self.padding = tuple(to_tuple(p, 2, "padding") for p in padding)
        self.data_format = _check_format(data_format)

    def call(self, x, training=False):
        (t, b), (le, r) = self.padding
        if self.data_format == "channels_first":
            return F.pad(x, ((0, 0), (0, 0), (t, b), (le, r)))
        return F.pad(x, ((0, 0), (t, b), (le, r), (0, 0)))

    def compute_output_shape(self, input_shape):
        h, w, c = _spatial(input_shape, self.data_format)
        (t, b), (le, r) = self.padding
        return _pack(input_shape[0], None if h is None else h + t + b, None if w is None else w + le + r, c,
                     self.data_format)

    def get_config(self):
        return {**super().get_config(), "padding": [list(p) for p in self.padding], "data_format": self.data_format}


class _Pooling1D(Layer):
    """1-D pooling over the steps axis, run as 2-D pooling with a unit height."""

    input_spec = InputSpec(ndim=3)
    _op = None

    @keras1_arguments("pool_length", "stride", "border_mode")
    def __init__(self, pool_size=2, strides=None, padding="valid", data_format="channels_last", **kwargs):
        super().__init__(**kwargs)
        self.pool_size = to_tuple(pool_size, 1, "pool_size")[0]
        self.strides = self.pool_size if strides is None else to_tuple(strides, 1, "strides")[0]
        self.padding = _check_padding(padding)
        self.data_format = _check_format(data_format)

    def call(self, x, training=False):
        if self.data_format == "channels_first":
            x = F.transpose(x, (0, 2, 1))
        n, length, c = x.shape
        pads = ((0, 0), _pads(length, self.pool_size, self.strides, 1, self.padding))
        y = type(self)._op(F.reshape(x, (n, 1, length, c)), (1, self.pool_size), (1, self.strides), pads)
        y = F.reshape(y, (n, y.shape[2], c))
        return F.transpose(y, (0, 2, 1)) if self.data_format == "channels_first" else y

    def compute_output_shape(self, input_shape):
        first = self.data_format == "channels_first"
        length, c = (input_shape[2], input_shape[1]) if first else (input_shape[1], input_shape[2])
        lo = _out_len(length, self.pool_size, self.strides, 1, self.padding)
        return (input_shape[0], c, lo) if first else (input_shape[0], lo, c)

    def get_config(self):
        return {**super().get_config(), "pool_size": self.pool_size, "strides": self.strides,
                "padding": self.padding, "data_format": self.data_format}


class MaxPooling1D(_Pooling1D):
    """Max over windows of ``pool_size`` steps: (N, T, C) -> (N, T', C).

    Example:
        >>> import numpy as np
        >>> from ember.layers import MaxPooling1D
        >>> MaxPooling1D(2)(np.arange(8.0).reshape(1, 4, 2)).numpy().tolist()
        [[[2.0, 3.0], [6.0, 7.0]]]
    """

    _op = staticmethod(F.max_pool2d)


class AveragePooling1D(_Pooling1D):
    """Mean over windows of ``pool_size`` steps.

    Args:
        pool_size: int.
        strides: int; None means ``pool_size``.
        padding: ``"valid"`` or ``"same"``.
        data_format: ``"channels_last"`` (N, T, C) or ``"channels_first"`` (N, C, T).

    Shape: (N, T, C) -> (N, T', C).

    Example:
        >>> import numpy as np
        >>> from ember.layers import AveragePooling1D
        >>> AveragePooling1D(2)(np.arange(8.0).reshape(1, 4, 2)).numpy().tolist()
        [[[1.0, 2.0], [5.0, 6.0]]]
    """

    _op = staticmethod(F.avg_pool2d)


class _GlobalPooling1D(Layer):
    input_spec = InputSpec(ndim=3)

    def __init__(self, data_format="channels_last", keepdims=False, **kwargs):
        super().__init__(**kwargs)
        self.data_format = _check_format(data_format)
        self.keepdims = bool(keepdims)

    def _axis(self):
        return 2 if self.data_format == "channels_first" else 1

    def compute_output_shape(self, input_shape):
        c = input_shape[1] if self.data_format == "channels_first" else input_shape[2]
        if self.keepdims:
            return (input_shape[0], c, 1) if self.data_format == "channels_first" else (input_shape[0], 1, c)
        return (input_shape[0], c)

    def get_config(self):
        return {**super().get_config(), "data_format": self.data_format, "keepdims": self.keepdims}


class GlobalAveragePooling1D(_GlobalPooling1D):
    """Mean over the steps; masked steps (Masking, mask_zero) are left out, as in Keras.

    Args:
        data_format: ``"channels_last"`` or ``"channels_first"``.
        keepdims: keep the steps axis with size 1.

    Shape: (N, T, C) -> (N, C).

    Example:
        >>> import numpy as np
        >>> from ember.layers import GlobalAveragePooling1D
        >>> GlobalAveragePooling1D()(np.arange(6.0).reshape(1, 3, 2)).numpy().tolist()
        [[2.0, 3.0]]
    """

    def call(self, x, training=False):
        mask = get_mask(x)
        if mask is None:
            return F.mean(x, axis=self._axis(), keepdims=self.keepdims)
        weights = mask.astype(x.dtype)
        weights = weights[:, None, :] if self.data_format == "channels_first" else weights[:, :, None]
        total = F.sum(x * weights, axis=self._axis(), keepdims=self.keepdims)
        count = weights.sum(axis=self._axis(), keepdims=self.keepdims)
        return total / count.clip(min=1)


class GlobalMaxPooling1D(_GlobalPooling1D):
    """Max over the steps.

    Args:
        data_format: ``"channels_last"`` or ``"channels_first"``.
        keepdims: keep the steps axis with size 1.

    Shape: (N, T, C) -> (N, C).

    Example:
        >>> import numpy as np
        >>> from ember.layers import GlobalMaxPooling1D
        >>> GlobalMaxPooling1D()(np.arange(6.0).reshape(1, 3, 2)).numpy().tolist()
        [[4.0, 5.0]]
    """

    def call(self, x, training=False):
        return F.max(x, axis=self._axis(), keepdims=self.keepdims)


class UpSampling2D(Layer):
    """Repeat rows and columns ``size`` times (nearest neighbour): (N, H, W, C) -> (N, H*sh, W*sw, C).

    Example:
        >>> import numpy as np
        >>> from ember.layers import UpSampling2D
        >>> UpSampling2D(2)(np.arange(4.0).reshape(1, 2, 2, 1)).numpy()[0, :, :, 0].tolist()
        [[0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 1.0], [2.0, 2.0, 3.0, 3.0], [2.0, 2.0, 3.0, 3.0]]
    """

    input_spec = InputSpec(ndim=4)

    def __init__(self, size=(2, 2), data_format="channels_last", interpolation="nearest", **kwargs):
        super().__init__(**kwargs)
        if interpolation != "nearest":
            raise ValueError(f"UpSampling2D: only interpolation='nearest' is supported, got {interpolation!r}")
        self.size = to_tuple(size, 2, "size")
        self.data_format = _check_format(data_format)
        self.interpolation = interpolation

    def call(self, x, training=False):
        x = _to_nhwc(x, self.data_format)
        n, h, w, c = x.shape
        sh, sw = self.size
        y = F.broadcast_to(F.reshape(x, (n, h, 1, w, 1, c)), (n, h, sh, w, sw, c))
        return _from_nhwc(F.reshape(y, (n, h * sh, w * sw, c)), self.data_format)

    def compute_output_shape(self, input_shape):
        h, w, c = _spatial(input_shape, self.data_format)
        sh, sw = self.size
        return _pack(input_shape[0], None if h is None else h * sh, None if w is None else w * sw, c,
                     self.data_format)

    def get_config(self):
        return {**super().get_config(), "size": list(self.size), "data_format": self.data_format,
                "interpolation": self.interpolation}


class Cropping2D(Layer):
    """Cut rows and columns off the edges: ``cropping`` int, (h, w), or ((top, bottom), (left, right)).

    Example:
        >>> import numpy as np
        >>> from ember.layers import Cropping2D
        >>> Cropping2D(((1, 0), (0, 2)))(np.zeros((1, 4, 5, 3))).shape
        (1, 3, 3, 3)
    """

    input_spec = InputSpec(ndim=4)

    def __init__(self, cropping=((0, 0), (0, 0)), data_format="channels_last", **kwargs):
        super().__init__(**kwargs)
        if isinstance(cropping, int):
            cropping = ((cropping, cropping), (cropping, cropping))
        elif all(isinstance(p, int) for p in cropping):
            cropping = ((cropping[0], cropping[0]), (cropping[1], cropping[1]))
        self.cropping = tuple(to_tuple(p, 2, "cropping") for p in cropping)
        if any(v < 0 for p in self.cropping for v in p):
            raise ValueError(f"Cropping2D: cropping must be >= 0, got {self.cropping}")
        self.data_format = _check_format(data_format)

    def call(self, x, training=False):
        h, w, _ = _spatial(x.shape, self.data_format)
        (t, b), (le, r) = self.cropping
        if t + b >= h or le + r >= w:
            raise ValueError(f"Layer '{self.name}' (Cropping2D): cropping {self.cropping} leaves nothing of an "
                             f"input of {h}x{w}")
        rows, cols = slice(t, h - b), slice(le, w - r)
        if self.data_format == "channels_first":
            return x[:, :, rows, cols]
        return x[:, rows, cols, :]

    def compute_output_shape(self, input_shape):
        h, w, c = _spatial(input_shape, self.data_format)
        (t, b), (le, r) = self.cropping
        return _pack(input_shape[0], None if h is None else h - t - b, None if w is None else w - le - r, c,
                     self.data_format)

    def get_config(self):
        return {**super().get_config(), "cropping": [list(p) for p in self.cropping], "data_format": self.data_format}


class SeparableConv2D(Layer):
    """Depthwise convolution (``depth_multiplier`` kernels per input channel) followed by a 1x1 pointwise
    convolution to ``filters`` channels (Keras's weights: depthwise_kernel (KH, KW, C, M), pointwise_kernel
    (1, 1, C*M, filters), bias (filters,)).

    Args:
        filters: number of output channels.
        kernel_size, strides, dilation_rate: int or pair.
        padding: ``"valid"`` or ``"same"``.
        depth_multiplier: depthwise kernels per input channel (M).
        activation, use_bias, data_format: as in ``Conv2D``.
        depthwise_initializer, pointwise_initializer, bias_initializer: initializer names or objects.

    Shape: (N, H, W, C) -> (N, Ho, Wo, filters).

    Example:
        >>> import numpy as np
        >>> from ember.layers import SeparableConv2D
        >>> layer = SeparableConv2D(8, 3, padding="same")
        >>> layer(np.zeros((1, 6, 6, 4))).shape
        (1, 6, 6, 8)
        >>> [w.shape for w in layer.get_weights()]
        [(3, 3, 4, 1), (1, 1, 4, 8), (8,)]
    """

    input_spec = InputSpec(ndim=4)

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid", data_format="channels_last",
                 dilation_rate=(1, 1), depth_multiplier=1, activation=None, use_bias=True,
                 depthwise_initializer="glorot_uniform", pointwise_initializer="glorot_uniform",
                 bias_initializer="zeros", **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.depthwise = DepthwiseConv2D(kernel_size, strides, padding, depth_multiplier, data_format, dilation_rate,
                                         use_bias=False, depthwise_initializer=depthwise_initializer,
                                         name=f"{self.name}_depthwise")
        self.pointwise = Conv2D(self.filters, 1, data_format=data_format, activation=activation, use_bias=use_bias,
                                kernel_initializer=pointwise_initializer, bias_initializer=bias_initializer,
                                name=f"{self.name}_pointwise")

    def build(self, input_shape):
        self.depthwise._build_once([tuple(input_shape)])
        self.pointwise._build_once([self.depthwise.compute_output_shape(tuple(input_shape))])

    def call(self, x, training=False):
        return self.pointwise(self.depthwise(x, training=training), training=training)

    def compute_output_shape(self, input_shape):
        return self.pointwise.compute_output_shape(self.depthwise.compute_output_shape(input_shape))

    def get_config(self):
        d, p = self.depthwise, self.pointwise
        return {**super().get_config(), "filters": self.filters, "kernel_size": list(d.kernel_size),
                "strides": list(d.strides), "padding": d.padding, "data_format": d.data_format,
                "dilation_rate": list(d.dilation_rate), "depth_multiplier": d.depth_multiplier,
                "activation": activations.serialize(p.activation), "use_bias": p.use_bias,
                "depthwise_initializer": initializers.serialize(d.kernel_initializer),
                "pointwise_initializer": initializers.serialize(p.kernel_initializer),
                "bias_initializer": initializers.serialize(p.bias_initializer)}


def Convolution2D(nb_filter, nb_row, nb_col, **kwargs):  # noqa: N802 - Keras 1's (and BigDL's Keras API) name
    """Keras 1's ``Convolution2D(nb_filter, nb_row, nb_col, border_mode=, subsample=, dim_ordering=, init=,
    W_regularizer=, ...)``: a ``Conv2D(nb_filter, (nb_row, nb_col), ...)`` (Keras 1's keyword names are
    translated, see ``ember.layers.base.keras1_arguments``; today's names work too).

    Example:
        >>> from ember.layers import Convolution2D
        >>> layer = Convolution2D(8, 3, 5, border_mode="same", subsample=(2, 2), dim_ordering="th")
        >>> type(layer).__name__, layer.kernel_size, layer.padding, layer.strides, layer.data_format
        ('Conv2D', (3, 5), 'same', (2, 2), 'channels_first')
    """
    return Conv2D(nb_filter, (nb_row, nb_col), **kwargs)


def Convolution1D(nb_filter, filter_length, **kwargs):  # noqa: N802 - Keras 1's name
    """Keras 1's ``Convolution1D(nb_filter, filter_length, border_mode=, subsample_length=, input_dim=,
    input_length=, ...)``: a ``Conv1D``.

    Example:
        >>> from ember.layers import Convolution1D
        >>> layer = Convolution1D(4, 3, border_mode="same", input_dim=6, input_length=10)
        >>> type(layer).__name__, layer.kernel_size, layer._batch_input_shape
        ('Conv1D', 3, (None, 10, 6))
    """
    return Conv1D(nb_filter, filter_length, **kwargs)
