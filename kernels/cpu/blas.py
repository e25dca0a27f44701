"""``c += a @ b`` in place through the BLAS that NumPy itself uses.

NumPy's ``matmul`` always overwrites its output; accumulating products (the shifted-product
convolution in ``conv.py``) needs BLAS's ``beta = 1``. SciPy's ``scipy.linalg.blas`` has it, but
SciPy wheels bring their own OpenBLAS with its own thread pool, and OpenBLAS threads keep spinning
for a while after each product: alternating the two pools on two cores made a LeNet-5 step 86 ms
instead of 13. So this module calls ``cblas_?gemm`` of the OpenBLAS that NumPy loaded (found among
the process's loaded libraries), and falls back to ``matmul`` + ``+=`` where there is none (NumPy
built on MKL or Accelerate, non-Linux systems).
"""
import contextlib
import ctypes
import os
import threading

import numpy as np

_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112
# (symbol, integer type): NumPy >= 2 wheels (64-bit integers, "scipy_" prefix), older 64-bit builds,
# plain 32-bit builds
_SYMBOLS = (("scipy_cblas_{}gemm64_", ctypes.c_int64), ("cblas_{}gemm64_", ctypes.c_int64),
            ("cblas_{}gemm", ctypes.c_int))
_STATE = {"loaded": False, "gemm": {}}
_LOCK = threading.Lock()


def _numpy_openblas_paths():
    """Paths of loaded OpenBLAS libraries that belong to NumPy (its wheel's own folder first)."""
    try:
        with open("/proc/self/maps") as f:
            paths = {line.split()[-1] for line in f if "openblas" in line.lower() and line.split()[-1].startswith("/")}
    except OSError:  # not Linux
        return []
    numpy_dir = os.path.dirname(os.path.dirname(np.__file__))
    ours = [p for p in paths if os.path.basename(os.path.dirname(p)) in ("numpy.libs", "numpy", ".dylibs")
            and p.startswith(numpy_dir)]
    return sorted(ours)


def _load():
    with _LOCK:
        if _STATE["loaded"]:
            return _STATE["gemm"]
        _STATE["loaded"] = True
        _STATE["int"] = None
        np.ones((2, 2)) @ np.ones((2, 2))  # make sure NumPy's BLAS is loaded
        for path in _numpy_openblas_paths():
            try:
                lib = ctypes.CDLL(path)
            except OSError:
                continue
            for pattern, int_type in _SYMBOLS:
                fns = {}
                for kind, dtype, scalar in (("s", np.float32, ctypes.c_float), ("d", np.float64, ctypes.c_double)):
                    fn = getattr(lib, pattern.format(kind), None)
                    if fn is None:
                        break
                    fn.argtypes = [int_type] * 6 + [scalar, ctypes.c_void_p, int_type, ctypes.c_void_p, int_type,
                                                    scalar, ctypes.c_void_p, int_type]
                    fn.restype = None
                    fns[np.dtype(dtype)] = fn
                if len(fns) == 2:
                    _STATE["gemm"], _STATE["int"] = fns, int_type
                    return fns
        return _STATE["gemm"]


def _operand(x):
    """(pointer, transpose flag, leading dimension) of a 2-D array in row-major BLAS terms."""
    if x.strides[1] == x.itemsize and x.strides[0] >= x.shape[1] * x.itemsize:
        return x.ctypes.data, _NO_TRANS, x.strides[0] // x.itemsize
    if x.strides[0] == x.itemsize and x.strides[1] >= x.shape[0] * x.itemsize:
        return x.ctypes.data, _TRANS, x.strides[1] // x.itemsize  # x.T is row-major
    return None


_THREAD_SYMBOLS = (("scipy_openblas_set_num_threads64_", "scipy_openblas_get_num_threads64_"),
                   ("openblas_set_num_threads64_", "openblas_get_num_threads64_"),
                   ("openblas_set_num_threads", "openblas_get_num_threads"))
_THREADS = {"loaded": False, "fns": None}


def _thread_fns():
    """(set, get) of the thread count of NumPy's OpenBLAS, or None where there is none."""
    with _LOCK:
        if not _THREADS["loaded"]:
            _THREADS["loaded"] = True
            np.ones((2, 2)) @ np.ones((2, 2))
            for path in _numpy_openblas_paths():
                try:
                    lib = ctypes.CDLL(path)
                except OSError:
                    continue
                for set_name, get_name in _THREAD_SYMBOLS:
                    set_fn, get_fn = getattr(lib, set_name, None), getattr(lib, get_name, None)
                    if set_fn is not None and get_fn is not None:
                        set_fn.argtypes, set_fn.restype, get_fn.restype = [ctypes.c_int], None, ctypes.c_int
                        _THREADS["fns"] = set_fn, get_fn
                        break
                if _THREADS["fns"] is not None:
                    break
        return _THREADS["fns"]


@contextlib.contextmanager
def blas_threads(n):
    """Run the block with NumPy's OpenBLAS using at most ``n`` threads (process-wide while it runs);
    nothing changes where NumPy's OpenBLAS is not found (MKL, Accelerate, non-Linux).

    Example:
        >>> import numpy as np
        >>> from ember.kernels.cpu.blas import blas_threads
        >>> with blas_threads(1):
        ...     (np.ones((2, 3)) @ np.ones((3, 2))).tolist()
        [[3.0, 3.0], [3.0, 3.0]]
    """
    fns = _thread_fns()
    before = fns[1]() if fns is not None else 0
    if before <= n:
        yield
        return
    fns[0](n)
    try:
        yield
    finally:
        fns[0](before)


