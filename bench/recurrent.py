"""Recurrent layers against PyTorch CPU: LSTM, GRU and SimpleRNN (torch.nn.RNN), one training pass
(forward and backward of a weighted sum of the outputs), batch 32, 128 features, 128 units, 100 steps
by default (the shape of issue 18's goal), float32, 2 threads each.

    python bench/recurrent.py [--repeat 5] [--layers LSTM GRU] [--steps 100] [--per-step]
    python bench/recurrent.py --threads 2 --rounds 5       # each framework in its own process

With more than one thread (or ``--processes``) each framework runs in its own process, as in
bench/run.py: in one process OpenBLAS's and PyTorch's OpenMP threads spin against each other and the
comparison is unfair. The processes alternate (ember, torch, ember, ...) for ``--rounds`` rounds,
each timing ``--repeat`` passes after warm-up; one JSON line per layer gives the medians over the
rounds of each process's median pass and their ratio, and every round's figures.

With one thread (or ``--in-process``) the frameworks take turns in one process (ember fused,
[ember per-step,] torch, then again), and the medians are compared: one JSON line per layer with the
milliseconds per pass, samples/s and the ratio torch_ms / ember_ms (> 1: ember faster), plus the
load average before and after (the machine may be shared: the ratio of alternating runs is steadier
than either time). The same for the CPU time of the process (``*_cpu_ms``, ``ratio_cpu_*``): on a
shared machine a pass's wall time also counts the time other processes held the core, its CPU time
much less so (with more than one thread, the CPU time adds up the threads, spinning ones included).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

THREADS = 2


def child(framework, name, args):
    """One process: ``args.repeat`` passes of one framework's layer after warm-up; prints a JSON line."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.batch, args.steps, args.features)).astype(np.float32)
    coef = rng.standard_normal((args.batch, args.steps, args.units)).astype(np.float32)
    if framework == "torch":
        import torch

        torch.set_num_threads(args.threads)
        theirs = {"LSTM": torch.nn.LSTM, "GRU": torch.nn.GRU, "SimpleRNN": torch.nn.RNN}[name](
            args.features, args.units, batch_first=True)
        tx, tc = torch.from_numpy(x).requires_grad_(), torch.from_numpy(coef)

        def one_pass():
            theirs.zero_grad()
            (theirs(tx)[0] * tc).sum().backward()
    else:
        import ember
        from ember import layers
        from ember.engine import Tensor

        ember.set_seed(0)
        layer = getattr(layers, name)(args.units, return_sequences=True)

        def one_pass():
            (layer(Tensor(x, requires_grad=True)) * Tensor(coef)).sum().backward()
    for _ in range(3):  # warm-up: compilation, allocation
        one_pass()
    times, cpu = [], []
    for _ in range(args.repeat):
        c0, t0 = time.process_time(), time.perf_counter()
        one_pass()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    print(json.dumps({"ms": statistics.median(times) * 1e3, "cpu_ms": statistics.median(cpu) * 1e3}), flush=True)


