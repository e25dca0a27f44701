"""Training and validation summaries as TensorBoard event files (BigDL's TrainSummary/ValidationSummary).

Files go to ``log_dir/app_name/train`` and ``log_dir/app_name/validation``; point TensorBoard at
``log_dir``. Writing uses tensorboardX (a small, well-kept writer of the event-file format);
``read_scalar`` reads the files back without TensorBoard.
"""
import glob
import os
import struct

import numpy as np


class Summary:
    """Base: an event-file writer in ``log_dir/app_name/<folder>``."""

    folder = None

    def __init__(self, log_dir, app_name):
        self.log_dir, self.app_name = os.fspath(log_dir), app_name
        self.path = os.path.join(self.log_dir, app_name, self.folder)
        self._writer = None
        self._writers = 0  # writers opened so far (each writes its own event file)
        self._triggers = {}

    def _get_writer(self):
        if self._writer is None:
            from tensorboardX import SummaryWriter

            os.makedirs(self.path, exist_ok=True)
            # NOTE: tensorboardX names a file by the second it opens it and opens it with 'wb': a writer
            # opened again within that second (after read_scalar) would empty the first one's file
            self._writers += 1
            self._writer = SummaryWriter(logdir=self.path, flush_secs=10,
                                         filename_suffix=f".{os.getpid()}.{id(self):x}.{self._writers}")
        return self._writer

    def add_scalar(self, tag, value, step):
        self._get_writer().add_scalar(tag, float(value), int(step))

    def add_histogram(self, tag, values, step):
        self._get_writer().add_histogram(tag, np.asarray(values, dtype=np.float64), int(step))

    def flush(self):
        if self._writer is not None:
            self._writer.flush()

    def close(self):
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def read_scalar(self, tag):
        """All values written for ``tag``: a list of (step, value, wall_time), ordered by step.

        The writer is closed first (tensorboardX writes from a thread, and its ``flush`` does not wait for
        the values still queued); values added later go to a new event file in the same folder.
        """
        self.close()
        return read_scalars(self.path, tag)


class TrainSummary(Summary):
    """Per-iteration "Loss", "Throughput" and "LearningRate"; "Parameters" histograms (one per weight)
    when enabled by ``set_summary_trigger("Parameters", trigger)``. Written as TensorBoard event files
    in ``log_dir/app_name/train``; ``read_scalar(tag)`` reads them back.

    Args:
        log_dir: the folder to point TensorBoard at.
        app_name: the run's sub-folder.

    Example:
        >>> import tempfile
        >>> import numpy as np, ember
        >>> from ember.layers import Dense
        >>> from ember.optim import Optimizer, SGD, MaxIteration, TrainSummary
        >>> summary = TrainSummary(tempfile.mkdtemp(), "demo")
        >>> model = ember.Sequential([Dense(1, input_shape=(2,))])
        >>> x, y = np.ones((8, 2), "float32"), np.ones((8, 1), "float32")
        >>> opt = Optimizer(model, (x, y), "mse", SGD(0.1), MaxIteration(3), batch_size=4)
        >>> _ = opt.set_train_summary(summary).set_progress(0).optimize()
        >>> [step for step, value, wall_time in summary.read_scalar("Loss")]
        [1, 2, 3]
    """

    folder = "train"

    def set_summary_trigger(self, name, trigger):
        if name not in ("Loss", "Throughput", "LearningRate", "Parameters"):
            raise ValueError(f"TrainSummary: unknown summary {name!r}; expected Loss, Throughput, LearningRate "
                             "or Parameters")
        self._triggers[name] = trigger
        return self

    def get_summary_trigger(self, name):
        return self._triggers.get(name)


class ValidationSummary(Summary):
    """One scalar per validation method (its name, e.g. "Top1Accuracy"), at each validation; written as
    TensorBoard event files in ``log_dir/app_name/validation``.

    Args:
        log_dir: the folder to point TensorBoard at.
        app_name: the run's sub-folder.

    Example:
        >>> import tempfile
        >>> from ember.optim import ValidationSummary
        >>> summary = ValidationSummary(tempfile.mkdtemp(), "demo")
        >>> summary.add_scalar("Top1Accuracy", 0.75, step=10)
        >>> [(step, value) for step, value, _ in summary.read_scalar("Top1Accuracy")]
        [(10, 0.75)]
    """

    folder = "validation"


def _records(path):
    with open(path, "rb") as f:
        while True:
            header = f.read(12)
            if len(header) < 12:
                return
            (length,) = struct.unpack("<Q", header[:8])
            data = f.read(length)
            f.read(4)
            if len(data) < length:
                return  # a record still being written
            yield data


def read_scalars(folder, tag):
    """(step, value, wall_time) for ``tag`` from every event file in ``folder``, ordered by step."""
    from tensorboardX.proto import event_pb2

    found = []
    for path in sorted(glob.glob(os.path.join(folder, "events.out.tfevents.*"))):
        for data in _records(path):
            event = event_pb2.Event.FromString(data)
            for value in event.summary.value:
                if value.tag == tag:
                    found.append((int(event.step), float(value.simple_value), float(event.wall_time)))
    return sorted(found, key=lambda r: (r[0], r[2]))
