"""The one place that sets Numba's compilation flags and cache folder for ember's CPU kernels.

``cache=True`` everywhere, so a second process loads machine code from disk instead of compiling;
``parallel`` only on kernels whose measured time improved with it on two cores (see bench/).

The cache lives in ember's user cache folder (``~/.cache/ember/numba``; ``$EMBER_CACHE_DIR/numba``),
or in ``$NUMBA_CACHE_DIR`` when the user set it, never inside the installed package (see ``ember._cache``).
"""
import functools
import hashlib
import logging
import os
import tempfile
import threading
import types

import numba

from ember._cache import announce, cache_home

logger = logging.getLogger("ember.kernels")

# NOTE: the threading layer is GNU OpenMP where it loads (else Numba's workqueue), its threads spinning at
# most GOMP_SPINCOUNT=10000 turns after a parallel loop. A launch costs 1.5 us against workqueue's 19 us
# (empty kernel, bench/parallel.py); ember alone on two cores at load 2-4 (2026-12-05): LeNet-5 (W2) epoch
# 24.0k and 22.9k samples/s against 15.3k and 17.9k with workqueue, the LSTM training pass at 2 threads
# 0.95-0.96 of PyTorch's against 0.54-0.75, W1, ResNet-50 and Inception-v1 unchanged (W3 21.5 against
# 21.6 images/s, training step 2.67 against 2.66 s). Libgomp's default spin (300000 turns) fights
# OpenBLAS's own spinning threads: W4 inference 36.3 against 46.2 images/s, training 1.31 against 1.06 s.
# GNU OpenMP cannot run in a process forked after it started: see _after_fork_in_child. A user's own
# NUMBA_THREADING_LAYER, GOMP_SPINCOUNT or OMP_WAIT_POLICY is respected.
if "NUMBA_THREADING_LAYER" not in os.environ:
    numba.config.THREADING_LAYER = "default"
    numba.config.THREADING_LAYER_PRIORITY = ["omp", "workqueue", "tbb"]
    if "GOMP_SPINCOUNT" not in os.environ and "OMP_WAIT_POLICY" not in os.environ:
        os.environ["GOMP_SPINCOUNT"] = "10000"  # read by libgomp when Numba first loads it (a parallel launch)


def _choose_cache_dir():
    """``$NUMBA_CACHE_DIR`` if set, else ember's user cache folder, else one in the temporary folder;
    None when none of them can be created (then nothing is cached)."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return os.environ["NUMBA_CACHE_DIR"]
    user = f"ember-{os.getuid()}" if hasattr(os, "getuid") else "ember"
    for folder in (cache_home("numba"), os.path.join(tempfile.gettempdir(), user, "numba")):
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError:
            continue
        if os.access(folder, os.W_OK):
            return folder
    return None


# NOTE: Numba's default locator writes beside the source (the installed package's __pycache__); a
# set CACHE_DIR takes precedence. Only numba.config is set, not os.environ: a changed NUMBA_* variable
# makes Numba's next compilation re-read every setting from the environment (THREADING_LAYER above
# included). Each kernel's cache location is fixed when it is decorated, which is at import, after this.
CACHE_DIR = _choose_cache_dir()
if CACHE_DIR is not None:
    numba.config.CACHE_DIR = CACHE_DIR


def _cached_here(cache_dir):
    """Whether ``cache_dir`` already holds machine code of these kernel files."""
    try:
        from numba.core.caching import _CacheLocator  # noqa: PLC0415 - Numba's own folder naming

        folder = os.path.join(cache_dir, _CacheLocator.get_suitable_cache_subpath(os.path.abspath(__file__)))
        return any(name.endswith(".nbi") for name in os.listdir(folder))
    except OSError:  # no such folder yet
        return False
    except (ImportError, AttributeError):  # a Numba that names its folders otherwise: say nothing
        return True


_COLD = {"pending": CACHE_DIR is not None and not _cached_here(CACHE_DIR)}


def _announce_compilation():
    """One line, on the first kernel call of a process whose cache holds none of these kernels yet."""
    _COLD["pending"] = False
    # NOTE: measured cold on 2 shared cores: LeNet-5's kernels (fit + evaluate) 3.2 s in one process; on
    # Spark local[2] its first 20 iterations took 7.7 s instead of 3.7 s; every kernel with every dtype
    # (tests/kernels) 63 s, then 1.5 s once cached (8.6 MB in the cache). Each process that finds the
    # cache empty says so (a Spark job: the driver and each Python worker). Since the register-blocked
    # convolutions (kernels/cpu/blocked.py), LeNet-5's first training step with an empty cache takes about
    # 30 s (8 s before them; load 1.5-2 on the 2 cores, 2026-12-04).
    message = (f"compiling ember's CPU kernels once into {CACHE_DIR} as they are first used (about 30 s for "
               "LeNet-5, a minute or two for every layer type; cached afterwards)")
    announce(logger, message)


# NOTE: the workqueue layer aborts the process when two threads launch parallel kernels at once, so
# the registered kernels run one at a time (see ``serialized``); each still uses every core.
KERNEL_LOCK = threading.Lock()


def serialized(fn):
    """Run ``fn`` under the process-wide kernel lock (applied to every registered Numba kernel)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if _COLD["pending"]:
            _announce_compilation()
        with KERNEL_LOCK:
            return fn(*args, **kwargs)

    return wrapper


