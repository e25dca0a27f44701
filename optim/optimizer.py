"""The training loop, BigDL style: ``Optimizer(model, training_set, criterion, optim_method,
end_trigger, batch_size)`` with validation, checkpoints, summaries, gradient clipping and progress.

``Optimizer(...)`` picks the implementation from the training set: NumPy arrays ``(x, y)`` or an
``ArrayDataset`` train locally (``LocalOptimizer``).
"""
import logging
import math
import os
import time

import numpy as np

from ember.engine import config, no_grad
from ember.layers import losses as losses_module
from ember.optim import checkpoint as ckpt
from ember.optim import validation as validation_module
from ember.optim.clipping import clip_by_global_norm, clip_by_value
from ember.optim.dataset import ArrayDataset, to_dataset
from ember.optim.methods import SGD, OptimMethod
from ember.optim.schedules import Default, LearningRateSchedule
from ember.optim.triggers import EveryEpoch, MaxEpoch, Trigger
from ember.optim.validation import to_numpy

logger = logging.getLogger("ember.optim")


class TrainingDivergedError(FloatingPointError):
    """The training loss became NaN or infinite."""


def ensure_log_handler():
    """Show INFO progress lines on stderr unless the application configured logging itself."""
    ember_logger = logging.getLogger("ember")
    if not ember_logger.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        ember_logger.addHandler(handler)
        ember_logger.setLevel(logging.INFO)


def compute_loss(criterion, y, out):
    """The training loss: one criterion, or a list (one per model output) summed."""
    if isinstance(criterion, (list, tuple)):
        if not isinstance(out, (list, tuple)) or len(out) != len(criterion):
            raise ValueError(f"{len(criterion)} losses given but the model has "
                             f"{len(out) if isinstance(out, (list, tuple)) else 1} output(s)")
        if not isinstance(y, (list, tuple)) or len(y) != len(out):
            raise ValueError(f"the model has {len(out)} outputs: give a list of {len(out)} target arrays")
        total = None
        for c, t, o in zip(criterion, y, out):
            term = c(t, o)
            total = term if total is None else total + term
        return total
    if isinstance(out, (list, tuple)):
        raise ValueError(f"the model has {len(out)} outputs: give one loss per output (a list)")
    return criterion(y, out)


def predict_arrays(model, x, batch_size=32):
    """Model outputs on ``x`` (arrays) in inference mode, batch by batch, as NumPy arrays."""
    data = ArrayDataset(x)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size!r}")
    parts = []
    with no_grad():
        for index in data.batches(np.arange(len(data)), batch_size):
            xb, _ = data.take(index)
            out = model(xb, training=False)
            parts.append([to_numpy(o) for o in out] if isinstance(out, (list, tuple)) else [to_numpy(out)])
    merged = [np.concatenate([p[i] for p in parts]) for i in range(len(parts[0]))]
    return merged if len(merged) > 1 else merged[0]


def evaluate_dataset(model, dataset, batch_size, methods):
    """Sum each validation method's results over ``dataset`` in inference mode; a list of results."""
    totals = [None] * len(methods)
    with no_grad():
        for index in dataset.batches(np.arange(len(dataset)), batch_size):
            xb, yb = dataset.take(index)
            out = model(xb, training=False)
            out = out[0] if isinstance(out, (list, tuple)) else out
            yb = yb[0] if isinstance(yb, (list, tuple)) else yb
            for i, m in enumerate(methods):
                r = m(out, yb)
                totals[i] = r if totals[i] is None else totals[i] + r
    return totals


