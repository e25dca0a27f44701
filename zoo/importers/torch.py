"""PyTorch ``.pt``/``.pth`` files read without PyTorch, and state dicts mapped onto ember models.

Reading: the zip format (torch >= 1.6: ``<name>/data.pkl``, raw storages ``<name>/data/<key>``,
``<name>/byteorder``) and the legacy format (pickles in a row: magic number, protocol, system info,
the object, the storage keys; then each storage as an int64 element count and its bytes).
The pickle is read by an unpickler that knows only what a state dict needs, like PyTorch's
``weights_only=True``: tensor rebuild functions, storage types, ``OrderedDict``, plain containers
and numbers. Any other global is refused by name before anything is imported or called. Claimed
sizes are checked against the bytes really in the file before any array is allocated.

Mapping: a key ``<layer name>.<parameter>`` goes to the ember layer of that name (the zoo's
``variant="torchvision"`` models name their layers by torchvision's module paths), converted by the
layer's type: convolution kernels (O, I, KH, KW) -> (KH, KW, I, O), Dense (out, in) -> (in, out),
BatchNorm weight/bias/running_mean/running_var -> gamma/beta/moving_mean/moving_variance,
transposed convolutions (I, O, KH, KW) -> (KH, KW, O, I). Recurrent layers take ``nn.RNN``/``nn.LSTM``/
``nn.GRU`` (one layer, ``batch_first`` or not: weights do not depend on it): ``weight_ih_l0`` and
``weight_hh_l0`` transposed into the kernel and recurrent kernel, ``bias_ih_l0 + bias_hh_l0`` into the
bias; PyTorch's gate order is Keras's for the LSTM (i, f, g, o), and for the GRU (r, z, n) is reordered
into Keras's (z, r, h) with the two biases kept apart (``reset_after=True`` is PyTorch's GRU). A
``Bidirectional`` layer takes ``bidirectional=True`` weights (``..._l0_reverse`` for the backward half).
"""
import collections
import io
import os
import pickle
import stat
import struct
import zipfile

import numpy as np

from ember.layers import (
    GRU,
    LSTM,
    BatchNormalization,
    Bidirectional,
    Conv1D,
    Conv2D,
    Conv2DTranspose,
    Dense,
    DepthwiseConv2D,
    Embedding,
    LayerNormalization,
    SimpleRNN,
)
from ember.layers.archive import ModelFileError
from ember.layers.containers import Model

# the storage classes a tensor may name, and their element types (bfloat16 is widened to float32)
_STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16, "BFloat16Storage": "bf16",
    "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16, "CharStorage": np.int8,
    "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_IGNORED_SUFFIXES = ("num_batches_tracked",)


class TorchFileError(ModelFileError):
    """A file that is not a readable PyTorch state dict (names the file and what is wrong); a
    ``ModelFileError`` (so a ``ValueError``), like every damaged model file ember reads.

    Args:
        message: what is wrong, naming the file.

    Example:
        >>> import os, tempfile
        >>> from ember.zoo.importers.torch import TorchFileError, read_torch
        >>> path = os.path.join(tempfile.mkdtemp(), "broken.pth")
        >>> with open(path, "wb") as f:
        ...     _ = f.write(b"not a zip")
        >>> try:
        ...     read_torch(path)
        ... except TorchFileError as e:
        ...     print(type(e).__name__, isinstance(e, ValueError))
        TorchFileError True
    """

    def __init__(self, message):
        ValueError.__init__(self, message)
        self.path = self.what = self.expected = None


class _StorageType:
    def __init__(self, name):
        self.name = name
        self.dtype = _STORAGE_DTYPES[name]

    @property
    def itemsize(self):
        return 2 if self.dtype == "bf16" else np.dtype(self.dtype).itemsize

    def decode(self, raw, byteorder):
        if self.dtype == "bf16":
            bits = np.frombuffer(raw, dtype=np.dtype("<u2" if byteorder == "little" else ">u2"))
            return (bits.astype(np.uint32) << 16).view(np.float32)
        dtype = np.dtype(self.dtype).newbyteorder("<" if byteorder == "little" else ">")
        return np.frombuffer(raw, dtype=dtype).astype(np.dtype(self.dtype).newbyteorder("="), copy=False)


