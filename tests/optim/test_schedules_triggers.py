"""Learning-rate schedules against their formulas and torch's schedulers; triggers; clipping; LBFGS."""
import math

import numpy as np
import pytest

from ember import optim


@pytest.mark.parametrize("schedule, formula", [
    (optim.Step(3, 0.5), lambda i: 0.1 * 0.5 ** (i // 3)),
    (optim.MultiStep([2, 5, 9], 0.1), lambda i: 0.1 * 0.1 ** ((i >= 2) + (i >= 5) + (i >= 9))),
    (optim.Exponential(4, 0.9), lambda i: 0.1 * 0.9 ** (i / 4)),
    (optim.Exponential(4, 0.9, stair_case=True), lambda i: 0.1 * 0.9 ** (i // 4)),
    (optim.Poly(2.0, 10), lambda i: 0.1 * (1 - i / 10) ** 2 if i < 10 else 0.0),
    (optim.Cosine(10, 0.01), lambda i: 0.01 + 0.09 * (1 + math.cos(math.pi * min(i, 10) / 10)) / 2),
    (optim.Warmup(0.02), lambda i: 0.1 + 0.02 * i),
    (optim.Default(), lambda i: 0.1),
])
def test_schedule_formulas(schedule, formula):
    got = [schedule.get_learning_rate(0.1, i, 1) for i in range(14)]
    np.testing.assert_allclose(got, [formula(i) for i in range(14)], rtol=1e-14, atol=1e-16)


def test_schedules_match_torch():
    torch = pytest.importorskip("torch")
    p = torch.nn.Parameter(torch.zeros(1))

    def torch_rates(make, n=14):
        opt = torch.optim.SGD([p], lr=0.1)
        sched = make(opt)
        rates = []
        for _ in range(n):
            rates.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        return rates

    cases = [
        (optim.Step(3, 0.5), lambda o: torch.optim.lr_scheduler.StepLR(o, 3, 0.5)),
        (optim.MultiStep([2, 5, 9], 0.1), lambda o: torch.optim.lr_scheduler.MultiStepLR(o, [2, 5, 9], 0.1)),
        (optim.Poly(2.0, 10), lambda o: torch.optim.lr_scheduler.PolynomialLR(o, 10, 2.0)),
        (optim.Cosine(10, 0.01), lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, 10, 0.01)),
    ]
    for ours, make in cases:
        expected = torch_rates(make)
        got = [ours.get_learning_rate(0.1, i, 1) for i in range(14)]
        if isinstance(ours, optim.Cosine):  # torch's cosine restarts after T_max; compare the first period
            got, expected = got[:11], expected[:11]
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15, err_msg=repr(ours))


def test_plateau_follows_keras_reduce_on_plateau():
    # Keras/BigDL rule: after a validation, leave cooldown first; an improvement (by more than epsilon)
    # resets the wait, otherwise (out of cooldown) wait += 1 and at wait >= patience the rate is cut.
    # The expected rates below were worked out by hand from that rule.
    losses = [1.0, 0.9, 0.95, 0.93, 0.91, 0.92, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99]
    expected = [.1, .1, .1, .05, .05, .025, .025, .025, .0125, .0125, .01, .01, .01]
    ours = optim.Plateau("loss", factor=0.5, patience=2, mode="min", epsilon=1e-4, cooldown=1, min_lr=0.01)
    got = []
    for value in losses:
        ours.on_validation(None, value)
        got.append(ours.get_learning_rate(0.1, 0, 1))
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    restored = optim.Plateau("loss", factor=0.5, patience=2, cooldown=1, min_lr=0.01)
    restored.load_state_dict(ours.state_dict())
    assert restored.get_learning_rate(0.1, 0, 1) == got[-1]
    up = optim.Plateau("score", factor=0.5, patience=1, mode="max")
    up.on_validation(0.9, None)
    up.on_validation(0.8, None)
    assert up.get_learning_rate(1.0, 0, 1) == 0.5


def test_sequential_schedule_hands_over_without_a_jump():
    s = optim.SequentialSchedule().add(optim.Warmup(0.1), 5).add(optim.Poly(1.0, 10), 10)
    rates = [s.get_learning_rate(0.5, i, 1) for i in range(16)]
    np.testing.assert_allclose(rates[:5], [0.5 + 0.1 * i for i in range(5)])
    np.testing.assert_allclose(rates[5:15], [1.0 * (1 - j / 10) for j in range(10)])
    assert rates[15] == 0.0
    with pytest.raises(TypeError, match="LearningRateSchedule"):
        s.add("poly", 3)


def test_schedule_argument_errors():
    with pytest.raises(ValueError, match="step_size"):
        optim.Step(0, 0.1)
    with pytest.raises(ValueError, match="increasing"):
        optim.MultiStep([5, 2], 0.1)
    with pytest.raises(ValueError, match="monitor"):
        optim.Plateau("accuracy")


def state(**kw):
    base = {"epoch": 1, "iteration": 0, "epoch_finished": False, "loss": None, "score": None}
    base.update(kw)
    return base


def test_triggers():
    assert not optim.MaxEpoch(2)(state(epoch=2)) and optim.MaxEpoch(2)(state(epoch=3))
    assert not optim.MaxIteration(5)(state(iteration=4)) and optim.MaxIteration(5)(state(iteration=5))
    assert optim.EveryEpoch()(state(epoch_finished=True)) and not optim.EveryEpoch()(state())
    every3 = optim.SeveralIteration(3)
    assert [it for it in range(10) if every3(state(iteration=it))] == [3, 6, 9]
    assert optim.MaxScore(0.9)(state(score=0.95)) and not optim.MaxScore(0.9)(state(score=0.9))
    assert not optim.MaxScore(0.9)(state())
    assert optim.MinLoss(0.1)(state(loss=0.05)) and not optim.MinLoss(0.1)(state(loss=float("nan")))
    both = optim.TriggerAnd(optim.MaxEpoch(1), optim.MinLoss(0.1))
    either = optim.TriggerOr(optim.MaxEpoch(1), optim.MinLoss(0.1))
    assert not both(state(epoch=2, loss=0.2)) and both(state(epoch=2, loss=0.05))
    assert either(state(epoch=2, loss=0.2)) and not either(state(epoch=1, loss=0.2))
    with pytest.raises(ValueError, match="interval"):
        optim.SeveralIteration(0)


def test_gradient_clipping_matches_torch():
    torch = pytest.importorskip("torch")
    g = np.random.default_rng(0).normal(size=50) * 3
    ours = g.copy()
    norm = optim.clip_by_global_norm(ours, 2.0)
    t = torch.nn.Parameter(torch.zeros(50, dtype=torch.float64))
    t.grad = torch.tensor(g)
    ref_norm = torch.nn.utils.clip_grad_norm_([t], 2.0)
    assert norm == pytest.approx(float(ref_norm), rel=1e-12)
    np.testing.assert_allclose(ours, t.grad.numpy(), rtol=1e-6)  # torch adds 1e-6 to the norm
    assert np.linalg.norm(ours) == pytest.approx(2.0, rel=1e-12)
    # a block with the total squared norm of all blocks clips exactly like the whole
    whole, a, b = g.copy(), g[:20].copy(), g[20:].copy()
    total = optim.clipping.squared_norm(a) + optim.clipping.squared_norm(b)
    optim.clip_by_global_norm(whole, 2.0)
    optim.clip_by_global_norm(a, 2.0, total)
    optim.clip_by_global_norm(b, 2.0, total)
    np.testing.assert_allclose(np.concatenate([a, b]), whole, rtol=1e-15)
    small = np.array([0.1, -0.2])
    optim.clip_by_global_norm(small, 2.0)
    np.testing.assert_array_equal(small, [0.1, -0.2])
    c = g.copy()
    optim.clip_by_value(c, -1.0, 0.5)
    np.testing.assert_array_equal(c, np.clip(g, -1.0, 0.5))


def test_lbfgs_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 5))
    y = (x @ rng.normal(size=5) + 0.3 * rng.normal(size=40) > 0).astype(np.float64)
    w0 = rng.normal(size=5) * 0.1

    def loss_and_grad(w):
        z = x @ w
        loss = np.mean(np.logaddexp(0, z) - y * z) + 0.01 * w @ w
        grad = x.T @ (1 / (1 + np.exp(-z)) - y) / len(y) + 0.02 * w
        return loss, grad

    w, g = w0.copy(), np.zeros(5)
    method = optim.LBFGS(learning_rate=0.5, max_iter=5, history_size=3)

    def feval():
        loss, grad = loss_and_grad(w)
        g[...] = grad
        return loss

    tw = torch.nn.Parameter(torch.tensor(w0))
    topt = torch.optim.LBFGS([tw], lr=0.5, max_iter=5, history_size=3)
    xt, yt = torch.tensor(x), torch.tensor(y)

    def closure():
        topt.zero_grad()
        z = xt @ tw
        loss = torch.mean(torch.nn.functional.softplus(z) - yt * z) + 0.01 * tw @ tw
        loss.backward()
        return loss

    for _ in range(4):
        ours = method.optimize(feval, w, g)
        theirs = float(topt.step(closure).detach())
        assert ours == pytest.approx(theirs, rel=1e-12)
        np.testing.assert_allclose(w, tw.detach().numpy(), rtol=1e-10)
    assert method.state["func_evals"] == topt.state[tw]["func_evals"]
    with pytest.raises(TypeError, match="optimize"):
        method.update(w, g)
