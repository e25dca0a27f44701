"""kernels/cpu/blocked.py (register-blocked direct convolution) against the NumPy reference, its
gradients against finite differences in float64, and the generated file against its generator."""
import numpy as np
import pytest

from ember.kernels import get_kernel

pytest.importorskip("numba")

CASES = [
    # n, h, w, c, kh, kw, f, pads
    (3, 14, 14, 6, 5, 5, 16, ((0, 0), (0, 0))),   # LeNet's second layer: whole rows of ten pixels
    (2, 28, 28, 1, 5, 5, 6, ((2, 2), (2, 2))),    # LeNet's first layer: 8 lanes for 6 filters, stored in place
    (9, 14, 14, 2, 3, 3, 5, ((1, 1), (1, 1))),    # in place, nine images over the threads
    (2, 9, 23, 3, 3, 2, 20, ((1, 0), (0, 2))),    # 20 filters: a full and a partial block of 16; tails
    (1, 5, 4, 7, 3, 3, 1, ((1, 1), (1, 1))),      # one filter, rows shorter than a block
    (2, 6, 7, 2, 1, 1, 33, ((0, 0), (0, 0))),     # pointwise, three blocks of 16
    (1, 3, 2, 2, 3, 5, 3, ((1, 1), (2, 2))),      # kernel wider than the input
    (2, 8, 12, 5, 4, 4, 9, ((0, 3), (2, 1))),     # window rows of 20 values: a full and a partial chunk
    (2, 7, 11, 4, 3, 3, 6, ((0, 0), (1, 1))),     # 4 channels (blocks of every other pixel just apart), odd rows
]


# NOTE: float64 serially only: the blocked route takes float32 alone (conv._blocked), so float64 checks the
# arithmetic exactly (1e-12) and float32 checks both ways of running; the threaded float64 kernels, used
# nowhere else, cost 46 s of CPU to compile (of the file's 124 s, empty cache, load 5).
@pytest.mark.parametrize("parallel_mode, dtype, rtol", [("serial", np.float64, 1e-12), ("serial", np.float32, 2e-5),
                                                        ("threaded", np.float32, 2e-5)], indirect=["parallel_mode"])
@pytest.mark.parametrize("case", CASES)
def test_blocked_convolution_matches_reference(case, dtype, rtol, rng, parallel_mode):
    from ember.kernels.cpu import blocked

    n, h, w, c, kh, kw, f, pads = case
    x = rng.normal(size=(n, h, w, c)).astype(dtype)
    k = rng.normal(size=(kh, kw, c, f)).astype(dtype)
    args = ((1, 1), (1, 1), pads, 1)
    y_ref = get_kernel("conv2d_forward", "reference")(x, k, *args)
    dy = rng.normal(size=y_ref.shape).astype(dtype)
    y = blocked.forward(x, k, pads)
    assert y.dtype == dtype and y.shape == y_ref.shape
    np.testing.assert_allclose(y, y_ref, rtol=rtol, atol=rtol * 10)
    dw = blocked.backward_weight(x, dy, k.shape, pads)
    assert dw.dtype == dtype and dw.shape == k.shape and dw.flags.c_contiguous
    np.testing.assert_allclose(dw, get_kernel("conv2d_backward_weight", "reference")(x, dy, k.shape, *args),
                               rtol=rtol, atol=rtol * 10)
    dx = blocked.backward_data(dy, k, x.shape, pads)
    assert dx.dtype == dtype and dx.shape == x.shape and dx.flags.c_contiguous
    np.testing.assert_allclose(dx, get_kernel("conv2d_backward_data", "reference")(dy, k, x.shape, *args),
                               rtol=rtol, atol=rtol * 10)