def uses_numpy_blas():
    """True when ``gemm_accumulate`` calls NumPy's own BLAS directly (else matmul + add)."""
    return bool(_load())


def gemm_accumulate(a, b, c):
    """``c += a @ b`` for 2-D float32/float64 arrays, ``c`` with unit column stride (a slice of a larger
    array is fine); ``a`` and ``b`` may be transposed views."""
    fn = _load().get(c.dtype)
    layout = None
    if fn is not None and a.dtype == b.dtype == c.dtype and c.strides[1] == c.itemsize:
        pa, pb = _operand(a), _operand(b)
        if pa is not None and pb is not None:
            layout = pa, pb
    if layout is None:
        c += a @ b
        return c
    (ptr_a, trans_a, lda), (ptr_b, trans_b, ldb) = layout
    m, k = a.shape
    n = b.shape[1]
    fn(_ROW_MAJOR, trans_a, trans_b, m, n, k, 1.0, ptr_a, lda, ptr_b, ldb, 1.0, c.ctypes.data,
       c.strides[0] // c.itemsize)
    return c


# Names under which cblas_sgemm and cblas_dgemm of NumPy's OpenBLAS are known to LLVM (see numba_gemm)
NUMBA_GEMM_SYMBOLS = {np.dtype(np.float32): "ember_numpy_cblas_sgemm64",
                      np.dtype(np.float64): "ember_numpy_cblas_dgemm64"}


def numba_gemm():
    """``{dtype: address}`` of NumPy's OpenBLAS ``cblas_sgemm``/``cblas_dgemm`` (64-bit integer builds,
    as NumPy's wheels have), each also registered with LLVM under ``NUMBA_GEMM_SYMBOLS[dtype]`` so that
    Numba kernels can call them by name (``numba.core.types.ExternalFunction``) and the machine code
    Numba caches on disk names the symbol rather than an address of this process; ``{}`` where there is
    no such library (NumPy on MKL or Accelerate, 32-bit integer builds, non-Linux).

    Example:
        >>> from ember.kernels.cpu.blas import numba_gemm
        >>> sorted(str(dtype) for dtype in numba_gemm()) in ([], ['float32', 'float64'])
        True
    """
    fns = _load()
    if not fns or _STATE["int"] is not ctypes.c_int64:
        return {}
    with _LOCK:
        if "numba" not in _STATE:
            import llvmlite.binding as llvm  # noqa: PLC0415 - only where Numba kernels ask for it

            addresses = {dtype: ctypes.cast(fn, ctypes.c_void_p).value for dtype, fn in fns.items()}
            for dtype, address in addresses.items():
                llvm.add_symbol(NUMBA_GEMM_SYMBOLS[dtype], address)
            _STATE["numba"] = addresses
        return _STATE["numba"]


# NOTE: OpenBLAS's small-matrix kernels (SkylakeX, float32, one thread) load the rows of B with full-width
# vector loads; with B's data 64-byte aligned (and its rows a multiple of 16 floats long) per-step LSTM
# products ran at 72-80 GMAC/s, against 51-57 with B 16 bytes off (what NumPy's allocator gives large
# arrays): (16, 257) @ (257, 512) 74.8 against 51.1, (16, 128) @ (128, 512) 73.9 against 56.2,
# (16, 512) @ (512, 128) 80.3 against 57.3 (100 products, CPU-time medians of 9, load 1.2-1.5). A's and
# C's alignment moved them by 5-8 % at most.
ALIGNMENT = 64


def aligned_empty(shape, dtype, alignment=ALIGNMENT):
    """An uninitialized C-ordered array whose data starts at a multiple of ``alignment`` bytes.

    Example:
        >>> import numpy as np
        >>> from ember.kernels.cpu.blas import aligned_empty
        >>> a = aligned_empty((3, 5), np.float32)
        >>> a.shape, a.dtype, a.ctypes.data % 64, a.flags.c_contiguous
        ((3, 5), dtype('float32'), 0, True)
    """
    dtype = np.dtype(dtype)
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    raw = np.empty(nbytes + alignment, dtype=np.uint8)
    start = -raw.ctypes.data % alignment
    return raw[start:start + nbytes].view(dtype).reshape(shape)


def aligned(a, dtype=None, alignment=ALIGNMENT):
    """``a`` itself when it is C-contiguous, of ``dtype`` (default: its own) and starts at a multiple of
    ``alignment`` bytes, else such a copy of it.

    Example:
        >>> import numpy as np
        >>> from ember.kernels.cpu.blas import aligned
        >>> w = np.arange(6.0).reshape(2, 3).T
        >>> b = aligned(w, np.float32)
        >>> b.ctypes.data % 64, b.flags.c_contiguous, bool((b == w).all())
        (0, True, True)
    """
    a = np.asarray(a)
    dtype = a.dtype if dtype is None else np.dtype(dtype)
    if a.dtype == dtype and a.flags.c_contiguous and a.ctypes.data % alignment == 0:
        return a
    out = aligned_empty(a.shape, dtype, alignment)
    out[...] = a
    return out
