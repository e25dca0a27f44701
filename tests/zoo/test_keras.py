"""The Keras-like API: compile/fit/evaluate/predict, History, callbacks, save/load, settings."""
import os

import numpy as np
import pytest

import ember
from ember import optim
from ember.layers import Dense, Dropout, Input
from ember.zoo.keras import callbacks


@pytest.fixture
def data(rng):
    x = rng.normal(size=(200, 5)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
    return x, y


def classifier():
    return ember.Sequential([Dense(16, activation="relu", input_shape=(5,)), Dropout(0.1),
                             Dense(2, activation="softmax")])


def test_fit_returns_history_and_learns(data):
    x, y = data
    model = classifier()
    model.compile(optim.Adam(0.02), "sparse_categorical_crossentropy", ["accuracy"])
    history = model.fit(x, y, batch_size=16, nb_epoch=5, validation_data=(x, y), verbose=0)
    assert history.epoch == [0, 1, 2, 3, 4]
    assert sorted(history.history) == ["accuracy", "loss", "val_accuracy", "val_loss"]
    assert history.history["loss"][-1] < history.history["loss"][0]
    loss, acc = model.evaluate(x, y, batch_size=50)
    assert acc > 0.9 and acc == pytest.approx(history.history["val_accuracy"][-1])
    assert loss == pytest.approx(history.history["val_loss"][-1], rel=1e-5)
    probs = model.predict(x, batch_size=64)
    assert probs.shape == (200, 2)
    np.testing.assert_array_equal(model.predict_classes(x), probs.argmax(1))
    assert model.training  # predict/evaluate switch to inference and back


def test_validation_split_and_string_optimizers(data):
    x, y = data
    for name in ("sgd", "rmsprop", "adagrad", "adadelta", "adamax", "adamw"):
        model = classifier()
        model.compile(name, "sparse_categorical_crossentropy", ["accuracy", "top5"])
        h = model.fit(x, y, batch_size=32, epochs=1, validation_split=0.25, verbose=0)
        assert set(h.history) == {"loss", "accuracy", "top5", "val_loss", "val_accuracy", "val_top5"}
        assert h.history["val_top5"] == [1.0]  # two classes: always in the top five
    with pytest.raises(ValueError, match="unknown optimizer"):
        classifier().compile("sgdd", "mse")
    with pytest.raises(ValueError, match="compile"):
        classifier().fit(x, y)


def test_functional_model_with_two_inputs(rng):
    a, b = Input(shape=(3,)), Input(shape=(2,))
    out = Dense(1)(ember.layers.Concatenate()([Dense(4, activation="tanh")(a), b]))
    model = ember.Model([a, b], out)
    xa, xb = rng.normal(size=(64, 3)), rng.normal(size=(64, 2))
    y = xa[:, :1] - 2 * xb[:, 1:]
    model.compile(optim.Adam(0.05), "mse", ["mae"])
    h = model.fit([xa, xb], y, batch_size=16, epochs=20, verbose=0)
    assert h.history["loss"][-1] < 0.1 * h.history["loss"][0]
    mse, mae = model.evaluate([xa, xb], y)
    assert mse < 0.1 and mae < 0.3
    assert model.predict([xa, xb]).shape == (64, 1)


def test_callbacks(tmp_path, data):
    x, y = data
    events = []

    class Recorder(callbacks.Callback):
        def on_train_begin(self, logs=None):
            events.append("begin")

        def on_epoch_begin(self, epoch, logs=None):
            events.append(("epoch", epoch))

        def on_batch_end(self, batch, logs=None):
            events.append(("batch", batch, round(logs["loss"], 3) >= 0))

        def on_train_end(self, logs=None):
            events.append("end")

    model = classifier()
    model.compile(optim.SGD(0.1), "sparse_categorical_crossentropy", ["accuracy"])
    stopper = callbacks.EarlyStopping(monitor="loss", min_delta=1e9, patience=1)
    saver = callbacks.ModelCheckpoint(str(tmp_path / "m-{epoch:02d}-{val_accuracy:.2f}.ember"),
                                      monitor="val_accuracy")
    rates = callbacks.LearningRateScheduler(lambda epoch, lr: 0.1 / (epoch + 1))
    h = model.fit(x, y, batch_size=100, epochs=10, validation_data=(x, y), verbose=0,
                  callbacks=[Recorder(), stopper, saver, rates])
    assert h.epoch == [0, 1] and stopper.stopped_epoch == 1  # no improvement of 1e9: stop after patience 1
    assert events[:4] == ["begin", ("epoch", 0), ("batch", 0, True), ("batch", 1, True)]
    assert events[-1] == "end"
    assert h.history["lr"] == [0.1, 0.05]
    saved = sorted(os.listdir(tmp_path))
    assert len(saved) == 2 and saved[0].startswith("m-01-")
    restored = ember.load_model(tmp_path / saved[1])
    np.testing.assert_allclose(restored.predict(x), model.predict(x), rtol=1e-6)


def test_early_stopping_restores_best_weights(data):
    x, y = data
    model = classifier()
    model.compile(optim.SGD(0.05), "sparse_categorical_crossentropy")
    best = {}

    class Snapshot(callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 0:
                best["w"] = [w.copy() for w in self.model.get_weights()]

    stopper = callbacks.EarlyStopping(monitor="loss", mode="max", patience=0, restore_best_weights=True)
    model.fit(x, y, batch_size=20, epochs=5, verbose=0, callbacks=[Snapshot(), stopper])
    # the loss falls, so with mode="max" epoch 0 stays the best and its weights come back
    for a, b in zip(model.get_weights(), best["w"]):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="not in the logs"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[callbacks.EarlyStopping()])


def test_save_load_keeps_training_api(tmp_path, data):
    x, y = data
    model = classifier()
    model.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
    model.fit(x, y, epochs=1, verbose=0)
    model.save(tmp_path / "m.ember")
    loaded = ember.load_model(tmp_path / "m.ember")
    assert isinstance(loaded, ember.Sequential)
    np.testing.assert_allclose(loaded.predict(x), model.predict(x), rtol=1e-6)
    loaded.compile("sgd", "sparse_categorical_crossentropy")
    loaded.fit(x, y, epochs=1, verbose=0)


def test_tensorboard_checkpoint_and_clipping_settings(tmp_path, data):
    x, y = data
    model = classifier()
    model.compile(optim.SGD(0.1), "sparse_categorical_crossentropy", ["accuracy"])
    model.set_tensorboard(str(tmp_path / "logs"), "run1")
    model.set_checkpoint(str(tmp_path / "ckpt"))
    model.set_gradient_clipping_by_l2_norm(0.01)
    before = [w.copy() for w in model.get_weights()]
    model.fit(x, y, batch_size=50, epochs=2, validation_data=(x, y), verbose=0)
    loss = model.get_train_summary("Loss")
    assert [s for s, _, _ in loss] == list(range(1, 9))
    assert [s for s, _, _ in model.get_validation_summary("accuracy")] == [4, 8]
    assert sorted(os.listdir(tmp_path / "ckpt")) == [".ember-lock", "checkpoint-8.ember"]
    # with the L2 norm clipped to 0.01, 8 SGD steps of lr 0.1 move the weights by at most 8 * 0.001
    moved = np.sqrt(sum(((a - b) ** 2).sum() for a, b in zip(model.get_weights(), before)))
    assert 0 < moved <= 8 * 0.1 * 0.01 + 1e-6
    model.clear_gradient_clipping()
    model.set_constant_gradient_clipping(-1e-4, 1e-4)
    before = [w.copy() for w in model.get_weights()]
    model.fit(x, y, batch_size=200, epochs=1, verbose=0)
    largest_step = max(np.abs(a - b).max() for a, b in zip(model.get_weights(), before))
    assert largest_step <= 0.1 * 1e-4 * 1.01  # float32 rounding


def test_progress_bar_verbose_one(data, capsys):
    x, y = data
    model = classifier()
    model.compile("sgd", "sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=50, epochs=1, verbose=1)
    err = capsys.readouterr().err
    assert "Epoch 1" in err and "200/200" in err


def test_one_sequential_and_one_model_class_everywhere(tmp_path, data):
    import ember.layers
    import ember.zoo.keras

    assert ember.Sequential is ember.layers.Sequential is ember.zoo.keras.Sequential
    assert ember.Model is ember.layers.Model is ember.zoo.keras.Model
    x, y = data
    model = ember.layers.Sequential([Dense(8, activation="relu", input_shape=(x.shape[1],)),
                                     Dense(2, activation="softmax")])
    model.compile(optim.Adam(0.01, beta_1=0.8), "sparse_categorical_crossentropy", ["accuracy"])
    model.fit(x, y, batch_size=32, epochs=1, verbose=0)
    path = tmp_path / "compiled.ember"
    model.save(path)
    loaded = ember.layers.load_model(path)  # the layers' loader brings it back compiled too
    assert type(loaded) is ember.Sequential
    assert type(loaded.optimizer) is optim.Adam and loaded.optimizer.learning_rate == 0.01
    assert loaded.optimizer.hyper == model.optimizer.hyper and loaded.loss.name == "sparse_categorical_crossentropy"
    assert [m.name for m in loaded.metrics] == ["accuracy"]
    np.testing.assert_allclose(loaded.evaluate(x, y), model.evaluate(x, y), rtol=1e-6)
    assert "accuracy" in loaded.fit(x, y, batch_size=32, epochs=1, verbose=0).history  # trains as compiled
    assert ember.load_model(path, compile=False).optimizer is None


def test_a_user_layer_named_like_a_builtin_does_not_replace_it(tmp_path):
    from ember.layers import Layer
    from ember.layers.base import BUILTIN_LAYERS, LAYER_CLASSES

    class Dense(Layer):  # noqa: F811 - a user's class with a built-in's name
        def call(self, x, training=False):
            return x

    assert BUILTIN_LAYERS["Dense"] is ember.layers.Dense
    assert LAYER_CLASSES[f"{Dense.__module__}.{Dense.__qualname__}"] is Dense
    model = ember.Sequential([ember.layers.Dense(2, input_shape=(3,))])
    model.save(tmp_path / "m.ember")
    assert type(ember.load_model(tmp_path / "m.ember").layers[0]) is ember.layers.Dense
    user = ember.Sequential([Dense(input_shape=(3,))])
    user.save(tmp_path / "u.ember")
    with pytest.raises(ValueError, match="custom_objects"):
        ember.load_model(tmp_path / "u.ember")
    assert type(ember.load_model(tmp_path / "u.ember", {"Dense": Dense}).layers[0]) is Dense
