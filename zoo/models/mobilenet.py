"""MobileNetV2 (Sandler et al. 2018): inverted residual blocks with depthwise convolutions, ReLU6.

Both families publish the same weights shapes (3,504,872 trainable parameters at width 1.0) and
differ in padding and BatchNorm: torchvision pads stride-2 3x3 convolutions by 1 on every side and
uses eps 1e-5; Keras pads (0, 1) (its ``correct_pad``, Keras's "same") and uses eps 1e-3.
Layer names are torchvision's (``features.2.conv.1.0``, ``classifier.1``) or Keras's
(``block_1_depthwise``, ``Conv_1_bn``, ``predictions``).
"""
from ember.layers import Activation, Add, BatchNormalization, Conv2D, DepthwiseConv2D, Input, ZeroPadding2D
from ember.zoo.models.common import check_variant, classifier_head, default_activation, finish

# expansion t, output channels c, repeats n, first stride s (the paper's Table 2)
SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
            (6, 320, 1, 1))


def make_divisible(value, divisor=8):
    """Round a channel count to a multiple of ``divisor``, never below 90% of it (both families' rule)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


class _Units:
    def __init__(self, variant):
        self.keras = variant == "keras"
        self.eps = 1e-3 if self.keras else 1e-5
        self.momentum = 0.999 if self.keras else 0.9

    def unit(self, x, filters, kernel, stride, conv_name, bn_name, relu6=True, depthwise=False):
        if stride > 1:  # torchvision: 1 on each side; Keras: correct_pad, (0, 1) on an even size
            x = ZeroPadding2D(((0, 1), (0, 1)) if self.keras else 1)(x)
        padding = "valid" if stride > 1 else "same"
        if depthwise:
            x = DepthwiseConv2D(kernel, strides=stride, padding=padding, use_bias=False, name=conv_name)(x)
        else:
            x = Conv2D(filters, kernel, strides=stride, padding=padding, use_bias=False, name=conv_name)(x)
        x = BatchNormalization(epsilon=self.eps, momentum=self.momentum, name=bn_name)(x)
        return Activation("relu6")(x) if relu6 else x


def _block(u, x, index, cin, cout, stride, t):
    """One inverted residual block; ``index`` is torchvision's features index (1..17)."""
    hidden = cin * t
    if u.keras:
        p = "expanded_conv_" if index == 1 else f"block_{index - 1}_"
        names = [(p + "expand", p + "expand_BN"), (p + "depthwise", p + "depthwise_BN"),
                 (p + "project", p + "project_BN")]
    else:
        p = f"features.{index}.conv."
        names = [(p + "0.0", p + "0.1"), (p + "1.0", p + "1.1"), (p + "2", p + "3")]
        if t == 1:
            names = [None, (p + "0.0", p + "0.1"), (p + "1", p + "2")]
    y = x
    if t != 1:
        y = u.unit(y, hidden, 1, 1, *names[0])
    y = u.unit(y, hidden, 3, stride, *names[1], depthwise=True)
    y = u.unit(y, cout, 1, 1, *names[2], relu6=False)
    if stride == 1 and cin == cout:
        y = Add(name=(p + "add") if u.keras else None)([x, y])
    return y


def MobileNetV2(num_classes=1000, include_top=True, input_shape=(224, 224, 3), weights=None,  # noqa: N802
                variant="torchvision", pooling=None, classifier_activation="default"):
    """MobileNetV2 at width 1.0. Arguments as in ``ember.zoo.models.ResNet``.

    Example:
        >>> from ember.zoo.models import MobileNetV2
        >>> sum(w.size for w in MobileNetV2().trainable_weights)
        3504872
    """
    check_variant(variant)
    activation = default_activation(variant, classifier_activation)
    u = _Units(variant)
    inp = Input(shape=tuple(input_shape))
    x = u.unit(inp, 32, 3, 2, *(("Conv1", "bn_Conv1") if u.keras else ("features.0.0", "features.0.1")))
    cin, index = 32, 1
    for t, c, n, s in SETTINGS:
        for i in range(n):
            x = _block(u, x, index, cin, c, s if i == 0 else 1, t)
            cin, index = c, index + 1
    x = u.unit(x, 1280, 1, 1, *(("Conv_1", "Conv_1_bn") if u.keras else (f"features.{index}.0",
                                                                      f"features.{index}.1")))
    x = classifier_head(x, include_top, num_classes, pooling, activation, "predictions" if u.keras else "classifier.1",
                        dropout=0.0 if u.keras else 0.2)
    return finish(inp, x, "mobilenet_v2", weights, f"mobilenet_v2/{variant}", include_top, num_classes)
