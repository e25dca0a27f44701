"""The one driver loop, shared by local and Spark training.

``TrainingLoop`` owns everything that is not "compute one global step": the end, validation,
checkpoint and summary triggers, learning-rate schedules, validation, checkpoints and resume,
listeners (Keras History and callbacks), TensorBoard summaries, progress lines and retries. A step
engine owns only how a segment of steps runs: ``optim.local.LocalEngine`` on arrays in this process,
``optim.spark.engine.SparkEngine`` as Spark tasks exchanging parameter blocks. ``Optimizer(...)``
(``optim/optimizer.py``) picks the engine from the training data.

An engine provides:
    ``size``                         samples per epoch
    ``prepare(loop)``                build the model and plan (called once per ``optimize``)
    ``begin_epoch(loop)``            called when an epoch starts
    ``segment_end(loop, start)``     the last iteration of the next segment (>= start + 1)
    ``run_segment(loop, start, stop)``  -> ``Segment``; raises ``InfrastructureFailure`` for a
                                     failure worth retrying, anything else reaches the user
    ``validation_data(data)``        what ``evaluate`` takes, or a clear error
    ``evaluate(loop, data, batch_size, methods)``  summed ValidationResults
    ``sync_model(loop)``             the current weights into ``loop.model``
    ``checkpoint_state(loop)``       (optimizer state dict, extra train state, sample order or None)
    ``restore(loop, checkpoint)``    weights and optimizer state from a checkpoint
    ``recover(loop, failure)``       after an ``InfrastructureFailure``: continue from the newest
                                     checkpoint (or what survived)
    ``finish(loop)``                 the trained weights into ``loop.model``
    ``configure(name, value)``       an engine-specific setting (compression, dropping), or a clear error
"""
import dataclasses
import logging
import os
import sys
import time
import uuid

import numpy as np

from ember.engine import config, no_grad
from ember.layers import losses as losses_module
from ember.optim import checkpoint as ckpt
from ember.optim import validation as validation_module
from ember.optim.clipping import Clipping
from ember.optim.dataset import ArrayDataset, check_batch_size
from ember.optim.methods import SGD, OptimMethod
from ember.optim.schedules import Default, LearningRateSchedule
from ember.optim.triggers import EveryEpoch, MaxEpoch, Trigger
from ember.optim.validation import to_numpy

logger = logging.getLogger("ember.optim")


class TrainingDivergedError(FloatingPointError):
    """The training loss became NaN or infinite (raised by ``optimize``).

    Example:
        >>> import numpy as np, ember
        >>> from ember.layers import Dense
        >>> from ember.optim import Optimizer, SGD, MaxEpoch, TrainingDivergedError
        >>> model = ember.Sequential([Dense(1, input_shape=(2,))])
        >>> x, y = np.ones((8, 2), "float32"), np.full((8, 1), 1e30, "float32")  # a loss beyond float32
        >>> with np.errstate(over="ignore", invalid="ignore"):
        ...     try:
        ...         Optimizer(model, (x, y), "mse", SGD(1.0), MaxEpoch(1), 4).set_progress(0).optimize()
        ...     except TrainingDivergedError as e:
        ...         print(type(e).__name__)
        TrainingDivergedError
    """


class InfrastructureFailure(RuntimeError):
    """A training step failed for a reason outside the user's code and data (a lost executor, a killed
    worker, a block that never arrived): the loop retries it from the newest checkpoint."""

    def __init__(self, message, kind="infrastructure"):
        super().__init__(message)
        self.kind = kind


