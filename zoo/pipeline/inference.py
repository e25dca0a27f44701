"""Batched inference of ember models on Spark DataFrames: the model travels once per executor (a broadcast
of its model file, loaded once per Python worker and kept there), rows go through as Arrow/pandas batches,
never one at a time. Used by ``NNModel.transform``, ``register_udf`` and Keras ``predict``/``evaluate`` on
DataFrames; it needs no training context (no block service), so it also runs on Structured Streaming.
"""
import io
import os
import tempfile
import threading
import uuid

import numpy as np

from ember.optim.loop import add_results, evaluate_dataset, predict_arrays

# models loaded in this Python worker, by key: Spark reuses its workers, so each loads a model once
_WORKER_MODELS = {}
_WORKER_LOCK = threading.Lock()
_KEEP = 4  # models kept per worker (a CrossValidator transforms several models one after another)
FEATURE_PACKING = True  # pack feature rows on the JVM where the session can (see packed_features)
PACK_FUNCTION = "ember_pack_features"  # the SQL function ember.jvm.FeaturePacking registers


def model_file_bytes(model):
    """``model`` in ember's model file format (``model.save``; zip of JSON and .npz, no pickle), as bytes."""
    fd, path = tempfile.mkstemp(suffix=".ember")
    os.close(fd)
    try:
        model.save(path)
        with open(path, "rb") as f:
            return f.read()
    finally:
        os.unlink(path)


def model_from_bytes(data, custom_objects=None):
    from ember.layers.serialization import load_model

    model = load_model(io.BytesIO(data), custom_objects, compile=False)
    model.eval()
    return model


class ModelShipment:
    """How a model reaches the executors: its file bytes in a Spark broadcast (fetched once per executor,
    peer to peer), under a key that names it in each worker's cache. The closure of every task holds only
    this small object. Without a SparkContext (Spark Connect) the bytes travel in the closure instead.

    Example:
        >>> shipment = ModelShipment(model, spark)                        # doctest: +SKIP
        >>> shipment.load() is shipment.load()                            # doctest: +SKIP
        True
    """

    def __init__(self, model, spark, custom_objects=None):
        from ember.optim.spark.engine import custom_objects as find_custom_objects

        data = model_file_bytes(model)
        self.key = uuid.uuid4().hex
        self.custom_objects = custom_objects if custom_objects is not None else find_custom_objects(model)
        self.size = len(data)
        sc = _spark_context(spark)
        self.broadcast = sc.broadcast(data) if sc is not None else None
        self.data = data if sc is None else None

    def load(self):
        """The model, loaded in this process once (kept in the worker's cache)."""
        with _WORKER_LOCK:
            model = _WORKER_MODELS.get(self.key)
            if model is None:
                data = self.broadcast.value if self.broadcast is not None else self.data
                model = model_from_bytes(data, self.custom_objects)
                while len(_WORKER_MODELS) >= _KEEP:
                    _WORKER_MODELS.pop(next(iter(_WORKER_MODELS)))
                _WORKER_MODELS[self.key] = model
            return model


def _spark_context(spark):
    try:
        return spark.sparkContext
    except Exception:  # noqa: BLE001 - Spark Connect has none
        return None


def stack_rows(series, name, shape, dtype=np.float32):
    """A pandas Series of equal-size arrays (one per row) -> one array (rows,) + ``shape``; nulls and
    wrong sizes raise a ValueError naming the column ``name``."""
    if series.isna().any():
        raise ValueError(f"column {name!r} has {int(series.isna().sum())} null row(s); drop or fill them first")
    if not len(series):
        return np.zeros((0,) + tuple(shape or ()), dtype=dtype)
    rows = series.to_numpy()
    lengths = np.fromiter((len(r) for r in rows), np.int64, len(rows))
    if (lengths != lengths[0]).any():  # (np.stack would only say "all input arrays must have the same shape")
        raise ValueError(f"column {name!r} has rows of different sizes ({int(lengths.min())} to "
                         f"{int(lengths.max())} values); every row must have the same size")
    x = np.stack(rows).astype(dtype, copy=False)
    if shape is not None:
        want = int(np.prod(shape))
        if x.shape[1] != want:
            raise ValueError(f"column {name!r} has {x.shape[1]} values per row but the model takes {tuple(shape)} "
                             f"({want} values)")
        x = x.reshape((len(x),) + tuple(shape))
    return x


