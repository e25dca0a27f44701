"""``class_weight`` and ``sample_weight`` in ``fit`` and ``evaluate``: the same weights, History and
evaluate numbers as Keras 3 (torch backend) from the same starting weights."""

import numpy as np
import pytest
from keras_reference import keras_or_skip as _keras  # tests/ is on sys.path (conftest)

import ember
from ember import losses
from ember.optim.validation import Top1Accuracy, score


def _pair(keras, out_units=3, out_activation="softmax", seed=0):
    def build(lib):
        return lib.Sequential([lib.Input(shape=(6,)), lib.layers.Dense(8, activation="tanh"),
                               lib.layers.Dense(out_units, activation=out_activation)])

    keras.utils.set_random_seed(seed)
    theirs, ours = build(keras), build(ember)
    ours.set_weights(theirs.get_weights())
    return theirs, ours


def _data(n=80, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6)).astype(np.float32)
    y = np.where(x[:, 0] > 0.6, 2, np.where(x[:, 1] > 0, 1, 0))  # unbalanced classes
    return x, y


def _compare(ours, theirs, ho, ht, rtol=2e-5):
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=2e-6)
    assert sorted(ho.history) == sorted(ht.history)
    for key in ht.history:
        np.testing.assert_allclose(ho.history[key], ht.history[key], rtol=rtol, atol=1e-6, err_msg=key)


def test_per_sample_losses_average_to_the_batch_loss(rng):
    logits = rng.normal(size=(6, 4))
    labels = rng.integers(0, 4, 6)
    onehot = np.eye(4)[labels]
    probabilities = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    for loss, target, out in [(losses.SparseCategoricalCrossentropy(), labels, probabilities),
                              (losses.SparseCategoricalCrossentropy(from_logits=True), labels, logits),
                              (losses.CategoricalCrossentropy(), onehot, probabilities),
                              (losses.BinaryCrossentropy(from_logits=True), onehot, logits),
                              (losses.MeanSquaredError(), onehot, logits), (losses.MeanAbsoluteError(), onehot, logits),
                              (losses.Huber(), onehot, logits), (losses.KLDivergence(), onehot, probabilities),
                              (losses.Hinge(), onehot, logits)]:
        assert loss.per_sample(target, ember.Tensor(out)).shape == (6,)
        assert loss(target, out, sample_weight=np.ones(6)).item() == pytest.approx(loss(target, out).item(), 1e-12)
        w = rng.uniform(0, 2, 6)
        by_hand = (loss.per_sample(target, ember.Tensor(out)).numpy() * w).sum() / 6
        assert loss(target, out, sample_weight=w).item() == pytest.approx(by_hand, 1e-12)


def test_weighted_metrics_are_weighted_means_and_plain_metrics_ignore_weights():
    out = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    target, w = np.array([0, 0, 1, 1]), np.array([2.0, 1.0, 0.5, 0.25])
    assert score(Top1Accuracy(), out, target, w).result()[0] == 0.5  # Keras's metrics: unweighted
    weighted = Top1Accuracy()
    weighted.weighted = True
    assert score(weighted, out, target, w).result()[0] == pytest.approx((2.0 + 0.25) / 3.75)


def test_class_weight_matches_keras():
    keras = _keras()
    x, y = _data()
    theirs, ours = _pair(keras)
    class_weight = {0: 0.5, 1: 1.0, 2: 4.0}
    theirs.compile(keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy", metrics=["accuracy"])
    ours.compile(ember.optimizers.SGD(0.1), "sparse_categorical_crossentropy", metrics=["accuracy"])
    ht = theirs.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0, class_weight=class_weight)
    ho = ours.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0, class_weight=class_weight)
    _compare(ours, theirs, ho, ht)
    # and the weights changed the training: unweighted it ends elsewhere
    _, plain = _pair(keras)
    plain.compile(ember.optimizers.SGD(0.1), "sparse_categorical_crossentropy", metrics=["accuracy"])
    plain.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0)
    assert np.abs(plain.get_weights()[0] - ours.get_weights()[0]).max() > 1e-3


def test_sample_weight_with_one_hot_targets_and_validation_split_matches_keras():
    keras = _keras()
    x, y = _data(seed=1)
    onehot = np.eye(3, dtype=np.float32)[y]
    w = np.random.default_rng(2).uniform(0.0, 3.0, size=len(x)).astype(np.float32)
    theirs, ours = _pair(keras)
    theirs.compile(keras.optimizers.SGD(0.05, momentum=0.9), "categorical_crossentropy",
                   metrics=["categorical_accuracy"])
    ours.compile(ember.optimizers.SGD(0.05, momentum=0.9), "categorical_crossentropy", metrics=["categorical_accuracy"])
    kwargs = dict(batch_size=16, epochs=3, shuffle=False, verbose=0, sample_weight=w, validation_split=0.25)
    ht = theirs.fit(x, onehot, **kwargs)
    ho = ours.fit(x, onehot, **kwargs)
    _compare(ours, theirs, ho, ht, rtol=5e-5)


