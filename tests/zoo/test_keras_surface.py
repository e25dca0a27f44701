"""``import ember as keras``: the modules, names, metrics, callbacks and utilities Keras code reaches for,
checked against Keras 3 itself (torch backend) where it is installed."""
import csv

import numpy as np
import pytest
from keras_reference import keras_or_skip as _keras  # tests/ is on sys.path (conftest)

import ember
import ember as keras_like
from ember import layers


@pytest.mark.parametrize("statement", [
    "from ember.models import Sequential, Model, load_model",
    "from ember.layers import Dense, Conv2D, LSTM",
    "from ember.losses import SparseCategoricalCrossentropy, mse, get",
    "from ember.metrics import SparseCategoricalAccuracy, CategoricalAccuracy, BinaryAccuracy, get",
    "from ember.optimizers import SGD, Adam, RMSprop, Adagrad, Adadelta, Adamax, AdamW, get",
    "from ember.callbacks import EarlyStopping, ModelCheckpoint, ReduceLROnPlateau, CSVLogger, TensorBoard",
    "from ember.callbacks import TerminateOnNaN, LambdaCallback, LearningRateScheduler, History, Callback",
    "from ember.utils import to_categorical, pad_sequences",
    "from ember.preprocessing.sequence import pad_sequences",
    "from ember.datasets import mnist",
    "from ember.datasets.mnist import load_data",
    "from ember import Input, Model, Sequential",
])
def test_keras_import_lines(statement):
    exec(statement, {})


def test_package_attributes_are_the_modules():
    assert keras_like.models.Sequential is ember.Sequential is layers.Sequential
    assert keras_like.optimizers.get("adam").__class__ is keras_like.optimizers.Adam
    sgd = keras_like.optimizers.SGD(learning_rate=0.1, momentum=0.9, nesterov=True)
    assert sgd.learning_rate == 0.1 and sgd.hyper["momentum"] == 0.9 and sgd.hyper["nesterov"] is True
    assert keras_like.losses.get("mae").name == "mean_absolute_error"


def test_to_categorical_and_pad_sequences_match_keras():
    keras = _keras()
    y = np.array([[1], [0], [3]])
    np.testing.assert_array_equal(ember.utils.to_categorical(y, 5), keras.utils.to_categorical(y, 5))
    np.testing.assert_array_equal(ember.utils.to_categorical([2, 0]), keras.utils.to_categorical([2, 0]))
    seqs = [[1, 2, 3, 4], [5], [], [6, 7]]
    for kwargs in ({}, {"maxlen": 3}, {"maxlen": 3, "padding": "post", "truncating": "post"},
                   {"maxlen": 5, "value": -1, "truncating": "pre", "padding": "post"}):
        ours = ember.preprocessing.sequence.pad_sequences(seqs, **kwargs)
        theirs = keras.utils.pad_sequences(seqs, **kwargs)
        np.testing.assert_array_equal(ours, theirs)
        assert ours.dtype == theirs.dtype


def test_utils_errors_name_what_was_expected():
    with pytest.raises(ValueError, match=r"class ids must be in \[0, 2\)"):
        ember.utils.to_categorical([0, 2], 2)
    with pytest.raises(ValueError, match="padding must be 'pre' or 'post'"):
        ember.utils.pad_sequences([[1]], padding="middle")


@pytest.mark.parametrize("name,target", [
    ("sparse_categorical_accuracy", "sparse"), ("categorical_accuracy", "onehot"),
    ("top_k_categorical_accuracy", "onehot"), ("sparse_top_k_categorical_accuracy", "sparse"),
])
def test_metrics_match_keras(rng, name, target):
    keras = _keras()
    out = rng.normal(size=(40, 7)).astype(np.float32)
    labels = rng.integers(0, 7, size=40)
    y = labels if target == "sparse" else np.eye(7, dtype=np.float32)[labels]
    ours = ember.metrics.get(name)
    assert ours.name == name
    theirs = keras.metrics.get(name)(y, out)
    assert ours(out, y).result()[0] == pytest.approx(float(np.mean(keras.ops.convert_to_numpy(theirs))))


