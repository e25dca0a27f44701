"""Images on Spark: a reader giving Spark's image struct, pretrained featurizing and predicting as Spark ML
Transformers, an image SQL UDF, and image columns as ``NNClassifier``/``NNModel`` features.

Reading: ``read_images`` (and BigDL's ``NNImageReader.readImages``) gives a DataFrame with one ``image``
column in Spark's image struct (``origin, height, width, nChannels, mode, data``: pixels stored BGR with
OpenCV modes 0, 16, 24, as ``spark.read.format("image")`` stores them). By default files are decoded with
Pillow on the executors (``zoo.vision.decode`` over Spark's ``binaryFile`` source), so the pixels are those
the local ``ember.zoo.vision.read_images`` gives for the same files; ``decoder="spark"`` uses Spark's own
image source (decoded in the JVM, no Python worker).

NOTE: measured with pyspark 4.3 / Java 17: Spark's image source reads a 16-bit grayscale PNG wrongly (it
keeps the low byte of each sample: 1000 became 232; Pillow scales it to 4), refuses WebP, and skips
zero-byte files without a row; for 8-bit PNG, JPEG, BMP, GIF and TIFF its pixels equal Pillow's. Hence
Pillow by default.

Featurizing and predicting: ``DeepImageFeaturizer`` and ``DeepImagePredictor`` (Databricks' Deep Learning
Pipelines names) run a zoo model with ImageNet weights on an image column: the model is built once on the
driver, travels once per executor (a broadcast of its model file) and is loaded once per Python worker;
rows go through in Arrow batches, preprocessed as the weights expect (``zoo.weights``), scored
``batchSize`` images per forward pass. Rows that are invalid images (Spark's ``mode == -1``) give null.
"""
import functools
import json
import logging
import os
import threading
from urllib.parse import unquote, urlparse

import numpy as np
from pyspark import keyword_only
from pyspark.ml import Transformer
from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.ml.param.shared import HasInputCol, HasOutputCol
from pyspark.ml.util import DefaultParamsReadable, DefaultParamsWritable
from pyspark.sql import functions as F
from pyspark.sql.types import BinaryType, IntegerType, StringType, StructField, StructType

from ember.zoo.vision import transforms as T
from ember.zoo.vision.image import IMAGE_EXTENSIONS, ImageDecodeError, decode, from_image_struct, to_image_struct

logger = logging.getLogger(__name__)

IMAGE_FIELDS = ("origin", "height", "width", "nChannels", "mode", "data")
INVALID_MODE = -1  # Spark's marker of a row whose file did not decode (height, width, nChannels -1, no data)


def image_schema():
    """Spark's image struct type (``ImageSchema.columnSchema``), built without the JVM."""
    kinds = (StringType(), IntegerType(), IntegerType(), IntegerType(), IntegerType(), BinaryType())
    return StructType([StructField(name, kind, True) for name, kind in zip(IMAGE_FIELDS, kinds)])


def is_image_struct(data_type):
    """Whether ``data_type`` is Spark's image struct (its six fields with their types; others may follow)."""
    if not isinstance(data_type, StructType):
        return False
    fields = {f.name: type(f.dataType) for f in data_type.fields}
    return all(fields.get(f.name) is type(f.dataType) for f in image_schema().fields)


def check_image_column(df, column, what):
    """Raise a ValueError naming ``column`` unless it is an image struct column of ``df``."""
    fields = {f.name: f.dataType for f in df.schema.fields}
    if column not in fields:
        raise ValueError(f"{what}: column {column!r} is not in the DataFrame (it has {df.columns})")
    if not is_image_struct(fields[column]):
        raise ValueError(f"{what}: column {column!r} has type {fields[column].simpleString()}; expected Spark's image "
                         f"struct<origin:string,height:int,width:int,nChannels:int,mode:int,data:binary>, as "
                         "ember.zoo.pipeline.read_images or spark.read.format('image') give it")


# ---------------------------------------------------------------- reading
def _extension_glob():
    """A case-insensitive Hadoop glob for the image file names (``*.{[pP][nN][gG],...}``)."""
    alternatives = ["".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else c for c in ext[1:])
                    for ext in IMAGE_EXTENSIONS]
    return "*.{" + ",".join(alternatives) + "}"


