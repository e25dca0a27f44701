"""Every layer: shapes, config round trip, gradients vs finite differences, forward vs a reference."""
import numpy as np
import pytest
import reference_layers as ref
from layer_testing import run_layer_test

import ember
from ember import layers as L
from ember.engine import functional as F

R = np.random.default_rng(3)


def rand(*shape):
    return R.standard_normal(shape)


def nchw(x):
    return np.transpose(x, (0, 3, 1, 2))


def nhwc(x):
    return np.transpose(x, (0, 2, 3, 1))


# ---------- gradient checks (one shared helper) ----------
GRAD_CASES = [
    ("dense", lambda: L.Dense(3, activation="tanh"), rand(4, 5)),
    ("dense_3d", lambda: L.Dense(2, use_bias=False), rand(2, 3, 4)),
    ("flatten", lambda: L.Flatten(), rand(2, 3, 2, 2)),
    ("flatten_cf", lambda: L.Flatten(data_format="channels_first"), rand(2, 3, 2, 2)),
    ("reshape", lambda: L.Reshape((3, -1)), rand(2, 6)),
    ("permute", lambda: L.Permute((2, 1)), rand(2, 3, 4)),
    ("lambda", lambda: L.Lambda(lambda t: F.tanh(t) * t), rand(2, 5)),
    ("conv2d", lambda: L.Conv2D(3, 3, activation="sigmoid"), rand(2, 5, 5, 2)),
    ("conv2d_one_channel", lambda: L.Conv2D(4, 3, padding="same", activation="relu"), rand(2, 5, 6, 1)),  # direct
    ("conv2d_same_stride", lambda: L.Conv2D(2, (3, 2), strides=2, padding="same"), rand(2, 5, 6, 3)),
    ("conv2d_dilation", lambda: L.Conv2D(2, 2, dilation_rate=2, padding="same"), rand(1, 5, 5, 2)),
    ("conv2d_groups", lambda: L.Conv2D(4, 3, groups=2, padding="same"), rand(2, 4, 4, 4)),
    ("conv2d_cf", lambda: L.Conv2D(2, 3, data_format="channels_first", padding="same"), rand(2, 3, 4, 4)),
    ("conv1d", lambda: L.Conv1D(3, 3, padding="causal", dilation_rate=2), rand(2, 7, 2)),
    ("conv1d_same", lambda: L.Conv1D(2, 4, strides=2, padding="same"), rand(2, 7, 3)),
    ("depthwise", lambda: L.DepthwiseConv2D(3, depth_multiplier=2, padding="same"), rand(2, 4, 4, 3)),
    ("depthwise_stride", lambda: L.DepthwiseConv2D(2, strides=2), rand(1, 5, 5, 2)),
    ("conv2d_transpose", lambda: L.Conv2DTranspose(2, 3, strides=2, padding="same"), rand(2, 3, 3, 2)),
    ("conv2d_transpose_valid", lambda: L.Conv2DTranspose(3, 2, strides=3), rand(1, 3, 2, 2)),
    ("conv2d_transpose_cf", lambda: L.Conv2DTranspose(2, 3, data_format="channels_first"), rand(1, 2, 3, 3)),
    ("maxpool", lambda: L.MaxPooling2D(2), rand(2, 4, 4, 2)),
    ("maxpool_same", lambda: L.MaxPooling2D(3, strides=2, padding="same"), rand(2, 5, 5, 2)),
    ("avgpool_same", lambda: L.AveragePooling2D(3, strides=2, padding="same"), rand(2, 5, 4, 2)),
    ("avgpool_cf", lambda: L.AveragePooling2D(2, data_format="channels_first"), rand(2, 2, 4, 4)),
    ("gap", lambda: L.GlobalAveragePooling2D(), rand(2, 3, 3, 4)),
    ("gmp", lambda: L.GlobalMaxPooling2D(data_format="channels_first", keepdims=True), rand(2, 3, 3, 4)),
    ("zeropad", lambda: L.ZeroPadding2D(((1, 0), (2, 1))), rand(2, 3, 3, 2)),
    ("batchnorm_train", lambda: L.BatchNormalization(), rand(6, 3)),
    ("batchnorm_cf_train", lambda: L.BatchNormalization(axis=1), rand(3, 2, 3, 3)),
    ("batchnorm_4d_train", lambda: L.BatchNormalization(), rand(3, 2, 3, 4)),
    ("batchnorm_inference", lambda: L.BatchNormalization(moving_mean_initializer="random_normal",
                                                         moving_variance_initializer="ones"), rand(3, 2, 2, 4)),
    ("batchnorm_cf_inference", lambda: L.BatchNormalization(axis=1, moving_mean_initializer="random_normal"),
     rand(2, 3, 2, 2)),
    ("layernorm", lambda: L.LayerNormalization(), rand(3, 5)),
    ("lrn", lambda: L.LocalResponseNormalization(size=3, alpha=0.5, beta=0.75, k=2.0), rand(2, 3, 3, 5)),
    ("simple_rnn", lambda: L.SimpleRNN(3), rand(2, 4, 3)),
    ("lstm", lambda: L.LSTM(3, return_sequences=True), rand(2, 3, 2)),
    ("lstm_unfused", lambda: L.LSTM(2, activation="elu", recurrent_activation="tanh"), rand(2, 3, 2)),
    ("gru", lambda: L.GRU(3), rand(2, 3, 2)),
    ("gru_unfused", lambda: L.GRU(2, activation="elu"), rand(2, 3, 2)),
    ("gru_backwards", lambda: L.GRU(2, go_backwards=True, return_sequences=True), rand(2, 3, 2)),
]


