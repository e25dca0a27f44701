"""Submitted by test_standalone.py with ``ember-submit --master spark://...`` to a real standalone cluster
(two workers, one core each, spark.authenticate on). Checks that the block service of each executor
uses Spark's own secret and refuses a wrong one, trains a float64 MLP once undisturbed, then again with
one executor JVM killed (SIGKILL, by its pid) in the middle of the second epoch's job and another just as the
last epoch's job has ended, and prints one JSON line: each time the run goes on from its newest checkpoint,
and it must end with the same weights."""
import hashlib
import json
import logging
import os
import signal
import sys
import threading
import time

import numpy as np

import ember
from ember import optim
from ember.layers import Dense
from ember.optim.spark.blocks import root_folders
from ember.optim.spark.context import init_nncontext

APP_KEY = "spark.plugins.internal.conf.ember.jvm.BlockServicePlugin.app"


def probe(it):
    import socket
    import struct

    from pyspark import BarrierTaskContext

    from ember.optim.spark.blocks import BlockClient, find_service

    ctx = BarrierTaskContext.get()
    service = find_service()
    client = BlockClient()
    client.put(f"probe-{ctx.partitionId()}", np.array([ctx.partitionId()]))
    other = int(np.frombuffer(client.get(f"probe-{1 - ctx.partitionId()}", timeout=60), dtype=np.int64)[0])
    ctx.barrier()
    wrong = socket.create_connection(("127.0.0.1", service.port))
    wrong.settimeout(20)
    wrong.sendall(b"A" + struct.pack(">i", 6) + b"wrong!" + b"E")
    try:
        refused = wrong.recv(8) == b""
    except ConnectionResetError:
        refused = True
    wrong.close()
    client.close()
    yield ctx.partitionId(), service.pid, hashlib.sha256(service.secret).hexdigest(), other, refused


def executor_jvms(app):
    """{pid: port file} of this application's executor JVMs on this host (from their port files)."""
    found = {}
    for root in root_folders():
        folder = os.path.join(root, app)
        if os.path.isdir(folder):
            for name in os.listdir(folder):
                if name.endswith(".port") and name[:-5].isdigit():
                    found[int(name[:-5])] = os.path.join(folder, name)
    return found


