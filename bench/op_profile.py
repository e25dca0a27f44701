"""Where one training step's time goes, per op, in ember and in PyTorch (torch.profiler), side by side.

    python bench/op_profile.py W2 [--steps 50] [--threads 2] [--batch-size 128]
    python bench/op_profile.py W3 --steps 3 --batch-size 16 [--inference]

W1 and W2 run on MNIST-shaped data, W3 (ResNet-50) and W4 (Inception-v1) on 224x224x3 images, where
PyTorch runs in channels_last (its faster layout there). ``--inference``: the forward pass in eval mode
without gradients instead of the training step.

Each framework runs in its own process with the same thread limits (as bench/run.py). ember's
table comes from ``ember.engine.profiler`` (forward and backward seconds of each op, summed by op
name; "(outside ops)" is Python between ops, layer bookkeeping and allocation); the optimizer update
is timed on its own. PyTorch's comes from ``torch.profiler`` (self CPU time by op). Both are per step,
averaged over ``--steps`` after warm-up, on random MNIST-shaped data.
"""
import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def ember_profile(workload, steps, batch, inference=False):
    import numpy as np

    import ember
    from ember import optim
    from ember.engine import Tensor
    from ember.engine.profiler import profile
    from ember.engine.replay import StepReplay
    from ember.layers import losses
    from ember.optim.local import LocalEngine

    sys.path.insert(0, HERE)
    import models

    ember.set_seed(0)
    model = {"W1": models.mlp, "W2": models.lenet5, "W3": models.resnet50, "W4": models.googlenet}[workload]()
    rng = np.random.default_rng(0)
    shape, classes, _ = models.IMAGES[workload]
    x = rng.normal(size=(batch, *shape)).astype(np.float32)
    y = rng.integers(0, classes, batch)
    if inference:
        model.eval()
        with ember.no_grad():
            for _ in range(2):
                model(x)
            with profile() as p:
                for _ in range(steps):
                    model(x)
        return {"step_ms": p.wall * 1e3 / steps, "rows": p.table(per=steps)}
    loss_fn = losses.get("sparse_categorical_crossentropy")
    sgd = optim.SGD(0.01, momentum=0.9)
    model(x[:2])
    param, grad = model.parameters_flat(), model.gradients_flat()

    # as fit trains it: a replayable model's call recorded once and replayed (ember.engine.replay)
    replay = StepReplay(lambda t: model(t, training=True), model._flat_parameters().params) \
        if model.replayable() and LocalEngine.REPLAY else None

    flat = model._flat_parameters()

    def step():  # as fit's step: gradients marked zero, written by the backward pass (engine/flat.py)
        flat.zero_grad(deferred=True)
        out = replay(x) if replay is not None else model(Tensor(x), training=True)
        loss_fn(y, out).backward()
        flat.flush_zero()
        t = time.perf_counter()
        sgd.update(param, grad)
        return time.perf_counter() - t

    for _ in range(10 if workload in ("W1", "W2") else 3):
        step()
    update = 0.0
    with profile() as p:
        for _ in range(steps):
            update += step()
    rows = [(name, phase, ms, calls, share) for name, phase, ms, calls, share in p.table(per=steps)]
    outside = rows.pop()  # the optimizer's update is inside "(outside ops)": report it apart
    rows.append(("SGD update", "", update * 1e3 / steps, 1, update / p.wall))
    rows.append(("(outside ops)", "", outside[2] - update * 1e3 / steps, 0, outside[4] - update / p.wall))
    return {"step_ms": p.wall * 1e3 / steps, "rows": rows}


def torch_profile(workload, steps, batch, threads, inference=False):
    import torch
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profiler

    sys.path.insert(0, HERE)
    import models

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    # W3 and W4 in channels_last: PyTorch's faster layout for these
    model, x, y = models.torch_inputs(workload, batch, channels_last=workload in ("W3", "W4"))
    step = models.torch_sgd_step(model, x, y)

    if inference:
        model.eval()

        def step():  # noqa: F811 (the forward pass only)
            with torch.no_grad():
                model(x)

    for _ in range(10 if workload in ("W1", "W2") else 2):
        step()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    wall = time.perf_counter() - t
    with torch_profiler(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step()
    events = [e for e in prof.key_averages() if e.self_cpu_time_total > 0]
    events.sort(key=lambda e: -e.self_cpu_time_total)
    rows = [(e.key, "", e.self_cpu_time_total / 1e3 / steps, e.count / steps, e.self_cpu_time_total / 1e6 / wall)
            for e in events[:25]]
    return {"step_ms": wall * 1e3 / steps, "rows": rows}


def child(framework, workload, steps, batch, threads, inference):
    if framework == "ember":
        result = ember_profile(workload, steps, batch, inference)
    else:
        result = torch_profile(workload, steps, batch, threads, inference)
    print(json.dumps({"framework": framework, "workload": workload, **result}), flush=True)


def run(framework, args):
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        env[var] = str(args.threads)
    proc = subprocess.run([sys.executable, __file__, "--child", framework, args.workload, str(args.steps),
                           str(args.batch_size), str(args.threads), str(int(args.inference))],
                          env=env, capture_output=True, text=True)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {"framework": framework, "error": (proc.stderr.strip().splitlines() or ["?"])[-1]}
    return json.loads(lines[-1])


def table(result):
    if "error" in result:
        return f"{result['framework']}: failed ({result['error']})"
    lines = [f"{result['framework']} {result['workload']}: {result['step_ms']:.2f} ms per step",
             f"  {'op':<34}{'phase':<10}{'ms/step':>9}{'calls':>7}{'share':>8}"]
    for name, phase, ms, calls, share in result["rows"]:
        lines.append(f"  {name[:33]:<34}{phase:<10}{ms:9.3f}{calls:7.1f}{share:8.1%}")
    return "\n".join(lines)


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]), sys.argv[7] == "1")
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workload", choices=["W1", "W2", "W3", "W4"])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--inference", action="store_true", help="the forward pass (eval, no gradients) instead")
    parser.add_argument("--json", action="store_true", help="print the results as JSON lines")
    args = parser.parse_args()
    frameworks = ["ember"]
    try:
        import torch  # noqa: F401
        frameworks.append("torch")
    except ImportError:
        print("torch is not installed (pip install torch==2.13.0): ember's profile only", file=sys.stderr)
    for framework in frameworks:
        result = run(framework, args)
        print(json.dumps(result) if args.json else table(result), flush=True)


if __name__ == "__main__":
    main()
