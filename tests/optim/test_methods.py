"""Each update rule against its written formula (scalar Python, element by element) and torch."""
import math

import numpy as np
import pytest

from ember import optim

GRADS = [np.array([0.5, -1.0, 2.0, 0.0]), np.array([0.1, 0.3, -0.7, 1.5]), np.array([-0.4, 0.2, 0.05, -2.0]),
         np.array([1.0, -1.0, 0.5, 0.25])]
START = np.array([1.0, -2.0, 0.5, 3.0])


def golden(step_fn, state_init):
    """Apply a scalar rule ``step_fn(p, g, s, t) -> p`` element by element over GRADS."""
    out = []
    for i in range(len(START)):
        p, s = START[i], dict(state_init)
        for t, g in enumerate(GRADS, start=1):
            p = step_fn(p, g[i], s, t)
        out.append(p)
    return np.array(out)


def sgd_scalar(lr, momentum=0.0, dampening=0.0, nesterov=False, wd=0.0):
    def step(p, g, s, t):
        g = g + wd * p
        if momentum:
            s["v"] = g if t == 1 else momentum * s["v"] + (1 - dampening) * g
            g = g + momentum * s["v"] if nesterov else s["v"]
        return p - lr * g
    return step


def adam_scalar(lr, b1, b2, eps, wd=0.0, decoupled=False):
    def step(p, g, s, t):
        if decoupled:
            p = p * (1 - lr * wd)
        else:
            g = g + wd * p
        s["m"] = b1 * s["m"] + (1 - b1) * g
        s["v"] = b2 * s["v"] + (1 - b2) * g * g
        return p - lr * (s["m"] / (1 - b1 ** t)) / (math.sqrt(s["v"] / (1 - b2 ** t)) + eps)
    return step


def adamax_scalar(lr, b1, b2, eps):
    def step(p, g, s, t):
        s["m"] = b1 * s["m"] + (1 - b1) * g
        s["u"] = max(b2 * s["u"], abs(g) + eps)
        return p - lr / (1 - b1 ** t) * s["m"] / s["u"]
    return step


def rmsprop_scalar(lr, rho, eps, momentum=0.0, centered=False):
    def step(p, g, s, t):
        s["v"] = rho * s["v"] + (1 - rho) * g * g
        if centered:
            s["a"] = rho * s["a"] + (1 - rho) * g
            d = g / (math.sqrt(s["v"] - s["a"] ** 2) + eps)
        else:
            d = g / (math.sqrt(s["v"]) + eps)
        if momentum:
            s["b"] = momentum * s["b"] + d
            d = s["b"]
        return p - lr * d
    return step


def adagrad_scalar(lr, decay, init, eps):
    def step(p, g, s, t):
        s["s"] = s.get("s", init) + g * g
        return p - lr / (1 + (t - 1) * decay) * g / (math.sqrt(s["s"]) + eps)
    return step


def adadelta_scalar(lr, rho, eps):
    def step(p, g, s, t):
        s["v"] = rho * s["v"] + (1 - rho) * g * g
        d = math.sqrt(s["u"] + eps) / math.sqrt(s["v"] + eps) * g
        s["u"] = rho * s["u"] + (1 - rho) * d * d
        return p - lr * d
    return step


