"""Metrics on every output of a multi-output functional model, as Keras 3 takes and names them (issue 18):
``compile(metrics=...)`` as a list with one entry per output (a metric, a list of them, or None) or a dict keyed
by output name; History and ``evaluate(return_dict=True)`` carry ``<output>_<metric>``, the per-output losses
``<output>_loss`` and the total ``loss`` (the sum over outputs), in fit, its validation and evaluate, compared
with Keras 3 (torch backend) on the same weights and batches."""
import numpy as np
import pytest
from keras_reference import keras_or_skip as _keras  # tests/ is on sys.path (conftest)

import ember
from ember.optim.stream import Sequence

LOSSES = ["sparse_categorical_crossentropy", "binary_crossentropy"]


def _data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 5)).astype("float32")
    y1 = rng.integers(0, 3, 64)
    y2 = (rng.random(64) > 0.5).astype("float32")
    return x, [y1, y2], rng.random(64).astype("float32")


def _build(lib):
    inp = lib.Input(shape=(5,))
    h = lib.layers.Dense(8, activation="tanh")(inp)
    o1 = lib.layers.Dense(3, activation="softmax", name="out1")(h)
    o2 = lib.layers.Dense(1, activation="sigmoid", name="out2")(h)
    return lib.Model(inp, [o1, o2])


def _pair(keras, metrics, weighted_metrics=None):
    keras.utils.set_random_seed(0)
    theirs, ours = _build(keras), _build(ember)
    ours.set_weights(theirs.get_weights())
    theirs.compile(keras.optimizers.SGD(0.5), LOSSES, metrics=metrics, weighted_metrics=weighted_metrics)
    ours.compile(ember.optimizers.SGD(0.5), LOSSES, metrics=metrics, weighted_metrics=weighted_metrics)
    return ours, theirs


STRUCTURES = {
    "list of lists": [["accuracy"], ["accuracy", "mse"]],
    "dict": {"out1": "accuracy", "out2": ["accuracy", "mae"]},
    "None for an output": [None, ["binary_accuracy", "mse"]],
    "dict, one output": {"out2": "binary_accuracy"},
}
# Measured: history (2 epochs, with validation) and evaluate (with sample weights) at most 9e-8 from Keras.
TOL = 1e-5


@pytest.mark.parametrize("structure", sorted(STRUCTURES))
def test_fit_validation_and_evaluate_report_every_output_as_keras(structure):
    keras = _keras()
    x, y, w = _data()
    ours, theirs = _pair(keras, STRUCTURES[structure])
    fit = {"batch_size": 16, "epochs": 2, "verbose": 0, "shuffle": False, "validation_data": (x, y)}
    want = theirs.fit(x, y, **fit).history
    got = ours.fit(x, y, **fit).history
    assert sorted(got) == sorted(want)
    assert "out1_loss" in got and "val_out2_loss" in got and any(k.startswith("out2_") and k != "out2_loss"
                                                                  for k in got)
    for key in want:
        np.testing.assert_allclose(got[key], want[key], rtol=TOL, atol=TOL, err_msg=key)
    # evaluate: a dict with Keras's names, and a list in Keras's order (loss, per-output losses, metrics)
    want = theirs.evaluate(x, y, sample_weight=w, verbose=0, return_dict=True)
    got = ours.evaluate(x, y, sample_weight=w, verbose=0, return_dict=True)
    assert sorted(got) == sorted(want)
    for key in want:
        assert got[key] == pytest.approx(want[key], rel=TOL, abs=TOL), key
    np.testing.assert_allclose(ours.evaluate(x, y, verbose=0), theirs.evaluate(x, y, verbose=0), rtol=TOL, atol=TOL)
    assert ours.metrics_names[:3] == ["loss", "out1_loss", "out2_loss"]


