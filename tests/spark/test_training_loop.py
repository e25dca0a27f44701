"""One training loop, two engines: the same script on NumPy arrays and on Spark gives the same History,
TensorBoard tags, checkpoints and log lines; failures in user code reach the user; any batch size works."""
import logging
import os
import time

import numpy as np
import pytest

import ember
from ember import optim
from ember.layers import Dense, Lambda

pytestmark = pytest.mark.spark


def data(n=240, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 5))
    return x, (x[:, 0] + x[:, 1] > 0).astype(np.int64)


def mlp():
    ember.set_seed(0)
    return ember.Sequential([Dense(8, activation="tanh", input_shape=(5,)), Dense(2, activation="softmax")])


def rdd_of(sc, x, y, partitions):
    return sc.parallelize([(x[i], y[i]) for i in range(len(x))], partitions)


def test_keras_fit_gives_the_same_history_locally_and_on_spark(sc, tmp_path):
    """float64, one partition, no shuffling: the two engines see the same batches, so every History
    value (loss, compiled metrics, validation on NumPy data) agrees to 1e-10. (256 samples: a multiple of
    the batch, since on Spark an epoch's last batch is filled from the next pass, as in BigDL.)"""
    ember.set_default_dtype("float64")
    x, y = data(256)
    xv, yv = data(64, seed=1)
    histories, tags, checkpoints = [], [], []
    for run, train in (("local", (x, y)), ("spark", rdd_of(sc, x, y, 1))):
        model = mlp()
        model.compile(optim.SGD(0.1, momentum=0.9), "sparse_categorical_crossentropy", ["accuracy"])
        model.set_tensorboard(str(tmp_path / "logs"), run)
        model.set_checkpoint(str(tmp_path / run), over_write=False)
        if run == "local":
            h = model.fit(*train, batch_size=32, epochs=3, verbose=0, shuffle=False, validation_data=(xv, yv))
        else:
            h = model.fit(train, batch_size=32, epochs=3, verbose=0, shuffle=False, validation_data=(xv, yv))
        histories.append(h.history)
        tags.append(sorted(t for t in ("Loss", "Throughput", "LearningRate") if model.get_train_summary(t)))
        checkpoints.append(sorted(os.listdir(tmp_path / run)))
    local, spark = histories
    assert sorted(local) == sorted(spark) == ["accuracy", "loss", "val_accuracy", "val_loss"]
    for key in local:
        np.testing.assert_allclose(spark[key], local[key], rtol=1e-10, atol=1e-12, err_msg=key)
    assert tags[0] == tags[1] == ["LearningRate", "Loss", "Throughput"]
    assert checkpoints[0] == checkpoints[1] == [".ember-lock", "checkpoint-16.ember", "checkpoint-24.ember",
                                                "checkpoint-8.ember"]
    a = optim.load_checkpoint(tmp_path / "local" / "checkpoint-24.ember")
    b = optim.load_checkpoint(tmp_path / "spark" / "checkpoint-24.ember")
    for wa, wb in zip(a.weights, b.weights):
        np.testing.assert_allclose(wb, wa, rtol=1e-10, atol=1e-12)
    assert {k: a.train_state[k] for k in ("epoch", "iteration", "position")} == \
        {k: b.train_state[k] for k in ("epoch", "iteration", "position")}