def _path_only(column, encoded=False):
    """A JVM expression: the path part of a file URI (scheme and authority removed), as a plain path.
    ``encoded``: the URI is percent-encoded (Spark's image source writes ``r%20b.png``; binaryFile
    ``r b.png``)."""
    if encoded:  # (url_decode also reads "+" as a space: keep a literal "+" first)
        column = F.expr("url_decode(regexp_replace(__location, '\\\\+', '%2B'))".replace("__location", column))
    else:
        column = F.col(column)
    return F.regexp_replace(column, r"^[A-Za-z][A-Za-z0-9+.-]*:(//[^/]*)?", "")


def _root_path(path):
    """The path part of a reader's root (a local path made absolute)."""
    parsed = urlparse(os.fspath(path))
    if parsed.scheme and len(parsed.scheme) > 1:  # (a one-letter scheme is a Windows drive)
        return parsed.path.rstrip("/") or "/"
    return os.path.abspath(os.fspath(path)).rstrip("/") or "/"


def _class_of(path, roots):
    """The first folder under the root that holds ``path`` (a file URI or path), or None."""
    where = urlparse(path).path if "://" in path or path.startswith("file:") else path
    for root in roots:
        if where.startswith(root + "/"):
            parts = where[len(root) + 1:].split("/")
            return parts[0] if len(parts) > 1 else None
    return None


def _array_position(array, value):
    """``F.array_position(array, value)`` for a column ``value``: pyspark 4 takes a column there; pyspark 3.5's
    Python function takes only a literal (a column fails with "Column is not iterable"), while the JVM
    function it calls takes any value, a column included (``lit`` of a column is that column)."""
    import pyspark

    if int(pyspark.__version__.split(".")[0]) >= 4:
        return F.array_position(array, value)
    from pyspark import SparkContext
    from pyspark.sql.column import Column

    return Column(SparkContext._jvm.org.apache.spark.sql.functions.array_position(array._jc, value._jc))


def _class_column(where, roots):
    """A JVM expression: the first folder under one of ``roots`` holding the file at path ``where`` (or null)."""
    out = F.lit(None).cast("string")
    for root in reversed(roots):
        rest = F.substring(where, len(root) + 2, 1 << 30)
        parts = F.split(rest, "/")
        out = F.when(where.startswith(root + "/") & (F.size(parts) > 1), parts.getItem(0)).otherwise(out)
    return out


def _invalid_struct(origin):
    return {"origin": origin, "height": -1, "width": -1, "nChannels": -1, "mode": INVALID_MODE, "data": b""}


def decode_files(paths, contents, resize=None):
    """Encoded files -> a list of image-struct dicts (BGR, mode 16) and the list of (path, reason) of
    files that did not decode (their structs are Spark's invalid rows). The per-partition work of
    ``read_images``, a plain function.

    Example:
        >>> import io; from PIL import Image
        >>> buf = io.BytesIO(); Image.new("RGB", (3, 2), (255, 0, 0)).save(buf, "PNG")
        >>> rows, bad = decode_files(["a.png", "b.png"], [buf.getvalue(), b""])
        >>> rows[0]["mode"], bytes(rows[0]["data"][:3]), rows[1]["mode"], bad[0][0]
        (16, b'\\x00\\x00\\xff', -1, 'b.png')
    """
    rows, invalid = [], []
    for path, content in zip(paths, contents):
        try:
            rgb = decode(content if content is not None else b"", origin=path)
            if resize is not None:
                rgb = np.asarray(T.Resize(resize)(rgb), dtype=np.uint8)
            rows.append(to_image_struct(path, rgb))
        except ImageDecodeError as error:
            rows.append(_invalid_struct(path))
            invalid.append((path, str(error)))
    return rows, invalid


DECODE_ROWS = 32  # files decoded (and their pixels held) at a time: an Arrow batch may hold thousands


