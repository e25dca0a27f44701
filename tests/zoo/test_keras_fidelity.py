"""Keras fidelity (issue 18): ``weighted_metrics``, ``hard_sigmoid``, ``add_loss``, ``OrthogonalRegularizer``,
Keras's Adam epsilon and frozen BatchNormalization, each checked against Keras 3 (torch backend) where Keras
has the feature, and against hand or finite-difference values otherwise."""
import numpy as np
import pytest
from keras_reference import keras_or_skip as _keras  # tests/ is on sys.path (conftest)
from layer_testing import numeric_gradient

import ember
from ember import layers, optim
from ember.engine import Tensor
from ember.engine import functional as F


def _to_numpy(keras, value):
    return np.asarray(keras.ops.convert_to_numpy(value))


# ---------------------------------------------------------------- Adam's epsilon
def _adam_run(keras, opt_ours, epochs=3, theirs_opt=None):
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
    theirs.compile(theirs_opt or keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy")
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
    bigdl = optim.Adam(learningrate=0.01, beta1=0.8, beta2=0.99)  # BigDL's keyword names
    assert bigdl.learning_rate == 0.01 and (bigdl.hyper["beta_1"], bigdl.hyper["beta_2"]) == (0.8, 0.99)
    with pytest.raises(ValueError, match="learningrate_decay=0.1 is not supported"):
        optim.Adam(learningrate_decay=0.1)
    model = ember.Sequential([layers.Dense(2, input_shape=(3,))])
    assert model.compile("adam", "mse").optimizer.hyper["epsilon"] == 1e-7


@pytest.mark.parametrize("kind", ["Adam", "AdamW"])
def test_keras_weight_decay_is_decoupled_as_keras(kind):
    """Keras 3 decays the weights themselves (param -= lr * wd * param) for Adam too, not the gradient (L2)."""
    keras = _keras()
    ours = getattr(ember.optimizers, kind)(0.01, weight_decay=0.2)
    assert _adam_run(keras, ours, theirs_opt=getattr(keras.optimizers, kind)(0.01, weight_decay=0.2)) < 5e-6
    if kind == "Adam":  # BigDL's Adam adds weight_decay * param to the gradient instead: far off
        coupled = optim.Adam(0.01, epsilon=1e-7, weight_decay=0.2)
        assert _adam_run(keras, coupled, theirs_opt=keras.optimizers.Adam(0.01, weight_decay=0.2)) > 1e-4


def test_a_saved_model_comes_back_with_the_same_adam(tmp_path):
    for opt in (ember.optimizers.Adam(0.01), optim.Adam(0.01)):
        model = ember.Sequential([layers.Dense(2, input_shape=(3,))])
        model.compile(opt, "mse")
        model.save(str(tmp_path / "m.ember"))
        again = ember.load_model(str(tmp_path / "m.ember")).optimizer
        assert type(again) is type(opt) and again.hyper == opt.hyper


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


# ---------------------------------------------------------------- hard_sigmoid
def test_hard_sigmoid_equals_keras_by_name_and_function():
    keras = _keras()
    x = np.linspace(-5, 5, 41).astype(np.float32)
    want = _to_numpy(keras, keras.activations.hard_sigmoid(keras.ops.convert_to_tensor(x)))
    np.testing.assert_allclose(ember.activations.hard_sigmoid(x).numpy(), want, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(layers.Activation("hard_sigmoid")(x[:, None]).numpy()[:, 0], want, atol=1e-7)
    assert ember.activations.get("hard_sigmoid") is ember.activations.hard_sigmoid
    dense = layers.Dense(3, activation="hard_sigmoid")
    assert layers.Dense.from_config(dense.get_config()).activation is ember.activations.hard_sigmoid


def test_hard_sigmoid_gradient_matches_finite_differences(float64):
    x = np.array([-4.0, -2.9, -1.0, 0.0, 0.7, 2.9, 3.5])  # both flat parts and the slope, away from the kinks
    t = Tensor(x.copy(), requires_grad=True)
    weights = np.arange(1.0, 8.0)
    (ember.activations.hard_sigmoid(t) * Tensor(weights)).sum().backward()
    numeric = numeric_gradient(lambda: float((ember.activations.hard_sigmoid(Tensor(x)).numpy() * weights).sum()), x)
    np.testing.assert_allclose(t.grad, numeric, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(t.grad, weights * ((x > -3) & (x < 3)) / 6.0, rtol=1e-12)


# ---------------------------------------------------------------- OrthogonalRegularizer
@pytest.mark.parametrize("mode", ["rows", "columns"])
def test_orthogonal_regularizer_equals_keras(mode):
    keras = _keras()
    w = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    w[2] = 0.0  # a zero row: Keras divides by max(norm, 1e-7)
    theirs = keras.regularizers.OrthogonalRegularizer(factor=0.3, mode=mode)
    ours = ember.regularizers.OrthogonalRegularizer(factor=0.3, mode=mode)
    want = float(_to_numpy(keras, theirs(keras.ops.convert_to_tensor(w))))
    assert want > 0.01
    assert ours(Tensor(w)).item() == pytest.approx(want, rel=1e-5)
    again = ember.regularizers.get(ember.regularizers.serialize(ours)).get_config()
    assert again["mode"] == mode and again["factor"] == pytest.approx(theirs.get_config()["factor"])


def test_orthogonal_regularizer_gradient_and_training_penalty(float64):
    rng = np.random.default_rng(1)
    w = rng.normal(size=(4, 3))
    reg = ember.regularizers.OrthogonalRegularizer(factor=0.5)
    t = Tensor(w.copy(), requires_grad=True)
    reg(t).backward()
    np.testing.assert_allclose(t.grad, numeric_gradient(lambda: reg(Tensor(w)).item(), w), rtol=1e-6, atol=1e-9)
    dense = layers.Dense(3, kernel_regularizer="orthogonal_regularizer")
    dense(np.ones((2, 4)))
    assert dense.penalty().item() == pytest.approx(
        ember.regularizers.OrthogonalRegularizer(0.01)(dense.kernel).item(), rel=1e-12)
    with pytest.raises(ValueError, match="mode must be 'rows' or 'columns'"):
        ember.regularizers.OrthogonalRegularizer(mode="diagonal")
    with pytest.raises(ValueError, match="expected a 2-D weight"):
        reg(np.ones((2, 2, 2)))


# ---------------------------------------------------------------- frozen BatchNormalization
def _bn_pair(keras):
    def build(lib):
        inp = lib.Input(shape=(5,))
        h = lib.layers.Dense(6, activation="relu")(inp)
        h = lib.layers.BatchNormalization()(h)
        return lib.Model(inp, lib.layers.Dense(2, activation="softmax")(h))

    keras.utils.set_random_seed(1)
    theirs = build(keras)
    ours = build(ember)
    bn = theirs.layers[2].get_weights()  # gamma, beta, moving mean, moving variance
    bn[2] += 0.3  # moving statistics away from 0 and 1, so that using them shows
    bn[3] *= 2.0
    theirs.layers[2].set_weights(bn)
    for a, b in zip(ours.layers, theirs.layers):
        a.set_weights(b.get_weights())
    return theirs, ours


@pytest.mark.parametrize("frozen", [True, False])
def test_frozen_batch_normalization_trains_as_keras(frozen):
    """Frozen (trainable=False): Keras 3 normalises by the moving statistics in training too and leaves them
    (and gamma, beta) alone; the rest of the model trains to the same weights. Unfrozen: both update them."""
    keras = _keras()
    rng = np.random.default_rng(5)
    x = rng.normal(size=(64, 5)).astype(np.float32)
    y = rng.integers(0, 2, size=64)
    theirs, ours = _bn_pair(keras)
    before = [w.copy() for w in ours.layers[2].get_weights()]
    theirs.layers[2].trainable = not frozen
    ours.layers[2].trainable = not frozen
    theirs.compile(keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy")
    ours.compile(ember.optimizers.SGD(0.1), "sparse_categorical_crossentropy")
    ht = theirs.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    ho = ours.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    np.testing.assert_allclose(ho.history["loss"], ht.history["loss"], rtol=2e-5)
    for a, b in zip(ours.layers, theirs.layers):
        for wa, wb in zip(a.get_weights(), b.get_weights()):
            np.testing.assert_allclose(wa, wb, rtol=2e-5, atol=2e-6)
    after = ours.layers[2].get_weights()
    moved = max(np.abs(a - b).max() for a, b in zip(after, before))
    assert (moved == 0.0) if frozen else (moved > 1e-2)
    np.testing.assert_allclose(ours.predict(x), theirs.predict(x, verbose=0), rtol=2e-5, atol=2e-6)


# ---------------------------------------------------------------- weighted_metrics
def _weighted_pair(keras, lib_args, units=1, activation="sigmoid", loss="binary_crossentropy"):
    def build(lib):
        inp = lib.Input(shape=(4,))
        return lib.Model(inp, lib.layers.Dense(units, activation=activation)(inp))

    keras.utils.set_random_seed(2)
    theirs = build(keras)
    ours = build(ember)
    ours.set_weights(theirs.get_weights())
    theirs.compile(keras.optimizers.SGD(0.1), loss, **lib_args)
    ours.compile(ember.optimizers.SGD(0.1), loss, **lib_args)
    return theirs, ours


def _assert_same_logs(ours, theirs, rtol=2e-5):
    assert set(ours) == set(theirs), (sorted(ours), sorted(theirs))
    for key in theirs:
        np.testing.assert_allclose(ours[key], theirs[key], rtol=rtol, err_msg=key)


def test_weighted_metrics_with_sample_weight_equal_keras():
    """fit (training and validation logs), evaluate: plain metrics ignore the weights, weighted ones do, and
    a name given in both lists reports as weighted_<name>, as in Keras 3."""
    keras = _keras()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype(np.float32)
    y = (x[:, :1] > 0).astype(np.float32)
    w = rng.uniform(0.1, 3.0, size=64).astype(np.float32)
    theirs, ours = _weighted_pair(keras, dict(metrics=["accuracy"],
                                              weighted_metrics=["accuracy", "mae", "binary_crossentropy"]))
    args = dict(sample_weight=w, batch_size=16, epochs=2, shuffle=False, verbose=0,
                validation_data=(x[:20], y[:20], w[:20]))
    ht = theirs.fit(x, y, **args)
    ho = ours.fit(x, y, **args)
    _assert_same_logs(ho.history, ht.history)
    assert abs(ho.history["weighted_accuracy"][0] - ho.history["accuracy"][0]) > 0.01  # the weights did count
    et = theirs.evaluate(x, y, sample_weight=w, verbose=0, return_dict=True)
    eo = ours.evaluate(x, y, sample_weight=w, return_dict=True)
    _assert_same_logs(eo, et)
    assert ours.metrics_names == ["loss", "accuracy", "weighted_accuracy", "mae", "binary_crossentropy"]
    # without weights the weighted metrics are the plain ones
    plain = ours.evaluate(x, y, return_dict=True)
    assert plain["weighted_accuracy"] == plain["accuracy"]


def test_weighted_metrics_with_class_weight_equal_keras():
    keras = _keras()
    rng = np.random.default_rng(1)
    x = rng.normal(size=(48, 4)).astype(np.float32)
    y = rng.integers(0, 3, size=48)
    theirs, ours = _weighted_pair(keras, dict(metrics=["sparse_categorical_accuracy"],
                                              weighted_metrics=["sparse_categorical_accuracy"]),
                                  units=3, activation="softmax", loss="sparse_categorical_crossentropy")
    args = dict(class_weight={0: 0.2, 1: 1.0, 2: 4.0}, batch_size=12, epochs=2, shuffle=False, verbose=0)
    ht = theirs.fit(x, y, **args)
    ho = ours.fit(x, y, **args)
    _assert_same_logs(ho.history, ht.history)
    np.testing.assert_allclose(ours.get_weights()[0], theirs.get_weights()[0], rtol=2e-5, atol=2e-6)


def test_weighted_metrics_are_saved_and_checked(tmp_path):
    model = ember.Sequential([layers.Dense(2, activation="softmax", input_shape=(3,))])
    model.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"], weighted_metrics=["accuracy"])
    path = str(tmp_path / "m.ember")
    model.save(path)
    again = ember.load_model(path)
    assert again.metrics_names == ["loss", "accuracy", "weighted_accuracy"]
    assert [getattr(m, "weighted", False) for m in again.metrics] == [False, True]
    with pytest.raises(ValueError, match="weighted_metrics must be a list"):
        model.compile("sgd", "mse", weighted_metrics="accuracy")


# ---------------------------------------------------------------- add_loss
class MeanAbsLoss(layers.Layer):
    """Passes its input through and adds ``rate * mean |x|`` to the loss from inside ``call``."""

    def __init__(self, rate=0.05, **kwargs):
        super().__init__(**kwargs)
        self.rate = rate

    def call(self, x, training=False):
        self.add_loss(F.mean(F.abs(x)) * self.rate)
        return x

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "rate": self.rate}


def _keras_mean_abs_loss(keras):
    class KerasMeanAbsLoss(keras.layers.Layer):
        def call(self, x):
            self.add_loss(0.05 * keras.ops.mean(keras.ops.abs(x)))
            return x

    return KerasMeanAbsLoss


def test_add_loss_in_call_trains_and_evaluates_as_keras():
    keras = _keras()
    rng = np.random.default_rng(4)
    x = rng.normal(size=(48, 6)).astype(np.float32)
    y = rng.integers(0, 3, size=48)

    def build(lib, loss_layer):
        inp = lib.Input(shape=(6,))
        h = loss_layer()(lib.layers.Dense(5, activation="tanh")(inp))
        return lib.Model(inp, lib.layers.Dense(3, activation="softmax")(h))

    keras.utils.set_random_seed(0)
    theirs = build(keras, _keras_mean_abs_loss(keras))
    ours = build(ember, MeanAbsLoss)
    ours.set_weights(theirs.get_weights())
    theirs(x[:8])
    ours(x[:8])
    assert len(ours.losses) == len(theirs.losses) == 1
    assert ours.losses[0].item() == pytest.approx(float(_to_numpy(keras, theirs.losses[0])), rel=1e-6)
    theirs.compile(keras.optimizers.SGD(0.2), "sparse_categorical_crossentropy")
    ours.compile(ember.optimizers.SGD(0.2), "sparse_categorical_crossentropy")
    ht = theirs.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    ho = ours.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    np.testing.assert_allclose(ho.history["loss"], ht.history["loss"], rtol=2e-5)
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6)
    np.testing.assert_allclose(ours.evaluate(x, y, batch_size=16), theirs.evaluate(x, y, batch_size=16, verbose=0),
                               rtol=2e-5)
    # and the added loss mattered: the same model without it ends elsewhere
    plain = build(ember, lambda: MeanAbsLoss(rate=0.0))
    keras.utils.set_random_seed(0)
    plain.set_weights(build(keras, _keras_mean_abs_loss(keras)).get_weights())
    plain.compile(ember.optimizers.SGD(0.2), "sparse_categorical_crossentropy")
    plain.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    assert max(np.abs(a - b).max() for a, b in zip(plain.get_weights(), ours.get_weights())) > 1e-4


def _two_layer(seed=0, **dense):
    ember.set_seed(seed)
    inp = layers.Input(shape=(4,))
    hidden = layers.Dense(5, activation="tanh", **dense)(inp)
    return inp, hidden


def test_model_add_loss_of_a_symbolic_tensor_and_of_a_function(float64):
    """Keras 2's spellings: ``model.add_loss(symbolic)`` trains as a layer adding the same loss in its call;
    ``model.add_loss(lambda: l2 * sum(kernel^2))`` trains as ``kernel_regularizer=L2(l2)``."""
    rng = np.random.default_rng(2)
    x = rng.normal(size=(40, 4))
    y = rng.normal(size=(40, 1))

    def train(model):
        model.compile(ember.optimizers.SGD(0.1), "mse")
        history = model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
        return model.get_weights(), history.history["loss"]

    inp, hidden = _two_layer()
    symbolic = ember.Model(inp, layers.Dense(1)(hidden))
    symbolic.add_loss(layers.Lambda(lambda h: F.mean(F.abs(h)) * 0.05)(hidden))
    inp, hidden = _two_layer()
    in_call = ember.Model(inp, layers.Dense(1)(MeanAbsLoss(0.05)(hidden)))
    a, b = train(symbolic), train(in_call)
    for wa, wb in zip(a[0], b[0]):
        np.testing.assert_allclose(wa, wb, rtol=1e-12)
    np.testing.assert_allclose(a[1], b[1], rtol=1e-12)

    inp, hidden = _two_layer()
    dense = layers.Dense(1)
    by_function = ember.Model(inp, dense(hidden))
    by_function.add_loss(lambda: F.sum(dense.kernel * dense.kernel) * 0.3)
    inp, hidden = _two_layer()
    by_regularizer = ember.Model(inp, layers.Dense(1, kernel_regularizer=ember.regularizers.L2(0.3))(hidden))
    a, b = train(by_function), train(by_regularizer)
    for wa, wb in zip(a[0], b[0]):
        np.testing.assert_allclose(wa, wb, rtol=1e-12)
    np.testing.assert_allclose(a[1], b[1], rtol=1e-12)
    assert len(by_function.losses) == 1


def test_add_loss_gradient_matches_finite_differences(float64):
    inp, hidden = _two_layer(seed=3)
    model = ember.Model(inp, layers.Dense(1)(hidden))
    model.add_loss(layers.Lambda(lambda h: F.mean(h * h) * 0.7)(hidden))
    x = np.random.default_rng(0).normal(size=(6, 4))
    kernel = model.layers[1].kernel
    model(x)
    kernel.grad[...] = 0
    model.penalty().backward()
    analytic = np.array(kernel.grad, copy=True)

    def penalty():
        model(x)
        return model.penalty().item()

    np.testing.assert_allclose(analytic, numeric_gradient(penalty, kernel.data), rtol=1e-6, atol=1e-10)
    assert np.abs(analytic).max() > 1e-3


def test_add_loss_errors_and_outside_calls():
    layer = layers.Dense(2)
    with pytest.raises(ValueError, match="symbolic tensor works on the functional Model"):
        layer.add_loss(layers.Input(shape=(2,)))
    other = layers.Input(shape=(3,))
    inp, hidden = _two_layer()
    model = ember.Model(inp, layers.Dense(1)(hidden))
    with pytest.raises(ValueError, match="not computed from the model's inputs"):
        model.add_loss(layers.Dense(1)(other))
    model(np.ones((2, 4), np.float32))
    assert model.losses == []  # the failed add_loss left nothing behind
    model.add_loss(Tensor(np.array([1.0, 2.0], np.float32)))  # outside a call: its sum, until the next call
    assert [p.item() for p in model.losses] == [3.0]
    model(np.ones((2, 4), np.float32))
    assert model.losses == []
    with pytest.raises(TypeError, match="expected a Tensor"):
        layer.add_loss("big")


def _half_square_mean(h):
    return F.mean(h * h) * 0.5


def test_a_symbolic_added_loss_is_saved_with_the_model(tmp_path):
    inp, hidden = _two_layer()
    model = ember.Model(inp, layers.Dense(1)(hidden))
    model.add_loss(layers.Lambda(_half_square_mean)(hidden))
    path = str(tmp_path / "m.ember")
    model.save(path)
    again = ember.load_model(path, custom_objects={"_half_square_mean": _half_square_mean})
    x = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    model(x)
    again(x)
    assert len(again.losses) == 1 and again.losses[0].item() == pytest.approx(model.losses[0].item(), rel=1e-6)
    assert model.losses[0].item() > 0.01


def test_weighted_metrics_on_a_sequence_of_weighted_batches_equal_keras():
    keras = _keras()
    rng = np.random.default_rng(6)
    x = rng.normal(size=(64, 4)).astype(np.float32)
    y = (x[:, :1] > 0).astype(np.float32)
    w = rng.uniform(0.1, 3.0, size=64).astype(np.float32)

    def batches(base):
        class Batches(base):
            def __len__(self):
                return 4

            def __getitem__(self, i):
                part = slice(16 * i, 16 * i + 16)
                return x[part], y[part], w[part]

        return Batches()

    theirs, ours = _weighted_pair(keras, dict(metrics=["accuracy"], weighted_metrics=["accuracy"]))
    ht = theirs.fit(batches(keras.utils.PyDataset), epochs=2, shuffle=False, verbose=0)
    ho = ours.fit(batches(ember.utils.Sequence), epochs=2, shuffle=False, verbose=0)
    _assert_same_logs(ho.history, ht.history)
    _assert_same_logs(ours.evaluate(batches(ember.utils.Sequence), return_dict=True),
                      theirs.evaluate(batches(keras.utils.PyDataset), verbose=0, return_dict=True))


def test_a_sublayers_losses_are_its_own_as_in_keras():
    keras = _keras()
    x = np.random.default_rng(7).normal(size=(6, 4)).astype(np.float32)

    def build(lib, loss_layer):
        inp = lib.Input(shape=(4,))
        h = lib.layers.Dense(3, activity_regularizer=lib.regularizers.L2(0.1))(inp)
        return lib.Model(inp, lib.layers.Dense(2)(loss_layer()(h)))

    keras.utils.set_random_seed(0)
    theirs = build(keras, _keras_mean_abs_loss(keras))
    ours = build(ember, MeanAbsLoss)
    ours.set_weights(theirs.get_weights())
    theirs(x)
    ours(x)
    for i in range(1, 4):
        want = sorted(float(_to_numpy(keras, p)) for p in theirs.layers[i].losses)
        got = sorted(p.item() for p in ours.layers[i].losses)
        np.testing.assert_allclose(got, want, rtol=1e-5, err_msg=ours.layers[i].name)
    assert len(ours.losses) == len(theirs.losses) == 2
    assert ours.layers[3].losses == []
