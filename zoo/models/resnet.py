"""ResNet-18/34/50/101/152 (He et al. 2015), in torchvision's and Keras's published layouts.

``variant="torchvision"`` (ResNet v1.5): the stride of a bottleneck is on its 3x3 convolution,
convolutions have no bias, BatchNorm eps 1e-5, logits out; layers are named by torchvision's module
paths (``conv1``, ``layer1.0.conv2``, ``layer1.0.downsample.0``, ``fc``).
``variant="keras"`` (ResNet v1, ``keras.applications.ResNet50``): the stride is on the first 1x1
convolution, convolutions have a bias, BatchNorm eps 1.001e-5, softmax out; Keras's layer names
(``conv1_conv``, ``conv2_block1_1_conv``, ``predictions``). Keras has no ResNet-18/34.
"""
from ember.layers import Activation, Add, Input, MaxPooling2D, ZeroPadding2D
from ember.zoo.models.common import check_variant, classifier_head, conv_bn, default_activation, finish

# blocks per stage; stage widths are 64, 128, 256, 512
DEPTHS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}
WIDTHS = (64, 128, 256, 512)


def _torchvision_block(x, name, filters, stride, bottleneck, downsample):
    """torchvision's BasicBlock / Bottleneck; 3x3 convolutions with stride 2 pad 1 on both sides."""
    def conv3(t, f, s, i, relu):
        pad = 1 if s > 1 else None
        return conv_bn(t, f, 3, s, pad=pad, conv_name=f"{name}.conv{i}", bn_name=f"{name}.bn{i}", relu=relu)

    if bottleneck:
        y = conv_bn(x, filters, 1, conv_name=f"{name}.conv1", bn_name=f"{name}.bn1")
        y = conv3(y, filters, stride, 2, "relu")
        y = conv_bn(y, filters * 4, 1, conv_name=f"{name}.conv3", bn_name=f"{name}.bn3", relu=None)
        out = filters * 4
    else:
        y = conv3(conv3(x, filters, stride, 1, "relu"), filters, 1, 2, None)
        out = filters
    if downsample:
        x = conv_bn(x, out, 1, stride, padding="valid", conv_name=f"{name}.downsample.0",
                    bn_name=f"{name}.downsample.1", relu=None)
    return Activation("relu")(Add()([y, x]))


def _keras_block(x, name, filters, stride, shortcut):
    """keras.applications' ``block1`` (ResNet v1 bottleneck, stride on the first 1x1)."""
    common = {"eps": 1.001e-5, "use_bias": True, "momentum": 0.99}
    if shortcut:
        x_short = conv_bn(x, filters * 4, 1, stride, padding="valid", conv_name=f"{name}_0_conv",
                          bn_name=f"{name}_0_bn", relu=None, **common)
    else:
        x_short = x
    y = conv_bn(x, filters, 1, stride, padding="valid", conv_name=f"{name}_1_conv", bn_name=f"{name}_1_bn",
                **common)
    y = conv_bn(y, filters, 3, conv_name=f"{name}_2_conv", bn_name=f"{name}_2_bn", **common)
    y = conv_bn(y, filters * 4, 1, conv_name=f"{name}_3_conv", bn_name=f"{name}_3_bn", relu=None, **common)
    return Activation("relu", name=f"{name}_out")(Add(name=f"{name}_add")([x_short, y]))


def ResNet(depth, num_classes=1000, include_top=True, input_shape=(224, 224, 3), weights=None,  # noqa: N802
           variant="torchvision", pooling=None, classifier_activation="default"):
    """A ResNet of ``depth`` 18, 34, 50, 101 or 152 (see the module docstring for the two variants).

    Args:
        num_classes: classifier outputs (with ``include_top``).
        include_top: end with global average pooling and the Dense classifier; otherwise the last
            feature map, pooled by ``pooling`` (None, "avg" or "max").
        input_shape: (H, W, 3), channels last.
        weights: None (random), "imagenet" (downloaded once, verified) or a weights file path.
        variant: "torchvision" or "keras".
        classifier_activation: "default" (softmax for keras, logits for torchvision), None or a name.

    Example:
        >>> from ember.zoo.models import ResNet18
        >>> ResNet18(num_classes=10, input_shape=(32, 32, 3)).count_params()
        11191242
    """
    if depth not in DEPTHS:
        raise ValueError(f"ResNet depth must be one of {sorted(DEPTHS)}, got {depth!r}")
    check_variant(variant)
    bottleneck = depth >= 50
    if variant == "keras" and not bottleneck:
        raise ValueError(f"Keras publishes no ResNet-{depth}: use variant='torchvision'")
    activation = default_activation(variant, classifier_activation)
    inp = Input(shape=tuple(input_shape))
    if variant == "torchvision":
        x = conv_bn(inp, 64, 7, 2, pad=3, conv_name="conv1", bn_name="bn1")
        x = MaxPooling2D(3, 2, name="maxpool")(ZeroPadding2D(1)(x))  # after a ReLU, zero padding = -inf padding
        cin = 64
        for stage, (filters, blocks) in enumerate(zip(WIDTHS, DEPTHS[depth])):
            for b in range(blocks):
                stride = 2 if stage > 0 and b == 0 else 1
                out = filters * 4 if bottleneck else filters
                x = _torchvision_block(x, f"layer{stage + 1}.{b}", filters, stride, bottleneck,
                                       downsample=b == 0 and (stride != 1 or cin != out))
                cin = out
        x = classifier_head(x, include_top, num_classes, pooling, activation, "fc", pool_name="avgpool")
    else:
        x = ZeroPadding2D(3, name="conv1_pad")(inp)
        x = conv_bn(x, 64, 7, 2, padding="valid", conv_name="conv1_conv", bn_name="conv1_bn", eps=1.001e-5,
                    use_bias=True, momentum=0.99)
        x = MaxPooling2D(3, 2, name="pool1_pool")(ZeroPadding2D(1, name="pool1_pad")(x))
        for stage, (filters, blocks) in enumerate(zip(WIDTHS, DEPTHS[depth])):
            for b in range(blocks):
                x = _keras_block(x, f"conv{stage + 2}_block{b + 1}", filters, 2 if stage > 0 and b == 0 else 1,
                                 shortcut=b == 0)
        x = classifier_head(x, include_top, num_classes, pooling, activation, "predictions", pool_name="avg_pool")
    return finish(inp, x, f"resnet{depth}", weights, f"resnet{depth}/{variant}", include_top, num_classes,
                  skip=())


