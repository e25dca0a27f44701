"""Recurrent layers against PyTorch CPU in one process: LSTM, GRU and SimpleRNN (torch.nn.RNN), one
training pass (forward and backward of a weighted sum of the outputs), batch 32, 128 features,
128 units, 100 steps by default (the shape of issue 18's goal), float32, 2 threads each.

    python bench/recurrent.py [--repeat 5] [--layers LSTM GRU] [--steps 100] [--per-step]

The frameworks take turns (ember fused, [ember per-step,] torch, then again), and the medians are
compared: one JSON line per layer with the milliseconds per pass, samples/s and the ratio
torch_ms / ember_ms (> 1: ember faster), plus the load average before and after (the machine may be
shared: the ratio of alternating runs is steadier than either time). The same for the CPU time of
the process (``*_cpu_ms``, ``ratio_cpu_*``): on a shared machine a pass's wall time also counts the
time other processes held the core, its CPU time much less so (with more than one thread, the CPU
time adds up the threads, spinning ones included).
"""
import argparse
import json
import os
import statistics
import time

THREADS = 2


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
    args = parser.parse_args()
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
