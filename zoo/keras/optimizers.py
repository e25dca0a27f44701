"""Keras's optimizers: ``ember.optim``'s update rules with Keras's defaults where they differ from
BigDL's (``ember.optim`` keeps BigDL's). ``ember.optimizers`` and ``compile("adam")`` give these.

| Keras name | what differs from ``ember.optim`` |
|---|---|
| ``Adam`` | epsilon 1e-7 (BigDL 1e-8), added to sqrt(v) before the bias correction as Keras does; a
  ``weight_decay`` is decoupled (``param -= lr * weight_decay * param``), as every Keras 3 optimizer's |
| ``AdamW`` | the same, and weight_decay 0.004 (Keras's default) |
| ``RMSprop`` | epsilon inside the square root: ``lr * g / sqrt(v + epsilon)`` |
| ``Adagrad`` | learning_rate 0.001, initial_accumulator_value 0.1, epsilon 1e-7 inside the square root |
| ``Adadelta`` | learning_rate 0.001, rho 0.95, epsilon 1e-7 (the rule is the same) |
| ``Adamax`` | learning_rate 0.001, epsilon 1e-7 added to the norm after the max |
| ``SGD`` | Keras's arguments only (the rule is the same for a constant learning rate) |

Every class here takes Keras 3's ``weight_decay`` (decoupled, ``param -= lr * weight_decay * param``) and its
base optimizer's options, with Keras 3's meaning:

- ``learning_rate``: a number or a schedule (``ember.optimizers.schedules``, or any ``LearningRateSchedule``
  subclass): the rate of each update is ``schedule(iterations)``, the updates made before it.
- ``clipnorm`` (each variable's gradient to this L2 norm), ``global_clipnorm`` (all gradients together),
  ``clipvalue`` (each element into ``[-v, v]``): at most one of them, as Keras refuses more. Applied to the
  batch's mean gradient before the rule, locally and on Spark (where each owner of a parameter block sends its
  per-variable partial sums, so that ``clipnorm`` uses each variable's exact norm).
- ``use_ema``, ``ema_momentum``, ``ema_overwrite_frequency``: a moving average of the weights, ``ema <- m ema +
  (1 - m) w`` after each update (m = 0 at the first), written into the weights every ``ema_overwrite_frequency``
  updates and at the end of ``fit`` (Keras's ``finalize_variable_values``), locally and on Spark.
- ``loss_scale_factor``: the loss is multiplied by it before the backward pass and the gradients divided by it
  before anything else (accumulation, clipping), locally, with generators and on Spark (each trainer's backward
  pass starts from the factor; the owner of a block divides its mean gradient).
- ``gradient_accumulation_steps`` (N >= 2): the weights change at every Nth batch only, with the mean of the last
  N batches' gradients (clipped after averaging), as Keras 3's; ``iterations`` is then the batches // N, while a
  schedule is asked with the batches seen (Keras's "real" iterations) and the weight average is updated at every
  batch. Locally, with generators and on Spark; on Spark a ``fit`` that would start inside an accumulation left
  by the previous ``fit`` is refused (Spark starts the optimizer state afresh with each ``fit``).
- ``learning_rate`` as a function of no arguments: called for the rate of each update, as Keras calls it. Not on
  Spark (refused: the update runs on the executors, on copies of whatever the function reads). A compiled model
  saves it by module and name (a lambda or a nested function cannot be saved; ``load_model`` finds it in
  ``custom_objects`` or its module).
- ``name``: kept as ``optimizer.name``.

``iterations`` is the updates made, as Keras's; on Spark it (with the rest of the optimizer state) starts afresh
with each ``fit``. ``get_config()`` and ``from_config(config)`` give and take Keras 3's optimizer config.
"""
import dataclasses
import inspect

from ember.optim import methods
from ember.zoo.keras.schedules import FunctionRate, LearningRateSchedule, deserialize, serialize

