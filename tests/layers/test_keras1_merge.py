"""Keras 1's and BigDL's ``Merge``/``merge``: every mode against NumPy, gradients against finite differences,
the shapes BigDL gives (dot (N, 1), cos (N, 1, 1)), branches in a Sequential (Keras 1's
``Merge([left, right])``) trained like the functional model with the same weights, and saving."""
import numpy as np
import pytest
from layer_testing import run_layer_test

import ember
from ember import layers

RNG = np.random.default_rng(0)
A, B, C = (RNG.normal(size=(4, 3)) for _ in range(3))


@pytest.mark.parametrize("mode, inputs, want", [
    ("sum", [A, B, C], A + B + C),
    ("mul", [A, B, C], A * B * C),
    ("ave", [A, B, C], (A + B + C) / 3),
    ("max", [A, B, C], np.maximum(np.maximum(A, B), C)),
    ("concat", [A, B], np.concatenate([A, B], axis=-1)),
    ("dot", [A, B], (A * B).sum(1, keepdims=True)),
    ("cos", [A, B], ((A * B).sum(1) / np.sqrt((A * A).sum(1) * (B * B).sum(1)))[:, None, None]),
])
def test_each_mode_against_numpy_with_gradients(mode, inputs, want):
    layer = run_layer_test(lambda: layers.Merge(mode=mode), list(inputs), expected_shape=want.shape)
    np.testing.assert_allclose(layer([x for x in inputs]).numpy(), want, rtol=1e-6)
    np.testing.assert_allclose(layers.merge(list(inputs), mode=mode).numpy(), want, rtol=1e-6)


def test_concat_axis_and_the_functional_merge():
    x = RNG.normal(size=(2, 3, 4))
    y = RNG.normal(size=(2, 5, 4))
    out = layers.Merge(mode="concat", concat_axis=1)([x, y]).numpy()
    np.testing.assert_allclose(out, np.concatenate([x, y], axis=1), rtol=1e-6)
    a, b = layers.Input(shape=(3,)), layers.Input(shape=(3,))
    model = ember.Model([a, b], layers.merge([layers.Dense(2)(a), layers.Dense(2)(b)], mode="cos"))
    assert model.outputs[0].shape == (None, 1, 1)
    assert model([A, B]).shape == (4, 1, 1)


def test_bad_modes_and_shapes_are_refused():
    with pytest.raises(ValueError, match="mode must be one of"):
        layers.Merge(mode="sub")
    with pytest.raises(ValueError, match="mode must be one of"):
        layers.Merge(mode=lambda xs: xs[0])
    with pytest.raises(ValueError, match="two inputs of shape"):
        layers.Merge(mode="dot")([A, B, C])
    with pytest.raises(ValueError, match="two inputs of shape"):
        layers.Merge(mode="cos")([RNG.normal(size=(2, 3, 4))] * 2)
    with pytest.raises(ValueError, match="equal shape"):
        layers.Merge(mode="sum")([A, RNG.normal(size=(4, 5))])
    with pytest.raises(ValueError, match="at least 2 layers"):
        layers.Merge([layers.Dense(2)], mode="concat")


def _branches():
    ember.set_seed(0)
    left = ember.Sequential([layers.Dense(4, activation="relu", input_shape=(3,))])
    right = ember.Sequential([layers.Dense(4, input_shape=(5,))])
    return left, right


def test_keras1_sequential_of_merged_branches_trains_like_the_functional_model(float64, tmp_path):
    """``Sequential([Merge([left, right], mode="concat"), Dense])`` on ``[x1, x2]`` gives the same weights
    as ``Model([a, b], Dense(concatenate([left(a), right(b)])))`` with the same start."""
    x1, x2 = RNG.normal(size=(40, 3)), RNG.normal(size=(40, 5))
    y = (x1[:, 0] + x2[:, 0] > 0).astype(np.int64)
    left, right = _branches()
    head = layers.Dense(2, activation="softmax")
    merged = ember.Sequential([layers.Merge([left, right], mode="concat"), head])
    assert merged.count_params() == 16 + 24 + 18
    start = [w.copy() for w in merged.get_weights()]
    merged.compile(ember.optimizers.SGD(0.2), "sparse_categorical_crossentropy", ["accuracy"])
    merged.fit([x1, x2], y, nb_epoch=3, batch_size=8, shuffle=False, verbose=0)

    l2, r2 = _branches()
    a, b = layers.Input(shape=(3,)), layers.Input(shape=(5,))
    functional = ember.Model([a, b], layers.Dense(2, activation="softmax")(layers.Concatenate()([l2(a), r2(b)])))
    functional.set_weights(start)
    functional.compile(ember.optimizers.SGD(0.2), "sparse_categorical_crossentropy", ["accuracy"])
    functional.fit([x1, x2], y, epochs=3, batch_size=8, shuffle=False, verbose=0)
    for p, q in zip(merged.get_weights(), functional.get_weights()):
        np.testing.assert_allclose(p, q, rtol=1e-12)
    assert max(np.abs(p - q).max() for p, q in zip(merged.get_weights(), start)) > 1e-3

    path = str(tmp_path / "merged.ember")
    merged.save(path)
    again = ember.load_model(path)
    np.testing.assert_allclose(again.predict([x1, x2]), merged.predict([x1, x2]), rtol=1e-12)
