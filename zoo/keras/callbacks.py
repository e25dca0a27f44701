"""Keras callbacks: a base class to subclass, History, EarlyStopping, ModelCheckpoint,
LearningRateScheduler, ReduceLROnPlateau, CSVLogger, TensorBoard, TerminateOnNaN and LambdaCallback.
Epochs are counted from 0, as in Keras."""
import csv
import math
import os

import numpy as np

__all__ = ["CSVLogger", "Callback", "EarlyStopping", "History", "LambdaCallback", "LearningRateScheduler",
           "ModelCheckpoint", "ReduceLROnPlateau", "TensorBoard", "TerminateOnNaN"]


class Callback:
    """Base class of callbacks: subclass and override any of the ``on_*`` methods
    (``on_train_begin/end(logs)``, ``on_epoch_begin/end(epoch, logs)``, ``on_batch_end(batch, logs)``
    with ``logs["loss"]``), then pass instances to ``fit(callbacks=[...])``. ``fit`` does not call
    ``on_batch_begin``. ``self.model`` is the model being trained; set ``self.model.stop_training = True``
    (in ``on_batch_end`` or ``on_epoch_end``) to stop after that batch or epoch (on Spark, batches run
    in segments up to the epoch's end or the next trigger, and a stop takes effect when the segment ends).

    Example:
        >>> import numpy as np, ember
        >>> from ember.layers import Dense
        >>> ember.set_seed(0)
        >>> x = np.random.default_rng(0).normal(size=(32, 2)).astype("float32")
        >>> y = x @ np.array([[1.0], [-1.0]], "float32")
        >>> model = ember.Sequential([Dense(1, input_shape=(2,))])
        >>> _ = model.compile(optimizer=ember.optimizers.SGD(learning_rate=0.1), loss="mse")
        >>> from ember.callbacks import Callback
        >>> class StopAtLoss(Callback):
        ...     def on_epoch_end(self, epoch, logs=None):
        ...         if logs["loss"] < 0.5:
        ...             self.model.stop_training = True
        >>> history = model.fit(x, y, batch_size=8, epochs=50, verbose=0, callbacks=[StopAtLoss()])
        >>> len(history.epoch) < 50, history.history["loss"][-1] < 0.5
        (True, True)
    """

    def __init__(self):
        self.model = None
        self.params = {}

    def set_model(self, model):
        self.model = model

    def set_params(self, params):
        self.params = params

    def on_train_begin(self, logs=None):
        pass

    def on_train_end(self, logs=None):
        pass

    def on_epoch_begin(self, epoch, logs=None):
        pass

    def on_epoch_end(self, epoch, logs=None):
        pass

    def on_batch_begin(self, batch, logs=None):
        pass

    def on_batch_end(self, batch, logs=None):
        pass


class History(Callback):
    """Per-epoch logs: ``history[name]`` is a list with one value per epoch; ``epoch`` the epoch indices
    (from 0). ``fit`` returns one.

    Example:
        >>> import numpy as np, ember
        >>> from ember.layers import Dense
        >>> ember.set_seed(0)
        >>> x = np.random.default_rng(0).normal(size=(32, 2)).astype("float32")
        >>> y = x @ np.array([[1.0], [-1.0]], "float32")
        >>> model = ember.Sequential([Dense(1, input_shape=(2,))])
        >>> _ = model.compile(optimizer=ember.optimizers.SGD(learning_rate=0.1), loss="mse")
        >>> history = model.fit(x, y, batch_size=8, epochs=3, verbose=0)
        >>> type(history).__name__, history.epoch, sorted(history.history)
        ('History', [0, 1, 2], ['loss'])
        >>> bool(history.history["loss"][2] < history.history["loss"][0])
        True
    """

    def __init__(self):
        super().__init__()
        self.epoch, self.history = [], {}

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for k, v in (logs or {}).items():
            self.history.setdefault(k, []).append(v)


