"""Keras's training surface of ``ember.Sequential`` and ``ember.Model``: ``compile``, ``fit``, ``evaluate``,
``predict``, ``predict_classes``, and BigDL's ``set_tensorboard``, ``set_checkpoint`` and gradient
clipping setters. The training itself is ``ember.optim``'s loop (locally or on Spark); this module only
translates. The classes are the ones of ``ember.layers`` (one Sequential, one Model): they declare these
methods and this module registers their implementation.
"""
import copy

import numpy as np

from ember.layers import containers, serialization
from ember.layers import losses as losses_module
from ember.optim import methods as methods_module
from ember.optim import validation as validation_module
from ember.optim.dataset import ArrayDataset, class_weights_of, is_spark_data
from ember.optim.loop import TrainingDivergedError, evaluate_dataset, predict_arrays
from ember.optim.optimizer import Optimizer
from ember.optim.stream import BatchStream, evaluate_stream, is_batch_source, predict_stream
from ember.optim.summary import TrainSummary, ValidationSummary
from ember.optim.triggers import EveryEpoch, MaxEpoch
from ember.zoo.keras import optimizers as keras_optimizers
from ember.zoo.keras.callbacks import Callback, History, TerminateOnNaN

# Keras's names give Keras's optimizers (ember.zoo.keras.optimizers: Keras's defaults and epsilon placement)
_OPTIMIZERS = {"sgd": keras_optimizers.SGD, "adam": keras_optimizers.Adam, "adamw": keras_optimizers.AdamW,
               "adamax": keras_optimizers.Adamax, "rmsprop": keras_optimizers.RMSprop,
               "adagrad": keras_optimizers.Adagrad, "adadelta": keras_optimizers.Adadelta,
               "lbfgs": methods_module.LBFGS}


def get_optimizer(identifier):
    """An optimization method from an instance or a name ("sgd", "adam", "rmsprop", ...), with its
    default settings; ``ember.optimizers.get`` is this function, as ``keras.optimizers.get``.

    Args:
        identifier: an ``ember.optim`` method (returned as is) or a name.

    Example:
        >>> from ember import optimizers
        >>> optimizers.get("adam")  # Keras's defaults
        Adam(learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-07, weight_decay=0.0, keras_epsilon=True)
        >>> sgd = optimizers.SGD(learning_rate=0.1)
        >>> optimizers.get(sgd) is sgd
        True
    """
    if isinstance(identifier, methods_module.OptimMethod):
        return identifier
    if isinstance(identifier, str) and identifier.lower() in _OPTIMIZERS:
        return _OPTIMIZERS[identifier.lower()]()
    raise ValueError(f"unknown optimizer {identifier!r}: expected one of {sorted(_OPTIMIZERS)} or an "
                     "ember.optim method such as SGD(learning_rate=0.01, momentum=0.9)")


def _named_metric(identifier):
    """A validation method; one given by name reports under that name ("accuracy", as in Keras)."""
    method = validation_module.get(identifier)
    if isinstance(identifier, str):  # a fresh instance: renaming it touches nobody else's
        method.name = identifier
    return method


def _output_names(model):
    """The names Keras gives a model's outputs (their layers' names); [] for a model not built yet."""
    return [s.history[0].name for s in (getattr(model, "outputs", None) or [])]


