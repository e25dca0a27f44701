"""bench/run.py's summary: medians per field (not maxima), PyTorch's better layout per measure, and
the table's ratio rows."""
import types

from tests.bench_module import load_bench


def test_median_per_field_and_contention():
    bench = load_bench("run")
    runs = [{"workload": "W1", "samples_per_s": v, "epoch_s": 60000 / v, "contended": c}
            for v, c in ((100.0, False), (300.0, True), (200.0, False))]
    merged = bench.median_result(runs)
    assert merged["samples_per_s"] == 200.0 and merged["epoch_s"] == 300.0  # each field's own median
    assert merged["runs"] == 3 and merged["contended"] is True
    assert bench.median_result(runs + [{"workload": "W1", "error": ["boom"]}])["error"] == ["boom"]


def test_ratio_against_the_better_torch_layout():
    bench = load_bench("run")
    ember = {"workload": "W3", "inference_img_per_s": 20.0, "train_step_s": 2.0}
    nchw = {"workload": "W3", "inference_img_per_s": 25.0, "train_step_s": 1.6}
    nhwc = {"workload": "W3", "inference_img_per_s": 40.0, "train_step_s": 1.8}
    best = bench.best_of([nchw, nhwc])
    assert best["inference_img_per_s"] == 40.0 and best["train_step_s"] == 1.6  # the better one per measure
    assert bench.ratios(ember, nchw)["inference_img_per_s"] == 0.8
    r = bench.ratios(ember, best, "ember/best torch layout (>1: ember faster)")
    assert r["inference_img_per_s"] == 0.5 and r["train_step_speed"] == 0.8
    row = {"workload": "W3", "results": {"ember": ember, "torch": nchw, bench.TORCH_CL: nhwc},
           "ratios": bench.ratios(ember, nchw), "ratios_best": r}
    table = bench.markdown([row], types.SimpleNamespace(threads=2, repeat=1)).splitlines()
    assert "| W3 | torch-cl | " in "\n".join(table)
    assert table[-1].startswith("| W3 | **ratio vs best torch layout** |  | 0.5 | 0.8 |")


def test_ratio_after_the_first_step_is_its_own_column():
    bench = load_bench("run")
    ember = {"workload": "W1", "samples_per_s": 30000.0, "steady_samples_per_s": 50000.0}
    torch = {"workload": "W1", "samples_per_s": 40000.0, "steady_samples_per_s": 40000.0}
    r = bench.ratios(ember, torch)
    assert r["samples_per_s"] == 0.75 and r["steady_samples_per_s"] == 1.25
    row = {"workload": "W1", "results": {"ember": ember, "torch": torch}, "ratios": r}
    table = bench.markdown([row], types.SimpleNamespace(threads=2, repeat=1)).splitlines()
    assert table[-1] == "| W1 | **ratio** | 0.75 |  |  | | | | 1.25 |"
    assert table[-3].endswith("| 50000 |")  # ember's row: samples/s after the first step, last column