def test_bigdl_optimizer_summaries_and_progress_lines_match(sc, tmp_path, caplog):
    event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    x, y = data(160)
    runs = {}
    for run, train in (("local", (x, y)), ("spark", rdd_of(sc, x, y, 2))):
        summary = optim.TrainSummary(str(tmp_path), run)
        summary.set_summary_trigger("Parameters", optim.SeveralIteration(5))
        val_summary = optim.ValidationSummary(str(tmp_path), run)
        opt = optim.Optimizer(mlp(), train, "sparse_categorical_crossentropy", optim.SGD(0.1), optim.MaxEpoch(2), 16)
        opt.set_learning_rate_schedule(optim.Step(4, 0.5)).set_train_summary(summary).set_val_summary(val_summary)
        opt.set_validation(40, (x, y), optim.SeveralIteration(10), ["accuracy", "loss"]).set_progress(5)
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="ember"):
            opt.optimize()
        lines = [r.getMessage() for r in caplog.records if r.name == "ember.optim"]
        progress = [m.split("][Wall")[0] for m in lines if "Throughput is" in m]
        validations = [m.split(" validation:")[0] for m in lines if "validation:" in m]
        summary.flush()
        runs[run] = (progress, validations, [s for s, _, _ in summary.read_scalar("LearningRate")],
                     [round(v, 9) for _, v, _ in summary.read_scalar("LearningRate")],
                     [s for s, _, _ in val_summary.read_scalar("Top1Accuracy")])
        summary.close()
        val_summary.close()
        events = event_accumulator.EventAccumulator(str(tmp_path / run / "train"), size_guidance={"histograms": 0})
        events.Reload()
        # one histogram per weight (their names differ by model)
        runs[run] += (sorted(events.Tags()["scalars"]), len(events.Tags()["histograms"]),
                      [e.step for e in events.Histograms(events.Tags()["histograms"][0])])
    assert runs["local"] == runs["spark"]
    assert runs["spark"][5] == ["LearningRate", "Loss", "Throughput"]
    assert runs["spark"][6] == 4 and runs["spark"][7] == [5, 10, 15, 20]
    progress = runs["spark"][0]
    assert progress[:2] == ["[Epoch 1 80/160][Iteration 5", "[Epoch 1 160/160][Iteration 10"]
    assert runs["spark"][4] == [10, 20]


def test_numpy_validation_data_on_the_spark_path(sc):
    x, y = data(200)
    opt = optim.Optimizer(mlp(), rdd_of(sc, x, y, 2), "sparse_categorical_crossentropy", optim.SGD(0.2),
                          optim.MaxEpoch(2), 20)
    opt.set_validation(50, (x, y), optim.EveryEpoch(), [optim.Top1Accuracy()]).set_progress(0, quiet=True)
    opt.optimize()
    assert opt.state["score"] > 0.8


def test_a_user_error_in_a_task_is_raised_as_itself_after_one_attempt(sc, tmp_path):
    marks = tmp_path / "calls"

    def check_labels(t):  # a user function that fails on the training batches, deterministically
        if t.shape[0] > 2:
            with open(marks, "a") as f:
                f.write("x\n")
            raise ValueError("bad label 11")
        return t

    x, y = data(64)
    model = ember.Sequential([Dense(4, input_shape=(5,)), Lambda(check_labels), Dense(2, activation="softmax")])
    opt = optim.Optimizer(model, rdd_of(sc, x, y, 2), "sparse_categorical_crossentropy", optim.SGD(0.1),
                          optim.MaxEpoch(1), 16)
    opt.set_progress(0, quiet=True)
    t0 = time.perf_counter()
    with pytest.raises(ValueError, match="bad label 11") as info:
        opt.optimize()
    elapsed = time.perf_counter() - t0
    assert type(info.value) is ValueError
    assert "check_labels" in str(info.value.__cause__) and "Spark task" in str(info.value.__cause__)
    assert len(marks.read_text().split()) <= 2  # each of the two trainers at most once: no retry
    assert elapsed < 30, elapsed


