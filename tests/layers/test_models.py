"""Containers: Sequential and functional Model, flat parameters, summary, save/load, bad input."""
import io
import zipfile

import numpy as np
import pytest

import ember
from ember import layers as L
from ember.engine import Tensor


def lenet(first_padding="same", input_shape=(28, 28, 1)):
    return ember.Sequential([
        L.Conv2D(6, 5, padding=first_padding, activation="relu", input_shape=input_shape),
        L.MaxPooling2D(2),
        L.Conv2D(16, 5, activation="relu"),
        L.MaxPooling2D(2),
        L.Flatten(),
        L.Dense(120, activation="relu"),
        L.Dense(84, activation="relu"),
        L.Dense(10),
    ], name="lenet5")


def test_lenet_summary_counts_match_keras():
    model = lenet()
    out = io.StringIO()
    model.summary(print_fn=lambda s: out.write(s))
    text = out.getvalue()
    assert model.count_params() == 61706  # Keras' count for the same architecture
    assert "Total params: 61,706" in text and "Non-trainable params: 0" in text
    assert "(None, 14, 14, 6)" in text and "(None, 400)" in text


def test_batchnorm_counts_non_trainable():
    model = ember.Sequential([L.Dense(4, input_shape=(3,)), L.BatchNormalization()])
    out = io.StringIO()
    model.summary(print_fn=out.write)
    assert "Total params: 32" in out.getvalue() and "Non-trainable params: 8" in out.getvalue()


def test_flat_buffers_are_shared_views():
    model = lenet()
    flat, grads = model.parameters_flat(), model.gradients_flat()
    assert flat.shape == (61706,) and flat.dtype == np.float32
    for w in model.trainable_weights:
        assert w.data.base is flat and w.grad.base is grads
    x = np.random.default_rng(0).random((3, 28, 28, 1), dtype=np.float32)
    loss = ember.losses.SparseCategoricalCrossentropy(from_logits=True)(np.array([1, 2, 3]), model(x))
    model.zero_grad()
    loss.backward()
    np.testing.assert_array_equal(grads, np.concatenate([w.grad.ravel() for w in model.trainable_weights]))
    assert np.abs(grads).sum() > 0
    before = model(x).numpy()
    flat -= 0.1 * grads  # one vectorised SGD step reaches every layer
    assert not np.array_equal(model(x).numpy(), before)
    model.zero_grad()
    assert not grads.any()


def test_functional_multi_io_shared_and_nested():
    a_in, b_in = ember.Input(shape=(5,), name="a"), ember.Input(shape=(5,), name="b")
    shared = L.Dense(4, activation="tanh", name="shared")
    ha, hb = shared(a_in), shared(b_in)
    inner_in = ember.Input(shape=(4,))
    inner = ember.Model(inner_in, L.Dense(2, name="inner_dense")(inner_in), name="inner")
    merged = L.Concatenate(name="cat")([L.Add(name="add")([ha, hb]), L.Multiply(name="mul")([ha, hb])])
    out1 = L.Dense(3, activation="softmax", name="head1")(merged)
    out2 = inner(hb)
    model = ember.Model([a_in, b_in], [out1, out2], name="multi")
    assert len(model.trainable_weights) == 2 + 2 + 2  # shared counted once
    rng = np.random.default_rng(1)
    xa, xb = rng.standard_normal((4, 5)), rng.standard_normal((4, 5))
    y1, y2 = model([xa, xb])
    k, b = shared.get_weights()
    ta, tb = np.tanh(xa @ k + b), np.tanh(xb @ k + b)
    feats = np.concatenate([ta + tb, ta * tb], axis=1)
    k1, b1 = model._sublayers["head1"].get_weights()
    logits = feats @ k1 + b1
    np.testing.assert_allclose(y1.numpy(), np.exp(logits) / np.exp(logits).sum(1, keepdims=True), rtol=1e-5)
    ki, bi = inner.get_weights()
    np.testing.assert_allclose(y2.numpy(), tb @ ki + bi, rtol=1e-5, atol=1e-6)
    (y1.sum() + y2.sum()).backward()
    assert np.abs(shared.kernel.grad).sum() > 0