CASES = [
    ("sgd", lambda: optim.SGD(0.1), sgd_scalar(0.1), {}),
    ("sgd_wd", lambda: optim.SGD(0.1, weight_decay=0.01), sgd_scalar(0.1, wd=0.01), {}),
    ("momentum", lambda: optim.SGD(0.1, momentum=0.9), sgd_scalar(0.1, 0.9), {}),
    ("momentum_dampening", lambda: optim.SGD(0.1, momentum=0.9, dampening=0.3), sgd_scalar(0.1, 0.9, 0.3), {}),
    ("nesterov_wd", lambda: optim.SGD(0.05, momentum=0.8, nesterov=True, weight_decay=1e-2),
     sgd_scalar(0.05, 0.8, nesterov=True, wd=1e-2), {}),
    ("adam", lambda: optim.Adam(0.01), adam_scalar(0.01, 0.9, 0.999, 1e-8), {"m": 0.0, "v": 0.0}),
    ("adam_wd", lambda: optim.Adam(0.01, weight_decay=0.1), adam_scalar(0.01, 0.9, 0.999, 1e-8, 0.1),
     {"m": 0.0, "v": 0.0}),
    ("adamw", lambda: optim.AdamW(0.01, weight_decay=0.1), adam_scalar(0.01, 0.9, 0.999, 1e-8, 0.1, True),
     {"m": 0.0, "v": 0.0}),
    ("adamax", lambda: optim.Adamax(0.02), adamax_scalar(0.02, 0.9, 0.999, 1e-8), {"m": 0.0, "u": 0.0}),
    ("rmsprop", lambda: optim.RMSprop(0.01), rmsprop_scalar(0.01, 0.9, 1e-7), {"v": 0.0}),
    ("rmsprop_centered_momentum", lambda: optim.RMSprop(0.01, momentum=0.5, centered=True),
     rmsprop_scalar(0.01, 0.9, 1e-7, 0.5, True), {"v": 0.0, "a": 0.0, "b": 0.0}),
    ("adagrad", lambda: optim.Adagrad(0.1, lr_decay=0.01, initial_accumulator_value=0.1),
     adagrad_scalar(0.1, 0.01, 0.1, 1e-10), {}),
    ("adadelta", lambda: optim.Adadelta(1.0), adadelta_scalar(1.0, 0.9, 1e-6), {"v": 0.0, "u": 0.0}),
]


