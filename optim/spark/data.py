"""Spark data for ember: RDDs of (features, label) samples from DataFrames or from arrays on the
driver, and the form of a training RDD that Spark's barrier mode accepts."""
import io

import numpy as np

from ember.optim.dataset import is_spark_data  # noqa: F401 - part of this module's interface

DATA_ERROR_MARK = "EMBER-DATA-ERROR:"


class DataFrameError(ValueError):
    """A DataFrame column that cannot be training or inference data (its type, a null, a size)."""


def require_classic_session(df, what):
    """Raise ``SparkSetupError`` when ``df`` belongs to a Spark Connect session: ``what`` (training,
    evaluation on the executors) needs the SparkContext and ember's block service of a classic session.
    Inference (``NNModel.transform``, ``register_udf``) needs neither and works on Spark Connect."""
    if type(df).__module__.startswith("pyspark.sql.connect"):
        from ember.optim.spark.blocks import SparkSetupError

        raise SparkSetupError(f"{what} needs a classic SparkSession (a SparkContext with ember's block service, "
                              "from ember.init_nncontext or SparkSession.builder.master(...)); this DataFrame "
                              "belongs to a Spark Connect session (SparkSession.builder.remote). Train on a classic "
                              "session; the fitted model's transform and register_udf work on Spark Connect")


def column_names(cols, default):
    """``cols`` (a name, a list of names or None) as a list of names."""
    cols = cols or default
    return [cols] if isinstance(cols, str) else list(cols)


def _numeric(data_type):
    from pyspark.sql.types import NumericType

    return isinstance(data_type, NumericType)


def array_column(df, cols, what, dtype="float"):
    """One JVM-side expression giving ``cols`` as ``array<dtype>``: an MLlib vector (dense or sparse, through
    ``vector_to_array``), an array of numbers, or several numeric columns stacked; a clear error otherwise."""
    from pyspark.ml.functions import vector_to_array
    from pyspark.ml.linalg import VectorUDT
    from pyspark.sql import functions as F
    from pyspark.sql.types import ArrayType

    fields = {f.name: f.dataType for f in df.schema.fields}
    missing = [c for c in cols if c not in fields]
    if missing:
        raise DataFrameError(f"{what}: columns {missing} are not in the DataFrame (it has {df.columns})")
    if len(cols) == 1:
        name, kind = cols[0], fields[cols[0]]
        if isinstance(kind, VectorUDT):
            return vector_to_array(F.col(name), dtype="float32" if dtype == "float" else "float64")
        if isinstance(kind, ArrayType) and _numeric(kind.elementType):
            return F.col(name).cast(f"array<{dtype}>")
        if _numeric(kind):
            return F.array(F.col(name).cast(dtype))
        raise DataFrameError(f"{what}: column {name!r} has type {kind.simpleString()}; expected an MLlib vector, "
                             "an array of numbers or numeric columns")
    wrong = [f"{c} ({fields[c].simpleString()})" for c in cols if not _numeric(fields[c])]
    if wrong:
        raise DataFrameError(f"{what}: several columns are stacked into one vector, so each must be numeric; "
                             f"not numeric: {', '.join(wrong)}")
    return F.array(*[F.col(c).cast(dtype) for c in cols])


def label_column(df, cols, what="labels"):
    """The label expression: one numeric column as a double, otherwise an array of doubles."""
    from pyspark.sql import functions as F

    fields = {f.name: f.dataType for f in df.schema.fields}
    if len(cols) == 1 and cols[0] in fields and _numeric(fields[cols[0]]):
        return F.col(cols[0]).cast("double")
    return array_column(df, cols, what, "double")


def arrow_to_numpy(column, name, shape=None):
    """A pyarrow column (numbers, or equal-length lists of numbers) as a NumPy array of shape (rows,) or
    (rows,) + ``shape`` (default (width,)); nulls and ragged rows raise ``DataFrameError`` naming ``name``."""
    import pyarrow as pa

    rows = len(column)
    if column.null_count:
        raise DataFrameError(f"column {name!r} has {column.null_count} null row(s) in a batch of {rows}; drop or "
                             "fill them first (df.na.drop(subset=[...]))")
    if not pa.types.is_list(column.type) and not pa.types.is_large_list(column.type):
        values = column.to_numpy(zero_copy_only=False)
        return values if shape is None else values.reshape((rows,) + tuple(shape))  # a scalar as (rows, 1)
    values = column.flatten()
    if values.null_count:
        raise DataFrameError(f"column {name!r} holds null values inside its arrays")
    lengths = column.value_lengths().to_numpy(zero_copy_only=False)
    width = int(lengths[0]) if rows else 0
    if rows and (lengths != width).any():
        raise DataFrameError(f"column {name!r} has rows of different sizes ({int(lengths.min())} to "
                             f"{int(lengths.max())} values); every row must have the same size")
    target = tuple(shape) if shape is not None else (width,)
    if int(np.prod(target)) != width:
        raise DataFrameError(f"column {name!r} has {width} values per row but the model takes {target} "
                             f"({int(np.prod(target))} values)")
    return values.to_numpy(zero_copy_only=False).reshape((rows,) + target)


