"""A checkpoint folder belongs to one run: a second run is refused while the first trains, pruning keeps
what other runs wrote, and a writer killed mid-checkpoint leaves nothing behind once the next run starts."""
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import ember
from ember import optim
from ember.layers import Dense
from ember.optim.checkpoint import FolderInUseError, checkpoint_run_id, list_checkpoints

WRITER = r"""
import sys
import numpy as np
import ember
from ember import optim
from ember.layers import Dense

folder, width = sys.argv[1], int(sys.argv[2])
ember.set_seed(0)
x = np.random.default_rng(0).normal(size=(64, 32)).astype("float32")
y = (x[:, 0] > 0).astype(int)
model = ember.Sequential([Dense(width, activation="relu", input_shape=(32,)), Dense(width), Dense(2)])
opt = optim.Optimizer(model, (x, y), "sparse_categorical_crossentropy", optim.SGD(1e-4), optim.MaxIteration(10 ** 6),
                      32)
opt.set_checkpoint(folder, optim.SeveralIteration(1), overwrite=True).set_progress(0, quiet=True)
print("training", flush=True)
opt.optimize()
"""


def start_writer(tmp_path, folder, width):
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    proc = subprocess.Popen([sys.executable, str(script), str(folder), str(width)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "training", proc.stderr.read()
    return proc


def data():
    x = np.random.default_rng(1).normal(size=(40, 32))
    return x, (x[:, 0] > 0).astype(int)


def model():
    ember.set_seed(0)
    return ember.Sequential([Dense(2, activation="softmax", input_shape=(32,))])


def test_a_second_run_on_a_folder_in_use_is_refused(tmp_path):
    folder = tmp_path / "ck"
    writer = start_writer(tmp_path, folder, 16)
    try:
        deadline = time.time() + 60
        while not list_checkpoints(folder) and time.time() < deadline:
            time.sleep(0.05)
        opt = optim.Optimizer(model(), data(), "sparse_categorical_crossentropy", optim.SGD(0.1),
                              optim.MaxEpoch(1), 8)
        opt.set_checkpoint(folder, optim.EveryEpoch()).set_progress(0, quiet=True)
        with pytest.raises(FolderInUseError, match=f"in use by another run \\(process {writer.pid}\\)"):
            opt.optimize()
    finally:
        writer.kill()
        writer.wait()
    opt.set_checkpoint(folder, optim.EveryEpoch(), overwrite=True)  # replacing the dead run's checkpoints
    opt.optimize()  # the writer is gone: the folder is free (the OS released its lock)
    assert opt.state["epoch"] == 2


def test_runs_do_not_mix_in_one_folder(tmp_path):
    x, y = data()
    first = optim.Optimizer(model(), (x, y), "sparse_categorical_crossentropy", optim.SGD(0.1), optim.MaxEpoch(1), 8)
    first.set_checkpoint(tmp_path, optim.EveryEpoch()).set_progress(0, quiet=True).optimize()
    again = optim.Optimizer(model(), (x, y), "sparse_categorical_crossentropy", optim.SGD(0.1), optim.MaxEpoch(1), 8)
    again.set_checkpoint(tmp_path, optim.EveryEpoch()).set_progress(0, quiet=True)
    with pytest.raises(FolderInUseError, match="holds checkpoints of another run .checkpoint-5.ember"):
        again.optimize()
    # with overwrite, a second run may write there, and its pruning keeps what the first run wrote
    second = optim.Optimizer(model(), (x, y), "sparse_categorical_crossentropy", optim.SGD(0.1), optim.MaxEpoch(2),
                             10)
    second.set_checkpoint(tmp_path, optim.EveryEpoch(), overwrite=True).set_progress(0, quiet=True).optimize()
    names = sorted(os.path.basename(p) for p in list_checkpoints(tmp_path))
    assert names == ["checkpoint-5.ember", "checkpoint-8.ember"]  # its own checkpoint-4 was pruned, not 5
    assert checkpoint_run_id(tmp_path / "checkpoint-5.ember") == first.run_id
    assert checkpoint_run_id(tmp_path / "checkpoint-8.ember") == second.run_id != first.run_id
    # resuming continues the run that wrote the folder
    resumed = optim.Optimizer(model(), (x, y), "sparse_categorical_crossentropy", optim.SGD(0.1),
                              optim.MaxEpoch(3), 10)
    resumed.set_checkpoint(tmp_path, optim.EveryEpoch()).set_progress(0, quiet=True)
    resumed.resume(tmp_path).optimize()
    assert resumed.run_id == second.run_id and resumed.state["iteration"] == 12


def test_a_writer_killed_mid_checkpoint_leaves_no_temporary_file_after_the_next_start(tmp_path):
    folder = tmp_path / "ck"
    left = []
    for attempt in range(20):  # kill -9 at random moments until one kill lands inside a checkpoint write
        writer = start_writer(tmp_path, folder, 600)  # about 0.8M parameters: each write takes a while
        time.sleep(0.3 + (attempt % 7) * 0.05)
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait()
        left = [n for n in os.listdir(folder) if n.endswith(".tmp")]
        if left:
            break
    assert left, "no kill landed inside a checkpoint write in 20 tries"
    opt = optim.Optimizer(model(), data(), "sparse_categorical_crossentropy", optim.SGD(0.1), optim.MaxEpoch(1), 8)
    opt.set_checkpoint(folder, optim.EveryEpoch(), overwrite=True).set_progress(0, quiet=True).optimize()
    assert [n for n in os.listdir(folder) if n.endswith(".tmp")] == []
    for path in list_checkpoints(folder):  # every complete checkpoint still loads
        optim.load_checkpoint(path)
