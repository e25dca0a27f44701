"""Keras models into ember: architecture and weights from Keras 3 ``.keras`` files and Keras 2 /
legacy ``.h5`` files (h5py, imported only here and only when such a file is read).

``.keras`` is a zip of ``config.json`` (the model's config), ``metadata.json`` and ``model.weights.h5``
(weights under ``layers/<layer name>/vars/<i>``). ``.h5`` keeps the config in the root's
``model_config`` attribute and weights under ``model_weights/<layer name>/`` in the order of that
group's ``weight_names``. Both layouts are channels-last like ember's, so arrays copy unchanged;
each Keras layer's weight order (kernel, bias; gamma, beta, moving mean, moving variance) is ours.
"""
import io
import json
import os
import re
import stat

import numpy as np

from ember import layers as L
from ember.layers.archive import (
    MAX_MEMBER_BYTES,
    MAX_RATIO,
    SMALL_MEMBER,
    ModelFileError,
    open_archive,
    read_json,
    read_member,
)
from ember.layers.containers import Model as _GraphModel


def _h5py():
    try:
        import h5py
    except ImportError as e:  # h5py is needed only for Keras files
        raise ImportError("reading Keras files needs h5py: pip install h5py") from e
    return h5py


# ---------------------------------------------------------------- reading files
class _Budget:
    """Bytes the datasets of one file may still take: an HDF5 file declares its datasets' shapes, so each
    is checked against the file's size (and the same compression-ratio cap as ember's own files) before
    it is read, and object or variable-length datasets are refused."""

    def __init__(self, source, file_bytes):
        self.source = source
        self.left = min(MAX_MEMBER_BYTES, file_bytes * MAX_RATIO + SMALL_MEMBER)

    def read(self, dataset, where):
        if not hasattr(dataset, "dtype") or dataset.dtype.kind not in "biuf":
            raise ModelFileError(self.source, where, "a numeric dataset (object, string or variable-length data "
                                 "is refused)")
        size = int(np.prod(dataset.shape, dtype=np.int64)) * dataset.dtype.itemsize
        if size > self.left:
            raise ModelFileError(self.source, where, f"at most {self.left} more bytes (the file is "
                                 f"smaller than its datasets claim), it declares {size}")
        self.left -= size
        return np.asarray(dataset)


_MODEL_CLASSES = ("Sequential", "Functional", "Model")


def _object_vars(group, budget, where):
    """The variables of one saved Keras 3 object in the layer's weight order: its own ``vars`` (0, 1, ...),
    then those of the objects it holds (an RNN's ``cell``, a Bidirectional's ``forward_layer`` before its
    ``backward_layer``, a wrapper's ``layer``)."""
    arrays = []
    if "vars" in group:
        arrays += [budget.read(group["vars"][str(i)], f"{where}, variable {i}") for i in range(len(group["vars"]))]
    inner = [k for k in group if k not in ("vars", "layers")]
    for key in sorted(inner, key=lambda k: (k != "forward_layer", k != "backward_layer", k)):
        arrays += _object_vars(group[key], budget, f"{where}/{key}")
    return arrays


def _keras3_keys(specs):
    """[(key, spec)]: Keras 3 saves a model's layers under keys made from their class (``conv2d``,
    ``conv2d_1``, ... counted per class in the order of the layers), not under their names."""
    used, out = {}, []
    for spec in specs:
        key = _snake(spec["class_name"])
        used[key] = used.get(key, -1) + 1
        out.append((key if used[key] == 0 else f"{key}_{used[key]}", spec))
    return out


def _weights_keras3(group, budget, specs=None, prefix=""):
    """{layer name: [arrays]} from a Keras 3 ``model.weights.h5`` group; the layers of a nested model are
    named ``<model name>/<layer name>``. Without a config (``specs`` None) layers keep their keys."""
    out = {}
    layers = group.get("layers")
    if layers is None:
        return out
    named = [(key, spec["config"]["name"], spec) for key, spec in _keras3_keys(specs or [])]
    claimed = {key for key, _, _ in named}
    named += [(key, key, None) for key in layers if key not in claimed]
    for key, name, spec in named:
        if key not in layers:
            continue
        sub = layers[key]
        if "layers" in sub:  # a model inside the model
            inner = spec["config"].get("layers") if spec is not None else None
            out.update(_weights_keras3(sub, budget, inner, prefix=f"{prefix}{name}/"))
            continue
        arrays = _object_vars(sub, budget, f"layer {prefix}{name}")
        if arrays:
            out[prefix + name] = arrays
    return out


