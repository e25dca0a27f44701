"""Special functions the engine needs from SciPy (the error function for exact GELU)."""
from scipy import special as _special

from ember.kernels.registry import register


@register("erf", "numpy")
def erf(x):
    """Elementwise error function, same dtype as ``x``."""
    return _special.erf(x).astype(x.dtype, copy=False)


@register("erf", "cupy")
def erf_cupy(x):
    from cupyx.scipy import special as cupy_special  # noqa: PLC0415 - GPU only

    return cupy_special.erf(x)


