"""The one place that decides between NumPy and CuPy: by the type of the arrays."""
import numpy as np

from ember.kernels import cupy_or_none


def get_array_module(*arrays):
    """Return ``cupy`` if any argument is a CuPy array, else ``numpy`` (Chainer's rule)."""
    cp = cupy_or_none()
    if cp is not None:
        for a in arrays:
            if isinstance(a, cp.ndarray):
                return cp
    return np


def backend_name(xp):
    return "cupy" if xp is not np else "numpy"


def to_device(array, device):
    """Move ``array`` to ``"cpu"`` or ``"gpu"``; a GPU request without CUDA raises a clear error."""
    if device == "cpu":
        if isinstance(array, np.ndarray):
            return array
        return array.get()
    if device == "gpu":
        cp = cupy_or_none()
        if cp is None:
            raise RuntimeError(
                "device 'gpu' requested but CuPy with a CUDA device is not available; "
                "install ember-dl[gpu] on a machine with an NVIDIA GPU, or use device='cpu'"
            )
        return cp.asarray(array)
    raise ValueError(f"device must be 'cpu' or 'gpu', got {device!r}")
