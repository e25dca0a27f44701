"""The one place that sets Numba's compilation flags for ember's CPU kernels.

``cache=True`` everywhere, so a second process loads machine code from disk instead of compiling;
``parallel`` only on kernels whose measured time improved with it on two cores (see bench/).
"""
import functools
import os
import threading

import numba

# NOTE: Numba's default OpenMP threading layer keeps its threads spinning after a parallel loop,
# and so does OpenBLAS after a matrix product; alternating the two (im2col then GEMM) measured 8.5 ms
# instead of 1.1 ms on two cores. The workqueue layer does not spin. Respect a user's own choice.
if "NUMBA_THREADING_LAYER" not in os.environ:
    numba.config.THREADING_LAYER = "workqueue"

# NOTE: the workqueue layer aborts the process when two threads launch parallel kernels at once, so
# the registered kernels run one at a time (see ``serialized``); each still uses every core.
KERNEL_LOCK = threading.Lock()


def serialized(fn):
    """Run ``fn`` under the process-wide kernel lock (applied to every registered Numba kernel)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with KERNEL_LOCK:
            return fn(*args, **kwargs)

    return wrapper


JIT = {"cache": True, "nogil": True}
PARALLEL = {"cache": True, "nogil": True, "parallel": True}

njit = numba.njit
prange = numba.prange