class _CurrentStderr(logging.StreamHandler):
    """A handler that writes to whatever ``sys.stderr`` is now (redirections included)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):  # logging.StreamHandler sets it in __init__
        pass


def ensure_log_handler():
    """Show INFO progress lines on stderr unless the application configured logging itself."""
    ember_logger = logging.getLogger("ember")
    if not ember_logger.handlers and not logging.getLogger().handlers:
        handler = _CurrentStderr()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        ember_logger.addHandler(handler)
        ember_logger.setLevel(logging.INFO)


def _weighted(criterion, y, out, sample_weight):
    if sample_weight is None:
        return criterion(y, out)
    if not isinstance(criterion, losses_module.Loss):
        raise TypeError(f"sample_weight/class_weight need a loss that gives per-sample values (an ember.losses.Loss "
                        f"with per_sample); got {criterion!r}")
    return criterion(y, out, sample_weight=sample_weight)


def compute_loss(criterion, y, out, model=None, sample_weight=None):
    """The training loss: one criterion, or a list (one per model output) summed; plus the model's
    penalties (weight and activity regularizers of the call that made ``out``) when ``model`` is given.
    ``sample_weight``: one weight per sample, applied to every output's loss (Keras's weighting)."""
    if isinstance(criterion, (list, tuple)):
        if not isinstance(out, (list, tuple)) or len(out) != len(criterion):
            raise ValueError(f"{len(criterion)} losses given but the model has "
                             f"{len(out) if isinstance(out, (list, tuple)) else 1} output(s)")
        if not isinstance(y, (list, tuple)) or len(y) != len(out):
            raise ValueError(f"the model has {len(out)} outputs: give a list of {len(out)} target arrays")
        total = None
        for c, t, o in zip(criterion, y, out):
            term = _weighted(c, t, o, sample_weight)
            total = term if total is None else total + term
    elif isinstance(out, (list, tuple)):
        raise ValueError(f"the model has {len(out)} outputs: give one loss per output (a list)")
    else:
        total = _weighted(criterion, y, out, sample_weight)
    penalty = model.penalty() if model is not None else None
    return total if penalty is None else total + penalty


def predict_arrays(model, x, batch_size=32):
    """Model outputs on ``x`` (arrays) in inference mode, batch by batch, as NumPy arrays.

    Args:
        model: a model (or layer).
        x: an array, or a list of arrays for several inputs.
        batch_size: samples per forward pass.

    Returns:
        An array, or a list of arrays for a model with several outputs.

    Example:
        >>> import numpy as np, ember
        >>> from ember.layers import Dense
        >>> from ember.optim import predict_arrays
        >>> model = ember.Sequential([Dense(2, input_shape=(3,))])
        >>> predict_arrays(model, np.zeros((10, 3), "float32"), batch_size=4).shape
        (10, 2)
    """
    batch_size = check_batch_size(batch_size)
    data = ArrayDataset(x)
    parts = []
    with no_grad():
        for index in data.batches(np.arange(len(data)), batch_size):
            xb, _ = data.take(index)
            out = model(xb, training=False)
            parts.append([to_numpy(o) for o in out] if isinstance(out, (list, tuple)) else [to_numpy(out)])
    merged = [np.concatenate([p[i] for p in parts]) for i in range(len(parts[0]))]
    return merged if len(merged) > 1 else merged[0]


def evaluate_dataset(model, dataset, batch_size, methods):
    """Sum each validation method's results over ``dataset`` in inference mode; a list of results. A
    method with ``keras_loss`` set (the Keras loss of ``evaluate``) also counts the model's
    regularization penalties, as Keras's reported loss does."""
    batch_size = check_batch_size(batch_size)
    totals = [None] * len(methods)
    penalized = [getattr(m, "keras_loss", False) and not getattr(m, "output_loss", False) for m in methods]
    with no_grad():
        for index in dataset.batches(np.arange(len(dataset)), batch_size):
            xb, yb = dataset.take(index)
            out = model(xb, training=False)  # score() picks each method's output of a model with several
            penalty = model.penalty() if any(penalized) else None
            wb = dataset.weights(index) if hasattr(dataset, "weights") else None
            for i, m in enumerate(methods):
                r = validation_module.score(m, out, yb, wb)
                if penalty is not None and penalized[i]:
                    r = validation_module.ValidationResult(r.total + float(to_numpy(penalty)) * r.count, r.count,
                                                           r.name)
                totals[i] = r if totals[i] is None else totals[i] + r
    return totals


def add_results(totals, results):
    """Element-wise sum of two lists of ValidationResults (either may be None)."""
    if results is None:
        return totals
    return results if totals is None else [a + b for a, b in zip(totals, results)]


