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
- ``name``: kept as ``optimizer.name``.

``iterations`` is the updates made, as Keras's; on Spark it (with the rest of the optimizer state) starts afresh
with each ``fit``.
"""
import dataclasses

from ember.optim import methods
from ember.zoo.keras.schedules import LearningRateSchedule


class _KerasRate:
    """Keras's ``optimizer.learning_rate``: with a schedule, its value at the updates made so far."""

    @property
    def learning_rate(self):
        schedule = self.options.schedule
        return float(schedule(self.iterations)) if schedule is not None else self._learning_rate

    @learning_rate.setter
    def learning_rate(self, value):  # (the callbacks refuse to set a scheduled rate, as Keras does)
        self._learning_rate = value


def _initial_rate(learning_rate):
    """The number ``OptimMethod`` keeps as ``learning_rate``: the rate itself, or a schedule's rate at step 0."""
    if isinstance(learning_rate, LearningRateSchedule):
        return float(learning_rate(0)) or 1.0  # (a warm-up from 0: _keras_options sets the 0 after the check)
    if callable(learning_rate) or isinstance(learning_rate, (str, bytes)):
        raise TypeError(f"learning_rate must be a number or a LearningRateSchedule (ember.optimizers.schedules), got "
                        f"{learning_rate!r}")
    return learning_rate


def _keras_options(opt, learning_rate, clipnorm, clipvalue, global_clipnorm, use_ema, ema_momentum,
                   ema_overwrite_frequency, name):
    """Keras 3's base-optimizer options as the method's ``StepOptions`` (checked as Keras checks them)."""
    options = methods.StepOptions(
        clipnorm=clipnorm, clipvalue=clipvalue, global_clipnorm=global_clipnorm, use_ema=bool(use_ema),
        ema_momentum=ema_momentum, ema_overwrite_frequency=ema_overwrite_frequency,
        schedule=learning_rate if isinstance(learning_rate, LearningRateSchedule) else None)
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
        config["learning_rate"] = {"class_name": type(o.schedule).__name__, "config": o.schedule.get_config()}
    return config


def set_keras_options(opt, config, custom_objects=None):
    """The inverse of ``keras_options_config`` on a method rebuilt from its state dict."""
    from ember.zoo.keras.schedules import deserialize

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
        learning_rate: a number, or a ``LearningRateSchedule`` (``ember.optimizers.schedules``).
        clipnorm, clipvalue, global_clipnorm, use_ema, ema_momentum, ema_overwrite_frequency, name: Keras 3's
            base-optimizer options (see this module's docstring).
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
                 ema_momentum=0.99, ema_overwrite_frequency=None, name=None):
        super().__init__(_initial_rate(learning_rate), beta_1=beta_1, beta_2=beta_2, epsilon=epsilon,
                         weight_decay=float(weight_decay or 0.0))
        if self.hyper["weight_decay"]:
            self.hyper["decoupled"] = True  # Keras 3 decays the weights themselves, not through the gradient
        self.hyper["keras_epsilon"] = True
        _keras_options(self, learning_rate, clipnorm, clipvalue, global_clipnorm, use_ema, ema_momentum,
                       ema_overwrite_frequency, name)


