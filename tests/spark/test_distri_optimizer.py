"""The distributed optimizer: the same weights as the local optimizer on the same global batches,
on 1, 2 and 3 partitions of a local[2] cluster; checkpoints and validation through Spark."""
import os

import numpy as np
import pytest

import ember
from ember import optim
from ember.layers import Dense, Dropout
from ember.optim.spark.plan import assign_partitions, global_batch_order

pytestmark = pytest.mark.spark


def data(n=300):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 5))
    return x, (x[:, 0] + x[:, 1] > 0).astype(np.int64)


def mlp(dropout=False):
    ember.set_seed(0)
    layers = [Dense(8, activation="tanh", input_shape=(5,))] + ([Dropout(0.0)] if dropout else [])
    return ember.Sequential(layers + [Dense(2, activation="softmax")])


def local_equivalent(rdd, x, y, trainers, batch_size, iterations, shuffle_seed=None):
    """The samples of each global batch in the order the trainers contribute them."""
    sizes = [len(p) for p in rdd.glom().collect()]
    offsets = np.cumsum([0] + sizes)
    parts = len(sizes)
    assignment = assign_partitions(parts, trainers)
    index = [offsets[p] + j for it in range(iterations)
             for p, j in global_batch_order(sizes, batch_size, assignment, it, shuffle_seed)]
    return x[index], y[index]


@pytest.mark.parametrize("dtype, tolerance", [("float64", 1e-10), ("float32", 1e-5)])
@pytest.mark.parametrize("partitions", [1, 2, 3])
@pytest.mark.parametrize("method", ["sgd", "adam"])
def test_distributed_equals_local(sc, partitions, method, dtype, tolerance):
    if dtype == "float32" and (partitions != 3 or method != "adam"):
        pytest.skip("float32: one case is enough")
    ember.set_default_dtype(dtype)
    x, y = data()
    x = x.astype(dtype)

    def make():
        return optim.SGD(0.1, momentum=0.9) if method == "sgd" else optim.Adam(0.01)

    rdd = sc.parallelize([(x[i], y[i]) for i in range(len(x))], partitions)
    model = mlp()
    opt = optim.Optimizer(model, rdd, "sparse_categorical_crossentropy", make(), optim.MaxIteration(20), 32)
    assert type(opt).__name__ == "DistriOptimizer"
    opt.set_progress(0, quiet=True).optimize()
    assert opt.state["iteration"] == 20 and opt.trainers == min(partitions, 2)
    # shuffled (the default): each pass over a partition in a new order, drawn from the run's seed
    lx, ly = local_equivalent(rdd, x, y, opt.trainers, 32, 20, opt.engine._shuffle_seed)
    reference = mlp()
    local = optim.Optimizer(reference, (lx, ly), "sparse_categorical_crossentropy", make(), optim.MaxIteration(20), 32)
    local.set_shuffle(False).set_progress(0, quiet=True).optimize()
    for a, b in zip(model.get_weights(), reference.get_weights()):
        np.testing.assert_allclose(a, b, rtol=tolerance, atol=tolerance)
    assert not np.allclose(model.get_weights()[0], mlp().get_weights()[0])  # it did train
    losses = [r["loss"] for r in opt.iteration_records]
    assert len(losses) == 20 and losses[-1] < losses[0]
    # the slowest trainer's wall time per iteration and the synchronisation's phases; the jobs' start-up apart
    for r in opt.iteration_records:
        assert max(r["compute_s"], r["sync_s"]) <= r["iteration_s"] <= r["compute_s"] + r["sync_s"] + 1e-12
        assert all(0 <= r[k] <= r["sync_s"] + 1e-12 for k in ("pull_s", "push_s", "reduce_s", "update_s"))
    assert 0 < opt.timings["loops_s"] < opt.timings["jobs_s"]


