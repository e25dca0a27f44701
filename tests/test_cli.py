"""The ``ember`` command: ``python -m ember`` and the installed script, ``info`` and ``doctor``."""
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys

import pytest

SCRIPT = pathlib.Path(sys.executable).parent / "ember"


def run(*args, env=None, command=(sys.executable, "-m", "ember"), cwd=None):
    full = {k: v for k, v in os.environ.items() if k != "EMBER_CACHE_DIR"}
    full.update(env or {})
    return subprocess.run([*command, *args], capture_output=True, text=True, env=full, cwd=cwd, timeout=300)


def test_help_lists_the_commands():
    proc = run("--help")
    assert proc.returncode == 0 and "info" in proc.stdout and "doctor" in proc.stdout
    for command in ("info", "doctor"):
        sub = run(command, "--help")
        assert sub.returncode == 0 and f"usage: ember {command}" in sub.stdout
    assert "submit" in proc.stdout
    sub = run("submit", "--help")
    assert sub.returncode == 0 and "usage: ember submit [spark-submit options] APPLICATION" in sub.stdout
    assert run("submit").returncode == 2  # an application is required
    assert run().returncode == 2  # a command is required
    assert "invalid choice" in run("frobnicate").stderr


def test_info_reports_versions_cache_cpu_and_gpu_without_compiling(tmp_path):
    import numba
    import numpy as np

    proc = run("info", env={"EMBER_CACHE_DIR": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for pattern in ("versions:", rf"numpy\s+{np.__version__}", rf"numba\s+{numba.__version__}", r"Java\s+\S",
                    r"Spark jars\s+\S", rf"Numba cache\s+{re.escape(str(tmp_path / 'numba'))} \(0.0 MB\)",
                    r"CPU features used by Numba/BLAS\s+\S", "BLAS", "GPU:", "CuPy",
                    rf"EMBER_CACHE_DIR\s+{re.escape(str(tmp_path))}"):
        assert re.search(pattern, out), f"{pattern!r} missing from:\n{out}"
    assert not list(tmp_path.rglob("*.nbi")), "ember info compiled kernels"


def test_info_json():
    proc = run("info", "--json")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert {"versions", "Java and Spark", "kernels", "CPU", "BLAS", "GPU"} <= set(info)
    assert info["versions"]["Python"].startswith(".".join(map(str, sys.version_info[:2])))


def test_importing_the_cli_starts_no_spark_and_compiles_nothing(tmp_path):
    code = "import sys, ember.cli; print(sorted(m for m in sys.modules if m.startswith(('pyspark', 'py4j'))))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "EMBER_CACHE_DIR": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
    assert not list(tmp_path.rglob("*.nbi"))


def test_doctor_passes_where_java_and_spark_work():
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.skip("no Java on this machine: the failing case is tested below")
    proc = run("doctor")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "all checks passed" in proc.stdout
    for name in ("java", "javac", "pyspark", "block-service plugin", "Numba kernel cache"):
        assert f"[  ok] {name}" in proc.stdout


def test_doctor_fails_and_says_how_to_fix_when_java_is_nowhere(tmp_path):
    env = {"JAVA_HOME": str(tmp_path / "no-jdk"), "PATH": str(pathlib.Path(sys.executable).parent)}
    proc = run("doctor", env=env)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    out = proc.stdout
    assert "[FAIL] java " in out and "[FAIL] javac" in out
    assert f"JAVA_HOME is {tmp_path / 'no-jdk'} but {tmp_path / 'no-jdk' / 'bin' / 'java'} does not exist" in out
    assert "fix: install a Java 17 JDK" in out
    assert "[FAIL] block-service plugin" in out and "not tried" in out
    assert "[  ok] pyspark" in out and "check(s) failed: java, javac, block-service plugin" in out


def test_doctor_rejects_an_old_java(tmp_path):
    fake = tmp_path / "jdk" / "bin"
    fake.mkdir(parents=True)
    for tool in ("java", "javac"):
        (fake / tool).write_text('#!/bin/sh\necho \'java version "1.8.0_292"\' >&2\n')
        (fake / tool).chmod(0o755)
    proc = run("doctor", env={"JAVA_HOME": str(tmp_path / "jdk")})
    assert proc.returncode == 1
    assert "[FAIL] java " in proc.stdout and "Spark 4 needs Java 17 or newer" in proc.stdout


@pytest.mark.skipif(not SCRIPT.exists(), reason=f"no {SCRIPT}: reinstall with pip install -e . to get the script")
def test_installed_script(tmp_path):
    proc = run("info", command=(str(SCRIPT),), cwd=tmp_path)
    assert proc.returncode == 0 and "Numba cache" in proc.stdout, proc.stderr
