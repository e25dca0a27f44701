"""Every Numba CPU kernel against the NumPy reference (the specification) on random shapes:
odd sizes, strides, asymmetric padding, dilation, batch size 1, float32 and float64."""
import numpy as np
import pytest

from ember.kernels import get_cpu_kernels, get_kernel, set_cpu_kernels

pytest.importorskip("numba")


pytestmark = pytest.mark.usefixtures("parallel_mode")  # each test serial and threaded (conftest)

CONV_CASES = [
    # n, h, w, c, kh, kw, f, stride, dilation, pads
    (1, 7, 5, 1, 3, 3, 2, (1, 1), (1, 1), ((0, 0), (0, 0))),
    (2, 9, 11, 3, 3, 2, 4, (2, 1), (1, 1), ((1, 0), (0, 2))),
    (3, 8, 8, 5, 5, 5, 6, (1, 1), (1, 1), ((2, 2), (2, 2))),
    (2, 13, 10, 4, 3, 3, 3, (3, 2), (2, 1), ((1, 2), (2, 1))),
    (1, 6, 6, 7, 1, 1, 5, (1, 1), (1, 1), ((0, 0), (0, 0))),   # pointwise, no im2col
    (2, 7, 9, 6, 1, 1, 4, (2, 2), (1, 1), ((0, 0), (0, 0))),   # strided 1x1
    (4, 10, 10, 2, 7, 7, 3, (2, 2), (1, 1), ((3, 3), (3, 3))),
    (1, 5, 5, 2, 3, 3, 2, (1, 1), (2, 2), ((2, 2), (2, 2))),   # dilation with padding
    (2, 4, 3, 3, 3, 5, 2, (1, 2), (1, 2), ((2, 1), (3, 4))),   # horizontal dilation, taps cut at both ends
    (1, 3, 2, 2, 3, 5, 3, (1, 1), (1, 1), ((1, 1), (2, 2))),   # kernel wider than the input
    (2, 9, 8, 1, 3, 3, 4, (2, 3), (2, 1), ((1, 2), (0, 1))),   # one channel (transposed im2col), strided
]


