"""BigDL's names (``ember.nn``, ``ember.util.common``, ``ember.optim``'s BigDL spellings) on local arrays."""
import numpy as np
import pytest

import ember
from ember.nn.criterion import ClassNLLCriterion, CrossEntropyCriterion
from ember.nn.layer import Linear, LogSoftMax, ReLU, Sequential, SpatialConvolution, SpatialMaxPooling
from ember.optim import SGD, EveryEpoch, MaxEpoch, Optimizer, sgd_update
from ember.util.common import Sample


def test_class_nll_takes_log_probabilities_and_one_based_labels(rng):
    torch = pytest.importorskip("torch")
    logp = np.log(rng.dirichlet(np.ones(4), size=6))
    labels = rng.integers(0, 4, size=6)
    expected = torch.nn.functional.nll_loss(torch.tensor(logp), torch.tensor(labels)).item()
    assert ClassNLLCriterion()(labels + 1, logp).item() == pytest.approx(expected)
    assert ClassNLLCriterion(label_base=0)(labels, logp).item() == pytest.approx(expected)
    logits = rng.normal(size=(6, 4))
    expected = torch.nn.functional.cross_entropy(torch.tensor(logits), torch.tensor(labels)).item()
    assert CrossEntropyCriterion()(labels + 1, logits).item() == pytest.approx(expected)
    with pytest.raises(ValueError, match=r"labels must be in \[1, 5\) \(label_base=1\)"):
        ClassNLLCriterion()(np.array([0, 1, 2, 3, 0, 1]), logp)  # 0-based labels given to a 1-based criterion


def test_torch_style_layers_are_nchw(rng):
    torch = pytest.importorskip("torch")
    conv, pool = SpatialConvolution(2, 3, 3, 2, stride_w=2), SpatialMaxPooling(2, 2, 2, 2)
    x = rng.normal(size=(1, 2, 7, 8)).astype(np.float32)
    y = pool(conv(x)).numpy()
    tconv = torch.nn.Conv2d(2, 3, (2, 3), stride=(1, 2))
    kernel, bias = conv.get_weights()
    tconv.weight.data = torch.tensor(kernel.transpose(3, 2, 0, 1))
    tconv.bias.data = torch.tensor(bias)
    expected = torch.nn.functional.max_pool2d(tconv(torch.tensor(x)), 2, 2).detach().numpy()
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)