@pytest.mark.parametrize("name,factory,x", GRAD_CASES, ids=[c[0] for c in GRAD_CASES])
def test_layer_gradients(name, factory, x):
    training = name.endswith("_train")
    run_layer_test(factory, x, training=training, roundtrip=name != "lambda")


@pytest.mark.parametrize("act", ["relu", "relu6", "leaky_relu", "elu", "gelu", "sigmoid", "tanh", "softmax",
                                 "log_softmax", "linear"])
def test_activation_gradients(act):
    run_layer_test(lambda: L.Activation(act), rand(3, 4) * 3)


def test_dropout_gradient_in_training_mode():
    layer = run_layer_test(lambda: L.Dropout(0.4), rand(4, 6), training=True)
    y = layer(np.ones((200, 50)), training=True).numpy()
    assert 0.35 < (y == 0).mean() < 0.45
    np.testing.assert_allclose(y[y != 0], 1 / 0.6)
    np.testing.assert_array_equal(layer(np.ones((2, 3)), training=False).numpy(), np.ones((2, 3)))


def test_embedding_gradient():
    run_layer_test(lambda: L.Embedding(6, 3), np.array([[0, 2, 5], [2, 2, 1]]))


@pytest.mark.parametrize("cls", [L.Add, L.Multiply, L.Subtract, L.Average, L.Maximum, L.Minimum])
def test_merge_gradients(cls):
    inputs = [rand(2, 3), rand(2, 3)] if cls is L.Subtract else [rand(2, 3), rand(2, 3), rand(2, 3)]
    run_layer_test(cls, inputs)


def test_concatenate_gradient():
    run_layer_test(lambda: L.Concatenate(axis=1), [rand(2, 3, 2), rand(2, 1, 2)], expected_shape=(2, 4, 2))