def ResNet18(**kwargs):  # noqa: N802 - Keras-style builder names
    """ResNet-18 (torchvision): 11,689,512 parameters with the classifier. Arguments as in ``ResNet``
    (``num_classes``, ``include_top``, ``input_shape``, ``weights``, ``variant``, ``pooling``,
    ``classifier_activation``); ``weights="imagenet"`` downloads torchvision's file once and verifies it.

    Example:
        >>> from ember.zoo.models import ResNet18
        >>> model = ResNet18(include_top=False, input_shape=(32, 32, 3))
        >>> model.outputs[0].shape, model.count_params()  # batch-norm moving statistics included
        ((None, 1, 1, 512), 11186112)
        >>> pretrained = ResNet18(weights="imagenet")  # doctest: +SKIP
    """
    return ResNet(18, **kwargs)


def ResNet34(**kwargs):  # noqa: N802
    """ResNet-34 (torchvision): 21,797,672 parameters with the classifier. Arguments as in ``ResNet``
    (``num_classes``, ``include_top``, ``input_shape``, ``weights``, ``variant``, ``pooling``,
    ``classifier_activation``); ``weights="imagenet"`` downloads torchvision's file once and verifies it.

    Example:
        >>> from ember.zoo.models import ResNet34
        >>> model = ResNet34(include_top=False, input_shape=(32, 32, 3))
        >>> model.outputs[0].shape, model.count_params()  # batch-norm moving statistics included
        ((None, 1, 1, 512), 21301696)
        >>> pretrained = ResNet34(weights="imagenet")  # doctest: +SKIP
    """
    return ResNet(34, **kwargs)


def ResNet50(**kwargs):  # noqa: N802
    """ResNet-50: 25,557,032 trainable parameters (torchvision), 25,583,592 (keras, with conv biases).

    Example:
        >>> from ember.zoo.models import ResNet50
        >>> model = ResNet50(include_top=False, pooling="avg", input_shape=(64, 64, 3))
        >>> model.outputs[0].shape
        (None, 2048)
    """
    return ResNet(50, **kwargs)


def ResNet101(**kwargs):  # noqa: N802
    """ResNet-101: 44,549,160 trainable parameters with the classifier (torchvision). Arguments as in ``ResNet``
    (``num_classes``, ``include_top``, ``input_shape``, ``weights``, ``variant``, ``pooling``,
    ``classifier_activation``); ``weights="imagenet"`` downloads torchvision's file once and verifies it.

    Example:
        >>> from ember.zoo.models import ResNet101
        >>> model = ResNet101(include_top=False, input_shape=(32, 32, 3))
        >>> model.outputs[0].shape, model.count_params()  # batch-norm moving statistics included
        ((None, 1, 1, 2048), 42605504)
        >>> pretrained = ResNet101(weights="imagenet")  # doctest: +SKIP
    """
    return ResNet(101, **kwargs)


def ResNet152(**kwargs):  # noqa: N802
    """ResNet-152: 60,192,808 trainable parameters with the classifier (torchvision). Arguments as in ``ResNet``
    (``num_classes``, ``include_top``, ``input_shape``, ``weights``, ``variant``, ``pooling``,
    ``classifier_activation``); ``weights="imagenet"`` downloads torchvision's file once and verifies it.

    Example:
        >>> from ember.zoo.models import ResNet152
        >>> model = ResNet152(include_top=False, input_shape=(32, 32, 3))
        >>> model.outputs[0].shape, model.count_params()  # batch-norm moving statistics included
        ((None, 1, 1, 2048), 58295232)
        >>> pretrained = ResNet152(weights="imagenet")  # doctest: +SKIP
    """
    return ResNet(152, **kwargs)