def _weights_h5(group, budget, config=None):
    """{layer name: [arrays]} from a legacy ``.h5`` file's ``model_weights`` group, in the file's order; the
    layers of a nested model (weights named ``<model>/<layer>/<weight>``) as ``<model>/<layer>``."""
    names = [n.decode() if isinstance(n, bytes) else str(n) for n in group.attrs.get("layer_names", list(group))]
    specs = (config or {}).get("config", {}).get("layers", []) if isinstance(config, dict) else []
    models = {spec["config"]["name"] for spec in specs if spec.get("class_name") in _MODEL_CLASSES}
    out = {}
    for name in names:
        sub = group[name]
        weight_names = [w.decode() if isinstance(w, bytes) else str(w) for w in sub.attrs.get("weight_names", [])]
        for w in weight_names:
            parts = w.split("/")
            if name in models and parts[0] == name and len(parts) > 2:  # a nested Sequential: "head/dense/kernel"
                parts = parts[1:]
            # a nested Functional's weights are named "dense/kernel"
            key = f"{name}/{parts[0]}" if name in models and len(parts) > 1 else name
            out.setdefault(key, []).append(budget.read(sub[w], f"layer {name}, weight {w}"))
    return out


def _first_bytes(source, count=8):
    """The first bytes of a regular file (a FIFO, device or folder is refused before it is opened)."""
    try:
        info = os.stat(source)
    except OSError as e:
        raise ModelFileError(source, "cannot be read", f"a Keras file ({e.strerror or e})") from None
    if not stat.S_ISREG(info.st_mode):
        raise ModelFileError(source, "is not a regular file", "a Keras file (a FIFO, device or folder is refused)")
    with open(source, "rb") as f:
        return f.read(count)


def read_keras(path):
    """(model config or None, {layer name: [weight arrays in Keras order]}) of a ``.keras`` or ``.h5`` file.

    Example:
        >>> config, weights = read_keras("mobilenet_v2.keras")  # doctest: +SKIP
        >>> [w.shape for w in weights["Conv1"]]  # doctest: +SKIP
        [(3, 3, 3, 32)]
    """
    source = os.fspath(path)
    head = _first_bytes(source)
    if head[:4] == b"PK\x03\x04":
        with open_archive(source, "a Keras 3 .keras file") as zf:
            if "model.weights.h5" not in zf.namelist():
                raise ModelFileError(source, "member model.weights.h5", "present (a Keras 3 .keras file has it)")
            config = read_json(zf, source, "config.json") if "config.json" in zf.namelist() else None
            data = read_member(zf, source, "model.weights.h5")
        try:
            specs = config.get("config", {}).get("layers") if isinstance(config, dict) else None
            with _h5py().File(io.BytesIO(data), "r") as f:
                return config, _weights_keras3(f, _Budget(source, len(data)), specs)
        except (OSError, KeyError, ValueError, TypeError) as e:
            if isinstance(e, ModelFileError):
                raise
            raise ModelFileError(source, "member model.weights.h5", f"Keras weights in HDF5 ({e})") from None
    if head != b"\x89HDF\r\n\x1a\n":
        raise ModelFileError(source, "its first bytes", "a .keras zip or an HDF5 (.h5) file")
    try:
        with _h5py().File(source, "r") as f:
            raw = f.attrs.get("model_config")
            config = json.loads(raw.decode() if isinstance(raw, bytes) else raw) if raw is not None else None
            group = f["model_weights"] if "model_weights" in f else f  # save_weights files have no model_weights
            return config, _weights_h5(group, _Budget(source, os.path.getsize(source)), config)
    except (OSError, KeyError, ValueError, TypeError, RecursionError) as e:
        if isinstance(e, ModelFileError):
            raise
        raise ModelFileError(source, "its HDF5 content", f"a Keras model file ({type(e).__name__}: {e})") from None