_BASE_ARGUMENTS = ("learning_rate", "weight_decay", "clipnorm", "global_clipnorm", "clipvalue", "use_ema",
                   "ema_momentum", "ema_overwrite_frequency", "loss_scale_factor", "gradient_accumulation_steps",
                   "name")


class _KerasRate:
    """Keras's ``optimizer.learning_rate`` (with a schedule, its value at the batches seen so far; with a
    function, its value now) and Keras's ``get_config`` / ``from_config``."""

    @property
    def learning_rate(self):
        schedule = self.options.schedule
        return (float(schedule(int(self.state.get("iterations", 0)))) if schedule is not None
                else self._learning_rate)

    @learning_rate.setter
    def learning_rate(self, value):  # (the callbacks refuse to set a scheduled rate, as Keras does)
        self._learning_rate = value

    def get_config(self):
        """Keras 3's optimizer config: the constructor's arguments (a schedule as ``{"class_name", "config"}``, a
        function by name); ``type(opt).from_config(config)`` makes the same optimizer without its state.

        Example:
            >>> from ember import optimizers
            >>> config = optimizers.Adam(2e-3, gradient_accumulation_steps=4, loss_scale_factor=128.0).get_config()
            >>> config["gradient_accumulation_steps"], config["loss_scale_factor"], config["learning_rate"]
            (4, 128.0, 0.002)
            >>> optimizers.Adam.from_config(config).options.gradient_accumulation_steps
            4
        """
        o = self.options
        rate = self._learning_rate if o.schedule is None else serialize(o.schedule)
        config = {"name": getattr(self, "name", type(self).__name__.lower()), "learning_rate": rate,
                  "weight_decay": self.hyper.get("weight_decay") or None,
                  "clipnorm": o.clipnorm, "global_clipnorm": o.global_clipnorm, "clipvalue": o.clipvalue,
                  "use_ema": o.use_ema, "ema_momentum": o.ema_momentum,
                  "ema_overwrite_frequency": o.ema_overwrite_frequency, "loss_scale_factor": o.loss_scale_factor,
                  "gradient_accumulation_steps": o.gradient_accumulation_steps}
        for k in inspect.signature(type(self).__init__).parameters:
            if k not in _BASE_ARGUMENTS and k != "self":
                config[k] = self.hyper[k]
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        """The optimizer that ``get_config`` described (a schedule or function of one's own from
        ``custom_objects``, ``{"Name": object}``).

        Example:
            >>> from ember import optimizers
            >>> config = {"learning_rate": 0.1, "momentum": 0.9, "gradient_accumulation_steps": 2}
            >>> sgd = optimizers.SGD.from_config(config)
            >>> sgd.hyper["momentum"], sgd.iterations, sgd.options.gradient_accumulation_steps
            (0.9, 0, 2)
        """
        config = dict(config)
        if isinstance(config.get("learning_rate"), dict):
            config["learning_rate"] = deserialize(config["learning_rate"], custom_objects)
        return cls(**config)


def _initial_rate(learning_rate):
    """The number ``OptimMethod`` keeps as ``learning_rate``: the rate itself, or a schedule's (a function's)
    rate at step 0."""
    schedule = _schedule_of(learning_rate)
    if schedule is not None:
        return float(schedule(0)) or 1.0  # (a warm-up from 0: _keras_options sets the 0 after the check)
    if isinstance(learning_rate, (str, bytes)) or not isinstance(learning_rate, (int, float)):
        raise TypeError(f"learning_rate must be a number, a LearningRateSchedule (ember.optimizers.schedules) or a "
                        f"function of no arguments, got {learning_rate!r}")
    return learning_rate


def _schedule_of(learning_rate):
    """A schedule as is; a function of no arguments as a ``FunctionRate``; None for a number."""
    if isinstance(learning_rate, LearningRateSchedule):
        return learning_rate
    if callable(learning_rate):
        return FunctionRate(learning_rate)
    return None