def is_executor(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"CoarseGrainedExecutorBackend" in f.read()
    except OSError:
        return False


def on_command_lines(secret):
    """The pids of processes whose command line holds ``secret`` (the daemons, executors, this driver...)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if secret in f.read():
                        found.append(int(entry))
            except OSError:
                continue
    return found


def wait_for_executors(sc, count, timeout=180):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sc._jsc.sc().getExecutorMemoryStatus().size() >= count + 1:  # (the driver is listed too)
            return True
        time.sleep(0.5)
    return False


def train(rdd, folder, victim_after=None, app=None):
    ember.set_seed(0)
    model = ember.Sequential([Dense(16, activation="tanh", input_shape=(5,)), Dense(2, activation="softmax")])
    opt = optim.Optimizer(model, rdd, "sparse_categorical_crossentropy", optim.SGD(0.05, momentum=0.9),
                          optim.MaxEpoch(3), 32)
    opt.set_checkpoint(folder, optim.EveryEpoch()).set_progress(0, quiet=True)
    epoch_seconds, killed, saved, done = [], [], [], threading.Event()  # saved: the newest checkpoint at the kill
    marks = [time.perf_counter()]

    class Timer:
        def on_epoch_end(self, loop, epoch, logs):
            epoch_seconds.append(time.perf_counter() - marks[-1])
            marks.append(time.perf_counter())

    opt.add_listener(Timer())

    def killer():
        first = os.path.join(folder, "checkpoint-125.ember")
        while not os.path.exists(first) and not done.is_set():
            time.sleep(0.01)
        if done.is_set():
            return
        time.sleep(victim_after)  # about half of an epoch's job: in the second epoch (or the third, on a slow day)
        victims = [pid for pid in sorted(executor_jvms(app)) if is_executor(pid)]
        if victims:
            saved[:] = [max(int(n.split("-")[1].split(".")[0]) for n in os.listdir(folder) if n.endswith(".ember"))]
            os.kill(victims[-1], signal.SIGKILL)
            killed.append(victims[-1])

    # after that kill, a second executor JVM killed just as the last epoch's job has ended, before the driver
    # reads its blocks for the checkpoint: the read fails within seconds ("lost block"), not after the block
    # timeout, and the run goes on from the newest checkpoint again
    segment, retry = opt.engine._segment, opt._retry

    def kill_at_job_end(loop, results, start, stop, job_seconds):
        if victim_after is not None and stop == 375 and killed and len(killed) == 1:
            victims = [pid for pid in sorted(executor_jvms(app)) if is_executor(pid) and pid not in killed]
            if victims:
                os.kill(victims[-1], signal.SIGKILL)
                killed.append(victims[-1])
                while is_executor(victims[-1]):
                    time.sleep(0.01)
                boundary.append(time.perf_counter())
        return segment(loop, results, start, stop, job_seconds)

    def timed_retry(failure, at):
        retried.append(time.perf_counter())
        return retry(failure, at)

    retried, boundary = [], []
    opt.engine._segment, opt._retry = kill_at_job_end, timed_retry
    thread = threading.Thread(target=killer, daemon=True)
    if victim_after is not None:
        thread.start()
    t = time.perf_counter()
    try:
        opt.optimize()
    finally:
        done.set()
        if victim_after is not None:
            thread.join(timeout=30)
    boundary_wait = retried[-1] - boundary[0] if boundary and retried and retried[-1] > boundary[0] else None
    return model, opt, time.perf_counter() - t, epoch_seconds, killed, saved, boundary_wait


class Recorded(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


def main(folder):
    warnings = Recorded()
    logging.getLogger("ember.optim").addHandler(warnings)
    sc = init_nncontext(app_name="ember-standalone-test")
    sc.setLogLevel("ERROR")
    ember.set_default_dtype("float64")
    out = {"master": sc.master, "executors_ready": wait_for_executors(sc, 2)}
    conf = sc.getConf()
    app = conf.get(APP_KEY)
    out["plugin_made_a_secret"] = conf.contains("spark.plugins.internal.conf.ember.jvm.BlockServicePlugin.secret")
    spark_secret = conf.get("spark.authenticate.secret", "")
    out["authenticate"] = conf.get("spark.authenticate", "false")
    probes = sorted(sc.parallelize(range(2), 2).barrier().mapPartitions(probe).collect())
    out["secret_on_command_lines"] = on_command_lines(spark_secret.encode())
    out["probe_pids"] = sorted({p[1] for p in probes})
    out["secret_is_sparks"] = [h == hashlib.sha256(spark_secret.encode()).hexdigest() for _, _, h, _, _ in probes]
    out["read_other"] = [o for *_, o, _ in probes]
    out["wrong_secret_refused"] = [r for *_, r in probes]
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4000, 5))
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
    rdd = sc.parallelize([(x[i], y[i]) for i in range(len(x))], 2)
    clean, opt, seconds, epochs, _, _, _ = train(rdd, os.path.join(folder, "clean"))
    out.update(clean_seconds=seconds, clean_epoch_seconds=epochs, clean_iteration=opt.state["iteration"])
    before = sorted(executor_jvms(app))
    model, opt, seconds, epochs, killed, saved, boundary_wait = train(rdd, os.path.join(folder, "killed"),
                                                                      max(0.2, epochs[1] / 2), app)
    out.update(killed=killed, boundary_wait_s=boundary_wait, checkpoint_at_kill=saved[0] if saved else None,
               executors_before=before,
               executors_after=sorted(executor_jvms(app)),
               failures=opt._failures, iteration=opt.state["iteration"], seconds=seconds,
               max_weight_difference=max(float(np.max(np.abs(a - b)))
                                         for a, b in zip(model.get_weights(), clean.get_weights())),
               accuracy=float((model.predict(x).argmax(1) == y).mean()), warnings=warnings.lines)
    print(json.dumps(out), flush=True)
    sc.stop()


if __name__ == "__main__":
    main(sys.argv[1])