def _per_output(model, metrics, arg):
    """``compile``'s metrics as (output index or None, identifier) pairs: a flat list for a model with one
    output (None); Keras's list with one entry (a metric, a list of them, or None) per output, or dict keyed
    by output name, scores each output, in the outputs' order. A flat, non-empty list for a model with several
    outputs is refused with Keras 3's words."""
    if metrics is None:
        return []
    names = _output_names(model)
    if (len(names) > 1 and isinstance(metrics, (list, tuple)) and metrics
            and not any(m is None or isinstance(m, (list, tuple)) for m in metrics)):
        raise ValueError(f"Invalid `{arg}`. `{arg}` should contain metrics objects and either be a dict or a list "
                         f"matching the output names of the functional model {names} or match the output structure "
                         f"of the model: {['X'] * len(names)}.\nReceived: {arg}={list(metrics)!r} (one entry per "
                         f"output, e.g. {arg}=[['accuracy'], None] or {{{names[0]!r}: ['accuracy']}})")
    if isinstance(metrics, dict) or (isinstance(metrics, (list, tuple)) and
                                     any(m is None or isinstance(m, (list, tuple)) for m in metrics)):
        names = _output_names(model)
        if isinstance(metrics, dict):
            unknown = [k for k in metrics if k not in names]
            if unknown:
                raise ValueError(f"compile: {arg} names output(s) {unknown} but the model's outputs are {names}")
            per = [metrics.get(n) for n in names]
        else:
            if len(metrics) != len(names):
                raise ValueError(f"compile: {arg} as a list of lists needs one entry (a list of metrics, or None) per "
                                 f"output: the model has {len(names)} ({names}), got {len(metrics)}")
            per = list(metrics)
        return [(k, m) for k, entry in enumerate(per) if entry is not None
                for m in (entry if isinstance(entry, (list, tuple)) else [entry])]
    if not isinstance(metrics, (list, tuple)):
        raise ValueError(f"compile: {arg} must be a list, e.g. {arg}=['accuracy'] (or, for a model with several "
                         f"outputs, a list of lists or a dict keyed by output name), got {metrics!r}")
    return [(None, m) for m in metrics]


def _bind(model, method, index):
    """``method`` scoring output ``index`` of a model with several, named ``<output>_<metric>`` as Keras names it."""
    names = _output_names(model)
    if index is None or len(names) < 2:
        return method
    method = copy.copy(method)  # an instance the user gave may score another output too
    method.output_index = index
    method.name = f"{names[index]}_{method.name}"
    return method


class WeightedLoss(losses_module.Loss):
    """One output's loss times its ``compile(loss_weights=...)`` weight (Keras's ``loss_weights``): what the total
    training loss (the sum over outputs) and the reported ``loss`` add up; ``<output>_loss`` stays unweighted.

    Example:
        >>> import numpy as np
        >>> WeightedLoss("mse", 3.0)(np.zeros((2, 1)), np.ones((2, 1))).item()
        3.0
    """

    def __init__(self, loss, weight):
        self.loss = _keras_loss_object(loss)
        self.weight = float(weight)
        self.name = self.loss.name

    def __call__(self, y_true, y_pred, sample_weight=None):
        return self.loss(y_true, y_pred, sample_weight) * self.weight

    def per_sample(self, y_true, y_pred):
        return self.loss.per_sample(y_true, y_pred) * self.weight

    def get_config(self):
        return {"loss": self.loss.get_config(), "weight": self.weight}

    def __repr__(self):
        return f"WeightedLoss({self.loss!r}, {self.weight})"


def _compiled_loss(model, loss, loss_weights):
    """``compile``'s loss as the loop takes it: one loss, or a list with one per output (from Keras's list or dict
    keyed by output name, in the outputs' order), each weighted by ``loss_weights`` (a list in that order, a dict
    keyed by output name, or a number for a model with one output)."""
    names = _output_names(model)
    if isinstance(loss, dict):
        if sorted(loss) != sorted(names) or not names:
            raise ValueError(f"Expected keys {names} in loss dict, but found loss.keys()={list(loss)} (compile: a "
                             "dict of losses needs one entry per output name)")
        loss = [loss[n] for n in names] if len(names) > 1 else loss[names[0]]
    losses = [_keras_loss_object(x) for x in loss] if isinstance(loss, (list, tuple)) else _keras_loss_object(loss)
    if loss_weights is None:
        return losses
    several = isinstance(losses, list)
    count = len(losses) if several else 1
    if isinstance(loss_weights, dict):
        if sorted(loss_weights) != sorted(names[:count]) or len(names) != count:
            raise ValueError(f"compile: loss_weights as a dict needs one weight per output name {names}, got "
                             f"keys {list(loss_weights)}")
        weights = [loss_weights[n] for n in names]
    elif isinstance(loss_weights, (list, tuple)):
        if len(loss_weights) != count:
            raise ValueError(f"`loss_weights` must match the number of losses, got {count} losses and "
                             f"{len(loss_weights)} weights.")
        weights = list(loss_weights)
    elif isinstance(loss_weights, (int, float)) and not isinstance(loss_weights, bool) and not several:
        weights = [loss_weights]
    else:
        raise ValueError(f"compile: loss_weights must be a list (one weight per output), a dict keyed by output name "
                         f"or, for a model with one output, a number; got {loss_weights!r}")
    for w in weights:
        if isinstance(w, bool) or not isinstance(w, (int, float)):
            raise ValueError(f"compile: each loss weight must be a number, got {w!r}")
    weighted = [WeightedLoss(c, w) for c, w in zip(losses if several else [losses], weights)]
    return weighted if several else weighted[0]


