import numpy as np
import pytest
from layer_testing import numeric_gradient, relative_error

import ember
from ember.engine import Tensor, no_grad
from ember.engine import functional as F
from ember.engine.ops.normalization import BatchNormInference, BatchNormTrain


def check_op(fn, *shapes, positive=False, seed=0):
    """Gradient of sum(fn(*xs) * r) for every input against central differences (float64)."""
    rng = np.random.default_rng(seed)
    arrays = [rng.uniform(0.5, 2.0, s) if positive else rng.standard_normal(s) for s in shapes]
    tensors = [Tensor(a, requires_grad=True) for a in arrays]
    out = fn(*tensors)
    r = rng.standard_normal(out.shape)
    (out * Tensor(r)).sum().backward()
    for t, a in zip(tensors, arrays):
        num = numeric_gradient(lambda: float((fn(*[Tensor(b) for b in arrays]).numpy() * r).sum()), a)
        assert relative_error(t.grad, num) < 1e-6


@pytest.mark.parametrize("fn,shapes", [
    (lambda a, b: a + b, [(3, 4), (4,)]),
    (lambda a, b: a - b, [(3, 1), (1, 4)]),
    (lambda a, b: a * b, [(2, 3, 4), (3, 1)]),
    (lambda a, b: a / b, [(3, 4), (3, 4)]),
    (lambda a, b: a @ b, [(3, 4), (4, 5)]),
    (lambda a, b: a @ b, [(2, 3, 4), (4, 5)]),
    (lambda a, b: a @ b, [(4,), (4, 5)]),
    (lambda a, b: a @ b, [(3, 4), (4,)]),
    (lambda a, b: F.maximum(a, b), [(3, 4), (3, 4)]),
    (lambda a, b: F.concatenate([a, b], axis=1), [(2, 3), (2, 5)]),
    (lambda a, b: F.stack([a, b], axis=1), [(2, 3), (2, 3)]),
    (lambda a, b: F.bias_add(a, b), [(2, 3, 4), (4,)]),
    (lambda a, b: F.add_relu(a, b), [(3, 4, 5), (3, 4, 5)]),
    (lambda a, b: F.bias_add(a, b, "relu"), [(5, 3), (3,)]),
    (lambda a, b: F.bias_add(a, b, "relu"), [(2, 3, 2, 7), (7,)]),
    (lambda a, g, b: BatchNormTrain.apply(a, g, b, axes=(0, 1), activation="relu"), [(4, 3, 5), (5,), (5,)]),
    (lambda a, g, b: BatchNormTrain.apply(a, g, b, axes=(0, 2), activation="relu"), [(4, 3, 2), (1, 3, 1),
                                                                                    (1, 3, 1)]),
    (lambda a, g, b: BatchNormInference.apply(a, g, b, mean=np.arange(3.0), var=np.ones(3), axis=-1,
                                              activation="relu"), [(4, 3), (3,), (3,)]),
])
def test_binary_op_gradients(float64, fn, shapes):
    check_op(fn, *shapes)


@pytest.mark.parametrize("fn", [
    lambda a: a.exp(), lambda a: a.sum(axis=1), lambda a: a.mean(axis=(0, 2), keepdims=True),
    lambda a: a.max(axis=-1), lambda a: a.min(axis=0), lambda a: a.reshape(6, 4), lambda a: a.transpose(2, 0, 1),
    lambda a: a[1:, ::2], lambda a: a[np.array([0, 1, 0])], lambda a: -a, lambda a: a ** 3, lambda a: a.tanh(),
    lambda a: a.sigmoid(), lambda a: F.softmax(a, axis=1), lambda a: F.log_softmax(a), lambda a: F.gelu(a),
    lambda a: F.elu(a), lambda a: F.leaky_relu(a), lambda a: F.softplus(a),
    lambda a: F.pad(a, ((1, 0), (0, 2), (1, 1))),
    lambda a: F.var(a, axis=1), lambda a: F.abs(a), lambda a: F.broadcast_to(a[:, :1], (2, 3, 4)),
])
def test_unary_op_gradients(float64, fn):
    check_op(fn, (2, 3, 4))


@pytest.mark.parametrize("fn", [lambda a: a.log(), lambda a: a.sqrt(), lambda a: a ** 0.5])
def test_positive_domain_gradients(float64, fn):
    check_op(fn, (3, 4), positive=True)


def test_shared_subgraph_gradients_accumulate():
    x = Tensor(np.array([2.0, 3.0]), requires_grad=True)
    y = x * x          # used twice below
    z = (y + y * x).sum()   # d/dx (x^2 + x^3) = 2x + 3x^2
    z.backward()
    np.testing.assert_allclose(x.grad, 2 * x.data + 3 * x.data ** 2)


