"""When do ember's Numba kernels gain from threads? Each kernel is compiled twice (kernels/cpu/jit.py:
``parallel_above``); this script records the calls one training step of W1, W2, W3 and W4 makes,
then times every distinct call serially and threaded, and prints a table, one row per call: kernel,
work (the kernel's own measure), microseconds both ways, the speed-up, the threshold ember uses,
which way ember chooses and which way was faster (``--json``: one JSON object per line instead).

    python bench/parallel.py [W1 W2 W3 W4] [--repeat 5] [--json]

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


# (title, key, width, format): the table's columns, rows printed as they are measured
COLUMNS = (("kernel", "kernel", None, "{}"), ("work", "work", 11, "{:,}"), ("serial us", "serial_us", 10, "{:.1f}"),
           ("threaded us", "threaded_us", 11, "{:.1f}"), ("speed-up", "speedup", 8, "{:.2f}"),
           ("threshold", "threshold", 11, "{:,}"), ("chosen", "chosen", 8, "{}"), ("faster", "faster", 8, "{}"))


def table_header(kernel_width):
    """The header and rule lines of the table, the kernel column ``kernel_width`` wide."""
    cells = [title.ljust(kernel_width) if width is None else title.rjust(width) for title, _, width, _ in COLUMNS]
    line = "  ".join(cells)
    return f"{line}\n{'-' * len(line)}"


def table_row(row, kernel_width):
    """One measured call (a dict with the COLUMNS' keys) as a line of the table."""
    cells = []
    for _, key, width, fmt in COLUMNS:
        text = "-" if row[key] is None else fmt.format(row[key])
        cells.append(text.ljust(kernel_width) if width is None else text.rjust(width))
    return "  ".join(cells)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workloads", nargs="*", default=["W1", "W2", "W3", "W4"])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="one JSON object per line instead of the table")
    args = parser.parse_args()
    import numba

    calls = sorted(record_calls(args.workloads).items(), key=lambda kv: kv[0][0])
    width = max([len("kernel")] + [len(name) for (name, _), _ in calls])
    if not args.json:
        print(f"{len(calls)} distinct kernel calls of {' '.join(args.workloads)}; {numba.get_num_threads()} threads, "
              f"best of {args.repeat}")
        print(table_header(width))
    for (name, _), (dispatch, call_args) in calls:
        serial = best_of(dispatch.serial, call_args, args.repeat)
        threaded = best_of(dispatch.parallel, call_args, args.repeat)
        measure = getattr(dispatch, "measure", None)
        work = int(measure(*call_args)) if measure else None
        row = {"kernel": name, "work": work, "serial_us": round(serial, 1), "threaded_us": round(threaded, 1),
               "speedup": round(serial / threaded, 2), "threshold": dispatch.min_work,
               "threads": numba.get_num_threads(),
               "chosen": "threaded" if work is not None and work >= dispatch.min_work else "serial",
               "faster": "threaded" if threaded < serial else "serial"}
        print(json.dumps(row) if args.json else table_row(row, width), flush=True)


if __name__ == "__main__":
    main()