def _output_losses(model, loss):
    """Keras's per-output losses of a model with several outputs (``<output>_loss``, not weighted by
    ``loss_weights``), reported beside the total."""
    names = _output_names(model)
    if not isinstance(loss, list) or len(loss) < 2 or len(names) != len(loss):
        return []
    methods = []
    for k, criterion in enumerate(loss):
        method = validation_module.Loss(criterion.loss if isinstance(criterion, WeightedLoss) else criterion)
        method.name, method.output_index = f"{names[k]}_loss", k
        method.keras_loss = method.output_loss = True  # weighted as the loss; the penalties are in the total only
        methods.append(method)
    return methods


def _saved_structure(metrics):
    """``_saved_names`` of each entry of Keras's per-output structures (list of lists, dict), else of the list."""
    if isinstance(metrics, dict):
        return {k: _saved_structure(v if isinstance(v, (list, tuple)) else [v]) for k, v in metrics.items()}
    if isinstance(metrics, (list, tuple)) and any(m is None or isinstance(m, (list, tuple)) for m in metrics):
        return [None if m is None else _saved_structure(m if isinstance(m, (list, tuple)) else [m]) for m in metrics]
    return _saved_names(metrics)


class _CallbackBridge:
    """Forwards the optimizer's events to Keras callbacks (epochs from 0) and their stop requests back."""

    def __init__(self, model, callbacks):
        self.model, self.callbacks = model, callbacks
        self.batch = 0

    def _check_stop(self, optimizer):
        if getattr(self.model, "stop_training", False):
            optimizer.stop_training = True

    def on_train_begin(self, optimizer):
        for c in self.callbacks:
            c.on_train_begin({})

    def on_epoch_begin(self, optimizer, epoch):
        self.batch = 0
        for c in self.callbacks:
            c.on_epoch_begin(epoch - 1, {})

    def on_iteration_end(self, optimizer, state):
        logs = {"loss": state["loss"], "size": None}
        for c in self.callbacks:
            c.on_batch_end(self.batch, logs)
        self.batch += 1
        self._check_stop(optimizer)

    def on_epoch_end(self, optimizer, epoch, logs):
        logs = {k: v for k, v in logs.items() if k != "throughput"}
        for c in self.callbacks:
            c.on_epoch_end(epoch - 1, logs)
        self._check_stop(optimizer)

    def on_train_end(self, optimizer):
        for c in self.callbacks:
            c.on_train_end({})


def _saved_names(metrics):
    """The metrics that a saved model can name again: names, and ValidationMethods by class name."""
    return [m if isinstance(m, str) else type(m).__name__ for m in (metrics or [])
            if not callable(m) or isinstance(m, validation_module.ValidationMethod)]


def _require_compiled(model, what):
    if model.optimizer is None:
        raise ValueError(f"{what}: call compile(optimizer, loss, metrics) first")


def _dataset(x, y, what, sample_weight=None):
    if is_spark_data(x):
        raise TypeError(f"{what}: this call takes NumPy arrays; a Spark RDD or DataFrame goes to fit")
    if y is None:
        raise ValueError(f"{what}: give targets y")
    return ArrayDataset(x, y, sample_weight=sample_weight)


def _targets(model, y, what):
    """Keras's targets as a dict keyed by output name, as the list in the outputs' order; anything else as is."""
    if not isinstance(y, dict):
        return y
    names = _output_names(model)
    if sorted(y) != sorted(names):
        raise ValueError(f"{what}: targets given as a dict need one entry per output name {names}, got keys "
                         f"{list(y)}")
    return [y[n] for n in names] if len(names) > 1 else y[names[0]]


def _fit_weights(y, sample_weight, class_weight):
    if class_weight is not None and sample_weight is not None:
        raise ValueError("fit: give class_weight or sample_weight, not both (Keras refuses them together)")
    if class_weight is not None:
        return class_weights_of(y, class_weight)
    return sample_weight