def test_epochs_validation_checkpoint_and_clipping(sc, tmp_path):
    x, y = data(400)
    rdd = sc.parallelize([(x[i], y[i]) for i in range(len(x))], 3)
    val = sc.parallelize([(x[i], y[i]) for i in range(0, 400, 2)], 2)
    model = mlp()
    opt = optim.Optimizer(model, rdd, "sparse_categorical_crossentropy", optim.SGD(0.2, momentum=0.9),
                          optim.MaxEpoch(3), 50)
    opt.set_validation(64, val, optim.EveryEpoch(), [optim.Top1Accuracy(), optim.Loss()])
    opt.set_checkpoint(str(tmp_path), optim.EveryEpoch()).set_gradclip_l2norm(1.0).set_progress(0, quiet=True)
    opt.optimize()
    assert opt.state["iteration"] == 3 * 8 and opt.state["epoch"] == 4
    assert opt.state["score"] > 0.9
    found = sorted(n for n in os.listdir(tmp_path) if n != ".ember-lock")
    assert found == ["checkpoint-16.ember", "checkpoint-24.ember", "checkpoint-8.ember"]
    loaded = optim.load_checkpoint(os.path.join(tmp_path, "checkpoint-24.ember"))
    for a, b in zip(loaded.weights, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert any(k.startswith("block1/") for k in loaded.optim_state["state"])  # every owner's momentum is saved
    predictions = model.predict(x).argmax(1)
    assert (predictions == y).mean() > 0.9


def test_keras_fit_on_a_dataframe(sc):
    from pyspark.sql import SparkSession

    from ember.zoo.keras import callbacks

    spark = SparkSession.builder.getOrCreate()
    x, y = data(256)
    df = spark.createDataFrame([(x[i].tolist(), int(y[i])) for i in range(len(x))], ["features", "label"])
    model = mlp()
    model.compile(optim.Adam(0.05), "sparse_categorical_crossentropy", ["accuracy"])
    seen = []

    class Epochs(callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append((epoch, sorted(logs)))

    history = model.fit(df, batch_size=32, nb_epoch=3, verbose=0, validation_data=df, feature_cols="features",
                        label_cols="label", callbacks=[Epochs()])
    assert history.epoch == [0, 1, 2] and seen[0] == (0, ["accuracy", "loss", "val_accuracy", "val_loss"])
    assert history.history["val_accuracy"][-1] > 0.9
    assert history.history["loss"][-1] < history.history["loss"][0]
    with pytest.raises(ValueError, match=r"columns \[.pixels.\] are not in the DataFrame"):
        model.fit(df, nb_epoch=1, verbose=0, feature_cols="pixels")


def _python_workers():
    """Pids of this machine's PySpark worker processes (children of the pyspark daemon)."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    cmd = f.read()
            except OSError:
                continue
            if b"pyspark.daemon" in cmd and int(entry) != os.getpid():
                pids.append(int(entry))
    return pids


def test_killed_python_workers_mid_training_still_end_in_a_trained_model(sc, tmp_path):
    import signal
    import threading
    import time

    x, y = data(2000)
    rdd = sc.parallelize([(x[i], y[i]) for i in range(len(x))], 2)
    model = mlp()
    opt = optim.Optimizer(model, rdd, "sparse_categorical_crossentropy", optim.SGD(0.05, momentum=0.9),
                          optim.MaxEpoch(6), 32)
    opt.set_checkpoint(str(tmp_path), optim.EveryEpoch()).set_progress(0, quiet=True)
    opt._failures = 0
    done = threading.Event()

    def killer():
        while not os.path.exists(tmp_path / "checkpoint-63.ember") and not done.is_set():
            time.sleep(0.01)
        for _ in range(40):  # kill the workers until a training job has failed (between jobs it is harmless)
            if done.is_set() or opt._failures:
                return
            time.sleep(0.05)
            for pid in _python_workers():
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass

    thread = threading.Thread(target=killer)
    thread.start()
    try:
        opt.optimize()
    finally:
        done.set()
        thread.join()
    assert opt._failures >= 1, "no training job was interrupted"
    assert opt.state["iteration"] == 6 * 63
    # the killed workers' shared-memory files were removed by the clients that came after them
    from ember.optim.spark.blocks import port_files

    # (the service creates each connection's files in the application folder and removes them when the
    # connection ends, a killed worker's included)
    folders = {os.path.dirname(path) for _, path in port_files()}

    def files_of_dead_processes():
        names = [n for folder in folders for n in os.listdir(folder) if n.startswith("shm-")]
        return [n for n in names if not os.path.exists(f"/proc/{n.split('-')[1]}")]

    deadline = time.time() + 10  # the service removes a connection's files once it sees the connection end
    while files_of_dead_processes() and time.time() < deadline:
        time.sleep(0.1)
    assert folders and files_of_dead_processes() == []
    assert (model.predict(x).argmax(1) == y).mean() > 0.95


def test_resume_continues_a_distributed_run(sc, tmp_path):
    x, y = data(256)
    rdd = sc.parallelize([(x[i], y[i]) for i in range(len(x))], 2)
    full = mlp()
    opt = optim.Optimizer(full, rdd, "sparse_categorical_crossentropy", optim.Adam(0.01), optim.MaxEpoch(2), 32)
    opt.set_progress(0, quiet=True).optimize()
    first = mlp()
    opt = optim.Optimizer(first, rdd, "sparse_categorical_crossentropy", optim.Adam(0.01), optim.MaxEpoch(1), 32)
    opt.set_checkpoint(str(tmp_path), optim.EveryEpoch()).set_progress(0, quiet=True).optimize()
    resumed = mlp()
    opt = optim.Optimizer(resumed, rdd, "sparse_categorical_crossentropy", optim.Adam(0.01), optim.MaxEpoch(2), 32)
    opt.resume(str(tmp_path)).set_progress(0, quiet=True).optimize()
    assert opt.state["iteration"] == 16
    for a, b in zip(resumed.get_weights(), full.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_bf16_compression_trains_close_to_exact(sc):
    x, y = data()
    x = x.astype(np.float32)
    rdd = sc.parallelize([(x[i], y[i]) for i in range(len(x))], 2)
    models = []
    for compress in (None, "bf16"):
        model = mlp()
        opt = optim.Optimizer(model, rdd, "sparse_categorical_crossentropy", optim.SGD(0.1, momentum=0.9),
                              optim.MaxIteration(20), 32)
        opt.set_compression(compress).set_progress(0, quiet=True).optimize()
        models.append(model)
    exact, compressed = models[0].get_weights(), models[1].get_weights()
    differences = [np.abs(a - b).max() for a, b in zip(exact, compressed)]
    assert 0 < max(differences) < 0.05  # different (it did compress), but close
    assert (models[1].predict(x).argmax(1) == y).mean() > 0.9


def test_live_progress_lines_on_the_driver(sc, caplog):
    import logging

    x, y = data(320)
    rdd = sc.parallelize([(x[i], y[i]) for i in range(len(x))], 2)
    opt = optim.Optimizer(mlp(), rdd, "sparse_categorical_crossentropy", optim.SGD(0.1), optim.MaxEpoch(1), 32)
    with caplog.at_level(logging.INFO, logger="ember"):
        opt.set_progress(log_every=4).optimize()
    lines = [r.getMessage() for r in caplog.records if r.name == "ember.optim"]
    live = [m for m in lines if "][Iteration " in m and m.startswith("[Epoch 1 ")]
    assert [m.split("[Iteration ")[1].split("]")[0] for m in live] == ["4", "8"]
    assert all("Throughput is" in m and "Loss is" in m for m in live)


def test_a_model_with_a_user_function_and_dropping_on_trains(sc):
    from ember.layers import Lambda

    def halve(t):  # defined here, so the workers can only get it from the job itself
        return t * 0.5

    x, y = data(320)
    rdd = sc.parallelize([(x[i], y[i]) for i in range(len(x))], 2)
    ember.set_seed(0)
    model = ember.Sequential([Dense(8, activation="tanh", input_shape=(5,)), Lambda(halve),
                              Dense(2, activation="softmax")])
    opt = optim.Optimizer(model, rdd, "sparse_categorical_crossentropy", optim.SGD(0.2, momentum=0.9),
                          optim.MaxEpoch(3), 32)
    opt.set_drop_module_property(0.2, 0.5, batch_size=10, warmup_iteration=5).set_progress(0, quiet=True)
    opt.optimize()
    records = opt.iteration_records
    # each of the 2 trainers finishes at least one of its 4 sub-batches of 4: at most 2 * 12 dropped
    assert len(records) == 30 and all(0 <= r["dropped"] <= 24 for r in records)
    assert not any(r["dropped"] for r in records[:5])  # nothing is dropped during the warm-up
    assert (model.predict(x).argmax(1) == y).mean() > 0.9
    with pytest.raises(ValueError, match="drop_percentage"):
        opt.set_drop_module_property(1.5, 2.0)
