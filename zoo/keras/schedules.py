"""Keras 3's learning-rate schedules (``keras.optimizers.schedules``; ``ember.optimizers.schedules``): pass one as
an optimizer's ``learning_rate`` and the rate of each update is ``schedule(step)``, ``step`` being the updates
the optimizer has made before it (Keras's ``optimizer.iterations``; with ``gradient_accumulation_steps``, the
batches seen, as Keras's; on Spark, counted from the start of each ``fit``). A compiled model saves its schedule
as ``{"class_name", "config"}`` (``get_config``) and ``load_model`` rebuilds it with ``from_config``; nothing is
pickled.

The formulas are Keras's (computed in float64 here, in float32 by Keras: the rates agree to about 1e-7).

Example:
    >>> from ember import optimizers
    >>> s = optimizers.schedules.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5)
    >>> round(s(10), 6), round(s(5), 6)
    (0.05, 0.070711)
    >>> optimizers.SGD(learning_rate=s).learning_rate_at()  # the optimizer's rate before its first update
    0.1
"""
import math


class LearningRateSchedule:
    """The base of Keras's schedules: subclass it with ``__call__(step)`` (the rate at update count ``step``)
    and ``get_config()`` (the constructor's arguments, JSON-able, for saving); ``from_config`` is ``cls(**config)``.

    Example:
        >>> from ember.optimizers.schedules import LearningRateSchedule
        >>> class Halving(LearningRateSchedule):
        ...     def __init__(self, initial_learning_rate):
        ...         self.initial_learning_rate = initial_learning_rate
        ...     def __call__(self, step):
        ...         return self.initial_learning_rate / 2 ** (step // 100)
        ...     def get_config(self):
        ...         return {"initial_learning_rate": self.initial_learning_rate}
        >>> Halving(0.1)(250), Halving.from_config(Halving(0.1).get_config())(0)
        (0.025, 0.1)
    """

    def __call__(self, step):
        raise NotImplementedError(f"learning rate schedule '{type(self).__name__}' must override __call__(self, step)")

    def get_config(self):
        raise NotImplementedError(f"learning rate schedule '{type(self).__name__}' must override get_config() to be "
                                  "saved with a model")

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        try:
            args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        except NotImplementedError:
            args = ""
        return f"{type(self).__name__}({args})"


def _positive_steps(who, name, value):
    if not value > 0:
        raise ValueError(f"{who}: {name} must be > 0, got {value!r}")


class _StepDecay(LearningRateSchedule):
    """What ExponentialDecay and InverseTimeDecay share: their arguments, config and ``step / decay_steps``
    (floored with ``staircase``)."""

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase, name):
        _positive_steps(type(self).__name__, "decay_steps", decay_steps)
        self.initial_learning_rate, self.decay_steps, self.decay_rate = initial_learning_rate, decay_steps, decay_rate
        self.staircase, self.name = staircase, name

    def _progress(self, step):
        p = step / self.decay_steps
        return math.floor(p) if self.staircase else p

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate, "decay_steps": self.decay_steps,
                "decay_rate": self.decay_rate, "staircase": self.staircase, "name": self.name}


class ExponentialDecay(_StepDecay):
    """``initial_learning_rate * decay_rate ** (step / decay_steps)``, the exponent floored with ``staircase``.

    Args:
        initial_learning_rate, decay_steps (> 0), decay_rate, staircase, name: as in Keras.

    Example:
        >>> from ember.optimizers.schedules import ExponentialDecay
        >>> ExponentialDecay(1.0, 10, 0.5, staircase=True)(19)
        0.5
    """

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False, name="ExponentialDecay"):
        super().__init__(initial_learning_rate, decay_steps, decay_rate, staircase, name)

    def __call__(self, step):
        return self.initial_learning_rate * self.decay_rate ** self._progress(step)