def test_save_load_and_weights_round_trip_exactly(tmp_path):
    rng = np.random.default_rng(2)
    inp = ember.Input(shape=(6, 6, 2))
    x = L.Conv2D(4, 3, padding="same")(inp)
    x = L.BatchNormalization()(x)
    x = L.Activation("relu")(x)
    y = L.GlobalAveragePooling2D()(x)
    seq_in = ember.Input(shape=(3, 4))
    z = L.LSTM(5)(seq_in)
    out = L.Dense(2)(L.Concatenate()([y, z]))
    model = ember.Model([inp, seq_in], out)
    data = [rng.standard_normal((3, 6, 6, 2)), rng.standard_normal((3, 3, 4))]
    model(data, training=True)  # moves BN statistics away from their initial values
    model.eval()
    expected = model(data).numpy()
    path = tmp_path / "m.ember"
    model.save(path)
    loaded = ember.load_model(path)
    loaded.eval()
    np.testing.assert_array_equal(loaded(data).numpy(), expected)
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)
    clone = ember.Model.from_config(model.get_config())
    clone.set_weights(model.get_weights())
    clone.eval()
    np.testing.assert_array_equal(clone(data).numpy(), expected)
    with zipfile.ZipFile(path) as zf:  # the documented, pickle-free layout
        assert sorted(zf.namelist()) == ["model.json", "weights.npz"]


def test_sequential_save_load_lazy_build(tmp_path):
    model = ember.Sequential([L.Dense(3, activation="relu"), L.Dropout(0.5), L.Dense(2)])
    x = np.random.default_rng(0).standard_normal((2, 4)).astype(np.float32)
    model.eval()
    y = model(x).numpy()
    model.save(tmp_path / "s.ember")
    loaded = ember.load_model(tmp_path / "s.ember")
    loaded.eval()
    np.testing.assert_array_equal(loaded(x).numpy(), y)


def test_lambda_save_needs_named_function(tmp_path):
    def double(t):
        return t * 2

    model = ember.Sequential([L.Lambda(double, input_shape=(3,)), L.Dense(1)])
    model.save(tmp_path / "l.ember")
    with pytest.raises(ValueError, match="custom_objects"):
        ember.load_model(tmp_path / "l.ember")
    loaded = ember.load_model(tmp_path / "l.ember", custom_objects={"double": double})
    x = np.ones((1, 3), np.float32)
    np.testing.assert_array_equal(loaded(x).numpy(), model(x).numpy())
    anon = ember.Sequential([L.Lambda(lambda t: t, input_shape=(3,))])
    with pytest.raises(ValueError, match="anonymous"):
        anon.save(tmp_path / "a.ember")
    assert not (tmp_path / "a.ember").exists()


def test_load_rejects_non_model_files(tmp_path):
    bad = tmp_path / "bad.ember"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="is not a zip archive; expected an ember model file"):
        ember.load_model(bad)
    with zipfile.ZipFile(tmp_path / "evil.ember", "w") as zf:
        zf.writestr("model.json", '{"format": "ember-model", "format_version": 1, "model": '
                                  '{"class_name": "os.system", "config": {}}, "weights": []}')
        zf.writestr("weights.npz", b"")
    with pytest.raises(ValueError):
        ember.load_model(tmp_path / "evil.ember")


def test_train_eval_flags_reach_layers():
    model = ember.Sequential([L.Dropout(0.9, input_shape=(100,))])
    x = np.ones((2, 100), np.float32)
    assert (model(x).numpy() == 0).any()  # default: training mode (BigDL/torch convention)
    model.eval()
    np.testing.assert_array_equal(model(x).numpy(), x)
    model.train()
    assert (model(x).numpy() == 0).any()
    np.testing.assert_array_equal(model(x, training=False).numpy(), x)