def test_leaf_grad_accumulates_across_backward_calls():
    x = Tensor([1.0, 2.0], requires_grad=True)
    (x * 3).sum().backward()
    (x * 3).sum().backward()
    np.testing.assert_allclose(x.grad, [6.0, 6.0])


def test_leaf_grads_never_share_memory():
    x, y = Tensor([1.0, 2.0], requires_grad=True), Tensor([3.0, 4.0], requires_grad=True)
    (x + y).sum().backward()  # Add hands one array to both inputs
    (x + y).sum().backward()
    np.testing.assert_array_equal(x.grad, [2.0, 2.0])
    np.testing.assert_array_equal(y.grad, [2.0, 2.0])


def test_reductions_keep_float32_gradients():
    x = Tensor(np.array([[1.0, 3.0], [2.0, 2.0]], np.float32), requires_grad=True)
    x.max(axis=1).sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_array_equal(x.grad, [[0.0, 1.0], [0.5, 0.5]])


def test_no_grad_records_nothing():
    x = Tensor([1.0], requires_grad=True)
    with no_grad():
        y = x * 2
    assert not y.requires_grad and y.is_leaf
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.backward()


def test_backward_needs_scalar_or_gradient():
    x = Tensor(np.ones((2, 2)), requires_grad=True)
    with pytest.raises(RuntimeError, match="scalar"):
        (x * 2).backward()
    (x * 2).backward(np.ones((2, 2)))
    np.testing.assert_allclose(x.grad, 2.0)


def test_default_dtype_and_switch():
    assert Tensor([1.0]).dtype == np.float32
    assert Tensor(np.zeros(2)).dtype == np.float64  # arrays keep their dtype
    assert (Tensor(np.ones(2, np.float32)) * 2.5).dtype == np.float32  # Python scalars do not upcast
    ember.set_default_dtype("float64")
    assert Tensor([1.0]).dtype == np.float64
    ember.set_default_dtype("float32")
    with pytest.raises(ValueError, match="float32"):
        ember.set_default_dtype("int8")


def test_set_seed_makes_initialisation_reproducible():
    from ember.layers import Dense

    def weights():
        ember.set_seed(42)
        layer = Dense(5)
        layer(np.ones((1, 3)))
        return layer.get_weights()[0]

    np.testing.assert_array_equal(weights(), weights())
    ember.set_seed(43)
    other = Dense(5)
    other(np.ones((1, 3)))
    assert not np.array_equal(weights(), other.get_weights()[0])


def test_integer_tensor_cannot_require_grad():
    with pytest.raises(TypeError, match="floating"):
        Tensor(np.array([1, 2]), requires_grad=True)


def test_gpu_request_without_cuda_is_clear():
    from ember.engine.backend import to_device
    from ember.kernels import cupy_or_none

    if cupy_or_none() is not None:
        pytest.skip("a GPU is present")
    with pytest.raises(RuntimeError, match="CuPy"):
        to_device(np.zeros(2), "gpu")


def test_the_op_profiler_attributes_a_step_to_its_ops():
    import ember
    from ember.engine.profiler import profile
    from ember.layers import Conv2D, Dense, Flatten

    ember.set_seed(0)
    model = ember.Sequential([Conv2D(2, 3, activation="relu", input_shape=(6, 6, 1)), Flatten(), Dense(3)])
    x = np.random.default_rng(0).normal(size=(4, 6, 6, 1)).astype(np.float32)
    with profile() as p:
        for _ in range(3):
            model.zero_grad()
            ember.engine.functional.sum(model(x, training=True)).backward()
    rows = p.table(per=3)
    names = {(name, phase) for name, phase, *_ in rows}
    # the layer's convolution with its bias and ReLU is one op
    assert {("Conv2DBiasActivation", "forward"), ("Conv2DBiasActivation", "backward"), ("MatMul", "forward")} <= names
    conv = next(r for r in rows if r[:2] == ("Conv2DBiasActivation", "forward"))
    assert conv[3] == 1.0  # calls per step
    assert rows[-1][0] == "(outside ops)" and 0 <= rows[-1][2] and abs(sum(r[4] for r in rows) - 1) < 1e-9
    with pytest.raises(RuntimeError, match="already being recorded"), profile(), profile():
        pass
    with ember.engine.profiler.profile() as quiet:
        pass
    assert quiet.seconds == {}  # nothing ran


@pytest.mark.parametrize("index", [
    (slice(None), -1), (slice(None), slice(2, 5)), (Ellipsis, 0), (1, slice(None, None, -2), None),  # basic
    (slice(None), np.array([0, 2, 2, 4])), (np.array([1, 1, 0]),),  # advanced: repeated picks add up
])
def test_indexing_gradient_basic_and_advanced(float64, index):
    """Basic indices (slices, integers, None, ...) take the assignment route, advanced ones the
    scatter-add; both against finite differences, and repeated advanced picks sum their gradients."""
    rng = np.random.default_rng(0)
    a = rng.normal(size=(3, 6, 2))
    weights = rng.normal(size=a[index].shape)

    probe = a.copy()

    def loss():
        return float((probe[index] * weights).sum())

    t = Tensor(a, requires_grad=True)
    (F.getitem(t, index) * Tensor(weights)).sum().backward()
    assert relative_error(t.grad, numeric_gradient(loss, probe)) < 1e-7
    expected = np.zeros_like(a)
    np.add.at(expected, index, weights)
    np.testing.assert_array_equal(t.grad, expected)