def class_outputs(out):
    """Model outputs (rows, classes) or (rows,)/(rows, 1) for one sigmoid unit -> (raw, probability,
    prediction) as MLlib classifiers give them: probabilities that sum to 1 (a softmax of outputs that are
    not probabilities already), the 0-based argmax as a double."""
    out = np.asarray(out, dtype=np.float64)
    if out.ndim == 1 or out.shape[1] == 1:
        p = out.reshape(len(out))
        raw = prob = np.stack([1.0 - p, p], axis=1)
    else:
        raw = out
        if (out >= 0).all() and np.allclose(out.sum(axis=1), 1.0, atol=1e-4):
            prob = out
        else:
            shifted = np.exp(out - out.max(axis=1, keepdims=True))
            prob = shifted / shifted.sum(axis=1, keepdims=True)
    return raw, prob, prob.argmax(axis=1).astype(np.float64)


def _model_outputs(shipment, batch_size, arrays):
    """Model outputs (one 2-D float64 array) for each input array (rows first) of ``arrays``."""
    model = shipment.load()
    for x in arrays:
        out = predict_arrays(model, x, batch_size) if len(x) else np.zeros((0, 1))
        out = out[0] if isinstance(out, list) else out
        yield np.asarray(out, dtype=np.float64).reshape(len(out), -1)


def prediction_udf(shipment, column, shape, batch_size, classify, scalar=False, packed=False):
    """A vectorised UDF over an ``array<float>`` column (with ``packed``, a binary column of float32 bytes
    from ``packed_features``): the model's outputs (``array<double>``; with ``scalar``, a model of one
    output, a double), or with ``classify`` a struct of ``raw``, ``probability`` (arrays) and
    ``prediction`` (double). An Arrow UDF where pyspark has them (4.1+), a pandas UDF otherwise.

    NOTE: W1 over 60,000 MNIST rows on local[2]: the pandas UDF reached 43% of ``model.predict`` in one
    process (rows become Series of arrays and back); the Arrow UDF reads and writes the batches as flat
    NumPy buffers (see bench/dataframe.py).
    """
    try:
        from pyspark.sql.functions import arrow_udf  # noqa: F401
    except ImportError:
        if packed:
            raise ValueError("packed feature columns need pyspark's Arrow UDFs (pyspark 4.1+)") from None
        return _pandas_prediction_udf(shipment, column, shape, batch_size, classify, scalar)
    return _arrow_prediction_udf(shipment, column, shape, batch_size, classify, scalar, packed)


def packed_features(df, cols):
    """One feature column packed on the JVM into a binary column of little-endian float32 bytes per row
    (ember's ``ember.jvm.FeaturePacking``, in the plugin jar), or None where that cannot run: a Spark
    Connect session, a session without ember's jar, pyspark without Arrow UDFs (before 4.1), several
    feature columns, or a column that is not an array of numbers or an MLlib vector (``array_column``
    then names what is wrong). Sparse vectors are written whole (zeros included); null rows stay null;
    a null value inside an array fails the job with an error naming the column.

    NOTE: Spark's Arrow writer moves an ``array<float>`` one element at a time. A packed row is one memory
    copy into the row and one into the Arrow batch, and Python reads a batch with one ``np.frombuffer``.
    W1 over 60,000 MNIST rows on local[2] (bench/dataframe.py --transform-only, a shared machine at load
    5-6): the JVM's CPU for NNModel.transform went from 0.85 to 0.57 s (LeNet-5: 0.84 to 0.54 s), the
    Python workers' staying at 0.9 s (2.8 s). A Java UDF (``registerJavaFunction``) was no use: Spark
    hands it the array as boxed Floats, which cost as much as the Arrow lists.

    Example:
        >>> packed_features(df, ["features"])                             # doctest: +SKIP
        Column<'ember_pack_features(features, features)'>
    """
    if not FEATURE_PACKING or len(cols) != 1:
        return None
    try:
        from pyspark.sql.functions import arrow_udf  # noqa: F401
    except ImportError:
        return None
    from pyspark.ml.linalg import VectorUDT
    from pyspark.sql import functions as F
    from pyspark.sql.types import ArrayType, DoubleType, FloatType, NumericType

    name = cols[0]
    kind = {f.name: f.dataType for f in df.schema.fields}.get(name)
    column = F.col(name)
    if isinstance(kind, ArrayType) and isinstance(kind.elementType, NumericType):
        if not isinstance(kind.elementType, (FloatType, DoubleType)):
            column = column.cast("array<float>")
    elif not isinstance(kind, VectorUDT):
        return None
    if not _register_packing(df.sparkSession):
        return None
    return F.call_function(PACK_FUNCTION, column, F.lit(name))