class PiecewiseConstantDecay(LearningRateSchedule):
    """``values[0]`` while ``step <= boundaries[0]``, ``values[i]`` for ``boundaries[i-1] < step <= boundaries[i]``,
    ``values[-1]`` after the last boundary.

    Args:
        boundaries: increasing step counts; values: one more rate than boundaries; name: as in Keras.

    Example:
        >>> from ember.optimizers.schedules import PiecewiseConstantDecay
        >>> s = PiecewiseConstantDecay([10, 20], [1.0, 0.5, 0.1])
        >>> [s(10), s(11), s(21)]
        [1.0, 0.5, 0.1]
    """

    def __init__(self, boundaries, values, name="PiecewiseConstant"):
        if len(boundaries) != len(values) - 1:
            raise ValueError(f"PiecewiseConstantDecay: give one value more than boundaries, got boundaries="
                             f"{boundaries} ({len(boundaries)}) and values={values} ({len(values)})")
        if list(boundaries) != sorted(boundaries):
            raise ValueError(f"PiecewiseConstantDecay: boundaries must be increasing, got {boundaries}")
        self.boundaries, self.values, self.name = list(boundaries), list(values), name

    def __call__(self, step):
        for b, v in zip(self.boundaries, self.values):
            if step <= b:
                return v
        return self.values[-1]

    def get_config(self):
        return {"boundaries": self.boundaries, "values": self.values, "name": self.name}


class PolynomialDecay(LearningRateSchedule):
    """``(initial - end) * (1 - step / decay_steps) ** power + end``, the step held at ``decay_steps``; with
    ``cycle`` the decay restarts: ``decay_steps`` grows to the first multiple above ``step``.

    Args:
        initial_learning_rate, decay_steps (> 0), end_learning_rate, power, cycle, name: as in Keras.

    Example:
        >>> from ember.optimizers.schedules import PolynomialDecay
        >>> s = PolynomialDecay(1.0, 10, end_learning_rate=0.0, power=2.0)
        >>> [s(0), s(5), s(20)]
        [1.0, 0.25, 0.0]
    """

    def __init__(self, initial_learning_rate, decay_steps, end_learning_rate=0.0001, power=1.0, cycle=False,
                 name="PolynomialDecay"):
        _positive_steps("PolynomialDecay", "decay_steps", decay_steps)
        self.initial_learning_rate, self.decay_steps = initial_learning_rate, decay_steps
        self.end_learning_rate, self.power, self.cycle, self.name = end_learning_rate, power, cycle, name

    def __call__(self, step):
        decay_steps = float(self.decay_steps)
        if self.cycle:
            decay_steps *= 1.0 if step == 0 else math.ceil(step / self.decay_steps)
        else:
            step = min(step, decay_steps)
        p = step / decay_steps
        return (self.initial_learning_rate - self.end_learning_rate) * (1 - p) ** self.power + self.end_learning_rate

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate, "decay_steps": self.decay_steps,
                "end_learning_rate": self.end_learning_rate, "power": self.power, "cycle": self.cycle,
                "name": self.name}


class InverseTimeDecay(_StepDecay):
    """``initial_learning_rate / (1 + decay_rate * step / decay_steps)``, the ratio floored with ``staircase``.

    Args:
        initial_learning_rate, decay_steps (> 0), decay_rate, staircase, name: as in Keras.

    Example:
        >>> from ember.optimizers.schedules import InverseTimeDecay
        >>> InverseTimeDecay(1.0, 10, 0.5)(20)
        0.5
    """

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False, name="InverseTimeDecay"):
        super().__init__(initial_learning_rate, decay_steps, decay_rate, staircase, name)

    def __call__(self, step):
        return self.initial_learning_rate / (1 + self.decay_rate * self._progress(step))


