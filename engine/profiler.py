"""An opt-in per-op profile: the seconds each op's forward and backward take, summed by op name.

Off by default (one global test per op when off). ``with profile() as p:`` records every op run
inside the block; ``p.table()`` lists them, largest first, with the time outside any op (Python
between ops, allocation in layers, the optimizer) as the difference to the block's wall time.

Example:
    >>> import numpy as np
    >>> from ember.engine import Tensor, functional as F
    >>> from ember.engine.profiler import profile
    >>> with profile() as p:
    ...     x = Tensor(np.ones((4, 4)), requires_grad=True)
    ...     F.sum(F.matmul(x, x)).backward()
    >>> sorted(name for name, _ in p.seconds)
    ['MatMul', 'MatMul', 'Sum', 'Sum']
"""
import contextlib
import time

ACTIVE = None  # the Profile being recorded into, or None


class Profile:
    """Seconds by (op name, "forward" | "backward"), and the wall time of the profiled block."""

    def __init__(self):
        self.seconds = {}
        self.calls = {}
        self.wall = 0.0

    def add(self, name, phase, seconds):
        key = (name, phase)
        self.seconds[key] = self.seconds.get(key, 0.0) + seconds
        self.calls[key] = self.calls.get(key, 0) + 1

    def table(self, per=1):
        """Rows (op, phase, milliseconds / ``per``, calls / ``per``, share of the wall time), largest first,
        then ("(outside ops)", "", ms, 0, share): Python between ops, layer bookkeeping, optimizer."""
        rows = [(name, phase, s * 1e3 / per, self.calls[(name, phase)] / per, s / self.wall if self.wall else 0.0)
                for (name, phase), s in self.seconds.items()]
        rows.sort(key=lambda r: -r[2])
        outside = self.wall - sum(self.seconds.values())
        rows.append(("(outside ops)", "", outside * 1e3 / per, 0, outside / self.wall if self.wall else 0.0))
        return rows


@contextlib.contextmanager
def profile():
    """Record the ops run inside the block (not nestable)."""
    global ACTIVE
    if ACTIVE is not None:
        raise RuntimeError("profile(): a profile is already being recorded")
    p = Profile()
    ACTIVE = p
    start = time.perf_counter()
    try:
        yield p
    finally:
        p.wall = time.perf_counter() - start
        ACTIVE = None
