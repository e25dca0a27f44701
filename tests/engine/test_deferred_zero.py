"""FlatParameters.zero_grad(deferred=True): the backward pass writes the gradients it reaches and
flush_zero zeroes the rest, giving the same gradients as zeroing first, with and without a replayed step."""
import numpy as np
import pytest

from ember.engine import Tensor
from ember.engine import functional as F
from ember.engine.flat import FlatParameters
from ember.engine.replay import StepReplay

STALE = 7.0  # what the gradient buffer holds from an earlier step


def _setup(seed=0):
    rng = np.random.default_rng(seed)
    params = {
        "w": Tensor(rng.normal(size=(3, 4)), requires_grad=True),  # a product's weight: written in place
        "b": Tensor(rng.normal(size=(4,)), requires_grad=True),  # a bias: its op returns the gradient
        "s": Tensor(rng.normal(size=(4, 4)), requires_grad=True),  # used twice: written, then added to
        "unused": Tensor(rng.normal(size=(2,)), requires_grad=True),  # reached by no gradient
    }
    flat = FlatParameters(list(params.values()))
    x = rng.normal(size=(5, 3))
    return params, flat, x


def _forward(p, x):
    h = F.relu(F.matmul(x, p["w"]) + p["b"])
    return F.matmul(F.matmul(h, p["s"]), p["s"])


def _gradients(deferred, replay=False, flush=True):
    params, flat, x = _setup()
    fn = StepReplay(lambda t: _forward(params, t), list(params.values())) if replay else None
    for _ in range(2):  # the first call records the replay; the second replays it
        for g in flat.grad.values():
            g[...] = STALE
        flat.zero_grad(deferred=deferred)
        out = fn(x) if replay else _forward(params, Tensor(x))
        (out * out).sum().backward()
        if deferred and flush:
            flat.flush_zero()
    if replay:
        assert fn.replays == 1
    return {name: t.grad.copy() for name, t in params.items()}


@pytest.mark.parametrize("replay", [False, True])
def test_deferred_zeroing_gives_the_gradients_of_zeroing_first(replay):
    eager = _gradients(deferred=False, replay=replay)
    deferred = _gradients(deferred=True, replay=replay)
    assert np.all(eager["unused"] == 0) and not np.all(eager["s"] == 0)
    for name in eager:
        np.testing.assert_array_equal(deferred[name], eager[name], err_msg=name)
    # the gradients themselves, against finite differences of the loss
    params, _, x = _setup()
    for name in ("w", "b", "s"):
        p = params[name].data
        i = (0,) * p.ndim
        old = p[i]
        p[i] = old + 1e-6
        up = float(np.sum(_forward(params, Tensor(x)).numpy() ** 2))
        p[i] = old - 1e-6
        down = float(np.sum(_forward(params, Tensor(x)).numpy() ** 2))
        p[i] = old
        assert eager[name][i] == pytest.approx((up - down) / 2e-6, rel=1e-5)


def test_without_the_flush_the_unreached_gradient_keeps_its_stale_values():
    # the control: what flush_zero is for
    stale = _gradients(deferred=True, flush=False)
    assert np.all(stale["unused"] == STALE)
    np.testing.assert_array_equal(stale["w"], _gradients(deferred=False)["w"])