def _snake(name):
    """Keras's ``naming.to_snake_case``: "DepthwiseConv2D" -> "depthwise_conv2d"."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _natural(name):
    """("conv2d", 7) for "conv2d_7", ("conv2d", -1) for "conv2d": sorts Keras's automatic names in creation order."""
    match = re.fullmatch(r"(.*?)(?:_(\d+))?", name)
    return match.group(1), int(match.group(2)) if match.group(2) is not None else -1


# ---------------------------------------------------------------- layers
def _pick(cfg, *keys):
    return {k: cfg[k] for k in keys if k in cfg}


def _one_axis(axis):
    return axis[0] if isinstance(axis, (list, tuple)) else axis


def _activation(cfg):
    act = cfg.get("activation", "linear")
    if not isinstance(act, str):
        raise ValueError(f"Keras layer '{cfg.get('name')}': activation {act!r} is not a built-in name")
    return act


def _relu(cfg):
    max_value, slope, threshold = cfg.get("max_value"), cfg.get("negative_slope", 0.0), cfg.get("threshold", 0.0)
    if slope == 0 and threshold == 0 and max_value in (None, 6, 6.0):
        return L.Activation("relu" if max_value is None else "relu6", name=cfg["name"])
    raise ValueError(f"Keras layer '{cfg['name']}' (ReLU) with max_value={max_value}, negative_slope={slope}, "
                     f"threshold={threshold} has no ember equivalent")


_CONV = ("strides", "padding", "data_format", "dilation_rate", "use_bias")
_RNN = ("use_bias", "return_sequences", "return_state", "go_backwards", "dropout", "recurrent_dropout", "unroll")


def _gru(cfg):
    if not cfg.get("reset_after", True):
        raise ValueError(f"Keras layer '{cfg['name']}' (GRU) with reset_after=False has no ember equivalent (ember's "
                         "GRU is Keras's default reset_after=True layout)")
    if not isinstance(cfg.get("recurrent_activation", "sigmoid"), str):
        raise ValueError(f"Keras layer '{cfg['name']}': recurrent_activation is not a built-in name")
    return L.GRU(cfg["units"], activation=_activation(cfg), **_pick(cfg, *_RNN, "recurrent_activation"))
