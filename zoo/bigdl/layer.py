"""BigDL's Torch-style layer constructors (``bigdl.nn.layer``) returning ember layers.

Tensors are Torch's NCHW: ``SpatialConvolution`` and ``SpatialMaxPooling`` work on channels-first
images, so that ``Reshape([1, 28, 28])`` followed by them means what it meant in BigDL. Each name is a
function (BigDL's constructor arguments) that returns the ember layer doing the same thing.

Example:
    >>> import numpy as np
    >>> from ember.nn.layer import Sequential, Linear, ReLU, LogSoftMax
    >>> model = Sequential().add(Linear(4, 3)).add(ReLU()).add(Linear(3, 2)).add(LogSoftMax())
    >>> model.predict(np.zeros((5, 4))).shape
    (5, 2)
"""
from ember.layers import containers, convolutional, core, serialization


def Sequential():  # noqa: N802 - BigDL's name
    """An empty ``ember.Sequential``; ``add`` returns the model, so calls chain as in BigDL."""
    return containers.Sequential()


def Linear(input_size, output_size, with_bias=True):  # noqa: N802
    """y = x W + b: (N, input_size) -> (N, output_size)."""
    return core.Dense(int(output_size), use_bias=with_bias, input_shape=(int(input_size),))


def SpatialConvolution(n_input_plane, n_output_plane, kernel_w, kernel_h, stride_w=1, stride_h=1,  # noqa: N802
                       pad_w=0, pad_h=0, n_group=1, propagate_back=True, with_bias=True, data_format="NCHW"):
    """2-D convolution on (N, C, H, W) inputs (``data_format="NHWC"`` for channels-last); ``pad_w = pad_h = -1``
    is BigDL's "same" padding. Other explicit paddings: put a ``ZeroPadding2D`` before a valid convolution."""
    if (pad_w, pad_h) == (-1, -1):
        padding = "same"
    elif (pad_w, pad_h) == (0, 0):
        padding = "valid"
    else:
        raise ValueError(f"SpatialConvolution: pad_w={pad_w}, pad_h={pad_h} is not supported; use 0 (valid) or -1 "
                         "(same), or ember.layers.ZeroPadding2D before the convolution")
    fmt = _format(data_format)
    return convolutional.Conv2D(int(n_output_plane), (int(kernel_h), int(kernel_w)), (int(stride_h), int(stride_w)),
                                padding, fmt, groups=int(n_group), use_bias=with_bias)


def SpatialMaxPooling(kw, kh, dw, dh, pad_w=0, pad_h=0, to_ceil=False, format="NCHW"):  # noqa: N802, A002
    """Max pooling over kh x kw windows with strides (dh, dw) on (N, C, H, W) inputs."""
    if (pad_w, pad_h) != (0, 0) or to_ceil:
        raise ValueError("SpatialMaxPooling: only pad_w = pad_h = 0 and to_ceil=False are supported")
    return convolutional.MaxPooling2D((int(kh), int(kw)), (int(dh), int(dw)), "valid", _format(format))


def Reshape(size, batch_mode=None):  # noqa: N802
    """Reshape every sample to ``size`` (the batch axis is kept)."""
    if batch_mode is False:
        raise ValueError("Reshape: batch_mode=False (reshaping across the batch) is not supported")
    return core.Reshape(tuple(size))


def View(sizes, num_input_dims=0):  # noqa: N802
    """Torch's View: reshape every sample to ``sizes``."""
    return core.Reshape(tuple(sizes) if isinstance(sizes, (list, tuple)) else (sizes,))


def ReLU(ip=False):  # noqa: N802
    return core.Activation("relu")


def Tanh():  # noqa: N802
    return core.Activation("tanh")


def Sigmoid():  # noqa: N802
    return core.Activation("sigmoid")


def SoftMax():  # noqa: N802
    return core.Activation("softmax")


def LogSoftMax():  # noqa: N802
    return core.Activation("log_softmax")


def Dropout(init_p=0.5, inplace=False, scale=True):  # noqa: N802
    """Drops a fraction ``init_p`` of the inputs in training (scaled by 1/(1-p), as BigDL's default)."""
    if not scale:
        raise ValueError("Dropout: scale=False is not supported")
    return core.Dropout(float(init_p))


class Model:
    """BigDL's ``Model.load(path)``: a model saved by ember (``model.save``)."""

    @staticmethod
    def load(path, bigdl_type="float"):
        return serialization.load_model(path)


def _format(data_format):
    if data_format not in ("NCHW", "NHWC"):
        raise ValueError(f"data_format must be 'NCHW' or 'NHWC', got {data_format!r}")
    return "channels_first" if data_format == "NCHW" else "channels_last"
