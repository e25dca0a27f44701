"""Numba CPU kernels (registered as backend "numba"); absent when Numba does not import."""
try:
    import numba  # noqa: F401
except ImportError:  # pragma: no cover - numba is a dependency, but import ember must not fail without it
    AVAILABLE = False
else:
    AVAILABLE = True
    # importing the modules registers their kernels
    from ember.kernels.cpu import (  # noqa: F401
        activation,
        conv,
        embedding,
        loss,
        memory,
        normalization,
        optim,
        pooling,
        recurrent,
        sequence,
        special,
    )

    memory.tune()