class _Tensor:
    """A tensor as the pickle describes it, rebuilt into a NumPy array once its storage is known."""

    def __init__(self, storage, offset, size, stride):
        for what, values in (("size", size), ("stride", stride)):
            if not isinstance(values, tuple) or not all(isinstance(v, int) and v >= 0 for v in values):
                raise pickle.UnpicklingError(f"tensor {what} must be a tuple of non-negative ints, got {values!r}")
        if len(size) != len(stride) or not isinstance(offset, int) or offset < 0:
            raise pickle.UnpicklingError(f"inconsistent tensor: size {size}, stride {stride}, offset {offset!r}")
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride

    def to_numpy(self, file):
        data = self.storage.array()
        count = int(np.prod(self.size, dtype=object))
        last = self.offset + sum((s - 1) * st for s, st in zip(self.size, self.stride)) if count else self.offset
        if count and (last >= data.size or count > data.size):
            raise TorchFileError(f"{file}: a tensor of size {self.size} (stride {self.stride}, offset {self.offset})"
                                 f" claims more than its storage '{self.storage.key}' holds ({data.size} elements)")
        if not count:
            return np.zeros(self.size, dtype=data.dtype)
        item = data.itemsize
        view = np.lib.stride_tricks.as_strided(data[self.offset:], self.size, tuple(st * item for st in self.stride))
        return np.array(view, copy=True)


class _Storage:
    def __init__(self, key, storage_type, numel, load):
        self.key, self.type, self.numel, self._load, self._array = key, storage_type, numel, load, None

    def array(self):
        if self._array is None:
            self._array = self._load(self)
        return self._array


def _rebuild_tensor(storage, storage_offset, size, stride, *_ignored):
    if not isinstance(storage, _Storage):
        raise pickle.UnpicklingError(f"a tensor's storage must come from the file, got {type(storage).__name__}")
    return _Tensor(storage, storage_offset, tuple(size), tuple(stride))


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, *_state):
    if not isinstance(data, _Tensor):
        raise pickle.UnpicklingError("a Parameter must wrap a tensor")
    return data


def _rebuild_from_type_v2(func, new_type, args, state):
    if func is not _rebuild_tensor or new_type not in (_TENSOR_TYPE, _PARAMETER_TYPE):
        raise pickle.UnpicklingError("_rebuild_from_type_v2 is allowed only for plain tensors and Parameters")
    return func(*args)


class _TensorType:
    def __init__(self, name):
        self.name = name


_TENSOR_TYPE, _PARAMETER_TYPE = _TensorType("torch.Tensor"), _TensorType("torch.nn.Parameter")

