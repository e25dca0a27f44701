"""Distributed training benchmark: W1 (MLP) and W2 (LeNet-5) on real MNIST with the DistriOptimizer.

    python bench/distri.py W2 [--master local[2]] [--partitions 2] [--batch-size 128]
    python bench/distri.py SYNC25M --master "local-cluster[2,1,2048]"

SYNC25M: a 25M-parameter model (Dense 5000x5000) on random data, 12 iterations of batch 16, to
measure the synchronisation time per iteration (with and without bf16 compression).

Prints one JSON line per workload: samples/s over one epoch (60,000 images, setup included), test
accuracy, the setup time (counting and grouping the data), the time of the training jobs, and per
iteration of those jobs: the median compute (forward + backward) and synchronisation (weights in,
gradient blocks out and in, the owner's update) times of the slowest trainer, the rest (Spark
scheduling, stragglers), and the bytes the driver received (the jobs' scalar results).

What an iteration costs once training runs is ``steady_iteration_ms`` (median, and ``_mean``): the slowest
trainer's wall time per iteration inside its loop (pull + compute + push + reduce + update), against
``compute_ms`` (``steady_vs_compute``), with the phases' medians and means in ``phases_ms``. The jobs' one-time
start (Python workers, imports, caching the samples, rebuilding the model, reading the weights) and finish is
``job_startup_s`` = job seconds - the slowest trainer's summed loop, per job. ``iteration_ms`` (job seconds /
iterations) and ``scheduling_and_other_ms`` hold that start-up spread over the iterations.
"""
import argparse
import json
import os
import pickle
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workloads", nargs="+")
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--partitions", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--compress", default=None, choices=[None, "bf16"], help="wire compression of blocks")
    parser.add_argument("--drop", type=float, default=None,
                        help="straggler dropping: drop percentage (max 4x that; warm-up 50 iterations)")
    parser.add_argument("--sub-batches", type=int, default=4, help="with --drop: sub-batches per share")
    parser.add_argument("--no-shuffle", action="store_true", help="visit each partition in its stored order")
    args = parser.parse_args()
    sys.path.insert(0, HERE)
    import models
    from run import _mnist

    import ember
    from ember import optim
    from ember.optim.spark.context import init_nncontext

    sc = init_nncontext(master=args.master, conf={"spark.ui.enabled": "false"})
    sc.setLogLevel("ERROR")
    if args.workloads == ["SYNC25M"]:
        sync_25m(sc, args)
        return
    x, y, xt, yt = _mnist()
    train = sc.parallelize(list(zip(x, y)), args.partitions).cache()
    train.count()
    for workload in args.workloads:
        ember.set_seed(0)
        model = models.mlp() if workload == "W1" else models.lenet5()
        opt = optim.Optimizer(model, train, "sparse_categorical_crossentropy", optim.SGD(0.01, momentum=0.9),
                              optim.MaxEpoch(1), args.batch_size)
        opt.set_progress(0, quiet=True).set_compression(args.compress).set_shuffle(not args.no_shuffle)
        if args.drop:
            opt.set_drop_module_property(args.drop, min(1.0, 4 * args.drop), warmup_iteration=50,
                                         sub_batches=args.sub_batches)
        t = time.perf_counter()
        opt.optimize()
        seconds = time.perf_counter() - t
        model.eval()
        accuracy = float((model.predict(xt, batch_size=1000).argmax(1) == yt).mean())
        records = opt.iteration_records
        iterations = len(records)
        trained = iterations * args.batch_size - sum(r["dropped"] for r in records)
        compute = float(np.median([r["compute_s"] for r in records]))
        sync = float(np.median([r["sync_s"] for r in records]))
        per_iteration = opt.timings["jobs_s"] / iterations  # the training jobs only
        # what each trainer task returns: (iteration, loss sum, samples, compute, sync, dropped, skipped, phases)
        result_bytes = len(pickle.dumps([(r["iteration"], r["loss"], 64, r["compute_s"], r["sync_s"], 0, False,
                                          (r["compute_s"],) * 4) for r in records])) * opt.trainers / iterations
        print(json.dumps({"workload": workload, "master": args.master, "partitions": args.partitions,
                          "compress": args.compress, "drop": args.drop,
                          "sub_batches": args.sub_batches if args.drop else None,
                          "dropped_samples": int(sum(r["dropped"] for r in records)),
                          "skipped_iterations": int(sum(r["skipped"] for r in records)),
                          "trainers": opt.trainers, "samples_per_s": trained / seconds,
                          "test_accuracy": accuracy, "iterations": iterations, "epoch_s": seconds,
                          "setup_s": opt.timings["plan_s"], "training_jobs_s": opt.timings["jobs_s"],
                          "iteration_ms": per_iteration * 1000, "compute_ms": compute * 1000, "sync_ms": sync * 1000,
                          "scheduling_and_other_ms": (per_iteration - compute - sync) * 1000,
                          "driver_bytes_per_iteration": result_bytes, **steady(opt)}), flush=True)
    sc.stop()


def steady(opt, skip=0):
    """The steady iteration against compute, and the jobs' one-time start-up (see the module docstring);
    ``skip``: leading iterations left out (kernel compilation)."""
    records = opt.iteration_records[skip:]
    wall = np.array([r["iteration_s"] for r in records]) * 1000
    compute = np.array([r["compute_s"] for r in records]) * 1000
    jobs = opt.timings["jobs"]
    startup = opt.timings["jobs_s"] - opt.timings["loops_s"]
    return {"steady_iteration_ms": float(np.median(wall)), "steady_iteration_ms_mean": float(wall.mean()),
            "compute_ms_mean": float(compute.mean()), "steady_vs_compute": float(np.median(wall) / np.median(compute)),
            "phases_ms": {k: [round(float(np.median([r[k + "_s"] for r in records])) * 1000, 3),
                              round(float(np.mean([r[k + "_s"] for r in records])) * 1000, 3)]
                          for k in ("pull", "push", "reduce", "update")},
            "jobs": jobs, "job_startup_s": startup / jobs, "loops_s": opt.timings["loops_s"]}


def sync_25m(sc, args):
    import ember
    from ember import optim
    from ember.layers import Dense

    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 5000)).astype(np.float32)
    y = rng.integers(0, 10, 256)
    data = sc.parallelize(list(zip(x, y)), args.partitions).cache()
    data.count()
    for compress in (None, "bf16"):
        ember.set_seed(0)
        model = ember.Sequential([Dense(5000, activation="relu", input_shape=(5000,)), Dense(10, activation="softmax")])
        opt = optim.Optimizer(model, data, "sparse_categorical_crossentropy", optim.SGD(0.001, momentum=0.9),
                              optim.MaxIteration(12), 16)
        opt.set_compression(compress).set_progress(0, quiet=True).optimize()
        records = opt.iteration_records[2:]  # the first iterations include loading the data and JIT
        print(json.dumps({"workload": "SYNC25M", "master": args.master, "parameters": model.count_params(),
                          "compress": compress, "trainers": opt.trainers,
                          "sync_ms": float(np.median([r["sync_s"] for r in records])) * 1000,
                          "compute_ms": float(np.median([r["compute_s"] for r in records])) * 1000,
                          "iteration_ms": opt.timings["jobs_s"] / 12 * 1000, **steady(opt, 2)}), flush=True)
    sc.stop()


if __name__ == "__main__":
    main()
