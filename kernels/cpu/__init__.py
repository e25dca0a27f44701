"""Numba CPU kernels (registered as backend "numba"); absent when Numba does not import."""
try:
    import numba  # noqa: F401
except ImportError:  # pragma: no cover - numba is a dependency, but import ember must not fail without it
    AVAILABLE = False
else:
    AVAILABLE = True
    from ember.kernels.cpu import activation, conv, memory, normalization, pooling  # noqa: F401 - registers kernels

    memory.tune()