class CosineDecay(LearningRateSchedule):
    """Cosine decay from ``initial_learning_rate`` to ``alpha`` times it over ``decay_steps``; with
    ``warmup_target``, first a linear warm-up from ``initial_learning_rate`` to ``warmup_target`` over
    ``warmup_steps``, then the decay from ``warmup_target``.

    Args:
        initial_learning_rate, decay_steps (> 0), alpha, name, warmup_target, warmup_steps: as in Keras.

    Example:
        >>> from ember.optimizers.schedules import CosineDecay
        >>> s = CosineDecay(0.0, 10, warmup_target=1.0, warmup_steps=10)
        >>> [round(s(k), 4) for k in (5, 10, 15, 30)]
        [0.5, 1.0, 0.5, 0.0]
    """

    def __init__(self, initial_learning_rate, decay_steps, alpha=0.0, name="CosineDecay", warmup_target=None,
                 warmup_steps=0):
        _positive_steps("CosineDecay", "decay_steps", decay_steps)
        self.initial_learning_rate, self.decay_steps, self.alpha, self.name = (initial_learning_rate, decay_steps,
                                                                               alpha, name)
        self.warmup_target, self.warmup_steps = warmup_target, warmup_steps

    def _decay(self, step, decay_from):
        cosine = 0.5 * (1.0 + math.cos(math.pi * step / self.decay_steps))
        return decay_from * ((1 - self.alpha) * cosine + self.alpha)

    def __call__(self, step):
        if self.warmup_target is None:
            return self._decay(min(step, self.decay_steps), self.initial_learning_rate)
        step = min(step, self.decay_steps + self.warmup_steps)
        if step < self.warmup_steps:
            return (self.warmup_target - self.initial_learning_rate) * (step / self.warmup_steps) + \
                self.initial_learning_rate
        return self._decay(step - self.warmup_steps, self.warmup_target)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate, "decay_steps": self.decay_steps,
                "alpha": self.alpha, "name": self.name, "warmup_target": self.warmup_target,
                "warmup_steps": self.warmup_steps}


class CosineDecayRestarts(LearningRateSchedule):
    """Cosine decay with warm restarts (SGDR): periods of ``first_decay_steps`` times ``t_mul`` per restart,
    each starting at ``initial_learning_rate`` times ``m_mul`` per restart and ending at ``alpha`` times that.

    Args:
        initial_learning_rate, first_decay_steps (> 0), t_mul, m_mul, alpha, name: as in Keras.

    Example:
        >>> from ember.optimizers.schedules import CosineDecayRestarts
        >>> s = CosineDecayRestarts(1.0, 10, t_mul=2.0, m_mul=0.5)
        >>> [round(s(k), 4) for k in (0, 5, 10, 20)]
        [1.0, 0.5, 0.5, 0.25]
    """

    def __init__(self, initial_learning_rate, first_decay_steps, t_mul=2.0, m_mul=1.0, alpha=0.0, name="SGDRDecay"):
        _positive_steps("CosineDecayRestarts", "first_decay_steps", first_decay_steps)
        self.initial_learning_rate, self.first_decay_steps = initial_learning_rate, first_decay_steps
        self._t_mul, self._m_mul, self.alpha, self.name = t_mul, m_mul, alpha, name

    def __call__(self, step):
        fraction = step / self.first_decay_steps
        t_mul = float(self._t_mul)
        if t_mul == 1.0:
            restart = math.floor(fraction)
            fraction -= restart
        else:
            restart = math.floor(math.log(1.0 - fraction * (1.0 - t_mul)) / math.log(t_mul))
            done = (1.0 - t_mul ** restart) / (1.0 - t_mul)
            fraction = (fraction - done) / t_mul ** restart
        cosine = 0.5 * self._m_mul ** restart * (1.0 + math.cos(math.pi * fraction))
        return self.initial_learning_rate * ((1 - self.alpha) * cosine + self.alpha)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate, "first_decay_steps": self.first_decay_steps,
                "t_mul": self._t_mul, "m_mul": self._m_mul, "alpha": self.alpha, "name": self.name}


