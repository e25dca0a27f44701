"""Training, evaluation and prediction on batches that come one at a time: a Python generator or
iterator yielding ``(x, y)`` / ``(x, y, sample_weight)`` batches, or a ``Sequence`` (Keras's
``keras.utils.Sequence`` / ``PyDataset``: ``__len__`` batches, ``__getitem__(i)``, ``on_epoch_end()``).

An epoch is ``steps`` batches: ``steps_per_epoch`` when given, else ``len(sequence)``, else until the
generator stops. A generator carries on where the previous epoch stopped (Keras's rule); a sequence
starts again from its first batch (in a new random order when shuffling) and hears ``on_epoch_end``.
"""
import logging
import time

import numpy as np

from ember.engine import config, no_grad
from ember.optim.dataset import check_batch_size, class_weights_of
from ember.optim.local import LocalEngine, flat_buffers
from ember.optim.loop import IterationRecord, Segment, add_results
from ember.optim.validation import ValidationResult, score, to_numpy

logger = logging.getLogger("ember.optim")


class Sequence:
    """Base class of a data set read batch by batch (Keras's ``keras.utils.Sequence`` / ``PyDataset``).

    Subclasses implement ``__len__`` (batches per epoch) and ``__getitem__(index)`` (batch ``index`` as
    ``(x, y)`` or ``(x, y, sample_weight)``; ``x`` alone for prediction), and may implement
    ``on_epoch_end``. The constructor takes Keras's ``workers``, ``use_multiprocessing`` and
    ``max_queue_size`` for compatibility: batches are read in the training thread.

    Example:
        >>> import numpy as np
        >>> from ember.optim.stream import BatchStream, Sequence
        >>> class Halves(Sequence):
        ...     def __len__(self):
        ...         return 2
        ...     def __getitem__(self, i):
        ...         return np.full((3, 1), float(i)), np.zeros(3)
        >>> [float(x[0, 0]) for x, _ in BatchStream(Halves()).epoch()]
        [0.0, 1.0]
    """

    def __init__(self, workers=1, use_multiprocessing=False, max_queue_size=10):
        self.workers, self.use_multiprocessing, self.max_queue_size = workers, use_multiprocessing, max_queue_size

    def __len__(self):
        raise NotImplementedError(f"{type(self).__name__} must implement __len__ (the number of batches)")

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must implement __getitem__(index) (batch number index)")

    def on_epoch_end(self):
        pass


PyDataset = Sequence


def is_sequence(data):
    """A Keras-style sequence: indexable batches with a length (not an array, list or tuple of arrays)."""
    return (hasattr(data, "__getitem__") and hasattr(data, "__len__") and not isinstance(data, (list, tuple, dict))
            and not hasattr(data, "shape") and not hasattr(data, "mapPartitions") and not hasattr(data, "columns"))


def is_batch_source(data):
    """A generator, an iterator or a sequence of batches (what ``BatchStream`` takes)."""
    return isinstance(data, BatchStream) or is_sequence(data) or (
        hasattr(data, "__next__") and hasattr(data, "__iter__") and not hasattr(data, "shape"))


def unpack_batch(batch, what):
    """``(x, y, sample_weight)`` from a batch: ``(x,)``, ``(x, y)``, ``(x, y, w)`` or ``x`` alone."""
    if isinstance(batch, list):  # Keras reads a list as a tuple: [x, y] is (x, y)
        batch = tuple(batch)
    if isinstance(batch, tuple):
        if not 1 <= len(batch) <= 3:
            raise ValueError(f"{what}: a batch must be (x,), (x, y) or (x, y, sample_weight), got a tuple of "
                             f"{len(batch)}")
        x, y, w = (tuple(batch) + (None, None))[:3]
        return x, y, w
    return batch, None, None


def _batch_size(x):
    first = x[0] if isinstance(x, (list, tuple)) else x
    return len(first)


class BatchStream:
    """Batches from a generator/iterator or a ``Sequence``, ``steps`` per epoch (see the module docstring).

    Args:
        source: a generator, an iterator or a Sequence.
        steps: batches per epoch (None: ``len(sequence)``, or until the generator stops).
        what: the caller's name for error messages.
        class_weight: ``{class id: weight}`` giving the sample weights of batches that carry none.
    """

    def __init__(self, source, steps=None, what="fit", class_weight=None):
        if isinstance(source, BatchStream):
            source = source.source
        self.source, self.what, self.class_weight = source, what, class_weight
        self.is_sequence = is_sequence(source)
        if not self.is_sequence and not is_batch_source(source):
            raise TypeError(f"{what}: expected a generator, an iterator or a keras.utils.Sequence of batches, got "
                            f"{type(source).__name__}")
        if steps is not None:
            steps = check_batch_size(steps, f"{what}: steps")
        elif self.is_sequence:
            steps = len(source)
            if steps < 1:
                raise ValueError(f"{what}: the Sequence has no batches (len() is {steps})")
        self.steps = steps
        self._iterator = None if self.is_sequence else iter(source)
        self.exhausted = False

    def epoch(self, shuffle=False, generator=None):
        """The batches of one epoch, as they come (raw, not unpacked)."""
        if self.is_sequence:
            order = np.arange(self.steps) % len(self.source)
            if shuffle:
                order = (generator or np.random.default_rng()).permutation(order)
            for i in order:
                yield self.source[int(i)]
            return
        taken = 0
        while self.steps is None or taken < self.steps:
            try:
                batch = next(self._iterator)
            except StopIteration:
                self.exhausted = True
                if self.steps is not None:
                    logger.warning("%s: the generator ran out of data after %d of %d steps of this epoch", self.what,
                                   taken, self.steps)
                return
            taken += 1
            yield batch

    def end_epoch(self):
        if self.is_sequence:
            self.source.on_epoch_end()