# (module, name) -> what the unpickler gets instead of importing anything
_ALLOWED = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch._tensor", "_rebuild_from_type_v2"): _rebuild_from_type_v2,
    ("torch", "Tensor"): _TENSOR_TYPE,
    ("torch.nn.parameter", "Parameter"): _PARAMETER_TYPE,
    ("torch", "Size"): tuple,
    **{("torch", name): _StorageType(name) for name in _STORAGE_DTYPES},
}


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only the globals in ``_ALLOWED`` (to our own stand-ins); refuses every other by name."""

    def __init__(self, file, persistent_load, source):
        super().__init__(file, encoding="utf-8")
        self._persistent_load, self._source = persistent_load, source

    def find_class(self, module, name):
        found = _ALLOWED.get((module, name))
        if found is None:
            raise TorchFileError(f"{self._source}: refused global '{module}.{name}': a state dict needs only "
                                 "tensors, storages, OrderedDict, containers and numbers (nothing was run)")
        return found

    def persistent_load(self, pid):
        return self._persistent_load(pid)


def _storage_pid(pid, source):
    if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage" and isinstance(pid[1], _StorageType)
            and isinstance(pid[2], str) and isinstance(pid[4], int) and pid[4] >= 0):
        raise TorchFileError(f"{source}: unexpected persistent id {pid!r:.200} (expected a tensor storage)")
    return pid[1], pid[2], pid[4]


def _unpickle(data, persistent_load, source):
    try:
        return _RestrictedUnpickler(io.BytesIO(data), persistent_load, source).load()
    except TorchFileError:
        raise
    except Exception as e:  # a damaged pickle raises many types; name the file either way
        raise TorchFileError(f"{source}: the pickle is damaged or not a state dict ({type(e).__name__}: {e})") from e


def _read_zip(zf, source):
    names = zf.namelist()
    pkl = [n for n in names if n.endswith("data.pkl") and n.count("/") == 1]
    if not pkl:
        raise TorchFileError(f"{source}: a zip file without '<name>/data.pkl': not a PyTorch file")
    prefix = pkl[0][: -len("data.pkl")]
    byteorder = "little"
    if prefix + "byteorder" in names:
        byteorder = zf.read(prefix + "byteorder").decode("ascii", "replace").strip()
        if byteorder not in ("little", "big"):
            raise TorchFileError(f"{source}: unknown byteorder {byteorder!r}")
    storages = {}

    def load(storage):
        entry = f"{prefix}data/{storage.key}"
        try:
            info = zf.getinfo(entry)
        except KeyError:
            raise TorchFileError(f"{source}: storage '{storage.key}' is missing ({entry})") from None
        want = storage.numel * storage.type.itemsize
        if info.compress_type != zipfile.ZIP_STORED or info.file_size != want:
            raise TorchFileError(f"{source}: storage '{storage.key}' claims {storage.numel} elements ({want} bytes) "
                                 f"but the file holds {info.file_size} bytes there")
        return storage.type.decode(zf.read(info), byteorder)

    def persistent_load(pid):
        storage_type, key, numel = _storage_pid(pid, source)
        if key not in storages:
            storages[key] = _Storage(key, storage_type, numel, load)
        return storages[key]

    return _unpickle(zf.read(pkl[0]), persistent_load, source)


class _PickleStream:
    """The legacy format's pickles, read one after another from a byte string."""

    def __init__(self, data, source):
        self.data, self.pos, self.source = data, 0, source

    def next(self, persistent_load=None):
        stream = io.BytesIO(self.data)
        stream.seek(self.pos)

        def refuse(pid):
            raise TorchFileError(f"{self.source}: unexpected persistent id in a header pickle")

        try:
            obj = _RestrictedUnpickler(stream, persistent_load or refuse, self.source).load()
        except TorchFileError:
            raise
        except Exception as e:
            raise TorchFileError(f"{self.source}: not a PyTorch file, or truncated "
                                 f"({type(e).__name__}: {e})") from e
        self.pos = stream.tell()
        return obj


def _read_legacy(data, source):
    stream = _PickleStream(data, source)
    if stream.next() != _LEGACY_MAGIC:
        raise TorchFileError(f"{source}: not a PyTorch file (no zip archive and no legacy magic number)")
    stream.next()  # protocol version
    sys_info = stream.next()
    little = sys_info.get("little_endian", True) if isinstance(sys_info, dict) else True
    roots, views = {}, []

    def persistent_load(pid):
        storage_type, key, numel = _storage_pid(pid, source)
        root = roots.setdefault(key, _Storage(key, storage_type, numel, None))
        view = pid[5] if len(pid) > 5 else None
        if view is None:
            return root
        view_key, offset, view_size = view  # a view into the root storage (torch < 0.4 files)
        storage = _Storage(view_key, storage_type, view_size, lambda s, r=root, o=offset: r.array()[o:o + s.numel])
        views.append(storage)
        return storage

    obj = stream.next(persistent_load)
    keys = stream.next()
    if not isinstance(keys, list) or set(keys) != set(roots):
        raise TorchFileError(f"{source}: the storage list does not match the storages the tensors use")
    pos = stream.pos
    for key in keys:
        storage = roots[key]
        if pos + 8 > len(data):
            raise TorchFileError(f"{source}: truncated: storage '{key}' is missing")
        (numel,) = struct.unpack("<q" if little else ">q", data[pos:pos + 8])
        size = numel * storage.type.itemsize
        if numel != storage.numel or pos + 8 + size > len(data):
            raise TorchFileError(f"{source}: storage '{key}' claims {numel} elements ({size} bytes); the tensor "
                                 f"says {storage.numel} and {len(data) - pos - 8} bytes are left: truncated or damaged")
        storage._array = storage.type.decode(data[pos + 8:pos + 8 + size], "little" if little else "big")
        pos += 8 + size
    return obj


