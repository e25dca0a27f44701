"""Learning-rate schedules (BigDL names): the learning rate as a function of training progress.

A schedule maps ``(base_lr, iteration, epoch)`` to the rate for the next update, where
``iteration`` counts the updates already made (0 for the first) and ``epoch`` counts from 1.
The optimizers (local and distributed) ask before every update; ``Plateau`` also hears every
validation result.
"""
import math


class LearningRateSchedule:
    """Base class; subclasses implement ``get_learning_rate(base_lr, iteration, epoch)``.

    ``iteration`` counts the updates already made (0 for the first), ``epoch`` counts from 1.
    ``on_validation``, ``state_dict`` and ``load_state_dict`` are there for schedules that keep state.

    Example:
        >>> from ember.optim import LearningRateSchedule
        >>> class Halving(LearningRateSchedule):
        ...     def get_learning_rate(self, base_lr, iteration, epoch):
        ...         return base_lr / 2 ** (epoch - 1)
        >>> Halving().get_learning_rate(0.1, iteration=50, epoch=3)
        0.025
    """

    def get_learning_rate(self, base_lr, iteration, epoch):
        raise NotImplementedError

    def on_validation(self, score, loss):
        """Called with the first validation score and the validation loss (None when not measured)."""

    def state_dict(self):
        return {}

    def load_state_dict(self, saved):
        pass

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({args})"


class Default(LearningRateSchedule):
    """The base rate, unchanged (the schedule when none is set).

    Example:
        >>> from ember.optim import Default
        >>> Default().get_learning_rate(0.1, iteration=1000, epoch=9)
        0.1
    """

    def get_learning_rate(self, base_lr, iteration, epoch):
        return base_lr