def _keras_options(opt, learning_rate, clipnorm, clipvalue, global_clipnorm, use_ema, ema_momentum,
                   ema_overwrite_frequency, name, loss_scale_factor=None, gradient_accumulation_steps=None):
    """Keras 3's base-optimizer options as the method's ``StepOptions`` (checked as Keras checks them)."""
    options = methods.StepOptions(
        clipnorm=clipnorm, clipvalue=clipvalue, global_clipnorm=global_clipnorm, use_ema=bool(use_ema),
        ema_momentum=ema_momentum, ema_overwrite_frequency=ema_overwrite_frequency,
        schedule=_schedule_of(learning_rate), loss_scale_factor=loss_scale_factor,
        gradient_accumulation_steps=gradient_accumulation_steps)
    options.check(type(opt).__name__)
    opt.options = options
    if options.schedule is not None:
        opt.learning_rate = float(options.schedule(0))
    opt.counts_iterations = True
    opt.name = name or type(opt).__name__.lower()


def keras_options_config(opt):
    """A Keras optimizer's options as JSON-able data (saved with a compiled model), or {} when all are off."""
    o = opt.options
    if o == methods.StepOptions():
        return {}
    config = {f.name: getattr(o, f.name) for f in dataclasses.fields(o) if f.name != "schedule"}
    if o.schedule is not None:
        config["learning_rate"] = serialize(o.schedule)
    return config


def set_keras_options(opt, config, custom_objects=None):
    """The inverse of ``keras_options_config`` on a method rebuilt from its state dict."""
    config = dict(config)
    schedule = config.pop("learning_rate", None)
    opt.options = methods.StepOptions(**config, schedule=None if schedule is None
                                      else deserialize(schedule, custom_objects))
    opt.counts_iterations = True


class Adam(_KerasRate, methods.Adam):
    """Keras's Adam: ``ember.optim.Adam`` with Keras's epsilon (1e-7) in Keras's place::

        param <- param - lr sqrt(1 - beta_2^t) / (1 - beta_1^t) * m / (sqrt(v) + epsilon)

    (``ember.optim.Adam``, BigDL's, uses 1e-8 added to the bias-corrected sqrt(v)).

    Args:
        learning_rate: a number, a ``LearningRateSchedule`` (``ember.optimizers.schedules``) or a function of no
            arguments returning the rate (called before each update).
        clipnorm, clipvalue, global_clipnorm, use_ema, ema_momentum, ema_overwrite_frequency, loss_scale_factor,
            gradient_accumulation_steps, name: Keras 3's base-optimizer options (see this module's docstring).
        beta_1, beta_2, epsilon: as in Keras.
        weight_decay: Keras's decoupled weight decay: ``param -= lr * weight_decay * param`` each step
            (0 or None: none).

    Example:
        >>> from ember import optimizers
        >>> optimizers.Adam().hyper["epsilon"], optimizers.Adam().hyper["keras_epsilon"]
        (1e-07, True)
    """

    def __init__(self, learning_rate=1e-3, beta_1=0.9, beta_2=0.999, epsilon=1e-7, weight_decay=0.0,
                 clipnorm=None, clipvalue=None, global_clipnorm=None, use_ema=False,
                 ema_momentum=0.99, ema_overwrite_frequency=None, loss_scale_factor=None,
                 gradient_accumulation_steps=None, name=None):
        super().__init__(_initial_rate(learning_rate), beta_1=beta_1, beta_2=beta_2, epsilon=epsilon,
                         weight_decay=float(weight_decay or 0.0))
        if self.hyper["weight_decay"]:
            self.hyper["decoupled"] = True  # Keras 3 decays the weights themselves, not through the gradient
        self.hyper["keras_epsilon"] = True
        _keras_options(self, learning_rate, clipnorm, clipvalue, global_clipnorm, use_ema, ema_momentum,
                       ema_overwrite_frequency, name, loss_scale_factor, gradient_accumulation_steps)