def test_binary_accuracy_and_loss_names_as_metrics(rng):
    keras = _keras()
    out = rng.random((30, 3)).astype(np.float32)
    y = (rng.random((30, 3)) > 0.5).astype(np.float32)
    theirs = np.mean(keras.ops.convert_to_numpy(keras.metrics.binary_accuracy(y, out)))
    assert ember.metrics.get("binary_accuracy")(out, y).result()[0] == pytest.approx(float(theirs))
    bce = ember.metrics.get("binary_crossentropy")
    assert bce.name == "binary_crossentropy"
    expected = float(keras.ops.convert_to_numpy(keras.losses.binary_crossentropy(y, out)).mean())
    assert bce(out, y).result()[0] == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ValueError, match="unknown metric 'f7'"):
        ember.metrics.get("f7")


def test_binary_crossentropy_takes_labels_of_shape_n(rng):
    p = rng.random((6, 1)) * 0.9 + 0.05
    y = (rng.random(6) > 0.5).astype(np.float64)
    loss = ember.losses.BinaryCrossentropy()
    assert loss(y, p).item() == pytest.approx(loss(y[:, None], p).item())
    with pytest.raises(ValueError, match="must equal y_pred shape"):
        loss(np.zeros(5), p)


def _binary_model():
    model = ember.Sequential([ember.Input(shape=(3,)), layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer=ember.optimizers.SGD(learning_rate=0.5), loss="binary_crossentropy",
                  metrics=["binary_accuracy", ember.metrics.BinaryAccuracy(threshold=0.3)])
    return model


def test_evaluate_return_dict_and_metrics_names(rng):
    x = rng.random((64, 3)).astype(np.float32)
    y = (x.sum(1) > 1.5).astype(np.float32)  # (N,) labels against a (N, 1) output, as Keras takes them
    model = _binary_model()
    model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    assert model.metrics_names == ["loss", "binary_accuracy", "binary_accuracy"]
    values = model.evaluate(x, y)
    as_dict = model.evaluate(x, y, return_dict=True)
    assert list(as_dict) == ["loss", "binary_accuracy"] and as_dict["loss"] == values[0]
    p = model.predict(x)[:, 0]
    assert values[1] == pytest.approx(np.mean((p > 0.5) == y)) and values[2] == pytest.approx(np.mean((p > 0.3) == y))


def test_callbacks_reduce_lr_csv_lambda_tensorboard(rng, tmp_path):
    x = rng.random((64, 3)).astype(np.float32)
    y = (x.sum(1) > 1.5).astype(np.float32)
    model = _binary_model()
    seen = []
    callbacks = [
        ember.callbacks.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=0, min_delta=10.0, min_lr=0.1),
        ember.callbacks.CSVLogger(tmp_path / "log.csv"),
        ember.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: seen.append((epoch, logs["loss"]))),
        ember.callbacks.TensorBoard(log_dir=tmp_path / "tb"),
    ]
    history = model.fit(x, y, epochs=4, batch_size=16, verbose=0, callbacks=callbacks)
    # min_delta=10: no epoch after the first improves, so the rate halves after each of them, down to min_lr
    # (the logs show the rate the epoch ran with, as Keras's do)
    assert history.history["lr"] == [0.5, 0.5, 0.25, 0.125]
    assert model.optimizer.learning_rate == 0.1
    assert [e for e, _ in seen] == [0, 1, 2, 3]
    with open(tmp_path / "log.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2, 3]
    assert float(rows[2]["loss"]) == pytest.approx(seen[2][1])
    from ember.optim.summary import TrainSummary

    values = TrainSummary(tmp_path / "tb", "").read_scalar("epoch_loss")
    assert [v for _, v, _ in values] == pytest.approx([loss for _, loss in seen])


def test_terminate_on_nan_stops_fit_quietly(rng):
    x = rng.random((32, 3)).astype(np.float32)
    x[20:] = 3e38  # finite inputs whose products overflow: the loss is infinite from the third batch
    y = np.ones((32, 1), dtype=np.float32)
    ember.set_seed(0)
    model = ember.Sequential([ember.layers.Dense(1, kernel_initializer="ones", input_shape=(3,))])
    model.compile("sgd", "mse")
    with pytest.raises(FloatingPointError):
        model.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0)
    before = model.get_weights()
    model.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0, callbacks=[ember.callbacks.TerminateOnNaN()])
    assert all(np.isfinite(w).all() for w in model.get_weights())
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


def test_mnist_load_data_as_keras_returns_it():
    try:
        (x_train, y_train), (x_test, y_test) = ember.datasets.mnist.load_data(download_if_missing=False)
    except (OSError, FileNotFoundError) as e:
        pytest.skip(f"MNIST is not available offline here: {e}")
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert x_train.dtype == np.uint8 and y_train.dtype == np.uint8 and y_test.shape == (10000,)
