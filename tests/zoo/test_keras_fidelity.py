"""Keras fidelity (issue 18): ``weighted_metrics``, ``hard_sigmoid``, ``add_loss``, ``OrthogonalRegularizer``,
Keras's Adam epsilon and frozen BatchNormalization, each checked against Keras 3 (torch backend) where Keras
has the feature, and against hand or finite-difference values otherwise."""
import numpy as np
from keras_reference import keras_or_skip as _keras  # tests/ is on sys.path (conftest)

import ember
from ember import layers, optim


def _to_numpy(keras, value):
    return np.asarray(keras.ops.convert_to_numpy(value))


# ---------------------------------------------------------------- Adam's epsilon
def _adam_run(keras, opt_ours, epochs=3):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(96, 6)).astype(np.float32)
    y = rng.integers(0, 3, size=96)

    def build(lib):
        inp = lib.Input(shape=(6,))
        h = lib.layers.Dense(8, activation="tanh")(inp)
        return lib.Model(inp, lib.layers.Dense(3, activation="softmax")(h))

    keras.utils.set_random_seed(0)
    theirs = build(keras)
    ours = build(ember)
    ours.set_weights(theirs.get_weights())
    theirs.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy")
    ours.compile(opt_ours, "sparse_categorical_crossentropy")
    theirs.fit(x, y, batch_size=16, epochs=epochs, shuffle=False, verbose=0)
    ours.fit(x, y, batch_size=16, epochs=epochs, shuffle=False, verbose=0)
    return max(np.abs(a - b).max() for a, b in zip(ours.get_weights(), theirs.get_weights()))


def test_keras_adam_has_keras_defaults_and_bigdl_adam_keeps_bigdls():
    assert ember.optimizers.Adam().hyper["epsilon"] == 1e-7
    assert ember.optimizers.get("adam").hyper["epsilon"] == 1e-7
    assert ember.optimizers.AdamW().hyper["weight_decay"] == 0.004
    assert optim.Adam().hyper["epsilon"] == 1e-8  # BigDL's Adam(Epsilon=1e-8)
    assert "keras_epsilon" not in optim.Adam().hyper
    model = ember.Sequential([layers.Dense(2, input_shape=(3,))])
    assert model.compile("adam", "mse").optimizer.hyper["epsilon"] == 1e-7


def test_keras_epsilon_is_added_before_the_bias_correction():
    """One step by hand: lr sqrt(1 - b2) / (1 - b1) * m / (sqrt(v) + eps), with a gradient small enough
    that epsilon matters (sqrt(v) = 1e-7 * sqrt(0.001))."""
    g = np.array([1e-7, -3e-7])
    param = np.zeros(2)
    ember.optimizers.Adam(0.1).update(param, g.copy())
    m, v = 0.1 * g, 0.001 * g * g
    want = -0.1 * np.sqrt(0.001) / 0.1 * m / (np.sqrt(v) + 1e-7)
    np.testing.assert_allclose(param, want, rtol=1e-12)
    bigdl = np.zeros(2)
    optim.Adam(0.1, epsilon=1e-7).update(bigdl, g.copy())
    assert np.abs(bigdl - want).max() > 1e-3 * np.abs(want).max()  # the placement matters at this scale


def test_three_epochs_of_keras_adam_match_keras_closer_than_bigdls_adam():
    """Measured: BigDL's Adam (1e-8, after the bias correction) ends 1.5e-4 from Keras's weights after 3
    epochs; Keras's Adam 9.4e-7 (float32 round-off)."""
    keras = _keras()
    before = _adam_run(keras, optim.Adam(0.01))
    after = _adam_run(keras, ember.optimizers.Adam(0.01))
    assert after < 5e-6, after
    assert before > 20 * after, (before, after)
