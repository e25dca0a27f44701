"""Keras 3 (.keras) and Keras 2 / legacy (.h5) files into ember models, checked against Keras itself
(on its torch backend, so no TensorFlow is needed)."""
import os
import re

import numpy as np
import pytest

import ember
from ember.zoo import load_keras
from ember.zoo.importers.keras import load_keras_weights, read_keras
from ember.zoo.models import InceptionV3, MobileNetV2, ResNet50

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras", reason="pip install keras h5py (Keras 3 runs on the torch backend)")
pytest.importorskip("h5py")
if keras.backend.backend() != "torch":
    pytest.skip("these tests run Keras on its torch backend (KERAS_BACKEND=torch)", allow_module_level=True)
layers = keras.layers


def randomize_batch_norm(model, seed=0):
    """Random BatchNorm statistics (fresh Keras models have mean 0, variance 1: too easy to match)."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            values = []
            for w in layer.weights:
                kind = w.path.rsplit("/", 1)[-1]
                low, high = (0.75, 1.25) if kind in ("gamma", "moving_variance") else (-0.2, 0.2)
                values.append(rng.uniform(low, high, w.shape).astype(np.float32))
            layer.set_weights(values)
    return model


def predict(model, x):
    with ember.no_grad():
        return model.eval()(x).numpy()


def small_functional():
    inp = keras.Input((16, 16, 3))
    x = layers.Conv2D(8, 3, padding="same", activation="relu")(inp)
    x = layers.BatchNormalization()(x)
    y = layers.DepthwiseConv2D(3, padding="same", use_bias=False)(x)
    y = layers.ReLU(6.0)(y)
    x = layers.Add()([x, y])
    a = layers.MaxPooling2D(2)(layers.ZeroPadding2D(((0, 1), (0, 1)))(x))
    # NOTE: not a strided "same" average pool: Keras's torch backend averages over its padding there (max abs
    # difference 0.35 measured), TensorFlow and ember over the real elements only
    b = layers.AveragePooling2D(3, strides=1, padding="same")(layers.Conv2D(4, (1, 3), padding="same")(x))
    b = layers.MaxPooling2D(2)(b)
    x = layers.Concatenate()([a, b])
    x = layers.Dropout(0.3)(layers.Flatten()(x))
    out = layers.Dense(5, activation="softmax")(layers.Dense(16, activation="tanh")(x))
    return randomize_batch_norm(keras.Model(inp, out))


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_functional_model_matches_keras(tmp_path, suffix, rng):
    model = small_functional()
    x = rng.normal(size=(4, 16, 16, 3)).astype(np.float32)
    model.save(tmp_path / f"m{suffix}")
    ours = load_keras(tmp_path / f"m{suffix}")
    assert isinstance(ours, ember.Model) and ours.count_params() == model.count_params()
    np.testing.assert_allclose(predict(ours, x), np.asarray(model.predict(x, verbose=0)), atol=1e-5)


def recurrent_model():
    """Masked sequences through LSTM, GRU and a Bidirectional SimpleRNN, into a nested Sequential head."""
    inp = keras.Input((7,), dtype="int32")
    x = layers.Embedding(20, 6, mask_zero=True)(inp)
    x = layers.LSTM(5, return_sequences=True)(x)
    x = layers.GRU(4, return_sequences=True, go_backwards=True)(x)
    x = layers.Bidirectional(layers.SimpleRNN(3), merge_mode="sum")(x)
    head = keras.Sequential([keras.Input((3,)), layers.Dense(6, activation="relu"), layers.Dense(2)], name="head")
    return keras.Model(inp, head(x))


def conv_model():
    """Transposed, separable and cropped convolutions, up-sampling, 1-D pooling over time, TimeDistributed, and
    a functional model used as a layer of another."""
    inp = keras.Input((8, 8, 3))
    x = layers.Conv2DTranspose(4, 3, strides=2, padding="same", activation="relu")(inp)
    x = layers.SeparableConv2D(5, 3, padding="same", depth_multiplier=2)(x)
    x = layers.Cropping2D(((1, 2), (0, 3)))(layers.UpSampling2D(2)(x))
    x = layers.Reshape((x.shape[1] * x.shape[2], 5))(x)
    x = layers.MaxPooling1D(3)(layers.TimeDistributed(layers.Dense(4, activation="tanh"))(x))
    inner_in = keras.Input((x.shape[1], 4))
    inner = keras.Model(inner_in, layers.GlobalAveragePooling1D()(layers.Conv1D(3, 2)(inner_in)), name="encoder")
    return keras.Model(inp, layers.Dense(2)(inner(x)))


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
@pytest.mark.parametrize("build", [recurrent_model, conv_model])
def test_recurrent_transposed_and_nested_models_match_keras(tmp_path, suffix, build, rng):
    model = build()
    if build is recurrent_model:
        x = rng.integers(1, 20, size=(6, 7)).astype(np.int32)
        x[:3, 4:] = 0  # padded: the mask reaches every recurrent layer
    else:
        x = rng.normal(size=(3, 8, 8, 3)).astype(np.float32)
    for w in model.weights:  # non-zero biases everywhere (fresh Keras biases are zero: too easy to match)
        w.assign(np.asarray(w.numpy()) + rng.uniform(-0.2, 0.2, w.shape).astype(np.float32))
    model.save(tmp_path / f"m{suffix}")
    ours = load_keras(tmp_path / f"m{suffix}")
    assert ours.count_params() == model.count_params()
    np.testing.assert_allclose(predict(ours, x), np.asarray(model.predict(x, verbose=0)), atol=2e-5)


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_sequential_model_matches_keras(tmp_path, suffix, rng):
    model = keras.Sequential([keras.Input((10,)), layers.Dense(7, activation="relu"), layers.Dense(3)])
    x = rng.normal(size=(5, 10)).astype(np.float32)
    model.save(tmp_path / f"s{suffix}")
    np.testing.assert_allclose(predict(load_keras(tmp_path / f"s{suffix}"), x), model.predict(x, verbose=0),
                               atol=1e-5)


def _application(name, ours, size, tmp_path):
    model = randomize_batch_norm(getattr(keras.applications, name)(weights=None, classifier_activation=None))
    x = np.random.default_rng(0).normal(size=(2, size, size, 3)).astype(np.float32)
    want = np.asarray(model.predict(x, verbose=0))
    # NOTE: measured max abs differences (logits of magnitude 0.5-2): MobileNetV2 1.8e-7, ResNet50 9.5e-7,
    # InceptionV3 3.6e-7, the same through .keras, .h5 and the zoo builders
    for suffix in (".keras", ".h5"):
        model.save(tmp_path / f"app{suffix}")
        assert np.abs(predict(load_keras(tmp_path / f"app{suffix}"), x) - want).max() < 1e-4
    zoo = ours(variant="keras", classifier_activation=None, weights=str(tmp_path / "app.h5"))
    assert np.abs(predict(zoo, x) - want).max() < 1e-4


def test_keras_mobilenet_v2_into_the_zoo(tmp_path):
    _application("MobileNetV2", MobileNetV2, 224, tmp_path)


@pytest.mark.slow
def test_keras_resnet50_and_inception_v3_into_the_zoo(tmp_path):
    _application("ResNet50", ResNet50, 224, tmp_path)
    _application("InceptionV3", InceptionV3, 299, tmp_path)


def test_weights_by_order_when_names_differ(tmp_path, rng):
    model = small_functional()
    model.save(tmp_path / "m.h5")
    ours = load_keras(tmp_path / "m.h5")
    for layer in ours.layers:  # names as another Keras session would number them: conv2d -> conv2d_40, ...
        base, number = re.fullmatch(r"(.*?)(?:_(\d+))?", layer.name).groups()
        layer.name = f"{base}_{int(number or 0) + 40}"
    ours._sublayers = {layer.name: layer for layer in ours.layers}
    fresh = [np.zeros_like(w) for w in ours.get_weights()]
    ours.set_weights(fresh)
    load_keras_weights(tmp_path / "m.h5", ours)
    x = rng.normal(size=(2, 16, 16, 3)).astype(np.float32)
    np.testing.assert_allclose(predict(ours, x), model.predict(x, verbose=0), atol=1e-5)


def test_unknown_layers_and_mismatches_are_named(tmp_path):
    inp = keras.Input((8, 8, 3))
    model = keras.Model(inp, layers.GaussianNoise(0.1, name="up")(layers.Conv2D(2, 3, name="c")(inp)))
    model.save(tmp_path / "up.keras")
    with pytest.raises(ValueError, match=r"up\.keras: Keras layer 'up' \(GaussianNoise\) has no ember equivalent"):
        load_keras(tmp_path / "up.keras")
    _, weights = read_keras(tmp_path / "up.keras")
    assert [w.shape for w in weights["c"]] == [(3, 3, 3, 2), (2,)]
    with pytest.raises(ValueError, match=r"not in the file: Conv1, .*1 file layer\(s\) that the model lacks: c$"):
        load_keras_weights(tmp_path / "up.keras", MobileNetV2(variant="keras", input_shape=(32, 32, 3)))
    (tmp_path / "junk.h5").write_bytes(b"\0" * 64)
    with pytest.raises(ValueError, match=r"junk\.h5': its first bytes; expected a \.keras zip or an HDF5"):
        load_keras(tmp_path / "junk.h5")


def test_hostile_keras_files_are_bounded(tmp_path):
    import os

    import h5py

    from ember.layers.archive import ModelFileError

    # a 1 MB file whose one dataset claims 4 GB (chunked, compressed, never written: all fill value)
    with h5py.File(tmp_path / "claims.h5", "w") as f:
        group = f.create_group("model_weights")
        group.attrs["layer_names"] = [b"dense"]
        layer = group.create_group("dense")
        layer.attrs["weight_names"] = [b"dense/kernel:0"]
        layer.create_dataset("dense/kernel:0", shape=(1 << 30,), dtype="f4", chunks=(1 << 16,), compression="gzip")
    assert os.path.getsize(tmp_path / "claims.h5") < 1 << 20
    with pytest.raises(ModelFileError, match="the file is smaller than its datasets claim"):
        read_keras(tmp_path / "claims.h5")
    with h5py.File(tmp_path / "strings.h5", "w") as f:
        layer = f.create_group("model_weights").create_group("dense")
        f["model_weights"].attrs["layer_names"] = [b"dense"]
        layer.attrs["weight_names"] = [b"w"]
        layer.create_dataset("w", data=[b"not", b"numbers"])
    with pytest.raises(ModelFileError, match="a numeric dataset"):
        read_keras(tmp_path / "strings.h5")
    os.mkfifo(tmp_path / "fifo.keras")
    with pytest.raises(ModelFileError, match="not a regular file"):
        read_keras(tmp_path / "fifo.keras")