def _decode_partition(resize, drop_invalid):
    """The ``mapInArrow`` function: binaryFile batches (path, content) -> batches of image rows."""

    def run(batches):
        import pyarrow as pa

        image_type = pa.struct([
            pa.field("origin", pa.string()), pa.field("height", pa.int32()), pa.field("width", pa.int32()),
            pa.field("nChannels", pa.int32()), pa.field("mode", pa.int32()), pa.field("data", pa.binary())])
        schema = pa.schema([pa.field("image", image_type)])
        seen = bad = 0
        for batch in batches:
            for start in range(0, batch.num_rows, DECODE_ROWS):
                part = batch.slice(start, DECODE_ROWS)
                rows, invalid = decode_files(part.column("path").to_pylist(), part.column("content").to_pylist(),
                                             resize)
                seen += len(rows)
                bad += len(invalid)
                for _, reason in invalid:
                    logger.warning("read_images: %s", reason)
                kept = [row for row in rows if not (drop_invalid and row["mode"] == INVALID_MODE)]
                yield pa.RecordBatch.from_arrays([pa.array(kept, type=image_type)], schema=schema)
        if bad:
            logger.warning("read_images: %d of %d files in this partition are not decodable images (%s)", bad, seen,
                           "dropped" if drop_invalid else "kept as invalid rows, mode -1")

    return run


def read_images(path, spark, recursive=True, sample_fraction=None, seed=0, drop_invalid=True,
                label_from_folder=False, decoder="pillow", resize=None, min_partitions=None):
    """The images under ``path`` (a folder, a file, a glob or a list of them; any Hadoop file system) as a
    DataFrame with an ``image`` column in Spark's image struct (BGR bytes, OpenCV mode).

    Args:
        recursive: look into sub-folders (needed for class folders).
        sample_fraction: keep each file with this probability, drawn from a hash of its path and ``seed``
            (so the same files whatever the partitioning, and before any decoding).
        drop_invalid: drop undecodable files (default), or keep them as Spark's invalid rows (``mode`` -1,
            ``height``/``width``/``nChannels`` -1, empty ``data``). Each Pillow-decoding task logs how many
            it found and why (logger ``ember.zoo.pipeline.image``, in the executor's log).
        label_from_folder: add ``label`` (double, 0-based): the index of the first folder level under
            ``path`` in the sorted folder names; the names are in the column's metadata (as StringIndexer
            leaves them: ``IndexToString`` maps back).
        decoder: "pillow" (default: the same pixels as ``ember.zoo.vision.read_images``; every format
            Pillow reads; grayscale, palette, CMYK, RGBA and 16-bit images converted to 8-bit BGR, mode 16)
            or "spark" (Spark's image source, decoded in the JVM: modes 0/16/24 as the file has them).
        resize: with Pillow, resize each image at read time (an int: the shorter side; (h, w): exactly),
            so that the DataFrame holds smaller images.
        min_partitions: repartition the files to at least this many partitions before decoding.

    Example:
        >>> df = read_images("/data/pets", spark, label_from_folder=True)   # doctest: +SKIP
        >>> df.select("image.origin", "image.height", "label").show()        # doctest: +SKIP
    """
    if decoder not in ("pillow", "spark"):
        raise ValueError(f"read_images: decoder must be 'pillow' or 'spark', got {decoder!r}")
    if sample_fraction is not None and not 0 < sample_fraction <= 1:
        raise ValueError(f"read_images: sample_fraction must be in (0, 1], got {sample_fraction}")
    if resize is not None and decoder != "pillow":
        raise ValueError("read_images: resize needs decoder='pillow'")
    paths = [os.fspath(p) for p in path] if isinstance(path, (list, tuple)) else [os.fspath(path)]
    if not paths:
        raise ValueError("read_images: no path given")

    def source(fmt):
        return (spark.read.format(fmt).option("pathGlobFilter", _extension_glob())
                .option("recursiveFileLookup", "true" if recursive else "false"))

    files = source("binaryFile").load(paths)  # the listing (on the driver); content is read only if used
    listed = files.inputFiles()
    roots = sorted({_root_path(p) for p in paths}, key=len, reverse=True)
    classes = None
    if label_from_folder:
        names = {f: _class_of(f, roots) for f in listed}
        outside = [f for f, name in names.items() if name is None]
        if outside:
            raise ValueError(f"read_images: label_from_folder needs every image in a class folder under {paths}; "
                             f"{len(outside)} are not, e.g. {outside[:3]}")
        classes = sorted(set(names.values()))
        if not classes:
            raise ValueError(f"read_images: no image files under {paths}")
    empty = _empty_files(listed)  # Spark's file sources skip zero-byte files without a row
    if empty and decoder == "spark":  # (Pillow's tasks count them with the other invalid files)
        logger.warning("read_images: %d zero-byte file(s) %s (e.g. %s)", len(empty),
                       "dropped" if drop_invalid else "kept as invalid rows, mode -1", empty[:3])

    if decoder == "spark":
        df = source("image").option("dropInvalid", "true" if drop_invalid else "false").load(paths)
        if empty and not drop_invalid:
            df = df.unionByName(spark.createDataFrame([(_invalid_struct(f),) for f in empty], df.schema))
        where = _path_only("image.origin", encoded=True)
    else:
        df = files.select("path", "content")
        if empty:
            df = df.unionByName(spark.createDataFrame([("file:" + unquote(urlparse(f).path), b"") for f in empty],
                                                      df.schema))
        where = _path_only("path")
    if sample_fraction is not None and sample_fraction < 1:
        draw = F.pmod(F.xxhash64(where, F.lit(int(seed))), F.lit(1 << 30)) / float(1 << 30)
        df = df.filter(draw < float(sample_fraction))
    if min_partitions is not None and df.rdd.getNumPartitions() < int(min_partitions):
        df = df.repartition(int(min_partitions))
    if decoder == "pillow":
        schema = StructType([StructField("image", image_schema(), True)])
        df = df.mapInArrow(_decode_partition(resize, drop_invalid), schema)
        where = _path_only("image.origin")
    if classes is not None:
        index = _array_position(F.array(*[F.lit(c) for c in classes]), _class_column(where, roots))
        metadata = {"ml_attr": {"type": "nominal", "name": "label", "vals": classes}}
        df = df.withColumn("label", (index - 1).cast("double").alias("label", metadata=metadata))
    return df


