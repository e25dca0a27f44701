"""The layers Keras examples use beyond the basics: gradients against finite differences and config round
trips (``run_layer_test``), and outputs against Keras 3 itself (torch backend) with the same weights."""

import numpy as np
import pytest
from keras_reference import keras_or_skip as _keras  # tests/ is on sys.path (conftest)
from layer_testing import run_layer_test

import ember
from ember import layers
from ember.layers.base import get_mask


def _rng(seed=0):
    return np.random.default_rng(seed)


SEQ = _rng().normal(size=(2, 5, 3))
IMG = _rng(1).normal(size=(2, 6, 5, 3))

CASES = {
    "MaxPooling1D": (lambda: layers.MaxPooling1D(2), SEQ, (2, 2, 3)),
    "MaxPooling1D_same": (lambda: layers.MaxPooling1D(2, padding="same"), SEQ, (2, 3, 3)),
    "AveragePooling1D": (lambda: layers.AveragePooling1D(3, strides=1), SEQ, (2, 3, 3)),
    "AveragePooling1D_first": (lambda: layers.AveragePooling1D(2, data_format="channels_first"), SEQ, (2, 5, 1)),
    "GlobalMaxPooling1D": (lambda: layers.GlobalMaxPooling1D(), SEQ, (2, 3)),
    "GlobalAveragePooling1D": (lambda: layers.GlobalAveragePooling1D(keepdims=True), SEQ, (2, 1, 3)),
    "RepeatVector": (lambda: layers.RepeatVector(4), SEQ[:, 0], (2, 4, 3)),
    "UpSampling2D": (lambda: layers.UpSampling2D((2, 3)), IMG, (2, 12, 15, 3)),
    "Cropping2D": (lambda: layers.Cropping2D(((1, 2), (0, 1))), IMG, (2, 3, 4, 3)),
    "SeparableConv2D": (lambda: layers.SeparableConv2D(4, 3, depth_multiplier=2, padding="same",
                                                       activation="tanh"), IMG, (2, 6, 5, 4)),
    "TimeDistributed": (lambda: layers.TimeDistributed(layers.Dense(4, activation="tanh")), SEQ, (2, 5, 4)),
    "Bidirectional": (lambda: layers.Bidirectional(layers.LSTM(3, return_sequences=True)), SEQ, (2, 5, 6)),
    "Bidirectional_GRU_sum": (lambda: layers.Bidirectional(layers.GRU(3), merge_mode="sum"), SEQ, (2, 3)),
    "SimpleRNN_backwards": (lambda: layers.SimpleRNN(3, go_backwards=True, return_sequences=True), SEQ, (2, 5, 3)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_layer_gradients_and_config(name):
    factory, x, shape = CASES[name]
    run_layer_test(factory, x, expected_shape=shape)


def test_spatial_dropout_drops_whole_channels():
    x = np.ones((4, 6, 8))
    y = layers.SpatialDropout1D(0.5)(x, training=True).numpy()
    assert np.all(y == y[:, :1, :])  # the same draw at every step
    assert set(np.unique(y)) <= {0.0, 2.0} and 0 < (y == 0).mean() < 1
    y2 = layers.SpatialDropout2D(0.5)(np.ones((4, 3, 3, 8)), training=True).numpy()
    assert np.all(y2 == y2[:, :1, :1, :])
    np.testing.assert_array_equal(layers.SpatialDropout1D(0.5)(x, training=False).numpy(), x)
    run_layer_test(lambda: layers.SpatialDropout2D(0.3), IMG, training=True)


def test_recurrent_return_state_and_dropout():
    lstm = layers.LSTM(4, return_state=True)
    out, h, c = lstm(SEQ)
    np.testing.assert_array_equal(out.numpy(), h.numpy())
    assert c.shape == (2, 4)
    inp = ember.Input(shape=(5, 3))
    seq, state = layers.GRU(4, return_sequences=True, return_state=True)(inp)
    model = ember.Model(inp, [seq, state])
    a, b = model.predict(SEQ)
    np.testing.assert_allclose(a[:, -1], b, rtol=1e-6)
    rnn = layers.SimpleRNN(4, dropout=0.5, recurrent_dropout=0.5)
    ember.set_seed(3)
    first = rnn(SEQ, training=True).numpy()
    assert not np.allclose(first, rnn(SEQ, training=True).numpy())  # new masks each call in training
    np.testing.assert_array_equal(rnn(SEQ, training=False).numpy(), rnn(SEQ, training=False).numpy())
    with pytest.raises(ValueError, match="dropout must be in"):
        layers.LSTM(2, dropout=1.5)


def _copy_into_keras(keras_layer, ember_layer, x):
    keras_layer(x.astype(np.float32))
    weights = ember_layer.get_weights()
    assert [w.shape for w in weights] == [tuple(w.shape) for w in keras_layer.get_weights()]
    keras_layer.set_weights(weights)


@pytest.mark.parametrize("make", [
    lambda L: L.Bidirectional(L.LSTM(4, return_sequences=True)),
    lambda L: L.Bidirectional(L.GRU(4), merge_mode="ave"),
    lambda L: L.TimeDistributed(L.Dense(3, activation="relu")),
    lambda L: L.SeparableConv2D(5, 3, strides=2, padding="same", depth_multiplier=2),
    lambda L: L.UpSampling2D(2),
    lambda L: L.Cropping2D(((1, 0), (2, 1))),
    lambda L: L.MaxPooling1D(2, padding="same"),
    lambda L: L.AveragePooling1D(2),
    lambda L: L.GlobalMaxPooling1D(),
    lambda L: L.GlobalAveragePooling1D(),
    lambda L: L.RepeatVector(3),
], ids=["bilstm", "bigru_ave", "timedistributed", "separable", "upsampling", "cropping", "maxpool1d", "avgpool1d",
        "gmp1d", "gap1d", "repeat"])
def test_outputs_match_keras(make):
    keras = _keras()
    ours, theirs = make(layers), make(keras.layers)
    name = type(ours).__name__
    x = (IMG if name in ("SeparableConv2D", "UpSampling2D", "Cropping2D") else
         SEQ[:, 0] if name == "RepeatVector" else SEQ).astype(np.float32)
    y = ours(x).numpy()
    _copy_into_keras(theirs, ours, x)
    np.testing.assert_allclose(y, keras.ops.convert_to_numpy(theirs(x)), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "SimpleRNN"])
@pytest.mark.parametrize("return_sequences", [False, True])
def test_masks_flow_into_recurrent_layers_as_in_keras(kind, return_sequences):
    keras = _keras()
    ids = np.array([[4, 2, 7, 0, 0], [3, 0, 0, 0, 0], [1, 5, 2, 8, 9]])

    def build(L):
        inp = L.Input(shape=(5,), dtype="int32")
        h = L.Embedding(10, 3, mask_zero=True)(inp)
        h = getattr(L, kind)(4, return_sequences=return_sequences)(h)
        return h, inp

    out, inp = build(layers)
    ours = ember.Model(inp, out)
    kout, kinp = build(keras.layers)
    theirs = keras.Model(kinp, kout)
    theirs.set_weights(ours.get_weights())
    np.testing.assert_allclose(ours.predict(ids), keras.ops.convert_to_numpy(theirs(ids)), rtol=1e-5, atol=1e-6)


def test_masking_and_bidirectional_mask_match_keras():
    keras = _keras()
    x = _rng(4).normal(size=(3, 6, 2)).astype(np.float32)
    x[0, 4:] = 0.0
    x[1, 2:] = 0.0

    def build(L):
        inp = L.Input(shape=(6, 2))
        h = L.Masking(0.0)(inp)
        h = L.Bidirectional(L.LSTM(3, return_sequences=True))(h)
        h = L.GlobalAveragePooling1D()(h)
        return inp, h

    inp, out = build(layers)
    ours = ember.Model(inp, out)
    kinp, kout = build(keras.layers)
    theirs = keras.Model(kinp, kout)
    theirs.set_weights(ours.get_weights())
    np.testing.assert_allclose(ours.predict(x), keras.ops.convert_to_numpy(theirs(x)), rtol=1e-5, atol=1e-6)
    assert get_mask(layers.Masking()(x)).tolist()[1] == [True, True, False, False, False, False]


def test_masked_model_trains_and_round_trips(tmp_path):
    ids = _rng(5).integers(1, 20, size=(32, 7))
    ids[:, 5:] = 0
    y = (ids[:, 0] > 10).astype(np.int64)
    model = ember.Sequential([layers.Embedding(20, 4, mask_zero=True, input_shape=(7,)),
                              layers.Bidirectional(layers.LSTM(3, dropout=0.1, recurrent_dropout=0.1)),
                              layers.Dense(2, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
    model.fit(ids, y, epochs=2, batch_size=8, verbose=0)
    path = tmp_path / "m.ember"
    model.save(path)
    again = ember.load_model(path)
    np.testing.assert_allclose(again.predict(ids), model.predict(ids), rtol=1e-6)