def _training_data(x, y, sample_weight, class_weight, steps_per_epoch):
    """(what the Optimizer trains on, samples per epoch or None)."""
    if is_spark_data(x):
        if class_weight is not None or sample_weight is not None:
            raise ValueError("fit: class_weight and sample_weight take NumPy arrays; on an RDD or DataFrame "
                             "they are not supported (weight the samples in the data instead)")
        if steps_per_epoch is not None:
            raise ValueError("fit: steps_per_epoch applies to generators and Sequences; on an RDD or DataFrame "
                             "an epoch is every sample")
        return x, None
    if is_batch_source(x):
        if y is not None or sample_weight is not None:
            raise ValueError("fit: with a generator or Sequence, the batches carry the targets and sample "
                             "weights: give x only (batches of (x, y) or (x, y, sample_weight))")
        return BatchStream(x, steps_per_epoch, "fit", class_weight), None
    if steps_per_epoch is not None:
        raise ValueError("fit: steps_per_epoch applies to generators and Sequences; with arrays an epoch is "
                         "every sample (choose batch_size and epochs)")
    data = _dataset(x, y, "fit", _fit_weights(y, sample_weight, class_weight))
    return data, len(data)


def _validation_set(validation_data):
    """An ArrayDataset from ``(x_val, y_val)`` or ``(x_val, y_val, val_sample_weight)``."""
    if not (isinstance(validation_data, (tuple, list)) and len(validation_data) in (2, 3)):
        raise ValueError("fit: validation_data must be a tuple (x_val, y_val) or (x_val, y_val, val_sample_weight), "
                         "an RDD or a DataFrame")
    weights = validation_data[2] if len(validation_data) == 3 else None
    return ArrayDataset(validation_data[0], validation_data[1], sample_weight=weights)


def _run(model, optimizer, callbacks, params):
    """Apply the settings (summaries, checkpoints, clipping), hook up the callbacks, train."""
    if model._tensorboard is not None:
        optimizer.set_train_summary(model._tensorboard[0]).set_val_summary(model._tensorboard[1])
    if model._checkpoint is not None:
        optimizer.set_checkpoint(model._checkpoint[0], EveryEpoch(), overwrite=model._checkpoint[1])
    if "const" in model._clip:
        optimizer.set_gradclip_const(*model._clip["const"])
    if "l2" in model._clip:
        optimizer.set_gradclip_l2norm(model._clip["l2"])
    history = History()
    callbacks = list(callbacks or [])
    for c in callbacks:
        if not isinstance(c, Callback):
            raise TypeError(f"fit: callbacks must be ember.zoo.keras.callbacks.Callback instances, got {c!r}")
    callbacks.append(history)
    for c in callbacks:
        c.set_model(model)
        c.set_params(params)
    model.stop_training = False
    optimizer.add_listener(_CallbackBridge(model, callbacks))
    try:
        optimizer.optimize()
    except TrainingDivergedError as e:
        if not any(isinstance(c, TerminateOnNaN) for c in callbacks):
            raise
        print(f"TerminateOnNaN: {e}")  # Keras's TerminateOnNaN stops quietly; the loop stopped before the bad update
        for c in callbacks:
            c.on_train_end({})
    model.history = history
    return history