class AdamW(_KerasRate, methods.AdamW):
    """Keras's AdamW: decoupled weight decay (default 0.004), epsilon 1e-7 placed as in Keras's ``Adam``.

    Args:
        learning_rate: a number, a ``LearningRateSchedule`` (``ember.optimizers.schedules``) or a function of no
            arguments returning the rate (called before each update).
        clipnorm, clipvalue, global_clipnorm, use_ema, ema_momentum, ema_overwrite_frequency, loss_scale_factor,
            gradient_accumulation_steps, name: Keras 3's base-optimizer options (see this module's docstring).
        beta_1, beta_2, epsilon, weight_decay: as in Keras.

    Example:
        >>> from ember import optimizers
        >>> opt = optimizers.AdamW()
        >>> opt.hyper["weight_decay"], opt.hyper["epsilon"]
        (0.004, 1e-07)
    """

    def __init__(self, learning_rate=1e-3, beta_1=0.9, beta_2=0.999, epsilon=1e-7, weight_decay=0.004,
                 clipnorm=None, clipvalue=None, global_clipnorm=None, use_ema=False,
                 ema_momentum=0.99, ema_overwrite_frequency=None, loss_scale_factor=None,
                 gradient_accumulation_steps=None, name=None):
        super().__init__(_initial_rate(learning_rate), beta_1=beta_1, beta_2=beta_2, epsilon=epsilon,
                         weight_decay=weight_decay)
        self.hyper["keras_epsilon"] = True
        _keras_options(self, learning_rate, clipnorm, clipvalue, global_clipnorm, use_ema, ema_momentum,
                       ema_overwrite_frequency, name, loss_scale_factor, gradient_accumulation_steps)


def _keras_decay(opt, weight_decay):
    """Keras 3's ``weight_decay`` (None or 0: none) decays the weights themselves, not through the gradient."""
    opt.hyper["weight_decay"] = float(weight_decay or 0.0)
    if opt.hyper["weight_decay"]:
        opt.hyper["decoupled"] = True


class SGD(_KerasRate, methods.SGD):
    """Keras's SGD: Keras's momentum ``m <- momentum m - lr g; param <- param + m`` (``ember.optim.SGD``'s
    ``v <- momentum v + g; param <- param - lr v`` is the same only while the rate is constant), Keras's
    arguments, and Keras 3's decoupled ``weight_decay``.

    Args:
        learning_rate: a number, a ``LearningRateSchedule`` (``ember.optimizers.schedules``) or a function of no
            arguments returning the rate (called before each update).
        clipnorm, clipvalue, global_clipnorm, use_ema, ema_momentum, ema_overwrite_frequency, loss_scale_factor,
            gradient_accumulation_steps, name: Keras 3's base-optimizer options (see this module's docstring).
        momentum, nesterov: as in Keras.
        weight_decay: ``param -= lr * weight_decay * param`` each step (0 or None: none).

    Example:
        >>> from ember import optimizers
        >>> optimizers.SGD(learning_rate=0.1, momentum=0.9, nesterov=True)
        SGD(learning_rate=0.1, momentum=0.9, dampening=0.0, nesterov=True, weight_decay=0.0, keras_momentum=True)
    """

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, weight_decay=0.0,
                 clipnorm=None, clipvalue=None, global_clipnorm=None, use_ema=False,
                 ema_momentum=0.99, ema_overwrite_frequency=None, loss_scale_factor=None,
                 gradient_accumulation_steps=None, name=None):
        super().__init__(_initial_rate(learning_rate), momentum=momentum, nesterov=nesterov)
        _keras_decay(self, weight_decay)
        if momentum:
            self.hyper["keras_momentum"] = True  # the buffer holds lr * g: exact when the rate changes
        _keras_options(self, learning_rate, clipnorm, clipvalue, global_clipnorm, use_ema, ema_momentum,
                       ema_overwrite_frequency, name, loss_scale_factor, gradient_accumulation_steps)