def out_hw(h, k, s, d, pad):
    return (h + sum(pad) - (k - 1) * d - 1) // s + 1


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-12), (np.float32, 2e-5)])
@pytest.mark.parametrize("case", CONV_CASES)
def test_conv_kernels_match_reference(case, dtype, rtol, rng):
    n, h, w, c, kh, kw, f, stride, dilation, pads = case
    x = rng.normal(size=(n, h, w, c)).astype(dtype)
    k = rng.normal(size=(kh, kw, c, f)).astype(dtype)
    ho, wo = out_hw(h, kh, stride[0], dilation[0], pads[0]), out_hw(w, kw, stride[1], dilation[1], pads[1])
    dy = rng.normal(size=(n, ho, wo, f)).astype(dtype)
    args = (stride, dilation, pads, 1)
    for name, inputs in (("conv2d_forward", (x, k)), ("conv2d_backward_weight", (x, dy, k.shape)),
                         ("conv2d_backward_data", (dy, k, x.shape))):
        fast = get_kernel(name, "numba")(*inputs, *args)
        ref = get_kernel(name, "reference")(*inputs, *args)
        assert fast.shape == ref.shape and fast.dtype == ref.dtype, name
        np.testing.assert_allclose(fast, ref, rtol=rtol, atol=rtol * 10, err_msg=name)


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-12), (np.float32, 2e-5)])
@pytest.mark.parametrize("n, h, w, c, k, mult, groups, stride, dilation, pads", [
    (1, 6, 6, 4, 3, 1, 4, (1, 1), (1, 1), ((1, 1), (1, 1))),      # depthwise
    (2, 9, 7, 3, 3, 2, 3, (2, 1), (1, 1), ((1, 0), (0, 1))),      # depthwise, multiplier 2
    (3, 8, 8, 5, 5, 1, 5, (2, 2), (2, 2), ((4, 4), (4, 4))),      # depthwise, dilated
    (2, 6, 6, 4, 3, 2, 2, (1, 1), (1, 1), ((1, 1), (1, 1))),      # groups of 2 channels: reference
])
def test_grouped_and_depthwise_conv_match_reference(n, h, w, c, k, mult, groups, stride, dilation, pads, dtype,
                                                    rtol, rng):
    x = rng.normal(size=(n, h, w, c)).astype(dtype)
    kernel = rng.normal(size=(k, k, c // groups, c * mult if groups == c else 4)).astype(dtype)
    args = (stride, dilation, pads, groups)
    y = get_kernel("conv2d_forward", "reference")(x, kernel, *args)
    np.testing.assert_allclose(get_kernel("conv2d_forward", "numba")(x, kernel, *args), y, rtol=rtol, atol=rtol)
    fast_y, cols = get_kernel("conv2d_forward_cols", "numba")(x, kernel, *args)
    np.testing.assert_allclose(fast_y, y, rtol=rtol, atol=rtol)
    dy = rng.normal(size=y.shape).astype(dtype)
    for name, inputs in (("conv2d_backward_weight", (x, dy, kernel.shape)),
                         ("conv2d_backward_data", (dy, kernel, x.shape))):
        np.testing.assert_allclose(get_kernel(name, "numba")(*inputs, *args),
                                   get_kernel(name, "reference")(*inputs, *args), rtol=rtol, atol=rtol * 10,
                                   err_msg=name)


POOL_CASES = [
    (1, 4, 4, 1, (2, 2), (2, 2), ((0, 0), (0, 0))),
    (3, 7, 9, 5, (3, 3), (2, 2), ((1, 1), (1, 1))),
    (2, 8, 5, 3, (2, 3), (1, 2), ((0, 1), (1, 1))),
    (2, 6, 6, 4, (3, 3), (1, 1), ((1, 1), (1, 1))),
    (2, 7, 9, 3, (2, 2), (2, 2), ((0, 0), (0, 0))),  # the unrolled 2x2 kernels; odd sizes drop a row/column
    (2, 6, 4, 16, (2, 2), (2, 2), ((0, 0), (0, 0))),  # 2x2 with 8+ channels: compared without branches
    (3, 8, 7, 5, (2, 2), (2, 2), ((0, 0), (0, 0))),  # 2x2, an even height and an odd width
    (1, 28, 28, 6, (2, 2), (2, 2), ((0, 0), (0, 0))),
    (2, 5, 4, 3, (3, 2), (2, 1), ((3, 1), (2, 2))),  # windows wholly in the padding (no gradient there)
]


@pytest.mark.parametrize("case", [POOL_CASES[0], POOL_CASES[1], POOL_CASES[-3], POOL_CASES[-2]])
def test_max_pool_ties_go_to_the_first_tap(case, rng):
    n, h, w, c, pool, stride, pads = case
    x = rng.integers(0, 2, size=(n, h, w, c)).astype(np.float32)  # many ties
    y_fast, arg_fast = get_kernel("max_pool2d_forward", "numba")(x, pool, stride, pads)
    y_ref, arg_ref = get_kernel("max_pool2d_forward", "reference")(x, pool, stride, pads)
    np.testing.assert_array_equal(y_fast, y_ref)
    np.testing.assert_array_equal(arg_fast, arg_ref)


@pytest.mark.parametrize("mode", ["never", "always"])
@pytest.mark.parametrize("shape", [(3, 8, 8, 6), (2, 7, 9, 3), (2, 8, 7, 2)])
def test_max_pool_2x2_gradient_against_finite_differences(shape, mode, rng):
    """float64, serial and threaded: the 2x2 max pooling's backward kernel is the gradient of its forward."""
    from layer_testing import numeric_gradient, relative_error

    from ember.kernels.cpu.jit import THREADS, set_parallel_mode

    x = rng.normal(size=shape)
    forward, backward = get_kernel("max_pool2d_forward", "numba"), get_kernel("max_pool2d_backward", "numba")
    args = ((2, 2), (2, 2), ((0, 0), (0, 0)))
    before = THREADS["mode"]
    set_parallel_mode(mode)
    try:
        y, arg = forward(x, *args)
        r = rng.normal(size=y.shape)
        dx = backward(r, arg, x.shape, *args)
    finally:
        set_parallel_mode(before)
    assert relative_error(dx, numeric_gradient(lambda: float((forward(x, *args)[0] * r).sum()), x, eps=1e-7)) < 1e-8


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # averages of windows wholly in the padding: 0/0
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", POOL_CASES)
def test_pool_kernels_match_reference(case, dtype, rng):
    n, h, w, c, pool, stride, pads = case
    x = rng.normal(size=(n, h, w, c)).astype(dtype)
    y_fast, arg_fast = get_kernel("max_pool2d_forward", "numba")(x, pool, stride, pads)
    y_ref, arg_ref = get_kernel("max_pool2d_forward", "reference")(x, pool, stride, pads)
    np.testing.assert_array_equal(y_fast, y_ref)
    np.testing.assert_array_equal(arg_fast, arg_ref)
    dy = rng.normal(size=y_ref.shape).astype(dtype)
    np.testing.assert_allclose(get_kernel("max_pool2d_backward", "numba")(dy, arg_fast, x.shape, pool, stride, pads),
                               get_kernel("max_pool2d_backward", "reference")(dy, arg_ref, x.shape, pool, stride, pads),
                               rtol=1e-12 if dtype == np.float64 else 1e-5, atol=1e-6)  # overlapping windows add up
    rtol = 1e-12 if dtype == np.float64 else 1e-5
    a_fast = get_kernel("avg_pool2d_forward", "numba")(x, pool, stride, pads)
    a_ref = get_kernel("avg_pool2d_forward", "reference")(x, pool, stride, pads)
    np.testing.assert_allclose(a_fast, a_ref, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(get_kernel("avg_pool2d_backward", "numba")(dy, x.shape, pool, stride, pads),
                               get_kernel("avg_pool2d_backward", "reference")(dy, x.shape, pool, stride, pads),
                               rtol=rtol, atol=rtol)


@pytest.mark.parametrize("max_value, slope", [(None, 0.0), (6.0, 0.0), (None, 0.2), (1.0, 0.1)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_relu_kernels_match_reference(max_value, slope, dtype, rng):
    x = (rng.normal(size=(3, 5, 7)) * 4).astype(dtype)
    x[0, 0, :3] = [0.0, 6.0, 1.0]  # the boundaries
    g = rng.normal(size=x.shape).astype(dtype)
    for name, args in (("relu_forward", (x, max_value, slope)), ("relu_backward", (g, x, max_value, slope))):
        fast, ref = get_kernel(name, "numba")(*args), get_kernel(name, "reference")(*args)
        assert fast.dtype == ref.dtype == dtype
        np.testing.assert_array_equal(fast, ref, err_msg=name)
        # the zeros are +0.0 (np.maximum's and np.where's), not -0.0 (a negative value times a zero slope)
        np.testing.assert_array_equal(np.signbit(fast[fast == 0]), np.signbit(ref[ref == 0]), err_msg=name)


@pytest.mark.parametrize("max_value", [None, 6.0])
def test_relu_of_a_negative_input_is_plus_zero(max_value):
    """+0.0 for negative inputs (not -0.0, a negative value times the zero slope), 0 for -inf, NaN passes."""
    x = np.array([-3.0, -0.5, -np.inf, 2.0, np.nan], dtype=np.float32)
    for kernels in ("numba", "reference"):
        y = get_kernel("relu_forward", kernels)(x, max_value, 0.0)
        assert not np.signbit(y[:3]).any() and (y[:3] == 0).all() and y[3] == 2.0 and np.isnan(y[4]), kernels
        dx = get_kernel("relu_backward", kernels)(-np.ones_like(x), x, max_value, 0.0)
        assert not np.signbit(dx[:3]).any() and (dx[:3] == 0).all() and dx[3] == -1.0, kernels


@pytest.mark.parametrize("shape", [(1, 1), (3, 5, 7), (128, 6), (4, 9, 9, 6), (2, 130, 16), (37, 1000)])
@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_bias_activation_kernels_match_reference(shape, relu, dtype, rng):
    """Runs of whole rows against a tiled bias: sizes that fill, straddle and fall short of a run."""
    x = (rng.normal(size=shape) * 3).astype(dtype)
    bias = rng.normal(size=shape[-1]).astype(dtype)
    x.reshape(-1)[:2] = -bias[:2] if shape[-1] > 1 else -bias[0]  # y exactly 0: no gradient through it
    g = rng.normal(size=shape).astype(dtype)
    y = get_kernel("bias_activation_forward", "numba")(x, bias, relu)
    y_ref = get_kernel("bias_activation_forward", "reference")(x, bias, relu)
    assert y.dtype == y_ref.dtype == dtype
    np.testing.assert_array_equal(y, y_ref)
    (dx, db), (dx_ref, db_ref) = (get_kernel("bias_activation_backward", kind)(g, y_ref, relu)
                                  for kind in ("numba", "reference"))
    assert dx.dtype == db.dtype == dtype and db.shape == bias.shape
    np.testing.assert_array_equal(dx, dx_ref)
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(db, db_ref, rtol=rtol, atol=rtol * np.abs(g).sum() / shape[-1])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_add_relu_kernel_matches_reference(dtype, rng):
    a, b = (rng.normal(size=(3, 7, 5)).astype(dtype) for _ in range(2))
    a[0, 0, :2] = -b[0, 0, :2]  # sums exactly 0
    fast, ref = get_kernel("add_relu_forward", "numba")(a, b), get_kernel("add_relu_forward", "reference")(a, b)
    assert fast.dtype == ref.dtype == dtype
    np.testing.assert_array_equal(fast, ref)
    assert 0 < (fast == 0).mean() < 1


@pytest.mark.parametrize("kind", ["numba", "reference"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_add_relu_kernel_overwriting_its_first_input(kind, dtype, rng):
    """``overwrite=True`` writes max(a + b, 0) into ``a`` itself: the same values as a new array."""
    a, b = (rng.normal(size=(4, 6, 5)).astype(dtype) for _ in range(2))
    want = get_kernel("add_relu_forward", "reference")(a, b)
    got = get_kernel("add_relu_forward", kind)(a, b, True)
    assert got is a
    np.testing.assert_array_equal(a, want)
    strided = rng.normal(size=(4, 10)).astype(dtype)[:, ::2]  # not contiguous: a new array, input kept
    before = strided.copy()
    out = get_kernel("add_relu_forward", kind)(strided, b[0, :4, :], True)
    np.testing.assert_array_equal(out, np.maximum(before + b[0, :4, :], 0))
    if kind == "numba":
        np.testing.assert_array_equal(strided, before)


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-13), (np.float32, 2e-6)])
@pytest.mark.parametrize("shape", [(1,), (3, 5, 7), (64, 257)])
def test_smooth_activation_kernels_match_reference(shape, dtype, rtol, rng):
    """Sigmoid, tanh, ELU and softplus, with values that would overflow a naive exp and exact zeros."""
    x = (rng.normal(size=shape) * 4).astype(dtype)
    x.reshape(-1)[:5] = [0.0, 100.0, -100.0, 1e4, -1e4][:x.size]
    g = rng.normal(size=shape).astype(dtype)

    def same(name, *args):
        fast, ref = get_kernel(name, "numba")(*args), get_kernel(name, "reference")(*args)
        assert fast.dtype == ref.dtype == dtype and fast.shape == ref.shape == shape, name
        assert np.isfinite(fast).all(), name
        np.testing.assert_allclose(fast, ref, rtol=rtol, atol=rtol * 1e-3, err_msg=name)
        return ref

    y = same("sigmoid_forward", x)
    assert y.reshape(-1)[0] == 0.5 and ((0 <= y) & (y <= 1)).all()
    same("sigmoid_backward", g, y)
    same("tanh_backward", g, np.tanh(x))
    for alpha in (1.0, 0.3):
        y = same("elu_forward", x, alpha)
        same("elu_backward", g, x, y, alpha)
    y = same("softplus_forward", x)
    same("softplus_backward", g, y)


def test_smooth_activation_references_against_scipy(rng):
    """The references themselves, in float64, against SciPy's logistic function and NumPy's logaddexp."""
    from scipy.special import expit

    x = np.concatenate([rng.normal(size=50) * 5, [0.0, 30.0, -30.0, 700.0, -700.0]])
    ref = lambda name, *a: get_kernel(name, "reference")(*a)  # noqa: E731
    np.testing.assert_allclose(ref("sigmoid_forward", x), expit(x), rtol=1e-14)
    np.testing.assert_allclose(ref("softplus_forward", x), np.logaddexp(0, x), rtol=1e-14)
    g = rng.normal(size=x.size)
    np.testing.assert_allclose(ref("softplus_backward", g, ref("softplus_forward", x)), g * expit(x), rtol=1e-12)
    np.testing.assert_allclose(ref("elu_forward", x, 0.5), np.where(x > 0, x, 0.5 * (np.exp(x) - 1)), rtol=1e-12,
                               atol=1e-15)


def test_erf_kernel_against_scipy_in_float64(rng):
    """The float32 erf (a Taylor series, then a fitted erfcx times NumPy's exp) against SciPy's erf in
    float64: within a float32 unit in the last place near 1, across both pieces and their joins."""
    from scipy.special import erf

    x = np.concatenate([rng.normal(size=20000) * 3, np.linspace(-11, 11, 200001),
                        [0.0, -0.0, 1.0, -1.0, np.nextafter(1, 0), 10.0, 1e30, -1e30, np.inf, -np.inf]])
    x = x.astype(np.float32)
    fast = get_kernel("erf", "numba")(x)
    assert fast.dtype == np.float32
    np.testing.assert_allclose(fast, erf(x.astype(np.float64)), rtol=0, atol=1e-7)
    assert np.isnan(get_kernel("erf", "numba")(np.array([np.nan], np.float32)))[0]
    x64 = x.astype(np.float64)
    np.testing.assert_array_equal(get_kernel("erf", "numba")(x64), erf(x64))  # float64: SciPy's own


def test_cpu_kernel_choice():
    assert get_cpu_kernels() == "numba"
    assert get_kernel("conv2d_forward", "numpy") is get_kernel("conv2d_forward", "numba")
    try:
        set_cpu_kernels("reference")
        assert get_kernel("conv2d_forward", "numpy") is get_kernel("conv2d_forward", "reference")
    finally:
        set_cpu_kernels("numba")
    with pytest.raises(ValueError, match="numba"):
        set_cpu_kernels("fast")
    with pytest.raises(RuntimeError, match="CuPy"):
        get_kernel("relu_forward", "cupy")


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-10), (np.float32, 1e-4)])
@pytest.mark.parametrize("m, c", [(1, 3), (7, 1), (50, 6), (1031, 17)])
@pytest.mark.parametrize("relu", [False, True])
def test_batch_norm_kernels_match_reference(m, c, relu, dtype, rtol, rng):
    x = (rng.normal(size=(m, c)) * 3 + 2).astype(dtype)
    gamma, beta = rng.normal(size=c).astype(dtype), rng.normal(size=c).astype(dtype)
    fast = get_kernel("batch_norm_forward_train", "numba")(x, gamma, beta, 1e-3, relu)
    ref = get_kernel("batch_norm_forward_train", "reference")(x, gamma, beta, 1e-3, relu)
    for a, b in zip(fast, ref):
        assert a.dtype == b.dtype == dtype
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol)
    if relu and m > 1:
        assert 0 < (fast[0] == 0).mean() < 1
    _, mean, _, inv_std = ref
    g = rng.normal(size=(m, c)).astype(dtype)
    fast = get_kernel("batch_norm_backward", "numba")(g, x, mean, inv_std, gamma, beta, relu)
    ref = get_kernel("batch_norm_backward", "reference")(g, x, mean, inv_std, gamma, beta, relu)
    for a, b in zip(fast, ref):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * 10)
    scale, shift = rng.normal(size=c).astype(dtype), rng.normal(size=c).astype(dtype)
    np.testing.assert_allclose(get_kernel("scale_shift", "numba")(x, scale, shift, relu),
                               get_kernel("scale_shift", "reference")(x, scale, shift, relu), rtol=rtol, atol=rtol)


