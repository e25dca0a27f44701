"""``compile`` as Keras 3 takes it for a model with several outputs (issue 18): ``loss`` as a dict keyed by output
name, ``loss_weights`` (a list, a dict keyed by output name, or a number for one output), targets as a dict keyed by
output name, and a flat metrics list refused with Keras 3's error. Compared with Keras 3 (torch backend): same
initial weights and batches, 3 epochs in float32; History and evaluate as Keras reports them."""
import numpy as np
import pytest
from keras_reference import keras_or_skip as _keras  # tests/ is on sys.path (conftest)

import ember


def _data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(48, 4)).astype("float32")
    return x, rng.integers(0, 3, 48), rng.normal(size=(48, 1)).astype("float32")


def _build(lib):
    inp = lib.Input(shape=(4,))
    h = lib.layers.Dense(5, activation="tanh")(inp)
    return lib.Model(inp, [lib.layers.Dense(3, activation="softmax", name="cls")(h),
                           lib.layers.Dense(1, name="reg")(h)])


def _pair(keras):
    keras.utils.set_random_seed(0)
    theirs, ours = _build(keras), _build(ember)
    ours.set_weights(theirs.get_weights())
    return ours, theirs


def _difference(ours, theirs):
    return max(float(np.abs(a - b).max()) for a, b in zip(ours.get_weights(), theirs.get_weights()))


CASES = {
    "loss dict + loss_weights dict": dict(loss={"reg": "mse", "cls": "sparse_categorical_crossentropy"},
                                          loss_weights={"cls": 0.3, "reg": 2.0}, metrics={"cls": ["accuracy"]}),
    "loss list + loss_weights list": dict(loss=["sparse_categorical_crossentropy", "mae"], loss_weights=[2.0, 0.25]),
    "loss dict": dict(loss={"cls": "sparse_categorical_crossentropy", "reg": "huber"}),
}
# Measured: weights at most 6.7e-8 from Keras after 3 epochs; History and evaluate within 2e-7 (float32 sums).
# Without the loss_weights the weights end 0.12 and 0.14 away.
TOL = 1e-5


@pytest.mark.parametrize("case", sorted(CASES))
def test_trains_and_reports_as_keras(case):
    keras = _keras()
    x, y1, y2 = _data()
    kwargs = CASES[case]
    ours, theirs = _pair(keras)
    theirs.compile(keras.optimizers.SGD(0.1), **kwargs)
    ours.compile(ember.optimizers.SGD(0.1), **kwargs)
    fit = dict(batch_size=16, epochs=3, shuffle=False, verbose=0, validation_data=(x, {"cls": y1, "reg": y2}))
    want = theirs.fit(x, {"cls": y1, "reg": y2}, **fit).history
    got = ours.fit(x, {"cls": y1, "reg": y2}, **fit).history
    assert _difference(ours, theirs) < TOL
    assert sorted(got) == sorted(want)
    for key in want:
        np.testing.assert_allclose(got[key], want[key], rtol=1e-5, atol=1e-6, err_msg=key)
    want = theirs.evaluate(x, [y1, y2], verbose=0, return_dict=True)
    got = ours.evaluate(x, {"cls": y1, "reg": y2}, verbose=0, return_dict=True)
    assert sorted(got) == sorted(want)
    for key in want:
        assert got[key] == pytest.approx(want[key], rel=1e-5, abs=1e-6), key
    if "loss_weights" in kwargs:  # the control: the same losses unweighted end far from Keras's weights
        plain, _ = _pair(keras)
        plain.compile(ember.optimizers.SGD(0.1), loss=kwargs["loss"])
        plain.fit(x, [y1, y2], batch_size=16, epochs=3, shuffle=False, verbose=0)
        assert _difference(plain, theirs) > 100 * TOL


def test_one_output_takes_a_number_or_a_dict_as_keras():
    keras = _keras()
    x, _, y2 = _data()
    for loss, weights in (("mse", 2.5), ({"out": "mse"}, {"out": 2.5}), ("mse", [2.5])):
        keras.utils.set_random_seed(1)
        models = []
        for lib in (keras, ember):
            inp = lib.Input(shape=(4,))
            models.append(lib.Model(inp, lib.layers.Dense(1, name="out")(inp)))
        theirs, ours = models
        ours.set_weights(theirs.get_weights())
        theirs.compile(keras.optimizers.SGD(0.05), loss=loss, loss_weights=weights)
        ours.compile(ember.optimizers.SGD(0.05), loss=loss, loss_weights=weights)
        assert ours.evaluate(x, y2) == pytest.approx(theirs.evaluate(x, y2, verbose=0), rel=1e-6)
        for model in (theirs, ours):
            model.fit(x, y2, batch_size=16, epochs=3, shuffle=False, verbose=0)
        assert _difference(ours, theirs) < TOL