@pytest.mark.parametrize("name,make,rule,state", CASES, ids=[c[0] for c in CASES])
def test_update_rule_matches_formula(name, make, rule, state):
    method = make()
    param = START.copy()
    for g in GRADS:
        method.update(param, g)
    np.testing.assert_allclose(param, golden(rule, state), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name,make,rule,state", CASES, ids=[c[0] for c in CASES])
def test_state_round_trip_continues_exactly(name, make, rule, state):
    a, param_a = make(), START.copy()
    for g in GRADS[:2]:
        a.update(param_a, g)
    saved = a.state_dict()
    b, param_b = make(), param_a.copy()
    b.load_state_dict(saved)
    for g in GRADS[2:]:
        a.update(param_a, g)
        b.update(param_b, g)
    np.testing.assert_array_equal(param_a, param_b)


def test_blocks_updated_separately_equal_one_update():
    """A Spark owner updates only its block; the blocks' results must equal one whole update."""
    whole, param = optim.Adam(0.01), START.copy()
    parts = [optim.Adam(0.01), optim.Adam(0.01)]
    blocks = START.copy()
    for g in GRADS:
        whole.update(param, g)
        for k, sl in enumerate((slice(0, 3), slice(3, 4))):
            parts[k].update(blocks[sl], g[sl])
    np.testing.assert_array_equal(param, blocks)


TORCH = [
    ("SGD", lambda: optim.SGD(0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
     dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)),
    ("Adam", lambda: optim.Adam(0.01, weight_decay=0.01), dict(lr=0.01, weight_decay=0.01)),
    ("AdamW", lambda: optim.AdamW(0.01, weight_decay=0.1), dict(lr=0.01, weight_decay=0.1)),
    ("Adamax", lambda: optim.Adamax(0.02), dict(lr=0.02)),
    ("RMSprop", lambda: optim.RMSprop(0.01, rho=0.99, epsilon=1e-8, momentum=0.3, centered=True),
     dict(lr=0.01, alpha=0.99, eps=1e-8, momentum=0.3, centered=True)),
    ("Adagrad", lambda: optim.Adagrad(0.1, lr_decay=0.01), dict(lr=0.1, lr_decay=0.01)),
    ("Adadelta", lambda: optim.Adadelta(1.0), dict(lr=1.0)),
]


@pytest.mark.parametrize("name,make,kwargs", TORCH, ids=[c[0] for c in TORCH])
def test_update_rule_matches_torch(name, make, kwargs):
    torch = pytest.importorskip("torch")
    p = torch.tensor(START.copy(), requires_grad=True)
    opt = getattr(torch.optim, name)([p], **kwargs)
    method, param = make(), START.copy()
    for g in GRADS:
        p.grad = torch.tensor(g)
        opt.step()
        method.update(param, g)
    np.testing.assert_allclose(param, p.detach().numpy(), rtol=1e-10, atol=1e-12)


def test_bad_arguments_are_clear():
    with pytest.raises(ValueError, match="learning_rate"):
        optim.SGD(0)
    with pytest.raises(ValueError, match="nesterov"):
        optim.SGD(0.1, nesterov=True)
    with pytest.raises(ValueError, match="shape"):
        optim.Adam().update(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="Adam"):
        optim.SGD().load_state_dict(optim.Adam().state_dict())


def _keras_sgd(**kw):
    from ember import optimizers

    return optimizers.SGD(**kw)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kernels", ["numba", "reference"])
@pytest.mark.parametrize("make", [
    lambda: optim.SGD(0.1),
    lambda: optim.SGD(0.1, momentum=0.9, weight_decay=1e-3),
    lambda: optim.SGD(0.1, momentum=0.9, nesterov=True, learning_rate_decay=0.1),
    lambda: optim.SGD(0.1, momentum=0.5, dampening=0.3),
    lambda: _keras_sgd(learning_rate=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
    lambda: _keras_sgd(learning_rate=0.1, momentum=0.9, use_ema=True, ema_overwrite_frequency=3),
], ids=["plain", "momentum-l2", "nesterov-decay", "dampening", "keras-nesterov-decoupled", "keras-ema"])
def test_update_mean_is_update_with_the_mean_to_the_last_bit(make, kernels, dtype):
    """SGD's fused update_mean (the distributed owner's: two gradient sums and a sample count) gives the bits of
    update((a + b) / count), learning-rate changes (Keras's momentum rescaling, a rate of 0) included."""
    from ember.kernels import get_cpu_kernels, set_cpu_kernels

    before = get_cpu_kernels()
    set_cpu_kernels(kernels)
    try:
        rng = np.random.default_rng(3)
        start = rng.normal(size=513).astype(dtype)
        fused, plain = make(), make()
        assert fused.fuses_mean(start)
        p_fused, p_plain = start.copy(), start.copy()
        for step, lr in enumerate([0.1, 0.1, 0.05, 0.0, 0.2]):
            a, b = (rng.normal(size=513).astype(dtype) * 10 for _ in range(2))
            fused.update_mean(p_fused, (a, b), 24 + step, lr)
            mean = a + b
            mean /= 24 + step
            plain.update(p_plain, mean, lr)
            np.testing.assert_array_equal(p_fused, p_plain)
        for key, value in plain.state.items():
            np.testing.assert_array_equal(fused.state[key], value)
        assert not np.array_equal(p_fused, start)
    finally:
        set_cpu_kernels(before)


def test_update_mean_of_a_rule_without_a_fused_form_forms_the_mean_first():
    a, b = np.array([1.0, 2.0]), np.array([3.0, -1.0])
    adam, reference = optim.Adam(0.1), optim.Adam(0.1)
    assert not adam.fuses_mean(a)
    p, q = np.zeros(2), np.zeros(2)
    adam.update_mean(p, (a, b), 2)
    reference.update(q, (a + b) / 2)
    np.testing.assert_array_equal(p, q)
    with pytest.raises(ValueError, match=r"update_mean: param shape \(3,\), gradient parts' shapes \(2,\)"):
        adam.update_mean(np.zeros(3), (a, b), 2)
