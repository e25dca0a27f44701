"""The one place that decides between NumPy and CuPy: by the type of the arrays."""
import numpy as np

from ember.kernels import cupy_or_none


def get_array_module(*arrays):
    """Return ``cupy`` if any argument is a CuPy array, else ``numpy`` (Chainer's rule).

    Args:
        *arrays: arrays (NumPy or CuPy) or other objects.

    Example:
        >>> import numpy as np
        >>> from ember.engine import get_array_module
        >>> get_array_module(np.zeros(2)).__name__
        'numpy'
    """
    cp = cupy_or_none()
    if cp is not None:
        for a in arrays:
            if isinstance(a, cp.ndarray):
                return cp
    return np


def backend_name(xp):
    return "cupy" if xp is not np else "numpy"


def to_device(array, device):
    """Move ``array`` to ``"cpu"`` or ``"gpu"``; a GPU request without CUDA raises a clear error.

    Args:
        array: a NumPy or CuPy array.
        device: ``"cpu"`` or ``"gpu"``.

    Returns:
        A NumPy array for ``"cpu"`` (the same object when it already is one), a CuPy array for ``"gpu"``.

    Example:
        >>> import numpy as np
        >>> from ember.engine import to_device
        >>> x = np.ones(2)
        >>> to_device(x, "cpu") is x
        True
    """
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
