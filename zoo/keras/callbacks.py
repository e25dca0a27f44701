"""Keras callbacks: a base class to subclass, History, EarlyStopping, ModelCheckpoint and
LearningRateScheduler. Epochs are counted from 0, as in Keras."""
import math

import numpy as np


class Callback:
    """Subclass and override any of the ``on_*`` methods. ``self.model`` is the model being trained;
    set ``self.model.stop_training = True`` to stop after the current batch."""

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
    """Per-epoch logs: ``history[name]`` is a list with one value per epoch; ``epoch`` the epoch indices."""

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
    back the best epoch's weights."""

    def __init__(self, monitor="val_loss", min_delta=0.0, patience=0, mode="auto", baseline=None,
                 restore_best_weights=False):
        super().__init__()
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

    def on_train_end(self, logs=None):
        if self.restore_best_weights and self.best_weights is not None:
            self.model.set_weights(self.best_weights)


class ModelCheckpoint(Callback):
    """Save the model after each epoch to ``filepath`` (formatted with ``epoch`` (from 1) and the logs,
    e.g. ``"model-{epoch:02d}-{val_loss:.3f}.ember"``); with ``save_best_only`` only when ``monitor``
    improved. Writes are atomic."""

    def __init__(self, filepath, monitor="val_loss", save_best_only=False, mode="auto"):
        super().__init__()
        self.filepath, self.monitor, self.save_best_only = str(filepath), monitor, save_best_only
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
        self.model.save(self.filepath.format(epoch=epoch + 1, **logs))


class LearningRateScheduler(Callback):
    """Set the learning rate at the start of each epoch to ``schedule(epoch, lr)``."""

    def __init__(self, schedule):
        super().__init__()
        self.schedule = schedule

    def on_epoch_begin(self, epoch, logs=None):
        optimizer = self.model.optimizer
        lr = float(self.schedule(epoch, optimizer.learning_rate))
        if not math.isfinite(lr) or lr <= 0:
            raise ValueError(f"LearningRateScheduler: schedule returned {lr!r} at epoch {epoch}; expected > 0")
        optimizer.learning_rate = lr

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["lr"] = self.model.optimizer.learning_rate