def _register_packing(spark):
    """Register the packing SQL function in this (classic) session; False where it cannot be."""
    from py4j.java_gateway import JavaClass
    from py4j.protocol import Py4JError

    session = getattr(spark, "_jsparkSession", None)  # (Spark Connect sessions have none)
    if session is None:
        return False
    try:
        packing = spark._jvm.ember.jvm.FeaturePacking
        if not isinstance(packing, JavaClass):  # (a JavaPackage: no such class in this JVM)
            return False
        packing.register(session, PACK_FUNCTION)
    except Py4JError:  # a Spark that the class does not link against (its self-check failed)
        return False
    return True


def packed_to_numpy(column, name, shape=None):
    """A pyarrow binary column of float32 bytes (``packed_features``) as one NumPy array (rows,) + ``shape``
    (default (width,)), read in place; null rows and rows of the wrong size raise ``DataFrameError`` with
    the messages of ``arrow_to_numpy``."""
    from ember.optim.spark.data import DataFrameError

    rows = len(column)
    if column.null_count:
        raise DataFrameError(f"column {name!r} has {column.null_count} null row(s) in a batch of {rows}; drop or "
                             "fill them first (df.na.drop(subset=[...]))")
    if not rows:
        return np.zeros((0,) + (tuple(shape) if shape is not None else (0,)), np.float32)
    import pyarrow as pa

    kind = np.int64 if pa.types.is_large_binary(column.type) else np.int32  # (spark...arrow.useLargeVarTypes)
    _, offsets, data = column.buffers()
    offsets = np.frombuffer(offsets, kind, rows + 1, column.offset * np.dtype(kind).itemsize)
    lengths = np.diff(offsets) // 4
    width = int(lengths[0])
    if (lengths != width).any():
        raise DataFrameError(f"column {name!r} has rows of different sizes ({int(lengths.min())} to "
                             f"{int(lengths.max())} values); every row must have the same size")
    target = tuple(shape) if shape is not None else (width,)
    if int(np.prod(target)) != width:
        raise DataFrameError(f"column {name!r} has {width} values per row but the model takes {target} "
                             f"({int(np.prod(target))} values)")
    values = np.frombuffer(data, np.dtype("<f4"), rows * width, int(offsets[0]))
    return values.reshape((rows,) + target)


def _single(out):
    """Outputs (rows, 1) of a model of one output as a vector (rows,)."""
    if out.shape[1] != 1:
        raise ValueError(f"the model gave {out.shape[1]} outputs per row where one was expected")
    return out[:, 0]


def _list_array(matrix):
    """A 2-D array as an Arrow list array (no per-row objects)."""
    import pyarrow as pa

    rows, width = matrix.shape
    offsets = pa.array(np.arange(0, rows * width + 1, max(width, 1), dtype=np.int32)[:rows + 1])
    return pa.ListArray.from_arrays(offsets, pa.array(np.ascontiguousarray(matrix).reshape(-1)))


def _arrow_prediction_udf(shipment, column, shape, batch_size, classify, scalar, packed=False):
    from collections.abc import Iterator

    import pyarrow as pa
    from pyspark.sql.functions import arrow_udf

    from ember.optim.spark.data import arrow_to_numpy

    read = packed_to_numpy if packed else arrow_to_numpy

    def inputs(batches):
        for array in batches:
            yield read(array, column, shape)

    if classify:
        def predict_classes(batches: Iterator[pa.Array]) -> Iterator[pa.Array]:
            for out in _model_outputs(shipment, batch_size, inputs(batches)):
                raw, prob, pred = class_outputs(out)
                yield pa.StructArray.from_arrays([_list_array(raw), _list_array(prob), pa.array(pred)],
                                                 names=["raw", "probability", "prediction"])

        return arrow_udf(predict_classes, "raw array<double>, probability array<double>, prediction double")

    if scalar:
        def predict_one(batches: Iterator[pa.Array]) -> Iterator[pa.Array]:
            for out in _model_outputs(shipment, batch_size, inputs(batches)):
                yield pa.array(_single(out))

        return arrow_udf(predict_one, "double")

    def predict(batches: Iterator[pa.Array]) -> Iterator[pa.Array]:
        for out in _model_outputs(shipment, batch_size, inputs(batches)):
            yield _list_array(out)

    return arrow_udf(predict, "array<double>")


