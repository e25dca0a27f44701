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
