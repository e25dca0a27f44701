"""One training step of an LSTM / GRU layer (forward, loss, backward, SGD update) in ember and in
torch.nn.LSTM / torch.nn.GRU on the same CPU, float32, the issue's shape by default: batch 32, 100 steps,
128 units, 128 input features, the last output through a Dense(10) and sparse categorical cross-entropy.

    python bench/recurrent.py [--repeat 7] [--batch 32] [--steps 100] [--units 128] [--threads 2]

The two frameworks take turns (ember step, torch step, ...) so that load on a shared machine hits both;
prints the median milliseconds per step of each, the ratio torch/ember (1.0: as fast as PyTorch, above:
faster) and records per second, one JSON line per cell type.
"""
import argparse
import json
import statistics
import time

import numpy as np


def ember_step(cell, batch, steps, units, features):
    import ember
    from ember import layers, optim

    ember.set_seed(0)
    model = ember.Sequential([layers.Input(shape=(steps, features)), getattr(layers, cell)(units),
                              layers.Dense(10)])
    x = np.random.default_rng(0).normal(size=(batch, steps, features)).astype(np.float32)
    y = np.random.default_rng(1).integers(0, 10, batch)
    loss = ember.losses.SparseCategoricalCrossentropy(from_logits=True)
    sgd = optim.SGD(0.01)
    model(x[:1])
    param, grad = model.parameters_flat(), model.gradients_flat()

    def step():
        grad[...] = 0
        value = loss(y, model(x, training=True))
        value.backward()
        sgd.update(param, grad, 0.01)
        return float(value.item())

    return step


def torch_step(cell, batch, steps, units, features):
    import torch

    torch.manual_seed(0)
    rnn = getattr(torch.nn, cell)(features, units, batch_first=True)
    head = torch.nn.Linear(units, 10)
    params = list(rnn.parameters()) + list(head.parameters())
    opt = torch.optim.SGD(params, lr=0.01)
    x = torch.tensor(np.random.default_rng(0).normal(size=(batch, steps, features)).astype(np.float32))
    y = torch.tensor(np.random.default_rng(1).integers(0, 10, batch))

    def step():
        opt.zero_grad()
        out, _ = rnn(x)
        value = torch.nn.functional.cross_entropy(head(out[:, -1]), y)
        value.backward()
        opt.step()
        return float(value.item())

    return step


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--units", type=int, default=128)
    parser.add_argument("--features", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cells", nargs="*", default=["LSTM", "GRU"], choices=["LSTM", "GRU"])
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    shape = (args.batch, args.steps, args.units, args.features)
    for cell in args.cells:
        runs = {"ember": ember_step(cell, *shape), "torch": torch_step(cell, *shape)}
        for step in runs.values():  # warm-up: kernels compiled, caches filled
            step()
            step()
        times = {name: [] for name in runs}
        for _ in range(args.repeat):
            for name, step in runs.items():
                t0 = time.perf_counter()
                step()
                times[name].append(time.perf_counter() - t0)
        ms = {name: 1000 * statistics.median(t) for name, t in times.items()}
        print(json.dumps({"cell": cell, "batch": args.batch, "steps": args.steps, "units": args.units,
                          "ember_ms": round(ms["ember"], 2), "torch_ms": round(ms["torch"], 2),
                          "ratio_torch_over_ember": round(ms["torch"] / ms["ember"], 3),
                          "ember_records_per_s": round(1000 * args.batch / ms["ember"], 1),
                          "torch_records_per_s": round(1000 * args.batch / ms["torch"], 1),
                          "ember_runs_ms": [round(1000 * t, 1) for t in times["ember"]],
                          "torch_runs_ms": [round(1000 * t, 1) for t in times["torch"]]}), flush=True)


if __name__ == "__main__":
    main()
