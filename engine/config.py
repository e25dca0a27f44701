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

    Example:
        >>> import ember
        >>> ember.set_default_dtype("float64")
        >>> ember.Tensor([1.0]).dtype
        dtype('float64')
        >>> ember.set_default_dtype("float32")
        >>> ember.get_default_dtype()
        dtype('float32')
    """
    name = np.dtype(dtype).name if not isinstance(dtype, str) else dtype
    if name not in _FLOAT_DTYPES:
        raise ValueError(f"set_default_dtype: expected one of {sorted(_FLOAT_DTYPES)}, got {dtype!r}")
    _state["dtype"] = np.dtype(_FLOAT_DTYPES[name])


def get_default_dtype():
    """Return the default floating dtype as a ``numpy.dtype`` (``float32`` unless ``set_default_dtype`` changed it).

    Example:
        >>> import ember
        >>> ember.get_default_dtype()
        dtype('float32')
    """
    return _state["dtype"]


def set_seed(seed):
    """Seed the engine's generator: initialisation, dropout and shuffling become reproducible.

    Args:
        seed: a non-negative integer.

    Example:
        >>> import ember
        >>> from ember.layers import Dense
        >>> ember.set_seed(0)
        >>> a = ember.Sequential([Dense(2, input_shape=(3,))]).get_weights()[0]
        >>> ember.set_seed(0)
        >>> b = ember.Sequential([Dense(2, input_shape=(3,))]).get_weights()[0]
        >>> bool((a == b).all())
        True
    """
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"set_seed: expected a non-negative integer, got {seed!r}")
    _state["rng"] = np.random.default_rng(int(seed))


def rng():
    """The engine's ``numpy.random.Generator`` (reseeded by ``set_seed``).

    Example:
        >>> from ember.engine import rng, set_seed
        >>> set_seed(1)
        >>> x = rng().integers(0, 100, 3)
        >>> set_seed(1)
        >>> bool((rng().integers(0, 100, 3) == x).all())
        True
    """
    return _state["rng"]


def get_rng_state():
    """The generator's state as a JSON-serialisable dict (for checkpoints).

    Example:
        >>> import json
        >>> from ember.engine import get_rng_state, set_seed
        >>> set_seed(3)
        >>> state = get_rng_state()
        >>> state["bit_generator"]
        'PCG64'
        >>> len(json.dumps(state)) > 0
        True
    """
    return _state["rng"].bit_generator.state


def set_rng_state(state):
    """Restore a state returned by ``get_rng_state``: the generator continues from there.

    Args:
        state: a dict from ``get_rng_state``.

    Example:
        >>> from ember.engine import get_rng_state, rng, set_rng_state
        >>> state = get_rng_state()
        >>> x = rng().random()
        >>> set_rng_state(state)
        >>> rng().random() == x
        True
    """
    gen = np.random.default_rng()
    gen.bit_generator.state = state
    _state["rng"] = gen


def set_check_numerics(enabled):
    """When enabled, every layer call raises ``ValueError`` on NaN or infinite inputs.

    Args:
        enabled: True to check, False (the default) not to.

    Example:
        >>> import numpy as np
        >>> import ember
        >>> from ember.layers import Dense
        >>> model = ember.Sequential([Dense(1, input_shape=(2,))])
        >>> ember.set_check_numerics(True)
        >>> try:
        ...     model.predict(np.array([[np.nan, 1.0]], dtype="float32"), verbose=0)
        ... except ValueError:
        ...     print("ValueError")
        ValueError
        >>> ember.set_check_numerics(False)
    """
    _state["check_numerics"] = bool(enabled)


def check_numerics_enabled():
    return _state["check_numerics"]


def is_grad_enabled():
    """Whether operations record a graph now (False inside ``no_grad``).

    Example:
        >>> from ember.engine import is_grad_enabled, no_grad
        >>> with no_grad():
        ...     print(is_grad_enabled())
        False
        >>> is_grad_enabled()
        True
    """
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