class Step(LearningRateSchedule):
    """lr = base_lr * gamma ** (iteration // step_size).

    Args:
        step_size: updates between two reductions, >= 1.
        gamma: the factor applied at each reduction.

    Example:
        >>> from ember.optim import Step
        >>> s = Step(10, 0.5)
        >>> [s.get_learning_rate(1.0, i, 1) for i in (0, 9, 10, 25)]
        [1.0, 1.0, 0.5, 0.25]
    """

    def __init__(self, step_size, gamma):
        if step_size < 1:
            raise ValueError(f"Step: step_size must be >= 1, got {step_size!r}")
        self.step_size, self.gamma = int(step_size), float(gamma)

    def get_learning_rate(self, base_lr, iteration, epoch):
        return base_lr * self.gamma ** (iteration // self.step_size)


class MultiStep(LearningRateSchedule):
    """lr = base_lr * gamma ** (number of boundaries in ``step_sizes`` that ``iteration`` has reached).

    Args:
        step_sizes: increasing iteration counts at which the rate is multiplied by ``gamma``.
        gamma: the factor.

    Example:
        >>> from ember.optim import MultiStep
        >>> s = MultiStep([5, 20], 0.1)
        >>> [round(s.get_learning_rate(1.0, i, 1), 6) for i in (0, 5, 19, 20)]
        [1.0, 0.1, 0.1, 0.01]
    """

    def __init__(self, step_sizes, gamma):
        step_sizes = [int(s) for s in step_sizes]
        if step_sizes != sorted(step_sizes):
            raise ValueError(f"MultiStep: step_sizes must be increasing, got {step_sizes}")
        self.step_sizes, self.gamma = step_sizes, float(gamma)

    def get_learning_rate(self, base_lr, iteration, epoch):
        return base_lr * self.gamma ** sum(iteration >= s for s in self.step_sizes)


class Exponential(LearningRateSchedule):
    """lr = base_lr * decay_rate ** (iteration / decay_step), the exponent floored when ``stair_case``.

    Args:
        decay_step: updates per factor of ``decay_rate``, >= 1.
        decay_rate: the factor.
        stair_case: floor the exponent (the rate drops in steps).

    Example:
        >>> from ember.optim import Exponential
        >>> round(Exponential(10, 0.5).get_learning_rate(1.0, 5, 1), 4)
        0.7071
        >>> Exponential(10, 0.5, stair_case=True).get_learning_rate(1.0, 15, 1)
        0.5
    """

    def __init__(self, decay_step, decay_rate, stair_case=False):
        if decay_step < 1:
            raise ValueError(f"Exponential: decay_step must be >= 1, got {decay_step!r}")
        self.decay_step, self.decay_rate, self.stair_case = int(decay_step), float(decay_rate), bool(stair_case)

    def get_learning_rate(self, base_lr, iteration, epoch):
        p = iteration / self.decay_step
        return base_lr * self.decay_rate ** (math.floor(p) if self.stair_case else p)


class Poly(LearningRateSchedule):
    """lr = base_lr * (1 - iteration / max_iteration) ** power, and 0 from max_iteration on.

    Args:
        power: the exponent.
        max_iteration: the iteration at which the rate reaches 0, >= 1.

    Example:
        >>> from ember.optim import Poly
        >>> p = Poly(2.0, 100)
        >>> [p.get_learning_rate(1.0, i, 1) for i in (0, 50, 100)]
        [1.0, 0.25, 0.0]
    """

    def __init__(self, power, max_iteration):
        if max_iteration < 1:
            raise ValueError(f"Poly: max_iteration must be >= 1, got {max_iteration!r}")
        self.power, self.max_iteration = float(power), int(max_iteration)

    def get_learning_rate(self, base_lr, iteration, epoch):
        if iteration >= self.max_iteration:
            return 0.0
        return base_lr * (1 - iteration / self.max_iteration) ** self.power


class Cosine(LearningRateSchedule):
    """Cosine annealing: lr = min_lr + (base_lr - min_lr) * (1 + cos(pi * t / max_iteration)) / 2,
    with t = min(iteration, max_iteration).

    Args:
        max_iteration: the iteration at which the rate reaches ``min_lr``, >= 1.
        min_lr: the final rate.

    Example:
        >>> from ember.optim import Cosine
        >>> c = Cosine(100, min_lr=0.1)
        >>> [round(c.get_learning_rate(1.0, i, 1), 4) for i in (0, 50, 100, 200)]
        [1.0, 0.55, 0.1, 0.1]
    """

    def __init__(self, max_iteration, min_lr=0.0):
        if max_iteration < 1:
            raise ValueError(f"Cosine: max_iteration must be >= 1, got {max_iteration!r}")
        self.max_iteration, self.min_lr = int(max_iteration), float(min_lr)

    def get_learning_rate(self, base_lr, iteration, epoch):
        t = min(iteration, self.max_iteration)
        return self.min_lr + (base_lr - self.min_lr) * (1 + math.cos(math.pi * t / self.max_iteration)) / 2


class Warmup(LearningRateSchedule):
    """Linear warm-up: lr = base_lr + delta * iteration (use inside ``SequentialSchedule``).

    Args:
        delta: the increase per update.

    Example:
        >>> from ember.optim import Warmup
        >>> [round(Warmup(0.01).get_learning_rate(0.1, i, 1), 4) for i in (0, 5)]
        [0.1, 0.15]
    """

    def __init__(self, delta):
        self.delta = float(delta)

    def get_learning_rate(self, base_lr, iteration, epoch):
        return base_lr + self.delta * iteration


class Plateau(LearningRateSchedule):
    """Multiply the rate by ``factor`` when the monitored validation value has not improved for
    ``patience`` validations (Keras' ReduceLROnPlateau, BigDL's Plateau).

    Args:
        monitor: "score" (the first validation method's value) or "loss" (a ``Loss`` validation).
        factor: the multiplier applied at each reduction.
        patience: validations without improvement before a reduction.
        mode: "min" or "max": whether smaller or larger is better.
        epsilon: the least change that counts as an improvement.
        cooldown: validations to wait after a reduction before counting again.
        min_lr: the rate never goes below this.

    Example:
        >>> from ember.optim import Plateau
        >>> p = Plateau(monitor="loss", factor=0.5, patience=2)
        >>> for loss in (1.0, 0.9, 0.95, 0.92):  # no improvement on 0.9 twice
        ...     p.on_validation(None, loss)
        >>> p.get_learning_rate(0.1, iteration=40, epoch=3)
        0.05
    """

    def __init__(self, monitor="score", factor=0.1, patience=10, mode="min", epsilon=1e-4, cooldown=0, min_lr=0.0):
        if monitor not in ("score", "loss"):
            raise ValueError(f"Plateau: monitor must be 'score' or 'loss', got {monitor!r}")
        if mode not in ("min", "max"):
            raise ValueError(f"Plateau: mode must be 'min' or 'max', got {mode!r}")
        if not 0 < factor < 1:
            raise ValueError(f"Plateau: factor must be in (0, 1), got {factor!r}")
        self.monitor, self.factor, self.patience, self.mode = monitor, float(factor), int(patience), mode
        self.epsilon, self.cooldown, self.min_lr = float(epsilon), int(cooldown), float(min_lr)
        self._scale, self._best, self._wait, self._cooldown_left = 1.0, None, 0, 0

    def get_learning_rate(self, base_lr, iteration, epoch):
        return max(base_lr * self._scale, self.min_lr)

    def on_validation(self, score, loss):
        value = score if self.monitor == "score" else loss
        if value is None:
            raise ValueError("Plateau(monitor='loss') needs a Loss() among the validation methods")
        better = (self._best is None or (value < self._best - self.epsilon if self.mode == "min"
                                         else value > self._best + self.epsilon))
        if self._cooldown_left > 0:
            self._cooldown_left -= 1
            self._wait = 0
        if better:
            self._best, self._wait = value, 0
        elif self._cooldown_left == 0:
            self._wait += 1
            if self._wait >= self.patience:
                self._scale *= self.factor
                self._wait, self._cooldown_left = 0, self.cooldown

    def state_dict(self):
        return {"scale": self._scale, "best": self._best, "wait": self._wait, "cooldown_left": self._cooldown_left}

    def load_state_dict(self, saved):
        self._scale, self._best = saved["scale"], saved["best"]
        self._wait, self._cooldown_left = saved["wait"], saved["cooldown_left"]


class SequentialSchedule(LearningRateSchedule):
    """Schedules one after another: ``add(schedule, max_iteration)`` appends a segment that lasts
    ``max_iteration`` updates (the last one lasts for ever). Each segment sees the iteration counted
    from its own start, and its base rate is the rate where the previous segment ended, so a
    ``Warmup`` can hand over to ``Poly`` or ``Cosine`` without a jump.

    Example:
        >>> from ember.optim.schedules import Poly, SequentialSchedule, Warmup
        >>> s = SequentialSchedule().add(Warmup(0.1), 5).add(Poly(1.0, 10), 10)
        >>> [round(s.get_learning_rate(0.5, i, 1), 3) for i in (0, 4, 5, 10)]
        [0.5, 0.9, 1.0, 0.5]
    """

    def __init__(self, iteration_per_epoch=None):
        self.iteration_per_epoch = iteration_per_epoch
        self.segments = []

    def add(self, schedule, max_iteration):
        if not isinstance(schedule, LearningRateSchedule):
            raise TypeError(f"SequentialSchedule.add: expected a LearningRateSchedule, got {schedule!r}")
        self.segments.append((schedule, int(max_iteration)))
        return self

    def get_learning_rate(self, base_lr, iteration, epoch):
        if not self.segments:
            return base_lr
        start, lr = 0, base_lr
        for i, (schedule, length) in enumerate(self.segments):
            if iteration < start + length or i == len(self.segments) - 1:
                return schedule.get_learning_rate(lr, iteration - start, epoch)
            lr = schedule.get_learning_rate(lr, length, epoch)
            start += length
        raise AssertionError("unreachable")

    def on_validation(self, score, loss):
        for schedule, _ in self.segments:
            schedule.on_validation(score, loss)

    def state_dict(self):
        return {str(i): s.state_dict() for i, (s, _) in enumerate(self.segments)}

    def load_state_dict(self, saved):
        for i, (s, _) in enumerate(self.segments):
            s.load_state_dict(saved.get(str(i), {}))