class KerasTraining:
    """The training methods of every ``ember.layers.Model`` (registered on it below)."""

    def compile(self, optimizer="sgd", loss=None, metrics=None, weighted_metrics=None, loss_weights=None):
        """Choose the optimizer (name or ember.optim method), the loss (name, object, or for a model with several
        outputs a list with one per output or a dict keyed by output name, as Keras's) and the metrics
        ("accuracy", "top5", "mae", "mse", "auc" or ValidationMethods).

        ``loss_weights`` (Keras's): a list with one weight per output, a dict keyed by output name, or a number for a
        model with one output. The training loss and the reported ``loss`` are ``sum(weight * output loss)``; each
        ``<output>_loss`` is reported unweighted, as Keras reports it.

        For a model with several outputs, ``metrics`` (and ``weighted_metrics``) may be Keras 3's per-output forms:
        a list with one entry per output (a metric, a list of them, or None) or a dict keyed by output name
        (``{"out2": ["accuracy"]}``); they report as ``<output>_<metric>`` (``out2_accuracy``), beside the total
        ``loss`` and each output's ``<output>_loss``, in History, validation (``val_...``) and ``evaluate``. A flat,
        non-empty list for several outputs is refused with Keras 3's ValueError ("Invalid `metrics`...").

        ``weighted_metrics`` (Keras's): metrics weighted by the samples' ``sample_weight`` / ``class_weight``
        (``sum(w * value) / sum(w)``) in ``fit``, its validation and ``evaluate``; ``metrics`` ignore the
        weights. Without weights (or on Spark, which takes none) they equal the plain metrics. A weighted
        metric whose name is already taken reports as ``weighted_<name>``, as in Keras."""
        if loss is None:
            raise ValueError("compile: give a loss, e.g. loss='sparse_categorical_crossentropy'")
        plain = _per_output(self, metrics, "metrics")
        weighted = _per_output(self, weighted_metrics, "weighted_metrics")
        self.optimizer = get_optimizer(optimizer)
        self.loss = _compiled_loss(self, loss, loss_weights)
        self.metrics = _output_losses(self, self.loss) + [_bind(self, _named_metric(m), k) for k, m in plain]
        taken = {"loss"} | {m.name for m in self.metrics}
        for k, m in weighted:
            method = copy.copy(_named_metric(m))  # a given instance may also be among the plain metrics
            method.weighted = True
            bound = _bind(self, method, k)
            if bound.name in taken:  # Keras: weighted_accuracy, out2_weighted_accuracy
                method.name = f"weighted_{method.name}"
                bound = _bind(self, method, k)
            taken.add(bound.name)
            self.metrics.append(bound)
        self._metric_names = _saved_structure(metrics)
        self._weighted_metric_names = _saved_structure(weighted_metrics)
        self._clip = {}
        self._tensorboard = self._checkpoint = None
        self.stop_training = False
        return self

    def training_config(self):
        """What ``compile`` was given, as JSON-able data (saved with the model), or None when not compiled."""
        if self.optimizer is None:
            return None
        losses = self.loss if isinstance(self.loss, list) else [self.loss]
        weights = [c.weight if isinstance(c, WeightedLoss) else 1.0 for c in losses]
        losses = [c.loss if isinstance(c, WeightedLoss) else c for c in losses]
        optimizer = {"class_name": type(self.optimizer).__name__, "learning_rate": self.optimizer.learning_rate,
                     "hyper": dict(self.optimizer.hyper)}
        if type(self.optimizer).__module__ == keras_optimizers.__name__:
            optimizer["keras"] = True  # Keras's class (its SGD's momentum differs from BigDL's when the rate changes)
        options = keras_optimizers.keras_options_config(self.optimizer)
        if options:  # Keras's clipping, weight average and schedule (a schedule by its get_config)
            optimizer["options"] = options
        return {"optimizer": optimizer,
                "loss": [{"name": c.name, "config": c.get_config()} for c in losses],
                "loss_is_list": isinstance(self.loss, list),
                "loss_weights": weights if any(isinstance(c, WeightedLoss) for c in
                                               (self.loss if isinstance(self.loss, list) else [self.loss])) else None,
                "metrics": copy.deepcopy(getattr(self, "_metric_names", [])),
                "weighted_metrics": copy.deepcopy(getattr(self, "_weighted_metric_names", []))}

    def compile_from_config(self, config, custom_objects=None):
        """Compile as ``training_config()`` describes (what ``load_model`` does for a compiled model);
        ``custom_objects`` names the classes of your own learning-rate schedules."""
        spec = config["optimizer"]
        cls = _OPTIMIZERS.get(spec["class_name"].lower())
        keras = spec.get("keras") or "keras_epsilon" in spec["hyper"] or "keras_momentum" in spec["hyper"]
        if cls is not None and not keras:  # BigDL's (ember.optim's) of the same name
            cls = getattr(methods_module, cls.__name__, cls)
        if cls is None:
            raise ValueError(f"the saved model was compiled with an unknown optimizer {spec['class_name']!r}")
        method = cls.__new__(cls)
        method.load_state_dict({"class_name": spec["class_name"], "learning_rate": spec["learning_rate"],
                                "hyper": spec["hyper"], "state": {}})
        if "options" in spec:
            keras_optimizers.set_keras_options(method, spec["options"], custom_objects)
        losses = [type(losses_module.get(c["name"]))(**c["config"]) for c in config["loss"]]
        def methods(names):
            if isinstance(names, dict):
                return {k: methods(v) for k, v in names.items()}
            if any(m is None or isinstance(m, list) for m in names):  # one entry per output
                return [None if m is None else methods(m) for m in names]
            return [m if m.lower() in validation_module.metric_names() else getattr(validation_module, m)()
                    for m in names]

        weights = config.get("loss_weights")
        return self.compile(method, losses if config["loss_is_list"] else losses[0], methods(config["metrics"]),
                            methods(config.get("weighted_metrics", [])),
                            loss_weights=None if weights is None else weights if config["loss_is_list"] else weights[0])

    # ---- BigDL-style settings ----
    def set_tensorboard(self, log_dir, app_name):
        """Write TensorBoard summaries of the next ``fit`` calls to ``log_dir/app_name/{train,validation}``."""
        _require_compiled(self, "set_tensorboard")
        self._tensorboard = (TrainSummary(log_dir, app_name), ValidationSummary(log_dir, app_name))

    def get_train_summary(self, tag):
        """The (step, value, wall_time) triples of a training scalar ("Loss", "Throughput", "LearningRate")."""
        if self._tensorboard is None:
            raise ValueError("get_train_summary: call set_tensorboard(log_dir, app_name) before fit")
        return self._tensorboard[0].read_scalar(tag)

    def get_validation_summary(self, tag):
        if self._tensorboard is None:
            raise ValueError("get_validation_summary: call set_tensorboard(log_dir, app_name) before fit")
        return self._tensorboard[1].read_scalar(tag)

    def set_checkpoint(self, path, over_write=True):
        """Write a checkpoint (model + optimizer state + counters) to folder ``path`` after every epoch."""
        _require_compiled(self, "set_checkpoint")
        self._checkpoint = (path, over_write)

    def set_gradient_clipping_by_l2_norm(self, clip_norm):
        _require_compiled(self, "set_gradient_clipping_by_l2_norm")
        self._clip["l2"] = float(clip_norm)

    def set_constant_gradient_clipping(self, min_value, max_value):
        _require_compiled(self, "set_constant_gradient_clipping")
        self._clip["const"] = (float(min_value), float(max_value))

    def clear_gradient_clipping(self):
        self._clip = {}

    # ---- fit / evaluate / predict ----
    def fit(self, x, y=None, batch_size=32, epochs=1, verbose=1, callbacks=None, validation_split=0.0,
            validation_data=None, shuffle=True, class_weight=None, sample_weight=None, initial_epoch=0,
            steps_per_epoch=None, validation_steps=None, nb_epoch=None, feature_cols=None, label_cols=None):
        """Train for ``epochs`` (BigDL alias ``nb_epoch``) epochs; returns a History.

        Args:
            x, y: NumPy arrays (lists of arrays for several inputs / outputs); or ``x`` a Python generator
                or iterator of ``(x, y)`` / ``(x, y, sample_weight)`` batches, or a ``keras.utils.Sequence``
                (``y`` unused; an epoch is ``steps_per_epoch`` batches, else ``len(sequence)``, else until the
                generator stops); or ``x`` a Spark RDD of (features, label) samples, or a DataFrame with
                ``feature_cols``/``label_cols``, which trains on the cluster (``y`` unused; per-batch
                callbacks are not called there).
            validation_data: ``(x_val, y_val)`` or ``(x_val, y_val, val_sample_weight)``, or a generator or
                Sequence of batches (``validation_steps`` of them, else all), scored after every epoch.
            validation_split: the fraction of (x, y) held out for validation (the last samples, before
                shuffling, with their sample weights).
            class_weight: ``{class id: weight}``: each sample's loss weighted by its class's weight (Keras:
                the class is the argmax of a one-hot target); the metrics stay unweighted, as Keras's, and the
                ``weighted_metrics`` of ``compile`` are weighted.
            sample_weight: one weight per sample, shape (samples,): the loss is ``sum(w * loss) / batch size``.
            callbacks: Callback instances.
            verbose: 0 quiet, 1 (or "auto") a progress bar per epoch, 2 one line per epoch.
        """
        _require_compiled(self, "fit")
        if nb_epoch is not None:
            epochs = nb_epoch
        if initial_epoch:
            raise ValueError("fit: initial_epoch is not supported; resume a run from its checkpoint "
                             "(set_checkpoint, then ember.optim's Optimizer.resume) instead")
        data, samples = _training_data(x, _targets(self, y, "fit"), sample_weight, class_weight, steps_per_epoch)
        val = validation_data
        if isinstance(val, (tuple, list)) and len(val) in (2, 3) and isinstance(val[1], dict):
            val = (val[0], _targets(self, val[1], "fit: validation_data"), *val[2:])
        if validation_data is not None and is_batch_source(validation_data):
            val = BatchStream(validation_data, validation_steps, what="validation_data")
        elif validation_data is not None and not is_spark_data(validation_data):
            val = _validation_set(val)
        elif validation_split:
            if not isinstance(data, ArrayDataset):
                raise ValueError("fit: validation_split takes arrays; with a generator, Sequence, RDD or "
                                 "DataFrame pass validation_data")
            data, val = data.split(validation_split)
            samples = len(data)
        optimizer = Optimizer(self, data, self.loss, self.optimizer, MaxEpoch(epochs), batch_size,
                              feature_cols=feature_cols, label_cols=label_cols)
        optimizer.set_shuffle(shuffle)
        optimizer.set_train_metrics(self.metrics)
        if verbose == 0:
            optimizer.set_progress(0, quiet=True)
        else:
            optimizer.set_progress(0, bar=(verbose in (1, "auto")))
        if val is not None:
            methods = list(self.metrics) + [_keras_loss(self.loss)]
            optimizer.set_validation(batch_size, val, EveryEpoch(), methods)
        return _run(self, optimizer, callbacks, {"epochs": epochs, "batch_size": batch_size, "samples": samples,
                                                "steps": getattr(data, "steps", None), "verbose": verbose})

    @property
    def metrics_names(self):
        """The names ``evaluate`` reports, in order: ``["loss", metric names..., weighted metric names...]``, with
        ``<output>_loss`` for each output after ``"loss"`` for a model with several (Keras's order); Keras 3
        lists ``["loss", "compile_metrics", ...]`` here, ember the names."""
        _require_compiled(self, "metrics_names")
        return ["loss"] + [m.name for m in self.metrics]

    def evaluate(self, x=None, y=None, batch_size=32, verbose=0, sample_weight=None, steps=None, callbacks=None,
                 return_dict=False, feature_cols=None, label_cols=None):
        """The loss and the compiled metrics on (x, y) in inference mode: a float, or a list
        ``[loss, metric, ...]`` when metrics were compiled (names in ``metrics_names``); with
        ``return_dict`` a dict ``{"loss": ..., name: ...}``. The loss includes the regularization
        penalties and is weighted by ``sample_weight`` (one per sample), as Keras's is; so are the
        ``weighted_metrics`` (``sum(w * value) / sum(w)``); the plain metrics are not.

        ``x`` may also be a generator or ``keras.utils.Sequence`` of ``(x, y)`` / ``(x, y, sample_weight)``
        batches (``steps`` of them, else all), or a DataFrame (``feature_cols``, ``label_cols``; default
        "features", "label"), evaluated on the executors in column batches.

        BigDL's spelling ``model.evaluate(rdd, batch_size, [Top1Accuracy(), ...])`` on an RDD of Samples
        gives BigDL's list of ``EvaluatedResult`` (``result``, ``total_num``, ``method``), one per method.
        """
        if x is None and y is None:  # BigDL's model.evaluate(): the model in evaluation (inference) mode
            return self.eval()
        if is_spark_data(x) and hasattr(x, "mapPartitions"):
            from ember.zoo.bigdl.evaluation import evaluate_rdd

            if y is None or isinstance(y, (list, tuple)) or not isinstance(batch_size, (list, tuple)):
                raise TypeError("evaluate: an RDD of Samples takes BigDL's arguments: model.evaluate(rdd, batch_size, "
                                "[Top1Accuracy(), ...])")
            return evaluate_rdd(self, x, y, batch_size)
        _require_compiled(self, "evaluate")
        methods = [_keras_loss(self.loss)] + list(self.metrics)
        if is_spark_data(x):
            from ember.zoo.pipeline.inference import evaluate_dataframe

            if sample_weight is not None:
                raise ValueError("evaluate: sample_weight takes NumPy arrays, not a DataFrame")
            results = evaluate_dataframe(self, x, methods, batch_size, feature_cols, label_cols)
        else:
            was_training = self.training
            self.eval()
            try:
                if is_batch_source(x):
                    if y is not None or sample_weight is not None:
                        raise ValueError("evaluate: with a generator or Sequence the batches carry the targets "
                                         "(and sample weights): give x only")
                    results = evaluate_stream(self, BatchStream(x, steps, "evaluate"), methods)
                else:
                    results = evaluate_dataset(self, _dataset(x, _targets(self, y, "evaluate"), "evaluate",
                                                              sample_weight), batch_size, methods)
            finally:
                self.train(was_training)
        values = [r.result()[0] for r in results]
        if return_dict:
            return dict(zip(self.metrics_names, values))
        return values[0] if len(values) == 1 else values

    def predict(self, x, batch_size=32, verbose=0, steps=None, callbacks=None, feature_cols=None,
                prediction_col="prediction"):
        """Outputs for ``x`` in inference mode (a list of arrays for several outputs). ``x`` may be a generator
        or ``keras.utils.Sequence`` of batches (``x``, or tuples whose first item is ``x``; ``steps`` of
        them, else all). For a DataFrame ``x``: the DataFrame with ``prediction_col`` (the outputs as
        ``array<double>``) appended, computed on the executors in Arrow batches (``NNModel``'s transform).
        For an RDD of Samples (BigDL's ``model.predict(rdd)``): an RDD of output arrays, one per sample."""
        if is_spark_data(x):
            if not hasattr(x, "columns"):
                from ember.zoo.bigdl.evaluation import predict_rdd

                return predict_rdd(self, x, batch_size)
            from ember.zoo.pipeline.inference import predict_dataframe

            return predict_dataframe(self, x, feature_cols, prediction_col, batch_size)
        was_training = self.training
        self.eval()
        try:
            if is_batch_source(x):
                return predict_stream(self, BatchStream(x, steps, "predict"))
            return predict_arrays(self, x, batch_size)
        finally:
            self.train(was_training)

    def predict_class(self, x, batch_size=32, label_base=1):
        """BigDL's ``predict_class``: class ids counting from 1 as BigDL's do (``label_base=0``: from 0), for
        arrays (a NumPy array) or an RDD of Samples (an RDD of ints)."""
        from ember.zoo.bigdl.evaluation import predict_class

        return predict_class(self, x, batch_size, label_base)

    def predict_classes(self, x, batch_size=32, verbose=0):
        """0-based class ids: the argmax of each row, or output > 0.5 for a single output column."""
        out = self.predict(x, batch_size)
        out = out[0] if isinstance(out, list) else out
        if out.ndim == 1 or out.shape[-1] == 1:
            return (out.reshape(len(out), -1)[:, 0] > 0.5).astype(np.int64)
        return out.argmax(axis=-1)