def _pandas_prediction_udf(shipment, column, shape, batch_size, classify, scalar):
    from collections.abc import Iterator

    import pandas as pd
    from pyspark.sql.functions import pandas_udf

    def inputs(batches):
        for series in batches:
            yield stack_rows(series, column, shape)

    if classify:
        def predict_classes(batches: Iterator[pd.Series]) -> Iterator[pd.DataFrame]:
            for out in _model_outputs(shipment, batch_size, inputs(batches)):
                raw, prob, pred = class_outputs(out)
                yield pd.DataFrame({"raw": list(raw), "probability": list(prob), "prediction": pred})

        return pandas_udf(predict_classes, "raw array<double>, probability array<double>, prediction double")

    if scalar:
        def predict_one(batches: Iterator[pd.Series]) -> Iterator[pd.Series]:
            for out in _model_outputs(shipment, batch_size, inputs(batches)):
                yield pd.Series(_single(out))

        return pandas_udf(predict_one, "double")

    def predict(batches: Iterator[pd.Series]) -> Iterator[pd.Series]:
        for out in _model_outputs(shipment, batch_size, inputs(batches)):
            yield pd.Series(list(out))

    return pandas_udf(predict, "array<double>")


def register_udf(spark, name, model, batch_size=256, feature_shape=None):
    """Make ``model`` callable from Spark SQL as ``name(features)``: a vectorised (pandas) UDF over an
    array column (``array<float>`` or ``array<double>``; an MLlib vector column goes through
    ``vector_to_array`` first) giving the model's outputs as ``array<double>``. The weights travel once per
    executor (a broadcast). Returns the UDF (usable in the DataFrame API too).

    Example:
        >>> register_udf(spark, "predict", model)                         # doctest: +SKIP
        >>> spark.sql("SELECT predict(features) AS p FROM t")             # doctest: +SKIP
    """
    shape = feature_shape if feature_shape is not None else input_shape(model)
    udf = prediction_udf(ModelShipment(model, spark), name + "'s argument", shape, int(batch_size), False)
    spark.udf.register(name, udf)
    return udf


def output_width(model):
    """Values per row of the model's (first) output when fixed (else None)."""
    outputs = getattr(model, "outputs", None) if getattr(model, "built", False) else None
    if not outputs:
        return None
    shape = tuple(outputs[0].shape[1:])
    return None if any(d is None for d in shape) else int(np.prod(shape))


def input_shape(model):
    """The model's input shape without the batch axis, when it is fixed (else None)."""
    inputs = getattr(model, "inputs", None) if getattr(model, "built", False) else None
    if not inputs:
        return None
    shape = tuple(inputs[0].shape[1:])
    return None if any(d is None for d in shape) else shape


def predict_dataframe(model, df, feature_cols=None, prediction_col="prediction", batch_size=32):
    """``df`` with ``prediction_col`` appended: the model's outputs (``array<double>``) for ``feature_cols``
    (default "features": a vector, an array or several numeric columns), computed on the executors."""
    from ember.optim.spark.data import array_column, column_names

    features = column_names(feature_cols, "features")
    packed = packed_features(df, features)
    udf = prediction_udf(ModelShipment(model, df.sparkSession), "+".join(features), input_shape(model),
                         int(batch_size), False, packed=packed is not None)
    return df.withColumn(prediction_col, udf(array_column(df, features, "features") if packed is None else packed))


def evaluate_dataframe(model, df, methods, batch_size=32, feature_cols=None, label_cols=None):
    """Sum ``methods``' ValidationResults of ``model`` over a DataFrame on the executors (column batches;
    the model broadcast once); a list with one result per method."""
    from ember.optim.spark.data import dataframe_samples, raise_data_error

    samples = dataframe_samples(df, feature_cols, label_cols, input_shape(model))
    shipment = ModelShipment(model, df.sparkSession)

    def run(iterator):
        from ember.optim.dataset import ArrayDataset, SampleArrays

        blocks = list(iterator)
        if not blocks:
            return
        x, y = SampleArrays.concat(blocks).stacked()
        yield evaluate_dataset(shipment.load(), ArrayDataset(x, y), batch_size, methods)

    try:
        parts = samples.rdd.mapPartitions(run).collect()
    except Exception as error:  # noqa: BLE001 - bad data as a DataFrameError, the rest as it is
        raise_data_error(error)
    finally:
        samples.unpersist()
    totals = None
    for part in parts:
        totals = add_results(totals, part)
    return totals
