"""Saving and loading models: JSON architecture + NumPy weights in one zip file, no pickle.

File layout (a zip archive, conventionally ``*.ember``):
    ``model.json``  {"format": "ember-model", "format_version": 1, "ember_version": ...,
                    "model": {"class_name": ..., "config": ...}, "weights": [weight names, in order]}
    ``weights.npz`` arrays ``w0000``, ``w0001``, ... in ``model.weights`` order (Keras order).
Writing goes to a temporary file in the same folder, then an atomic rename.
"""
import io
import json
import os
import tempfile
import zipfile

import numpy as np

from ember.layers.archive import ModelFileError, open_archive, read_json, read_npz
from ember.layers.base import BUILTIN_LAYERS, weight_budget

FORMAT, FORMAT_VERSION = "ember-model", 1


def serialize_layer(layer):
    config = layer.get_config()
    if type(layer).__name__ == "Lambda" and not config["function"].isidentifier():
        raise ValueError(f"Layer '{layer.name}' (Lambda): an anonymous function cannot be saved; use a named "
                         "function and pass it to load_model(custom_objects={name: fn})")
    spec = {"class_name": type(layer).__name__, "config": config}
    if not type(layer).__module__.startswith("ember."):
        spec["module"] = type(layer).__module__  # informative: loading needs custom_objects, nothing is imported
    return spec


def deserialize_layer(spec, custom_objects=None):
    """Rebuild a layer from ``{"class_name", "config"}``; only known (or given) classes are allowed."""
    custom_objects = custom_objects or {}
    name, config = spec["class_name"], dict(spec["config"])
    cls = custom_objects.get(name) or (BUILTIN_LAYERS.get(name) if "module" not in spec else None)
    if cls is None and "module" in spec:
        raise ValueError(f"layer class {name!r} comes from module {spec['module']!r}, not from ember: pass it in "
                         f"custom_objects={{'{name}': cls}}")
    if cls is None:
        raise ValueError(f"unknown layer class {name!r}: pass it in custom_objects={{'{name}': cls}}")
    if name == "Lambda":
        fn_name = config["function"]
        if fn_name not in custom_objects:
            raise ValueError(f"Lambda layer '{config.get('name')}' uses function {fn_name!r}: pass it as "
                             f"load_model(..., custom_objects={{'{fn_name}': fn}})")
        config["function"] = custom_objects[fn_name]
    if getattr(cls, "config_holds_layers", False):  # containers rebuild their layers with the same objects
        return cls.from_config(config, custom_objects)
    return cls.from_config(config)


def graph_config(model):
    """Config of a functional Model: its layers and its nodes in topological order."""
    layer_specs, node_specs, node_count, keys = [], [], {}, {}
    for sym in model.inputs:
        layer = sym.history[0]
        layer_specs.append(serialize_layer(layer))
        keys[id(sym)] = [layer.name, 0, 0]
    listed = {id(sym.history[0]) for sym in model.inputs}
    for node in model._nodes:
        layer = node.layer
        if id(layer) not in listed:
            listed.add(id(layer))
            layer_specs.append(serialize_layer(layer))
        k = node_count.get(layer.name, 0)
        node_count[layer.name] = k + 1
        for i, sym in enumerate(node.outputs if isinstance(node.outputs, list) else [node.outputs]):
            keys[id(sym)] = [layer.name, k, i]
        inputs = [keys[id(s)] for s in node.input_list]
        node_specs.append({"layer": layer.name, "inputs": inputs, "is_list": isinstance(node.inputs, (list, tuple))})
    config = {"name": model.name, "layers": layer_specs, "nodes": node_specs,
              "input_layers": [keys[id(s)] for s in model.inputs],
              "output_layers": [keys[id(s)] for s in model.outputs],
              "inputs_are_list": model._inputs_are_list, "outputs_are_list": model._outputs_are_list}
    if model._loss_symbols:  # model.add_loss(symbolic tensor): the tensors, so that a rebuilt model adds them too
        config["loss_tensors"] = [keys[id(s)] for s in model._loss_symbols]
    return config


def graph_from_config(config, custom_objects=None):
    layers = {}
    for spec in config["layers"]:
        layer = deserialize_layer(spec, custom_objects)
        layers[layer.name] = layer
    tensors, node_count = {}, {}
    for name, layer in layers.items():
        if type(layer).__name__ == "InputLayer":
            tensors[(name, 0, 0)] = layer.output
    for node in config["nodes"]:
        args = [tensors[tuple(key)] for key in node["inputs"]]
        out = layers[node["layer"]](args if node["is_list"] else args[0])
        k = node_count.get(node["layer"], 0)
        node_count[node["layer"]] = k + 1
        for i, sym in enumerate(out if isinstance(out, list) else [out]):
            tensors[(node["layer"], k, i)] = sym
    inputs = [tensors[tuple(k)] for k in config["input_layers"]]
    outputs = [tensors[tuple(k)] for k in config["output_layers"]]
    loss_tensors = [tensors[tuple(k)] for k in config.get("loss_tensors", [])]
    return (inputs if config["inputs_are_list"] else inputs[0],
            outputs if config["outputs_are_list"] else outputs[0], config["name"], loss_tensors)


