"""The local step engine: one mini-batch after another on arrays in this process (BigDL's
LocalOptimizer). The driver loop (``optim/loop.py``) does everything around the steps."""
import math
import os
import time

import numpy as np

from ember.engine import config, no_grad
from ember.engine.replay import StepReplay
from ember.optim.clipping import Clipping
from ember.optim.dataset import ArrayDataset, to_dataset
from ember.optim.loop import IterationRecord, Segment, TrainingDivergedError, compute_loss, evaluate_dataset
from ember.optim.validation import score, to_numpy


def variable_bounds(model):
    """Each trainable variable's ``(start, stop)`` in the model's flat parameter buffer."""
    flat = model._flat_parameters()
    return [(start, start + p.size) for p, (_, start) in zip(flat.params, flat.offsets)]


def flat_buffers(model):
    """The model's one flat parameter buffer and its gradient (clear errors when there is none or several)."""
    flat = model._flat_parameters()
    if not flat.data:
        raise ValueError(f"model '{model.name}' has no trainable weights to optimize")
    if len(flat.data) > 1:
        raise ValueError(f"model '{model.name}' mixes parameter dtypes {sorted(flat.data)}; the optimizer needs one")
    key = next(iter(flat.data))
    return flat.data[key], flat.grad[key]


class LocalEngine:
    """Steps on ``(x, y)`` arrays (or an ArrayDataset) in this process, one step per segment."""

    def __init__(self, training_set):
        self.dataset = to_dataset(training_set)
        self._generator = np.random.default_rng(int(config.rng().integers(2 ** 63)))
        self._order = None

    @property
    def size(self):
        return len(self.dataset)

    def configure(self, name, value):
        raise ValueError(f"set_{name}: {name} applies to training on Spark (an RDD or DataFrame training set); "
                         "this optimizer trains locally on arrays")

    def validation_data(self, data):
        if type(data).__module__.startswith("pyspark"):
            raise TypeError("set_validation: a Spark RDD/DataFrame validation set needs a Spark training set too; "
                            "pass (x, y) arrays to validate a local run")
        return to_dataset(data, "validation set")

    def prepare(self, loop):
        model = loop.model
        if not model.built:
            xb, _ = self.dataset.take(np.arange(min(2, len(self.dataset))))
            with no_grad():
                model(xb, training=False)
        flat_buffers(model)  # fails here, not mid-loop, when nothing is trainable

    def begin_epoch(self, loop):
        if loop.state["position"] == 0 or self._order is None:
            self._order = self.dataset.order(loop.shuffle, self._generator)

    def segment_end(self, loop, start):
        return start + 1

    def run_segment(self, loop, start, stop):
        st = loop.state
        index = self._order[st["position"]:st["position"] + loop.batch_size]
        x, y = self.dataset.take(index)
        w = self.dataset.weights(index)
        lr = loop.optim_method.learning_rate_at(
            loop.schedule.get_learning_rate(loop.optim_method.learning_rate, start, st["epoch"]))
        t0 = time.perf_counter()
        loss, out = self._step(loop, x, y, lr, start, w)
        dt = time.perf_counter() - t0
        metrics = self._score(loop, out, y, w)
        return Segment([IterationRecord(start + 1, loss, len(index), dt, lr)], metrics)

    @staticmethod
    def _score(loop, out, y, w):
        """The compiled metrics on one training batch's outputs (each metric's output of a model with several),
        or None."""
        if not loop.train_metrics or out is None:
            return None
        return [score(m, out, y, w) for m in loop.train_metrics]

    def _step(self, loop, x, y, lr, iteration, sample_weight=None):
        param, grad = flat_buffers(loop.model)
        clipping = loop.clipping
        bounds = variable_bounds(loop.model) if clipping.variable_norm is not None else None  # (10 us for W1)
        flat = loop.model._flat_parameters()
        holder = {}
        replay = self._replayer(loop.model, flat, x)

        scale = loop.optim_method.options.loss_scale_factor

        def feval():
            flat.zero_grad(deferred=True)
            try:
                out = replay(x) if replay is not None else loop.model(x, training=True)
                loss = compute_loss(loop.criterion, y, out, loop.model, sample_weight)
                value = float(to_numpy(loss))
                if not math.isfinite(value):
                    raise TrainingDivergedError(f"training loss became {value} at iteration {iteration + 1}")
                # Keras's loss_scale_factor: the gradient of scale * loss (the method divides it by scale again)
                loss.backward(None if scale is None else np.asarray(scale, dtype=loss.dtype))
            finally:
                flat.flush_zero()
            holder["out"] = out
            return value

        def clip(g):  # the method clips the gradient its rule receives (after unscaling and accumulating)
            clipping.apply(g, bounds)

        if clipping == Clipping():  # (a method of one's own may define optimize(feval, param, grad, lr))
            loss = loop.optim_method.optimize(feval, param, grad, lr)
        else:
            loss = loop.optim_method.optimize(feval, param, grad, lr, clip)
        return loss, holder.get("out")

    # NOTE: replaying W1's recorded call (no layer Python between ops) cut 0.07-0.10 ms of CPU per step
    # (3.29 vs 3.38 ms, 1 thread, min of 40 alternating blocks of 20 steps, load 4-6); EMBER_REPLAY=0 turns it off
    REPLAY = os.environ.get("EMBER_REPLAY", "1") != "0"
    _replay = None  # (model, its FlatParameters, StepReplay) while the model's calls are replayable

    def _replayer(self, model, flat, x):
        """The model's training call, recorded once per input shape and replayed (``StepReplay``), when
        the model says its calls are replayable and ``x`` is one array; None otherwise. ``flat``: the model's
        current FlatParameters (a new one when its trainable weights change, and then a new recording)."""
        if not self.REPLAY or not isinstance(x, np.ndarray) or not model.replayable():
            self._replay = None
            return None
        if self._replay is None or self._replay[0] is not model or self._replay[1] is not flat:
            self._replay = (model, flat, StepReplay(lambda t: model(t, training=True), flat.params))
        return self._replay[2]

    def evaluate(self, loop, data, batch_size, methods):
        loop.model.eval()
        try:
            return evaluate_dataset(loop.model, data, batch_size, methods)
        finally:
            loop.model.train()

    def sync_model(self, loop):
        pass  # the model is trained in place

    def moving_average(self, loop):
        """The optimizer's moving average of the flat weights (Keras's ``use_ema``), or None."""
        return loop.optim_method.state.get("ema")

    def finish(self, loop):
        pass

    def checkpoint_state(self, loop):
        order = self._order if loop.state["position"] > 0 else None
        return loop.optim_method.state_dict(), {"shuffle_rng": self._generator.bit_generator.state}, order

    def restore(self, loop, loaded):
        model = loop.model
        if len(loaded.weights) != len(model.weights):
            raise ValueError(f"resume: {loaded.path!r} holds {len(loaded.weights)} weights but the model has "
                             f"{len(model.weights)}; it was written for another model")
        model.set_weights(loaded.weights)
        loop.optim_method.load_state_dict(loaded.optim_state)
        ts = loaded.train_state
        if "shuffle_rng" in ts:
            self._generator.bit_generator.state = ts["shuffle_rng"]
        self._order = loaded.order
        if ts.get("position", 0) > 0 and (self._order is None or len(self._order) != len(self.dataset)):
            raise ValueError(f"resume: {loaded.path!r} stopped mid-epoch on a training set of another size")

    def recover(self, loop, failure):
        raise failure  # nothing local is an infrastructure failure


def is_local_data(data):
    """Arrays ``(x, y)`` or an ArrayDataset: what the local engine trains on."""
    return isinstance(data, (tuple, ArrayDataset))