def separate_processes(args):
    """Each framework in its own process, alternating, ``args.rounds`` rounds per layer."""
    base = [sys.executable, os.path.abspath(__file__), "--threads", str(args.threads), "--batch", str(args.batch),
            "--steps", str(args.steps), "--features", str(args.features), "--units", str(args.units),
            "--repeat", str(args.repeat)]
    for name in args.layers:
        runs = {"ember": [], "torch": []}
        load_before = os.getloadavg()
        for _ in range(args.rounds):
            for framework in runs:
                proc = subprocess.run(base + ["--child", framework, name], capture_output=True, text=True)
                lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
                if proc.returncode != 0 or not lines:
                    raise SystemExit(f"{framework} {name} failed: {proc.stderr.strip()[-2000:]}")
                runs[framework].append(json.loads(lines[-1]))
        med = {f: statistics.median(r["ms"] for r in rs) for f, rs in runs.items()}
        med_cpu = {f: statistics.median(r["cpu_ms"] for r in rs) for f, rs in runs.items()}
        print(json.dumps({"layer": name, "batch": args.batch, "steps": args.steps, "units": args.units,
                          "threads": args.threads, "repeat": args.repeat, "rounds": args.rounds,
                          "processes": "separate", "ember_ms": round(med["ember"], 3),
                          "torch_ms": round(med["torch"], 3), "ratio_ember": round(med["torch"] / med["ember"], 3),
                          "ember_cpu_ms": round(med_cpu["ember"], 2), "torch_cpu_ms": round(med_cpu["torch"], 2),
                          "rounds_ms": {f: [round(r["ms"], 3) for r in rs] for f, rs in runs.items()},
                          "load_before_after": [round(v, 2) for v in load_before + os.getloadavg()]}), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", nargs="+", default=["LSTM", "GRU", "SimpleRNN"])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--features", type=int, default=128)
    parser.add_argument("--units", type=int, default=128)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--threads", type=int, default=THREADS)
    parser.add_argument("--per-step", action="store_true", help="also time ember's per-step path (slow)")
    parser.add_argument("--rounds", type=int, default=5, help="alternating process pairs (separate processes)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--processes", action="store_true", help="each framework in its own process")
    mode.add_argument("--in-process", action="store_true", help="both frameworks in this process")
    parser.add_argument("--child", nargs=2, metavar=("FRAMEWORK", "LAYER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(*args.child, args)
    if args.processes or (args.threads > 1 and not args.in_process):
        if args.per_step:
            parser.error("--per-step needs --in-process")
        return separate_processes(args)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    import numpy as np
    import torch

    import ember
    from ember import layers
    from ember.engine import Tensor

    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.batch, args.steps, args.features)).astype(np.float32)
    coef = rng.standard_normal((args.batch, args.steps, args.units)).astype(np.float32)
    torch_cls = {"LSTM": torch.nn.LSTM, "GRU": torch.nn.GRU, "SimpleRNN": torch.nn.RNN}

    for name in args.layers:
        ember.set_seed(0)
        ours = {"fused": getattr(layers, name)(args.units, return_sequences=True)}
        if args.per_step:
            ours["per_step"] = getattr(layers, name)(args.units, return_sequences=True)
            ours["per_step"]._sequence_fusion = False
        theirs = torch_cls[name](args.features, args.units, batch_first=True)
        tx, tc = torch.from_numpy(x).requires_grad_(), torch.from_numpy(coef)

        def ember_pass(layer):
            t = Tensor(x, requires_grad=True)
            (layer(t) * Tensor(coef)).sum().backward()

        def torch_pass(theirs=theirs, tx=tx, tc=tc):
            theirs.zero_grad()
            (theirs(tx)[0] * tc).sum().backward()

        runs = {f"ember_{k}": (lambda layer=v: ember_pass(layer)) for k, v in ours.items()}
        runs["torch"] = torch_pass
        for fn in runs.values():  # warm-up: compilation, allocation
            fn()
        times, cpu = {k: [] for k in runs}, {k: [] for k in runs}
        load_before = os.getloadavg()
        for _ in range(args.repeat):
            for k, fn in runs.items():
                c0, t0 = time.process_time(), time.perf_counter()
                fn()
                times[k].append(time.perf_counter() - t0)
                cpu[k].append(time.process_time() - c0)
        med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
        med_cpu = {k: statistics.median(v) * 1e3 for k, v in cpu.items()}
        out = {"layer": name, "batch": args.batch, "steps": args.steps, "units": args.units,
               "threads": args.threads, "repeat": args.repeat,
               **{f"{k}_ms": round(v, 2) for k, v in med.items()},
               **{f"{k}_samples_per_s": round(args.batch / v * 1e3, 1) for k, v in med.items()},
               **{f"ratio_{k}": round(med["torch"] / v, 3) for k, v in med.items() if k != "torch"},
               **{f"{k}_cpu_ms": round(v, 2) for k, v in med_cpu.items()},
               **{f"ratio_cpu_{k}": round(med_cpu["torch"] / v, 3) for k, v in med_cpu.items() if k != "torch"},
               "load_before_after": [round(v, 2) for v in load_before + os.getloadavg()]}
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