def _npy_bytes(array):
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


def _from_npy(data):
    return np.load(io.BytesIO(data), allow_pickle=False)


def batch_to_samples(batch, names, shape, label_shape=None):
    """One Arrow record batch of (features[, label]) -> ``SampleArrays`` (labels reshaped to (rows,) +
    ``label_shape`` when given); bad data raises a marked ``DataFrameError`` (the driver shows it without the
    JVM stack)."""
    from ember.optim.dataset import SampleArrays

    try:
        x = arrow_to_numpy(batch.column(0), names[0], shape)
        y = arrow_to_numpy(batch.column(1), names[1], label_shape) if batch.num_columns > 1 else None
    except DataFrameError as error:
        raise DataFrameError(DATA_ERROR_MARK + str(error) + "|") from None
    return SampleArrays(x, y)


def _read_arrow_batches(schema, names, shape, label_shape=None):
    """What each task runs on ``toArrowBatchRdd``'s serialized record batches (messages without schema)."""

    def run(messages):
        import pyarrow as pa

        for message in messages:
            batch = pa.ipc.read_record_batch(pa.py_buffer(message), schema)
            if batch.num_rows:
                yield batch_to_samples(batch, names, shape, label_shape)

    return run


def _columns_to_npy(names, shape, label_shape=None):
    """The function mapInArrow runs: each Arrow batch of (features, label) -> one row of .npy bytes."""

    def run(batches):
        import pyarrow as pa

        for batch in batches:
            if not batch.num_rows:
                continue
            samples = batch_to_samples(batch, names, shape, label_shape)
            yield pa.RecordBatch.from_pydict({"x": [_npy_bytes(samples.x)],
                                              "y": [None if samples.y is None else _npy_bytes(samples.y)]},
                                             schema=pa.schema([("x", pa.binary()), ("y", pa.binary())]))

    return run


def _to_sample_arrays(row):
    from ember.optim.dataset import SampleArrays

    return SampleArrays(_from_npy(row[0]), None if row[1] is None else _from_npy(row[1]))


def arrow_batch_rdd(selected, names, shape, label_shape=None):
    """An RDD of ``SampleArrays``, one per Arrow record batch of ``selected``: the JVM writes the batches
    (``Dataset.toArrowBatchRdd``) and each task reads them straight into NumPy. Where that JVM method is
    missing (another Spark build), ``mapInArrow`` does the same through one more copy.

    NOTE: real MNIST (60,000 x 784 floats, 2 partitions, local[2]): toArrowBatchRdd + read 1.1 s;
    mapInArrow to .npy bytes and back through ``DataFrame.rdd`` 7 s (33 s on the first call in a process).
    """
    from pyspark import RDD
    from pyspark.serializers import NoOpSerializer
    from pyspark.sql.pandas.types import to_arrow_schema

    sc = selected.sparkSession.sparkContext
    try:
        messages = RDD(selected._jdf.toArrowBatchRdd().toJavaRDD(), sc, NoOpSerializer())
    except Exception:  # noqa: BLE001 - not in this Spark: the public route
        arrow = selected.mapInArrow(_columns_to_npy(names, shape, label_shape), "x binary, y binary")
        return arrow.rdd.map(_to_sample_arrays)
    return messages.mapPartitions(_read_arrow_batches(to_arrow_schema(selected.schema), names, shape, label_shape))


def raise_data_error(error):
    """Re-raise a Spark job failure caused by bad data as the ``DataFrameError`` it was (without the JVM
    stack); anything else unchanged."""
    text = str(error)
    at = text.find(DATA_ERROR_MARK)
    if at < 0:
        raise error
    message = text[at + len(DATA_ERROR_MARK):].split("|", 1)[0]
    raise DataFrameError(message) from None


class ColumnarSamples:
    """A DataFrame's rows as an RDD of ``SampleArrays`` (one per Arrow batch), with what was checked on the
    JVM before: ``rows``, ``width`` (values per row) and, for one numeric label column, ``label_min``,
    ``label_max``, ``label_integral``."""

    def __init__(self, rdd, rows, label_min=np.inf, label_max=-np.inf, label_integral=True, width=None):
        self.rdd, self.rows, self.width = rdd, int(rows), width
        self.label_min, self.label_max, self.label_integral = label_min, label_max, label_integral

    def unpersist(self):
        if self.rdd is not None:
            self.rdd.unpersist()


