"""Inception-v1 (GoogLeNet, Szegedy et al. 2014) and Inception-v3 (Szegedy et al. 2015).

InceptionV1 follows torchvision's ``googlenet`` (BatchNorm after every convolution, eps 1e-3; its
"5x5" branch uses a 3x3 convolution as torchvision's does; no auxiliary heads): 6,624,904
parameters. InceptionV3 follows torchvision's ``inception_v3`` without the auxiliary head
(23,834,568 parameters) or ``keras.applications.InceptionV3`` (``variant="keras"``: BatchNorm without
gamma, average pooling that ignores the padding, Keras's automatic layer names ``conv2d_N`` /
``batch_normalization_N`` in creation order; 23,817,352 trainable of 23,851,784).
"""
from ember.layers import AveragePooling2D, Concatenate, Input, MaxPooling2D, ZeroPadding2D
from ember.zoo.models.common import check_variant, classifier_head, conv_bn, default_activation, finish

# name: (1x1, 3x3 reduce, 3x3, "5x5" reduce, "5x5", pool projection)
INCEPTION_V1 = {
    "3a": (64, 96, 128, 16, 32, 32), "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64), "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64), "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128), "5a": (256, 160, 320, 32, 128, 128),
    "5b": (384, 192, 384, 48, 128, 128),
}


def _basic(x, name, filters, kernel, stride=1, pad=None, padding="same"):
    """torchvision's BasicConv2d: convolution without bias, BatchNorm eps 1e-3, ReLU."""
    return conv_bn(x, filters, kernel, stride, padding, conv_name=f"{name}.conv", bn_name=f"{name}.bn", eps=1e-3,
                   pad=pad)


def InceptionV1(num_classes=1000, include_top=True, input_shape=(224, 224, 3), weights=None,  # noqa: N802
                pooling=None, classifier_activation=None):
    """GoogLeNet in torchvision's layout (layer names ``conv1.conv``, ``inception3a.branch2.1.bn``, ``fc``).

    Arguments as in ``ember.zoo.models.ResNet`` (logits out by default). torchvision's ImageNet weights
    expect inputs scaled to [-1, 1] (its ``transform_input``), which the registry's preprocessing says.

    Example:
        >>> from ember.zoo.models import InceptionV1
        >>> sum(w.size for w in InceptionV1().trainable_weights)
        6624904
    """
    def block(x, name, spec):
        c1, r3, c3, r5, c5, pp = spec
        b1 = _basic(x, f"{name}.branch1", c1, 1)
        b2 = _basic(_basic(x, f"{name}.branch2.0", r3, 1), f"{name}.branch2.1", c3, 3)
        b3 = _basic(_basic(x, f"{name}.branch3.0", r5, 1), f"{name}.branch3.1", c5, 3)
        b4 = _basic(MaxPooling2D(3, 1, padding="same")(x), f"{name}.branch4.1", pp, 1)
        return Concatenate()([b1, b2, b3, b4])

    # NOTE: torchvision's max pools use ceil_mode=True without padding; Keras "same" pooling gives the
    # same windows here (ceil(n / s) outputs, the one extra row/column at the end), checked against torch.
    inp = Input(shape=tuple(input_shape))
    x = _basic(inp, "conv1", 64, 7, 2, pad=3)
    x = MaxPooling2D(3, 2, padding="same", name="maxpool1")(x)
    x = _basic(_basic(x, "conv2", 64, 1), "conv3", 192, 3)
    x = MaxPooling2D(3, 2, padding="same", name="maxpool2")(x)
    x = block(block(x, "inception3a", INCEPTION_V1["3a"]), "inception3b", INCEPTION_V1["3b"])
    x = MaxPooling2D(3, 2, padding="same", name="maxpool3")(x)
    for key in ("4a", "4b", "4c", "4d", "4e"):
        x = block(x, f"inception{key}", INCEPTION_V1[key])
    x = MaxPooling2D(2, 2, padding="same", name="maxpool4")(x)
    x = block(block(x, "inception5a", INCEPTION_V1["5a"]), "inception5b", INCEPTION_V1["5b"])
    x = classifier_head(x, include_top, num_classes, pooling, classifier_activation, "fc", dropout=0.2,
                        pool_name="avgpool")
    return finish(inp, x, "inception_v1", weights, "inception_v1/torchvision", include_top, num_classes,
                  skip=("aux1.", "aux2."))


