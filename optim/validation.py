"""Validation methods (BigDL names): score a model's outputs against targets, batch by batch.

``method(output, target)`` returns a ``ValidationResult``; results of several batches (or of several
Spark partitions) add up with ``+`` and give the final ``(value, count)`` by ``result()``. Class
labels are 0-based.
"""
import numpy as np

from ember.engine import Tensor
from ember.layers import losses as losses_module


def to_numpy(a):
    """A Tensor, a CuPy array or array-like as a NumPy array (copied from the GPU when needed)."""
    data = a.data if isinstance(a, Tensor) else a
    return data.get() if hasattr(data, "get") else np.asarray(data)


class ValidationResult:
    """A sum and a count; ``value = total / count``."""

    def __init__(self, total, count, name):
        # a count is a number of samples, or a sum of sample weights (``score`` with sample_weight)
        count = float(count)
        self.total, self.count, self.name = float(total), int(count) if count.is_integer() else count, name

    def result(self):
        return (self.total / self.count if self.count else float("nan")), self.count

    def __add__(self, other):
        if other is None or other == 0:
            return self
        return ValidationResult(self.total + other.total, self.count + other.count, self.name)

    __radd__ = __add__

    def __repr__(self):
        value, count = self.result()
        return f"{self.name}: {value:.6g} (count {count})"