class FunctionRate(LearningRateSchedule):
    """A function of no arguments given as an optimizer's ``learning_rate`` (Keras calls it for the rate of each
    update): the rate at any step is ``function()``. Saved by the function's module and name (Keras's
    ``{"class_name": "function", "config": name, "module": module}``); ``deserialize`` finds it in
    ``custom_objects`` (by name) or imports it from its module.

    Example:
        >>> from ember import optimizers
        >>> rate = {"now": 0.1}
        >>> opt = optimizers.SGD(learning_rate=lambda: rate["now"])
        >>> rate["now"] = 0.02
        >>> opt.learning_rate, opt.learning_rate_at()
        (0.02, 0.02)
    """

    # NOTE: on Spark the update runs on the executors, where the function would read copies of its state
    spark_refusal = ("learning_rate is a function of no arguments: on Spark the updates run on the executors, where "
                     "it would read copies of its state taken when each job starts (Keras calls it in the process "
                     "that trains), so the rates would differ. Give a LearningRateSchedule (a function of the step, "
                     "ember.optimizers.schedules) or a number with callbacks such as LearningRateScheduler")

    def __init__(self, function):
        if not callable(function):
            raise TypeError(f"FunctionRate: expected a function of no arguments, got {function!r}")
        self.function = function

    def __call__(self, step):
        return float(self.function())

    def get_config(self):
        name = getattr(self.function, "__qualname__", None) or ""
        module = getattr(self.function, "__module__", None)
        if not name or "<" in name or module is None:  # a lambda, a nested function or an object
            raise ValueError(f"learning_rate is the function {self.function!r}, which cannot be saved by name (a "
                             "lambda or a function defined inside another): define it at the top of a module, or make "
                             "it a LearningRateSchedule subclass with get_config (ember.optimizers.schedules)")
        return name

    def __repr__(self):
        return f"FunctionRate({self.function!r})"


def _function(config, custom_objects):
    """The function a saved ``{"class_name": "function", ...}`` names: from ``custom_objects``, else its module."""
    import importlib
    import sys

    name, module = config["config"], config.get("module")
    found = (custom_objects or {}).get(name)
    if found is None and module:
        holder = sys.modules.get(module)
        try:
            holder = holder or importlib.import_module(module)
        except ImportError:
            holder = None
        for part in name.split(".") if holder is not None else ():
            holder = getattr(holder, part, None)
        found = holder
    if not callable(found):
        raise ValueError(f"learning_rate was the function {name!r} of module {module!r}, not found: pass "
                         f"custom_objects={{{name!r}: the_function}}")
    return FunctionRate(found)


_BUILT_IN = {c.__name__: c for c in (ExponentialDecay, PiecewiseConstantDecay, PolynomialDecay, InverseTimeDecay,
                                     CosineDecay, CosineDecayRestarts)}


def serialize(learning_rate_schedule):
    """A schedule as JSON-able data: ``{"class_name": ..., "config": get_config()}`` (Keras's ``serialize``).

    Example:
        >>> from ember.optimizers import schedules
        >>> schedules.serialize(schedules.InverseTimeDecay(0.1, 10, 0.5))["class_name"]
        'InverseTimeDecay'
    """
    if not isinstance(learning_rate_schedule, LearningRateSchedule):
        raise TypeError(f"serialize: expected a LearningRateSchedule, got {learning_rate_schedule!r}")
    if isinstance(learning_rate_schedule, FunctionRate):  # Keras's form for a function
        return {"class_name": "function", "config": learning_rate_schedule.get_config(),
                "module": learning_rate_schedule.function.__module__}
    return {"class_name": type(learning_rate_schedule).__name__, "config": learning_rate_schedule.get_config()}


def deserialize(config, custom_objects=None):
    """The schedule that ``serialize`` described; a subclass of your own comes from ``custom_objects``
    (``{"ClassName": class}``), as in Keras.

    Example:
        >>> from ember.optimizers import schedules
        >>> s = schedules.deserialize(schedules.serialize(schedules.CosineDecay(0.1, 100, alpha=0.1)))
        >>> round(s(100), 6)
        0.01
    """
    name = config.get("class_name")
    if name == "function":
        return _function(config, custom_objects)
    cls = (custom_objects or {}).get(name) or _BUILT_IN.get(name)
    if cls is None:
        raise ValueError(f"unknown learning rate schedule {name!r}: pass custom_objects={{{name!r}: TheClass}} "
                         f"(built in: {sorted(_BUILT_IN)})")
    return cls.from_config(config["config"])
