"""Where the synchronisation of a small model's iteration goes: 2 barrier tasks on ``local[2]`` run the
trainer's block exchange (pull the other's weight block, push a gradient block, reduce the other's
gradient block, put the new weight block, remove the blocks of 2 iterations before) with a NumPy stand-in
for compute, through the real ``BlockClient`` and block service, and time every request.

    python bench/sync_profile.py [--parameters 540000] [--iterations 400] [--compute-ms 2.6]

Prints one JSON line per trainer: per phase, the median wall ms and its parts (ms per iteration, means):
waiting on the service's answers (``wait``: the JVM's work, its wake-up, and the other trainer),
checksums (XXH3), checksums taken while copying (``xxh3+copy``: into a kept mapping of the put file, or a
block into the model), writes into the put file, opening files and mappings, the rest of the client's Python;
and for the whole run the CPU seconds per iteration of this task's Python process and of the JVM's block
service threads (``ember-block-connection``), read from /proc, and how many gets the service copied into the
client's get file instead of naming the block's own file.

Where the service's CPU goes: run with ``--iterations 3000 --java-options "-XX:+UnlockDiagnosticVMOptions
-XX:+DumpPerfMapAtExit"`` and ``perf record -a -g -- sleep 6`` while it trains; ``perf script`` then names the
Java methods of the ``ember-block-con`` threads (JFR's sampler sees only the time they spend in Java code).
"""
import argparse
import json
import os
import sys
import time

import numpy as np


def _thread_cpu(pid, prefix):
    """CPU seconds (user + system) of the threads of ``pid`` whose name starts with ``prefix``."""
    total, tick = 0, os.sysconf("SC_CLK_TCK")
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                text = f.read()
        except OSError:
            continue
        name = text[text.index("(") + 1:text.rindex(")")]
        if name.startswith(prefix):
            fields = text[text.rindex(")") + 2:].split()
            total += int(fields[11]) + int(fields[12])
    return total / tick