@pytest.mark.parametrize("offset", [0.0, 1e4])
def test_batch_norm_moments_in_one_pass_keep_float32_precision(offset, rng):
    """Mean and variance come from one pass of shifted float64 sums: a large common offset must not
    cancel the variance away (float32 input, the reference computes in float64)."""
    x = (rng.normal(size=(4096, 8)) * 0.01 + offset).astype(np.float32)
    ones, zeros = np.ones(8, np.float32), np.zeros(8, np.float32)
    _, mean, var, _ = get_kernel("batch_norm_forward_train", "numba")(x, ones, zeros, 1e-3)
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(mean, x64.mean(axis=0), rtol=1e-7)
    np.testing.assert_allclose(var, x64.var(axis=0), rtol=1e-5)


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-12), (np.float32, 1e-5)])
@pytest.mark.parametrize("n, c", [(1, 2), (5, 10), (64, 1000)])
def test_softmax_cross_entropy_kernels_match_reference(n, c, dtype, rtol, rng):
    z = (rng.normal(size=(n, c)) * 5).astype(dtype)
    labels = rng.integers(0, c, n)
    fast = get_kernel("softmax_cross_entropy_forward", "numba")(z, labels)
    ref = get_kernel("softmax_cross_entropy_forward", "reference")(z, labels)
    for a, b in zip(fast, ref):
        assert a.dtype == b.dtype == dtype
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(get_kernel("softmax_cross_entropy_backward", "numba")(ref[1], labels, 0.25),
                               get_kernel("softmax_cross_entropy_backward", "reference")(ref[1], labels, 0.25),
                               rtol=rtol, atol=rtol)


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-13), (np.float32, 1e-6)])
@pytest.mark.parametrize("momentum, dampening, nesterov, wd", [(0.0, 0.0, False, 0.0), (0.9, 0.0, False, 1e-4),
                                                               (0.9, 0.0, True, 0.0), (0.5, 0.3, False, 0.01)])