_BUILDERS = {
    "Dense": lambda c: L.Dense(c["units"], activation=_activation(c), **_pick(c, "use_bias")),
    "Conv2D": lambda c: L.Conv2D(c["filters"], c["kernel_size"], activation=_activation(c),
                                 **_pick(c, *_CONV, "groups")),
    "Conv1D": lambda c: L.Conv1D(c["filters"], c["kernel_size"], activation=_activation(c),
                                 **_pick(c, *_CONV, "groups")),
    "DepthwiseConv2D": lambda c: L.DepthwiseConv2D(c["kernel_size"], activation=_activation(c),
                                                   **_pick(c, *_CONV, "depth_multiplier")),
    "MaxPooling2D": lambda c: L.MaxPooling2D(**_pick(c, "pool_size", "strides", "padding", "data_format")),
    "AveragePooling2D": lambda c: L.AveragePooling2D(**_pick(c, "pool_size", "strides", "padding", "data_format")),
    "GlobalAveragePooling2D": lambda c: L.GlobalAveragePooling2D(**_pick(c, "data_format", "keepdims")),
    "GlobalMaxPooling2D": lambda c: L.GlobalMaxPooling2D(**_pick(c, "data_format", "keepdims")),
    "ZeroPadding2D": lambda c: L.ZeroPadding2D(c["padding"], **_pick(c, "data_format")),
    "BatchNormalization": lambda c: L.BatchNormalization(axis=_one_axis(c.get("axis", -1)),
                                                         **_pick(c, "momentum", "epsilon", "center", "scale")),
    "LayerNormalization": lambda c: L.LayerNormalization(**_pick(c, "axis", "epsilon", "center", "scale")),
    "Activation": lambda c: L.Activation(_activation(c)),
    "Dropout": lambda c: L.Dropout(c["rate"]),
    "Flatten": lambda c: L.Flatten(**_pick(c, "data_format")),
    "Reshape": lambda c: L.Reshape(c["target_shape"]),
    "Permute": lambda c: L.Permute(c["dims"]),
    "Embedding": lambda c: L.Embedding(c["input_dim"], c["output_dim"], **_pick(c, "mask_zero")),
    "Conv2DTranspose": lambda c: L.Conv2DTranspose(c["filters"], c["kernel_size"], activation=_activation(c),
                                                   **_pick(c, *_CONV, "output_padding")),
    "SeparableConv2D": lambda c: L.SeparableConv2D(c["filters"], c["kernel_size"], activation=_activation(c),
                                                   **_pick(c, *_CONV, "depth_multiplier")),
    "MaxPooling1D": lambda c: L.MaxPooling1D(**_pick(c, "pool_size", "strides", "padding", "data_format")),
    "AveragePooling1D": lambda c: L.AveragePooling1D(**_pick(c, "pool_size", "strides", "padding", "data_format")),
    "GlobalAveragePooling1D": lambda c: L.GlobalAveragePooling1D(**_pick(c, "data_format", "keepdims")),
    "GlobalMaxPooling1D": lambda c: L.GlobalMaxPooling1D(**_pick(c, "data_format", "keepdims")),
    "UpSampling2D": lambda c: L.UpSampling2D(**_pick(c, "size", "data_format", "interpolation")),
    "Cropping2D": lambda c: L.Cropping2D(**_pick(c, "cropping", "data_format")),
    "SpatialDropout1D": lambda c: L.SpatialDropout1D(c["rate"]),
    "SpatialDropout2D": lambda c: L.SpatialDropout2D(c["rate"], **_pick(c, "data_format")),
    "RepeatVector": lambda c: L.RepeatVector(c["n"]),
    "Masking": lambda c: L.Masking(**_pick(c, "mask_value")),
    "SimpleRNN": lambda c: L.SimpleRNN(c["units"], activation=_activation(c), **_pick(c, *_RNN)),
    "LSTM": lambda c: L.LSTM(c["units"], activation=_activation(c), **_pick(c, *_RNN, "recurrent_activation")),
    "GRU": lambda c: _gru(c),
    "Add": lambda c: L.Add(), "Subtract": lambda c: L.Subtract(), "Multiply": lambda c: L.Multiply(),
    "Average": lambda c: L.Average(), "Maximum": lambda c: L.Maximum(), "Minimum": lambda c: L.Minimum(),
    "Concatenate": lambda c: L.Concatenate(axis=c.get("axis", -1)),
}


_WRAPPERS = ("Bidirectional", "TimeDistributed")


def _make_layer(spec, source):
    cls, cfg = spec["class_name"], spec["config"]
    if cls == "ReLU":
        return _relu(cfg)
    if cls in _MODEL_CLASSES:  # a model used as a layer of this one
        return _build_model(cls, cfg, source)
    if cls == "Bidirectional":
        backward = cfg.get("backward_layer")
        layer = L.Bidirectional(_make_layer(cfg["layer"], source), merge_mode=cfg.get("merge_mode", "concat"),
                                backward_layer=_make_layer(backward, source) if backward else None)
    elif cls == "TimeDistributed":
        layer = L.TimeDistributed(_make_layer(cfg["layer"], source))
    elif cls in _BUILDERS:
        layer = _BUILDERS[cls](cfg)
    else:
        raise ValueError(f"{source}: Keras layer '{cfg.get('name')}' ({cls}) has no ember equivalent; supported: "
                         f"{', '.join(sorted([*_BUILDERS, *_WRAPPERS, 'InputLayer', 'ReLU', *_MODEL_CLASSES]))}")
    layer.name = cfg["name"]
    return layer


def _input(spec):
    cfg = spec["config"]
    shape = cfg.get("batch_shape") or cfg.get("batch_input_shape")
    dtype = cfg.get("dtype") if isinstance(cfg.get("dtype"), str) else None
    return L.Input(shape=tuple(shape[1:]), dtype=dtype, name=cfg["name"])


# ---------------------------------------------------------------- graphs
def _history(arg):
    """(layer, node, tensor) of one inbound reference, in Keras 3's or Keras 2's form."""
    if isinstance(arg, dict):
        return tuple(arg["config"]["keras_history"])
    return tuple(arg[:3])


