"""A non-editable install has the `ember` command and stays as pip wrote it: running ember (kernels
compiled, a model trained) adds no file to the installed package that pip's RECORD does not list, so
`pip uninstall` (and `pip install -e .` after `pip install .`) leaves no `site-packages/ember/` behind
to shadow an editable install."""
import os
import pathlib
import shutil
import site
import subprocess
import sys
import sysconfig

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
SKIP = shutil.ignore_patterns(".git", "__pycache__", "build", "dist", "*.egg-info", ".venv", "*.ember")
PROGRAM = """
import numpy as np
import ember
from ember.layers import Conv2D, Dense, Flatten, MaxPooling2D
print("ember from", ember.__file__)
model = ember.Sequential([Conv2D(4, 3, activation="relu", input_shape=(8, 8, 1)), MaxPooling2D(2), Flatten(),
                          Dense(3)])
model.compile("sgd", "sparse_categorical_crossentropy")
model.fit(np.random.rand(16, 8, 8, 1).astype("float32"), np.arange(16) % 3, batch_size=8, epochs=1, verbose=0)
"""


def pip(python, *args, cwd=None):
    proc = subprocess.run([str(python), "-m", "pip", *args], capture_output=True, text=True, cwd=cwd, timeout=600)
    assert proc.returncode == 0, f"pip {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.mark.slow
def test_running_leaves_only_recorded_files_in_the_installed_package(tmp_path):
    source = tmp_path / "src"
    shutil.copytree(ROOT, source, ignore=SKIP)  # a copy, so that the build writes nothing into the checkout
    pip(sys.executable, "wheel", "--no-deps", "--quiet", "-w", str(tmp_path / "wheels"), str(source))
    wheel = next((tmp_path / "wheels").glob("ember_dl-*.whl"))

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    pip(python, "install", "--no-deps", "--no-index", "--quiet", str(wheel))
    purelib = pathlib.Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                                          capture_output=True, text=True, check=True).stdout.strip())
    # ember's dependencies come from this test's environment (after the venv's own site-packages)
    ours = [p for p in [*site.getsitepackages(), sysconfig.get_path("purelib")] if os.path.isdir(p)]
    (purelib / "zz_test_dependencies.pth").write_text("\n".join(dict.fromkeys(ours)) + "\n")

    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_CACHE_DIR", "EMBER_CACHE_DIR", "XDG_CACHE_HOME",
                                                            "PYTHONPATH")}
    env["HOME"] = str(tmp_path / "home")
    proc = subprocess.run([str(python), "-c", PROGRAM], env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"ember from {purelib / 'ember' / '__init__.py'}" in proc.stdout

    info = subprocess.run([str(venv / "bin" / "ember"), "info"], env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)
    assert info.returncode == 0 and f"at {purelib / 'ember'}" in info.stdout, info.stderr[-3000:]

    record = next(purelib.glob("ember_dl-*.dist-info")) / "RECORD"
    listed = {line.split(",")[0] for line in record.read_text().splitlines() if line}
    present = {p.relative_to(purelib).as_posix() for p in (purelib / "ember").rglob("*") if p.is_file()}
    assert present - listed == set(), f"written into the installed package at run time: {sorted(present - listed)}"
    assert list((tmp_path / "home" / ".cache" / "ember" / "numba").rglob("*.nbi")), "the kernels were not cached"

    pip(python, "uninstall", "--yes", "--quiet", "ember-dl")
    assert not (purelib / "ember").exists(), "pip uninstall left site-packages/ember behind"