def check_columns(selected, names, feature_shape, scalar_label):
    """One JVM-side aggregate over the selected ``x`` (array) and ``y`` columns: nulls, row sizes and label
    range, raised as a ``DataFrameError`` naming the column; returns (rows, label min, max, integral,
    values per row).

    NOTE: a pass of Python over the converted batches did the same in about 1.1 s for MNIST (60,000 x 784)
    on local[2]; this aggregate reads no data into Python.
    """
    from pyspark.sql import functions as F

    x = F.col("x")
    aggregates = [F.count(F.lit(1)).alias("rows"), F.sum(x.isNull().cast("long")).alias("x_nulls"),
                  F.sum(F.exists(x, lambda v: v.isNull()).cast("long")).alias("x_inner_nulls"),
                  F.min(F.size(x)).alias("x_min"), F.max(F.size(x)).alias("x_max")]
    has_label = "y" in selected.columns
    if has_label:
        y = F.col("y")
        aggregates.append(F.sum(y.isNull().cast("long")).alias("y_nulls"))
        if scalar_label:
            aggregates += [F.min(y).alias("y_min"), F.max(y).alias("y_max"),
                           F.sum((y != F.floor(y)).cast("long")).alias("y_fractional")]
    r = selected.agg(*aggregates).first().asDict()
    if r["x_nulls"]:
        raise DataFrameError(f"column {names[0]!r} has {r['x_nulls']} null row(s) of {r['rows']}; drop or fill them "
                             "first (df.na.drop(subset=[...]))")
    if r["x_inner_nulls"]:
        raise DataFrameError(f"column {names[0]!r} holds null values inside {r['x_inner_nulls']} row(s)")
    if r["rows"] and r["x_min"] != r["x_max"]:
        raise DataFrameError(f"column {names[0]!r} has rows of different sizes ({r['x_min']} to {r['x_max']} values); "
                             "every row must have the same size")
    if r["rows"] and feature_shape is not None and int(np.prod(feature_shape)) != r["x_min"]:
        raise DataFrameError(f"column {names[0]!r} has {r['x_min']} values per row but the model takes "
                             f"{tuple(feature_shape)} ({int(np.prod(feature_shape))} values)")
    if has_label and r["y_nulls"]:
        raise DataFrameError(f"label column {names[1]!r} has {r['y_nulls']} null row(s) of {r['rows']}")
    if has_label and scalar_label and r["rows"]:
        return r["rows"], float(r["y_min"]), float(r["y_max"]), not r["y_fractional"], r["x_min"]
    return r["rows"], np.inf, -np.inf, True, r["x_min"]


def dataframe_samples(df, feature_cols=None, label_cols=None, feature_shape=None, partitions=None, labels=True,
                      cache=None, label_shape=None):
    """Convert a DataFrame for training or evaluation: column batches, not rows.

    The features (an MLlib vector column, an array column, or several numeric columns) become one
    ``array<float>`` column and the label a double (or an array) on the JVM side; each Arrow record batch
    then crosses to Python as one NumPy array (``arrow_batch_rdd``), reshaped to ``feature_shape`` when
    given (the labels to ``label_shape``: (1,) for a model of one output). The result is cached when
    ``cache`` is True, or (None, the default) when ``df`` itself is not
    cached (each pass would recompute its lineage). The columns are checked here on the JVM
    (``check_columns``), so bad data (nulls, ragged or wrongly sized rows, an empty DataFrame) fails now,
    before any training, with a ``DataFrameError`` naming the column.
    ``partitions`` (default: the DataFrame's, at most ``defaultParallelism``) is how many trainers the
    engine will run.

    NOTE: W1 on real MNIST (60,000 x 784), local[2]: rows converted one at a time took 7-9 s of set-up;
    this conversion about 1 s (bench/dataframe.py). Caching the converted batches costs about 2 s more
    (pickled into the JVM's memory) and saves about 0.5 s per later pass: from a cached DataFrame it is
    cheaper to convert again (each trainer keeps its batches in its Python worker after the first job).

    Example:
        >>> import ember, numpy as np                                     # doctest: +SKIP
        >>> df = spark.createDataFrame([([1.0, 2.0], 0), ([3.0, 4.0], 1)], ["features", "label"])
        >>> s = dataframe_samples(df); s.rows, s.label_max
        (2, 1.0)
    """
    require_classic_session(df, "converting a DataFrame for training or evaluation")
    selected, names, stats = _checked_selection(df, feature_cols, label_cols, feature_shape, labels, partitions)
    rdd = arrow_batch_rdd(selected, names, feature_shape, label_shape)
    if cache is None:
        cache = not df.storageLevel.useMemory
    if cache:
        rdd = rdd.cache()
    rdd.ember_partition_sizes = partition_sizes(selected, selected.rdd.getNumPartitions())  # no pass of its own
    return ColumnarSamples(rdd, *stats)