def _empty_files(listed):
    """The zero-byte files among ``listed`` (file URIs) on the local file system (others are not checked)."""
    empty = []
    for f in listed:
        parsed = urlparse(f)
        if parsed.scheme in ("", "file"):
            try:
                if os.path.getsize(unquote(parsed.path)) == 0:
                    empty.append(f)
            except OSError:
                pass
    return empty


class NNImageReader:
    """BigDL's image reader: ``NNImageReader.readImages(path, spark)`` -> a DataFrame with an ``image``
    column (Spark's image struct). See ``read_images`` for every option.

    Example:
        >>> NNImageReader.readImages("/data/pets/*/*.jpg", spark, resizeH=256, resizeW=256)  # doctest: +SKIP
    """

    @staticmethod
    def readImages(path, spark, minPartitions=None, resizeH=-1, resizeW=-1, **options):  # noqa: N802, N803
        resize = (int(resizeH), int(resizeW)) if resizeH > 0 and resizeW > 0 else None
        if (resizeH > 0) != (resizeW > 0):
            raise ValueError(f"readImages: give both resizeH and resizeW, or neither (got {resizeH}, {resizeW})")
        return read_images(path, spark, resize=resize, min_partitions=minPartitions, **options)


# ---------------------------------------------------------------- models on image columns
def _model_key(name):
    """A zoo model name ("mobilenet_v2") from it or its builder's name ("MobileNetV2", "ResNet50")."""
    from ember.zoo.vision.classifier import MODELS

    if name in MODELS:
        return name
    by_builder = {builder.lower(): key for key, builder in MODELS.items()}
    key = by_builder.get(str(name).lower().replace("_", ""))
    if key is None:
        raise ValueError(f"modelName: unknown model {name!r}; expected one of {sorted(MODELS)} (or "
                         f"{sorted(MODELS.values())})")
    return key


def _weights_entry(key):
    from ember.zoo import weights

    return weights.get(f"{key}/torchvision")