def test_flat_metrics_on_several_outputs_are_refused_with_keras_words():
    keras = _keras()
    losses = ["sparse_categorical_crossentropy", "mse"]
    x, y1, y2 = _data()
    theirs = _build(keras)
    theirs.compile("sgd", losses, metrics=["accuracy"])
    with pytest.raises(ValueError, match="Invalid `metrics`") as keras_error:
        theirs.evaluate(x, [y1, y2], verbose=0)
    ours = _build(ember)
    with pytest.raises(ValueError, match="Invalid `metrics`") as error:
        ours.compile("sgd", losses, metrics=["accuracy"])
    ours_words = str(error.value).split(" (one entry")[0]
    assert ours_words in str(keras_error.value)  # Keras's sentence, from "Invalid" to "Received: metrics=[...]"
    with pytest.raises(ValueError, match="Invalid `weighted_metrics`"):
        ours.compile("sgd", losses, weighted_metrics=["mae"])
    ours.compile("sgd", losses, metrics=[])  # an empty list is fine, as in Keras
    assert ours.metrics_names == ["loss", "cls_loss", "reg_loss"]


def test_bad_loss_structures_are_refused_clearly():
    model = _build(ember)
    with pytest.raises(ValueError, match=r"Expected keys \['cls', 'reg'\] in loss dict, but found loss.keys\(\)="
                                         r"\['cls'\]"):
        model.compile("sgd", {"cls": "sparse_categorical_crossentropy"})
    with pytest.raises(ValueError, match="`loss_weights` must match the number of losses, got 2 losses and 1"):
        model.compile("sgd", ["sparse_categorical_crossentropy", "mse"], loss_weights=[0.5])
    with pytest.raises(ValueError, match="one weight per output name"):
        model.compile("sgd", ["sparse_categorical_crossentropy", "mse"], loss_weights={"reg": 2.0})
    with pytest.raises(ValueError, match="for a model with one output, a number"):
        model.compile("sgd", ["sparse_categorical_crossentropy", "mse"], loss_weights=2.0)
    model.compile("sgd", ["sparse_categorical_crossentropy", "mse"])
    x, y1, y2 = _data()
    with pytest.raises(ValueError, match=r"one entry per output name \['cls', 'reg'\], got keys \['cls'\]"):
        model.fit(x, {"cls": y1}, verbose=0)


def test_saved_model_keeps_the_loss_weights(tmp_path):
    x, y1, y2 = _data()
    model = _build(ember)
    model.compile(ember.optimizers.SGD(0.1, gradient_accumulation_steps=2, loss_scale_factor=8.0),
                  {"cls": "sparse_categorical_crossentropy", "reg": "mse"}, loss_weights=[0.5, 4.0],
                  metrics={"cls": "accuracy"})
    path = str(tmp_path / "m.ember")
    model.save(path)
    again = ember.load_model(path)
    assert [c.weight for c in again.loss] == [0.5, 4.0] and again.metrics_names == model.metrics_names
    assert again.evaluate(x, [y1, y2]) == pytest.approx(model.evaluate(x, [y1, y2]), rel=1e-12)
    o = again.optimizer.options
    assert (o.gradient_accumulation_steps, o.loss_scale_factor) == (2, 8.0)


def test_spark_trainers_take_the_weighted_losses():
    """The per-partition trainer (``gradient_sum``) gets the compiled losses as they travel to the executors
    (pickled): the gradient of sum(weight * output loss) over the samples; unweighted it would differ."""
    import pickle

    from ember.optim.loop import compute_loss
    from ember.optim.spark.trainer import gradient_sum

    x, y1, y2 = _data()
    model = _build(ember)
    model.compile(ember.optimizers.SGD(0.1), {"cls": "sparse_categorical_crossentropy", "reg": "mse"},
                  loss_weights={"cls": 0.25, "reg": 3.0})
    model(x[:2])
    criterion = pickle.loads(pickle.dumps(model.loss))
    samples = [(x[i], [y1[i], y2[i]]) for i in range(32)]
    flat = model._flat_parameters()
    grads = {}
    for key, loss in (("trainer", criterion), ("unweighted", [c.loss for c in criterion])):
        flat.zero_grad()
        gradient_sum(model, loss, samples, [32], 0)
        grads[key] = next(iter(flat.grad.values())).copy() / 32  # the trainer's gradient is of the summed loss
    flat.zero_grad()
    compute_loss(model.loss, [y1[:32], y2[:32]], model(x[:32], training=True)).backward()
    local = next(iter(flat.grad.values()))
    np.testing.assert_allclose(grads["trainer"], local, rtol=1e-5, atol=1e-7)
    assert np.abs(grads["unweighted"] - local).max() > 1e-2