# ---------- forward against references, both data formats ----------
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("kw", [
    dict(filters=4, kernel_size=3, strides=1, padding="valid"),
    dict(filters=4, kernel_size=(3, 2), strides=(2, 1), padding="same"),
    dict(filters=6, kernel_size=3, strides=2, padding="same", dilation_rate=1, groups=3),
    dict(filters=2, kernel_size=2, strides=1, padding="same", dilation_rate=2),
    dict(filters=3, kernel_size=5, strides=3, padding="same"),
])
def test_conv2d_forward_matches_reference(float64, data_format, kw):
    x = rand(2, 7, 6, 3) if kw.get("groups", 1) == 3 else rand(2, 7, 6, 2)
    layer = L.Conv2D(data_format=data_format, **kw)
    y = layer(nchw(x) if data_format == "channels_first" else x).numpy()
    if data_format == "channels_first":
        y = nhwc(y)
    k, b = layer.get_weights()
    ks, st, dl = layer.kernel_size, layer.strides, layer.dilation_rate
    pads = tuple(F.same_padding(s, kk, ss, d) if layer.padding == "same" else (0, 0)
                 for s, kk, ss, d in zip(x.shape[1:3], ks, st, dl))
    np.testing.assert_allclose(y, ref.conv2d_nhwc(x, k, st, pads, dl, layer.groups) + b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_depthwise_forward_matches_reference(float64, data_format):
    x = rand(2, 6, 6, 3)
    layer = L.DepthwiseConv2D(3, strides=2, padding="same", depth_multiplier=2, data_format=data_format)
    y = layer(nchw(x) if data_format == "channels_first" else x).numpy()
    y = nhwc(y) if data_format == "channels_first" else y
    k, b = layer.get_weights()
    grouped = k.reshape(3, 3, 1, 6)
    expected = ref.conv2d_nhwc(x, grouped, (2, 2), (F.same_padding(6, 3, 2),) * 2, groups=3) + b
    np.testing.assert_allclose(y, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("kw,hw", [
    (dict(kernel_size=3, strides=2, padding="same"), (6, 6)),
    (dict(kernel_size=3, strides=2, padding="valid"), (7, 7)),
    (dict(kernel_size=2, strides=3, padding="valid"), (9, 9)),
    (dict(kernel_size=4, strides=2, padding="same", output_padding=1), (5, 5)),  # Keras: 2*2 + 4 - 4 + 1
])
def test_conv2d_transpose_forward_matches_reference(float64, data_format, kw, hw):
    x = rand(2, 3, 3, 2)
    layer = L.Conv2DTranspose(3, data_format=data_format, **kw)
    y = layer(nchw(x) if data_format == "channels_first" else x).numpy()
    y = nhwc(y) if data_format == "channels_first" else y
    assert y.shape[1:3] == hw
    k, b = layer.get_weights()
    pads = tuple(F.same_padding(o, 3 if kw["kernel_size"] == 3 else kw["kernel_size"], 2) if kw["padding"] == "same"
                 else (0, 0) for o in hw)
    expected = ref.conv2d_transpose_nhwc(x, k, layer.strides, hw, pads) + b
    np.testing.assert_allclose(y, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("cls,mode", [(L.MaxPooling2D, "max"), (L.AveragePooling2D, "avg")])
@pytest.mark.parametrize("pool,strides,padding", [(2, None, "valid"), (3, 2, "same"), ((3, 2), (1, 2), "valid"),
                                                  (2, 1, "same")])
def test_pooling_forward_matches_reference(float64, data_format, cls, mode, pool, strides, padding):
    x = rand(2, 7, 6, 3)
    layer = cls(pool, strides, padding, data_format=data_format)
    y = layer(nchw(x) if data_format == "channels_first" else x).numpy()
    y = nhwc(y) if data_format == "channels_first" else y
    p = layer.pool_size
    pads = tuple(F.same_padding(s, k, st) if padding == "same" else (0, 0)
                 for s, k, st in zip(x.shape[1:3], p, layer.strides))
    np.testing.assert_allclose(y, ref.pool2d_nhwc(x, p, layer.strides, pads, mode), rtol=1e-12)


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_lrn_forward_matches_reference(float64, data_format):
    x = rand(2, 3, 3, 7)
    layer = L.LocalResponseNormalization(size=5, alpha=1e-2, beta=0.75, k=1.0, data_format=data_format)
    y = layer(nchw(x) if data_format == "channels_first" else x).numpy()
    y = nhwc(y) if data_format == "channels_first" else y
    np.testing.assert_allclose(y, ref.lrn_nhwc(x, 5, 1e-2, 0.75, 1.0), rtol=1e-12)


def test_batchnorm_train_and_inference(float64):
    x = rand(8, 4) * 3 + 1
    layer = L.BatchNormalization(momentum=0.9)
    y = layer(x, training=True).numpy()
    np.testing.assert_allclose(y, (x - x.mean(0)) / np.sqrt(x.var(0) + 1e-3), rtol=1e-10)
    gamma, beta, mean, var = layer.get_weights()
    np.testing.assert_allclose(mean, 0.1 * x.mean(0))
    np.testing.assert_allclose(var, 0.9 + 0.1 * x.var(0))
    y_inf = layer(x, training=False).numpy()
    np.testing.assert_allclose(y_inf, (x - mean) / np.sqrt(var + 1e-3) * gamma + beta, rtol=1e-10)
    layer.eval()
    np.testing.assert_allclose(layer(x).numpy(), y_inf)


def test_layernorm_forward(float64):
    x = rand(3, 6)
    y = L.LayerNormalization(epsilon=1e-5)(x).numpy()
    np.testing.assert_allclose(y, (x - x.mean(1, keepdims=True)) / np.sqrt(x.var(1, keepdims=True) + 1e-5), rtol=1e-10)


def test_recurrent_forward_matches_reference(float64):
    x = rand(3, 5, 4)
    lstm = L.LSTM(6, return_sequences=True)
    np.testing.assert_allclose(lstm(x).numpy(), ref.lstm(x, *lstm.get_weights(), return_sequences=True), rtol=1e-10)
    assert np.all(lstm.get_weights()[2][6:12] == 1.0)  # unit_forget_bias
    gru = L.GRU(5)
    np.testing.assert_allclose(gru(x).numpy(), ref.gru(x, *gru.get_weights()), rtol=1e-10)
    rnn = L.SimpleRNN(4)
    np.testing.assert_allclose(rnn(x).numpy(), ref.simple_rnn(x, *rnn.get_weights()), rtol=1e-10)


def test_recurrent_matches_torch(float64):
    torch = pytest.importorskip("torch")
    x = rand(2, 4, 3)
    lstm = L.LSTM(5, return_sequences=True)
    y = lstm(x).numpy()
    k, rk, b = lstm.get_weights()
    t_lstm = torch.nn.LSTM(3, 5, batch_first=True).double()
    with torch.no_grad():
        t_lstm.weight_ih_l0.copy_(torch.from_numpy(k.T))
        t_lstm.weight_hh_l0.copy_(torch.from_numpy(rk.T))
        t_lstm.bias_ih_l0.copy_(torch.from_numpy(b))
        t_lstm.bias_hh_l0.zero_()
        expected = t_lstm(torch.from_numpy(x))[0].numpy()
    np.testing.assert_allclose(y, expected, rtol=1e-10, atol=1e-12)

    gru = L.GRU(4)
    gru(x)
    k, rk, b = gru.get_weights()
    b = b + R.standard_normal(b.shape)
    gru.set_weights([k, rk, b])
    t_gru = torch.nn.GRU(3, 4, batch_first=True).double()
    order = np.r_[4:8, 0:4, 8:12]  # ember z, r, h -> torch r, z, n
    with torch.no_grad():
        t_gru.weight_ih_l0.copy_(torch.from_numpy(k.T[order]))
        t_gru.weight_hh_l0.copy_(torch.from_numpy(rk.T[order]))
        t_gru.bias_ih_l0.copy_(torch.from_numpy(b[0][order]))
        t_gru.bias_hh_l0.copy_(torch.from_numpy(b[1][order]))
        expected = t_gru(torch.from_numpy(x))[0][:, -1].numpy()
    np.testing.assert_allclose(gru(x).numpy(), expected, rtol=1e-10, atol=1e-12)


def test_conv_and_pool_match_torch(float64):
    torch = pytest.importorskip("torch")
    x = rand(2, 9, 8, 4)
    layer = L.Conv2D(6, 3, strides=2, dilation_rate=1, groups=2, padding="valid")
    y = layer(x).numpy()
    k, b = layer.get_weights()
    t = torch.nn.functional.conv2d(torch.from_numpy(nchw(x)), torch.from_numpy(k.transpose(3, 2, 0, 1)),
                                   torch.from_numpy(b), stride=2, groups=2)
    np.testing.assert_allclose(y, nhwc(t.numpy()), rtol=1e-10, atol=1e-12)
    tr = L.Conv2DTranspose(3, 3, strides=2, bias_initializer="random_normal")
    y = tr(x).numpy()
    k, b = tr.get_weights()
    t = torch.nn.functional.conv_transpose2d(torch.from_numpy(nchw(x)), torch.from_numpy(k.transpose(3, 2, 0, 1)),
                                             torch.from_numpy(b), stride=2)
    np.testing.assert_allclose(y, nhwc(t.numpy()), rtol=1e-10, atol=1e-12)
    lrn = L.LocalResponseNormalization(size=3, alpha=0.1, beta=0.75, k=2.0, data_format="channels_first")
    t = torch.nn.functional.local_response_norm(torch.from_numpy(nchw(x)), 3, alpha=0.1, beta=0.75, k=2.0)
    np.testing.assert_allclose(lrn(nchw(x)).numpy(), t.numpy(), rtol=1e-10)
    gelu = torch.nn.functional.gelu(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(L.Activation("gelu")(x).numpy(), gelu, rtol=1e-10, atol=1e-12)


def test_activation_values(float64):
    x = np.linspace(-8, 8, 33)[None, :]
    checks = {"relu": np.maximum(x, 0), "relu6": np.clip(x, 0, 6), "leaky_relu": np.where(x > 0, x, 0.2 * x),
              "elu": np.where(x > 0, x, np.expm1(x)), "sigmoid": 1 / (1 + np.exp(-x)), "tanh": np.tanh(x),
              "softmax": np.exp(x) / np.exp(x).sum(), "log_softmax": x - np.log(np.exp(x).sum()), "linear": x}
    for name, expected in checks.items():
        np.testing.assert_allclose(L.Activation(name)(x).numpy(), expected, rtol=1e-12, atol=1e-15, err_msg=name)


def test_embedding_and_dense_values(float64):
    emb = L.Embedding(5, 2)
    ids = np.array([[4, 0], [1, 1]])
    np.testing.assert_array_equal(emb(ids).numpy(), emb.get_weights()[0][ids])
    dense = L.Dense(3)
    x = rand(4, 2)
    k, b = (w for w in dense(x) and dense.get_weights())
    np.testing.assert_allclose(dense(x).numpy(), x @ k + b)


def test_set_seed_reproduces_dropout():
    ember.set_seed(5)
    a = L.Dropout(0.5)(np.ones((4, 4)), training=True).numpy()
    ember.set_seed(5)
    b = L.Dropout(0.5)(np.ones((4, 4)), training=True).numpy()
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_simple_spatial_layers_forward(float64, data_format):
    x = rand(2, 4, 3, 5)  # NHWC
    inp = nchw(x) if data_format == "channels_first" else x
    back = nhwc if data_format == "channels_first" else (lambda a: a)
    np.testing.assert_allclose(L.GlobalAveragePooling2D(data_format)(inp).numpy(), x.mean(axis=(1, 2)))
    np.testing.assert_allclose(L.GlobalMaxPooling2D(data_format)(inp).numpy(), x.max(axis=(1, 2)))
    padded = back(L.ZeroPadding2D(((1, 2), (0, 1)), data_format)(inp).numpy())
    np.testing.assert_array_equal(padded, np.pad(x, ((0, 0), (1, 2), (0, 1), (0, 0))))
    np.testing.assert_array_equal(L.Flatten(data_format)(inp).numpy(), x.reshape(2, -1))


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("padding", ["valid", "same", "causal"])
def test_conv1d_forward_matches_reference(float64, data_format, padding):
    x = rand(2, 9, 3)
    layer = L.Conv1D(4, 3, strides=2 if padding != "causal" else 1, padding=padding, data_format=data_format,
                     dilation_rate=2 if padding == "causal" else 1)
    y = layer(np.transpose(x, (0, 2, 1)) if data_format == "channels_first" else x).numpy()
    y = np.transpose(y, (0, 2, 1)) if data_format == "channels_first" else y
    k, b = layer.get_weights()
    pad = {"valid": (0, 0), "same": F.same_padding(9, 3, 2), "causal": (4, 0)}[padding]
    expected = ref.conv2d_nhwc(x[:, None], k[None], (1, layer.strides), ((0, 0), pad), (1, layer.dilation_rate))
    np.testing.assert_allclose(y, expected[:, 0] + b, rtol=1e-10, atol=1e-12)


def test_reshape_and_permute_values():
    x = np.arange(24.0).reshape(2, 3, 4)
    np.testing.assert_array_equal(L.Reshape((4, 3))(x).numpy(), x.reshape(2, 4, 3))
    np.testing.assert_array_equal(L.Permute((2, 1))(x).numpy(), x.transpose(0, 2, 1))
