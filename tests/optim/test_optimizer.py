"""The local training loop: equivalence with a hand-written loop, triggers, validation, checkpoints
(atomic, resumable after a kill), divergence, TensorBoard summaries and progress."""
import logging
import os
import signal
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest

import ember
from ember import optim
from ember.engine import Tensor
from ember.layers import Dense, losses

HERE = os.path.dirname(__file__)


def mlp(seed=0):
    ember.set_seed(seed)
    return ember.Sequential([Dense(8, activation="tanh", input_shape=(4,)), Dense(3, activation="softmax")])


@pytest.fixture
def data(rng):
    x = rng.normal(size=(100, 4))
    y = (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0.5)
    return x, y


def test_local_optimizer_equals_a_hand_written_loop(float64, data):
    x, y = data
    model, reference = mlp(), mlp()
    opt = optim.Optimizer(model, (x, y), "sparse_categorical_crossentropy",
                          optim.SGD(0.1, momentum=0.9, nesterov=True), optim.MaxIteration(12), 16)
    opt.set_shuffle(False).set_learning_rate_schedule(optim.Step(5, 0.5)).set_gradclip_l2norm(0.5)
    opt.set_progress(0, quiet=True).optimize()
    assert opt.state["iteration"] == 12 and opt.state["epoch"] == 2

    loss_fn, state = losses.get("sparse_categorical_crossentropy"), {}
    param, grad = reference.parameters_flat(), reference.gradients_flat()
    batches = [np.arange(i, min(i + 16, 100)) for i in range(0, 100, 16)]
    for it in range(12):
        idx = batches[it % len(batches)]
        reference.zero_grad()
        loss_fn(y[idx], reference(Tensor(x[idx]), training=True)).backward()
        optim.clip_by_global_norm(grad, 0.5)
        optim.sgd_update(param, grad, state, 0.1 * 0.5 ** (it // 5), momentum=0.9, nesterov=True)
    for a, b in zip(model.get_weights(), reference.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_validation_triggers_and_end_triggers(data):
    x, y = data
    model = mlp()
    seen = []

    class Listener:
        def on_epoch_end(self, optimizer, epoch, logs):
            seen.append((epoch, sorted(logs)))

    opt = optim.Optimizer(model, (x, y), "sparse_categorical_crossentropy", optim.Adam(0.05),
                          optim.TriggerOr(optim.MaxEpoch(50), optim.MaxScore(0.95)), 20)
    opt.set_validation(50, (x, y), optim.EveryEpoch(), [optim.Top1Accuracy(), optim.Loss()])
    opt.set_train_metrics(["accuracy"]).add_listener(Listener()).set_progress(0, quiet=True)
    opt.optimize()
    assert opt.state["score"] > 0.95 and opt.state["epoch"] <= 50
    assert seen[0] == (1, ["Top1Accuracy", "loss", "throughput", "val_Loss", "val_Top1Accuracy"])
    assert len(seen) == opt.state["epoch"] - 1
    with pytest.raises(TypeError, match="Trigger"):
        optim.Optimizer(model, (x, y), "mse", end_trigger=5)
    with pytest.raises(TypeError, match="training_set"):
        optim.Optimizer(model, [x, y], "mse")
    with pytest.raises(ValueError, match="same number of samples"):
        optim.Optimizer(model, (x, y[:10]), "mse")


def test_lbfgs_trains_through_the_loop(float64, data):
    x, y = data
    model = mlp()
    opt = optim.Optimizer(model, (x, y), "sparse_categorical_crossentropy", optim.LBFGS(max_iter=10),
                          optim.MaxIteration(5), 100)
    opt.set_progress(0, quiet=True).optimize()
    out = model(Tensor(x), training=False).numpy()
    assert np.mean(out.argmax(1) == y) > 0.8


def test_checkpoint_round_trip_and_atomic_write(tmp_path, data, monkeypatch):
    x, y = data
    model = mlp()
    opt = optim.Optimizer(model, (x, y), "sparse_categorical_crossentropy", optim.SGD(0.1, momentum=0.9),
                          optim.MaxIteration(3), 16)
    opt.set_checkpoint(tmp_path, optim.SeveralIteration(3)).set_progress(0, quiet=True).optimize()
    first = optim.latest_checkpoint(tmp_path)
    assert os.path.basename(first) == "checkpoint-3.ember"
    loaded = optim.load_checkpoint(first)
    assert loaded.iteration == 3 and loaded.order is not None  # stopped mid-epoch: the order is kept
    for a, b in zip(loaded.weights, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(loaded.optim_state["state"]["momentum_buffer"],
                                  opt.optim_method.state["momentum_buffer"])
    assert ember.load_model(first).count_params() == model.count_params()  # a checkpoint holds a model

    real_writestr = zipfile.ZipFile.writestr

    def failing(self, name, data, *args, **kwargs):
        if name == "optim.npz":
            raise OSError("disk full (simulated)")
        return real_writestr(self, name, data, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "writestr", failing)
    opt.set_end_when(optim.MaxIteration(6))
    with pytest.raises(OSError, match="disk full"):
        opt.optimize()
    monkeypatch.undo()
    assert sorted(os.listdir(tmp_path)) == [".ember-lock", "checkpoint-3.ember"]  # no partial file left behind
    assert optim.load_checkpoint(first).iteration == 3
    with pytest.raises(ValueError, match="cannot be read; expected an ember checkpoint"):
        optim.load_checkpoint(str(tmp_path / "checkpoint-3.ember") + ".missing")


def test_killed_run_resumes_to_the_same_weights(tmp_path):
    script = os.path.join(HERE, "resume_job.py")
    os.makedirs(tmp_path / "a")
    os.makedirs(tmp_path / "b")
    subprocess.run([sys.executable, script, "full", str(tmp_path / "a")], check=True, cwd=str(tmp_path))
    proc = subprocess.Popen([sys.executable, script, "killme", str(tmp_path / "b")], cwd=str(tmp_path))
    target = tmp_path / "b" / "ckpt" / "checkpoint-12.ember"
    deadline = time.time() + 120
    while not target.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    assert not (tmp_path / "b" / "final-killme.npz").exists()
    latest = optim.latest_checkpoint(tmp_path / "b" / "ckpt")
    assert 12 <= optim.load_checkpoint(latest).iteration < 30
    out = subprocess.run([sys.executable, script, "resume", str(tmp_path / "b")], check=True, cwd=str(tmp_path),
                         capture_output=True, text=True)
    assert "resumed at iteration" in out.stdout
    with np.load(tmp_path / "a" / "final-full.npz") as a, np.load(tmp_path / "b" / "final-resume.npz") as b:
        assert len(a.files) == 4
        for k in a.files:
            np.testing.assert_array_equal(a[k], b[k])


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_divergence_stops_with_a_clear_error_and_keeps_the_last_checkpoint(tmp_path, rng):
    x = rng.normal(size=(64, 4)) * 10
    y = rng.normal(size=(64, 1)) * 1e3
    model = ember.Sequential([Dense(1, input_shape=(4,))])
    opt = optim.Optimizer(model, (x, y), "mse", optim.SGD(1.0), optim.MaxEpoch(100), 16)
    opt.set_checkpoint(tmp_path, optim.SeveralIteration(1), overwrite=True).set_progress(0, quiet=True)
    with pytest.raises(optim.TrainingDivergedError, match="last good checkpoint is .*checkpoint-"):
        opt.optimize()
    good = optim.load_checkpoint(optim.latest_checkpoint(tmp_path))
    assert all(np.isfinite(w).all() for w in good.weights)
    assert len(optim.checkpoint.list_checkpoints(tmp_path)) == 1  # overwrite keeps only the newest


def test_tensorboard_reads_our_event_files(tmp_path, data):
    event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    x, y = data
    model = mlp()
    train, val = optim.TrainSummary(tmp_path, "app"), optim.ValidationSummary(tmp_path, "app")
    train.set_summary_trigger("Parameters", optim.SeveralIteration(7))
    opt = optim.Optimizer(model, (x, y), "sparse_categorical_crossentropy", optim.SGD(0.1), optim.MaxEpoch(2), 10)
    opt.set_learning_rate_schedule(optim.Step(4, 0.5)).set_validation(50, (x, y), optim.EveryEpoch())
    opt.set_train_summary(train).set_val_summary(val).set_progress(0, quiet=True).optimize()
    ours = train.read_scalar("Loss")
    assert [s for s, _, _ in ours] == list(range(1, 21))
    assert ours[-1][1] == pytest.approx(opt.state["loss"], rel=1e-6)
    train.close(), val.close()
    acc = event_accumulator.EventAccumulator(str(tmp_path / "app" / "train"), size_guidance={"scalars": 0})
    acc.Reload()
    assert {"Loss", "Throughput", "LearningRate"} <= set(acc.Tags()["scalars"])
    tb = [(e.step, e.value) for e in acc.Scalars("Loss")]
    assert tb == [(s, pytest.approx(v, rel=1e-6)) for s, v, _ in ours]
    rates = [e.value for e in acc.Scalars("LearningRate")]
    np.testing.assert_allclose(rates, [0.1 * 0.5 ** (i // 4) for i in range(20)], rtol=1e-6)
    assert len(acc.Tags()["histograms"]) == len(model.trainable_weights)
    vacc = event_accumulator.EventAccumulator(str(tmp_path / "app" / "validation"))
    vacc.Reload()
    assert [e.step for e in vacc.Scalars("Top1Accuracy")] == [10, 20]
    assert val.read_scalar("Top1Accuracy")[-1][1] == pytest.approx(opt.state["score"], rel=1e-6)


def test_read_scalar_sees_every_value_added_and_later_ones(tmp_path):
    # BigDL's scripts read the loss right after optimize(): nothing may still sit in the writer's queue
    summary = optim.TrainSummary(tmp_path, "app")
    for step in range(1, 3001):
        summary.add_scalar("Loss", step / 2, step)
    assert [(s, v) for s, v, _ in summary.read_scalar("Loss")] == [(s, s / 2) for s in range(1, 3001)]
    summary.add_scalar("Loss", 7.0, 3001)  # a new event file, opened within the same second as the first
    values = summary.read_scalar("Loss")
    assert len(values) == 3001 and values[-1][:2] == (3001, 7.0)
    summary.close()


def test_progress_lines_name_epoch_iteration_loss_and_throughput(data, caplog):
    x, y = data
    opt = optim.Optimizer(mlp(), (x, y), "sparse_categorical_crossentropy", optim.SGD(0.1), optim.MaxEpoch(1), 25)
    with caplog.at_level(logging.INFO, logger="ember"):
        opt.set_progress(2).optimize()
    lines = [r.getMessage() for r in caplog.records if r.name == "ember.optim"]
    assert any("[Epoch 1 50/100][Iteration 2]" in m and "Throughput is" in m and "Loss is" in m for m in lines)
    assert any("[Epoch 1] done: 100 records" in m for m in lines)


def test_a_method_of_ones_own_with_the_old_update_signature_is_still_clipped():
    """A user's OptimMethod whose ``update(param, grad, lr)`` takes no ``clip`` trains with BigDL's clipping: the
    gradient it receives is the clipped one (Keras's loss scaling and accumulation, which clip inside ``update``,
    are off for it)."""
    seen = []

    class Recording(optim.OptimMethod):
        def update(self, param, grad, lr=None):
            seen.append(float(np.sqrt((grad * grad).sum())))
            param -= (lr or self.learning_rate) * grad

    x = np.random.default_rng(0).normal(size=(32, 4)).astype("float32")
    y = (x[:, 0] > 0).astype(np.int64)
    model = ember.Sequential([Dense(2, activation="softmax", input_shape=(4,))])
    opt = optim.Optimizer(model, (x, y), "sparse_categorical_crossentropy", Recording(0.1), optim.MaxIteration(3), 16)
    opt.set_gradclip_l2norm(1e-3).set_progress(0, quiet=True).optimize()
    assert len(seen) == 3 and max(seen) == pytest.approx(1e-3, rel=1e-5)