def build_model(model_name, featurize):
    """The zoo model with ImageNet weights: the whole classifier, or with ``featurize`` the backbone
    with global average pooling (the classifier's input)."""
    from ember.zoo import models
    from ember.zoo.vision.classifier import MODELS, build_pretrained

    key = _model_key(model_name)
    if not featurize:
        return build_pretrained(key)
    return getattr(models, MODELS[key])(include_top=False, pooling="avg", weights="imagenet").eval()


_SHIPMENTS = {}  # (model, featurize, application) -> ModelShipment, so that a model is built and broadcast once
_SHIPMENTS_LOCK = threading.Lock()


def _shipment(spark, model_name, featurize, model=None):
    """The shipment of the model for ``model_name`` (built with ImageNet weights once per application;
    ``model``: use this one instead, e.g. random weights for a benchmark without the file)."""
    from ember.zoo.pipeline.inference import ModelShipment

    try:
        app = spark.sparkContext.applicationId
    except Exception:  # noqa: BLE001 - Spark Connect: no context, the bytes travel with the closure
        app = id(spark)
    key = (_model_key(model_name), bool(featurize), app)
    with _SHIPMENTS_LOCK:
        if key not in _SHIPMENTS or model is not None:
            model = model if model is not None else build_model(model_name, featurize)
            _SHIPMENTS[key] = ModelShipment(model, spark, custom_objects={})
        return _SHIPMENTS[key]


def struct_images(frame):
    """A pandas DataFrame of image-struct fields (an Arrow batch of an image column) -> a list of RGB
    arrays, None where the row is null or Spark's invalid row (``mode`` -1)."""
    images = []
    for row in frame.to_dict("records") if len(frame) else []:
        if row.get("mode") is None or row["mode"] == INVALID_MODE or (isinstance(row["mode"], float)
                                                                       and np.isnan(row["mode"])):
            images.append(None)
        else:
            images.append(from_image_struct(row))
    return images


def model_outputs(model, preprocessing, images, batch_size):
    """The model's outputs (float64, one row per image) for RGB ``images`` after ``preprocessing``."""
    from ember.engine import no_grad

    rows = []
    for start in range(0, len(images), batch_size):
        x = np.stack([preprocessing(im) for im in images[start:start + batch_size]])
        with no_grad():
            out = model(x, training=False)
        rows.append(np.asarray(out.numpy() if hasattr(out, "numpy") else out, dtype=np.float64).reshape(len(x), -1))
    return np.concatenate(rows) if rows else np.zeros((0, 0))


def class_probabilities(model, preprocessing, images, batch_size):
    """ImageNet class probabilities (a softmax of the logits, as ``ImageClassifier`` gives them)."""
    from ember.zoo.vision.classifier import ImageClassifier

    model.preprocessing = preprocessing  # (a model read from its file has lost the attribute)
    return ImageClassifier(weights=model, batch_size=batch_size).scores(images)


@functools.cache
def _imagenet_wnids():
    """The WordNet ids of the 1000 ImageNet-1k classes in label order (n01440764 = tench, ...)."""
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "imagenet_classes.json")
    with open(path, encoding="utf-8") as f:
        return json.load(f)["wnids"]


def decoded_predictions(probabilities, top_k):
    """Rows of probabilities -> for each, the ``top_k`` dicts {class (wnid), description, probability}."""
    from ember.zoo.weights import imagenet_class_names

    names, wnids = imagenet_class_names(), _imagenet_wnids()
    out = []
    for row in probabilities:
        top = np.argsort(row)[::-1][:top_k]
        out.append([{"class": wnids[i], "description": names[i], "probability": float(row[i])} for i in top])
    return out


PREDICTIONS_TYPE = "array<struct<class:string,description:string,probability:double>>"


