"""One registry of kernels: ``get_kernel(name, backend)`` returns the implementation to run.

Implementations are registered per backend: "numpy" (the reference, the specification), "numba"
(fast CPU) and "cupy" (GPU). Arrays on the CPU ask for "numpy" and get the Numba kernel where one
exists (unless ``set_cpu_kernels("reference")`` or ``EMBER_CPU_KERNELS=reference``), else the
reference; "reference" always gives the reference. Asking for CuPy without a kernel raises.
"""
import os

_REGISTRY = {}
_CPU = {"kernels": os.environ.get("EMBER_CPU_KERNELS", "numba")}
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


def register(name, backend, wrap=None):
    """Decorator: register ``fn`` as kernel ``name`` for ``backend`` ("numpy", "numba", "cupy");
    ``wrap(fn)``, when given, is what the registry hands out (the module keeps ``fn`` itself)."""

    def deco(fn):
        _REGISTRY.setdefault(name, {})[backend] = wrap(fn) if wrap is not None else fn
        return fn

    return deco


def set_cpu_kernels(kind):
    """Choose the CPU kernels: "numba" (fast, the default) or "reference" (pure NumPy)."""
    if kind not in ("numba", "reference"):
        raise ValueError(f"set_cpu_kernels: expected 'numba' or 'reference', got {kind!r}")
    _CPU["kernels"] = kind


def get_cpu_kernels():
    return _CPU["kernels"]


def has_kernel(name, backend):
    """Whether kernel ``name`` has an implementation of its own for ``backend`` ("numpy", "numba", "cupy").

    Example:
        >>> from ember.kernels.registry import has_kernel
        >>> has_kernel("lstm_sequence_forward", "numpy"), has_kernel("no such kernel", "numpy")
        (True, False)
    """
    return backend in _REGISTRY.get(name, {})


def get_kernel(name, backend="numpy"):
    """Return kernel ``name`` for ``backend`` ("numpy" = whatever runs on CPU, "reference", "numba", "cupy")."""
    impls = _REGISTRY.get(name)
    if impls is None:
        raise KeyError(f"no kernel named {name!r}; known: {sorted(_REGISTRY)}")
    if backend == "numpy":
        if _CPU["kernels"] == "numba" and "numba" in impls:
            return impls["numba"]
        return impls["numpy"]
    if backend == "reference":
        return impls["numpy"]
    if backend in impls:
        return impls[backend]
    if backend == "cupy":
        raise RuntimeError(f"kernel {name!r} has no CuPy implementation")
    return impls["numpy"]
