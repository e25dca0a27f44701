"""Recorded and replayed training calls (ember.engine.replay): the same numbers as the normal path over
several steps, a new recording when the input shape changes, and the normal path wherever a replay could
be wrong (a tensor made outside the ops, a graph whose backward has not run, layers that are not pure)."""
import numpy as np
import pytest
from layer_testing import numeric_gradient, relative_error

import ember
from ember import layers as L
from ember.engine import Tensor
from ember.engine import functional as F
from ember.engine.replay import StepReplay
from ember.optim import SGD
from ember.optim.local import LocalEngine


def _mlp():
    return ember.Sequential([L.Flatten(input_shape=(4, 3, 1)), L.Dense(7, activation="relu"),
                             L.Dense(5, activation="tanh"), L.Dense(3, activation="softmax")])


def _convnet():
    return ember.Sequential([L.Conv2D(4, 3, padding="same", activation="relu", input_shape=(6, 6, 2)),
                             L.MaxPooling2D(2), L.Conv2D(3, 2, activation="relu"), L.AveragePooling2D(2),
                             L.Flatten(), L.Dense(3, activation="softmax")])


def _train(factory, replay, x, y, batch_size, epochs=3):
    ember.set_seed(11)
    model = factory()
    model.compile(SGD(0.1, momentum=0.9), "sparse_categorical_crossentropy")
    LocalEngine.REPLAY = replay
    try:
        history = model.fit(x, y, batch_size=batch_size, epochs=epochs, verbose=0, shuffle=True)
    finally:
        LocalEngine.REPLAY = True
    return model.get_weights(), history.history["loss"]


@pytest.mark.parametrize("factory, shape", [(_mlp, (4, 3, 1)), (_convnet, (6, 6, 2))])
def test_replayed_training_gives_the_weights_of_the_normal_path(float64, factory, shape, monkeypatch):
    """fit with replay and without: equal losses and weights after 3 epochs of 4 steps, the last step of
    each epoch on a smaller batch (a second recording), and replays did happen."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(50,) + shape), rng.integers(0, 3, 50)
    replays = []
    original = StepReplay.__call__

    def counting(self, data):
        out = original(self, data)
        replays.append(self.replays)
        return out

    monkeypatch.setattr(StepReplay, "__call__", counting)
    replayed, losses = _train(factory, True, x, y, batch_size=16)
    assert max(replays) >= 6  # 12 steps, 2 recordings (batches of 16 and of 2), the rest replayed
    normal, normal_losses = _train(factory, False, x, y, batch_size=16)
    np.testing.assert_allclose(losses, normal_losses, rtol=1e-12)
    for a, b in zip(replayed, normal):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    assert not np.allclose(replayed[0], _train(factory, True, x, y, batch_size=16, epochs=1)[0][0])


def test_a_replayed_graph_has_the_gradients_of_finite_differences(float64):
    rng = np.random.default_rng(1)
    w0, b0 = rng.normal(size=(3, 4)), rng.normal(size=4)
    w, b = Tensor(w0.copy(), requires_grad=True), Tensor(b0.copy(), requires_grad=True)
    r = rng.normal(size=(5, 4))

    def fn(x):
        return F.tanh(F.bias_add(F.matmul(F.relu(x), w), b, "relu") * 2.0)

    step = StepReplay(fn, [w, b])
    step(rng.normal(size=(5, 3))).sum().backward()  # the recording
    x = rng.normal(size=(5, 3))
    w.zero_grad()
    b.zero_grad()
    (step(x) * Tensor(r)).sum().backward()
    assert step.replays == 1

    def loss():
        return float((fn(Tensor(x)).numpy() * r).sum())

    for param, values in ((w, w0), (b, b0)):
        param.data[...] = values
        num = numeric_gradient(loss, param.data)
        assert relative_error(param.grad, num) < 1e-6


def test_a_new_shape_is_recorded_and_an_outside_tensor_refuses_replay(float64):
    rng = np.random.default_rng(2)
    w = Tensor(rng.normal(size=(3, 2)), requires_grad=True)
    step = StepReplay(lambda x: F.relu(F.matmul(x, w)), [w])
    for n in (4, 4, 6, 6, 4):
        x = rng.normal(size=(n, 3))
        out = step(x)
        np.testing.assert_allclose(out.numpy(), np.maximum(x @ w.data, 0), rtol=1e-12)
        out.sum().backward()
    assert step.replays == 3 and len(step.plans) == 2
    # a tensor the function makes from the data, outside any op: never replayed (it would be stale)
    outside = StepReplay(lambda x: F.relu(F.matmul(x * Tensor(x.data * 0 + 2.0), w)), [w])
    for n in (4, 4, 4):
        x = rng.normal(size=(n, 3))
        out = outside(x)
        np.testing.assert_allclose(out.numpy(), np.maximum((2 * x) @ w.data, 0), rtol=1e-12)
        out.sum().backward()
    assert outside.replays == 0
    # an array among an op's keyword arguments (a loss's labels, say) is data too: never replayed
    from ember.engine.ops.activation import SoftmaxCrossEntropy

    labelled = StepReplay(lambda x: SoftmaxCrossEntropy.apply(F.matmul(x, w), labels=(x.data[:, 0] > 0).astype(int))
                          * 1.0, [w])
    for n in (4, 4, 4):
        x = rng.normal(size=(n, 3))
        out = labelled(x)
        logits = x @ w.data
        p = np.exp(logits - logits.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        want = -np.log(p[np.arange(n), (x[:, 0] > 0).astype(int)]).mean()
        np.testing.assert_allclose(out.numpy(), want, rtol=1e-12)
        out.backward()
    assert labelled.replays == 0


def test_a_graph_still_waiting_for_backward_is_not_overwritten(float64):
    """Two calls before any backward: the second runs normally, so both graphs keep their own values."""
    rng = np.random.default_rng(3)
    w = Tensor(rng.normal(size=(3, 2)), requires_grad=True)
    step = StepReplay(lambda x: F.relu(F.matmul(F.reshape(x, (-1, 3)), w)) * 1.0, [w])
    step(rng.normal(size=(4, 3))).sum().backward()
    x1, x2 = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    out1 = step(x1)
    out2 = step(x2)
    assert step.replays == 1
    w.zero_grad()
    out1.sum().backward()
    g1 = w.grad.copy()
    w.zero_grad()
    out2.sum().backward()
    for x, g in ((x1, g1), (x2, w.grad)):
        np.testing.assert_allclose(g, x.T @ (x @ w.data > 0).astype(float), rtol=1e-12)


@pytest.mark.parametrize("layer", [L.Dropout(0.5), L.BatchNormalization(), L.Dense(3, activation=lambda t: t * 2)])
def test_models_with_state_randomness_or_user_functions_are_not_replayable(layer):
    model = ember.Sequential([L.Flatten(input_shape=(4, 3, 1)), L.Dense(5), layer, L.Dense(2)])
    assert not model.replayable()
    assert _mlp().replayable() and _convnet().replayable()

    class MyDense(L.Dense):  # a subclass may change call: only classes that say so themselves
        pass

    assert not ember.Sequential([L.Flatten(input_shape=(4, 3, 1)), MyDense(2)]).replayable()