def _image_udf(shipment, model_name, kind, batch_size, top_k=5):
    """A pandas UDF over an image column: ``kind`` "features" (array<float>), "probabilities"
    (array<double>) or "predictions" (the decoded top ``top_k``). Invalid images give null."""
    from collections.abc import Iterator

    import pandas as pd
    from pyspark.sql.functions import pandas_udf

    preprocessing = _weights_entry(_model_key(model_name)).preprocessing

    def outputs(frame):
        images = struct_images(frame)
        valid = [i for i, im in enumerate(images) if im is not None]
        model = shipment.load()
        chosen = [images[i] for i in valid]
        if kind == "features":
            values = model_outputs(model, preprocessing, chosen, batch_size) if chosen else []
            values = [np.asarray(v, dtype=np.float32) for v in values]
        else:
            probabilities = class_probabilities(model, preprocessing, chosen, batch_size) if chosen else []
            values = decoded_predictions(probabilities, top_k) if kind == "predictions" else list(probabilities)
        result = [None] * len(images)
        for i, value in zip(valid, values):
            result[i] = value
        return pd.Series(result, dtype=object)

    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.Series]:
        for frame in batches:
            yield outputs(frame)

    return pandas_udf(run, {"features": "array<float>", "probabilities": "array<double>",
                            "predictions": PREDICTIONS_TYPE}[kind])


def _as_vectors(dataset, column):
    """``column`` (arrays, null for invalid images) as MLlib vectors (``array_to_vector`` fails on a null)."""
    from pyspark.ml.functions import array_to_vector

    return dataset.withColumn(column, F.when(F.col(column).isNotNull(), array_to_vector(F.col(column))))


class _DeepImageParams(HasInputCol, HasOutputCol):
    modelName = Param(Params._dummy(), "modelName", "a zoo model with ImageNet weights: mobilenet_v2, resnet50, "
                      "inception_v3, vgg16, ... (or MobileNetV2, ResNet50, ...)", typeConverter=TypeConverters.toString)
    batchSize = Param(Params._dummy(), "batchSize", "images per forward pass", typeConverter=TypeConverters.toInt)

    def __init__(self):
        super().__init__()
        self._setDefault(batchSize=16)

    def setModelName(self, value):
        return self._set(modelName=value)

    def getModelName(self):
        return self.getOrDefault(self.modelName)

    def setBatchSize(self, value):
        return self._set(batchSize=value)

    def getBatchSize(self):
        return self.getOrDefault(self.batchSize)

    def setInputCol(self, value):
        return self._set(inputCol=value)

    def setOutputCol(self, value):
        return self._set(outputCol=value)

    def _checked(self, dataset):
        for required in (self.inputCol, self.outputCol, self.modelName):
            if not self.isDefined(required):
                raise ValueError(f"{type(self).__name__}: set {required.name}")
        _model_key(self.getModelName())
        check_image_column(dataset, self.getInputCol(), f"{type(self).__name__}.transform")


class DeepImageFeaturizer(_DeepImageParams, Transformer, DefaultParamsReadable, DefaultParamsWritable):
    """Image features from a pretrained zoo model (Spark ML Transformer): ``outputCol`` gets the pooled
    output of the model's backbone (1280 values for MobileNetV2, 2048 for ResNet-50) as an MLlib vector,
    ready for ``LogisticRegression`` or ``NNClassifier``. Invalid images give null.

    Example:
        >>> featurizer = DeepImageFeaturizer(inputCol="image", outputCol="features", modelName="mobilenet_v2")
        >>> featurizer.getModelName()
        'mobilenet_v2'
        >>> featurizer.transform(read_images("/data/pets", spark)).select("features")  # doctest: +SKIP
    """

    @keyword_only
    def __init__(self, inputCol=None, outputCol=None, modelName=None, batchSize=16):  # noqa: N803
        super().__init__()
        self._set(**self._input_kwargs)

    @keyword_only
    def setParams(self, inputCol=None, outputCol=None, modelName=None, batchSize=16):  # noqa: N803
        return self._set(**self._input_kwargs)

    def _transform(self, dataset):
        self._checked(dataset)
        shipment = _shipment(dataset.sparkSession, self.getModelName(), featurize=True)
        udf = _image_udf(shipment, self.getModelName(), "features", self.getBatchSize())
        return _as_vectors(dataset.withColumn(self.getOutputCol(), udf(F.col(self.getInputCol()))), self.getOutputCol())