def test_blocked_convolution_gradients_against_finite_differences(rng):
    """float64: the weight and data gradients are those of the forward pass (central differences)."""
    from layer_testing import numeric_gradient, relative_error

    from ember.kernels.cpu import blocked

    pads = ((1, 0), (2, 1))
    x = rng.normal(size=(2, 5, 6, 3))
    k = rng.normal(size=(3, 3, 3, 17))
    r = rng.normal(size=blocked.forward(x, k, pads).shape)  # a random linear function of the output

    def loss():
        return float((blocked.forward(x, k, pads) * r).sum())

    assert relative_error(blocked.backward_weight(x, r, k.shape, pads), numeric_gradient(loss, k)) < 1e-8
    assert relative_error(blocked.backward_data(r, k, x.shape, pads), numeric_gradient(loss, x)) < 1e-8


def test_blocked_kernels_are_vectorized(rng):
    """The scalar sums are packed into vector registers (LLVM's SLP vectorizer, switched on while the
    kernel compiles): packed fused multiply-adds (ymm or zmm) in the float32 forward kernel, no scalar
    ones. Compiled here without the disk cache, whose kernels carry no assembly text."""
    import re

    import numba

    from ember.kernels.cpu import _blocked_gen, blocked

    kernel = numba.njit(error_model="numpy", fastmath={"contract"})(_blocked_gen.forward_p10_f16)
    x = rng.normal(size=(1, 5, 14, 2)).astype(np.float32)
    wt = rng.normal(size=(1, 1, 10, 16)).astype(np.float32)
    y = np.empty((1, 5, 10, 16), np.float32)
    blocked._slp_on_first_call(kernel)(x, wt, np.zeros(16, np.float32), np.float32(-np.inf), np.float32(0), y)
    np.testing.assert_allclose(y, blocked.forward(x, wt[0].reshape(1, 5, 2, 16), ((0, 0), (0, 0))), rtol=1e-5)
    asm = kernel.inspect_asm(kernel.signatures[0])
    assert re.search(r"vfmadd\w*ps\s+[^\n]*[yz]mm", asm)
    assert not re.search(r"vfmadd\w*ss", asm)
    assert numba.config.SLP_VECTORIZE == 0  # switched back on return


def test_generated_kernels_match_their_generator():
    from ember.kernels.cpu import blocked

    with open(blocked.GENERATED) as f:
        assert f.read() == blocked.source(), "run: python -m ember.kernels.cpu.blocked"


def test_generated_kernels_hold_no_conditional_expressions():
    """Each conditional expression of the unrolled blocks becomes blocks of Numba IR, and compile time grows
    with them: with the ReLU written "v if not v <= lo else zero", LeNet-5's two threaded forward kernels
    took 81 s and 37 s of CPU to compile, against 5.3 s and 3.5 s with max(v, lo) (kernels/cpu/blocked.py)."""
    import ast

    from ember.kernels.cpu import blocked

    tree = ast.parse(blocked.source())
    kernels = [node for node in tree.body if isinstance(node, ast.FunctionDef)]
    assert len(kernels) == len(blocked.KERNELS)
    for kernel in kernels:
        assert not [node for node in ast.walk(kernel) if isinstance(node, (ast.IfExp, ast.If))], kernel.name


def test_blocked_convolution_route():
    from ember.kernels.cpu import conv

    f32, f64 = np.dtype(np.float32), np.dtype(np.float64)
    assert conv._blocked((128, 14, 14, 6), (5, 5, 6, 16), (1, 1), (1, 1), 1, f32)       # LeNet's second layer
    assert not conv._blocked((128, 14, 14, 6), (5, 5, 6, 16), (1, 1), (1, 1), 1, f64)   # float64 keeps its route
    assert not conv._blocked((128, 14, 14, 6), (5, 5, 6, 16), (2, 2), (1, 1), 1, f32)   # strided
    assert not conv._blocked((128, 14, 14, 6), (5, 5, 6, 16), (1, 1), (2, 2), 1, f32)   # dilated
    assert not conv._blocked((128, 14, 14, 6), (5, 5, 3, 16), (1, 1), (1, 1), 2, f32)   # grouped
    assert not conv._blocked((16, 28, 28, 64), (3, 3, 64, 64), (1, 1), (1, 1), 1, f32)  # many channels: BLAS
    assert not conv._blocked((16, 28, 28, 8), (3, 3, 8, 32), (1, 1), (1, 1), 1, f32)    # many filters: BLAS