class AUCResult(ValidationResult):
    """Keeps every score and label; the AUC of the union is exact (ranks, ties averaged)."""

    def __init__(self, scores, labels, name="AUC"):
        self.scores, self.labels, self.name = scores, labels, name
        self.count = len(scores)

    def result(self):
        positives = int(self.labels.sum())
        negatives = self.count - positives
        if positives == 0 or negatives == 0:
            return float("nan"), self.count
        from scipy.stats import rankdata  # noqa: PLC0415 - scipy.stats is slow to import; only AUC needs it

        ranks = rankdata(self.scores)
        auc = (ranks[self.labels == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives)
        return float(auc), self.count

    def __add__(self, other):
        if other is None or other == 0:
            return self
        return AUCResult(np.concatenate([self.scores, other.scores]), np.concatenate([self.labels, other.labels]))

    __radd__ = __add__


class ValidationMethod:
    """Base class of validation methods (metrics): ``method(output, target)`` scores one batch.

    It returns a ``ValidationResult``; results of several batches (or Spark partitions) add up with
    ``+``, and ``result()`` gives ``(value, count)``. Subclasses set ``name`` and implement ``__call__``.

    Example:
        >>> import numpy as np
        >>> from ember.optim import ValidationMethod
        >>> from ember.optim.validation import ValidationResult
        >>> class MaxError(ValidationMethod):
        ...     name = "MaxError"
        ...     def __call__(self, output, target):
        ...         return ValidationResult(np.abs(output - target).sum(), len(target), self.name)
        >>> MaxError()(np.array([1.0, 2.0]), np.array([1.0, 4.0]))
        MaxError: 1 (count 2)
    """
    name = "ValidationMethod"

    def __call__(self, output, target):
        raise NotImplementedError

    def __repr__(self):
        return f"{type(self).__name__}()"


def _class_targets(name, target, n):
    t = to_numpy(target)
    if t.ndim == 2 and t.shape[1] > 1:  # one-hot
        t = t.argmax(axis=1)
    t = t.reshape(-1)
    if t.shape[0] != n:
        raise ValueError(f"{name}: {n} outputs but {t.shape[0]} targets")
    return t.astype(np.int64)


class Top1Accuracy(ValidationMethod):
    """Fraction of samples whose highest-scoring class is the target (targets: class ids or one-hot).
    A single output column is read as a probability thresholded at 0.5.

    Example:
        >>> import numpy as np
        >>> from ember.optim import Top1Accuracy
        >>> Top1Accuracy()(np.array([[0.9, 0.1], [0.3, 0.7], [0.6, 0.4]]), np.array([0, 1, 1])).result()
        (0.6666666666666666, 3)
    """

    name = "Top1Accuracy"

    def __call__(self, output, target):
        out = to_numpy(output)
        if out.ndim == 1 or (out.ndim == 2 and out.shape[1] == 1):
            pred = (out.reshape(-1) > 0.5).astype(np.int64)
        elif out.ndim == 2:
            pred = out.argmax(axis=1)
        else:
            raise ValueError(f"{self.name}: expected outputs of shape (batch, classes), got {out.shape}")
        t = _class_targets(self.name, target, pred.shape[0])
        return ValidationResult((pred == t).sum(), pred.shape[0], self.name)


class Top5Accuracy(ValidationMethod):
    """Fraction of samples whose target is among the five highest-scoring classes (targets: class ids or one-hot).

    Example:
        >>> import numpy as np
        >>> from ember.optim import Top5Accuracy
        >>> out = np.tile([0.3, 0.25, 0.2, 0.15, 0.07, 0.03], (2, 1))  # classes 0..4 are the top five
        >>> Top5Accuracy()(out, np.array([4, 5])).result()
        (0.5, 2)
    """

    name = "Top5Accuracy"

    def __call__(self, output, target):
        out = to_numpy(output)
        if out.ndim != 2:
            raise ValueError(f"{self.name}: expected outputs of shape (batch, classes), got {out.shape}")
        t = _class_targets(self.name, target, out.shape[0])
        k = min(5, out.shape[1])
        top = np.argpartition(-out, k - 1, axis=1)[:, :k]
        return ValidationResult((top == t[:, None]).any(axis=1).sum(), out.shape[0], self.name)


class Loss(ValidationMethod):
    """Mean of a loss over the samples (default: sparse categorical cross-entropy on probabilities).

    Args:
        criterion: a loss name or object (see ``ember.losses``).

    Example:
        >>> import numpy as np
        >>> from ember.optim import Loss
        >>> value, count = Loss("mse")(np.array([[1.0], [3.0]]), np.array([[0.0], [3.0]])).result()
        >>> round(value, 4), count
        (0.5, 2)
    """

    name = "Loss"

    def __init__(self, criterion="sparse_categorical_crossentropy"):
        if isinstance(criterion, (list, tuple)):  # one per output of a model with several: their sum
            self.criterion = [losses_module.get(c) for c in criterion]
            self.all_outputs = True
        else:
            self.criterion = losses_module.get(criterion)

    def __call__(self, output, target):
        from ember.engine import no_grad

        if isinstance(self.criterion, list):
            if not isinstance(output, (list, tuple)) or len(output) != len(self.criterion):
                raise ValueError(f"{self.name}: {len(self.criterion)} losses but "
                                 f"{len(output) if isinstance(output, (list, tuple)) else 1} output(s)")
            parts = [Loss(c)(o, t) for c, o, t in zip(self.criterion, output, target)]
            return ValidationResult(sum(p.total for p in parts), parts[0].count, self.name)
        out = output if isinstance(output, Tensor) else Tensor(to_numpy(output))
        with no_grad():
            value = float(to_numpy(self.criterion(target, out)))
        n = out.shape[0]
        return ValidationResult(value * n, n, self.name)

    def __repr__(self):
        return f"Loss({self.criterion!r})"


class _ElementwiseError(ValidationMethod):
    """Mean over all elements of an error of (output - target)."""

    @staticmethod
    def error(difference):
        raise NotImplementedError

    def __call__(self, output, target):
        out, t = to_numpy(output), to_numpy(target)
        t = t.reshape(out.shape) if t.size == out.size else t
        if t.shape != out.shape:
            raise ValueError(f"{self.name}: output shape {out.shape} and target shape {t.shape} differ")
        return ValidationResult(self.error(out - t).sum(), out.size, self.name)


class MAE(_ElementwiseError):
    """Mean absolute error over all elements (Keras' ``MeanAbsoluteError``).

    Example:
        >>> import numpy as np
        >>> from ember.optim import MAE
        >>> MAE()(np.array([1.0, 2.0]), np.array([2.0, 4.0])).result()
        (1.5, 2)
    """

    name = "MAE"
    error = staticmethod(np.abs)


class MSE(_ElementwiseError):
    """Mean squared error over all elements (Keras' ``MeanSquaredError``).

    Example:
        >>> import numpy as np
        >>> from ember.optim import MSE
        >>> MSE()(np.array([1.0, 2.0]), np.array([2.0, 4.0])).result()
        (2.5, 2)
    """

    name = "MSE"
    error = staticmethod(np.square)


class AUC(ValidationMethod):
    """Area under the ROC curve for binary targets (0/1); outputs are scores of class 1, shape (batch,)
    or (batch, 1), or two-column probabilities (column 1 is used). Results of several batches add up
    exactly (every score is kept).

    Example:
        >>> import numpy as np
        >>> from ember.optim import AUC
        >>> first = AUC()(np.array([0.1, 0.8]), np.array([0, 1]))
        >>> second = AUC()(np.array([0.6, 0.4]), np.array([0, 1]))
        >>> (first + second).result()
        (0.75, 4)
    """

    name = "AUC"

    def __call__(self, output, target):
        out = to_numpy(output)
        if out.ndim == 2 and out.shape[1] == 2:
            out = out[:, 1]
        out = out.reshape(-1)
        t = to_numpy(target).reshape(-1)
        if t.shape[0] != out.shape[0]:
            raise ValueError(f"{self.name}: {out.shape[0]} scores but {t.shape[0]} targets")
        if not np.isin(t, (0, 1)).all():
            raise ValueError(f"{self.name}: targets must be 0 or 1")
        return AUCResult(out.astype(np.float64), t.astype(np.int64))


class SparseCategoricalAccuracy(Top1Accuracy):
    """Keras' ``sparse_categorical_accuracy``: the argmax of each output row equals the integer target.

    Example:
        >>> import numpy as np
        >>> from ember.metrics import SparseCategoricalAccuracy
        >>> SparseCategoricalAccuracy()(np.array([[0.9, 0.1], [0.2, 0.8]]), np.array([0, 0])).result()
        (0.5, 2)
    """

    name = "sparse_categorical_accuracy"


class CategoricalAccuracy(Top1Accuracy):
    """Keras' ``categorical_accuracy``: the argmax of each output row equals the argmax of the one-hot target.

    Example:
        >>> import numpy as np
        >>> from ember.metrics import CategoricalAccuracy
        >>> CategoricalAccuracy()(np.array([[0.9, 0.1], [0.2, 0.8]]), np.array([[1, 0], [1, 0]])).result()
        (0.5, 2)
    """

    name = "categorical_accuracy"


class BinaryAccuracy(ValidationMethod):
    """Keras' ``binary_accuracy``: the fraction of elements where ``output > threshold`` equals the 0/1 target
    (every output column counts, as in Keras for multi-label outputs).

    Example:
        >>> import numpy as np
        >>> from ember.metrics import BinaryAccuracy
        >>> BinaryAccuracy()(np.array([[0.2], [0.7], [0.9]]), np.array([0, 1, 0])).result()
        (0.6666666666666666, 3)
    """

    name = "binary_accuracy"

    def __init__(self, threshold=0.5):
        self.threshold = float(threshold)

    def __call__(self, output, target):
        out, t = to_numpy(output), to_numpy(target)
        if t.size != out.size:
            raise ValueError(f"{self.name}: {out.size} outputs but {t.size} targets; expected one 0/1 target per "
                             f"output element (output shape {out.shape})")
        hits = (out.reshape(-1) > self.threshold) == (t.reshape(-1) > 0.5)
        return ValidationResult(hits.sum(), out.size, self.name)


class TopKCategoricalAccuracy(ValidationMethod):
    """Keras' ``top_k_categorical_accuracy``: the target (class id or one-hot) is among the ``k``
    highest-scoring classes.

    Example:
        >>> import numpy as np
        >>> from ember.metrics import TopKCategoricalAccuracy
        >>> TopKCategoricalAccuracy(k=2)(np.array([[0.1, 0.5, 0.4], [0.6, 0.3, 0.1]]), np.array([2, 2])).result()
        (0.5, 2)
    """

    name = "top_k_categorical_accuracy"

    def __init__(self, k=5):
        if int(k) < 1:
            raise ValueError(f"{type(self).__name__}: k must be >= 1, got {k!r}")
        self.k = int(k)

    def __call__(self, output, target):
        out = to_numpy(output)
        if out.ndim != 2:
            raise ValueError(f"{self.name}: expected outputs of shape (batch, classes), got {out.shape}")
        t = _class_targets(self.name, target, out.shape[0])
        k = min(self.k, out.shape[1])
        top = np.argpartition(-out, k - 1, axis=1)[:, :k]
        return ValidationResult((top == t[:, None]).any(axis=1).sum(), out.shape[0], self.name)


class SparseTopKCategoricalAccuracy(TopKCategoricalAccuracy):
    """Keras' ``sparse_top_k_categorical_accuracy`` (integer targets): the target is among the ``k``
    highest-scoring classes.

    Args:
        k: how many of the top classes count, >= 1.

    Example:
        >>> import numpy as np
        >>> from ember.metrics import SparseTopKCategoricalAccuracy
        >>> out = np.array([[0.5, 0.3, 0.2], [0.1, 0.2, 0.7]])
        >>> SparseTopKCategoricalAccuracy(k=2)(out, np.array([1, 0])).result()
        (0.5, 2)
    """

    name = "sparse_top_k_categorical_accuracy"


class MeanMetricWrapper(ValidationMethod):
    """A metric written as a plain function ``fn(y_true, y_pred)`` (Keras's custom metrics): the mean of its
    values over the samples, weighted by batch size. It receives NumPy arrays and may use ``ember.backend``.

    Example:
        >>> import numpy as np
        >>> def close(y_true, y_pred):
        ...     return np.abs(y_pred[:, 0] - y_true) < 0.5
        >>> MeanMetricWrapper(close)(np.array([[0.2], [0.9]]), np.array([0.0, 0.0])).result()
        (0.5, 2)
    """

    def __init__(self, fn):
        self.fn = fn
        self.name = getattr(fn, "__name__", "metric")

    def __call__(self, output, target):
        out, t = to_numpy(output), to_numpy(target)
        if t.ndim == out.ndim - 1 and out.shape[-1] == 1:  # labels (N,) against outputs (N, 1), as Keras
            t = t.reshape(out.shape)
        values = np.asarray(to_numpy(self.fn(t, out)), dtype=np.float64)
        n = out.shape[0]
        return ValidationResult(values.mean() * n, n, self.name)

    def __repr__(self):
        return f"MeanMetricWrapper({self.name})"


def select_output(method, output, target):
    """The output and target that ``method`` scores, for a model with several outputs: those of its
    ``output_index`` (Keras's per-output metrics; default the first), or all of them for a method with
    ``all_outputs`` (the total loss). A model with one output: ``output`` and ``target`` as they are.

    Example:
        >>> import numpy as np
        >>> from ember.optim.validation import MAE, select_output
        >>> m = MAE(); m.output_index = 1
        >>> select_output(m, [np.zeros(2), np.ones(2)], [np.zeros(2), np.full(2, 3.0)])
        (array([1., 1.]), array([3., 3.]))
    """
    if not isinstance(output, (list, tuple)) or getattr(method, "all_outputs", False):
        return output, target
    k = getattr(method, "output_index", None) or 0
    if k >= len(output):
        raise ValueError(f"metric {method.name!r} is for output {k} but the model gave {len(output)} output(s)")
    return output[k], (target[k] if isinstance(target, (list, tuple)) else target)


def score(method, output, target, sample_weight=None):
    """``method(output, target)`` on a batch whose samples carry weights, as Keras uses them: the Keras loss (a
    ``Loss`` with ``keras_loss`` set) is ``sum(w * loss) / number of samples``; a method with ``weighted``
    set (Keras's ``weighted_metrics``) is the weighted mean ``sum(w * value) / sum(w)``; other metrics
    ignore the weights (Keras's ``metrics``).

    The samples are scored in groups of equal weight (class weights give one group per class).

    Example:
        >>> import numpy as np
        >>> out = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
        >>> accuracy = Top1Accuracy()
        >>> accuracy.weighted = True
        >>> score(accuracy, out, np.array([0, 0, 0]), np.array([3.0, 1.0, 0.0])).result()
        (0.75, 4)
    """
    output, target = select_output(method, output, target)
    per_loss = getattr(method, "keras_loss", False)
    if sample_weight is None or not (per_loss or getattr(method, "weighted", False)):
        return method(output, target)
    if isinstance(method, AUC):
        raise ValueError("AUC with sample weights is not supported; use it as an unweighted metric")
    several = isinstance(output, (list, tuple))
    out = [to_numpy(o) for o in output] if several else to_numpy(output)
    t = [to_numpy(v) for v in target] if several else to_numpy(target)
    rows = out[0].shape[0] if several else out.shape[0]
    w = np.asarray(to_numpy(sample_weight), dtype=np.float64).reshape(-1)
    if w.shape[0] != rows:
        raise ValueError(f"sample_weight: {w.shape[0]} weights for {rows} samples")
    total = count = 0.0
    for value in np.unique(w):
        index = np.flatnonzero(w == value)
        r = (method([o[index] for o in out], [v[index] for v in t]) if several
             else method(out[index], t[index]))
        total += value * r.total
        count += r.count if per_loss else value * r.count
    return ValidationResult(total, count, method.name)


_BY_NAME = {"accuracy": Top1Accuracy, "acc": Top1Accuracy, "top1": Top1Accuracy, "top1accuracy": Top1Accuracy,
            "top5": Top5Accuracy, "top5accuracy": Top5Accuracy,
            "loss": Loss, "mae": MAE, "mean_absolute_error": MAE, "mse": MSE, "mean_squared_error": MSE, "auc": AUC,
            "sparse_categorical_accuracy": SparseCategoricalAccuracy, "categorical_accuracy": CategoricalAccuracy,
            "binary_accuracy": BinaryAccuracy, "top_k_categorical_accuracy": TopKCategoricalAccuracy,
            "sparse_top_k_categorical_accuracy": SparseTopKCategoricalAccuracy}


def metric_names():
    """The names ``get`` accepts."""
    return set(_BY_NAME)


def get(identifier):
    """A validation method from an instance or a name ("accuracy", "top5", "mae", "mse", "auc", "loss",
    Keras' metric names, or a loss name).

    Args:
        identifier: a ``ValidationMethod`` (returned as is) or a name.

    Example:
        >>> from ember import metrics
        >>> metrics.get("accuracy"), metrics.get("mae")
        (Top1Accuracy(), MAE())
    """
    if isinstance(identifier, ValidationMethod):
        return identifier
    if isinstance(identifier, str) and identifier.lower() in _BY_NAME:
        return _BY_NAME[identifier.lower()]()
    if callable(identifier) and not isinstance(identifier, type):
        return MeanMetricWrapper(identifier)  # a function metric(y_true, y_pred), as Keras takes them
    if isinstance(identifier, str) and identifier in losses_module.names():
        method = Loss(identifier)  # a loss used as a metric (Keras allows metrics=["binary_crossentropy"])
        method.name = identifier
        return method
    raise ValueError(f"unknown metric {identifier!r}: expected one of {sorted(_BY_NAME)}, a loss name or a "
                     "ValidationMethod")
