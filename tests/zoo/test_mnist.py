"""The MNIST loader (safe unpickling, IDX files) and the issue's accuracy targets on real MNIST:
LeNet-5 >= 97% and the 784-512-256-10 MLP >= 94% after one epoch of batch 128 through the Keras API."""
import gzip
import os
import pickle

import numpy as np
import pytest

import ember
from ember.layers import Conv2D, Dense, Flatten, MaxPooling2D
from ember.optim import SGD
from ember.zoo.datasets import mnist


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > pwned.txt",))


def test_pickle_loader_refuses_anything_but_arrays(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "mnist.pkl.gz"
    with gzip.open(path, "wb") as f:
        pickle.dump(_Evil(), f)
    with pytest.raises(pickle.UnpicklingError, match="only NumPy arrays"):
        mnist.load_data(path)
    assert not (tmp_path / "pwned.txt").exists()


def write_idx(path, array):
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def test_idx_folder(tmp_path, rng):
    arrays = {"train-images-idx3-ubyte": rng.integers(0, 256, (5, 28, 28)),
              "train-labels-idx1-ubyte": rng.integers(0, 10, 5),
              "t10k-images-idx3-ubyte": rng.integers(0, 256, (3, 28, 28)),
              "t10k-labels-idx1-ubyte": rng.integers(0, 10, 3)}
    for name, a in arrays.items():
        write_idx(tmp_path / (name + ".gz"), a)
    (x, y), (xt, yt) = mnist.load_data(tmp_path)
    np.testing.assert_array_equal(x, arrays["train-images-idx3-ubyte"])
    np.testing.assert_array_equal(yt, arrays["t10k-labels-idx1-ubyte"])
    assert x.dtype == np.uint8 and y.dtype == np.int64
    with gzip.open(tmp_path / "train-labels-idx1-ubyte.gz", "wb") as f:
        f.write(bytes([0, 0, 8, 1]) + (9).to_bytes(4, "big") + b"\x01\x02")
    with pytest.raises(ValueError, match="truncated"):
        mnist.load_data(tmp_path)
    os.unlink(tmp_path / "t10k-images-idx3-ubyte.gz")
    with pytest.raises(FileNotFoundError, match="t10k-images"):
        mnist.load_data(tmp_path)


@pytest.fixture(scope="module")
def mnist_data():
    (x, y), (xt, yt) = mnist.load_data()
    assert x.shape == (60000, 28, 28) and xt.shape == (10000, 28, 28)
    assert np.bincount(yt).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]  # the known test set

    def norm(a):
        return ((a[..., None] / 255.0 - 0.1307) / 0.3081).astype(np.float32)

    return norm(x), y, norm(xt), yt


@pytest.mark.slow
def test_lenet5_reaches_97_percent_in_one_epoch(mnist_data):
    x, y, xt, yt = mnist_data
    ember.set_seed(0)
    model = ember.Sequential([
        Conv2D(6, 5, padding="same", activation="relu", input_shape=(28, 28, 1)), MaxPooling2D(2),
        Conv2D(16, 5, activation="relu"), MaxPooling2D(2), Flatten(),
        Dense(120, activation="relu"), Dense(84, activation="relu"), Dense(10, activation="softmax")])
    model.compile(SGD(0.01, momentum=0.9), "sparse_categorical_crossentropy", ["accuracy"])
    model.fit(x, y, batch_size=128, epochs=1, verbose=0)
    loss, accuracy = model.evaluate(xt, yt, batch_size=1000)
    assert accuracy >= 0.97, accuracy


@pytest.mark.slow
def test_mlp_reaches_94_percent_in_one_epoch(mnist_data):
    x, y, xt, yt = mnist_data
    ember.set_seed(0)
    model = ember.Sequential([Flatten(input_shape=(28, 28, 1)), Dense(512, activation="relu"),
                              Dense(256, activation="relu"), Dense(10, activation="softmax")])
    model.compile(SGD(0.01, momentum=0.9), "sparse_categorical_crossentropy", ["accuracy"])
    model.fit(x, y, batch_size=128, epochs=1, verbose=0)
    loss, accuracy = model.evaluate(xt, yt, batch_size=1000)
    assert accuracy >= 0.94, accuracy
    assert model.predict_classes(xt[:500]).tolist() == model.predict(xt[:500]).argmax(1).tolist()