class DeepImagePredictor(_DeepImageParams, Transformer, DefaultParamsReadable, DefaultParamsWritable):
    """ImageNet predictions of a pretrained zoo model (Spark ML Transformer). With ``decodePredictions``
    (default) ``outputCol`` holds the ``topK`` classes, best first, each a struct of ``class`` (the
    WordNet id, e.g. n02124075), ``description`` (its name) and ``probability``; otherwise the 1000 class
    probabilities as an MLlib vector. Invalid images give null.

    Example:
        >>> predictor = DeepImagePredictor(inputCol="image", outputCol="predicted", modelName="mobilenet_v2",
        ...                                topK=3)
        >>> predictor.getTopK()
        3
        >>> predictor.transform(images).select("predicted.description")  # doctest: +SKIP
    """

    decodePredictions = Param(Params._dummy(), "decodePredictions", "give the top classes (wnid, name, "
                              "probability) instead of the probability vector", typeConverter=TypeConverters.toBoolean)
    topK = Param(Params._dummy(), "topK", "how many classes decodePredictions gives",
                 typeConverter=TypeConverters.toInt)

    @keyword_only
    def __init__(self, inputCol=None, outputCol=None, modelName=None, decodePredictions=True, topK=5,  # noqa: N803
                 batchSize=16):
        super().__init__()
        self._setDefault(decodePredictions=True, topK=5)
        self._set(**self._input_kwargs)

    @keyword_only
    def setParams(self, inputCol=None, outputCol=None, modelName=None, decodePredictions=True, topK=5,  # noqa: N803
                  batchSize=16):
        return self._set(**self._input_kwargs)

    def setDecodePredictions(self, value):
        return self._set(decodePredictions=value)

    def getDecodePredictions(self):
        return self.getOrDefault(self.decodePredictions)

    def setTopK(self, value):
        return self._set(topK=value)

    def getTopK(self):
        return self.getOrDefault(self.topK)

    def _transform(self, dataset):
        self._checked(dataset)
        if self.getTopK() < 1:
            raise ValueError(f"DeepImagePredictor: topK must be >= 1, got {self.getTopK()}")
        shipment = _shipment(dataset.sparkSession, self.getModelName(), featurize=False)
        if self.getDecodePredictions():
            udf = _image_udf(shipment, self.getModelName(), "predictions", self.getBatchSize(), self.getTopK())
            return dataset.withColumn(self.getOutputCol(), udf(F.col(self.getInputCol())))
        udf = _image_udf(shipment, self.getModelName(), "probabilities", self.getBatchSize())
        return _as_vectors(dataset.withColumn(self.getOutputCol(), udf(F.col(self.getInputCol()))), self.getOutputCol())


def register_image_udf(spark, name, modelName, topK=5, batchSize=16):  # noqa: N803
    """Make a pretrained zoo model callable from Spark SQL as ``name(image)`` on an image struct column:
    the decoded top ``topK`` ImageNet classes, as ``DeepImagePredictor`` gives them. Returns the UDF.

    Example:
        >>> register_image_udf(spark, "classify", "mobilenet_v2")                  # doctest: +SKIP
        >>> spark.sql("SELECT classify(image)[0].description FROM images").show()  # doctest: +SKIP
    """
    if int(topK) < 1:
        raise ValueError(f"register_image_udf: topK must be >= 1, got {topK}")
    shipment = _shipment(spark, modelName, featurize=False)
    udf = _image_udf(shipment, modelName, "predictions", int(batchSize), int(topK))
    spark.udf.register(name, udf)
    return udf


# ---------------------------------------------------------------- image columns as model features
def _to_preprocessing(value):
    """A transform (``ember.zoo.vision.transforms``) from itself, a callable, or its saved JSON form."""
    if value is None or (callable(value) and not isinstance(value, dict)):
        return value
    if isinstance(value, dict):
        return transform_from_json(value)
    raise TypeError(f"imagePreprocessing: expected a transform from ember.zoo.vision.transforms (e.g. T.Compose([...]))"
                    f" or a function from an RGB array to an array, got {type(value).__name__}")