class RMSprop(_KerasRate, methods.RMSprop):
    """Keras's RMSprop: the epsilon inside the square root, ``lr * g / sqrt(v + epsilon)`` (``ember.optim``'s,
    PyTorch's, adds it to ``sqrt(v)``); momentum accumulates that increment.

    Args:
        learning_rate: a number, a ``LearningRateSchedule`` (``ember.optimizers.schedules``) or a function of no
            arguments returning the rate (called before each update).
        clipnorm, clipvalue, global_clipnorm, use_ema, ema_momentum, ema_overwrite_frequency, loss_scale_factor,
            gradient_accumulation_steps, name: Keras 3's base-optimizer options (see this module's docstring).
        rho, momentum, epsilon, centered: as in Keras.
        weight_decay: ``param -= lr * weight_decay * param`` each step (0 or None: none).

    Example:
        >>> from ember import optimizers
        >>> opt = optimizers.RMSprop()
        >>> opt.learning_rate, opt.hyper["rho"], opt.hyper["epsilon"], opt.hyper["keras_epsilon"]
        (0.001, 0.9, 1e-07, True)
    """

    def __init__(self, learning_rate=1e-3, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False, weight_decay=0.0,
                 clipnorm=None, clipvalue=None, global_clipnorm=None, use_ema=False,
                 ema_momentum=0.99, ema_overwrite_frequency=None, loss_scale_factor=None,
                 gradient_accumulation_steps=None, name=None):
        super().__init__(_initial_rate(learning_rate), rho=rho, epsilon=epsilon, momentum=momentum, centered=centered)
        _keras_decay(self, weight_decay)
        self.hyper["keras_epsilon"] = True
        _keras_options(self, learning_rate, clipnorm, clipvalue, global_clipnorm, use_ema, ema_momentum,
                       ema_overwrite_frequency, name, loss_scale_factor, gradient_accumulation_steps)


class Adagrad(_KerasRate, methods.Adagrad):
    """Keras's Adagrad: accumulator starting at 0.1, ``lr * g / sqrt(s + epsilon)`` with epsilon 1e-7 inside
    the square root (``ember.optim.Adagrad``: PyTorch's/BigDL's lr 0.01, 0, ``sqrt(s) + 1e-10``).

    Args:
        learning_rate: a number, a ``LearningRateSchedule`` (``ember.optimizers.schedules``) or a function of no
            arguments returning the rate (called before each update).
        clipnorm, clipvalue, global_clipnorm, use_ema, ema_momentum, ema_overwrite_frequency, loss_scale_factor,
            gradient_accumulation_steps, name: Keras 3's base-optimizer options (see this module's docstring).
        initial_accumulator_value, epsilon: as in Keras.
        weight_decay: ``param -= lr * weight_decay * param`` each step (0 or None: none).

    Example:
        >>> from ember import optimizers
        >>> opt = optimizers.Adagrad()
        >>> opt.learning_rate, opt.hyper["initial_accumulator_value"], opt.hyper["epsilon"]
        (0.001, 0.1, 1e-07)
    """

    def __init__(self, learning_rate=1e-3, initial_accumulator_value=0.1, epsilon=1e-7, weight_decay=0.0,
                 clipnorm=None, clipvalue=None, global_clipnorm=None, use_ema=False,
                 ema_momentum=0.99, ema_overwrite_frequency=None, loss_scale_factor=None,
                 gradient_accumulation_steps=None, name=None):
        super().__init__(_initial_rate(learning_rate), initial_accumulator_value=initial_accumulator_value,
                         epsilon=epsilon)
        _keras_decay(self, weight_decay)
        self.hyper["keras_epsilon"] = True
        _keras_options(self, learning_rate, clipnorm, clipvalue, global_clipnorm, use_ema, ema_momentum,
                       ema_overwrite_frequency, name, loss_scale_factor, gradient_accumulation_steps)