def _zeroed_leaf(array):
    w = Tensor(array, requires_grad=True)
    w.grad = np.full_like(array, 7.0)  # stale values: zero_grad must clear them before any write
    w.zero_grad()
    return w


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_zeroed_weight_gradients_written_in_place_match_numpy(dtype):
    """After zero_grad, a matrix product writes its weight's gradient straight into .grad; the result is
    x.T @ g (NumPy), the buffer stays the same array, and a second backward still adds."""
    rng = np.random.default_rng(3)
    x, g = rng.standard_normal((5, 4)).astype(dtype), rng.standard_normal((5, 3)).astype(dtype)
    w = _zeroed_leaf(rng.standard_normal((4, 3)).astype(dtype))
    buffer = w.grad
    (Tensor(x) @ w).backward(g)
    assert w.grad is buffer
    np.testing.assert_allclose(w.grad, x.T @ g, rtol=1e-5)
    (Tensor(x) @ w).backward(g)  # no zero_grad in between: accumulates
    np.testing.assert_allclose(w.grad, 2 * (x.T @ g), rtol=1e-5)


def test_zeroed_leaf_used_several_times_sums_every_path(float64):
    """A zeroed weight read by several products (and as both operands of one) gets every path's
    gradient, against finite differences."""
    rng = np.random.default_rng(4)
    x, b = rng.standard_normal((3, 3)), rng.standard_normal((3, 3))
    r = rng.standard_normal((3, 3))

    def f(w):
        return (x @ w + F.relu(x @ w) @ w + w @ w) * r

    w = _zeroed_leaf(b.copy())
    (f(w)).sum().backward()
    num = numeric_gradient(lambda: float(f(Tensor(b)).numpy().sum()), b)
    assert relative_error(w.grad, num) < 1e-6


def test_flat_zero_grad_then_training_step_matches_plain_accumulation(float64):
    """A model's flat zero_grad lets products write their gradients in place; the gradients equal those
    of a model whose .grad was zeroed without the flag (plain accumulation)."""
    from ember.layers import Dense, Sequential

    rng = np.random.default_rng(5)
    x = rng.standard_normal((6, 4))
    grads = []
    for flagged in (True, False):
        ember.set_seed(1)
        model = Sequential([Dense(5, activation="relu", input_shape=(4,)), Dense(2)])
        model(x)
        flat = model._flat_parameters()
        flat.grad[next(iter(flat.grad))][...] = 3.0
        if flagged:
            model.zero_grad()
        else:
            flat.grad[next(iter(flat.grad))][...] = 0
        (model(x) ** 2).sum().backward()
        grads.append(model.gradients_flat().copy())
    np.testing.assert_array_equal(grads[0], grads[1])
    assert np.abs(grads[0]).min() >= 0 and np.count_nonzero(grads[0]) > 0


def test_embedding_gradient_added_into_an_existing_leaf_gradient():
    """A table whose .grad exists (as in a flat gradient buffer) gets the lookup's rows added in place by
    the op itself; the result equals the gradient without one, a second lookup of the same table and
    a gradient already there included."""
    import numpy as np

    from ember.engine import Tensor
    from ember.engine.ops.shape import EmbeddingLookup

    rng = np.random.default_rng(0)
    table = rng.normal(size=(6, 3))
    ids, ids2 = np.array([[0, 2, 2], [5, 0, 1]]), np.array([4, 2])
    coef, coef2 = rng.normal(size=(2, 3, 3)), rng.normal(size=(2, 3))

    def grad(existing):
        t = Tensor(table.copy(), requires_grad=True)
        t.grad = None if existing is None else existing.copy()
        kept = t.grad
        loss = (EmbeddingLookup.apply(t, ids=ids) * Tensor(coef)).sum()
        loss = loss + (EmbeddingLookup.apply(t, ids=ids2) * Tensor(coef2)).sum()
        loss.backward()
        if existing is not None:
            assert t.grad is kept  # in place
        return t.grad

    fresh = grad(None)
    expected = np.zeros_like(table)
    np.add.at(expected, ids.reshape(-1), coef.reshape(-1, 3))
    np.add.at(expected, ids2, coef2)
    np.testing.assert_allclose(fresh, expected, rtol=1e-12)
    before = rng.normal(size=table.shape)
    np.testing.assert_allclose(grad(before), before + expected, rtol=1e-12)
