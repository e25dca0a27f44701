"""ember's Numba threading layer: GNU OpenMP with a short spin where it loads, and a child forked after
the parent's first parallel kernel runs its kernels on one thread instead of being aborted by libgomp."""
import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent("""
    import os, sys
    import numpy as np
    import numba
    import ember
    from ember.kernels.cpu import jit
    from ember.layers import Dense

    x = np.random.default_rng(0).standard_normal((512, 256)).astype(np.float32)
    layer = Dense(64, activation="relu")
    jit.set_parallel_mode(sys.argv[1])
    expected = np.asarray(layer(x).data)
    print("layer", numba.threading_layer(), os.environ.get("GOMP_SPINCOUNT"), flush=True)
    pid = os.fork()
    if pid == 0:
        if sys.argv[2] == "force":  # what the fork hook prevents
            jit.set_parallel_mode("always")
        got = np.asarray(layer(x).data)
        print("child", jit.THREADS["mode"], bool(np.array_equal(got, expected)), flush=True)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    print("status", os.waitstatus_to_exitcode(status), flush=True)
""")


def _run(mode, child, env=None):
    environment = {k: v for k, v in os.environ.items()
                   if k not in ("NUMBA_THREADING_LAYER", "GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}
    environment.update({"NUMBA_NUM_THREADS": "2", "OMP_NUM_THREADS": "2", **(env or {})})
    done = subprocess.run([sys.executable, "-c", SCRIPT, mode, child], capture_output=True, text=True,
                          env=environment, timeout=300)
    return dict(line.split(" ", 1) for line in done.stdout.splitlines() if " " in line), done


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_omp_with_a_short_spin_and_a_forked_child_runs_serially():
    lines, done = _run("always", "keep")
    layer, spin = lines["layer"].split()
    if layer != "omp":
        pytest.skip(f"GNU OpenMP did not load here (layer {layer}); ember falls back to it")
    assert spin == "10000"
    assert lines["child"] == "never True", done.stderr
    assert lines["status"] == "0"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_without_the_fork_hook_libgomp_aborts_the_child():
    # the control: the same child forced back to threads is killed by libgomp (so the test above can fail)
    lines, done = _run("always", "force")
    if lines["layer"].split()[0] != "omp":
        pytest.skip("GNU OpenMP did not load here")
    assert "child" not in lines
    assert lines["status"] != "0"
    assert "fork() called from a process already using GNU OpenMP" in done.stdout + done.stderr


def test_a_users_own_settings_are_kept():
    lines, _ = _run("always", "keep", {"NUMBA_THREADING_LAYER": "workqueue", "GOMP_SPINCOUNT": "5"})
    assert lines["layer"].split() == ["workqueue", "5"]
    assert lines["child"] == "always True"  # no fork hook under workqueue: the parent's mode carries over
