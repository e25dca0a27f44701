"""bench/recurrent.py with each framework in its own process: one JSON line per layer, both frameworks'
times from their own processes and the ratio of the medians."""
import json
import subprocess
import sys

import pytest

from tests.bench_module import ROOT

pytest.importorskip("torch")


@pytest.mark.slow
def test_separate_processes_report_medians_and_ratio():
    cmd = [sys.executable, str(ROOT / "bench" / "recurrent.py"), "--threads", "2", "--rounds", "2", "--repeat", "1",
           "--batch", "3", "--steps", "4", "--features", "2", "--units", "3", "--layers", "LSTM", "GRU"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert [r["layer"] for r in rows] == ["LSTM", "GRU"]
    for r in rows:
        assert r["processes"] == "separate" and r["threads"] == 2 and r["rounds"] == 2
        assert all(len(r["rounds_ms"][f]) == 2 and min(r["rounds_ms"][f]) > 0 for f in ("ember", "torch"))
        assert r["ember_ms"] == pytest.approx(sum(r["rounds_ms"]["ember"]) / 2, abs=0.02)  # median of two
        # the ms are rounded to 0.001 (a tiny workload's are about 0.1 ms): the ratio of the rounded values
        # may differ from the printed ratio by the rounding's relative error on each side
        rounding = 0.0005 / r["torch_ms"] + 0.0005 / r["ember_ms"] + 0.001
        assert r["ratio_ember"] == pytest.approx(r["torch_ms"] / r["ember_ms"], rel=rounding)