class StreamEngine(LocalEngine):
    """Steps on batches from a ``BatchStream`` in this process, one step per segment."""

    def __init__(self, stream):  # (LocalEngine.__init__ takes arrays; a stream has none)
        self.stream = stream if isinstance(stream, BatchStream) else BatchStream(stream)
        self._generator = np.random.default_rng(int(config.rng().integers(2 ** 63)))
        self._batches = None
        self._next = None
        self._estimate = None

    @property
    def size(self):
        """Samples per epoch as far as known (the steps times the first batch's size): for progress only."""
        return self._estimate or 0

    def validation_data(self, data):
        if is_batch_source(data):
            return data if isinstance(data, BatchStream) else BatchStream(data, what="validation_data")
        return super().validation_data(data)

    def prepare(self, loop):
        pass  # the model is built by its first batch

    def begin_epoch(self, loop):
        self._batches = self.stream.epoch(loop.shuffle, self._generator)
        self._next = self._draw()
        self._step_in_epoch = 0
        if self._next is None:
            logger.warning("%s: the input ran out of data; training stops (give steps_per_epoch * epochs batches, "
                           "or a keras.utils.Sequence)", self.stream.what)
            loop.stop_training = True

    def _draw(self):
        try:
            return next(self._batches)
        except StopIteration:
            return None

    def run_segment(self, loop, start, stop):
        if self._next is None:  # nothing left (see begin_epoch)
            return Segment([])
        x, y, w = unpack_batch(self._next, self.stream.what)
        if y is None:
            raise ValueError(f"{self.stream.what}: training batches must hold targets: (x, y) or (x, y, sample_weight)")
        if self.stream.class_weight is not None:
            if w is not None:
                raise ValueError(f"{self.stream.what}: give class_weight or batches with sample weights, not both")
            w = class_weights_of(y, self.stream.class_weight)
        n = _batch_size(x)
        self._step_in_epoch += 1
        if self._estimate is None:
            steps = self.stream.steps
            self._estimate = n * steps if steps is not None else None
        lr = loop.optim_method.learning_rate_at(
            loop.schedule.get_learning_rate(loop.optim_method.learning_rate, start, loop.state["epoch"]))
        if not loop.model.built:
            with no_grad():
                loop.model(x, training=False)
        flat_buffers(loop.model)
        t0 = time.perf_counter()
        loss, out = self._step(loop, x, y, lr, start, None if w is None else np.asarray(w, dtype=np.float64))
        dt = time.perf_counter() - t0
        metrics = self._score(loop, out, y, w)
        self._next = self._draw()  # one batch ahead: a generator's last batch ends the epoch
        last = self._next is None
        if last:
            self.stream.end_epoch()
        return Segment([IterationRecord(start + 1, loss, n, dt, lr, ends_epoch=last)], metrics)

    def evaluate(self, loop, data, batch_size, methods):
        loop.model.eval()
        try:
            if isinstance(data, BatchStream):
                return evaluate_stream(loop.model, data, methods)
            return super().evaluate(loop, data, batch_size, methods)
        finally:
            loop.model.train()

    def checkpoint_state(self, loop):
        return loop.optim_method.state_dict(), {"shuffle_rng": self._generator.bit_generator.state}, None

    def restore(self, loop, loaded):
        if loaded.train_state.get("position", 0) > 0:
            raise ValueError(f"resume: {loaded.path!r} stopped mid-epoch; training from a generator resumes only "
                             "from a checkpoint written at the end of an epoch")
        loop.model.set_weights(loaded.weights)
        loop.optim_method.load_state_dict(loaded.optim_state)


def evaluate_stream(model, stream, methods):
    """Sum each validation method's results over one epoch of ``stream`` (inference mode is the caller's);
    the Keras loss counts the model's penalties, as in ``evaluate_dataset``."""
    totals = None
    penalized = [getattr(m, "keras_loss", False) and not getattr(m, "output_loss", False) for m in methods]
    with no_grad():
        for batch in stream.epoch():
            x, y, w = unpack_batch(batch, stream.what)
            if y is None:
                raise ValueError(f"{stream.what}: batches must hold targets: (x, y) or (x, y, sample_weight)")
            out = model(x, training=False)  # score() picks each method's output of a model with several
            penalty = model.penalty() if any(penalized) else None
            results = []
            for m, adds in zip(methods, penalized):
                r = score(m, out, y, w)
                if penalty is not None and adds:
                    r = ValidationResult(r.total + float(to_numpy(penalty)) * r.count, r.count, r.name)
                results.append(r)
            totals = add_results(totals, results)
        stream.end_epoch()
    if totals is None:
        raise ValueError(f"{stream.what}: the input gave no batches")
    return totals


def predict_stream(model, stream):
    """Model outputs for one epoch of ``stream`` (batches ``x``, ``(x,)`` or ``(x, y...)``), concatenated."""
    parts = []
    with no_grad():
        for batch in stream.epoch():
            x, _, _ = unpack_batch(batch, stream.what)
            out = model(x, training=False)
            parts.append([to_numpy(o) for o in out] if isinstance(out, (list, tuple)) else [to_numpy(out)])
        stream.end_epoch()
    if not parts:
        raise ValueError(f"{stream.what}: the input gave no batches")
    merged = [np.concatenate([p[i] for p in parts]) for i in range(len(parts[0]))]
    return merged if len(merged) > 1 else merged[0]
