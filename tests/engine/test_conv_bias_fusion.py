"""A convolution with its bias and ReLU in one op (engine/ops/conv.py Conv2DBiasActivation), and a max
pooling of its output (ConvBiasReLUMaxPool2D): the same values and gradients as the ops apart (float64 to
1e-12), against finite differences, with the convolution's output used elsewhere too, for both CPU kernel
sets; the kernel against its NumPy reference; the Conv2D layer's route."""
import numpy as np
import pytest

from ember.engine import Tensor
from ember.engine import functional as F
from ember.engine.ops import conv as conv_ops
from ember.kernels import get_kernel

CONVS = [
    # x shape, w shape, stride, pads, groups
    ((3, 12, 12, 1), (5, 5, 1, 6), (1, 1), ((2, 2), (2, 2)), 1),   # LeNet's first layer (blocked in float32)
    ((2, 9, 9, 6), (5, 5, 6, 16), (1, 1), ((0, 0), (0, 0)), 1),    # its second
    ((2, 9, 8, 4), (3, 3, 4, 8), (2, 2), ((1, 1), (1, 1)), 1),     # strided: im2col + GEMM
    ((2, 6, 6, 4), (3, 3, 2, 6), (1, 1), ((1, 1), (1, 1)), 2),     # grouped
]


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-12), (np.float32, 2e-5)])
@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("case", CONVS)
def test_kernel_matches_reference(case, relu, dtype, rtol, rng):
    x_shape, w_shape, stride, pads, groups = case
    x = rng.normal(size=x_shape).astype(dtype)
    w = rng.normal(size=w_shape).astype(dtype)
    b = rng.normal(size=w_shape[-1]).astype(dtype)
    args = (stride, (1, 1), pads, groups)
    y_ref, cols_ref = get_kernel("conv2d_bias_activation_forward", "reference")(x, w, b, relu, *args, True)
    y, cols = get_kernel("conv2d_bias_activation_forward", "numba")(x, w, b, relu, *args, True)
    assert y.dtype == dtype and y.shape == y_ref.shape and cols_ref is not None
    np.testing.assert_allclose(y, y_ref, rtol=rtol, atol=rtol * 10)
    if relu:
        assert (y >= 0).all() and (y == 0).any() and (y > 0).any()
    # the same values as the convolution, then the bias and ReLU pass
    conv = get_kernel("conv2d_forward", "numba")(x, w, *args)
    np.testing.assert_array_equal(y, get_kernel("bias_activation_forward", "numba")(conv, b, relu))
    y2, _ = get_kernel("conv2d_bias_activation_forward", "numba")(x, w, b, relu, *args, False)
    np.testing.assert_array_equal(y2, y)


def _graph(x, w, b, r, r2, case, fused, pool, also_y, need_x=True):
    """Sum of r * pool(relu(conv(x, w) + b)) (plus r2 * relu(...) when ``also_y``); without ``pool``
    r * relu(...) only. Returns the output and the gradients of x (None without ``need_x``), w and b."""
    _, _, stride, pads, groups = case
    xt, wt, bt = Tensor(x, requires_grad=need_x), Tensor(w, requires_grad=True), Tensor(b, requires_grad=True)
    if fused:
        y = F.conv2d(xt, wt, stride, (1, 1), pads, groups, bias=bt, activation="relu")
        assert type(y._ctx) is conv_ops.Conv2DBiasActivation
    else:
        y = F.bias_add(conv_ops.Conv2D.apply(xt, wt, stride=stride, dilation=(1, 1), pads=pads, groups=groups), bt,
                       activation="relu")
    out = y
    if pool:
        out = F.max_pool2d(y, (2, 2), (2, 2)) if fused else conv_ops.MaxPool2D.apply(y, pool=(2, 2), stride=(2, 2))
        if fused:
            assert type(out._ctx) is conv_ops.ConvBiasReLUMaxPool2D
    loss = F.sum(out * Tensor(r))
    if also_y:
        loss = loss + F.sum(y * Tensor(r2))
    loss.backward()
    return out.numpy(), xt.grad, wt.grad, bt.grad


@pytest.mark.parametrize("pool, also_y, need_x", [(False, False, True), (True, False, True), (True, True, True),
                                                  (True, False, False)])