def test_five_partitions_and_a_global_batch_of_three(sc):
    ember.set_default_dtype("float64")
    x, y = data(100)
    rdd = rdd_of(sc, x, y, 5)
    model = mlp()
    opt = optim.Optimizer(model, rdd, "sparse_categorical_crossentropy", optim.SGD(0.05), optim.MaxIteration(12), 3)
    opt.set_shuffle(False).set_progress(0, quiet=True).optimize()
    from ember.optim.spark.plan import global_batch_order

    sizes = [len(p) for p in rdd.glom().collect()]
    offsets = np.cumsum([0] + sizes)
    index = [offsets[p] + j for it in range(12) for p, j in global_batch_order(sizes, 3, opt.engine.assignment, it)]
    assert len(index) == 36 and len({offsets.searchsorted(i, "right") - 1 for i in index}) == 5  # all partitions
    reference = mlp()
    optim.Optimizer(reference, (x[index], y[index]), "sparse_categorical_crossentropy", optim.SGD(0.05),
                    optim.MaxIteration(12), 3).set_shuffle(False).set_progress(0, quiet=True).optimize()
    for a, b in zip(model.get_weights(), reference.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_an_rdd_whose_lineage_barrier_mode_refuses_trains(sc, caplog):
    x, y = data(200)
    rdd = sc.parallelize([(x[i], y[i]) for i in range(len(x))], 16).coalesce(2).cache()
    model = mlp()
    opt = optim.Optimizer(model, rdd, "sparse_categorical_crossentropy", optim.SGD(0.2, momentum=0.9),
                          optim.MaxEpoch(3), 20)
    with caplog.at_level(logging.INFO, logger="ember"):
        opt.set_progress(0).optimize()
    assert any("regrouped once" in r.getMessage() for r in caplog.records)
    assert opt._failures == 0 and (model.predict(x).argmax(1) == y).mean() > 0.9


def test_arrays_reach_spark_through_broadcasts_not_task_closures(sc):
    from pyspark import cloudpickle

    from ember.optim.spark.data import rdd_from_arrays

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(20000, 50)), rng.integers(0, 10, size=20000)  # 8 MB of features
    rdd = rdd_from_arrays(sc, x, y, 4)
    assert rdd.getNumPartitions() == 4
    got = rdd.collect()
    np.testing.assert_array_equal(np.array([s[0] for s in got]), x)
    np.testing.assert_array_equal(np.array([s[1] for s in got]), y)
    assert len(cloudpickle.dumps(rdd.func)) < 50_000  # what each task carries: no arrays
    with pytest.raises(ValueError, match="different numbers of samples"):
        rdd_from_arrays(sc, x, y[:10])


PLAIN_CONTEXT = """
import numpy as np
from pyspark import SparkContext
import ember
from ember import optim
from ember.layers import Dense
from ember.optim.spark.blocks import SparkSetupError

sc = SparkContext("local[1]", "plain")
sc.setLogLevel("ERROR")
rdd = sc.parallelize([(np.zeros(3), 0), (np.ones(3), 1)], 1)
model = ember.Sequential([Dense(2, activation="softmax", input_shape=(3,))])
for attempt in (lambda: optim.Optimizer(model, rdd, "sparse_categorical_crossentropy").optimize(),
                lambda: ember.init_nncontext()):
    try:
        attempt()
    except SparkSetupError as e:
        print("REFUSED:", e)
sc.stop()
"""


def test_a_plain_spark_context_gets_a_message_saying_how_to_enable_the_block_service(tmp_path):
    import subprocess
    import sys

    script = tmp_path / "plain.py"
    script.write_text(PLAIN_CONTEXT)
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    refusals = [line for line in out.stdout.splitlines() if line.startswith("REFUSED:")]
    assert len(refusals) == 2, out.stdout + out.stderr[-3000:]
    assert all("spark.plugins=ember.jvm.BlockServicePlugin" in r and "spark.jars=" in r for r in refusals)
    assert "JavaPackage" not in out.stdout + out.stderr


def test_local_workers_run_the_drivers_interpreter(sc):
    import sys

    if os.environ.get("PYSPARK_PYTHON") not in (None, sys.executable):
        pytest.skip("PYSPARK_PYTHON was set by the user")
    assert sc.parallelize([0], 1).map(lambda _: __import__("sys").executable).collect() == [sys.executable]
