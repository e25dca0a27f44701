"""The arithmetic that must be fast: NumPy reference kernels (the spec) and one registry.

Only this package imports Numba or CuPy, and only guarded, so that ``import ember`` works on a
machine without them.
"""
from ember.kernels.registry import cupy_or_none, get_cpu_kernels, get_kernel, register, set_cpu_kernels

__all__ = ["cupy_or_none", "get_cpu_kernels", "get_kernel", "register", "set_cpu_kernels"]

from ember.kernels import cpu, reference  # noqa: E402,F401 - registers the kernels
