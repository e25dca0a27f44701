"""max_pool2d of a bias + ReLU output (engine/ops/conv.py BiasReLUMaxPool2D): the same values and
gradients as the two ops apart (float64 to 1e-12), against finite differences, with the ReLU output
used elsewhere too, for both CPU kernel sets."""
import numpy as np
import pytest

from ember.engine import Tensor
from ember.engine import functional as F
from ember.engine.ops import conv as conv_ops

POOLS = [
    # x shape, pool, stride, pads
    ((3, 8, 8, 6), (2, 2), (2, 2), ((0, 0), (0, 0))),  # LeNet's kind: 2x2 windows, even size
    ((2, 7, 9, 3), (2, 2), (2, 2), ((0, 0), (0, 0))),  # a row and a column left out of the windows
    ((2, 7, 7, 4), (3, 3), (2, 2), ((1, 1), (1, 1))),  # overlapping windows, padding
]


def _graph(z, b, r, r2, shape_args, fused, also_x):
    """Sum of r * pool(relu(z + b)) (plus r2 * relu(z + b) when ``also_x``), and the pooled output."""
    zt, bt = Tensor(z, requires_grad=True), Tensor(b, requires_grad=True)
    x = F.bias_add(zt, bt, activation="relu")
    pool, stride, pads = shape_args
    if fused:
        p = F.max_pool2d(x, pool, stride, pads)
        assert type(p._ctx) is conv_ops.BiasReLUMaxPool2D
    else:
        p = conv_ops.MaxPool2D.apply(x, pool=pool, stride=stride, pads=pads)
    loss = F.sum(p * Tensor(r))
    if also_x:
        loss = loss + F.sum(x * Tensor(r2))
    loss.backward()
    return p.numpy(), zt.grad, bt.grad


@pytest.mark.parametrize("also_x", [False, True])
@pytest.mark.parametrize("case", POOLS)
def test_fused_pooling_equals_the_ops_apart(case, also_x, kernels, rng):
    shape, pool, stride, pads = case
    z = rng.normal(size=shape)
    z[0, 0, 0] = -z[0, 0, 0] ** 2 - 1.0  # some windows entirely below zero: no gradient through them
    z[0, 0, 1] = z[0, 1, 0] = z[0, 1, 1] = z[0, 0, 0]
    b = rng.normal(size=shape[-1]) * 0.1
    out = F.max_pool2d(F.bias_add(Tensor(z), Tensor(b), activation="relu"), pool, stride, pads).numpy()
    r = rng.normal(size=out.shape)
    r2 = rng.normal(size=shape)
    p0, dz0, db0 = _graph(z, b, r, r2, (pool, stride, pads), False, also_x)
    p1, dz1, db1 = _graph(z, b, r, r2, (pool, stride, pads), True, also_x)
    np.testing.assert_array_equal(p1, p0)
    np.testing.assert_array_equal(out, p0)  # without gradients: the plain pooling
    np.testing.assert_allclose(dz1, dz0, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(db1, db0, rtol=1e-12, atol=1e-12)
    assert dz1.dtype == np.float64 and db1.shape == b.shape
    assert np.count_nonzero(dz1) > 0


def test_fused_pooling_gradients_against_finite_differences(rng):
    from layer_testing import numeric_gradient, relative_error

    z = rng.normal(size=(2, 6, 6, 3))
    b = rng.normal(size=3) * 0.1
    r = rng.normal(size=(2, 3, 3, 3))

    def loss():
        x = F.bias_add(Tensor(z), Tensor(b), activation="relu")
        return float((F.max_pool2d(x, (2, 2), (2, 2)).numpy() * r).sum())

    _, dz, db = _graph(z, b, r, None, ((2, 2), (2, 2), ((0, 0), (0, 0))), True, False)
    assert relative_error(dz, numeric_gradient(loss, z)) < 1e-8
    assert relative_error(db, numeric_gradient(loss, b)) < 1e-8


def test_fused_pooling_float32_lenet_shape(rng):
    z = rng.normal(size=(4, 28, 28, 6)).astype(np.float32)
    b = (rng.normal(size=6) * 0.1).astype(np.float32)
    r = rng.normal(size=(4, 14, 14, 6)).astype(np.float32)
    p0, dz0, db0 = _graph(z, b, r, None, ((2, 2), (2, 2), ((0, 0), (0, 0))), False, False)
    p1, dz1, db1 = _graph(z, b, r, None, ((2, 2), (2, 2), ((0, 0), (0, 0))), True, False)
    assert dz1.dtype == np.float32 and db1.dtype == np.float32
    np.testing.assert_array_equal(p1, p0)
    np.testing.assert_array_equal(dz1, dz0)  # the same values, scattered to the same places
    np.testing.assert_allclose(db1, db0, rtol=1e-5)