def test_reset_parameters_keeps_flat_views():
    model = lenet()
    flat = model.parameters_flat().copy()
    model.reset_parameters()
    assert not np.array_equal(flat, model.parameters_flat())
    assert model.trainable_weights[0].data.base is model.parameters_flat()


# ---------- bad input ----------
def test_wrong_rank_names_the_layer():
    model = lenet()
    with pytest.raises(ValueError, match=r"lenet5.*shape \(None, 28, 28, 1\)"):
        model(np.zeros((2, 28, 28), np.float32))
    with pytest.raises(ValueError, match="conv2d.*rank 4"):
        L.Conv2D(2, 3)(np.zeros((2, 5, 5), np.float32))


def test_wrong_feature_size_names_the_layer():
    dense = L.Dense(2, name="head")
    dense(np.zeros((1, 3)))
    with pytest.raises(ValueError, match="'head'.*size 3.*\\(1, 4\\)"):
        dense(np.zeros((1, 4)))


def test_merge_shape_mismatch():
    with pytest.raises(ValueError, match="add.*equal shape"):
        L.Add(name="add_x")([ember.Input(shape=(3,)), ember.Input(shape=(4,))])
    with pytest.raises(ValueError, match="Concatenate"):
        L.Concatenate(axis=1)([np.zeros((2, 3, 1)), np.zeros((2, 3, 2))])


def test_non_numeric_and_nan_input():
    with pytest.raises(TypeError, match="numeric"):
        L.Dense(2)(np.array([["a", "b"]]))
    ember.set_check_numerics(True)
    with pytest.raises(ValueError, match="NaN or infinite"):
        L.Dense(2, name="d")(np.array([[1.0, np.nan]]))


def test_embedding_and_label_range_errors():
    with pytest.raises(ValueError, match=r"ids in \[0, 4\)"):
        L.Embedding(4, 2)(np.array([[1, 4]]))
    with pytest.raises(ValueError, match="0-based"):
        ember.losses.SparseCategoricalCrossentropy(from_logits=True)(np.array([1, 3]), Tensor(np.zeros((2, 3))))


def test_disconnected_graph_and_duplicate_names():
    a, b = ember.Input(shape=(2,)), ember.Input(shape=(2,))
    with pytest.raises(ValueError, match="disconnected"):
        ember.Model(a, L.Add()([a, b]))
    with pytest.raises(ValueError, match="already"):
        ember.Sequential([L.Dense(2, name="x"), L.Dense(2, name="x")])
    with pytest.raises(TypeError, match="unexpected keyword"):
        L.Dense(2, unit=3)


def _fusion_model(axis):
    """BatchNormalization -> ReLU (fused), the same again but read by two layers (not fused), an
    Add of three -> ReLU (fused), and a BatchNormalization -> ReLU6 (not a fusable activation)."""
    shape = (4, 5, 3) if axis == -1 else (3, 4, 5)
    inp = L.Input(shape=shape)
    x = L.Activation("relu")(L.BatchNormalization(axis=axis)(inp))
    x = L.Conv2D(3, 3, padding="same", data_format="channels_last" if axis == -1 else "channels_first")(x)
    shared = L.BatchNormalization(axis=axis)(x)
    x = L.Add()([L.Activation("relu")(shared), shared])
    x = L.Activation("relu")(L.Add()([x, shared, x]))  # fused: the ReLU in the op of the last sum
    x = L.Activation("relu6")(L.BatchNormalization(axis=axis)(x))
    return ember.Model(inp, L.Dense(2)(L.Flatten()(x)))


