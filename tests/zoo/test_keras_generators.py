"""Python generators, ``keras.utils.Sequence`` and ``steps_per_epoch`` / ``validation_steps`` / ``steps`` in
``fit``, ``evaluate`` and ``predict``: the same numbers as the same batches given as arrays, and as Keras 3."""

import numpy as np
import pytest
from keras_reference import keras_or_skip as _keras  # tests/ is on sys.path (conftest)

import ember
from ember import layers


def data(n=96, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 5)).astype(np.float32)
    return x, (x[:, 0] - x[:, 2] > 0).astype(np.int64)


def model(seed=0):
    ember.set_seed(seed)
    m = ember.Sequential([layers.Dense(8, activation="tanh", input_shape=(5,)), layers.Dense(2, activation="softmax")])
    m.compile(ember.optimizers.SGD(0.1, momentum=0.9), "sparse_categorical_crossentropy", ["accuracy"])
    return m


def batches(x, y, size, w=None):
    """An endless generator of batches in order, as Keras examples write them."""
    while True:
        for i in range(0, len(x), size):
            yield (x[i:i + size], y[i:i + size]) if w is None else (x[i:i + size], y[i:i + size], w[i:i + size])


class Batches(ember.utils.Sequence):
    def __init__(self, x, y, size, **kwargs):
        super().__init__(**kwargs)
        self.x, self.y, self.size, self.epochs_ended = x, y, size, 0

    def __len__(self):
        return int(np.ceil(len(self.x) / self.size))

    def __getitem__(self, i):
        return self.x[i * self.size:(i + 1) * self.size], self.y[i * self.size:(i + 1) * self.size]

    def on_epoch_end(self):
        self.epochs_ended += 1


def test_a_generator_with_steps_per_epoch_equals_arrays():
    x, y = data()
    xv, yv = data(40, seed=1)
    a, b = model(), model()
    ha = a.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0, validation_data=(xv, yv))
    hb = b.fit(batches(x, y, 16), steps_per_epoch=6, epochs=3, verbose=0,
               validation_data=batches(xv, yv, 8), validation_steps=5)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(wb, wa, rtol=1e-6, atol=1e-7)
    for key in ha.history:
        np.testing.assert_allclose(hb.history[key], ha.history[key], rtol=1e-6, err_msg=key)
    assert b.evaluate(batches(xv, yv, 8), steps=5) == pytest.approx(a.evaluate(xv, yv), rel=1e-6)
    np.testing.assert_allclose(b.predict(batches(xv, yv, 8), steps=5), a.predict(xv), rtol=1e-6)
    np.testing.assert_allclose(b.predict(xb for xb in np.split(xv, 4)), a.predict(xv), rtol=1e-6)  # x alone


def test_a_sequence_equals_arrays_and_hears_on_epoch_end():
    x, y = data()
    seq = Batches(x, y, 32, workers=1, use_multiprocessing=False)
    a, b = model(), model()
    a.fit(x, y, batch_size=32, epochs=2, shuffle=False, verbose=0)
    h = b.fit(seq, epochs=2, shuffle=False, verbose=0)
    assert seq.epochs_ended == 2 and len(h.history["loss"]) == 2
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(wb, wa, rtol=1e-6, atol=1e-7)
    assert b.evaluate(Batches(x, y, 10)) == pytest.approx(b.evaluate(x, y), rel=1e-6)
    # shuffled: every batch once per epoch, in another order
    c = model()
    c.fit(Batches(x, y, 32), epochs=1, shuffle=True, verbose=0)
    assert np.abs(c.get_weights()[0] - b.get_weights()[0]).max() > 0


def test_a_finite_generator_without_steps_ends_the_epoch_when_it_stops(caplog):
    x, y = data()
    a, b = model(), model()
    a.fit(x, y, batch_size=24, epochs=1, shuffle=False, verbose=0)
    h = b.fit(((x[i:i + 24], y[i:i + 24]) for i in range(0, 96, 24)), epochs=3, verbose=0)
    assert len(h.history["loss"]) == 1  # the generator ran dry: training stops after the first epoch, as in Keras
    assert "ran out of data" in caplog.text
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(wb, wa, rtol=1e-6, atol=1e-7)


def test_generator_batches_with_sample_weights_and_class_weight():
    x, y = data()
    w = np.linspace(0.2, 2.0, len(x))
    a, b = model(), model()
    a.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0, sample_weight=w)
    b.fit(batches(x, y, 16, w), steps_per_epoch=6, verbose=0)
    np.testing.assert_allclose(b.get_weights()[0], a.get_weights()[0], rtol=1e-6, atol=1e-7)
    c, d = model(), model()
    c.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0, class_weight={0: 0.3, 1: 2.0})
    d.fit(batches(x, y, 16), steps_per_epoch=6, verbose=0, class_weight={0: 0.3, 1: 2.0})
    np.testing.assert_allclose(d.get_weights()[0], c.get_weights()[0], rtol=1e-6, atol=1e-7)


def test_generator_training_matches_keras():
    keras = _keras()
    x, y = data()
    keras.utils.set_random_seed(0)
    theirs = keras.Sequential([keras.Input(shape=(5,)), keras.layers.Dense(8, activation="tanh"),
                               keras.layers.Dense(2, activation="softmax")])
    ours = ember.Sequential([ember.Input(shape=(5,)), layers.Dense(8, activation="tanh"),
                             layers.Dense(2, activation="softmax")])
    ours.set_weights(theirs.get_weights())
    theirs.compile(keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy", metrics=["accuracy"])
    ours.compile(ember.optimizers.SGD(0.1), "sparse_categorical_crossentropy", metrics=["accuracy"])
    ht = theirs.fit(batches(x, y, 16), steps_per_epoch=6, epochs=2, verbose=0)
    ho = ours.fit(batches(x, y, 16), steps_per_epoch=6, epochs=2, verbose=0)
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6)
    for key in ("loss", "accuracy"):
        np.testing.assert_allclose(ho.history[key], ht.history[key], rtol=2e-5, err_msg=key)
    np.testing.assert_allclose(ours.evaluate(batches(x, y, 32), steps=3),
                               theirs.evaluate(batches(x, y, 32), steps=3, verbose=0), rtol=2e-5)


def test_generator_errors_name_what_was_expected():
    x, y = data(20)
    m = model()
    with pytest.raises(ValueError, match="steps_per_epoch applies to generators"):
        m.fit(x, y, steps_per_epoch=3, verbose=0)
    with pytest.raises(ValueError, match="the batches carry the targets"):
        m.fit(batches(x, y, 4), y, steps_per_epoch=3, verbose=0)
    with pytest.raises(ValueError, match="training batches must hold targets"):
        m.fit((xb for xb in np.split(x, 5)), verbose=0)
    with pytest.raises(ValueError, match="validation_split takes arrays"):
        m.fit(batches(x, y, 4), steps_per_epoch=2, validation_split=0.2, verbose=0)
    with pytest.raises(ValueError, match="steps must be an integer >= 1"):
        m.evaluate(batches(x, y, 4), steps=0)
