"""VGG-16 and VGG-19 (Simonyan & Zisserman 2014): 3x3 convolutions in five blocks, then three Dense.

Both families publish the same network (138,357,544 parameters for VGG-16) and differ in names and
in the order the first Dense reads the 7x7x512 feature map: torchvision flattens channels first, so
``variant="torchvision"`` permutes to (C, H, W) before flattening and its weights load unchanged.
Layer names: torchvision's ``features.N`` / ``classifier.N``, Keras's ``blockB_convC`` / ``fc1``.
"""
from ember.layers import Conv2D, Dense, Dropout, Flatten, Input, MaxPooling2D, Permute
from ember.zoo.models.common import check_variant, classifier_head, default_activation, finish

CONFIGS = {16: (2, 2, 3, 3, 3), 19: (2, 2, 4, 4, 4)}  # convolutions per block; widths 64, 128, 256, 512, 512
WIDTHS = (64, 128, 256, 512, 512)


def VGG(depth, num_classes=1000, include_top=True, input_shape=(224, 224, 3), weights=None,  # noqa: N802
        variant="torchvision", pooling=None, classifier_activation="default"):
    """VGG-``depth`` (16 or 19). Arguments as in ``ember.zoo.models.ResNet``; with ``include_top`` the
    input must be 224x224 (the first Dense reads a 7x7x512 map).

    Example:
        >>> from ember.zoo.models import VGG16
        >>> VGG16(include_top=False, input_shape=(32, 32, 3)).outputs[0].shape
        (None, 1, 1, 512)
    """
    if depth not in CONFIGS:
        raise ValueError(f"VGG depth must be one of {sorted(CONFIGS)}, got {depth!r}")
    check_variant(variant)
    activation = default_activation(variant, classifier_activation)
    torch_names = variant == "torchvision"
    inp = Input(shape=tuple(input_shape))
    x, index = inp, 0
    for block, (convs, width) in enumerate(zip(CONFIGS[depth], WIDTHS), start=1):
        for c in range(1, convs + 1):
            name = f"features.{index}" if torch_names else f"block{block}_conv{c}"
            x = Conv2D(width, 3, padding="same", activation="relu", name=name)(x)
            index += 2  # torchvision's Sequential holds the conv and its ReLU
        x = MaxPooling2D(2, 2, name=f"features.{index}" if torch_names else f"block{block}_pool")(x)
        index += 1
    if not include_top:
        return finish(inp, classifier_head(x, False, num_classes, pooling, None, None), f"vgg{depth}", weights,
                      f"vgg{depth}/{variant}", include_top, num_classes)
    if torch_names:
        x = Flatten()(Permute((3, 1, 2))(x))  # (C, H, W) order, as torch.flatten on NCHW
        x = Dropout(0.5)(Dense(4096, activation="relu", name="classifier.0")(x))
        x = Dropout(0.5)(Dense(4096, activation="relu", name="classifier.3")(x))
        x = Dense(num_classes, activation=activation, name="classifier.6")(x)
    else:
        x = Flatten(name="flatten")(x)
        x = Dense(4096, activation="relu", name="fc1")(x)
        x = Dense(4096, activation="relu", name="fc2")(x)
        x = Dense(num_classes, activation=activation, name="predictions")(x)
    return finish(inp, x, f"vgg{depth}", weights, f"vgg{depth}/{variant}", include_top, num_classes)


def VGG16(**kwargs):  # noqa: N802 - Keras-style builder names
    """VGG-16: 138,357,544 parameters with the classifier. Arguments as in ``VGG``
    (``num_classes``, ``include_top``, ``input_shape``, ``weights``, ``variant``, ``pooling``,
    ``classifier_activation``); ``weights="imagenet"`` downloads torchvision's file once and verifies it.

    Example:
        >>> from ember.zoo.models import VGG16
        >>> model = VGG16(include_top=False, input_shape=(32, 32, 3))
        >>> model.outputs[0].shape, model.count_params()
        ((None, 1, 1, 512), 14714688)
        >>> pretrained = VGG16(weights="imagenet")  # doctest: +SKIP
    """
    return VGG(16, **kwargs)


def VGG19(**kwargs):  # noqa: N802
    """VGG-19: 143,667,240 parameters with the classifier. Arguments as in ``VGG``
    (``num_classes``, ``include_top``, ``input_shape``, ``weights``, ``variant``, ``pooling``,
    ``classifier_activation``); ``weights="imagenet"`` downloads torchvision's file once and verifies it.

    Example:
        >>> from ember.zoo.models import VGG19
        >>> model = VGG19(include_top=False, input_shape=(32, 32, 3))
        >>> model.outputs[0].shape, model.count_params()
        ((None, 1, 1, 512), 20024384)
        >>> pretrained = VGG19(weights="imagenet")  # doctest: +SKIP
    """
    return VGG(19, **kwargs)