class _V3Units:
    """Convolution units and pooling of one InceptionV3 variant (names, BatchNorm, average pooling)."""

    def __init__(self, variant):
        self.keras = variant == "keras"
        self.count = 0

    def conv(self, x, name, filters, kernel, stride=1, padding="same"):
        if self.keras:
            i = self.count
            self.count += 1
            conv_name = "conv2d" if i == 0 else f"conv2d_{i}"
            bn_name = "batch_normalization" if i == 0 else f"batch_normalization_{i}"
            return conv_bn(x, filters, kernel, stride, padding, conv_name=conv_name, bn_name=bn_name, eps=1e-3,
                           scale=False, momentum=0.99)
        return _basic(x, name, filters, kernel, stride, padding=padding)

    def avg_pool(self, x):
        if self.keras:  # Keras averages only the real elements at the borders
            return AveragePooling2D(3, 1, padding="same")(x)
        # torch's avg_pool2d(3, 1, padding=1) counts the zero padding (count_include_pad=True)
        return AveragePooling2D(3, 1)(ZeroPadding2D(1)(x))

    def concat(self, tensors, keras_name):
        return Concatenate(name=keras_name if self.keras else None)(tensors)


def _block_a(u, x, name, kname, pool_features):
    b1 = u.conv(x, f"{name}.branch1x1", 64, 1)
    b5 = u.conv(u.conv(x, f"{name}.branch5x5_1", 48, 1), f"{name}.branch5x5_2", 64, 5)
    b3 = u.conv(x, f"{name}.branch3x3dbl_1", 64, 1)
    b3 = u.conv(u.conv(b3, f"{name}.branch3x3dbl_2", 96, 3), f"{name}.branch3x3dbl_3", 96, 3)
    bp = u.conv(u.avg_pool(x), f"{name}.branch_pool", pool_features, 1)
    return u.concat([b1, b5, b3, bp], kname)


def _block_b(u, x, name, kname):
    b3 = u.conv(x, f"{name}.branch3x3", 384, 3, 2, "valid")
    bd = u.conv(x, f"{name}.branch3x3dbl_1", 64, 1)
    bd = u.conv(u.conv(bd, f"{name}.branch3x3dbl_2", 96, 3), f"{name}.branch3x3dbl_3", 96, 3, 2, "valid")
    return u.concat([b3, bd, MaxPooling2D(3, 2)(x)], kname)


def _block_c(u, x, name, kname, c7):
    b1 = u.conv(x, f"{name}.branch1x1", 192, 1)
    b7 = u.conv(x, f"{name}.branch7x7_1", c7, 1)
    b7 = u.conv(u.conv(b7, f"{name}.branch7x7_2", c7, (1, 7)), f"{name}.branch7x7_3", 192, (7, 1))
    bd = u.conv(x, f"{name}.branch7x7dbl_1", c7, 1)
    for i, (f, k) in enumerate(((c7, (7, 1)), (c7, (1, 7)), (c7, (7, 1)), (192, (1, 7))), start=2):
        bd = u.conv(bd, f"{name}.branch7x7dbl_{i}", f, k)
    bp = u.conv(u.avg_pool(x), f"{name}.branch_pool", 192, 1)
    return u.concat([b1, b7, bd, bp], kname)