def test_sgd_update_kernel_matches_reference(momentum, dampening, nesterov, wd, dtype, rtol, rng):
    start = rng.normal(size=1001).astype(dtype)
    params = [start.copy(), start.copy()]
    bufs = [np.empty_like(start), np.empty_like(start)]
    for step in range(3):
        g = rng.normal(size=1001).astype(dtype)
        for impl, p, b in zip(("numba", "reference"), params, bufs):
            get_kernel("sgd_update", impl)(p, g, b if momentum else None, 0.1, momentum, dampening, nesterov, wd,
                                           step == 0)
    np.testing.assert_allclose(params[0], params[1], rtol=rtol, atol=rtol)
    assert not np.array_equal(params[0], start)


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-12), (np.float32, 1e-5)])
@pytest.mark.parametrize("wd, decoupled", [(0.0, False), (0.01, False), (0.01, True)])
def test_adam_update_kernel_matches_reference(wd, decoupled, dtype, rtol, rng):
    start = rng.normal(size=777).astype(dtype)
    params = [start.copy(), start.copy()]
    moments = [(np.zeros_like(start), np.zeros_like(start)) for _ in range(2)]
    for step in range(1, 4):
        g = rng.normal(size=777).astype(dtype)
        for impl, p, (m, v) in zip(("numba", "reference"), params, moments):
            get_kernel("adam_update", impl)(p, g, m, v, step, 1e-2, 0.9, 0.999, 1e-8, wd, decoupled)
    np.testing.assert_allclose(params[0], params[1], rtol=rtol, atol=rtol)
    np.testing.assert_allclose(moments[0][1], moments[1][1], rtol=rtol, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("ids_shape, rows, dim", [((1,), 3, 1), ((4, 7), 5, 6), ((64, 3), 1000, 33)])
def test_embedding_kernels_match_reference(ids_shape, rows, dim, dtype, rng):
    table = rng.normal(size=(rows, dim)).astype(dtype)
    ids = rng.integers(0, rows, ids_shape)
    ids.reshape(-1)[0] = ids.reshape(-1)[-1]  # a repeated id, whose gradients must add up
    np.testing.assert_array_equal(get_kernel("embedding_forward", "numba")(table, ids), table[ids])
    g = rng.normal(size=ids_shape + (dim,)).astype(dtype)
    np.testing.assert_allclose(get_kernel("embedding_backward", "numba")(g, ids, rows),
                               get_kernel("embedding_backward", "reference")(g, ids, rows), rtol=1e-6, atol=1e-6)
    start = rng.normal(size=(rows, dim)).astype(dtype)  # added into an existing gradient, in place
    into = {impl: start.copy() for impl in ("numba", "reference")}
    for impl, out in into.items():
        get_kernel("embedding_backward_into", impl)(g, ids, out)
    np.testing.assert_allclose(into["numba"], into["reference"], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(into["reference"] - start, get_kernel("embedding_backward", "reference")(g, ids, rows),
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-10), (np.float32, 1e-4)])
@pytest.mark.parametrize("m, c, size", [(1, 1, 5), (7, 3, 5), (40, 16, 4), (9, 10, 1)])
def test_lrn_kernels_match_reference(m, c, size, dtype, rtol, rng):
    x = rng.normal(size=(m, c)).astype(dtype)
    fast = get_kernel("lrn_forward", "numba")(x, size, 0.3, 0.75, 2.0)
    ref = get_kernel("lrn_forward", "reference")(x, size, 0.3, 0.75, 2.0)
    for a, b in zip(fast, ref):
        assert a.dtype == b.dtype == dtype
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol)
    g = rng.normal(size=(m, c)).astype(dtype)
    np.testing.assert_allclose(get_kernel("lrn_backward", "numba")(g, x, *ref, size, 0.3, 0.75, 2.0),
                               get_kernel("lrn_backward", "reference")(g, x, *ref, size, 0.3, 0.75, 2.0),
                               rtol=rtol, atol=rtol)


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-12), (np.float32, 1e-5)])
@pytest.mark.parametrize("n, u", [(1, 1), (5, 7), (64, 32)])
def test_lstm_cell_kernels_match_reference(n, u, dtype, rtol, rng):
    z = (rng.normal(size=(n, 4 * u)) * 3).astype(dtype)
    c = rng.normal(size=(n, u)).astype(dtype)
    fast = get_kernel("lstm_cell_forward", "numba")(z, c)
    ref = get_kernel("lstm_cell_forward", "reference")(z, c)
    for a, b in zip(fast, ref):
        assert a.dtype == b.dtype == dtype
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol)
    dhc = rng.normal(size=(n, 2 * u)).astype(dtype)
    for a, b in zip(get_kernel("lstm_cell_backward", "numba")(dhc, *ref[1:], c),
                    get_kernel("lstm_cell_backward", "reference")(dhc, *ref[1:], c)):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol)


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-12), (np.float32, 1e-5)])
@pytest.mark.parametrize("n, u", [(1, 1), (5, 7), (64, 32)])
def test_gru_cell_kernels_match_reference(n, u, dtype, rtol, rng):
    xw, hu = (rng.normal(size=(2, n, 3 * u)) * 3).astype(dtype)
    h = rng.normal(size=(n, u)).astype(dtype)
    fast = get_kernel("gru_cell_forward", "numba")(xw, hu, h)
    ref = get_kernel("gru_cell_forward", "reference")(xw, hu, h)
    for a, b in zip(fast, ref):
        assert a.dtype == b.dtype == dtype
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol)
    g = rng.normal(size=(n, u)).astype(dtype)
    for a, b in zip(get_kernel("gru_cell_backward", "numba")(g, ref[1], hu, h),
                    get_kernel("gru_cell_backward", "reference")(g, ref[1], hu, h)):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol)