def _inbound(node):
    """The inputs of one inbound node as a list of (layer, node, tensor), and whether it was a list."""
    if isinstance(node, dict):  # Keras 3: {"args": [tensor or [tensors]], "kwargs": {}}
        arg = node["args"][0]
        if isinstance(arg, list):
            return [_history(a) for a in arg], True
        return [_history(arg)], False
    refs = [_history(ref) for ref in node]  # Keras 2: [[layer, node, tensor, kwargs], ...]
    return refs, len(refs) > 1


def _refs(value):
    if value and isinstance(value[0], str):
        return [tuple(value)]
    return [tuple(v) for v in value]


def _mask_only(specs, config):
    """Names of the layers whose outputs only feed other layers' ``mask`` arguments: Keras 3 records how it
    computed a mask (``NotEqual`` of an ``Embedding(mask_zero=True)``'s input) as graph nodes; in ember the
    mask travels with the tensor from the layer that makes it, so these nodes are not rebuilt."""
    used, masks = set(), set()
    for spec in specs:
        for node in spec.get("inbound_nodes", []):
            refs, _ = _inbound(node)
            used.update(r[0] for r in refs)
            mask = node.get("kwargs", {}).get("mask") if isinstance(node, dict) else None
            for ref in mask if isinstance(mask, list) else [mask]:
                if isinstance(ref, dict) and "keras_history" in ref.get("config", {}):
                    masks.add(ref["config"]["keras_history"][0])
    used.update(r[0] for r in _refs(config["output_layers"]))
    return masks - used


def _functional(config, source):
    specs = config["layers"]
    skipped = _mask_only(specs, config)
    specs = [spec for spec in specs if spec["config"]["name"] not in skipped]
    tensors, built, pending = {}, {}, []
    for spec in specs:
        if spec["class_name"] == "InputLayer":
            tensors[(spec["config"]["name"], 0, 0)] = _input(spec)
        else:
            built[spec["name"] if "name" in spec else spec["config"]["name"]] = _make_layer(spec, source)
            for index, node in enumerate(spec["inbound_nodes"]):
                pending.append((spec["config"]["name"], index, node))
    while pending:
        progress = []
        for item in pending:
            name, index, node = item
            refs, as_list = _inbound(node)
            if all(r in tensors for r in refs):
                args = [tensors[r] for r in refs]
                tensors[(name, index, 0)] = built[name](args if as_list else args[0])
                progress.append(item)
        if not progress:
            raise ValueError(f"{source}: the graph cannot be built: layers {[p[0] for p in pending]} wait on "
                             "inputs that no layer makes")
        pending = [p for p in pending if p not in progress]
    inputs = [tensors[r] for r in _refs(config["input_layers"])]
    outputs = [tensors[r] for r in _refs(config["output_layers"])]
    return inputs, outputs


def _sequential(config, source):
    specs = list(config["layers"])
    if specs and specs[0]["class_name"] == "InputLayer":
        x = _input(specs.pop(0))
    else:
        first = specs[0]["config"] if specs else {}
        shape = first.get("batch_input_shape") or config.get("build_input_shape")
        if shape is None:
            raise ValueError(f"{source}: a Sequential model without an input shape cannot be built")
        x = L.Input(shape=tuple(shape[1:]))
    inp = x
    for spec in specs:
        x = _make_layer(spec, source)(x)
    return inp, x


def load_keras(path):
    """An ember model (``ember.Model``: compile/fit/predict) with the architecture and weights of a Keras
    3 ``.keras`` or Keras 2 ``.h5`` file. A layer type without an ember equivalent is an error naming it.

    Example:
        >>> model = load_keras("classifier.keras")  # doctest: +SKIP
        >>> model.predict(x)  # doctest: +SKIP
    """
    from ember.zoo.keras import Model

    source = os.fspath(path)
    config, _ = read_keras(source)
    if config is None:
        raise ValueError(f"{source} holds weights only (no model config): build the model, then "
                         "load_keras_weights(path, model)")
    cls, cfg = config["class_name"], config["config"]
    if cls not in _MODEL_CLASSES:
        raise ValueError(f"{source}: a Keras {cls} model; only Functional and Sequential models can be read")
    model = _build_model(cls, cfg, source, Model)
    load_keras_weights(source, model)
    return model


