"""Spark data for ember: RDDs of (features, label) samples from DataFrames or from arrays on the
driver, and the form of a training RDD that Spark's barrier mode accepts."""
import numpy as np

from ember.optim.dataset import is_spark_data  # noqa: F401 - part of this module's interface


def _as_array(value):
    if hasattr(value, "toArray"):  # pyspark.ml.linalg vectors
        return value.toArray()
    return np.asarray(value)


def to_sample_rdd(data, feature_cols=None, label_cols=None):
    """An RDD of (features, label) samples from an RDD of such pairs, or from a DataFrame: the
    features are ``feature_cols`` (one array/vector column, or several numeric columns stacked;
    default "features") and the label ``label_cols`` (one column, or several stacked; default "label")."""
    if hasattr(data, "rdd") and hasattr(data, "columns"):  # a DataFrame
        feature_cols = feature_cols or "features"
        label_cols = label_cols or "label"
        feature_cols = [feature_cols] if isinstance(feature_cols, str) else list(feature_cols)
        label_cols = [label_cols] if isinstance(label_cols, str) else list(label_cols)
        missing = [c for c in feature_cols + label_cols if c not in data.columns]
        if missing:
            raise ValueError(f"columns {missing} are not in the DataFrame (it has {data.columns}); name the "
                             "feature and label columns (feature_cols=..., label_cols=...)")

        def row_to_sample(row):
            if len(feature_cols) == 1:
                x = _as_array(row[feature_cols[0]]).astype(np.float32)
            else:
                x = np.array([float(row[c]) for c in feature_cols], dtype=np.float32)
            y = row[label_cols[0]] if len(label_cols) == 1 else np.array([row[c] for c in label_cols])
            return x, (np.asarray(_as_array(y)) if not np.isscalar(y) else y)

        return data.select(*(feature_cols + label_cols)).rdd.map(row_to_sample)
    if hasattr(data, "mapPartitions"):
        return data
    raise TypeError(f"expected a Spark RDD of (features, label) samples or a DataFrame, got {type(data).__name__}")


def _slice(arrays, index):
    return [a[index] for a in arrays] if isinstance(arrays, (list, tuple)) else arrays[index]


def rdd_from_arrays(sc, x, y, num_partitions=None):
    """An RDD of (features, label) samples from arrays on the driver, without the arrays in the task
    closures: each partition's contiguous slice travels as a broadcast (through the BlockManagers, peer
    to peer), read only by the task that needs it. ``x``/``y`` may be lists of arrays (several inputs/outputs).

    NOTE: ``sc.parallelize(list(zip(x, y)))`` puts the data into the tasks themselves (Spark warned of
    a 92 MB task for MNIST); this RDD's tasks are a few hundred bytes.
    """
    n = len(x[0] if isinstance(x, (list, tuple)) else x)
    if n != len(y[0] if isinstance(y, (list, tuple)) else y):
        raise ValueError("rdd_from_arrays: x and y have different numbers of samples")
    parts = int(num_partitions or sc.defaultParallelism)
    if parts < 1:
        raise ValueError(f"rdd_from_arrays: num_partitions must be >= 1, got {num_partitions!r}")
    pieces = []
    for p in range(parts):
        a, b = n * p // parts, n * (p + 1) // parts
        pieces.append(sc.broadcast((_slice(x, slice(a, b)), _slice(y, slice(a, b)))))

    def partition(index, _):
        xs, ys = pieces[index].value
        for i in range(len(ys[0] if isinstance(ys, (list, tuple)) else ys)):
            yield _slice(xs, i), _slice(ys, i)

    return sc.parallelize(range(parts), parts).mapPartitionsWithIndex(partition)


def barrier_ready(rdd):
    """Whether a barrier stage may run on ``rdd``: every ancestor in its stage (reached through narrow
    dependencies) has the same partition count (Spark refuses others: coalesce, union, ...)."""
    count = rdd.getNumPartitions()
    stack, seen = [rdd._jrdd.rdd()], set()
    while stack:
        jrdd = stack.pop()
        if jrdd.id() in seen:
            continue
        seen.add(jrdd.id())
        if jrdd.getNumPartitions() != count:
            return False
        deps = jrdd.dependencies().iterator()
        while deps.hasNext():
            dep = deps.next()
            if "ShuffleDependency" not in dep.getClass().getName():
                stack.append(dep.rdd())
    return True


def group_partitions(tagged, assignment):
    """An RDD with one partition per trainer holding (partition, sample) pairs of its partitions.
    Built with a shuffle once and cached, so each job's trainer task finds its data in the cache."""
    owner = {p: w for w, held in enumerate(assignment) for p in held}
    keyed = tagged.map(lambda ps: (owner[ps[0]], ps))
    grouped = keyed.partitionBy(len(assignment), lambda w: w).map(lambda kv: kv[1])
    return grouped.cache()