def test_parallel_above_runs_threads_only_for_large_work(monkeypatch):
    from ember.kernels.cpu import jit

    def double(x, out):
        for i in jit.prange(x.size):
            out[i] = 2 * x[i]

    twin = jit.parallel_above(1000)(double)
    monkeypatch.setitem(jit.THREADS, "mode", "auto")
    monkeypatch.setitem(jit.THREADS, "n", 2)
    small, big = np.arange(10.0), np.arange(5000.0)
    out = np.empty_like(small)
    twin(small, out)
    assert out.tolist() == (2 * small).tolist()
    assert twin.serial.signatures and not twin.parallel.signatures  # only the serial one was compiled/run
    out = np.empty_like(big)
    twin(big, out)
    assert twin.parallel.signatures and np.array_equal(out, 2 * big)
    monkeypatch.setitem(jit.THREADS, "n", 1)  # a Spark task with one core: never threads
    twin_one = jit.parallel_above(1000)(double)
    twin_one(big, np.empty_like(big))
    assert twin_one.serial.signatures and not twin_one.parallel.signatures


def test_thread_budget_follows_spark_omp_num_threads(monkeypatch):
    from ember.kernels.cpu import jit

    monkeypatch.delenv("NUMBA_NUM_THREADS", raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert jit._thread_budget() == 1
    monkeypatch.setenv("NUMBA_NUM_THREADS", "3")
    assert jit._thread_budget() == 3
    with pytest.raises(ValueError, match="auto"):
        jit.set_parallel_mode("sometimes")


def test_convolution_routes():
    from ember.kernels.cpu import conv

    f32 = np.dtype(np.float32)
    same = ((1, 1), (1, 1))
    # stride 1 with enough channels and few scratch rows: shifted products
    assert conv._shifted((16, 56, 56, 64), (3, 3, 64, 64), (1, 1), (1, 1), same, f32)
    assert conv._shifted((16, 28, 28, 96), (3, 3, 96, 128), (1, 1), (1, 1), same, f32)
    assert conv._shifted((16, 28, 28, 16), (5, 5, 16, 32), (1, 1), (1, 1), ((2, 2), (2, 2)), f32)  # <= 64 filters
    # too few channels per tap, too many scratch rows, strided, pointwise: im2col
    assert not conv._shifted((128, 28, 28, 1), (5, 5, 1, 6), (1, 1), (1, 1), ((2, 2), (2, 2)), f32)
    assert not conv._shifted((128, 14, 14, 6), (5, 5, 6, 16), (1, 1), (1, 1), ((0, 0), (0, 0)), f32)
    assert not conv._shifted((16, 14, 14, 256), (3, 3, 256, 256), (1, 1), (1, 1), same, f32)
    assert not conv._shifted((2, 7, 7, 512), (3, 3, 512, 512), (1, 1), (1, 1), same, f32)
    assert not conv._shifted((16, 56, 56, 64), (3, 3, 64, 64), (2, 2), (1, 1), same, f32)
    assert not conv._shifted((16, 56, 56, 64), (1, 1, 64, 64), (1, 1), (1, 1), ((0, 0), (0, 0)), f32)


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-12), (np.float32, 2e-5)])
@pytest.mark.parametrize("case", [c for c in CONV_CASES if c[7] == (1, 1) and c[4] * c[5] > 1])
def test_shifted_products_match_reference(case, dtype, rtol, rng):
    """The shifted route on every stride-1 case, whichever route the rule picks for these small shapes."""
    from ember.kernels.cpu import conv

    n, h, w, c, kh, kw, f, stride, dilation, pads = case
    x = rng.normal(size=(n, h, w, c)).astype(dtype)
    k = rng.normal(size=(kh, kw, c, f)).astype(dtype)
    ho, wo = out_hw(h, kh, 1, dilation[0], pads[0]), out_hw(w, kw, 1, dilation[1], pads[1])
    dy = rng.normal(size=(n, ho, wo, f)).astype(dtype)
    ref = get_kernel("conv2d_forward", "reference")
    np.testing.assert_allclose(conv.shifted_forward(x, k, dilation, pads), ref(x, k, stride, dilation, pads, 1),
                               rtol=rtol, atol=rtol * 10)
    ref_dw = get_kernel("conv2d_backward_weight", "reference")(x, dy, k.shape, stride, dilation, pads, 1)
    np.testing.assert_allclose(conv.shifted_backward_weight(x, dy, k.shape, dilation, pads), ref_dw,
                               rtol=rtol, atol=rtol * 10)