def _block_d(u, x, name, kname):
    b3 = u.conv(u.conv(x, f"{name}.branch3x3_1", 192, 1), f"{name}.branch3x3_2", 320, 3, 2, "valid")
    b7 = u.conv(x, f"{name}.branch7x7x3_1", 192, 1)
    b7 = u.conv(u.conv(b7, f"{name}.branch7x7x3_2", 192, (1, 7)), f"{name}.branch7x7x3_3", 192, (7, 1))
    b7 = u.conv(b7, f"{name}.branch7x7x3_4", 192, 3, 2, "valid")
    return u.concat([b3, b7, MaxPooling2D(3, 2)(x)], kname)


def _block_e(u, x, name, kname, index):
    b1 = u.conv(x, f"{name}.branch1x1", 320, 1)
    b3 = u.conv(x, f"{name}.branch3x3_1", 384, 1)
    b3 = u.concat([u.conv(b3, f"{name}.branch3x3_2a", 384, (1, 3)), u.conv(b3, f"{name}.branch3x3_2b", 384, (3, 1))],
                  f"mixed9_{index}")
    bd = u.conv(x, f"{name}.branch3x3dbl_1", 448, 1)
    bd = u.conv(bd, f"{name}.branch3x3dbl_2", 384, 3)
    bd = u.concat([u.conv(bd, f"{name}.branch3x3dbl_3a", 384, (1, 3)),
                   u.conv(bd, f"{name}.branch3x3dbl_3b", 384, (3, 1))], None)
    bp = u.conv(u.avg_pool(x), f"{name}.branch_pool", 192, 1)
    return u.concat([b1, b3, bd, bp], kname)


def InceptionV3(num_classes=1000, include_top=True, input_shape=(299, 299, 3), weights=None,  # noqa: N802
                variant="torchvision", pooling=None, classifier_activation="default"):
    """Inception-v3 without the auxiliary classifier. Arguments as in ``ember.zoo.models.ResNet``.

    Example:
        >>> from ember.zoo.models import InceptionV3
        >>> sum(w.size for w in InceptionV3().trainable_weights)
        23834568
    """
    check_variant(variant)
    activation = default_activation(variant, classifier_activation)
    u = _V3Units(variant)
    inp = Input(shape=tuple(input_shape))
    x = u.conv(inp, "Conv2d_1a_3x3", 32, 3, 2, "valid")
    x = u.conv(x, "Conv2d_2a_3x3", 32, 3, padding="valid")
    x = u.conv(x, "Conv2d_2b_3x3", 64, 3)
    x = MaxPooling2D(3, 2, name=None if u.keras else "maxpool1")(x)
    x = u.conv(x, "Conv2d_3b_1x1", 80, 1, padding="valid")
    x = u.conv(x, "Conv2d_4a_3x3", 192, 3, padding="valid")
    x = MaxPooling2D(3, 2, name=None if u.keras else "maxpool2")(x)
    for i, (name, pool_features) in enumerate((("Mixed_5b", 32), ("Mixed_5c", 64), ("Mixed_5d", 64))):
        x = _block_a(u, x, name, f"mixed{i}", pool_features)
    x = _block_b(u, x, "Mixed_6a", "mixed3")
    for i, (name, c7) in enumerate((("Mixed_6b", 128), ("Mixed_6c", 160), ("Mixed_6d", 160), ("Mixed_6e", 192))):
        x = _block_c(u, x, name, f"mixed{4 + i}", c7)
    x = _block_d(u, x, "Mixed_7a", "mixed8")
    x = _block_e(u, x, "Mixed_7b", "mixed9", 0)
    x = _block_e(u, x, "Mixed_7c", "mixed10", 1)
    x = classifier_head(x, include_top, num_classes, pooling, activation, "predictions" if u.keras else "fc",
                        dropout=0.0 if u.keras else 0.5, pool_name="avg_pool" if u.keras else "avgpool")
    return finish(inp, x, "inception_v3", weights, f"inception_v3/{variant}", include_top, num_classes,
                  skip=("AuxLogits.",))