def test_weighted_metrics_per_output_as_keras():
    keras = _keras()
    x, y, w = _data()
    ours, theirs = _pair(keras, [["accuracy"], ["accuracy"]], weighted_metrics={"out2": ["accuracy", "mse"]})
    want = theirs.fit(x, y, sample_weight=w, batch_size=16, epochs=1, verbose=0, shuffle=False).history
    got = ours.fit(x, y, sample_weight=w, batch_size=16, epochs=1, verbose=0, shuffle=False).history
    assert sorted(got) == sorted(want) and {"out2_weighted_accuracy", "out2_mse"} <= set(got)
    for key in want:
        np.testing.assert_allclose(got[key], want[key], rtol=TOL, atol=TOL, err_msg=key)


def test_generators_score_every_output():
    """A Sequence of batches (the stream engine) gives what arrays give."""
    x, y, _ = _data()
    model = _build(ember)
    model.compile(ember.optimizers.SGD(0.1), LOSSES, metrics={"out2": ["accuracy", "mse"]})

    class Batches(Sequence):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            return x[i * 16:(i + 1) * 16], [y[0][i * 16:(i + 1) * 16], y[1][i * 16:(i + 1) * 16]]

    from_arrays = model.evaluate(x, y, batch_size=16, return_dict=True)
    from_batches = model.evaluate(Batches(), return_dict=True)
    assert sorted(from_arrays) == ["loss", "out1_loss", "out2_accuracy", "out2_loss", "out2_mse"]
    for key in from_arrays:
        assert from_batches[key] == pytest.approx(from_arrays[key], rel=1e-6), key
    history = model.fit(Batches(), epochs=1, verbose=0, validation_data=Batches()).history
    assert {"out2_mse", "val_out2_mse", "out1_loss", "val_out1_loss"} <= set(history)


def test_spark_trainers_score_the_output_of_each_metric():
    """The per-partition trainer's training metrics (``gradient_sum``) pick each metric's output too."""
    from ember.layers import losses
    from ember.optim.spark.trainer import gradient_sum

    x, y, _ = _data()
    model = _build(ember)
    model.compile(ember.optimizers.SGD(0.1), LOSSES, metrics=[["accuracy"], ["mse"]])
    samples = [(x[i], [y[0][i], y[1][i]]) for i in range(32)]
    _, used, scored = gradient_sum(model, [losses.get(n) for n in LOSSES], samples, [32], 0, model.metrics)
    outputs = model(x[:32], training=True)
    assert used == 32 and [r.name for r in scored] == ["out1_loss", "out2_loss", "out1_accuracy", "out2_mse"]
    mse = float(np.mean((outputs[1].numpy().reshape(-1) - y[1][:32]) ** 2))
    accuracy = float(np.mean(outputs[0].numpy().argmax(1) == y[0][:32]))
    assert scored[3].result()[0] == pytest.approx(mse, rel=1e-6)
    assert scored[2].result()[0] == pytest.approx(accuracy)


def test_saved_model_keeps_the_per_output_metrics(tmp_path):
    model = _build(ember)
    model.compile("adam", LOSSES, metrics={"out2": ["accuracy", "mae"]}, weighted_metrics=[None, ["accuracy"]])
    path = str(tmp_path / "m.ember")
    model.save(path)
    again = ember.load_model(path)
    assert again.metrics_names == model.metrics_names == [
        "loss", "out1_loss", "out2_loss", "out2_accuracy", "out2_mae", "out2_weighted_accuracy"]


def test_bad_structures_are_refused_clearly():
    model = _build(ember)
    with pytest.raises(ValueError, match=r"output\(s\) \['out3'\] but the model's outputs are \['out1', 'out2'\]"):
        model.compile("sgd", LOSSES, metrics={"out3": "accuracy"})
    with pytest.raises(ValueError, match="one entry .* per output: the model has 2"):
        model.compile("sgd", LOSSES, metrics=[["accuracy"], ["accuracy"], None])
    with pytest.raises(ValueError, match="metrics must be a list"):
        model.compile("sgd", LOSSES, metrics="accuracy")