def transform_to_json(transform):
    """A transform of ``ember.zoo.vision.transforms`` as JSON ({"class": ..., "config": {...}}); functions
    cannot be saved (a clear error says so). A weights entry's ``Preprocessing`` is saved as its transform."""
    if not isinstance(transform, T.Transform) and isinstance(getattr(transform, "transform", None), T.Transform):
        transform = transform.transform
    if isinstance(transform, T.Compose):
        return {"class": "Compose", "config": {"steps": [transform_to_json(s) for s in transform.steps]}}
    if not isinstance(transform, T.Transform) or type(transform) is not getattr(T, type(transform).__name__, None):
        raise ValueError(f"imagePreprocessing {transform!r} cannot be saved: only the transforms of "
                         "ember.zoo.vision.transforms can (a function cannot)")
    config = {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(transform).items() if not k.startswith("_")}
    return {"class": type(transform).__name__, "config": config}


def transform_from_json(value):
    """The transform that ``transform_to_json`` described."""
    cls = getattr(T, value.get("class", ""), None)
    if not (isinstance(cls, type) and issubclass(cls, T.Transform)):
        raise ValueError(f"imagePreprocessing: unknown transform {value.get('class')!r}")
    config = dict(value.get("config", {}))
    if cls is T.Compose:
        return T.Compose([transform_from_json(s) for s in config["steps"]])
    return cls(**config)


class HasImagePreprocessing(Params):
    """The ``imagePreprocessing`` Param of ``NNEstimator``/``NNModel``: how an image column becomes model
    input (a transform of ``ember.zoo.vision.transforms``, e.g. ``Compose([Resize(32), CenterCrop(32),
    ToTensor()])``; default ``ToTensor()``: RGB in [0, 1], images of one size)."""

    imagePreprocessing = Param(Params._dummy(), "imagePreprocessing", "for an image features column: the transform "
                               "from an RGB image to the model's input (ember.zoo.vision.transforms)",
                               typeConverter=_to_preprocessing)

    def __init__(self):
        super().__init__()
        self._setDefault(imagePreprocessing=None)

    def setImagePreprocessing(self, value):
        return self._set(imagePreprocessing=value)

    def getImagePreprocessing(self):
        return self.getOrDefault(self.imagePreprocessing)


def _preprocess_udf(preprocessing):
    from collections.abc import Iterator

    import pandas as pd
    from pyspark.sql.functions import pandas_udf

    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.Series]:
        for frame in batches:
            images = struct_images(frame)
            if any(im is None for im in images):
                raise ValueError(f"imagePreprocessing: {sum(im is None for im in images)} row(s) of the image column "
                                 "are null or invalid images (mode -1); drop them first (read_images drops them by "
                                 "default)")
            yield pd.Series([np.asarray(preprocessing(im), dtype=np.float32).reshape(-1) for im in images],
                            dtype=object)

    return pandas_udf(run, "array<float>")


def image_features(dataset, features, preprocessing):
    """If ``features`` names one image struct column of ``dataset``: an expression turning it into model
    input (``preprocessing`` applied per row on the executors, flattened into ``array<float>``), else None.
    The hook of ``NNEstimator`` and ``NNModel`` for image columns."""
    if not isinstance(features, str):
        return None
    fields = {f.name: f.dataType for f in dataset.schema.fields}
    if features not in fields or not is_image_struct(fields[features]):
        if preprocessing is not None and features in fields:
            raise ValueError(f"imagePreprocessing is set but column {features!r} has type "
                             f"{fields[features].simpleString()}, not Spark's image struct")
        return None
    return _preprocess_udf(preprocessing if preprocessing is not None else T.ToTensor())(F.col(features))


IMAGE_FEATURES = "__ember_image_features"


def image_input(dataset, features, preprocessing):
    """``(dataset, features)`` unchanged, or where ``features`` is an image column, ``dataset`` with the
    preprocessed images added as an ``array<float>`` column and that column's name (``NNEstimator.fit``)."""
    column = image_features(dataset, features, preprocessing)
    if column is None:
        return dataset, features
    return dataset.withColumn(IMAGE_FEATURES, column), IMAGE_FEATURES
