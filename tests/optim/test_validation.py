"""Validation methods against direct computations (and scikit-learn's AUC); results add up by parts."""
import numpy as np
import pytest

from ember import optim


@pytest.fixture
def scores(rng):
    out = rng.normal(size=(50, 7))
    target = rng.integers(0, 7, size=50)
    return out, target


def test_top1_and_top5(scores):
    out, target = scores
    top1 = optim.Top1Accuracy()(out, target).result()
    assert top1 == (np.mean(out.argmax(1) == target), 50)
    ranks = (-out).argsort(axis=1)[:, :5]
    expected = np.mean([t in r for t, r in zip(target, ranks)])
    assert optim.Top5Accuracy()(out, target).result()[0] == pytest.approx(expected)
    one_hot = np.eye(7)[target]
    assert optim.Top1Accuracy()(out, one_hot).result() == top1
    parts = optim.Top1Accuracy()(out[:20], target[:20]) + optim.Top1Accuracy()(out[20:], target[20:])
    assert parts.result()[0] == pytest.approx(top1[0]) and parts.result()[1] == 50


def test_top1_binary_column():
    out = np.array([[0.2], [0.7], [0.9], [0.4]])
    assert optim.Top1Accuracy()(out, np.array([0, 1, 0, 0])).result() == (0.75, 4)


def test_loss_mae_mse(scores, rng):
    out, target = scores
    probs = np.exp(out) / np.exp(out).sum(1, keepdims=True)
    expected = -np.mean(np.log(probs[np.arange(50), target]))
    assert optim.Loss()(probs, target).result()[0] == pytest.approx(expected, rel=1e-6)
    a, b = rng.normal(size=(10, 3)), rng.normal(size=(10, 3))
    assert optim.MAE()(a, b).result() == (pytest.approx(np.abs(a - b).mean()), 30)
    assert optim.MSE()(a, b).result() == (pytest.approx(((a - b) ** 2).mean()), 30)
    with pytest.raises(ValueError, match="shape"):
        optim.MSE()(a, b[:5])


def test_auc_matches_sklearn(rng):
    metrics = pytest.importorskip("sklearn.metrics")
    score = np.round(rng.normal(size=200), 1)  # ties on purpose
    label = (score + rng.normal(size=200) > 0).astype(int)
    whole = optim.AUC()(score, label).result()[0]
    assert whole == pytest.approx(metrics.roc_auc_score(label, score), rel=1e-12)
    parts = optim.AUC()(score[:77], label[:77]) + optim.AUC()(score[77:], label[77:])
    assert parts.result()[0] == pytest.approx(whole, rel=1e-12)
    two_col = np.stack([1 - score, score], axis=1)
    assert optim.AUC()(two_col, label).result()[0] == pytest.approx(whole)
    with pytest.raises(ValueError, match="0 or 1"):
        optim.AUC()(score, label + 1)


def test_get_by_name_and_errors():
    assert isinstance(optim.validation.get("accuracy"), optim.Top1Accuracy)
    assert isinstance(optim.validation.get("top5"), optim.Top5Accuracy)
    with pytest.raises(ValueError, match="unknown metric"):
        optim.validation.get("precision@k")
    with pytest.raises(ValueError, match="targets"):
        optim.Top1Accuracy()(np.zeros((4, 3)), np.zeros(5))