DIRECT_CASES = [
    # n, h, w, c, kh, kw, f, dilation, pads
    (3, 28, 28, 1, 5, 5, 6, (1, 1), ((2, 2), (2, 2))),     # LeNet's first layer: five groups of five taps
    (2, 9, 11, 1, 3, 3, 4, (1, 1), ((0, 0), (0, 0))),     # nine taps: one group and four left over
    (5, 7, 6, 3, 5, 5, 8, (1, 1), ((1, 3), (0, 2))),      # three channels, asymmetric padding
    (1, 8, 9, 2, 3, 2, 1, (2, 3), ((2, 1), (1, 2))),      # dilation, one filter, six taps
    (2, 3, 2, 1, 3, 5, 3, (1, 1), ((1, 1), (2, 2))),      # kernel wider than the input
    (1, 4, 4, 1, 1, 1, 2, (1, 1), ((0, 0), (0, 0))),      # one tap
]


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-12), (np.float32, 2e-5)])
@pytest.mark.parametrize("case", DIRECT_CASES)
def test_direct_convolution_matches_reference(case, dtype, rtol, rng):
    """kernels/cpu/direct.py (few input channels) and the routes that pick it, against the reference."""
    from ember.kernels.cpu import direct

    n, h, w, c, kh, kw, f, dilation, pads = case
    x = rng.normal(size=(n, h, w, c)).astype(dtype)
    k = rng.normal(size=(kh, kw, c, f)).astype(dtype)
    args = ((1, 1), dilation, pads, 1)
    y_ref = get_kernel("conv2d_forward", "reference")(x, k, *args)
    dy = rng.normal(size=y_ref.shape).astype(dtype)
    dw_ref = get_kernel("conv2d_backward_weight", "reference")(x, dy, k.shape, *args)
    for y in (direct.forward(x, k, dilation, pads), get_kernel("conv2d_forward", "numba")(x, k, *args),
              get_kernel("conv2d_forward_cols", "numba")(x, k, *args)[0]):
        assert y.dtype == dtype and y.shape == y_ref.shape
        np.testing.assert_allclose(y, y_ref, rtol=rtol, atol=rtol * 10)
    for dw in (direct.backward_weight(x, dy, k.shape, dilation, pads),
               get_kernel("conv2d_backward_weight", "numba")(x, dy, k.shape, *args)):
        assert dw.dtype == dtype and dw.shape == k.shape and dw.flags.c_contiguous
        np.testing.assert_allclose(dw, dw_ref, rtol=rtol, atol=rtol * 10)
    assert get_kernel("conv2d_forward_cols", "numba")(x, k, *args)[1] is None  # no im2col matrix is kept


