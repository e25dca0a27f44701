"""What every zoo builder shares: the convolution + batch-norm unit, the classifier head, and loading
``weights`` (None, "imagenet" or a file) once the model is built.

Layer names are the weight files' own: a ``variant="torchvision"`` model names its layers by
torchvision's module paths (``layer1.0.conv1``), a ``variant="keras"`` model by Keras's layer names
(``conv2_block1_1_conv``). So ``load_torch`` and ``load_keras_weights`` match weights by name with one
rule for every model (plus the per-type layout conversion), never with a table per model.
"""
import os

from ember.layers import (
    Activation,
    BatchNormalization,
    Conv2D,
    Dense,
    Dropout,
    GlobalAveragePooling2D,
    GlobalMaxPooling2D,
    ZeroPadding2D,
)

VARIANTS = ("torchvision", "keras")


def check_variant(variant, allowed=VARIANTS):
    if variant not in allowed:
        raise ValueError(f"variant must be one of {allowed}, got {variant!r}")
    return variant


def conv_bn(x, filters, kernel, stride=1, padding="same", conv_name=None, bn_name=None, relu="relu",
            eps=1e-5, use_bias=False, scale=True, momentum=0.9, pad=None, pad_name=None):
    """Conv2D -> BatchNormalization -> activation (``relu=None``: none). ``pad`` (an int or
    ((top, bottom), (left, right))) puts an explicit ZeroPadding2D before a ``valid`` convolution,
    as PyTorch's symmetric padding needs where Keras's ``same`` would pad one side only."""
    if pad is not None:
        x = ZeroPadding2D(pad, name=pad_name)(x)
        padding = "valid"
    x = Conv2D(filters, kernel, strides=stride, padding=padding, use_bias=use_bias, name=conv_name)(x)
    x = BatchNormalization(epsilon=eps, momentum=momentum, scale=scale, name=bn_name)(x)
    return Activation(relu)(x) if relu else x


def classifier_head(x, include_top, num_classes, pooling, activation, dense_name, dropout=0.0, pool_name=None):
    """Global average pooling, optional dropout and the Dense classifier when ``include_top``;
    otherwise the feature map, pooled by ``pooling`` (None, "avg" or "max")."""
    if include_top:
        x = GlobalAveragePooling2D(name=pool_name)(x)
        if dropout:
            x = Dropout(dropout)(x)
        return Dense(num_classes, activation=activation, name=dense_name)(x)
    if pooling == "avg":
        return GlobalAveragePooling2D(name=pool_name)(x)
    if pooling == "max":
        return GlobalMaxPooling2D()(x)
    if pooling is not None:
        raise ValueError(f"pooling must be None, 'avg' or 'max', got {pooling!r}")
    return x


def default_activation(variant, classifier_activation):
    """Keras's applications end in softmax, torchvision's in logits; "default" picks the family's."""
    if classifier_activation == "default":
        return "softmax" if variant == "keras" else None
    return classifier_activation


def finish(inputs, outputs, name, weights, registry_key, include_top=True, num_classes=1000, skip=()):
    """The ``ember.Model`` for the graph, with ``weights`` loaded: None (random), "imagenet" (the
    registered file for ``registry_key``, downloaded once and verified) or a path to a ``.pt``/``.pth``
    (PyTorch), ``.h5``/``.keras`` (Keras) or ``.ember`` (ours, from ``model.save``) file."""
    from ember.zoo.keras import Model

    model = Model(inputs, outputs, name=name)
    if weights is None:
        return model
    if weights == "imagenet":
        from ember.zoo import weights as registry

        entry = registry.get(registry_key)
        if include_top and num_classes != len(entry.class_names()):
            raise ValueError(f"{name}: ImageNet weights have {len(entry.class_names())} classes; got "
                             f"num_classes={num_classes} (use include_top=False for another head)")
        path = registry.fetch(registry_key)
        load_file(model, path, entry.format, skip=skip, strict=include_top)
        model.preprocessing = entry.preprocessing
        model.class_names = entry.class_names()
        return model
    if isinstance(weights, (str, os.PathLike)):
        load_file(model, os.fspath(weights), None, skip=skip, strict=include_top)
        return model
    raise ValueError(f"{name}: weights must be None, 'imagenet' or a file path, got {weights!r}")


def load_file(model, path, file_format=None, skip=(), strict=True):
    """Load a weights file into ``model`` by its format ("torch", "keras"; None: by the suffix).
    ``strict=False`` lets the file hold more (a classifier the model was built without)."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"weights file {path!r} does not exist")
    suffix = os.path.splitext(path)[1].lower()
    if file_format is None:
        file_format = {".pt": "torch", ".pth": "torch", ".bin": "torch", ".h5": "keras", ".hdf5": "keras",
                       ".keras": "keras", ".ember": "ember"}.get(suffix)
    if file_format == "torch":
        from ember.zoo.importers.torch import load_torch

        load_torch(path, model, skip=skip, strict=strict)
    elif file_format == "keras":
        from ember.zoo.importers.keras import load_keras_weights

        load_keras_weights(path, model, strict=strict)
    elif file_format == "ember":
        from ember.layers import load_model

        saved = {layer.name: layer for layer in load_model(path).layers if layer.weights}
        missing = [layer.name for layer in model.layers if layer.weights and layer.name not in saved]
        extra = [name for name in saved if name not in {layer.name for layer in model.layers}]
        if missing or (extra and strict):
            raise ValueError(f"{path}: model layers missing from the file {missing}, file layers the model lacks "
                             f"{extra}")
        for layer in model.layers:
            if layer.weights:
                layer.set_weights(saved[layer.name].get_weights())
    else:
        raise ValueError(f"cannot tell the format of weights file {path!r}: expected .pt/.pth (PyTorch), "
                         ".h5/.keras (Keras) or .ember")