def _keras_loss_object(identifier):
    """A loss for ``compile``: a name or Loss as ``ember.losses.get`` gives it; a plain function wrapped as
    Keras wraps it (targets as Tensors, per-sample values averaged)."""
    loss = losses_module.get(identifier)
    if not isinstance(loss, losses_module.Loss):
        return losses_module.LossFunctionWrapper(loss)
    return loss


def _keras_loss(criterion):
    """The "loss" that Keras reports: the criterion's mean (a list of criteria: the sum of each output's) plus the
    model's regularization penalties."""
    method = validation_module.Loss(criterion)
    method.name = "loss"
    method.keras_loss = True
    return method


containers.register_training(KerasTraining)
Model = containers.Model
Sequential = containers.Sequential


def load_model(path, custom_objects=None, compile=True):  # noqa: A002 - Keras's name
    """Load a model (or a checkpoint's model) saved by ``save``; compiled again when it was saved compiled.

    Example:
        >>> import os, tempfile, numpy as np, ember
        >>> from ember.layers import Dense
        >>> model = ember.Sequential([Dense(2, activation="softmax", input_shape=(3,))])
        >>> _ = model.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
        >>> path = os.path.join(tempfile.mkdtemp(), "m.ember")
        >>> model.save(path)
        >>> again = ember.load_model(path)
        >>> type(again.optimizer).__name__, again.loss.name, [m.name for m in again.metrics]
        ('Adam', 'sparse_categorical_crossentropy', ['accuracy'])
    """
    return serialization.load_model(path, custom_objects, compile=compile)