@dataclasses.dataclass
class IterationRecord:
    """What the loop learns of one finished step."""
    iteration: int  # updates done after this step (from 1)
    loss: float
    records: int  # samples planned for the step
    seconds: float
    learning_rate: float
    ends_epoch: bool = None  # whether the step ends its epoch; None: when the epoch's samples are done


@dataclasses.dataclass
class Segment:
    """A run of steps: one record per step, and the training metrics summed over the segment."""
    records: list
    metrics: list = None


@dataclasses.dataclass
class Validation:
    data: object
    batch_size: int
    trigger: Trigger
    methods: list


@dataclasses.dataclass
class _Epoch:
    """Sums over the current epoch."""
    loss: float = 0.0
    records: int = 0
    started: float = 0.0
    metrics: list = None


class TrainingLoop:
    """The training loop (BigDL's Optimizer): settings, setters and ``optimize``; the engine runs the steps.

    ``Optimizer(...)`` returns one (a ``LocalOptimizer`` or ``DistriOptimizer``); the setters
    (``set_validation``, ``set_checkpoint``, ``set_train_summary``, ``set_gradclip_l2norm``,
    ``set_learning_rate_schedule``...) return the loop, so they chain.

    Args:
        model: the model to train.
        engine: the step engine (local or Spark).
        criterion, optim_method, end_trigger, batch_size: as in ``Optimizer``.

    Attributes:
        state: the training state seen by triggers (``epoch``, ``iteration``, ``loss``, ``score``...).
        stop_training: set True (e.g. by a callback) to end after the current segment.

    Example:
        >>> import numpy as np, ember
        >>> from ember.layers import Dense
        >>> from ember.optim import Optimizer, SGD, MaxEpoch
        >>> ember.set_seed(0)
        >>> x = np.random.default_rng(0).normal(size=(64, 3)).astype("float32")
        >>> y = (x.sum(1) > 0).astype(int)
        >>> model = ember.Sequential([Dense(2, activation="softmax", input_shape=(3,))])
        >>> from ember.optim import EveryEpoch, Top1Accuracy, TrainingLoop
        >>> opt = Optimizer(model, (x, y), "sparse_categorical_crossentropy", SGD(0.5), MaxEpoch(3), 16)
        >>> isinstance(opt, TrainingLoop)
        True
        >>> opt = opt.set_validation(32, (x, y), EveryEpoch(), [Top1Accuracy()]).set_gradclip_l2norm(5.0)
        >>> _ = opt.set_progress(0).optimize()
        >>> opt.state["iteration"], opt.state["score"] > 0.8
        (12, True)
    """

    def __init__(self, model, engine, criterion, optim_method=None, end_trigger=None, batch_size=32):
        self.model, self.engine = model, engine
        self.criterion = ([losses_module.get(c) for c in criterion] if isinstance(criterion, (list, tuple))
                          else losses_module.get(criterion))
        self.optim_method = optim_method if optim_method is not None else SGD()
        if not isinstance(self.optim_method, OptimMethod):
            raise TypeError(f"optim_method: expected an ember.optim method (SGD, Adam, ...), got {optim_method!r}")
        self.set_end_when(end_trigger if end_trigger is not None else MaxEpoch(1))
        self.batch_size = check_batch_size(batch_size)
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
        self.shuffle = True
        self.max_retries = 5
        self.stop_training = False
        self.last_checkpoint = None
        self._resume_from = None
        self.run_id = uuid.uuid4().hex[:12]
        self.state = {"epoch": 1, "iteration": 0, "epoch_finished": False, "loss": None, "score": None,
                      "position": 0, "records": 0}

    # ---- setters (BigDL names) ----
    def set_end_when(self, trigger):
        if not isinstance(trigger, Trigger):
            raise TypeError(f"end_trigger: expected a Trigger (MaxEpoch, MaxIteration, ...), got {trigger!r}")
        self.end_trigger = trigger
        return self

    def set_optim_method(self, optim_method):
        if not isinstance(optim_method, OptimMethod):
            raise TypeError(f"optim_method: expected an ember.optim method (SGD, Adam, ...), got {optim_method!r}")
        self.optim_method = optim_method
        return self

    def set_learning_rate_schedule(self, schedule):
        if not isinstance(schedule, LearningRateSchedule):
            raise TypeError(f"expected a LearningRateSchedule (Step, Poly, ...), got {schedule!r}")
        self.schedule = schedule
        return self

    def set_validation(self, batch_size, val_set, trigger=None, val_method=None):
        """Validate on ``val_set`` whenever ``trigger`` fires (default: every epoch) with ``val_method``
        (a list of ValidationMethods or names; default Top1Accuracy). ``val_set``: ``(x, y)`` arrays, or
        (when training on Spark) an RDD of samples."""
        batch_size = check_batch_size(batch_size, "set_validation: batch_size")
        if trigger is not None and not isinstance(trigger, Trigger):
            raise TypeError(f"set_validation: trigger must be a Trigger (EveryEpoch, SeveralIteration...), "
                            f"got {trigger!r}")
        methods = [validation_module.get(m) for m in (val_method or ["accuracy"])]
        self.validation = Validation(self.engine.validation_data(val_set), int(batch_size), trigger or EveryEpoch(),
                                     methods)
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

    def gradient_clipping(self):
        """This run's ``Clipping``: BigDL's (``set_gradclip_const`` / ``set_gradclip_l2norm``) or the one the
        optimization method carries (Keras's ``clipnorm``, ``clipvalue`` or ``global_clipnorm``), not both."""
        method = self.optim_method
        o = method.options
        o.check(type(method).__name__)
        given = o.clipping_given()
        if given and (self.clip_const is not None or self.clip_norm is not None):
            raise ValueError(f"gradient clipping is set twice: the optimizer's {given[0]}={getattr(o, given[0])} and "
                             "set_gradclip_const/set_gradclip_l2norm (set_gradient_clipping_by_l2_norm...); keep one")
        if o.clipnorm:
            return Clipping(variable_norm=float(o.clipnorm))
        if o.global_clipnorm:
            return Clipping(global_norm=float(o.global_clipnorm))
        if o.clipvalue:
            return Clipping(const=(-float(o.clipvalue), float(o.clipvalue)))
        return Clipping(self.clip_const, self.clip_norm)

    def _check_schedules(self):
        if self.optim_method.options.schedule is not None and not isinstance(self.schedule, Default):
            raise ValueError(f"the optimizer's learning_rate is a schedule ({self.optim_method.options.schedule!r}) "
                             f"and set_learning_rate_schedule({self.schedule!r}) was called too; keep one")

    def _finalize_average(self):
        """Keras's ``finalize_variable_values``: with ``use_ema``, the weights become their moving average."""
        if not self.optim_method.options.use_ema or self._first_iteration == self.state["iteration"]:
            return
        average = self.engine.moving_average(self)
        if average is not None:
            self.model.parameters_flat()[...] = average

    def set_train_metrics(self, methods):
        """Validation methods also scored on the training batches (reported per epoch)."""
        self.train_metrics = [validation_module.get(m) for m in methods]
        return self

    def set_progress(self, log_every=50, bar=False, quiet=False):
        """A log line every ``log_every`` iterations (0: only per epoch); ``bar``: a tqdm bar per epoch
        (periodic lines on stderr when it is not a terminal); ``quiet``: progress lines at DEBUG level only."""
        self.log_every, self.progress_bar = int(log_every), bool(bar)
        self.log_level = logging.DEBUG if quiet else logging.INFO
        return self

    def set_shuffle(self, shuffle):
        """Visit the samples in a new random order every epoch (default), or in their stored order."""
        self.shuffle = bool(shuffle)
        return self

    def set_max_retries(self, max_retries):
        """How often a step that failed for an infrastructure reason is retried from the newest checkpoint."""
        if int(max_retries) != max_retries or max_retries < 0:
            raise ValueError(f"set_max_retries: expected an integer >= 0, got {max_retries!r}")
        self.max_retries = int(max_retries)
        return self

    def set_compression(self, kind):
        """Send parameter blocks as bfloat16 ("bf16", half the bytes) or exactly (None) — training on Spark."""
        self.engine.configure("compression", kind)
        return self

    def set_drop_module_property(self, drop_percentage, max_drop_percentage, batch_size=100, warmup_iteration=200,
                                 sub_batches=4):
        """BigDL's straggler dropping, training on Spark (see ``SparkEngine.set_drop``)."""
        self.engine.configure("drop", (drop_percentage, max_drop_percentage, batch_size, warmup_iteration,
                                       sub_batches))
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

    def driver_triggers(self):
        """The triggers at which the driver needs the model or the data between steps."""
        found = [self.end_trigger]
        if self.validation is not None:
            found.append(self.validation.trigger)
        if self.checkpoint_path is not None:
            found.append(self.checkpoint_trigger)
        if self.train_summary is not None and self.train_summary.get_summary_trigger("Parameters") is not None:
            found.append(self.train_summary.get_summary_trigger("Parameters"))
        return found

    # ---- checkpoints ----
    def save_checkpoint(self):
        """Write a checkpoint now (into the folder given to ``set_checkpoint``); returns its path."""
        if self.checkpoint_path is None:
            raise ValueError("save_checkpoint: call set_checkpoint(path, trigger) first")
        path = os.path.join(self.checkpoint_path, ckpt.checkpoint_name(self.state["iteration"]))
        optim_state, extra, order = self.engine.checkpoint_state(self)
        train_state = {k: self.state[k] for k in ("epoch", "iteration", "position", "records", "loss", "score")}
        train_state.update(engine_rng=config.get_rng_state(), schedule=self.schedule.state_dict(), **extra)
        train_state["run_id"] = self.run_id
        ckpt.save_checkpoint(path, self.model, optim_state, train_state, order)
        if self.checkpoint_overwrite:
            ckpt.prune_checkpoints(self.checkpoint_path, path, self.run_id)
        self.last_checkpoint = path
        logger.log(self.log_level, "checkpoint written: %s", path)
        return path

    def resume(self, path):
        """Continue from a checkpoint file, or from the newest checkpoint in a folder."""
        self._resume_from = ckpt.load_checkpoint(ckpt.resolve_checkpoint(path))
        return self

    def restore(self, loaded):
        """Set the counters, schedule and random state from a checkpoint; the engine sets the rest."""
        ts = loaded.train_state
        self.engine.restore(self, loaded)
        self.state.update({k: ts[k] for k in ("epoch", "iteration", "records", "loss", "score")})
        self.state["position"] = ts.get("position", 0)
        self.state["epoch_finished"] = False
        if "engine_rng" in ts:
            config.set_rng_state(ts["engine_rng"])
        self.schedule.load_state_dict(ts.get("schedule", {}))
        self.last_checkpoint = loaded.path
        self.run_id = ts.get("run_id") or self.run_id  # a resumed run continues that run's checkpoints
        logger.log(self.log_level, "resumed from %s at epoch %d, iteration %d", loaded.path, self.state["epoch"],
                   self.state["iteration"])

    # ---- the loop ----
    def optimize(self):
        """Train until the end trigger fires; returns the model (trained in place)."""
        if self.log_level >= logging.INFO:
            ensure_log_handler()
        lock = ckpt.FolderLock(self.checkpoint_path).acquire() if self.checkpoint_path is not None else None
        try:
            return self._optimize()
        finally:
            if lock is not None:
                lock.release()

    def _check_checkpoint_folder(self):
        """Refuse to mix runs: without ``overwrite``, a folder holding another run's checkpoints is refused."""
        if self.checkpoint_path is None or self.checkpoint_overwrite:
            return
        others = [p for p in ckpt.list_checkpoints(self.checkpoint_path) if ckpt.checkpoint_run_id(p) != self.run_id]
        if others:
            raise ckpt.FolderInUseError(
                f"checkpoint folder {self.checkpoint_path!r} holds checkpoints of another run "
                f"({os.path.basename(others[-1])}...): resume(folder) to continue that run, choose an empty "
                "folder, or set_checkpoint(..., overwrite=True) to replace them")

    def _optimize(self):
        if self._resume_from is None:
            self._check_checkpoint_folder()
        self._check_schedules()
        self.clipping = self.gradient_clipping()  # the clear errors before any work; the engines' steps use it
        self.engine.prepare(self)
        if self._resume_from is not None:
            self.restore(self._resume_from)
            self._resume_from = None
        self.model.train()
        self.stop_training = False
        self._start_time = time.perf_counter()
        self._epoch = None
        self._bar = None
        self._reported_until = self.state["iteration"]
        self._pending = [0, 0.0]  # records and seconds since the last progress report
        self._failures = 0
        self._first_iteration = self.state["iteration"]
        self._notify("on_train_begin")
        while True:
            try:
                self._train()
                self.engine.finish(self)
                break
            except InfrastructureFailure as failure:
                # NOTE: the driver's own reads after a job (checkpoint, validation, the final weights) fail so
                # when the blocks the job stored were lost with their executor: retried like a failed job
                self._retry(failure, self.state["iteration"])
        self._finalize_average()
        self._notify("on_train_end")
        return self.model

    def _train(self):
        try:
            while not self.end_trigger(self.state) and not self.stop_training:
                if self._epoch is None:
                    self._begin_epoch()
                segment = self._run_segment()
                self._epoch.metrics = add_results(self._epoch.metrics, segment.metrics)
                for record in segment.records:
                    self._after_iteration(record)
        finally:
            self._close_bar()
            for s in (self.train_summary, self.val_summary):
                if s is not None:
                    s.flush()

    def _begin_epoch(self):
        self._epoch = _Epoch(started=time.perf_counter())
        self.engine.begin_epoch(self)
        self._notify("on_epoch_begin", self.state["epoch"])
        if self.progress_bar and sys.stderr.isatty():
            from tqdm import tqdm

            self._bar = tqdm(total=self.engine.size, initial=self.state["position"],
                             desc=f"Epoch {self.state['epoch']}", unit="rec", leave=True, mininterval=0.5)

    def _close_bar(self):
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def _run_segment(self):
        """One segment of steps, retried after infrastructure failures (up to ``max_retries``)."""
        while True:
            start = self.state["iteration"]
            stop = self.engine.segment_end(self, start)
            try:
                return self.engine.run_segment(self, start, stop)
            except TrainingDivergedError as e:
                where = (f"the last good checkpoint is {self.last_checkpoint}" if self.last_checkpoint
                         else "no checkpoint was written")
                raise TrainingDivergedError(
                    f"{e} (epoch {self.state['epoch']}); stopped before applying the update ({where}). Try a lower "
                    "learning rate or gradient clipping (set_gradclip_l2norm).") from None
            except InfrastructureFailure as failure:
                self._retry(failure, start)

    def _retry(self, failure, start):
        """Count an infrastructure failure and continue from the newest checkpoint (or ``start``'s weights)."""
        self._failures += 1
        if self._failures > self.max_retries:
            raise RuntimeError(f"training failed {self._failures} times (max_retries={self.max_retries}); "
                               f"last failure ({failure.kind}): {failure}") from failure
        logger.warning("training step failed (%d/%d), %s failure: %s; retrying from %s", self._failures,
                       self.max_retries, failure.kind, str(failure)[:300],
                       self.last_checkpoint or f"the weights of iteration {start}")
        self.engine.recover(self, failure)

    def _after_iteration(self, record):
        st = self.state
        st["iteration"] = record.iteration
        st["position"] += record.records
        st["records"] += record.records
        st["loss"] = record.loss
        self._epoch.loss += record.loss * record.records
        self._epoch.records += record.records
        if self.train_summary is not None:
            self._write_train_summary(record)
        self._report(record)
        if self._ends_epoch(record):
            st["epoch"] += 1
            st["position"] = 0
            st["epoch_finished"] = True
        val_values = None
        if self.validation is not None and self.validation.trigger(st):
            val_values = self._validate()
        if self.checkpoint_path is not None and self.checkpoint_trigger(st):
            self.save_checkpoint()
        self._notify("on_iteration_end", dict(st))
        if st["epoch_finished"]:
            self._end_epoch(val_values)
            st["epoch_finished"] = False

    def _end_epoch(self, val_values):
        self._close_bar()
        e = self._epoch
        elapsed = time.perf_counter() - e.started
        logs = {"loss": e.loss / e.records}
        for m, r in zip(self.train_metrics, e.metrics or []):
            logs[m.name] = r.result()[0]
        if val_values is not None:
            logs.update({f"val_{k}": v for k, v in val_values.items()})
        logs["throughput"] = e.records / elapsed if elapsed > 0 else float("inf")
        logger.log(self.log_level, "[Epoch %d] done: %d records in %.2f s (%.1f records/second), loss %.6g",
                   self.state["epoch"] - 1, e.records, elapsed, logs["throughput"], logs["loss"])
        self._epoch = None
        self._notify("on_epoch_end", self.state["epoch"] - 1, logs)

    # ---- progress ----
    def _report(self, record):
        """Progress after a step the engine did not report live: a bar update or a periodic line."""
        if record.iteration <= self._reported_until:
            return
        self._pending[0] += record.records
        self._pending[1] += record.seconds
        st = self.state
        epoch_end = self._ends_epoch(record)
        due = self.log_every and record.iteration % self.log_every == 0
        if self._bar is not None or due or (self.progress_bar and epoch_end):
            self.progress(record.iteration, st["epoch"], min(st["position"], self.engine.size), self._pending[0],
                          self._pending[1], record.loss)

    def _ends_epoch(self, record):
        if record.ends_epoch is not None:  # a stream of batches knows when its epoch ends
            return record.ends_epoch
        return self.state["position"] >= self.engine.size

    def progress(self, iteration, epoch, position, records, seconds, loss):
        """Report progress up to ``iteration`` (``records`` samples in ``seconds`` since the last report):
        the bar, or BigDL's line. Engines call it while a segment runs."""
        self._reported_until = iteration
        self._pending = [0, 0.0]
        if self._bar is not None:
            self._bar.update(records)
            self._bar.set_postfix(loss=f"{loss:.4f}")
            return
        throughput = records / seconds if seconds > 0 else float("inf")
        line = (f"[Epoch {epoch} {position}/{self.engine.size}][Iteration {iteration}][Wall Clock "
                f"{time.perf_counter() - self._start_time:.1f}s] Trained {records} records in {seconds:.4f} seconds. "
                f"Throughput is {throughput:.1f} records/second. Loss is {loss:.6g}.")
        if self.progress_bar:  # a bar was asked for but stderr is not a terminal: plain lines
            print(line, file=sys.stderr, flush=True)
        else:
            logger.log(self.log_level, "%s", line)

    # ---- validation and summaries ----
    def _validate(self):
        v = self.validation
        results = self.engine.evaluate(self, v.data, v.batch_size, v.methods)
        values = {m.name: r.result()[0] for m, r in zip(v.methods, results)}
        self.state["score"] = results[0].result()[0]
        self.schedule.on_validation(self.state["score"], values.get("Loss"))
        if self.val_summary is not None:
            for name, value in values.items():
                self.val_summary.add_scalar(name, value, self.state["iteration"])
        epoch = self.state["epoch"] - 1 if self.state["epoch_finished"] else self.state["epoch"]
        logger.log(self.log_level, "[Epoch %d][Iteration %d] validation: %s", epoch, self.state["iteration"],
                   ", ".join(f"{k} is {val:.6g}" for k, val in values.items()))
        return values

    def _write_train_summary(self, record):
        s, it = self.train_summary, record.iteration
        throughput = record.records / record.seconds if record.seconds > 0 else float("inf")
        for name, value in (("Loss", record.loss), ("Throughput", throughput), ("LearningRate", record.learning_rate)):
            trigger = s.get_summary_trigger(name)
            if trigger is None or trigger(self.state):
                s.add_scalar(name, value, it)
        trigger = s.get_summary_trigger("Parameters")
        if trigger is not None and trigger(self.state):
            self.engine.sync_model(self)
            for w in self.model.trainable_weights:
                s.add_histogram(w.name, to_numpy(w), it)
