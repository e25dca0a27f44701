"""Synchronisation cost per iteration against parameter size and block count, with the bandwidth it implies.

    python bench/sync_cost.py [--master local[2]] [--sizes 1 5 25] [--blocks 1 4 16 64] [--iterations 10]
                              [--job-iterations N]
    python bench/sync_cost.py --owner-only [--owner-sizes 25]      (table 3 alone, without Spark)

Three tables, float32 parameters, one Spark application:

1. Training (DistriOptimizer, 2 trainers: one block per trainer). A Dense(n) + Dense(10) model with about
   the given number of parameters, batch 16 of random data; per iteration the median over the trainers'
   slowest of: synchronisation (weights in, gradient blocks out and in, the owner's update, weights out)
   and compute. The iterations run as one Spark job (as an epoch or a checkpoint interval of real training
   does; ``--job-iterations 4``: a job per 4 iterations, each starting its trainers and their mappings of
   the block files anew). Each trainer moves 8 bytes per parameter per iteration (out: half the gradient to the
   other owner and its own weight block; in: the same from the other), so bandwidth = 8 P / sync time.
   "limit" is those bytes at this machine's memcpy bandwidth (measured here, one core): what moving
   them once would cost; "x limit" how far sync is from it. The last three columns take instead each
   copy's bandwidth while every trainer copies at once (one thread per trainer): the trainers move their
   blocks at the same time and share the memory bus (on this 2-core machine each got 6.2 GB/s against
   8.7 alone).
2. The block exchange alone (no model): 2 barrier tasks each put P parameters cut into B blocks and get
   the other task's B blocks, per round; ms per round and MB/s per task (8 P bytes / round time).
   It shows the cost per block (latency) against the cost per byte.
3. The owner's reduce and update in one process (no Spark, one thread as in a Spark task): on its block of P / 2
   parameters, the passes of the generic path (sum of the two gradient parts, division by the samples, SGD with
   momentum: 10 block-sized arrays read or written) against SGD's fused ``update_mean`` (6), median ms.

Table 1 also gives the steady iteration (the slowest trainer's compute + sync, median and mean), the
synchronisation's phases (medians) and the job's one-time start (job seconds - the slowest trainer's loop).

Times are medians; the machine may be shared (say so with the numbers you report).

Measured (local[2], 2 cores shared with other work, load average 4-6; alternating runs of main before
these cuts and after; memcpy measured next to each row at 7.0-7.2 GB/s in the quieter pair):

| parameters | sync before | sync after | x limit before | x limit after |
|---|---|---|---|---|
| 1M | 50.7 ms | 16.7 ms | 45.5 | 14.6 |
| 5M | 106.4 ms | 35.3 ms | 19.1 | 6.2 |
| 25M | 503.0 ms | 139.9 ms | 18.1 | 4.9 |

"After": a put is written by the client straight from the arrays into a file that the service maps
into the BlockManager (no copy in the JVM); a get reads the block's own file in place (checked there,
copied once into the model); puts and removals are answered with the next get; files are reused.
Sync still holds the wait for the slower trainer and the owner's update.

The owner's update in one pass (SGD's ``update_mean``: the last addition of the gradient parts, the division by
the samples and the update; 6 block-sized arrays read or written instead of 10, 200 MB less memory traffic per
owner and iteration at 25M), 2026-12-05, 2 cores shared with 3 other engineers' tests (load 1.5-10):
- table 3 (25M, 12.5M-float32 block, one thread), generic / fused ms, 9 runs: 19.3/11.5, 21.0/11.6, 22.6/12.4,
  28.8/15.4, 20.5/12.0, 20.7/11.9, 46.7/28.4, 85.3/36.2, 43.8/16.5: fused 1.6-2.7x faster in every run;
- inside Spark (25M, local[2], 20 iterations, 3 alternating pairs against main + the same phase records, load
  3.5-5.5), the owner's reduce + update in thread CPU time, median per iteration: main 51.5, 46.9, 44.0 ms;
  fused 38.8, 37.0, 33.5 ms (reduce 16-21 -> 6.5-8 ms: its addition moved into the fused pass);
- wall-clock sync (``--sizes 25 --exchange-sizes``, 10 iterations), 17 alternating pairs of main (5390d32) and
  this, load 1.2-10.6: it is bimodal, compute 64-79 ms when the two trainers have the cores, 98-243 ms when
  others' work takes one. Runs with compute under 80 ms: main 89.0, 99.6, 103.7, 109.7, 136.2 ms (x limit 3.10,
  3.45, 3.62, 3.73, 4.67; median 103.7 ms, 3.62x); fused 77.1, 78.6, 79.4, 80.4, 84.9, 89.8, 92.4 ms (2.60, 2.73,
  2.70, 2.78, 2.93, 3.19, 3.23; median 80.4 ms, 2.78x). All 17 pairs: medians 204.8 (main) and 154.6 ms; the
  fused run was the faster in 11 of them.
"""
import argparse
import json
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def memcpy_gbps(nbytes=100_000_000, repeats=5, copiers=1):
    """GB/s of one copy of ``nbytes`` (best of ``repeats``) while ``copiers`` threads each copy their own
    ``nbytes`` at once (NumPy releases the GIL for the copy): with 2, what each trainer of local[2] can get
    when both move their blocks at the same time."""
    import threading

    pairs = [(np.ones(nbytes // 4, dtype=np.float32), np.empty(nbytes // 4, dtype=np.float32)) for _ in range(copiers)]
    best = float("inf")
    for _ in range(repeats):
        start = threading.Barrier(copiers + 1)
        threads = [threading.Thread(target=lambda s, d, b: (b.wait(), np.copyto(d, s)), args=(*pair, start))
                   for pair in pairs]
        for thread in threads:
            thread.start()
        t = time.perf_counter()
        start.wait()
        for thread in threads:
            thread.join()
        best = min(best, time.perf_counter() - t)
    return nbytes / best / 1e9


def dense_width(parameters):
    """n such that Dense(n) on n inputs + Dense(10) has about ``parameters`` parameters."""
    return int(round((-11 + np.sqrt(121 + 4 * parameters)) / 2))


def training_row(sc, millions, iterations, job_iterations=None):
    import ember
    from ember import optim
    from ember.layers import Dense

    n = dense_width(millions * 1e6)
    rng = np.random.default_rng(0)
    rows = 16 * (job_iterations or iterations)  # one epoch per job: its iterations' batches of 16
    x = rng.normal(size=(rows, n)).astype(np.float32)
    y = rng.integers(0, 10, rows)
    data = sc.parallelize(list(zip(x, y)), 2).cache()
    data.count()
    ember.set_seed(0)
    model = ember.Sequential([Dense(n, activation="relu", input_shape=(n,)), Dense(10, activation="softmax")])
    opt = optim.Optimizer(model, data, "sparse_categorical_crossentropy", optim.SGD(0.001, momentum=0.9),
                          optim.MaxIteration(iterations), 16)
    opt.set_progress(0, quiet=True).optimize()
    records = opt.iteration_records[2:]  # the first ones include reading the data and compiling kernels
    params = model.count_params()
    gbps = memcpy_gbps()  # measured again next to each row: on a shared machine it swings several-fold
    both = memcpy_gbps(copiers=opt.trainers)  # each trainer's share while all copy at once
    sync = float(np.median([r["sync_s"] for r in records]))
    moved = 8 * params  # bytes per trainer and iteration (2 trainers)
    limit = moved / (gbps * 1e9)
    data.unpersist()
    wall = [r["iteration_s"] * 1e3 for r in records]
    return {"table": "training", "parameters": params, "trainers": opt.trainers, "blocks": opt.trainers,
            "iterations": iterations, "job_iterations": job_iterations or iterations,
            "sync_ms": sync * 1e3, "compute_ms": float(np.median([r["compute_s"] for r in records])) * 1e3,
            "iteration_ms": opt.timings["jobs_s"] / iterations * 1e3, "bytes_moved": moved,
            "MB_per_s": moved / sync / 1e6, "memcpy_GBps": gbps, "limit_ms": limit * 1e3, "x_limit": sync / limit,
            "memcpy_GBps_all_trainers": both, "machine_limit_ms": moved / both / 1e6,
            "x_machine_limit": sync / (moved / (both * 1e9)),
            "steady_iteration_ms": float(np.median(wall)), "steady_iteration_ms_mean": float(np.mean(wall)),
            "phases_ms": {k: float(np.median([r[k + "_s"] for r in records])) * 1e3
                          for k in ("pull", "push", "reduce", "update")},
            "job_startup_s": opt.timings["jobs_s"] - opt.timings["loops_s"]}


def owner_update_row(millions, repeats=15):
    """Table 3: the owner's sum + division + SGD update (momentum 0.9) on a block of ``millions`` / 2 float32
    parameters, as the generic path runs it (three kernels) and as SGD's fused ``update_mean``, alternating,
    one thread (a Spark task's); the median ms of each and the block-sized arrays each reads or writes."""
    from ember import optim
    from ember.kernels.cpu.jit import THREADS, set_parallel_mode

    n = int(millions * 1e6) // 2
    rng = np.random.default_rng(0)
    own = rng.normal(size=n).astype(np.float32)
    received = np.frombuffer(rng.normal(size=n).astype(np.float32).tobytes(), dtype=np.float32)  # read-only
    total = np.empty(n, np.float32)
    start = rng.normal(size=n).astype(np.float32)
    params = {k: start.copy() for k in ("generic", "fused")}
    methods = {k: optim.SGD(0.001, momentum=0.9) for k in params}

    def generic():
        np.add(own, received, out=total)
        total.__itruediv__(128)
        methods["generic"].update(params["generic"], total, 0.001)

    def fused():
        methods["fused"].update_mean(params["fused"], (own, received), 128, 0.001)

    before = THREADS["mode"]
    set_parallel_mode("never")
    try:
        times = {"generic": [], "fused": []}
        for r in range(repeats + 1):
            for name, run in (("generic", generic), ("fused", fused)):
                t = time.perf_counter()
                run()
                if r:  # the first: compilation or loading from the cache
                    times[name].append(time.perf_counter() - t)
    finally:
        set_parallel_mode(before)
    assert np.array_equal(params["generic"], params["fused"])  # the same bits
    generic_ms, fused_ms = (float(np.median(times[k])) * 1e3 for k in ("generic", "fused"))
    return {"table": "owner_update", "parameters": 2 * n, "block": n, "generic_ms": generic_ms, "fused_ms": fused_ms,
            "generic_arrays": 10, "fused_arrays": 6, "block_MB": n * 4 / 1e6, "saved_MB": 4 * n * 4 / 1e6}


def exchange(parameters, blocks, rounds):
    """The function each of 2 barrier tasks runs: ``rounds`` exchanges of ``parameters`` float32 in
    ``blocks`` blocks; yields the median seconds per round."""

    def run(index, iterator):
        from pyspark import BarrierTaskContext

        from ember.optim.spark.blocks import BlockClient

        ctx = BarrierTaskContext.get()
        me = ctx.partitionId()
        client = BlockClient()
        vector = np.random.default_rng(me).normal(size=parameters).astype(np.float32)
        received = np.empty_like(vector)
        bounds = np.linspace(0, parameters, blocks + 1).astype(int)
        times = []
        ctx.barrier()
        for r in range(rounds):
            t = time.perf_counter()
            for b in range(blocks):
                client.put(f"sync-{r}-{me}-{b}", vector[bounds[b]:bounds[b + 1]])
            for b in range(blocks):  # checked, then copied once into place (as the trainers read weights)
                name = f"sync-{r}-{1 - me}-{b}"
                if hasattr(client, "get_into"):
                    client.get_into(name, received[bounds[b]:bounds[b + 1]], 120)
                else:  # ember before get_into
                    received[bounds[b]:bounds[b + 1]] = np.frombuffer(client.get(name, 120), dtype=np.float32)
            times.append(time.perf_counter() - t)
            if r >= 1:  # the other task has read round r - 1 (it is in round r): drop it
                for b in range(blocks):
                    client.remove(f"sync-{r - 1}-{me}-{b}")
        ctx.barrier()
        for b in range(blocks):
            client.remove(f"sync-{rounds - 1}-{me}-{b}")
        client.close()
        yield float(np.median(times[1:]))

    return run


def exchange_row(sc, millions, blocks, rounds):
    parameters = int(millions * 1e6)
    seconds = max(sc.parallelize(range(2), 2).barrier().mapPartitionsWithIndex(
        exchange(parameters, blocks, rounds)).collect())
    moved = 8 * parameters
    return {"table": "exchange", "parameters": parameters, "blocks": blocks, "round_ms": seconds * 1e3,
            "ms_per_block": seconds * 1e3 / (2 * blocks), "bytes_moved": moved, "MB_per_s": moved / seconds / 1e6}


def print_tables(rows, gbps):
    print(f"\nmemcpy bandwidth (one core, 100 MB): {gbps:.2f} GB/s")
    print("\n| parameters | iterations per job | sync ms/iteration | compute ms | MB/s (8 B/param) | memcpy GB/s "
          "| memcpy limit ms | x limit | memcpy GB/s each, trainers at once | that limit ms | x that limit |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        if r["table"] == "training":
            print(f"| {r['parameters'] / 1e6:.2f}M | {r['job_iterations']} | {r['sync_ms']:.1f} | "
                  f"{r['compute_ms']:.1f} | {r['MB_per_s']:.0f} | {r['memcpy_GBps']:.2f} | {r['limit_ms']:.2f} | "
                  f"{r['x_limit']:.2f} | "
                  f"{r['memcpy_GBps_all_trainers']:.2f} | {r['machine_limit_ms']:.2f} | {r['x_machine_limit']:.2f} |")
    print("\n| parameters | steady iteration ms (median / mean) | pull | push | reduce | update | job start-up s |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        if r["table"] == "training":
            ph = r["phases_ms"]
            print(f"| {r['parameters'] / 1e6:.2f}M | {r['steady_iteration_ms']:.1f} / "
                  f"{r['steady_iteration_ms_mean']:.1f} | {ph['pull']:.1f} | {ph['push']:.1f} | "
                  f"{ph['reduce']:.1f} | {ph['update']:.1f} | {r['job_startup_s']:.2f} |")
    print("\n| parameters | blocks per task | ms per round | ms per block (put or get) | MB/s per task |")
    print("|---|---|---|---|---|")
    for r in rows:
        if r["table"] == "exchange":
            print(f"| {r['parameters'] / 1e6:.2f}M | {r['blocks']} | {r['round_ms']:.1f} | "
                  f"{r['ms_per_block']:.2f} | {r['MB_per_s']:.0f} |")
    print_owner_table(rows)


def print_owner_table(rows):
    print("\n| parameters | owner's block | sum + division + SGD ms (10 arrays) | fused update_mean ms (6 arrays) |")
    print("|---|---|---|---|")
    for r in rows:
        if r["table"] == "owner_update":
            print(f"| {r['parameters'] / 1e6:.2f}M | {r['block'] / 1e6:.2f}M | {r['generic_ms']:.1f} | "
                  f"{r['fused_ms']:.1f} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--sizes", type=float, nargs="*", default=[1, 5, 25], help="millions of parameters")
    parser.add_argument("--blocks", type=int, nargs="+", default=[1, 4, 16, 64], help="blocks per task (table 2)")
    parser.add_argument("--exchange-sizes", type=float, nargs="*", default=[0.1, 1, 10])
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--job-iterations", type=int, default=None,
                        help="iterations per Spark job in table 1 (default: all of them in one job)")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--owner-sizes", type=float, nargs="*", default=[25], help="millions of parameters (table 3)")
    parser.add_argument("--owner-only", action="store_true", help="table 3 alone, without Spark")
    args = parser.parse_args()
    sys.path.insert(0, HERE)
    owner = [owner_update_row(m) for m in args.owner_sizes]
    for row in owner:
        print(json.dumps(row), flush=True)
    if args.owner_only:
        print_owner_table(owner)
        return
    from ember.optim.spark.context import init_nncontext

    sc = init_nncontext(master=args.master, conf={"spark.ui.enabled": "false", "spark.driver.memory": "4g"})
    sc.setLogLevel("ERROR")
    gbps = memcpy_gbps()
    rows = []
    for millions in args.sizes:
        rows.append(training_row(sc, millions, args.iterations, args.job_iterations))
        print(json.dumps(rows[-1]), flush=True)
    for millions in args.exchange_sizes:
        for blocks in args.blocks:
            rows.append(exchange_row(sc, millions, blocks, args.rounds))
            print(json.dumps(rows[-1]), flush=True)
    print_tables(rows + owner, gbps)
    sc.stop()


if __name__ == "__main__":
    main()
