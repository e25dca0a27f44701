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
    def __call__(self, state):
        raise NotImplementedError

    def __repr__(self):
        args = ", ".join(f"{v!r}" for v in vars(self).values())
        return f"{type(self).__name__}({args})"


class MaxEpoch(Trigger):
    """Fires once ``max_epoch`` epochs are done (an end trigger)."""

    def __init__(self, max_epoch):
        if max_epoch < 0:
            raise ValueError(f"MaxEpoch: expected a count >= 0, got {max_epoch!r}")
        self.max_epoch = int(max_epoch)

    def __call__(self, state):
        return state["epoch"] > self.max_epoch


class MaxIteration(Trigger):
    """Fires once ``max_iteration`` updates are done (an end trigger)."""

    def __init__(self, max_iteration):
        if max_iteration < 0:
            raise ValueError(f"MaxIteration: expected a count >= 0, got {max_iteration!r}")
        self.max_iteration = int(max_iteration)

    def __call__(self, state):
        return state["iteration"] >= self.max_iteration


class EveryEpoch(Trigger):
    """Fires at the end of every epoch."""

    def __call__(self, state):
        return bool(state.get("epoch_finished"))


class SeveralIteration(Trigger):
    """Fires after every ``interval`` updates."""

    def __init__(self, interval):
        if interval < 1:
            raise ValueError(f"SeveralIteration: interval must be >= 1, got {interval!r}")
        self.interval = int(interval)

    def __call__(self, state):
        return state["iteration"] > 0 and state["iteration"] % self.interval == 0


class MaxScore(Trigger):
    """Fires when the validation score exceeds ``max_score``."""

    def __init__(self, max_score):
        self.max_score = float(max_score)

    def __call__(self, state):
        return state.get("score") is not None and state["score"] > self.max_score


class MinLoss(Trigger):
    """Fires when the training loss falls below ``min_loss``."""

    def __init__(self, min_loss):
        self.min_loss = float(min_loss)

    def __call__(self, state):
        loss = state.get("loss")
        return loss is not None and not math.isnan(loss) and loss < self.min_loss


class TriggerAnd(Trigger):
    """Fires when all of ``triggers`` fire."""

    def __init__(self, first, *others):
        self.triggers = (first,) + others

    def __call__(self, state):
        return all(t(state) for t in self.triggers)


class TriggerOr(Trigger):
    """Fires when any of ``triggers`` fires."""

    def __init__(self, first, *others):
        self.triggers = (first,) + others

    def __call__(self, state):
        return any(t(state) for t in self.triggers)