def task(settings):
    def run(index, _):
        from pyspark import BarrierTaskContext

        from ember.optim.spark import blocks

        ctx = BarrierTaskContext.get()
        worker = ctx.partitionId()
        n, iterations, compute_s = settings["parameters"], settings["iterations"], settings["compute_ms"] / 1000
        half = n // 2
        client = blocks.BlockClient()
        import inspect

        # as the trainer sends them: with deferred requests where this ember has them
        defer = {"defer": True} if "defer" in inspect.signature(client.put_parts).parameters else {}
        lazy = {"defer_unlock": True} if defer else {}
        parts = {"wait": 0.0, "xxh3": 0.0, "xxh3+copy": 0.0, "write": 0.0, "open": 0.0, "getfile": 0.0}

        def timed(key, fn):
            def wrapper(*a, **k):
                t = time.perf_counter()
                try:
                    return fn(*a, **k)
                finally:
                    parts[key] += time.perf_counter() - t
            return wrapper

        client._read = timed("wait", client._read)
        if hasattr(blocks, "_copy_hashing"):  # checksum and copy in one pass (puts into a mapping, get_into)
            blocks._copy_hashing = timed("xxh3+copy", blocks._copy_hashing)
        if hasattr(blocks, "_copy_into"):
            blocks._copy_into = timed("write", blocks._copy_into)
        else:
            blocks._write_all = timed("write", blocks._write_all)
        client._mapped_block_file = timed("open", client._mapped_block_file)
        client._put_fd = timed("open", client._put_fd)
        if hasattr(client, "_put_target"):
            client._put_target = timed("open", client._put_target)
        copied = [0]  # gets the service copied into the get file (not read in place)
        through_file = client._mapped_get_file

        def counted(size):
            copied[0] += 1
            return through_file(size)

        client._mapped_get_file = timed("getfile", counted)

        class Hash:  # the checksums, timed
            xxh3_64_intdigest = staticmethod(timed("xxh3", blocks.xxhash.xxh3_64_intdigest))
            xxh3_64 = blocks.xxhash.xxh3_64

        blocks.xxhash = Hash
        run_id = settings["run"]
        name = lambda *p: "-".join(["ember", run_id] + [str(x) for x in p])  # noqa: E731
        param = np.zeros(n, dtype=np.float32)
        grad = np.ones(n, dtype=np.float32)
        own = slice(worker * half, (worker + 1) * half)
        other = 1 - worker
        rest = slice(other * half, (other + 1) * half)
        momentum = np.zeros(half, dtype=np.float32)
        head = np.array([64.0, 0.001])
        rng = np.random.default_rng(worker)
        a = rng.normal(size=(256, 256)).astype(np.float32)
        client.put_parts(name("w", 0, worker), param[own])
        ctx.barrier()
        phases = {k: [] for k in ("pull", "compute", "push", "reduce", "update")}
        split = {k: {p: 0.0 for p in parts} for k in phases}
        cpu0 = time.process_time()
        jvm0 = _thread_cpu(client.service.pid, "ember-block-con")
        start = time.perf_counter()
        for i in range(iterations):
            marks = [time.perf_counter()]
            before = dict(parts)
            if i:
                client.get_into(name("w", i, other), param[rest], 600, **lazy)
            marks.append(time.perf_counter())
            snap = [dict(parts)]
            t = time.perf_counter()
            while time.perf_counter() - t < compute_s:  # stand-in for forward and backward
                a = np.tanh(a @ a * 0.01)
            marks.append(time.perf_counter())
            snap.append(dict(parts))
            client.put_parts(name("g", i, worker, other), (head, grad[rest]), wait=False, **defer)
            marks.append(time.perf_counter())
            snap.append(dict(parts))
            data = client.get_view(name("g", i, other, worker), 600)
            got = np.frombuffer(data[16:], dtype=np.float32)
            marks.append(time.perf_counter())
            snap.append(dict(parts))
            momentum *= 0.9
            momentum += got
            momentum += grad[own]
            param[own] -= 0.01 * momentum
            client.put_parts(name("w", i + 1, worker), param[own], wait=False, **defer)
            if i >= 2:
                client.remove_many([name("g", i - 2, worker, other), name("w", i - 2, worker)], wait=False, **defer)
            marks.append(time.perf_counter())
            snap.append(dict(parts))
            for k, key in enumerate(phases):
                phases[key].append(marks[k + 1] - marks[k])
                low = before if k == 0 else snap[k - 1]
                for p in parts:
                    split[key][p] += snap[k][p] - low[p]
        if defer:
            client.flush()
        wall = time.perf_counter() - start
        cpu = time.process_time() - cpu0
        jvm = _thread_cpu(client.service.pid, "ember-block-con") - jvm0
        ctx.barrier()
        for i in range(max(0, iterations - 2), iterations + 1):
            client.remove_many([name("g", i, worker, other), name("w", i, worker)])
        client.close()
        ms = 1000 / iterations
        out = {"worker": worker, "iteration_ms": wall * ms, "python_cpu_ms": cpu * ms,
               "jvm_service_cpu_ms_both_trainers": jvm * ms, "gets_copied_by_service": copied[0]}
        for key, values in phases.items():
            out[key] = {"median": round(float(np.median(values)) * 1000, 3),
                        "mean": round(float(np.mean(values)) * 1000, 3),
                        **{p: round(v * ms, 3) for p, v in split[key].items()}}
        yield json.dumps(out)
    return run


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parameters", type=int, default=540_000)
    parser.add_argument("--iterations", type=int, default=400)
    parser.add_argument("--compute-ms", type=float, default=2.6)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--java-options", default="", help="more JVM options, e.g. -XX:+UnlockDiagnosticVMOptions "
                        "-XX:+DumpPerfMapAtExit (Linux perf then names the JIT-compiled Java methods)")
    parser.add_argument("--jfr", default=None, help="record the JVM with Java Flight Recorder into this file")
    parser.add_argument("--jfr-settings", default="profile", help="a .jfc file or the JDK's default/profile")
    args = parser.parse_args()
    from ember.optim.spark.context import init_nncontext

    conf = {"spark.ui.enabled": "false"}
    options = args.java_options.split()
    if args.jfr:
        options.append(f"-XX:StartFlightRecording=filename={args.jfr},settings={args.jfr_settings},dumponexit=true")
    if options:
        conf["spark.driver.extraJavaOptions"] = " ".join(options)
    sc = init_nncontext(master="local[2]", conf=conf)
    sc.setLogLevel("ERROR")
    rdd = sc.parallelize(range(2), 2)
    for r in range(args.repeat):
        settings = {"parameters": args.parameters, "iterations": args.iterations, "compute_ms": args.compute_ms,
                    "run": f"prof{os.getpid()}x{r}"}
        for line in rdd.barrier().mapPartitionsWithIndex(task(settings)).collect():
            print(line, flush=True)
    sc.stop()


if __name__ == "__main__":
    sys.exit(main())
