"""Run by test_local_cluster.py in its own process (one SparkContext per process): distributed
training on local-cluster[2,1,1024] (two executor JVMs); one executor's Python workers are killed
mid-training. Prints one JSON line."""
import json
import os
import signal
import sys
import threading
import time

import numpy as np

import ember
from ember import optim
from ember.layers import Dense
from ember.optim.spark.blocks import _parent_pid, port_files, read_port_file
from ember.optim.spark.context import init_nncontext


def probe(it):
    from pyspark import BarrierTaskContext

    from ember.optim.spark.blocks import BlockClient

    ctx = BarrierTaskContext.get()
    p = ctx.partitionId()
    client = BlockClient()
    client.put(f"probe-{p}", np.array([p], dtype=np.int64))
    other = int(np.frombuffer(client.get(f"probe-{1 - p}", timeout=60), dtype=np.int64)[0])
    ctx.barrier()
    yield p, client.port, other


def jvm_with_port(port):
    for pid, path in port_files():
        if read_port_file(path)[0] == port:
            return pid
    return None


def python_workers_of(jvm_pid):
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                if b"pyspark" not in f.read():
                    continue
        except OSError:
            continue
        pid = int(entry)
        ancestor = pid
        for _ in range(4):
            ancestor = _parent_pid(ancestor)
            if ancestor == jvm_pid:
                found.append(pid)
                break
    return found


def main(folder):
    sc = init_nncontext(master="local-cluster[2,1,1024]", conf={"spark.ui.enabled": "false"})
    sc.setLogLevel("ERROR")
    probes = sorted(sc.parallelize(range(2), 2).barrier().mapPartitions(probe).collect())
    ports = sorted({port for _, port, _ in probes})
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2000, 5))
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
    rdd = sc.parallelize([(x[i], y[i]) for i in range(len(x))], 2)
    ember.set_seed(0)
    model = ember.Sequential([Dense(16, activation="tanh", input_shape=(5,)), Dense(2, activation="softmax")])
    opt = optim.Optimizer(model, rdd, "sparse_categorical_crossentropy", optim.SGD(0.05, momentum=0.9),
                          optim.MaxEpoch(8), 32)
    opt.set_checkpoint(folder, optim.EveryEpoch()).set_progress(0, quiet=True)
    opt._failures = 0
    victim = jvm_with_port(ports[0])
    killed = []
    done = threading.Event()

    def killer():
        while not os.path.exists(os.path.join(folder, "checkpoint-63.ember")) and not done.is_set():
            time.sleep(0.01)
        for _ in range(60):
            if done.is_set() or opt._failures:
                return
            time.sleep(0.05)
            for pid in python_workers_of(victim):
                try:
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                except OSError:
                    pass

    thread = threading.Thread(target=killer)
    thread.start()
    t = time.perf_counter()
    try:
        opt.optimize()
    finally:
        done.set()
        thread.join()
    seconds = time.perf_counter() - t
    accuracy = float((model.predict(x).argmax(1) == y).mean())
    print(json.dumps({"probes": probes, "ports": ports, "victim_jvm": victim, "killed": len(killed),
                      "failures": opt._failures, "iteration": opt.state["iteration"], "accuracy": accuracy,
                      "seconds": seconds}), flush=True)
    sc.stop()


if __name__ == "__main__":
    main(sys.argv[1])