# NOTE: error_model "numpy": a float division by zero gives inf/nan as in NumPy (the reference)
# instead of raising, which also lets LLVM vectorize loops with divisions. With Python's error model
# every division carried a zero check and Adam's update stayed scalar: 3.3 ms -> 0.3 ms on 1M floats.
JIT = {"cache": CACHE_DIR is not None, "nogil": True, "error_model": "numpy"}
PARALLEL = {**JIT, "parallel": True}
# Numba's on-disk cache is keyed on the kernel's own source file, not on these flags: the flags are
# part of every compiled kernel's name, so that changing them cannot load code compiled under others.
_FLAGS_TAG = "_" + hashlib.sha1(repr(sorted(JIT.items())).encode()).hexdigest()[:8]

njit = numba.njit
prange = numba.prange


def _thread_budget():
    # NOTE: Spark starts Python workers with OMP_NUM_THREADS = the task's cores (1 by default), and
    # OpenBLAS follows it; Numba does not, so without this each of two trainers on two cores would
    # launch two kernel threads.
    for var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS"):
        try:
            return max(1, int(os.environ[var]))
        except (KeyError, ValueError):
            continue
    return numba.config.NUMBA_NUM_THREADS


THREADS = {"n": _thread_budget(), "mode": os.environ.get("EMBER_NUMBA_PARALLEL", "auto")}


def _after_fork_in_child():
    """In a child forked after the parent's first parallel kernel under GNU OpenMP (which aborts such a
    child at its next parallel region), every kernel runs on one thread."""
    try:
        layer = numba.threading_layer()
    except ValueError:  # no parallel kernel has run yet: the child may start its own threads
        return
    if layer == "omp":
        THREADS["mode"] = "never"


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def partial_sum_blocks(n):
    """How many blocks of rows a reduction over ``n`` rows sums separately (four per thread, so
    that threads finishing early take more), each into its own row of partial sums."""
    return max(1, min(n, 4 * numba.get_num_threads()))


def set_parallel_mode(mode):
    """"auto" (threads above each kernel's measured work size), "always" or "never" (for benchmarks)."""
    if mode not in ("auto", "always", "never"):
        raise ValueError(f"set_parallel_mode: expected 'auto', 'always' or 'never', got {mode!r}")
    THREADS["mode"] = mode


def parallel_above(min_work, work=None, fastmath=None):
    """Compile a kernel twice, with threads (``prange`` in parallel) and without, and run the threaded
    one only for work of at least ``min_work`` (default measure: the first argument's size).
    ``fastmath``: a set of LLVM fast-math flags for this kernel only (each use carries its measurement).

    NOTE: a parallel launch costs 80-150 us with the workqueue layer on two cores (measured in
    bench/parallel.py), longer than a serial pass over a million float32s: small calls run serially.
    """
    def decorate(fn):
        # a distinct name, so that Numba's on-disk cache keeps the two compilations apart
        def renamed(suffix):
            twin = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__ + suffix, fn.__defaults__,
                                      fn.__closure__)
            twin.__qualname__ = fn.__qualname__ + suffix
            return twin

        extra = {"fastmath": set(fastmath)} if fastmath else {}
        tag = _FLAGS_TAG + ("_" + hashlib.sha1(repr(sorted(fastmath)).encode()).hexdigest()[:8] if fastmath else "")
        parallel = numba.njit(**PARALLEL, **extra)(renamed(tag))
        serial = numba.njit(**JIT, **extra)(renamed(tag + "_serial"))
        measure = work or (lambda *args: args[0].size)

        @functools.wraps(fn)
        def dispatch(*args):
            if _COLD["pending"]:
                _announce_compilation()
            mode = THREADS["mode"]
            threaded = mode == "always" or (mode == "auto" and THREADS["n"] > 1 and measure(*args) >= min_work)
            return (parallel if threaded else serial)(*args)

        dispatch.parallel, dispatch.serial, dispatch.min_work, dispatch.measure = parallel, serial, min_work, measure
        return dispatch

    return decorate