class Adadelta(_KerasRate, methods.Adadelta):
    """Keras's Adadelta: ``ember.optim.Adadelta``'s rule (the same as Keras's) with Keras's defaults:
    learning_rate 0.001, rho 0.95, epsilon 1e-7 (``ember.optim``'s: 1.0, 0.9, 1e-6).

    Args:
        learning_rate: a number, a ``LearningRateSchedule`` (``ember.optimizers.schedules``) or a function of no
            arguments returning the rate (called before each update).
        clipnorm, clipvalue, global_clipnorm, use_ema, ema_momentum, ema_overwrite_frequency, loss_scale_factor,
            gradient_accumulation_steps, name: Keras 3's base-optimizer options (see this module's docstring).
        rho, epsilon: as in Keras.
        weight_decay: ``param -= lr * weight_decay * param`` each step (0 or None: none).

    Example:
        >>> from ember import optimizers
        >>> opt = optimizers.Adadelta()
        >>> opt.learning_rate, opt.hyper["rho"], opt.hyper["epsilon"]
        (0.001, 0.95, 1e-07)
    """

    def __init__(self, learning_rate=1e-3, rho=0.95, epsilon=1e-7, weight_decay=0.0,
                 clipnorm=None, clipvalue=None, global_clipnorm=None, use_ema=False,
                 ema_momentum=0.99, ema_overwrite_frequency=None, loss_scale_factor=None,
                 gradient_accumulation_steps=None, name=None):
        super().__init__(_initial_rate(learning_rate), rho=rho, epsilon=epsilon)
        _keras_decay(self, weight_decay)
        _keras_options(self, learning_rate, clipnorm, clipvalue, global_clipnorm, use_ema, ema_momentum,
                       ema_overwrite_frequency, name, loss_scale_factor, gradient_accumulation_steps)


class Adamax(_KerasRate, methods.Adamax):
    """Keras's Adamax: learning_rate 0.001, epsilon 1e-7 added to the infinity norm after the max,
    ``lr / (1 - beta_1^t) * m / (u + epsilon)`` (``ember.optim.Adamax``: lr 0.002, ``max(beta_2 u, |g| + 1e-8)``).

    Args:
        learning_rate: a number, a ``LearningRateSchedule`` (``ember.optimizers.schedules``) or a function of no
            arguments returning the rate (called before each update).
        clipnorm, clipvalue, global_clipnorm, use_ema, ema_momentum, ema_overwrite_frequency, loss_scale_factor,
            gradient_accumulation_steps, name: Keras 3's base-optimizer options (see this module's docstring).
        beta_1, beta_2, epsilon: as in Keras.
        weight_decay: ``param -= lr * weight_decay * param`` each step (0 or None: none).

    Example:
        >>> from ember import optimizers
        >>> opt = optimizers.Adamax()
        >>> opt.learning_rate, opt.hyper["epsilon"], opt.hyper["keras_epsilon"]
        (0.001, 1e-07, True)
    """

    def __init__(self, learning_rate=1e-3, beta_1=0.9, beta_2=0.999, epsilon=1e-7, weight_decay=0.0,
                 clipnorm=None, clipvalue=None, global_clipnorm=None, use_ema=False,
                 ema_momentum=0.99, ema_overwrite_frequency=None, loss_scale_factor=None,
                 gradient_accumulation_steps=None, name=None):
        super().__init__(_initial_rate(learning_rate), beta_1=beta_1, beta_2=beta_2, epsilon=epsilon)
        _keras_decay(self, weight_decay)
        self.hyper["keras_epsilon"] = True
        _keras_options(self, learning_rate, clipnorm, clipvalue, global_clipnorm, use_ema, ema_momentum,
                       ema_overwrite_frequency, name, loss_scale_factor, gradient_accumulation_steps)


for _cls in (Adam, AdamW, SGD, RMSprop, Adagrad, Adadelta, Adamax):
    _cls.counts_iterations = True  # Keras's optimizer.iterations (also for one rebuilt from its state dict)
