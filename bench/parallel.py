"""When do ember's Numba kernels gain from threads? Each kernel is compiled twice (kernels/cpu/jit.py:
``parallel_above``); this script records the calls one training step of W1, W2, W3 and W4 makes,
then times every distinct call serially and threaded, and prints one JSON line per call: kernel,
work (the kernel's own measure), microseconds both ways, and the threshold ember uses.

    python bench/parallel.py [W1 W2 W3 W4] [--repeat 5]

The thresholds in kernels/cpu/*.py come from this table on a 2-core machine: threads pay for a
launch that costs 80-150 us with Numba's workqueue layer only when a serial pass takes longer.
"""
import argparse
import json
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def twins():
    """(module, attribute name, dispatcher) of every kernel compiled both ways."""
    import importlib
    import pkgutil

    import ember.kernels.cpu as cpu

    found = []
    for info in pkgutil.iter_modules(cpu.__path__):
        module = importlib.import_module(f"ember.kernels.cpu.{info.name}")
        for name, value in vars(module).items():
            if callable(value) and hasattr(value, "serial") and hasattr(value, "parallel"):
                found.append((module, name, value))
    return found


def record_calls(workloads):
    """Run one training step of each workload; returns {(kernel, shapes): (dispatcher, args copy)}."""
    sys.path.insert(0, HERE)
    import models

    import ember
    from ember.layers import losses
    from ember.optim import SGD
    from ember.optim.loop import compute_loss

    calls = {}

    def recorder(name, dispatch):
        def call(*args):
            key = (name, tuple(a.shape if hasattr(a, "shape") else a for a in args))
            if key not in calls:
                calls[key] = (dispatch, [a.copy() if isinstance(a, np.ndarray) else a for a in args])
            return dispatch(*args)
        return call

    originals = twins()
    for module, name, dispatch in originals:
        setattr(module, name, recorder(f"{module.__name__.rsplit('.', 1)[1]}.{name}", dispatch))
    try:
        shapes = {"W1": ((128, 28, 28, 1), models.mlp), "W2": ((128, 28, 28, 1), models.lenet5),
                  "W3": ((16, 224, 224, 3), models.resnet50), "W4": ((16, 224, 224, 3), models.googlenet)}
        for w in workloads:
            shape, build = shapes[w]
            ember.set_seed(0)
            model = build()
            x = np.random.default_rng(0).random(shape, dtype=np.float32)
            y = np.arange(shape[0]) % 10
            loss = compute_loss(losses.get("sparse_categorical_crossentropy"), y, model(x, training=True))
            loss.backward()
            SGD(0.01, momentum=0.9).update(model.parameters_flat(), model.gradients_flat(), 0.01)
    finally:
        for module, name, dispatch in originals:
            setattr(module, name, dispatch)
    return calls


def best_of(fn, args, repeat):
    fn(*[a.copy() if isinstance(a, np.ndarray) else a for a in args])  # compile / warm
    times = []
    for _ in range(repeat):
        fresh = [a.copy() if isinstance(a, np.ndarray) else a for a in args]  # kernels may accumulate in place
        t = time.perf_counter()
        fn(*fresh)
        times.append(time.perf_counter() - t)
    return min(times) * 1e6


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workloads", nargs="*", default=["W1", "W2", "W3", "W4"])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    import numba

    for (name, _), (dispatch, call_args) in sorted(record_calls(args.workloads).items(), key=lambda kv: kv[0][0]):
        work = None
        serial = best_of(dispatch.serial, call_args, args.repeat)
        threaded = best_of(dispatch.parallel, call_args, args.repeat)
        measure = getattr(dispatch, "measure", None)
        work = int(measure(*call_args)) if measure else None
        print(json.dumps({"kernel": name, "work": work, "serial_us": round(serial, 1),
                          "threaded_us": round(threaded, 1), "speedup": round(serial / threaded, 2),
                          "threshold": dispatch.min_work, "threads": numba.get_num_threads(),
                          "chosen": "threaded" if work is not None and work >= dispatch.min_work else "serial"}),
              flush=True)


if __name__ == "__main__":
    main()