def _to_arrays(obj, source):
    """Tensors (in dicts, lists, tuples) as NumPy arrays."""
    if isinstance(obj, _Tensor):
        return obj.to_numpy(source)
    if isinstance(obj, dict):
        return type(obj)((k, _to_arrays(v, source)) for k, v in obj.items()) if isinstance(
            obj, collections.OrderedDict) else {k: _to_arrays(v, source) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_arrays(v, source) for v in obj)
    return obj


def read_torch(path):
    """The object saved by ``torch.save`` in ``path`` (a path or a binary file), its tensors as NumPy
    arrays, without PyTorch and without running anything from the file.

    Raises:
        TorchFileError: not a PyTorch file, damaged or truncated, a refused global, impossible sizes.

    Example:
        >>> from ember.zoo.importers.torch import read_torch
        >>> state = read_torch("resnet50-0676ba61.pth")  # doctest: +SKIP
        >>> state["conv1.weight"].shape  # doctest: +SKIP
        (64, 3, 7, 7)
    """
    source = os.fspath(path) if isinstance(path, (str, os.PathLike)) else getattr(path, "name", "<file object>")
    if isinstance(path, (str, os.PathLike)):
        if not os.path.exists(path):
            raise FileNotFoundError(f"{source}: no such file")
        if not stat.S_ISREG(os.stat(path).st_mode):  # a FIFO would hang, /dev/zero would never end
            raise TorchFileError(f"{source}: not a regular file (a FIFO, device or folder is refused)")
        with open(path, "rb") as f:
            data = f.read()
    else:
        data = path.read()
    if not data:
        raise TorchFileError(f"{source}: the file is empty")
    if data[:4] == b"PK\x03\x04":
        try:
            zf = zipfile.ZipFile(io.BytesIO(data))
        except zipfile.BadZipFile as e:
            raise TorchFileError(f"{source}: a damaged or truncated zip archive ({e})") from e
        with zf:
            obj = _read_zip(zf, source)
            return _to_arrays(obj, source)
    return _to_arrays(_read_legacy(data, source), source)


# ---------------------------------------------------------------- mapping onto a model
def _conv2d(w):
    return w.transpose(2, 3, 1, 0)


def _depthwise(w, layer):
    c = layer.depthwise_kernel.shape[2]
    return w.reshape(c, -1, *w.shape[2:]).transpose(2, 3, 0, 1)


def _gru_gates(w):
    """PyTorch's GRU gate blocks (r, z, n) along the first axis -> Keras's (z, r, h)."""
    r, z, n = np.split(w, 3, axis=0)
    return np.concatenate([z, r, n], axis=0)


def _recurrent_rules(layer, suffix=""):
    """Rules of an RNN, LSTM or GRU from PyTorch's layer-0 weights (``suffix`` "_reverse": the backward half)."""
    gru = isinstance(layer, GRU)
    order = _gru_gates if gru else (lambda w: w)
    rules = {f"weight_ih_l0{suffix}": (layer.kernel, lambda w: order(w).T),
             f"weight_hh_l0{suffix}": (layer.recurrent_kernel, lambda w: order(w).T)}
    if layer.bias is not None:
        if gru:  # Keras's reset_after layout keeps the input and the recurrent bias apart: bias (2, 3u)
            rules[f"bias_ih_l0{suffix}"] = (_Row(layer.bias, 0), order)
            rules[f"bias_hh_l0{suffix}"] = (_Row(layer.bias, 1), order)
        else:  # one bias: the sum of PyTorch's two
            rules[f"bias_ih_l0{suffix}"] = (layer.bias, None)
            rules[f"bias_hh_l0{suffix}"] = (_Sum(layer.bias), None)
    return rules