def test_bigdl_optimizer_keywords_and_label_base(rng, tmp_path):
    x = rng.normal(size=(64, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64) + 1  # BigDL's 1-based labels
    model = Sequential().add(Linear(4, 8)).add(ReLU()).add(Linear(8, 2)).add(LogSoftMax())
    optimizer = Optimizer(model=model, training_rdd=(x, y), criterion=ClassNLLCriterion(),
                          optim_method=SGD(learningrate=0.5, learningrate_decay=0.01), end_trigger=MaxEpoch(5),
                          batch_size=16)
    optimizer.set_validation(batch_size=16, val_rdd=(x, y), trigger=EveryEpoch(), val_method=["Top1Accuracy"])
    optimizer.set_checkpoint(EveryEpoch(), str(tmp_path))
    optimizer.set_progress(0, quiet=True).optimize()
    assert optimizer.state["score"] > 0.8  # Top1Accuracy on labels shifted back to 0-based
    assert len(list(tmp_path.glob("checkpoint-*.ember"))) == 5
    with pytest.raises(TypeError, match="give the training data once"):
        Optimizer(model, (x, y), "mse", training_rdd=(x, y))


def test_sgd_learningrate_decay_is_bigdls_rule():
    param, grad, state = np.zeros(1), np.ones(1), {}
    for _ in range(3):
        sgd_update(param, grad, state, 1.0, learning_rate_decay=0.5)
    assert param[0] == pytest.approx(-(1 + 1 / 1.5 + 1 / 2.0))
    assert SGD(learningrate=0.2, weightdecay=0.1).hyper["weight_decay"] == 0.1


def test_sample_from_ndarray_is_a_feature_label_pair():
    x, y = Sample.from_ndarray(np.ones((2, 3)), np.array(4))
    assert x.shape == (2, 3) and int(y) == 4
    assert ember.nn.layer.Model.load is not None


def test_optimizer_create_is_bigdls_factory(rng):
    """Optimizer.create(model, training_set, criterion, end_trigger, batch_size, optim_method): BigDL's order,
    the same training as Optimizer(...) with keywords."""
    x = rng.normal(size=(48, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64) + 1

    def model():
        ember.set_seed(5)
        return Sequential().add(Linear(4, 3)).add(LogSoftMax())

    a, b = model(), model()
    created = Optimizer.create(a, (x, y), ClassNLLCriterion(), MaxEpoch(2), 16, SGD(learningrate=0.3))
    assert type(created).__name__ == "LocalOptimizer"
    created.set_shuffle(False).set_progress(0, quiet=True).optimize()
    Optimizer(model=b, training_rdd=(x, y), criterion=ClassNLLCriterion(), optim_method=SGD(learningrate=0.3),
              end_trigger=MaxEpoch(2), batch_size=16).set_shuffle(False).set_progress(0, quiet=True).optimize()
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    with pytest.raises(ValueError, match="cores must be an integer >= 1"):
        Optimizer.create(a, (x, y), ClassNLLCriterion(), MaxEpoch(1), 16, cores=0)


def test_predict_class_counts_from_one_and_evaluate_without_arguments_is_inference_mode(rng):
    model = Sequential().add(Linear(4, 3)).add(LogSoftMax())
    x = rng.normal(size=(10, 4)).astype(np.float32)
    expected = model.predict(x).argmax(axis=1)
    np.testing.assert_array_equal(model.predict_class(x), expected + 1)  # BigDL's 1-based class ids
    np.testing.assert_array_equal(model.predict_class(x, label_base=0), expected)
    assert model.training and model.evaluate() is model and not model.training


def test_keras1_arguments_mean_todays_arguments():
    from ember import layers, regularizers

    old = layers.Convolution2D(8, 3, 5, border_mode="same", subsample=(2, 1), dim_ordering="th", init="he_normal",
                               W_regularizer=regularizers.l2(0.01), b_regularizer="l1", bias=True, activation="relu")
    new = layers.Conv2D(8, (3, 5), strides=(2, 1), padding="same", data_format="channels_first",
                        kernel_initializer="he_normal", kernel_regularizer=regularizers.l2(0.01),
                        bias_regularizer="l1", use_bias=True, activation="relu")
    assert {k: v for k, v in old.get_config().items() if k != "name"} == \
        {k: v for k, v in new.get_config().items() if k != "name"}
    dense = layers.Dense(output_dim=5, init="zeros", bias=False, input_dim=3, W_regularizer="l2")
    assert dense.units == 5 and not dense.use_bias and dense._batch_input_shape == (None, 3)
    assert repr(dense.kernel_regularizer) == "L2(l2=0.01)"
    lstm = layers.LSTM(output_dim=4, inner_init="orthogonal", U_regularizer="l1", dropout_W=0.2, dropout_U=0.1,
                       input_dim=6, input_length=9)
    assert (lstm.units, lstm.dropout, lstm.recurrent_dropout, lstm._batch_input_shape) == (4, 0.2, 0.1, (None, 9, 6))
    assert repr(lstm.recurrent_regularizer) == "L1(l1=0.01)"
    pool = layers.MaxPooling2D(pool_size=(2, 2), border_mode="same", dim_ordering="tf")
    assert (pool.padding, pool.data_format) == ("same", "channels_last")
    assert layers.Dropout(p=0.3).rate == 0.3
    assert layers.Embedding(10, 4, init="zeros").embeddings_initializer.__class__.__name__ == "Zeros"
    with pytest.raises(TypeError, match="give 'units' or its Keras 1 name 'output_dim', not both"):
        layers.Dense(units=4, output_dim=4)
    with pytest.raises(ValueError, match="dim_ordering must be 'th', 'tf' or 'default'"):
        layers.Convolution2D(4, 3, 3, dim_ordering="nchw")
    # a Keras 1 model trains like the same model in today's names
    x = np.random.default_rng(0).normal(size=(32, 6, 6, 1)).astype(np.float32)
    y = np.random.default_rng(1).integers(0, 2, 32)
    models = []
    for spell in ("keras1", "keras3"):
        ember.set_seed(0)
        conv = (layers.Convolution2D(4, 3, 3, border_mode="valid", input_shape=(6, 6, 1)) if spell == "keras1"
                else layers.Conv2D(4, (3, 3), padding="valid", input_shape=(6, 6, 1)))
        m = ember.Sequential([conv, layers.Flatten(), layers.Dense(output_dim=2, activation="softmax")
                              if spell == "keras1" else layers.Dense(2, activation="softmax")])
        m.compile("sgd", "sparse_categorical_crossentropy")
        m.fit(x, y, nb_epoch=2, shuffle=False, verbose=0) if spell == "keras1" else \
            m.fit(x, y, epochs=2, shuffle=False, verbose=0)
        models.append(m)
    for a, b in zip(*(m.get_weights() for m in models)):
        np.testing.assert_array_equal(a, b)
