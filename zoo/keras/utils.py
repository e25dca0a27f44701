"""Keras's array utilities: ``to_categorical`` and ``pad_sequences`` (same arguments, same results).

Example:
    >>> from ember.utils import to_categorical, pad_sequences
    >>> to_categorical([0, 2], 3).tolist()
    [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]
    >>> pad_sequences([[1, 2, 3], [4]], maxlen=2).tolist()
    [[2, 3], [0, 4]]
"""
import numpy as np


def to_categorical(x, num_classes=None):
    """One-hot rows for integer class ids ``x`` (any shape; a trailing axis of size 1 is dropped).

    Args:
        x: 0-based integer class ids.
        num_classes: the number of classes (default: ``max(x) + 1``).

    Returns:
        float32 array of shape ``x.shape + (num_classes,)``.

    Example:
        >>> from ember.utils import to_categorical
        >>> to_categorical([0, 2, 1], num_classes=4)
        array([[1., 0., 0., 0.],
               [0., 0., 1., 0.],
               [0., 1., 0., 0.]], dtype=float32)
    """
    x = np.asarray(x)
    if x.dtype.kind == "f":
        if not np.all(x == np.floor(x)):
            raise ValueError("to_categorical: expected integer class ids, got non-integral values")
    elif x.dtype.kind not in "iub":
        raise TypeError(f"to_categorical: expected integer class ids, got dtype {x.dtype}")
    x = x.astype(np.int64)
    if x.ndim > 1 and x.shape[-1] == 1:
        x = x[..., 0]
    if num_classes is None:
        num_classes = int(x.max()) + 1 if x.size else 0
    num_classes = int(num_classes)
    if x.size and (x.min() < 0 or x.max() >= num_classes):
        raise ValueError(f"to_categorical: class ids must be in [0, {num_classes}), got range [{x.min()}, {x.max()}]")
    out = np.zeros(x.shape + (num_classes,), dtype=np.float32)
    np.put_along_axis(out, x[..., None], 1.0, axis=-1)
    return out


def pad_sequences(sequences, maxlen=None, dtype="int32", padding="pre", truncating="pre", value=0.0):
    """Cut or pad a list of sequences to one length (Keras's ``pad_sequences``).

    Args:
        sequences: a list of sequences (lists or arrays; each element a scalar or an array of one shape).
        maxlen: the length (default: the longest sequence).
        dtype: the dtype of the result.
        padding, truncating: ``"pre"`` (at the start) or ``"post"`` (at the end).
        value: the padding value.

    Returns:
        array of shape ``(len(sequences), maxlen) + element_shape``.

    Example:
        >>> from ember.utils import pad_sequences
        >>> pad_sequences([[1, 2, 3], [4]], maxlen=2)
        array([[2, 3],
               [0, 4]], dtype=int32)
        >>> pad_sequences([[1, 2, 3], [4]], padding="post", truncating="post", value=-1)
        array([[ 1,  2,  3],
               [ 4, -1, -1]], dtype=int32)
    """
    for what, where in (("padding", padding), ("truncating", truncating)):
        if where not in ("pre", "post"):
            raise ValueError(f"pad_sequences: {what} must be 'pre' or 'post', got {where!r}")
    if not hasattr(sequences, "__len__"):
        raise TypeError("pad_sequences: sequences must be a list of sequences")
    lengths = []
    for i, s in enumerate(sequences):
        if not hasattr(s, "__len__"):
            raise ValueError(f"pad_sequences: sequence {i} is not a sequence: {s!r}")
        lengths.append(len(s))
    if maxlen is None:
        maxlen = max(lengths, default=0)
    maxlen = int(maxlen)
    element_shape = ()
    for s in sequences:
        if len(s):
            element_shape = np.asarray(s).shape[1:]
            break
    out = np.full((len(sequences), maxlen) + element_shape, value, dtype=dtype)
    for i, s in enumerate(sequences):
        if not len(s) or maxlen == 0:
            continue
        s = np.asarray(s)
        trunc = s[-maxlen:] if truncating == "pre" else s[:maxlen]
        if trunc.shape[1:] != element_shape:
            raise ValueError(f"pad_sequences: sequence {i} has elements of shape {trunc.shape[1:]}, expected "
                             f"{element_shape} like the others")
        if padding == "post":
            out[i, :len(trunc)] = trunc
        else:
            out[i, -len(trunc):] = trunc
    return out