class _Row:
    """Rule target: row ``index`` of a weight (the GRU's two bias rows)."""

    def __init__(self, tensor, index):
        self.tensor, self.index = tensor, index
        self.shape, self.ndim = tensor.shape[1:], tensor.ndim - 1

    def assign(self, value):
        self.tensor.data[self.index] = value.astype(self.tensor.dtype, copy=False)


class _Sum:
    """Rule target: a weight that receives a second array added to the first (the RNN's two biases)."""

    def __init__(self, tensor):
        self.tensor, self.shape, self.ndim = tensor, tensor.shape, tensor.ndim

    def assign(self, value):
        self.tensor.data[...] += value.astype(self.tensor.dtype, copy=False)


def _layer_rules(layer):
    """{torch parameter name: (our weight tensor, convert)} for one layer; None for a type without a rule."""
    if isinstance(layer, (SimpleRNN, LSTM, GRU)):
        return _recurrent_rules(layer)
    if isinstance(layer, Bidirectional) and isinstance(layer.forward_layer, (SimpleRNN, LSTM, GRU)):
        return {**_recurrent_rules(layer.forward_layer), **_recurrent_rules(layer.backward_layer, "_reverse")}
    if isinstance(layer, Conv2DTranspose):
        rules = {"weight": (layer.kernel, lambda w: w.transpose(2, 3, 1, 0))}
    elif isinstance(layer, DepthwiseConv2D):
        rules = {"weight": (layer.depthwise_kernel, lambda w: _depthwise(w, layer))}
    elif type(layer) is Conv2D:
        rules = {"weight": (layer.kernel, _conv2d)}
    elif isinstance(layer, Conv1D):
        rules = {"weight": (layer.kernel, lambda w: w.transpose(2, 1, 0))}
    elif isinstance(layer, Dense):
        rules = {"weight": (layer.kernel, lambda w: w.T)}
    elif isinstance(layer, BatchNormalization):
        rules = {"running_mean": (layer.moving_mean, None), "running_var": (layer.moving_variance, None)}
        if layer.gamma is not None:
            rules["weight"] = (layer.gamma, None)
        if layer.beta is not None:
            rules["bias"] = (layer.beta, None)
        return rules
    elif isinstance(layer, LayerNormalization):
        rules = {"weight": (layer.gamma, None), "bias": (layer.beta, None)}
        return {k: v for k, v in rules.items() if v[0] is not None}
    elif isinstance(layer, Embedding):
        return {"weight": (layer.embeddings, None)}
    else:
        return None
    if getattr(layer, "bias", None) is not None:
        rules["bias"] = (layer.bias, None)
    return rules


def _weighted_layers(model, prefix=""):
    for layer in model.layers:
        if isinstance(layer, Model):
            yield from _weighted_layers(layer, f"{prefix}{layer.name}.")
        elif layer.weights:
            yield prefix + layer.name, layer


def _state_dict(obj, source):
    """The flat {name: array} inside what ``torch.save`` wrote (a state dict or a checkpoint dict)."""
    if isinstance(obj, dict) and not any(isinstance(v, np.ndarray) for v in obj.values()):
        for key in ("state_dict", "model_state_dict", "model", "net"):
            if isinstance(obj.get(key), dict):
                return _state_dict(obj[key], source)
    if not isinstance(obj, dict):
        raise TorchFileError(f"{source}: holds a {type(obj).__name__}, not a state dict")
    state = {}
    for key, value in obj.items():
        if hasattr(value, "detach"):  # a torch.Tensor handed over directly
            value = value.detach().cpu().numpy()
        if isinstance(value, np.ndarray):
            state[key[len("module."):] if key.startswith("module.") else key] = value
    return state