class AdamW(_KerasRate, methods.AdamW):
    """Keras's AdamW: decoupled weight decay (default 0.004), epsilon 1e-7 placed as in Keras's ``Adam``.

    Args:
        learning_rate: a number, or a ``LearningRateSchedule`` (``ember.optimizers.schedules``).
        clipnorm, clipvalue, global_clipnorm, use_ema, ema_momentum, ema_overwrite_frequency, name: Keras 3's
            base-optimizer options (see this module's docstring).
        beta_1, beta_2, epsilon, weight_decay: as in Keras.

    Example:
        >>> from ember import optimizers
        >>> opt = optimizers.AdamW()
        >>> opt.hyper["weight_decay"], opt.hyper["epsilon"]
        (0.004, 1e-07)
    """

    def __init__(self, learning_rate=1e-3, beta_1=0.9, beta_2=0.999, epsilon=1e-7, weight_decay=0.004,
                 clipnorm=None, clipvalue=None, global_clipnorm=None, use_ema=False,
                 ema_momentum=0.99, ema_overwrite_frequency=None, name=None):
        super().__init__(_initial_rate(learning_rate), beta_1=beta_1, beta_2=beta_2, epsilon=epsilon,
                         weight_decay=weight_decay)
        self.hyper["keras_epsilon"] = True
        _keras_options(self, learning_rate, clipnorm, clipvalue, global_clipnorm, use_ema, ema_momentum,
                       ema_overwrite_frequency, name)


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
        learning_rate: a number, or a ``LearningRateSchedule`` (``ember.optimizers.schedules``).
        clipnorm, clipvalue, global_clipnorm, use_ema, ema_momentum, ema_overwrite_frequency, name: Keras 3's
            base-optimizer options (see this module's docstring).
        momentum, nesterov: as in Keras.
        weight_decay: ``param -= lr * weight_decay * param`` each step (0 or None: none).

    Example:
        >>> from ember import optimizers
        >>> optimizers.SGD(learning_rate=0.1, momentum=0.9, nesterov=True)
        SGD(learning_rate=0.1, momentum=0.9, dampening=0.0, nesterov=True, weight_decay=0.0, keras_momentum=True)
    """

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, weight_decay=0.0,
                 clipnorm=None, clipvalue=None, global_clipnorm=None, use_ema=False,
                 ema_momentum=0.99, ema_overwrite_frequency=None, name=None):
        super().__init__(_initial_rate(learning_rate), momentum=momentum, nesterov=nesterov)
        _keras_decay(self, weight_decay)
        if momentum:
            self.hyper["keras_momentum"] = True  # the buffer holds lr * g: exact when the rate changes
        _keras_options(self, learning_rate, clipnorm, clipvalue, global_clipnorm, use_ema, ema_momentum,
                       ema_overwrite_frequency, name)


class RMSprop(_KerasRate, methods.RMSprop):
    """Keras's RMSprop: the epsilon inside the square root, ``lr * g / sqrt(v + epsilon)`` (``ember.optim``'s,
    PyTorch's, adds it to ``sqrt(v)``); momentum accumulates that increment.

    Args:
        learning_rate: a number, or a ``LearningRateSchedule`` (``ember.optimizers.schedules``).
        clipnorm, clipvalue, global_clipnorm, use_ema, ema_momentum, ema_overwrite_frequency, name: Keras 3's
            base-optimizer options (see this module's docstring).
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
                 ema_momentum=0.99, ema_overwrite_frequency=None, name=None):
        super().__init__(_initial_rate(learning_rate), rho=rho, epsilon=epsilon, momentum=momentum, centered=centered)
        _keras_decay(self, weight_decay)
        self.hyper["keras_epsilon"] = True
        _keras_options(self, learning_rate, clipnorm, clipvalue, global_clipnorm, use_ema, ema_momentum,
                       ema_overwrite_frequency, name)


class Adagrad(_KerasRate, methods.Adagrad):
    """Keras's Adagrad: accumulator starting at 0.1, ``lr * g / sqrt(s + epsilon)`` with epsilon 1e-7 inside
    the square root (``ember.optim.Adagrad``: PyTorch's/BigDL's lr 0.01, 0, ``sqrt(s) + 1e-10``).

    Args:
        learning_rate: a number, or a ``LearningRateSchedule`` (``ember.optimizers.schedules``).
        clipnorm, clipvalue, global_clipnorm, use_ema, ema_momentum, ema_overwrite_frequency, name: Keras 3's
            base-optimizer options (see this module's docstring).
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
                 ema_momentum=0.99, ema_overwrite_frequency=None, name=None):
        super().__init__(_initial_rate(learning_rate), initial_accumulator_value=initial_accumulator_value,
                         epsilon=epsilon)
        _keras_decay(self, weight_decay)
        self.hyper["keras_epsilon"] = True
        _keras_options(self, learning_rate, clipnorm, clipvalue, global_clipnorm, use_ema, ema_momentum,
                       ema_overwrite_frequency, name)


class Adadelta(_KerasRate, methods.Adadelta):
    """Keras's Adadelta: ``ember.optim.Adadelta``'s rule (the same as Keras's) with Keras's defaults:
    learning_rate 0.001, rho 0.95, epsilon 1e-7 (``ember.optim``'s: 1.0, 0.9, 1e-6).

    Args:
        learning_rate: a number, or a ``LearningRateSchedule`` (``ember.optimizers.schedules``).
        clipnorm, clipvalue, global_clipnorm, use_ema, ema_momentum, ema_overwrite_frequency, name: Keras 3's
            base-optimizer options (see this module's docstring).
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
                 ema_momentum=0.99, ema_overwrite_frequency=None, name=None):
        super().__init__(_initial_rate(learning_rate), rho=rho, epsilon=epsilon)
        _keras_decay(self, weight_decay)
        _keras_options(self, learning_rate, clipnorm, clipvalue, global_clipnorm, use_ema, ema_momentum,
                       ema_overwrite_frequency, name)


class Adamax(_KerasRate, methods.Adamax):
    """Keras's Adamax: learning_rate 0.001, epsilon 1e-7 added to the infinity norm after the max,
    ``lr / (1 - beta_1^t) * m / (u + epsilon)`` (``ember.optim.Adamax``: lr 0.002, ``max(beta_2 u, |g| + 1e-8)``).

    Args:
        learning_rate: a number, or a ``LearningRateSchedule`` (``ember.optimizers.schedules``).
        clipnorm, clipvalue, global_clipnorm, use_ema, ema_momentum, ema_overwrite_frequency, name: Keras 3's
            base-optimizer options (see this module's docstring).
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
                 ema_momentum=0.99, ema_overwrite_frequency=None, name=None):
        super().__init__(_initial_rate(learning_rate), beta_1=beta_1, beta_2=beta_2, epsilon=epsilon)
        _keras_decay(self, weight_decay)
        self.hyper["keras_epsilon"] = True
        _keras_options(self, learning_rate, clipnorm, clipvalue, global_clipnorm, use_ema, ema_momentum,
                       ema_overwrite_frequency, name)


for _cls in (Adam, AdamW, SGD, RMSprop, Adagrad, Adadelta, Adamax):
    _cls.counts_iterations = True  # Keras's optimizer.iterations (also for one rebuilt from its state dict)