def test_direct_weight_gradient_against_finite_differences(rng):
    """float64: kernels/cpu/direct.py's weight gradient (filters in groups of three and one left over, taps
    in groups of five and two left over) is that of its forward pass (central differences)."""
    from layer_testing import numeric_gradient, relative_error

    from ember.kernels.cpu import direct

    x = rng.normal(size=(2, 6, 5, 1))
    k = rng.normal(size=(3, 4, 1, 4))
    pads = ((1, 1), (2, 1))
    r = rng.normal(size=direct.forward(x, k, (1, 1), pads).shape)  # a random linear function of the output

    def loss():
        return float((direct.forward(x, k, (1, 1), pads) * r).sum())

    assert relative_error(direct.backward_weight(x, r, k.shape, (1, 1), pads), numeric_gradient(loss, k)) < 1e-8


def test_direct_convolution_route():
    from ember.kernels.cpu import conv

    f32 = np.dtype(np.float32)
    assert conv._direct((128, 28, 28, 1), (5, 5, 1, 6), (1, 1), 1, f32)        # LeNet's first layer
    assert conv._direct((16, 32, 32, 3), (5, 5, 3, 8), (1, 1), 1, f32)
    assert not conv._direct((128, 14, 14, 6), (5, 5, 6, 16), (1, 1), 1, f32)   # LeNet's second: GEMM
    assert not conv._direct((128, 28, 28, 1), (3, 3, 1, 16), (1, 1), 1, f32)   # 16 filters: GEMM
    assert not conv._direct((128, 28, 28, 1), (5, 5, 1, 6), (2, 2), 1, f32)    # strided
    assert not conv._direct((128, 28, 28, 2), (5, 5, 1, 6), (1, 1), 2, f32)    # grouped
    assert not conv._direct((128, 28, 28, 1), (5, 5, 1, 6), (1, 1), 1, np.dtype(np.float16))


WINOGRAD_CASES = [
    # n, h, w, c, f, pads
    (1, 5, 7, 32, 3, ((1, 1), (1, 1))),     # few filters: the input's gradient takes col2im
    (2, 6, 4, 33, 40, ((0, 2), (2, 0))),    # asymmetric padding
    (2, 9, 11, 48, 32, ((1, 0), (0, 1))),   # odd output sizes: partial tiles
    (3, 1, 1, 32, 32, ((1, 1), (1, 1))),    # one pixel
    (1, 3, 3, 32, 36, ((0, 0), (0, 0))),    # one output
]


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-12), (np.float32, 2e-5)])
@pytest.mark.parametrize("case", WINOGRAD_CASES)
def test_winograd_convolutions_match_reference(case, dtype, rtol, rng):
    from ember.kernels.cpu import winograd

    n, h, w, c, f, pads = case
    x = rng.normal(size=(n, h, w, c)).astype(dtype)
    k = rng.normal(size=(3, 3, c, f)).astype(dtype)
    ho, wo = h + sum(pads[0]) - 2, w + sum(pads[1]) - 2
    dy = rng.normal(size=(n, ho, wo, f)).astype(dtype)
    args = ((1, 1), (1, 1), pads, 1)
    # both passes take the Winograd route for these shapes, but for the first case's forward pass
    assert winograd.eligible(x.shape, k.shape, (1, 1), (1, 1), pads, x.dtype) == (f >= 32)
    data_pads = winograd.backward_data_pads(pads)
    assert winograd.eligible(dy.shape, (3, 3, f, c), (1, 1), (1, 1), data_pads, x.dtype) == (f >= 32)
    y_ref = get_kernel("conv2d_forward", "reference")(x, k, *args)
    dx_ref = get_kernel("conv2d_backward_data", "reference")(dy, k, x.shape, *args)
    scale = np.abs(y_ref).max()
    np.testing.assert_allclose(get_kernel("conv2d_forward", "numba")(x, k, *args), y_ref, rtol=rtol, atol=rtol * scale)
    y_fast, cols = get_kernel("conv2d_forward_cols", "numba")(x, k, *args)
    np.testing.assert_allclose(y_fast, y_ref, rtol=rtol, atol=rtol * scale)
    np.testing.assert_allclose(winograd.forward(x, k, pads, lambda slot, shape, dt: np.empty(shape, dt)), y_ref,
                               rtol=rtol, atol=rtol * scale)
    np.testing.assert_allclose(get_kernel("conv2d_backward_data", "numba")(dy, k, x.shape, *args), dx_ref,
                               rtol=rtol, atol=rtol * np.abs(dx_ref).max())
    np.testing.assert_allclose(winograd.backward_data(dy, k, pads, lambda slot, shape, dt: np.empty(shape, dt)),
                               dx_ref, rtol=rtol, atol=rtol * np.abs(dx_ref).max())