def load_torch(path_or_state_dict, model, skip=(), strict=True):
    """Copy a PyTorch state dict (a ``.pt``/``.pth`` file, or a dict of arrays or tensors) into ``model``.

    Keys ``<layer name>.<parameter>`` are matched to the layers of ``model`` by name and converted by
    layer type (see the module docstring). Nothing is copied unless everything matches.

    Args:
        path_or_state_dict: a file path, a binary file, or a dict ``{name: array or torch.Tensor}``.
        model: an ember ``Model`` whose layer names are the module paths (the zoo's torchvision variants).
        skip: key prefixes to ignore (e.g. ``("aux1.", "aux2.")`` for GoogLeNet's auxiliary heads).
        strict: when False, keys that no layer takes are ignored (e.g. a classifier the model lacks);
            layers the file does not cover are an error either way.

    Raises:
        TorchFileError: an unreadable file; ValueError: missing or unexpected keys or wrong shapes,
        all listed with the file's name.

    Example:
        >>> import numpy as np
        >>> from ember.layers import Dense, Input
        >>> from ember.layers.containers import Model
        >>> from ember.zoo.importers.torch import load_torch
        >>> inp = Input(shape=(3,))
        >>> model = Model(inp, Dense(2, name="fc")(inp))
        >>> load_torch({"fc.weight": np.ones((2, 3), np.float32), "fc.bias": np.zeros(2, np.float32)}, model)
        >>> model.get_weights()[0].shape
        (3, 2)
    """
    if isinstance(path_or_state_dict, dict):
        source, obj = "<state dict>", path_or_state_dict
    else:
        source = os.fspath(path_or_state_dict) if isinstance(path_or_state_dict, (str, os.PathLike)) else "<file>"
        obj = read_torch(path_or_state_dict)
    state = _state_dict(obj, source)
    used, missing, shapes, no_rule, assign = set(), [], [], [], []
    for name, layer in _weighted_layers(model):
        rules = _layer_rules(layer)
        if rules is None:
            no_rule.append(f"{name} ({type(layer).__name__})")
            continue
        for param, (tensor, convert) in rules.items():
            key = f"{name}.{param}"
            if key not in state:
                missing.append(key)
                continue
            used.add(key)
            value = state[key]
            try:
                if convert is not None and value.ndim == tensor.ndim:
                    value = convert(value)
            except ValueError:
                pass  # a reshape that cannot apply: reported as a shape mismatch below
            if value.shape != tensor.shape:
                shapes.append(f"{key}: file {state[key].shape}, model {tensor.shape}")
                continue
            assign.append((tensor, value))
        for suffix in _IGNORED_SUFFIXES:
            used.add(f"{name}.{suffix}")
    unexpected = [k for k in state if k not in used and not k.startswith(tuple(skip))
                  and not k.endswith(_IGNORED_SUFFIXES)]
    problems = []
    if no_rule:
        problems.append(f"no PyTorch rule for layer(s) {', '.join(no_rule)}")
    if missing:
        problems.append(f"{len(missing)} missing key(s): {_listing(missing)}")
    if shapes:
        problems.append(f"{len(shapes)} shape mismatch(es): {_listing(shapes)}")
    if unexpected and strict:
        problems.append(f"{len(unexpected)} unexpected key(s) that no layer takes: {_listing(unexpected)}")
    if problems:
        raise ValueError(f"load_torch({source}) into model '{model.name}': " + "; ".join(problems))
    # plain targets first: a _Sum adds to the value its tensor received
    for tensor, value in sorted(assign, key=lambda item: isinstance(item[0], _Sum)):
        if isinstance(tensor, (_Row, _Sum)):
            tensor.assign(value)
        else:
            tensor.data[...] = value.astype(tensor.dtype, copy=False)


def _listing(items, limit=12):
    shown = ", ".join(items[:limit])
    return shown + (f", ... ({len(items) - limit} more)" if len(items) > limit else "")