class BaseOptimizer:
    """What every optimizer shares: the settings and their setters, and the bookkeeping around steps.

    Attributes:
        state: the training state seen by triggers (``epoch``, ``iteration``, ``loss``, ``score``...).
        stop_training: set True (e.g. by a callback) to end after the current iteration.
    """

    def __init__(self, model, training_set, criterion, optim_method=None, end_trigger=None, batch_size=32):
        self.model = model
        self.criterion = ([losses_module.get(c) for c in criterion] if isinstance(criterion, (list, tuple))
                          else losses_module.get(criterion))
        self.optim_method = optim_method if optim_method is not None else SGD()
        if not isinstance(self.optim_method, OptimMethod):
            raise TypeError(f"optim_method: expected an ember.optim method (SGD, Adam, ...), got {optim_method!r}")
        self.set_end_when(end_trigger if end_trigger is not None else MaxEpoch(1))
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size!r}")
        self.batch_size = int(batch_size)
        self.schedule = Default()
        self.validation = None
        self.checkpoint_path = self.checkpoint_trigger = None
        self.checkpoint_overwrite = False
        self.train_summary = self.val_summary = None
        self.clip_const = self.clip_norm = None
        self.train_metrics = []
        self.listeners = []
        self.log_every = 50
        self.progress_bar = False
        self.log_level = logging.INFO
        self.stop_training = False
        self.last_checkpoint = None
        self.state = {"epoch": 1, "iteration": 0, "epoch_finished": False, "loss": None, "score": None,
                      "position": 0, "records": 0}

    # ---- setters (BigDL names) ----
    def set_end_when(self, trigger):
        if not isinstance(trigger, Trigger):
            raise TypeError(f"end_trigger: expected a Trigger (MaxEpoch, MaxIteration, ...), got {trigger!r}")
        self.end_trigger = trigger
        return self

    def set_optim_method(self, optim_method):
        self.optim_method = optim_method
        return self

    def set_learning_rate_schedule(self, schedule):
        if not isinstance(schedule, LearningRateSchedule):
            raise TypeError(f"expected a LearningRateSchedule (Step, Poly, ...), got {schedule!r}")
        self.schedule = schedule
        return self

    def set_validation(self, batch_size, val_set, trigger=None, val_method=None):
        """Validate on ``val_set`` whenever ``trigger`` fires (default: every epoch) with ``val_method``
        (a list of ValidationMethods or names; default Top1Accuracy)."""
        methods = [validation_module.get(m) for m in (val_method or ["accuracy"])]
        self.validation = {"batch_size": int(batch_size), "dataset": to_dataset(val_set, "validation set"),
                           "trigger": trigger or EveryEpoch(), "methods": methods}
        return self

    def set_checkpoint(self, path, trigger=None, overwrite=False):
        """Write a checkpoint into folder ``path`` whenever ``trigger`` fires (default: every epoch);
        with ``overwrite``, older checkpoints are deleted once the new one is written."""
        os.makedirs(path, exist_ok=True)
        self.checkpoint_path, self.checkpoint_trigger = os.fspath(path), trigger or EveryEpoch()
        self.checkpoint_overwrite = bool(overwrite)
        return self

    def set_train_summary(self, summary):
        self.train_summary = summary
        return self

    def set_val_summary(self, summary):
        self.val_summary = summary
        return self

    def set_gradclip_const(self, min_value, max_value):
        if min_value > max_value:
            raise ValueError(f"set_gradclip_const: min {min_value} > max {max_value}")
        self.clip_const = (float(min_value), float(max_value))
        return self

    def set_gradclip_l2norm(self, clip_norm):
        if clip_norm <= 0:
            raise ValueError(f"set_gradclip_l2norm: the norm must be > 0, got {clip_norm!r}")
        self.clip_norm = float(clip_norm)
        return self

    def disable_gradclip(self):
        self.clip_const = self.clip_norm = None
        return self

    def set_train_metrics(self, methods):
        """Validation methods also scored on the training batches (reported per epoch)."""
        self.train_metrics = [validation_module.get(m) for m in methods]
        return self

    def set_progress(self, log_every=50, bar=False, quiet=False):
        """A log line every ``log_every`` iterations (0: only per epoch); ``bar``: a tqdm bar per epoch;
        ``quiet``: progress lines at DEBUG level only."""
        self.log_every, self.progress_bar = int(log_every), bool(bar)
        self.log_level = logging.DEBUG if quiet else logging.INFO
        return self

    def add_listener(self, listener):
        """An object with any of on_train_begin/on_epoch_begin/on_iteration_end/on_epoch_end/on_train_end
        (each called with this optimizer, plus the epoch and logs where they apply)."""
        self.listeners.append(listener)
        return self

    def _notify(self, event, *args):
        for listener in self.listeners:
            fn = getattr(listener, event, None)
            if fn is not None:
                fn(self, *args)

    def _clip(self, grad):
        if self.clip_const is not None:
            clip_by_value(grad, *self.clip_const)
        if self.clip_norm is not None:
            clip_by_global_norm(grad, self.clip_norm)