def test_winograd_route():
    from ember.kernels.cpu import winograd

    f32 = np.dtype(np.float32)
    same = ((1, 1), (1, 1))
    assert winograd.eligible((16, 56, 56, 64), (3, 3, 64, 64), (1, 1), (1, 1), same, f32)
    assert winograd.eligible((16, 7, 7, 512), (3, 3, 512, 512), (1, 1), (1, 1), same, f32)
    assert not winograd.eligible((16, 224, 224, 3), (3, 3, 3, 64), (1, 1), (1, 1), same, f32)  # few channels
    assert not winograd.eligible((16, 224, 224, 64), (3, 3, 64, 3), (1, 1), (1, 1), same, f32)  # few filters
    assert not winograd.eligible((16, 28, 28, 16), (3, 3, 16, 32), (1, 1), (1, 1), same, f32)
    assert not winograd.eligible((16, 56, 56, 64), (3, 3, 64, 64), (2, 2), (1, 1), same, f32)  # strided
    assert not winograd.eligible((16, 56, 56, 64), (3, 3, 64, 64), (1, 1), (2, 2), same, f32)  # dilated
    assert not winograd.eligible((16, 28, 28, 32), (5, 5, 32, 32), (1, 1), (1, 1), same, f32)  # 5x5
    assert not winograd.eligible((16, 28, 28, 32), (3, 3, 32, 32), (1, 1), (1, 1), ((3, 3), (3, 3)), f32)
    assert not winograd.eligible((16, 28, 28, 32), (3, 3, 32, 32), (1, 1), (1, 1), same, np.dtype(np.float16))


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-12), (np.float32, 2e-5)])
@pytest.mark.parametrize("case", WINOGRAD_CASES)
def test_winograd_weight_gradient_matches_reference(case, dtype, rtol, rng):
    from ember.kernels.cpu import winograd

    n, h, w, c, f, pads = case
    x = rng.normal(size=(n, h, w, c)).astype(dtype)
    ho, wo = h + sum(pads[0]) - 2, w + sum(pads[1]) - 2
    dy = rng.normal(size=(n, ho, wo, f)).astype(dtype)
    ref = get_kernel("conv2d_backward_weight", "reference")(x, dy, (3, 3, c, f), (1, 1), (1, 1), pads, 1)
    fast = winograd.weight_grad(x, dy, pads, lambda slot, shape, dt: np.empty(shape, dt))
    np.testing.assert_allclose(fast, ref, rtol=rtol, atol=rtol * np.abs(ref).max())
    routed = get_kernel("conv2d_backward_weight", "numba")(x, dy, (3, 3, c, f), (1, 1), (1, 1), pads, 1)
    np.testing.assert_allclose(routed, ref, rtol=rtol, atol=rtol * np.abs(ref).max())


@pytest.mark.parametrize("case", CONV_CASES)
def test_im2col_writes_its_matrix_and_nothing_past_it(case, rng):
    """The copy loops index without bounds checks: a run one tap too long would land past the matrix
    (the last row's) and in the next taps' slots, which later taps overwrite, so compare against
    the reference's windows and watch a guard band behind the matrix."""
    from ember.kernels.cpu import conv
    from ember.kernels.reference.conv import _pad, windows

    n, h, w, c, kh, kw, f, stride, dilation, pads = case
    x = rng.normal(size=(n, h, w, c))
    ho, wo = out_hw(h, kh, stride[0], dilation[0], pads[0]), out_hw(w, kw, stride[1], dilation[1], pads[1])
    expected = windows(_pad(x, pads), kh, kw, stride, dilation, ho, wo).reshape(n * ho * wo, kh * kw * c)
    xp = np.ascontiguousarray(_pad(x, pads))
    buf = np.full(expected.size + 64, np.nan)  # the matrix, then a guard band
    if c == 1:
        conv._im2col_single_channel(xp[..., 0], kh, kw, *stride, *dilation, ho, wo,
                                    buf[:expected.size].reshape(kh * kw * c, -1))
        got = buf[:expected.size].reshape(kh * kw * c, -1).T
    else:
        conv._im2col(xp, kh, kw, *stride, *dilation, ho, wo, buf[:expected.size].reshape(expected.shape))
        got = buf[:expected.size].reshape(expected.shape)
    np.testing.assert_array_equal(got, expected)
    assert np.isnan(buf[expected.size:]).all(), "im2col wrote past its matrix"


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("momentum, dampening, nesterov, wd", [(0.0, 0.0, False, 0.0), (0.9, 0.0, False, 1e-4),
                                                               (0.9, 0.0, True, 0.0), (0.5, 0.3, False, 0.01)])
def test_sgd_update_mean_is_the_sum_the_division_and_the_update(momentum, dampening, nesterov, wd, dtype, rng):
    """The fused kernel gives the bits of the unfused sequence on each backend: mean_of_parts (a + b, then / count)
    and sgd_update; and the Numba kernels give the reference's bits."""
    n, count = 3001, 96
    start = rng.normal(size=n).astype(dtype)
    runs = {}
    for impl in ("numba", "reference"):
        for fused in (True, False):
            p, buf = start.copy(), np.empty_like(start)
            prng = np.random.default_rng(5)
            for step in range(3):
                a, b = (prng.normal(size=n).astype(dtype) * 20 for _ in range(2))
                v = buf if momentum else None
                if fused:
                    get_kernel("sgd_update_mean", impl)(p, a, b, count, v, 0.1, momentum, dampening, nesterov, wd,
                                                        step == 0)
                else:
                    mean = np.empty_like(a)
                    get_kernel("mean_of_parts", impl)(mean, a, b, count)
                    np.testing.assert_array_equal(mean, (a + b) / count)  # added, then divided
                    get_kernel("sgd_update", impl)(p, mean, v, 0.1, momentum, dampening, nesterov, wd, step == 0)
            runs[impl, fused] = p, buf
    for impl in ("numba", "reference"):
        np.testing.assert_array_equal(runs[impl, True][0], runs[impl, False][0])
        if momentum:
            np.testing.assert_array_equal(runs[impl, True][1], runs[impl, False][1])
    np.testing.assert_array_equal(runs["numba", True][0], runs["reference", True][0])
    assert not np.array_equal(runs["numba", True][0], start)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_mean_of_parts_reads_received_blocks_and_may_write_its_first_part(dtype, rng):
    a, b = rng.normal(size=(2, 5000)).astype(dtype)
    expected = (a + b) / 7
    received = np.frombuffer(b.tobytes(), dtype=dtype)  # read-only, as a block read in place
    for impl in ("numba", "reference"):
        first = a.copy()
        get_kernel("mean_of_parts", impl)(first, first, received, 7)
        np.testing.assert_array_equal(first, expected)
        p = np.ones_like(a)
        get_kernel("sgd_update_mean", impl)(p, np.frombuffer(a.tobytes(), dtype=dtype), received, 7, None, 0.5, 0.0,
                                            0.0, False, 0.0, False)
        np.testing.assert_array_equal(p, 1 - dtype(0.5) * expected)
