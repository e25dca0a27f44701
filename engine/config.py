"""Process-wide engine policy: default floating dtype, the seeded random generator, numerics checks.

Everything that creates parameters or random masks asks this module, so that ``set_seed`` and
``set_default_dtype`` have one meaning across the engine.
"""
import threading

import numpy as np

_FLOAT_DTYPES = {"float32": np.float32, "float64": np.float64}
_state = {"dtype": np.dtype(np.float32), "rng": np.random.default_rng(), "check_numerics": False}
_local = threading.local()


def set_default_dtype(dtype):
    """Set the floating dtype of new parameters and of tensors made from Python numbers.

    Args:
        dtype: ``"float32"`` (the default) or ``"float64"`` (for gradient checks), or the NumPy type.
    """
    name = np.dtype(dtype).name if not isinstance(dtype, str) else dtype
    if name not in _FLOAT_DTYPES:
        raise ValueError(f"set_default_dtype: expected one of {sorted(_FLOAT_DTYPES)}, got {dtype!r}")
    _state["dtype"] = np.dtype(_FLOAT_DTYPES[name])


def get_default_dtype():
    """Return the default floating dtype as a ``numpy.dtype``."""
    return _state["dtype"]


def set_seed(seed):
    """Seed the engine's generator: initialisation, dropout and shuffling become reproducible."""
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"set_seed: expected a non-negative integer, got {seed!r}")
    _state["rng"] = np.random.default_rng(int(seed))


def rng():
    """The engine's ``numpy.random.Generator`` (reseeded by ``set_seed``)."""
    return _state["rng"]


def get_rng_state():
    """The generator's state as a JSON-serialisable dict (for checkpoints)."""
    return _state["rng"].bit_generator.state


def set_rng_state(state):
    """Restore a state returned by ``get_rng_state``."""
    gen = np.random.default_rng()
    gen.bit_generator.state = state
    _state["rng"] = gen


def set_check_numerics(enabled):
    """When enabled, every layer call raises ``ValueError`` on NaN or infinite inputs."""
    _state["check_numerics"] = bool(enabled)


def check_numerics_enabled():
    return _state["check_numerics"]


def is_grad_enabled():
    return getattr(_local, "grad_enabled", True)


class no_grad:
    """Context manager (and decorator) that records no graph: results need no gradient.

    Example:
        >>> import ember
        >>> with ember.no_grad():
        ...     y = ember.Tensor([1.0], requires_grad=True) * 2
        >>> y.requires_grad
        False
    """

    def __enter__(self):
        self._prev = is_grad_enabled()
        _local.grad_enabled = False
        return self

    def __exit__(self, *exc):
        _local.grad_enabled = self._prev
        return False

    def __call__(self, fn):
        def wrapper(*args, **kwargs):
            with no_grad():
                return fn(*args, **kwargs)

        wrapper.__name__ = fn.__name__
        wrapper.__doc__ = fn.__doc__
        return wrapper