def _mode_better(monitor, mode):
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
    if mode == "auto":
        mode = "max" if ("acc" in monitor or "auc" in monitor.lower()) else "min"
    return mode


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs; optionally put
    back the best epoch's weights.

    Args:
        monitor: the log value to watch (``"val_loss"``, ``"loss"``, ``"val_accuracy"``...).
        min_delta: the least change that counts as an improvement.
        patience: epochs without improvement before stopping.
        mode: ``"min"``, ``"max"`` or ``"auto"`` (max for accuracy and AUC names, else min).
        baseline: a value the monitored one must beat (None: the first epoch's).
        restore_best_weights: at the end, set the weights of the best epoch.

    Example:
        >>> import numpy as np, ember
        >>> from ember.layers import Dense
        >>> ember.set_seed(0)
        >>> x = np.random.default_rng(0).normal(size=(32, 2)).astype("float32")
        >>> y = x @ np.array([[1.0], [-1.0]], "float32")
        >>> model = ember.Sequential([Dense(1, input_shape=(2,))])
        >>> _ = model.compile(optimizer=ember.optimizers.SGD(learning_rate=0.1), loss="mse")
        >>> from ember.callbacks import EarlyStopping
        >>> stop = EarlyStopping(monitor="loss", min_delta=10.0, patience=2)
        >>> history = model.fit(x, y, batch_size=8, epochs=20, verbose=0, callbacks=[stop])
        >>> len(history.epoch), stop.stopped_epoch  # no epoch improves by 10: stop after 1 + 2
        (3, 2)
    """

    def __init__(self, monitor="val_loss", min_delta=0.0, patience=0, verbose=0, mode="auto", baseline=None,
                 restore_best_weights=False):
        super().__init__()
        self.verbose = int(verbose)
        self.monitor, self.min_delta, self.patience = monitor, abs(float(min_delta)), int(patience)
        self.mode = _mode_better(monitor, mode)
        self.baseline, self.restore_best_weights = baseline, restore_best_weights
        self.stopped_epoch = None

    def _improved(self, value, reference):
        if reference is None:
            return True
        if self.mode == "min":
            return value < reference - self.min_delta
        return value > reference + self.min_delta

    def on_train_begin(self, logs=None):
        self.wait, self.best, self.best_weights, self.stopped_epoch = 0, self.baseline, None, None

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None:
            raise ValueError(f"EarlyStopping: metric {self.monitor!r} is not in the logs {sorted(logs or {})}; "
                             "validation metrics need validation_data or validation_split")
        if self._improved(value, self.best):
            self.best, self.wait = value, 0
            if self.restore_best_weights:
                self.best_weights = [np.array(w) for w in self.model.get_weights()]
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            self.model.stop_training = True
            if self.verbose:
                print(f"Epoch {epoch + 1}: early stopping")

    def on_train_end(self, logs=None):
        if self.restore_best_weights and self.best_weights is not None:
            self.model.set_weights(self.best_weights)


class ModelCheckpoint(Callback):
    """Save the model after each epoch to ``filepath`` (formatted with ``epoch`` (from 1) and the logs,
    e.g. ``"model-{epoch:02d}-{val_loss:.3f}.ember"``); with ``save_best_only`` only when ``monitor``
    improved. Writes are atomic; ``ember.load_model`` reads the files.

    Args:
        filepath: the file name pattern.
        monitor: the log value ``save_best_only`` watches.
        verbose: 1 prints a line per save.
        save_best_only: save only when ``monitor`` improved.
        save_weights_only: not supported (must be False): ember saves the whole model.
        mode: ``"min"``, ``"max"`` or ``"auto"``, as in ``EarlyStopping``.

    Example:
        >>> import numpy as np, ember
        >>> from ember.layers import Dense
        >>> ember.set_seed(0)
        >>> x = np.random.default_rng(0).normal(size=(32, 2)).astype("float32")
        >>> y = x @ np.array([[1.0], [-1.0]], "float32")
        >>> model = ember.Sequential([Dense(1, input_shape=(2,))])
        >>> _ = model.compile(optimizer=ember.optimizers.SGD(learning_rate=0.1), loss="mse")
        >>> import os, tempfile
        >>> from ember.callbacks import ModelCheckpoint
        >>> folder = tempfile.mkdtemp()
        >>> save = ModelCheckpoint(os.path.join(folder, "model-{epoch:02d}.ember"))
        >>> _ = model.fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=[save])
        >>> sorted(os.listdir(folder))
        ['model-01.ember', 'model-02.ember']
    """

    def __init__(self, filepath, monitor="val_loss", verbose=0, save_best_only=False, save_weights_only=False,
                 mode="auto"):
        super().__init__()
        if save_weights_only:
            raise ValueError("ModelCheckpoint: save_weights_only=True is not supported; ember writes the whole model "
                             "(architecture + weights) and load_model reads it back")
        self.filepath, self.monitor, self.save_best_only = os.fspath(filepath), monitor, save_best_only
        self.verbose = int(verbose)
        self.mode = _mode_better(monitor, mode)
        self.best = None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.save_best_only:
            value = logs.get(self.monitor)
            if value is None:
                raise ValueError(f"ModelCheckpoint: metric {self.monitor!r} is not in the logs {sorted(logs)}")
            better = self.best is None or (value < self.best if self.mode == "min" else value > self.best)
            if not better:
                return
            self.best = value
        path = self.filepath.format(epoch=epoch + 1, **logs)
        self.model.save(path)
        if self.verbose:
            print(f"Epoch {epoch + 1}: saving model to {path}")


class LearningRateScheduler(Callback):
    """Set the learning rate at the start of each epoch to ``schedule(epoch, lr)`` (epochs from 0);
    the rate of each epoch appears in the logs as ``lr``.

    Args:
        schedule: a function ``(epoch, lr) -> new lr`` (> 0).

    Example:
        >>> import numpy as np, ember
        >>> from ember.layers import Dense
        >>> ember.set_seed(0)
        >>> x = np.random.default_rng(0).normal(size=(32, 2)).astype("float32")
        >>> y = x @ np.array([[1.0], [-1.0]], "float32")
        >>> model = ember.Sequential([Dense(1, input_shape=(2,))])
        >>> _ = model.compile(optimizer=ember.optimizers.SGD(learning_rate=0.1), loss="mse")
        >>> from ember.callbacks import LearningRateScheduler
        >>> halve = LearningRateScheduler(lambda epoch, lr: lr / 2 if epoch else lr)
        >>> history = model.fit(x, y, batch_size=8, epochs=3, verbose=0, callbacks=[halve])
        >>> [round(v, 4) for v in history.history["lr"]]
        [0.1, 0.05, 0.025]
    """

    def __init__(self, schedule):
        super().__init__()
        self.schedule = schedule

    def on_epoch_begin(self, epoch, logs=None):
        optimizer = self.model.optimizer
        _settable_rate(optimizer, "LearningRateScheduler")
        lr = float(self.schedule(epoch, optimizer.learning_rate))
        if not math.isfinite(lr) or lr <= 0:
            raise ValueError(f"LearningRateScheduler: schedule returned {lr!r} at epoch {epoch}; expected > 0")
        optimizer.learning_rate = lr

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["lr"] = self.model.optimizer.learning_rate


def _settable_rate(optimizer, who):
    """Keras refuses to set the rate of an optimizer whose ``learning_rate`` is a schedule; so does ember."""
    schedule = getattr(getattr(optimizer, "options", None), "schedule", None)
    if schedule is not None:
        raise TypeError(f"{who}: the optimizer was created with a LearningRateSchedule or a function ({schedule!r}) "
                        "as its learning_rate, so its learning rate is not settable; use one of the two")


def _current_rate(optimizer):
    """The rate of the next update (a schedule's value at the updates made, as Keras's ``optimizer.learning_rate``)."""
    return optimizer.learning_rate_at() if hasattr(optimizer, "learning_rate_at") else optimizer.learning_rate


def _get_monitored(callback, logs):
    value = (logs or {}).get(callback.monitor)
    if value is None:
        raise ValueError(f"{type(callback).__name__}: metric {callback.monitor!r} is not in the logs "
                         f"{sorted(logs or {})}; validation metrics need validation_data or validation_split")
    return value


class ReduceLROnPlateau(Callback):
    """Multiply the learning rate by ``factor`` when ``monitor`` has not improved by ``min_delta`` for
    ``patience`` epochs, then wait ``cooldown`` epochs; never below ``min_lr`` (Keras's arguments).

    Example:
        >>> from ember.callbacks import ReduceLROnPlateau
        >>> cb = ReduceLROnPlateau(monitor="loss", factor=0.5, patience=1)
        >>> cb.factor, cb.mode
        (0.5, 'min')
    """

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, verbose=0, mode="auto", min_delta=1e-4,
                 cooldown=0, min_lr=0.0):
        super().__init__()
        if not 0 < factor < 1:
            raise ValueError(f"ReduceLROnPlateau: factor must be in (0, 1), got {factor!r}")
        self.monitor, self.factor, self.patience = monitor, float(factor), int(patience)
        self.verbose, self.mode = int(verbose), _mode_better(monitor, mode)
        self.min_delta, self.cooldown, self.min_lr = abs(float(min_delta)), int(cooldown), float(min_lr)

    def on_train_begin(self, logs=None):
        self.best, self.wait, self.cooldown_counter = None, 0, 0

    def _improved(self, value):
        if self.best is None:
            return True
        return value < self.best - self.min_delta if self.mode == "min" else value > self.best + self.min_delta

    def on_epoch_end(self, epoch, logs=None):
        value = _get_monitored(self, logs)
        optimizer = self.model.optimizer
        if logs is not None:
            logs["lr"] = _current_rate(optimizer)
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self._improved(value):
            self.best, self.wait = value, 0
            return
        if self.cooldown_counter > 0:
            return
        self.wait += 1
        if self.wait >= self.patience and optimizer.learning_rate > self.min_lr:
            _settable_rate(optimizer, "ReduceLROnPlateau")
            new_lr = max(optimizer.learning_rate * self.factor, self.min_lr)
            optimizer.learning_rate = new_lr
            if self.verbose:
                print(f"Epoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to {new_lr:.6g}.")
            self.cooldown_counter, self.wait = self.cooldown, 0


class CSVLogger(Callback):
    """Write one CSV row per epoch: ``epoch`` and every log value (columns fixed by the first epoch).

    Args:
        filename: the CSV file.
        separator: the field separator.
        append: add to an existing file instead of replacing it.

    Example:
        >>> import numpy as np, ember
        >>> from ember.layers import Dense
        >>> ember.set_seed(0)
        >>> x = np.random.default_rng(0).normal(size=(32, 2)).astype("float32")
        >>> y = x @ np.array([[1.0], [-1.0]], "float32")
        >>> model = ember.Sequential([Dense(1, input_shape=(2,))])
        >>> _ = model.compile(optimizer=ember.optimizers.SGD(learning_rate=0.1), loss="mse")
        >>> import csv, os, tempfile
        >>> from ember.callbacks import CSVLogger
        >>> path = os.path.join(tempfile.mkdtemp(), "log.csv")
        >>> _ = model.fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=[CSVLogger(path)])
        >>> with open(path) as f:
        ...     rows = list(csv.reader(f))
        >>> rows[0], [r[0] for r in rows[1:]]
        (['epoch', 'loss'], ['0', '1'])
    """

    def __init__(self, filename, separator=",", append=False):
        super().__init__()
        self.filename, self.separator, self.append = os.fspath(filename), separator, bool(append)
        self.keys = None

    def on_train_begin(self, logs=None):
        exists = self.append and os.path.exists(self.filename) and os.path.getsize(self.filename) > 0
        self._file = open(self.filename, "a" if self.append else "w", newline="")  # noqa: SIM115 - closed at train end
        self._header_written = exists
        self.keys = None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.keys is None:
            self.keys = sorted(logs)
        writer = csv.writer(self._file, delimiter=self.separator)
        if not self._header_written:
            writer.writerow(["epoch"] + self.keys)
            self._header_written = True
        writer.writerow([epoch] + [logs.get(k, "NA") for k in self.keys])
        self._file.flush()

    def on_train_end(self, logs=None):
        self._file.close()


class TensorBoard(Callback):
    """Write the epoch logs as TensorBoard scalars, as Keras does: ``epoch_<name>`` under ``log_dir/train``
    and the ``val_`` values under ``log_dir/validation``. Per-iteration loss, throughput and learning rate:
    ``model.set_tensorboard(log_dir, app_name)`` (BigDL's summaries).

    Args:
        log_dir: the folder to point TensorBoard at.
        **kwargs: Keras' ``histogram_freq``, ``write_graph``, ``update_freq``, ``write_images`` are accepted
            and ignored; any other raises ``TypeError``.

    Example:
        >>> import numpy as np, ember
        >>> from ember.layers import Dense
        >>> ember.set_seed(0)
        >>> x = np.random.default_rng(0).normal(size=(32, 2)).astype("float32")
        >>> y = x @ np.array([[1.0], [-1.0]], "float32")
        >>> model = ember.Sequential([Dense(1, input_shape=(2,))])
        >>> _ = model.compile(optimizer=ember.optimizers.SGD(learning_rate=0.1), loss="mse")
        >>> import tempfile
        >>> from ember.callbacks import TensorBoard
        >>> from ember.optim.summary import read_scalars
        >>> log_dir = tempfile.mkdtemp()
        >>> _ = model.fit(x, y, batch_size=8, epochs=2, verbose=0, validation_data=(x, y),
        ...               callbacks=[TensorBoard(log_dir)])
        >>> [step for step, _, _ in read_scalars(f"{log_dir}/train", "epoch_loss")]
        [0, 1]
        >>> [step for step, _, _ in read_scalars(f"{log_dir}/validation", "epoch_loss")]
        [0, 1]
    """

    def __init__(self, log_dir="logs", **kwargs):
        super().__init__()
        unsupported = sorted(k for k, v in kwargs.items() if v and k not in ("histogram_freq", "write_graph",
                                                                            "update_freq", "write_images"))
        if unsupported:
            raise TypeError(f"TensorBoard: unsupported argument(s) {unsupported}")
        self.log_dir = os.fspath(log_dir)

    def on_train_begin(self, logs=None):
        from ember.optim.summary import TrainSummary, ValidationSummary

        self._train, self._val = TrainSummary(self.log_dir, ""), ValidationSummary(self.log_dir, "")

    def on_epoch_end(self, epoch, logs=None):
        for name, value in (logs or {}).items():
            if name.startswith("val_"):
                self._val.add_scalar(f"epoch_{name[4:]}", value, epoch)
            else:
                self._train.add_scalar(f"epoch_{name}", value, epoch)

    def on_train_end(self, logs=None):
        self._train.close()
        self._val.close()


class TerminateOnNaN(Callback):
    """Stop training when the loss becomes NaN or infinite. (ember's loop stops before applying such a
    step; with this callback ``fit`` then returns normally, with the last good weights, instead of raising.)

    Example:
        >>> import numpy as np, ember
        >>> from ember.layers import Dense
        >>> ember.set_seed(0)
        >>> x = np.random.default_rng(0).normal(size=(32, 2)).astype("float32")
        >>> y = x @ np.array([[1.0], [-1.0]], "float32")
        >>> model = ember.Sequential([Dense(1, input_shape=(2,))])
        >>> _ = model.compile(optimizer=ember.optimizers.SGD(learning_rate=0.1), loss="mse")
        >>> from ember.callbacks import TerminateOnNaN
        >>> y_bad = np.full_like(y, 1e30)  # a loss beyond float32
        >>> with np.errstate(over="ignore", invalid="ignore"):
        ...     history = model.fit(x, y_bad, batch_size=8, epochs=3, verbose=0, callbacks=[TerminateOnNaN()])
        TerminateOnNaN: training loss became inf at iteration 1 (epoch 1); stopped before applying the update ...
        >>> bool(np.isfinite(model.get_weights()[0]).all())
        True
    """

    def on_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            print(f"Batch {batch}: Invalid loss, terminating training")
            self.model.stop_training = True


class LambdaCallback(Callback):
    """A callback from functions: ``on_epoch_begin(epoch, logs)``, ``on_epoch_end(epoch, logs)``,
    ``on_batch_begin(batch, logs)``, ``on_batch_end(batch, logs)``, ``on_train_begin(logs)``, ``on_train_end(logs)``
    (``fit`` calls all but ``on_batch_begin``).

    Example:
        >>> from ember.callbacks import LambdaCallback
        >>> seen = []
        >>> cb = LambdaCallback(on_epoch_end=lambda epoch, logs: seen.append(epoch))
        >>> cb.on_epoch_end(0, {}); seen
        [0]
    """

    def __init__(self, on_epoch_begin=None, on_epoch_end=None, on_batch_begin=None, on_batch_end=None,
                 on_train_begin=None, on_train_end=None):
        super().__init__()
        for name, fn in (("on_epoch_begin", on_epoch_begin), ("on_epoch_end", on_epoch_end),
                         ("on_batch_begin", on_batch_begin), ("on_batch_end", on_batch_end),
                         ("on_train_begin", on_train_begin), ("on_train_end", on_train_end)):
            if fn is not None:
                if not callable(fn):
                    raise TypeError(f"LambdaCallback: {name} must be callable, got {fn!r}")
                setattr(self, name, fn)
