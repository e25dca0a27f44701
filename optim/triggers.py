"""Triggers (BigDL names): when to stop, validate, checkpoint or write summaries.

A trigger is called with the training state, a dict with at least:
    ``epoch``           the current epoch, from 1 (it becomes n + 1 when epoch n ends),
    ``iteration``       updates made so far,
    ``epoch_finished``  True right after the last update of an epoch,
    ``loss``            the last training loss (None before the first update),
    ``score``           the last validation score (None before the first validation).
"""
import math


class Trigger:
    """Base class of triggers: ``trigger(state)`` says whether to act now.

    ``state`` is the training state: ``epoch`` (from 1), ``iteration`` (updates made),
    ``epoch_finished``, ``loss`` and ``score`` (None until known).

    Example:
        >>> from ember.optim import Trigger
        >>> class Never(Trigger):
        ...     def __call__(self, state):
        ...         return False
        >>> Never()({"epoch": 1, "iteration": 0})
        False
    """
    def __call__(self, state):
        raise NotImplementedError

    def __repr__(self):
        args = ", ".join(f"{v!r}" for v in vars(self).values())
        return f"{type(self).__name__}({args})"


class MaxEpoch(Trigger):
    """Fires once ``max_epoch`` epochs are done (an end trigger).

    Args:
        max_epoch: the number of epochs, >= 0.

    Example:
        >>> from ember.optim import MaxEpoch
        >>> t = MaxEpoch(2)
        >>> t({"epoch": 2, "iteration": 10}), t({"epoch": 3, "iteration": 20})
        (False, True)
    """

    def __init__(self, max_epoch):
        if max_epoch < 0:
            raise ValueError(f"MaxEpoch: expected a count >= 0, got {max_epoch!r}")
        self.max_epoch = int(max_epoch)

    def __call__(self, state):
        return state["epoch"] > self.max_epoch


class MaxIteration(Trigger):
    """Fires once ``max_iteration`` updates are done (an end trigger).

    Args:
        max_iteration: the number of updates, >= 0.

    Example:
        >>> from ember.optim import MaxIteration
        >>> t = MaxIteration(100)
        >>> t({"epoch": 1, "iteration": 99}), t({"epoch": 1, "iteration": 100})
        (False, True)
    """

    def __init__(self, max_iteration):
        if max_iteration < 0:
            raise ValueError(f"MaxIteration: expected a count >= 0, got {max_iteration!r}")
        self.max_iteration = int(max_iteration)

    def __call__(self, state):
        return state["iteration"] >= self.max_iteration


class EveryEpoch(Trigger):
    """Fires at the end of every epoch (e.g. to validate or checkpoint).

    Example:
        >>> from ember.optim import EveryEpoch
        >>> EveryEpoch()({"epoch": 2, "iteration": 50, "epoch_finished": True})
        True
    """

    def __call__(self, state):
        return bool(state.get("epoch_finished"))


class SeveralIteration(Trigger):
    """Fires after every ``interval`` updates.

    Args:
        interval: the number of updates between firings, >= 1.

    Example:
        >>> from ember.optim import SeveralIteration
        >>> t = SeveralIteration(10)
        >>> [i for i in range(35) if t({"epoch": 1, "iteration": i})]
        [10, 20, 30]
    """

    def __init__(self, interval):
        if interval < 1:
            raise ValueError(f"SeveralIteration: interval must be >= 1, got {interval!r}")
        self.interval = int(interval)

    def __call__(self, state):
        return state["iteration"] > 0 and state["iteration"] % self.interval == 0


class MaxScore(Trigger):
    """Fires when the validation score exceeds ``max_score`` (an end trigger: stop when good enough).

    Args:
        max_score: the threshold.

    Example:
        >>> from ember.optim import MaxScore
        >>> t = MaxScore(0.9)
        >>> t({"score": None}), t({"score": 0.95})
        (False, True)
    """

    def __init__(self, max_score):
        self.max_score = float(max_score)

    def __call__(self, state):
        return state.get("score") is not None and state["score"] > self.max_score


class MinLoss(Trigger):
    """Fires when the training loss falls below ``min_loss`` (an end trigger).

    Args:
        min_loss: the threshold.

    Example:
        >>> from ember.optim import MinLoss
        >>> t = MinLoss(0.1)
        >>> t({"loss": 0.5}), t({"loss": 0.05})
        (False, True)
    """

    def __init__(self, min_loss):
        self.min_loss = float(min_loss)

    def __call__(self, state):
        loss = state.get("loss")
        return loss is not None and not math.isnan(loss) and loss < self.min_loss


class TriggerAnd(Trigger):
    """Fires when all of the given triggers fire.

    Args:
        first, *others: triggers.

    Example:
        >>> from ember.optim import MaxEpoch, MinLoss, TriggerAnd
        >>> t = TriggerAnd(MaxEpoch(1), MinLoss(0.1))
        >>> t({"epoch": 2, "loss": 0.5}), t({"epoch": 2, "loss": 0.05})
        (False, True)
    """

    def __init__(self, first, *others):
        self.triggers = (first,) + others

    def __call__(self, state):
        return all(t(state) for t in self.triggers)


class TriggerOr(Trigger):
    """Fires when any of the given triggers fires.

    Args:
        first, *others: triggers.

    Example:
        >>> from ember.optim import MaxEpoch, MinLoss, TriggerOr
        >>> t = TriggerOr(MaxEpoch(10), MinLoss(0.1))
        >>> t({"epoch": 2, "loss": 0.5}), t({"epoch": 2, "loss": 0.05})
        (False, True)
    """

    def __init__(self, first, *others):
        self.triggers = (first,) + others

    def __call__(self, state):
        return any(t(state) for t in self.triggers)