class LocalOptimizer(BaseOptimizer):
    """Trains on this machine, one mini-batch after another (BigDL's LocalOptimizer).

    Example:
        >>> import numpy as np, ember
        >>> from ember.layers import Dense
        >>> from ember.optim import Optimizer, SGD, MaxEpoch
        >>> x = np.random.default_rng(0).normal(size=(64, 3)); y = (x.sum(1) > 0).astype(int)
        >>> model = ember.Sequential([Dense(2, activation="softmax", input_shape=(3,))])
        >>> opt = Optimizer(model, (x, y), "sparse_categorical_crossentropy", SGD(0.1), MaxEpoch(2), 16)
        >>> opt.set_progress(0).optimize() is model
        True
    """

    def __init__(self, model, training_set, criterion, optim_method=None, end_trigger=None, batch_size=32):
        super().__init__(model, training_set, criterion, optim_method, end_trigger, batch_size)
        self.dataset = to_dataset(training_set)
        self.shuffle = True
        self._generator = np.random.default_rng(int(config.rng().integers(2 ** 63)))
        self._order = None

    def set_shuffle(self, shuffle):
        self.shuffle = bool(shuffle)
        return self

    # ---- checkpoints ----
    def _train_state(self):
        state = {k: self.state[k] for k in ("epoch", "iteration", "position", "records", "loss", "score")}
        state["engine_rng"] = config.get_rng_state()
        state["shuffle_rng"] = self._generator.bit_generator.state
        state["schedule"] = self.schedule.state_dict()
        return state

    def save_checkpoint(self):
        """Write a checkpoint now (into the folder given to ``set_checkpoint``); returns its path."""
        if self.checkpoint_path is None:
            raise ValueError("save_checkpoint: call set_checkpoint(path, trigger) first")
        path = os.path.join(self.checkpoint_path, ckpt.checkpoint_name(self.state["iteration"]))
        order = self._order if self.state["position"] > 0 else None
        ckpt.save_checkpoint(path, self.model, self.optim_method.state_dict(), self._train_state(), order)
        if self.checkpoint_overwrite:
            ckpt.prune_checkpoints(self.checkpoint_path, path)
        self.last_checkpoint = path
        logger.log(self.log_level, "checkpoint written: %s", path)
        return path

    def resume(self, path):
        """Continue from a checkpoint file, or from the newest checkpoint in a folder."""
        path = ckpt.resolve_checkpoint(path)
        loaded = ckpt.load_checkpoint(path)
        self._build_model()
        if len(loaded.weights) != len(self.model.weights):
            raise ValueError(f"resume: {path!r} holds {len(loaded.weights)} weights but the model has "
                             f"{len(self.model.weights)}; it was written for another model")
        self.model.set_weights(loaded.weights)
        self.optim_method.load_state_dict(loaded.optim_state)
        ts = loaded.train_state
        self.state.update({k: ts[k] for k in ("epoch", "iteration", "position", "records", "loss", "score")})
        self.state["epoch_finished"] = False
        config.set_rng_state(ts["engine_rng"])
        self._generator.bit_generator.state = ts["shuffle_rng"]
        self.schedule.load_state_dict(ts["schedule"])
        self._order = loaded.order
        if self.state["position"] > 0 and (self._order is None or len(self._order) != len(self.dataset)):
            raise ValueError(f"resume: {path!r} stopped mid-epoch on a training set of another size")
        self.last_checkpoint = path
        logger.log(self.log_level, "resumed from %s at epoch %d, iteration %d", path, self.state["epoch"],
                   self.state["iteration"])
        return self

    # ---- the loop ----
    def _build_model(self):
        if not self.model.built:
            xb, _ = self.dataset.take(np.arange(min(2, len(self.dataset))))
            with no_grad():
                self.model(xb, training=False)

    def _flat_buffers(self):
        self._build_model()
        flat = self.model._flat_parameters()
        if not flat.data:
            raise ValueError(f"model '{self.model.name}' has no trainable weights to optimize")
        if len(flat.data) > 1:
            raise ValueError(f"model '{self.model.name}' mixes parameter dtypes {sorted(flat.data)}; "
                             "the optimizer needs one")
        key = next(iter(flat.data))
        return flat.data[key], flat.grad[key]

    def _train_step(self, x, y, lr):
        param, grad = self._flat_buffers()
        holder = {}

        def feval():
            grad[...] = 0
            out = self.model(x, training=True)
            loss = compute_loss(self.criterion, y, out)
            value = float(to_numpy(loss))
            if not math.isfinite(value):
                raise TrainingDivergedError(value)
            loss.backward()
            self._clip(grad)
            holder["out"] = out
            return value

        loss = self.optim_method.optimize(feval, param, grad, lr)
        return loss, holder.get("out")

    def _validate(self):
        v = self.validation
        self.model.eval()
        try:
            results = evaluate_dataset(self.model, v["dataset"], v["batch_size"], v["methods"])
        finally:
            self.model.train()
        values = {m.name: r.result()[0] for m, r in zip(v["methods"], results)}
        self.state["score"] = results[0].result()[0]
        loss = values.get("Loss")
        self.schedule.on_validation(self.state["score"], loss)
        if self.val_summary is not None:
            for name, value in values.items():
                self.val_summary.add_scalar(name, value, self.state["iteration"])
        logger.log(self.log_level, "[Epoch %d][Iteration %d] validation: %s", self._epoch_of_last_step(),
                   self.state["iteration"], ", ".join(f"{k} is {val:.6g}" for k, val in values.items()))
        return values

    def _epoch_of_last_step(self):
        return self.state["epoch"] - 1 if self.state["epoch_finished"] else self.state["epoch"]

    def optimize(self):
        """Train until the end trigger fires; returns the model (trained in place)."""
        if self.log_level >= logging.INFO:
            ensure_log_handler()
        self._flat_buffers()  # builds the model; fails here, not mid-loop, when nothing is trainable
        self.model.train()
        self.stop_training = False
        n, bs = len(self.dataset), self.batch_size
        start_time = time.perf_counter()
        epoch_loss = epoch_records = 0.0
        epoch_start = time.perf_counter()
        train_totals, bar = None, None
        logs = {}
        self._notify("on_train_begin")
        try:
            while not self.end_trigger(self.state) and not self.stop_training:
                st = self.state
                if st["position"] == 0:
                    self._order = self.dataset.order(self.shuffle, self._generator)
                    epoch_loss = epoch_records = 0.0
                    epoch_start, train_totals = time.perf_counter(), None
                    self._notify("on_epoch_begin", st["epoch"])
                    if self.progress_bar:
                        from tqdm import tqdm

                        bar = tqdm(total=n, desc=f"Epoch {st['epoch']}", unit="rec", leave=True, mininterval=0.5)
                index = self._order[st["position"]:st["position"] + bs]
                x, y = self.dataset.take(index)
                lr = self.schedule.get_learning_rate(self.optim_method.learning_rate, st["iteration"], st["epoch"])
                t0 = time.perf_counter()
                try:
                    loss, out = self._train_step(x, y, lr)
                except TrainingDivergedError as e:
                    where = (f"the last good checkpoint is {self.last_checkpoint}" if self.last_checkpoint
                             else "no checkpoint was written")
                    raise TrainingDivergedError(
                        f"training loss became {e.args[0]} at epoch {st['epoch']}, iteration {st['iteration'] + 1}; "
                        f"stopped before applying the update ({where}). Try a lower learning rate or gradient "
                        "clipping (set_gradclip_l2norm).") from None
                dt = time.perf_counter() - t0
                k = len(index)
                if self.train_metrics and out is not None:
                    o = out[0] if isinstance(out, (list, tuple)) else out
                    yb = y[0] if isinstance(y, (list, tuple)) else y
                    results = [m(o, yb) for m in self.train_metrics]
                    train_totals = results if train_totals is None else [a + b for a, b in zip(train_totals, results)]
                st["iteration"] += 1
                st["position"] += k
                st["records"] += k
                st["loss"] = loss
                epoch_loss += loss * k
                epoch_records += k
                throughput = k / dt if dt > 0 else float("inf")
                if bar is not None:
                    bar.update(k)
                    bar.set_postfix(loss=f"{loss:.4f}")
                if self.train_summary is not None:
                    self._write_train_summary(loss, throughput, lr)
                if self.log_every and st["iteration"] % self.log_every == 0 and bar is None:
                    logger.log(self.log_level, "[Epoch %d %d/%d][Iteration %d][Wall Clock %.1fs] Trained %d records "
                               "in %.4f seconds. "
                                "Throughput is %.1f records/second. Loss is %.6g.", st["epoch"], st["position"], n,
                                st["iteration"], time.perf_counter() - start_time, k, dt, throughput, loss)
                if st["position"] >= n:
                    st["epoch"] += 1
                    st["position"] = 0
                    st["epoch_finished"] = True
                    self._order = None
                val_values = None
                if self.validation is not None and self.validation["trigger"](st):
                    val_values = self._validate()
                if self.checkpoint_path is not None and self.checkpoint_trigger(st):
                    self.save_checkpoint()
                self._notify("on_iteration_end", dict(st))
                if st["epoch_finished"]:
                    if bar is not None:
                        bar.close()
                        bar = None
                    elapsed = time.perf_counter() - epoch_start
                    logs = {"loss": epoch_loss / epoch_records}
                    for m, r in zip(self.train_metrics, train_totals or []):
                        logs[m.name] = r.result()[0]
                    if val_values is not None:
                        logs.update({f"val_{k}": v for k, v in val_values.items()})
                    logs["throughput"] = epoch_records / elapsed if elapsed > 0 else float("inf")
                    logger.log(self.log_level, "[Epoch %d] done: %d records in %.2f s (%.1f records/second), loss %.6g",
                                st["epoch"] - 1, epoch_records, elapsed, logs["throughput"], logs["loss"])
                    self._notify("on_epoch_end", st["epoch"] - 1, logs)
                    st["epoch_finished"] = False
        finally:
            if bar is not None:
                bar.close()
            for s in (self.train_summary, self.val_summary):
                if s is not None:
                    s.flush()
        self._notify("on_train_end")
        return self.model

    def _write_train_summary(self, loss, throughput, lr):
        s, it = self.train_summary, self.state["iteration"]
        for name, value in (("Loss", loss), ("Throughput", throughput), ("LearningRate", lr)):
            trigger = s.get_summary_trigger(name)
            if trigger is None or trigger(self.state):
                s.add_scalar(name, value, it)
        trigger = s.get_summary_trigger("Parameters")
        if trigger is not None and trigger(self.state):
            for w in self.model.trainable_weights:
                s.add_histogram(w.name, to_numpy(w), it)


def Optimizer(model, training_set, criterion, optim_method=None, end_trigger=None, batch_size=32):  # noqa: N802
    """BigDL's entry point: an optimizer suited to ``training_set`` (see module docstring).

    Args:
        model: an ember model (Sequential, Model or any layer with weights).
        training_set: ``(x, y)`` NumPy arrays (lists of arrays for several inputs/outputs) or an ArrayDataset.
        criterion: a loss (name, class instance, or a list with one per output).
        optim_method: an ember.optim method (default SGD(0.01)).
        end_trigger: when to stop (default MaxEpoch(1)).
        batch_size: the mini-batch size.
    """
    if isinstance(training_set, (tuple, ArrayDataset)):
        return LocalOptimizer(model, training_set, criterion, optim_method, end_trigger, batch_size)
    if type(training_set).__module__.startswith("pyspark") and hasattr(training_set, "mapPartitions"):
        from ember.optim.distri_optimizer import DistriOptimizer

        return DistriOptimizer(model, training_set, criterion, optim_method, end_trigger, batch_size)
    raise TypeError(f"Optimizer: training_set must be (x, y) NumPy arrays, an ArrayDataset or a Spark RDD of "
                    f"(features, label) samples, got {type(training_set).__name__}")