def test_evaluate_with_sample_weight_matches_keras():
    keras = _keras()
    x, y = _data(seed=3)
    w = np.random.default_rng(4).uniform(0.0, 2.0, size=len(x)).astype(np.float32)
    theirs, ours = _pair(keras)
    theirs.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"])
    ours.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"])
    et = theirs.evaluate(x, y, batch_size=16, verbose=0, sample_weight=w)
    eo = ours.evaluate(x, y, batch_size=16, sample_weight=w)
    np.testing.assert_allclose(eo, et, rtol=1e-5)
    assert abs(eo[0] - ours.evaluate(x, y, batch_size=16)[0]) > 1e-3  # the weights count


def test_regression_with_sample_weight_and_validation_weights_matches_keras():
    keras = _keras()
    x, _ = _data(seed=5)
    target = (x[:, :2] * [1.5, -0.5]).astype(np.float32)
    w = np.random.default_rng(6).uniform(0.5, 2.0, size=len(x)).astype(np.float32)
    xv, wv = x[:20] + 0.1, w[:20][::-1].copy()
    theirs, ours = _pair(keras, out_units=2, out_activation=None)
    theirs.compile(keras.optimizers.SGD(0.05), "mse", metrics=["mae"])
    ours.compile(ember.optimizers.SGD(0.05), "mse", metrics=["mae"])
    kwargs = dict(batch_size=10, epochs=2, shuffle=False, verbose=0, sample_weight=w,
                  validation_data=(xv, target[:20], wv))
    _compare(ours, theirs, ours.fit(x, target, **kwargs), theirs.fit(x, target, **kwargs))


def test_weight_errors_name_what_was_expected():
    x, y = _data(20)
    model = ember.Sequential([ember.layers.Dense(3, activation="softmax", input_shape=(6,))])
    model.compile("sgd", "sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="class_weight or sample_weight, not both"):
        model.fit(x, y, verbose=0, class_weight={0: 1.0}, sample_weight=np.ones(20))
    with pytest.raises(ValueError, match=r"one weight per sample, shape \(20,\)"):
        model.fit(x, y, verbose=0, sample_weight=np.ones(19))
    with pytest.raises(ValueError, match="finite and >= 0"):
        model.evaluate(x, y, sample_weight=-np.ones(20))
    with pytest.raises(TypeError, match="class_weight must be a dict"):
        model.fit(x, y, verbose=0, class_weight=[1.0, 2.0])
    model.compile("sgd", lambda t, p: ((p - t) * (p - t)).sum())  # a function giving one scalar per batch
    with pytest.raises(ValueError, match=r"does not fit per-sample losses of shape \(\)"):
        model.fit(x, np.eye(3)[y], verbose=0, sample_weight=np.ones(20))


def test_function_losses_and_metrics_match_keras():
    """Plain functions in compile (Keras's custom losses and metrics), with sample weights."""
    keras = _keras()
    x, y = _data(seed=7)
    target = np.eye(3, dtype=np.float32)[y]
    w = np.random.default_rng(8).uniform(0.5, 2.0, size=len(x)).astype(np.float32)

    def make(lib):
        def squared_error(y_true, y_pred):
            return lib.ops.mean(lib.ops.square(y_pred - y_true), axis=-1) if lib is keras else \
                ember.backend.mean(ember.backend.square(y_pred - y_true), axis=-1)

        def hits(y_true, y_pred):
            return lib.ops.cast(lib.ops.equal(lib.ops.argmax(y_true, -1), lib.ops.argmax(y_pred, -1)), "float32") \
                if lib is keras else np.equal(y_true.argmax(-1), y_pred.argmax(-1))
        return squared_error, hits

    theirs, ours = _pair(keras)
    loss_t, metric_t = make(keras)
    loss_o, metric_o = make(ember)
    theirs.compile(keras.optimizers.SGD(0.2), loss_t, metrics=[metric_t])
    ours.compile(ember.optimizers.SGD(0.2), loss_o, metrics=[metric_o])
    kwargs = dict(batch_size=16, epochs=2, shuffle=False, verbose=0, sample_weight=w)
    _compare(ours, theirs, ours.fit(x, target, **kwargs), theirs.fit(x, target, **kwargs))
