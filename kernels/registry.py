"""One registry of kernels: ``get_kernel(name, xp)`` returns the implementation for an array module.

Implementations are registered per backend ("numpy" for the reference, "numba", "cupy"). A backend
that is missing falls back to the NumPy reference on CPU; asking for CuPy without CUDA raises.
"""
_REGISTRY = {}
_CUPY = None
_CUPY_CHECKED = False


def cupy_or_none():
    """Return the ``cupy`` module if it imports and sees a GPU, else ``None`` (never raises)."""
    global _CUPY, _CUPY_CHECKED
    if not _CUPY_CHECKED:
        _CUPY_CHECKED = True
        try:
            import cupy  # noqa: PLC0415 - optional dependency, imported only here

            cupy.cuda.runtime.getDeviceCount()
            _CUPY = cupy
        except Exception:  # noqa: BLE001 - any failure means "no usable GPU"
            _CUPY = None
    return _CUPY


def register(name, backend):
    """Decorator: register ``fn`` as kernel ``name`` for ``backend`` ("numpy", "numba", "cupy")."""

    def deco(fn):
        _REGISTRY.setdefault(name, {})[backend] = fn
        return fn

    return deco


def get_kernel(name, backend="numpy"):
    """Return kernel ``name`` for ``backend``; CPU backends fall back to the NumPy reference."""
    impls = _REGISTRY.get(name)
    if impls is None:
        raise KeyError(f"no kernel named {name!r}; known: {sorted(_REGISTRY)}")
    if backend in impls:
        return impls[backend]
    if backend == "cupy":
        raise RuntimeError(f"kernel {name!r} has no CuPy implementation")
    return impls["numpy"]