@pytest.mark.parametrize("case", CONVS)
def test_fused_ops_equal_the_ops_apart(case, pool, also_y, need_x, kernels, rng):
    x_shape, w_shape = case[:2]
    x = rng.normal(size=x_shape)
    w = rng.normal(size=w_shape) * 0.3
    b = rng.normal(size=w_shape[-1]) * 0.1
    y_shape = F.conv2d(Tensor(x), Tensor(w), case[2], (1, 1), case[3], case[4]).shape
    out_shape = (y_shape[0], y_shape[1] // 2, y_shape[2] // 2, y_shape[3]) if pool else y_shape
    r, r2 = rng.normal(size=out_shape), rng.normal(size=y_shape)
    apart = _graph(x, w, b, r, r2, case, False, pool, also_y, need_x)
    fused = _graph(x, w, b, r, r2, case, True, pool, also_y, need_x)
    np.testing.assert_array_equal(fused[0], apart[0])
    assert (fused[1] is None) is (apart[1] is None) is (not need_x)
    for got, want in zip(fused[1 if need_x else 2:], apart[1 if need_x else 2:]):
        assert got.dtype == np.float64 and got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    assert np.count_nonzero(fused[1 if need_x else 2]) > 0


@pytest.mark.parametrize("pool", [False, True])
def test_fused_ops_gradients_against_finite_differences(pool, rng):
    from layer_testing import numeric_gradient, relative_error

    case = CONVS[0]
    x = rng.normal(size=(2, 6, 6, 1))
    w = rng.normal(size=case[1]) * 0.3
    b = rng.normal(size=case[1][-1]) * 0.1
    r = rng.normal(size=(2, 3, 3, 6) if pool else (2, 6, 6, 6))

    def loss():
        y = F.conv2d(Tensor(x), Tensor(w), (1, 1), (1, 1), case[3], bias=Tensor(b), activation="relu")
        return float(((F.max_pool2d(y, (2, 2), (2, 2)) if pool else y).numpy() * r).sum())

    _, dx, dw, db = _graph(x, w, b, r, None, (None, None) + case[2:], True, pool, False)
    for got, array in ((dx, x), (dw, w), (db, b)):
        assert relative_error(got, numeric_gradient(loss, array)) < 1e-8


def test_float32_lenet_layer_equals_the_ops_apart(rng):
    """float32, LeNet's first layer with pooling: the blocked kernel's bias and ReLU, and all gradients."""
    case = ((4, 28, 28, 1), (5, 5, 1, 6), (1, 1), ((2, 2), (2, 2)), 1)
    x = rng.normal(size=case[0]).astype(np.float32)
    w = (rng.normal(size=case[1]) * 0.3).astype(np.float32)
    b = (rng.normal(size=6) * 0.1).astype(np.float32)
    r = rng.normal(size=(4, 14, 14, 6)).astype(np.float32)
    apart = _graph(x, w, b, r, None, case, False, True, False)
    fused = _graph(x, w, b, r, None, case, True, True, False)
    np.testing.assert_array_equal(fused[0], apart[0])
    for got, want in zip(fused[1:], apart[1:]):
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_conv2d_bias_arguments_are_checked():
    x, w = Tensor(np.ones((1, 4, 4, 1))), Tensor(np.ones((2, 2, 1, 1)))
    with pytest.raises(ValueError, match="activation must be None or 'relu'"):
        F.conv2d(x, w, bias=Tensor(np.zeros(1)), activation="tanh")
    with pytest.raises(ValueError, match="with a bias only"):
        F.conv2d(x, w, activation="relu")


def test_conv2d_layer_takes_the_fused_op_for_relu_and_linear():
    from ember import layers as L

    x = Tensor(np.random.default_rng(1).normal(size=(2, 8, 8, 3)).astype(np.float32))
    for activation, fused in (("relu", True), (None, True), ("tanh", False)):
        layer = L.Conv2D(4, 3, activation=activation)
        y = layer(x, training=True)
        assert (type(y._ctx) is conv_ops.Conv2DBiasActivation) is fused, activation
    layer = L.Conv2D(4, 3, activation="relu", use_bias=False)
    assert type(layer(x, training=True)._ctx) is not conv_ops.Conv2DBiasActivation


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("x_shape, w_shape, pads", [
    ((3, 12, 12, 1), (5, 5, 1, 6), ((2, 2), (2, 2))),   # LeNet's first layer: the direct kernels, even output
    ((2, 9, 11, 2), (3, 3, 2, 5), ((1, 1), (0, 0))),    # odd output rows and columns (left out of the windows)
    ((2, 8, 8, 4), (3, 3, 4, 12), ((1, 1), (1, 1))),    # too many channels for the direct kernels
])
def test_weight_gradient_from_the_pooled_gradient(x_shape, w_shape, pads, dtype, rng):
    """conv2d_backward_weight_pooled (numba, reference) equals the pooling's scatter then the weight gradient."""
    x = rng.normal(size=x_shape).astype(dtype)
    w = rng.normal(size=w_shape).astype(dtype)
    args = ((1, 1), (1, 1), pads, 1)
    y = get_kernel("conv2d_forward", "reference")(x, w, *args)
    pool_args = ((2, 2), (2, 2), ((0, 0), (0, 0)))
    _, arg = get_kernel("max_pool2d_forward", "reference")(y, *pool_args)
    dp = rng.normal(size=arg.shape).astype(dtype)
    dp[0, 0, 0] = 0.0
    dy = get_kernel("max_pool2d_backward", "reference")(dp, arg, y.shape, *pool_args)
    want = get_kernel("conv2d_backward_weight", "reference")(x, dy, w.shape, *args)
    rtol = 1e-12 if dtype == np.float64 else 2e-5
    for kind in ("reference", "numba"):
        got = get_kernel("conv2d_backward_weight_pooled", kind)(x, dp, arg, y.shape, w.shape, *args, pool_args)
        assert got.dtype == dtype and got.shape == w.shape
        np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * 10)


def test_first_layer_weight_gradient_against_finite_differences(rng):
    """The input needs no gradient (a first layer): the weight gradient comes from the pooled gradient."""
    from layer_testing import numeric_gradient, relative_error

    x = rng.normal(size=(2, 8, 8, 1))
    w = rng.normal(size=(5, 5, 1, 6)) * 0.3
    b = rng.normal(size=6) * 0.1
    r = rng.normal(size=(2, 4, 4, 6))

    def run():
        wt, bt = Tensor(w, requires_grad=True), Tensor(b, requires_grad=True)
        y = F.conv2d(Tensor(x), wt, pads=((2, 2), (2, 2)), bias=bt, activation="relu")
        p = F.max_pool2d(y, (2, 2), (2, 2))
        assert type(p._ctx) is conv_ops.ConvBiasReLUMaxPool2D and not p._ctx.needs_input_grad[0]
        return p, wt, bt

    def loss():
        return float((run()[0].numpy() * r).sum())

    p, wt, bt = run()
    F.sum(p * Tensor(r)).backward()
    assert relative_error(wt.grad, numeric_gradient(loss, w)) < 1e-8
    assert relative_error(bt.grad, numeric_gradient(loss, b)) < 1e-8