def model_archive_entries(model):
    """The ``model.json`` and ``weights.npz`` members of a model file, as bytes."""
    from ember._version import __version__

    model._require_built()
    weights = model.weights
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "ember_version": __version__,
            "model": serialize_layer(model), "weights": [w.name for w in weights]}
    training = getattr(model, "training_config", None)
    if callable(training) and training() is not None:  # compiled: optimizer, loss and metrics come back on load
        meta["training_config"] = training()
    return {"model.json": json.dumps(meta, indent=1).encode(),
            "weights.npz": npz_bytes({f"w{i:04d}": np.asarray(w.numpy()) for i, w in enumerate(weights)})}


def npz_bytes(arrays):
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def write_zip_atomic(path, entries):
    """Write a zip of ``entries`` (name -> bytes) to a temporary file beside ``path``, then rename it
    over ``path``: a crash leaves either the old file or the new one, never a partial one."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".ember-", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            with zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED) as zf:
                for name, data in entries.items():
                    zf.writestr(name, data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_model(model, path):
    """Write ``model`` (architecture + weights) to ``path`` atomically."""
    write_zip_atomic(path, model_archive_entries(model))


def read_model_archive(zf, path):
    """The checked ``model.json`` and the weight arrays (in ``model.weights`` order) of an open model or
    checkpoint archive."""
    meta = read_json(zf, path, "model.json", ("model", "weights"))
    version = meta.get("format_version")
    if meta.get("format") != FORMAT or not isinstance(version, int) or version > FORMAT_VERSION:
        raise ModelFileError(path, "model.json: format", f"{FORMAT!r} version <= {FORMAT_VERSION}, found "
                             f"{meta.get('format')!r} version {version!r}")
    names = meta["weights"]
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ModelFileError(path, "model.json: field 'weights'", "a list of weight names")
    spec = meta["model"]
    if not (isinstance(spec, dict) and isinstance(spec.get("class_name"), str)
            and isinstance(spec.get("config"), dict)):
        raise ModelFileError(path, "model.json: field 'model'", "an object with 'class_name' and 'config'")
    arrays = read_npz(zf, path, "weights.npz")
    keys = [f"w{i:04d}" for i in range(len(names))]
    missing = [k for k in keys if k not in arrays]
    if missing:
        raise ModelFileError(path, "member weights.npz", f"the arrays {missing[:5]} that model.json lists")
    return meta, [arrays[k] for k in keys]


def build_model(meta, arrays, path, custom_objects=None):
    """The model a checked ``model.json`` describes, holding ``arrays``: its layers may not ask for more
    weight elements than the file holds (checked before anything is allocated)."""
    with weight_budget(sum(int(a.size) for a in arrays)):
        try:
            model = deserialize_layer(meta["model"], custom_objects)
        except ModelFileError:
            raise
        except (ValueError, TypeError, KeyError, AttributeError, IndexError, RecursionError) as e:
            raise ModelFileError(path, "model.json: the architecture",
                                 f"layers ember can build ({type(e).__name__}: {e})") from None
    try:
        model.set_weights(arrays)
    except (ValueError, TypeError) as e:
        raise ModelFileError(path, "member weights.npz", f"arrays matching the architecture ({e})") from None
    return model


def load_model(path, custom_objects=None, compile=True):  # noqa: A002 - Keras's name
    """Load a model written by ``Model.save``.

    A model saved compiled comes back compiled (optimizer with its settings, loss, metrics) unless
    ``compile=False``. A damaged, hostile or foreign file raises ``ModelFileError`` (a ValueError) naming
    the file, the field and what was expected.

    Args:
        path: the file written by ``Model.save``.
        custom_objects: a dict mapping names to your own layer classes and functions.
        compile: compile the model as it was saved (when it was).

    Example:
        >>> import os, tempfile
        >>> import numpy as np
        >>> from ember.layers import Dense, Sequential, load_model
        >>> model = Sequential([Dense(2, input_shape=(3,))])
        >>> path = os.path.join(tempfile.mkdtemp(), "model.ember")
        >>> model.save(path)
        >>> again = load_model(path)
        >>> x = np.ones((1, 3), "float32")
        >>> bool((again.predict(x, verbose=0) == model.predict(x, verbose=0)).all())
        True
    """
    with open_archive(path) as zf:
        meta, arrays = read_model_archive(zf, path)
    model = build_model(meta, arrays, path, custom_objects)
    config = meta.get("training_config")
    if config is not None and compile:
        try:
            model.compile_from_config(config, custom_objects=custom_objects)
        except (ValueError, TypeError, KeyError, AttributeError) as e:
            raise ModelFileError(path, "model.json: field 'training_config'",
                                 f"an optimizer, loss and metrics ember knows ({type(e).__name__}: {e})") from None
    return model
