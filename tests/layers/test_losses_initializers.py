import numpy as np
import pytest
from layer_testing import numeric_gradient, relative_error

from ember import losses
from ember.engine import Tensor
from ember.layers import initializers

R = np.random.default_rng(11)


def softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


LOGITS = R.standard_normal((5, 4)) * 2
LABELS = np.array([0, 3, 1, 1, 2])
ONEHOT = np.eye(4)[LABELS]
PROBS = softmax(LOGITS)
BIN_T = (R.random((5, 3)) > 0.5).astype(float)
REG_T = R.standard_normal((5, 3))
REG_P = R.standard_normal((5, 3)) * 2

CASES = [
    ("sparse_categorical_crossentropy", losses.SparseCategoricalCrossentropy(from_logits=True), LABELS, LOGITS,
     -np.log(PROBS[np.arange(5), LABELS]).mean()),
    ("sparse_probs", losses.SparseCategoricalCrossentropy(), LABELS, PROBS,
     -np.log(PROBS[np.arange(5), LABELS]).mean()),
    ("categorical_crossentropy", losses.CategoricalCrossentropy(from_logits=True), ONEHOT, LOGITS,
     -(ONEHOT * np.log(PROBS)).sum(1).mean()),
    ("categorical_probs", losses.CategoricalCrossentropy(), ONEHOT, PROBS, -(ONEHOT * np.log(PROBS)).sum(1).mean()),
    ("binary_logits", losses.BinaryCrossentropy(from_logits=True), BIN_T, REG_P,
     -(BIN_T * np.log(1 / (1 + np.exp(-REG_P))) + (1 - BIN_T) * np.log(1 - 1 / (1 + np.exp(-REG_P)))).mean()),
    ("binary_probs", losses.BinaryCrossentropy(), BIN_T, 1 / (1 + np.exp(-REG_P)),
     -(BIN_T * np.log(1 / (1 + np.exp(-REG_P))) + (1 - BIN_T) * np.log(1 - 1 / (1 + np.exp(-REG_P)))).mean()),
    ("mse", losses.get("mean_squared_error"), REG_T, REG_P, ((REG_P - REG_T) ** 2).mean()),
    ("mae", losses.get("mean_absolute_error"), REG_T, REG_P, np.abs(REG_P - REG_T).mean()),
    ("huber", losses.get("huber"), REG_T, REG_P,
     np.where(np.abs(REG_P - REG_T) <= 1, 0.5 * (REG_P - REG_T) ** 2, np.abs(REG_P - REG_T) - 0.5).mean()),
    ("kl_divergence", losses.get("kl_divergence"), softmax(REG_T), softmax(REG_P),
     (softmax(REG_T) * np.log(softmax(REG_T) / softmax(REG_P))).sum(1).mean()),
    ("hinge", losses.get("hinge"), BIN_T, REG_P, np.maximum(1 - (2 * BIN_T - 1) * REG_P, 0).mean()),
]


@pytest.mark.parametrize("name,loss,y_true,y_pred,expected", CASES, ids=[c[0] for c in CASES])
def test_loss_value_and_gradient(float64, name, loss, y_true, y_pred, expected):
    pred = np.array(y_pred, dtype=np.float64)
    t = Tensor(pred, requires_grad=True)
    value = loss(y_true, t)
    assert value.shape == ()
    np.testing.assert_allclose(value.item(), expected, rtol=1e-10)
    value.backward()
    num = numeric_gradient(lambda: loss(y_true, Tensor(pred)).item(), pred)
    assert relative_error(t.grad, num) < 1e-6


def test_crossentropy_from_logits_is_stable():
    logits = Tensor(np.array([[1000.0, -1000.0, 0.0]]), requires_grad=True)
    value = losses.SparseCategoricalCrossentropy(from_logits=True)(np.array([1]), logits)
    assert np.isfinite(value.item()) and abs(value.item() - 2000.0) < 1e-3
    value.backward()
    assert np.all(np.isfinite(logits.grad))
    b = losses.BinaryCrossentropy(from_logits=True)(np.array([[0.0]]), Tensor(np.array([[800.0]])))
    assert abs(b.item() - 800.0) < 1e-3