def _build_model(cls, cfg, source, model_class=_GraphModel):
    """An ember graph model from a Keras Functional or Sequential config (also one nested in another)."""
    if cls == "Sequential":
        inputs, outputs = _sequential(cfg, source)
    else:
        inputs, outputs = _functional(cfg, source)
        inputs = inputs if len(inputs) > 1 else inputs[0]
        outputs = outputs if len(outputs) > 1 else outputs[0]
    return model_class(inputs, outputs, name=cfg.get("name"))


def _weighted_layers(model, prefix=""):
    """[(name, layer)] of the layers with weights; those of a nested model named ``<model>/<layer>``."""
    out = []
    for layer in model.layers:
        if isinstance(layer, _GraphModel):
            out.extend(_weighted_layers(layer, f"{prefix}{layer.name}/"))
        elif layer.weights:
            out.append((prefix + layer.name, layer))
    return out


def load_keras_weights(path, model, strict=True):
    """Copy the weights of a ``.keras``/``.h5`` file into ``model``, matched by layer name; when the
    names differ (Keras numbers automatic names per session: ``conv2d_7``), layers are matched in order
    within each layer type instead, as Keras's own by-order loading does. Nothing is copied unless every
    layer matches. ``strict=False`` ignores file layers the model lacks (e.g. a classifier left out).

    Example:
        >>> from ember.zoo.models import InceptionV3
        >>> model = InceptionV3(variant="keras")  # doctest: +SKIP
        >>> load_keras_weights("inception_v3_weights_tf_dim_ordering_tf_kernels.h5", model)  # doctest: +SKIP
    """
    source = os.fspath(path)
    _, arrays = read_keras(source)
    ours = _weighted_layers(model)
    pairs, problems, taken, missing = [], [], set(), []
    for kind in dict.fromkeys(type(layer) for _, layer in ours):
        snake = _snake(kind.__name__)
        mine = [(name, layer) for name, layer in ours if type(layer) is kind]
        auto = [item for item in mine if _natural(_base(item[0]))[0] == snake]  # Keras-style automatic names
        named = [item for item in mine if item not in auto]
        if all(name in arrays for name, _ in auto):
            named, auto = mine, []
        for name, layer in named:
            if name in arrays:
                pairs.append((name, layer, arrays[name]))
                taken.add(name)
            else:
                missing.append(name)
        if auto:  # names numbered from another start (another Keras session): match them in creation order
            theirs = sorted((n for n in arrays if n not in taken and _natural(_base(n))[0] == snake), key=_order)
            if len(theirs) != len(auto):
                problems.append(f"{len(auto)} {kind.__name__} layer(s) named '{snake}_N' in the model, "
                                f"{len(theirs)} in the file")
                continue
            for (_, layer), name in zip(sorted(auto, key=lambda item: _order(item[0])), theirs):
                pairs.append((name, layer, arrays[name]))
                taken.add(name)
    extra = [name for name in arrays if name not in taken]
    if missing:
        problems.insert(0, f"{len(missing)} model layer(s) not in the file: {_listing(missing)}")
    for name, layer, values in pairs:
        want = [tuple(w.shape) for w in layer.weights]
        got = [tuple(v.shape) for v in values]
        if want != got:
            problems.append(f"layer '{layer.name}' ({type(layer).__name__}) needs {want}, file '{name}' has {got}")
    if extra and strict:
        problems.append(f"{len(extra)} file layer(s) that the model lacks: {_listing(extra)}")
    if problems:
        raise ValueError(f"load_keras_weights({source}) into model '{model.name}': " + "; ".join(problems))
    for _, layer, values in pairs:
        layer.set_weights(values)


def _base(name):
    """"conv2d_3" of "encoder/conv2d_3" (a layer of a nested model)."""
    return name.rsplit("/", 1)[-1]


def _order(name):
    """Sorts automatic names by their nested model, then in creation order."""
    return (name.rsplit("/", 1)[0] if "/" in name else "", _natural(_base(name)))


def _listing(items, limit=12):
    return ", ".join(items[:limit]) + (f", ... ({len(items) - limit} more)" if len(items) > limit else "")
