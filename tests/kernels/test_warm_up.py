"""Numba's set-up on a thread after ``import ember``: it runs (with a warm cache), it can be turned off,
and a fork right after the import still gets working kernels."""
import os
import subprocess
import sys

import pytest

SCRIPT = r"""
import os, sys, threading, time
import numpy as np
import ember
from ember.kernels.cpu import jit
thread = jit._WARM["thread"]
print("thread", thread is not None and thread.name)
if thread is not None:
    thread.join(60)
    print("alive", thread.is_alive())
if sys.argv[1] == "fork":
    pid = os.fork()  # waits for the warm-up first (os.register_at_fork)
    if pid == 0:
        from ember.kernels import get_kernel
        y = get_kernel("add_relu_forward", "numba")(np.array([1.0, -2.0]), np.array([0.5, 0.5]))
        os._exit(0 if y.tolist() == [1.5, 0.0] else 3)
    print("child", os.waitpid(pid, 0)[1])
"""


def _run(*args, env=None):
    # a first process fills the kernel cache (the warm-up starts only with a warm cache)
    full = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-c", SCRIPT, *args], env=full, capture_output=True, text=True,
                          timeout=300)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork only")
def test_import_starts_the_warm_up_and_a_fork_after_it_works():
    _run("plain")
    out = _run("fork")
    assert out.returncode == 0, out.stderr
    assert "thread ember-numba-warm-up" in out.stdout and "alive False" in out.stdout
    assert "child 0" in out.stdout


def test_the_warm_up_can_be_turned_off():
    out = _run("plain", env={"EMBER_WARMUP": "0"})
    assert out.returncode == 0, out.stderr
    assert "thread False" in out.stdout
