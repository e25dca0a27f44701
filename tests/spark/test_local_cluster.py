"""Distributed training across two executor JVMs (local-cluster), with one executor's Python
workers killed mid-training: blocks cross executors and the run still ends in a trained model."""
import json
import os
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.spark, pytest.mark.slow]


def test_two_executors_and_a_killed_worker(tmp_path):
    script = os.path.join(os.path.dirname(__file__), "cluster_job.py")
    proc = subprocess.run([sys.executable, script, str(tmp_path)], capture_output=True, text=True, timeout=600)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    result = json.loads(lines[-1])
    assert len(result["ports"]) == 2, "the two trainers ran in the same executor"
    assert [other for _, _, other in result["probes"]] == [1, 0]  # each read the other executor's block
    assert result["victim_jvm"] is not None and result["killed"] >= 1
    assert result["failures"] >= 1, "no training job was interrupted"
    assert result["iteration"] == 8 * 63
    assert result["accuracy"] > 0.95