def test_loss_shape_errors():
    with pytest.raises(ValueError, match="y_true shape"):
        losses.get("mse")(np.zeros((2, 3)), Tensor(np.zeros((2, 4))))
    with pytest.raises(ValueError, match="unknown loss"):
        losses.get("cross_entropyy")


@pytest.mark.parametrize("name,var", [
    ("glorot_uniform", 2 / (300 + 200)), ("glorot_normal", 2 / (300 + 200)), ("he_normal", 2 / 300),
    ("he_uniform", 2 / 300), ("lecun_normal", 1 / 300), ("zeros", 0.0), ("ones", 0.0),
    ("random_normal", 0.05 ** 2), ("random_uniform", 0.1 ** 2 / 12),
])
def test_initializer_statistics(name, var):
    w = initializers.get(name)((300, 200), np.float64)
    assert w.shape == (300, 200) and w.dtype == np.float64
    np.testing.assert_allclose(w.var(), var, rtol=0.05, atol=1e-12)
    if name == "ones":
        assert np.all(w == 1)


def test_truncated_normal_is_truncated_and_orthogonal_is_orthogonal():
    w = initializers.get("he_normal")((500, 400))
    std = np.sqrt(2 / 500) / 0.87962566103423978
    assert np.abs(w).max() <= 2 * std + 1e-6
    q = initializers.get("orthogonal")((6, 4), np.float64)
    np.testing.assert_allclose(q.T @ q, np.eye(4), atol=1e-12)
    q = initializers.get("orthogonal")((3, 3, 2, 8), np.float64).reshape(-1, 8)
    np.testing.assert_allclose(q.T @ q, np.eye(8), atol=1e-12)
    with pytest.raises(ValueError, match="unknown initializer"):
        initializers.get("glorot")


def test_sparse_crossentropy_on_softmax_output_uses_the_logits(float64):
    """On a softmax output the loss comes from the logits: same value as -log p, exact gradient p - onehot."""
    from ember.engine import functional as F

    rng = np.random.default_rng(3)
    z = Tensor(rng.normal(size=(6, 4)) * 3, requires_grad=True)
    labels = rng.integers(0, 4, 6)
    p = F.softmax(z, axis=-1)
    loss = losses.SparseCategoricalCrossentropy()(labels, p)
    probs = p.numpy()
    assert float(loss.numpy()) == pytest.approx(-np.log(probs[np.arange(6), labels]).mean(), rel=1e-12)
    loss.backward()
    expected = probs.copy()
    expected[np.arange(6), labels] -= 1
    np.testing.assert_allclose(z.grad, expected / 6, rtol=1e-12, atol=1e-15)
    # from_logits takes the same path
    z2 = Tensor(z.numpy(), requires_grad=True)
    loss2 = losses.SparseCategoricalCrossentropy(from_logits=True)(labels, z2)
    loss2.backward()
    assert float(loss2.numpy()) == pytest.approx(float(loss.numpy()), rel=1e-12)
    np.testing.assert_allclose(z2.grad, z.grad, rtol=1e-12)


def test_sparse_crossentropy_on_softmax_output_is_not_clipped(float64):
    """Taken from the logits, a confident wrong answer costs its full loss (30), not the clipped
    -log(1e-7) = 16.1 that probabilities would give."""
    from ember.engine import functional as F

    z = Tensor(np.array([[0.0, 30.0]]), requires_grad=True)
    loss = losses.SparseCategoricalCrossentropy()(np.array([0]), F.softmax(z, axis=-1))
    assert float(loss.numpy()) == pytest.approx(30.0, rel=1e-9)
