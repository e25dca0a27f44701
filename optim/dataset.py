"""In-memory training sets: arrays (several inputs allowed) cut into mini-batches, reshuffled each epoch."""
import numpy as np


def check_batch_size(value, what="batch_size"):
    """``value`` as an int when it is a whole number >= 1; a clear error otherwise (2.7 is not 2)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer, float)) or value != int(value) \
            or int(value) < 1:
        raise ValueError(f"{what} must be an integer >= 1, got {value!r}")
    return int(value)


def _first_nonfinite_row(a):
    if a.dtype.kind not in "fc":
        return None
    # NOTE: a finite sum means every value is finite (NaN and inf carry through a sum), and the sum needs
    # no temporary: MNIST's 60,000 x 784 float32 took 63 ms with the row scan below alone; that scan now
    # runs only when the sum is not finite (a bad row, or finite values whose sum overflows)
    if a.size and np.isfinite(np.add.reduce(a.reshape(-1), dtype=a.dtype)):
        return None
    bad = ~np.isfinite(a.reshape(len(a), -1)).all(axis=1)
    return int(np.argmax(bad)) if bad.any() else None


def _as_list(x, what, allow_nonfinite=False):
    if x is None:
        raise ValueError(f"{what}: got None; expected an array (or a list of arrays, one per model input/output)")
    if isinstance(x, (list, tuple)):
        arrays = [np.asarray(a) for a in x]
    else:
        arrays = [np.asarray(x)]
    for a in arrays:
        if a.ndim == 0:
            raise ValueError(f"{what}: expected arrays with a leading sample axis, got a scalar")
        if a.dtype == object:
            raise TypeError(f"{what}: expected numeric arrays, got dtype object")
        row = None if allow_nonfinite else _first_nonfinite_row(a)
        if row is not None:
            raise ValueError(f"{what}: row {row} holds NaN or infinite values; remove or fill such rows (or build "
                             "ArrayDataset(x, y, allow_nonfinite=True) to use them as they are)")
    return arrays


class ArrayDataset:
    """Samples held as NumPy arrays: ``x`` (an array or a list of arrays, one per model input) and
    ``y`` (the same, or None for prediction). Shuffling uses its own generator, whose state is
    saved in checkpoints so that a resumed run sees the same order.

    Example:
        >>> import numpy as np
        >>> from ember.optim import ArrayDataset
        >>> ds = ArrayDataset(np.zeros((10, 3)), np.arange(10))
        >>> len(ds), [len(i) for i in ds.batches(ds.order(shuffle=False), 4)]
        (10, [4, 4, 2])
    """

    def __init__(self, x, y=None, allow_nonfinite=False, sample_weight=None):
        self.x = _as_list(x, "inputs", allow_nonfinite)
        self.y = None if y is None else _as_list(y, "targets", allow_nonfinite)
        self.x_is_list = isinstance(x, (list, tuple))
        self.y_is_list = isinstance(y, (list, tuple))
        sizes = {len(a) for a in self.x + (self.y or [])}
        if len(sizes) != 1:
            raise ValueError(f"inputs and targets must have the same number of samples, got sizes "
                             f"{[len(a) for a in self.x]} and {[len(a) for a in self.y or []]}")
        self.size = sizes.pop()
        if self.size == 0:
            raise ValueError("the training set is empty")
        self.sample_weight = None if sample_weight is None else _sample_weights(sample_weight, self.size)

    def __len__(self):
        return self.size

    def order(self, shuffle=True, generator=None):
        """The sample order of one epoch."""
        if not shuffle:
            return np.arange(self.size)
        return generator.permutation(self.size)

    @staticmethod
    def batches(order, batch_size):
        return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]

    def take(self, index):
        """The inputs and targets of the samples at ``index``, shaped for the model."""
        xs = [a[index] for a in self.x]
        x = xs if self.x_is_list else xs[0]
        if self.y is None:
            return x, None
        ys = [a[index] for a in self.y]
        return x, (ys if self.y_is_list else ys[0])

    def weights(self, index):
        """The sample weights of the samples at ``index``, or None when the samples are not weighted."""
        return None if self.sample_weight is None else self.sample_weight[index]

    def split(self, fraction):
        """(first, last) datasets with the last ``fraction`` of the samples held out (Keras' validation_split)."""
        if not 0 < fraction < 1:
            raise ValueError(f"validation_split must be in (0, 1), got {fraction!r}")
        cut = int(self.size * (1 - fraction))
        if cut == 0 or cut == self.size:
            raise ValueError(f"validation_split={fraction} leaves an empty part of {self.size} samples")
        head, tail = np.arange(cut), np.arange(cut, self.size)
        return (ArrayDataset(*self._subset(head), sample_weight=self.weights(head)),
                ArrayDataset(*self._subset(tail), sample_weight=self.weights(tail)))

    def _subset(self, index):
        x = [a[index] for a in self.x]
        y = None if self.y is None else [a[index] for a in self.y]
        return (x if self.x_is_list else x[0]), (None if y is None else (y if self.y_is_list else y[0]))


def _sample_weights(sample_weight, size):
    w = np.asarray(sample_weight, dtype=np.float64)
    if w.ndim == 2 and w.shape[1] == 1:
        w = w[:, 0]
    if w.shape != (size,):
        raise ValueError(f"sample_weight must hold one weight per sample, shape ({size},), got shape {w.shape}")
    if not np.all(np.isfinite(w)) or (w < 0).any():
        raise ValueError("sample_weight must be finite and >= 0")
    return w


def class_weights_of(y, class_weight):
    """Keras's sample weights for ``class_weight`` ({class id: weight}): each sample gets its class's weight
    (1.0 for classes not listed); the class is the argmax of a one-hot row, else the rounded label.

    Example:
        >>> import numpy as np
        >>> class_weights_of(np.array([0, 2, 1]), {0: 0.5, 2: 3.0}).tolist()
        [0.5, 3.0, 1.0]
    """
    if not isinstance(class_weight, dict):
        raise TypeError(f"class_weight must be a dict {{class id: weight}}, got {type(class_weight).__name__}")
    if isinstance(y, (list, tuple)):
        raise ValueError("class_weight is only supported for models with a single output (as in Keras); give "
                         "sample_weight instead")
    labels = np.asarray(y)
    if labels.ndim > 1:
        labels = labels.argmax(axis=-1) if labels.shape[-1] != 1 else labels[..., 0]
    labels = np.round(labels).astype(np.int64).reshape(len(labels), -1)[:, 0]
    lookup = {int(k): float(v) for k, v in class_weight.items()}
    return np.array([lookup.get(int(c), 1.0) for c in labels], dtype=np.float64)


def is_spark_data(data):
    """A pyspark RDD or DataFrame (told by type, without importing pyspark)."""
    return (type(data).__module__ or "").startswith("pyspark") and (hasattr(data, "mapPartitions")
                                                                     or hasattr(data, "columns"))


def to_dataset(data, what="training set"):
    """An ``ArrayDataset`` from an ``ArrayDataset`` or a tuple ``(x, y)``."""
    if isinstance(data, ArrayDataset):
        return data
    if isinstance(data, tuple) and len(data) == 2:
        if data[1] is None:
            raise ValueError(f"{what}: the targets (y) are None; expected (x, y) with one target per sample")
        return ArrayDataset(*data)
    raise TypeError(f"{what}: expected (x, y) NumPy arrays or an ArrayDataset, got {type(data).__name__}")


class SampleArrays:
    """A run of samples held as arrays (one Arrow batch of a DataFrame, or a whole partition): ``x`` and
    ``y`` are arrays, or lists of arrays for several inputs / outputs; ``y`` may be None. Unlike
    ``ArrayDataset`` it may be empty, and it slices and concatenates without going through samples one by one.

    Example:
        >>> import numpy as np
        >>> a = SampleArrays(np.zeros((4, 3)), np.arange(4))
        >>> b = SampleArrays.concat([a, a.take([0, 2])])
        >>> len(b), b[1:3].stacked()[1].tolist()
        (6, [1, 2])
    """
    __slots__ = ("x", "y")

    def __init__(self, x, y=None):
        self.x, self.y = x, y

    @staticmethod
    def _first(a):
        return a[0] if isinstance(a, (list, tuple)) else a

    def __len__(self):
        return len(self._first(self.x))

    @staticmethod
    def _index(a, index):
        if a is None:
            return None
        return [v[index] for v in a] if isinstance(a, (list, tuple)) else a[index]

    def take(self, index):
        """The samples at ``index`` (positions, a slice or a boolean mask)."""
        return SampleArrays(self._index(self.x, index), self._index(self.y, index))

    __getitem__ = take

    def stacked(self):
        """(x batch, y batch) shaped for the model."""
        return self.x, self.y

    @staticmethod
    def concat(parts):
        """One SampleArrays of ``parts`` in order (at least one part)."""
        if len(parts) == 1:
            return parts[0]

        def join(values):
            if values[0] is None:
                return None
            if isinstance(values[0], (list, tuple)):
                return [np.concatenate([v[i] for v in values]) for i in range(len(values[0]))]
            return np.concatenate(values)

        return SampleArrays(join([p.x for p in parts]), join([p.y for p in parts]))
