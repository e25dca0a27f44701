"""A training run used by test_optimizer.py in subprocesses: ``full``, ``killme`` (slow, to be killed)
or ``resume``; writes the final weights to ``<folder>/final-<mode>.npz``."""
import sys
import time

import numpy as np

import ember
from ember import optim
from ember.layers import Dense, Dropout


class Slow:
    def on_iteration_end(self, optimizer, state):
        time.sleep(0.15)


def main(mode, folder):
    ember.set_default_dtype("float64")
    ember.set_seed(7)
    rng = np.random.default_rng(3)
    x = rng.normal(size=(300, 6))
    y = (x[:, :3].sum(1) > 0).astype(np.int64) + (x[:, 3] > 1)
    model = ember.Sequential([Dense(16, activation="relu", input_shape=(6,)), Dropout(0.2),
                              Dense(3, activation="softmax")])
    opt = optim.Optimizer(model, (x, y), "sparse_categorical_crossentropy", optim.Adam(0.01), optim.MaxEpoch(3), 32)
    opt.set_learning_rate_schedule(optim.Step(7, 0.7))
    opt.set_checkpoint(folder + "/ckpt", optim.SeveralIteration(4))
    opt.set_progress(0, quiet=True)
    if mode == "killme":
        opt.add_listener(Slow())
    if mode == "resume":
        opt.resume(folder + "/ckpt")
        print("resumed at iteration", opt.state["iteration"], flush=True)
    opt.optimize()
    np.savez(f"{folder}/final-{mode}.npz", *model.get_weights())


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