def _checked_selection(df, feature_cols, label_cols, feature_shape, labels, partitions=None, repartition=True):
    """``df``'s features as ``x`` (array<float>) and label as ``y``, checked on the JVM (``check_columns``):
    (the selection, the column names for messages, (rows, label min, max, integral))."""
    features = column_names(feature_cols, "features")
    label_names = column_names(label_cols, "label") if labels else []
    if labels:
        overlap = set(features) & set(label_names)
        if overlap:
            raise DataFrameError(f"columns {sorted(overlap)} are both features and labels")
    exprs = [array_column(df, features, "features").alias("x")]
    if labels:
        exprs.append(label_column(df, label_names).alias("y"))
    selected = df.select(*exprs)
    if repartition:
        sc = df.sparkSession.sparkContext
        current = selected.rdd.getNumPartitions()
        wanted = int(partitions or min(current, max(1, sc.defaultParallelism)))
        if current != wanted:  # one partition per trainer: a JVM-side shuffle of the rows, nothing regrouped later
            selected = selected.repartition(wanted)
    names = [features[0] if len(features) == 1 else "+".join(features), "+".join(label_names) or None]
    stats = check_columns(selected, names, feature_shape,
                          labels and len(label_names) == 1 and "array" not in
                          selected.schema["y"].dataType.simpleString())
    if not stats[0]:
        raise DataFrameError(f"the DataFrame is empty: no rows in columns {features + label_names}")
    return selected, names, stats


def dataframe_arrays(df, feature_cols=None, label_cols=None, feature_shape=None, max_bytes=None):
    """A DataFrame's features and labels as NumPy arrays on the driver, in the DataFrame's row order (its
    partitions one after another), checked as ``dataframe_samples`` checks them; returns (x, y,
    ``ColumnarSamples`` without an RDD, for its checked counts). For data small enough to hold in memory
    (``NNEstimator.fitMultiple`` broadcasts it to tasks that each train one model): where the features
    would take more than ``max_bytes`` as float32, nothing is collected and x and y are None.

    Example:
        >>> df = spark.createDataFrame([([1.0, 2.0], 0), ([3.0, 4.0], 1)], ["features", "label"])  # doctest: +SKIP
        >>> x, y, checked = dataframe_arrays(df); x.shape, y.tolist(), checked.rows               # doctest: +SKIP
        ((2, 2), [0.0, 1.0], 2)
    """
    from ember.optim.dataset import SampleArrays

    selected, names, stats = _checked_selection(df, feature_cols, label_cols, feature_shape, True, repartition=False)
    checked = ColumnarSamples(None, *stats)
    if max_bytes is not None and 4 * checked.rows * checked.width > max_bytes:
        return None, None, checked
    try:
        blocks = arrow_batch_rdd(selected, names, feature_shape).collect()
    except Exception as error:  # noqa: BLE001 - bad data as a DataFrameError, the rest as it is
        raise_data_error(error)
    x, y = SampleArrays.concat(blocks).stacked()
    return x, y, checked


def partition_sizes(df, partitions):
    """Rows in each of ``df``'s partitions, counted on the JVM (no data reaches Python).

    NOTE: the engine's own count is a pass of Python over every batch: about 1.1 s for MNIST (60,000 x 784)
    on local[2]; this one well under that. Trainers check the counts against what they receive.
    """
    from pyspark.sql import functions as F

    counts = dict(df.groupBy(F.spark_partition_id().alias("p")).count().collect())
    return [int(counts.get(p, 0)) for p in range(partitions)]


def is_dataframe(data):
    return hasattr(data, "rdd") and hasattr(data, "columns")


def to_sample_rdd(data, feature_cols=None, label_cols=None):
    """An RDD of training records from an RDD of (features, label) pairs (returned as it is), or from a
    DataFrame: ``SampleArrays`` column batches (``dataframe_samples``; cached) of ``feature_cols`` (one
    vector/array column, or several numeric columns stacked; default "features") and ``label_cols``
    (default "label")."""
    if is_dataframe(data):
        return dataframe_samples(data, feature_cols, label_cols).rdd
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