@pytest.mark.parametrize("axis", [-1, 1])
def test_batch_norm_relu_fusion_matches_separate_layers(float64, axis):
    ember.set_seed(3)
    model = _fusion_model(axis)
    assert len(model._fusions) == 2  # not the second batch norm: its output has several readers
    x = np.random.default_rng(0).normal(size=(6,) + model.inputs[0].shape[1:])
    results, weights = [], model.get_weights()
    for fuse in (True, False):
        model.fuse_activations = fuse
        model.set_weights(weights)  # the training pass moved the running statistics
        model.zero_grad()
        out = model(Tensor(x), training=True)
        (out * out).sum().backward()
        inference = model(x, training=False).numpy()
        results.append((out.numpy(), model.gradients_flat().copy(), inference))
    for fused, separate in zip(*results):
        np.testing.assert_allclose(fused, separate, rtol=1e-12, atol=1e-12)
    assert np.abs(results[0][1]).min() >= 0 and np.count_nonzero(results[0][1]) > 0


def _residual_model(extra_reader=False):
    """conv -> BN (-> ReLU) -> conv -> BN, added to the block input, then ReLU (ResNet's block end)."""
    inp = L.Input(shape=(5, 5, 3))
    y = L.Activation("relu")(L.BatchNormalization()(L.Conv2D(3, 3, padding="same")(inp)))
    y = L.BatchNormalization()(L.Conv2D(3, 3, padding="same")(y))
    out = L.Activation("relu")(L.Add()([inp, y]))
    if extra_reader:  # the batch norm output is read again: it must not be overwritten
        out = L.Concatenate()([out, y])
    return ember.Model(inp, L.Dense(2)(L.Flatten()(out)))


@pytest.mark.parametrize("extra_reader", [False, True])
def test_residual_sum_written_over_the_batch_norm_output_matches_a_new_array(float64, extra_reader):
    """The fused Add -> ReLU writes over the last batch norm's output (index 1 here) when nothing else reads
    it; outputs and gradients equal those of the same model without fusion, and the gradients match finite
    differences."""
    ember.set_seed(4)
    model = _residual_model(extra_reader)
    assert list(model._overwrites.values()) == ([] if extra_reader else [1])
    x = np.random.default_rng(2).normal(size=(3, 5, 5, 3))
    weights = model.get_weights()
    results = []
    for fuse in (True, False):
        model.fuse_activations = fuse
        model.set_weights(weights)
        model.zero_grad()
        out = model(Tensor(x), training=True)
        (out * out).sum().backward()
        results.append((out.numpy(), model.gradients_flat().copy()))
    for fused, separate in zip(*results):
        np.testing.assert_allclose(fused, separate, rtol=1e-12, atol=1e-12)
    model.fuse_activations = True
    model.set_weights(weights)
    flat = model.parameters_flat()

    def loss():
        model.set_weights(weights)
        model.parameters_flat()[:] = flat_values
        out = model(Tensor(x), training=True).numpy()
        return float((out * out).sum())

    flat_values = flat.copy()
    i = int(np.argmax(np.abs(results[0][1])))  # the largest gradient entry, by central differences
    eps = 1e-6
    flat_values[i] += eps
    plus = loss()
    flat_values[i] -= 2 * eps
    minus = loss()
    assert abs((plus - minus) / (2 * eps) - results[0][1][i]) < 1e-6 * max(1.0, abs(results[0][1][i]))


def test_fused_batch_norm_relu_is_one_op():
    inp = L.Input(shape=(4,))
    model = ember.Model(inp, L.Activation("relu")(L.BatchNormalization()(inp)))
    out = model(Tensor(np.random.default_rng(1).normal(size=(8, 4)).astype(np.float32)), training=True)
    assert type(out._ctx).__name__ == "BatchNormTrain" and out._ctx.relu
    assert (out.numpy() >= 0).all() and (out.numpy() == 0).any()


def test_sequential_may_start_with_an_input_layer():
    from ember.layers import Dense, InputLayer

    model = ember.Sequential([InputLayer(shape=(3,)), Dense(2)])  # Keras writes it so; it was "graph disconnected"
    assert [type(layer).__name__ for layer in model.layers] == ["Dense"] and model.count_params() == 8
    assert model.predict(np.zeros((4, 3), np.float32), verbose=0).shape == (4, 2)
