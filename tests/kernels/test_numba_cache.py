"""Numba's cache lives in ember's user cache folder (or $NUMBA_CACHE_DIR), never beside the kernels, and
the first process that compiles into an empty cache says so once."""
import os
import pathlib
import subprocess
import sys

import pytest

pytest.importorskip("numba")

ROOT = pathlib.Path(__file__).resolve().parents[2]
PROGRAM = """
import numba, numpy as np
from ember.kernels import get_kernel
from ember.kernels.cpu import jit
print("CACHE_DIR", jit.CACHE_DIR, numba.config.CACHE_DIR)
get_kernel("relu_forward", "numba")(np.arange(-3, 3, dtype=np.float32), None, 0.0)
"""


def run(env_updates, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_CACHE_DIR", "EMBER_CACHE_DIR", "XDG_CACHE_HOME")}
    env.update(env_updates)
    env["HOME"] = str(tmp_path / "home")  # nothing reaches the real home folder
    proc = subprocess.run([sys.executable, "-c", PROGRAM], env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc


def kernel_files(folder):
    return sorted(p for p in pathlib.Path(folder).rglob("*") if p.suffix in (".nbi", ".nbc"))


def test_cache_goes_to_ember_cache_dir_and_first_use_is_announced_once(tmp_path):
    before = set(kernel_files(ROOT))
    first = run({"EMBER_CACHE_DIR": str(tmp_path / "cache")}, tmp_path)
    folder = tmp_path / "cache" / "numba"
    assert f"CACHE_DIR {folder} {folder}" in first.stdout
    assert kernel_files(folder), "no compiled kernel in the cache folder"
    assert set(kernel_files(ROOT)) == before, "a kernel was cached inside the package"
    assert "compiling ember's CPU kernels once into" in first.stderr
    second = run({"EMBER_CACHE_DIR": str(tmp_path / "cache")}, tmp_path)
    assert "compiling" not in second.stderr


def test_default_is_the_user_cache_folder(tmp_path):
    proc = run({}, tmp_path)
    folder = tmp_path / "home" / ".cache" / "ember" / "numba"
    assert f"CACHE_DIR {folder} {folder}" in proc.stdout
    assert kernel_files(folder)
    xdg = run({"XDG_CACHE_HOME": str(tmp_path / "xdg")}, tmp_path)
    assert f"CACHE_DIR {tmp_path / 'xdg' / 'ember' / 'numba'}" in xdg.stdout


def test_users_numba_cache_dir_is_respected(tmp_path):
    proc = run({"NUMBA_CACHE_DIR": str(tmp_path / "mine"), "EMBER_CACHE_DIR": str(tmp_path / "ours")}, tmp_path)
    assert f"CACHE_DIR {tmp_path / 'mine'} {tmp_path / 'mine'}" in proc.stdout
    assert kernel_files(tmp_path / "mine") and not (tmp_path / "ours").exists()
