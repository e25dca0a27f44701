"""The fused sequence ops (ember.engine.ops.recurrent) against the per-step path of the recurrent
layers (the reference), and against finite differences, with masks, go_backwards, return_sequences
and return_state, in float64 and float32."""
import numpy as np
import pytest

import ember
from ember.engine import Tensor
from ember.engine.ops.recurrent import GRUSequence, LSTMSequence, SimpleRNNSequence
from ember.layers import GRU, LSTM, SimpleRNN
from ember.layers.base import set_mask
from tests.layer_testing import numeric_gradient, relative_error, run_layer_test

OPS = {SimpleRNN: SimpleRNNSequence, LSTM: LSTMSequence, GRU: GRUSequence}


@pytest.fixture
def float64():
    ember.set_default_dtype("float64")
    yield
    ember.set_default_dtype("float32")


def ops_in_graph(tensors):
    seen, stack, found = set(), list(tensors), set()
    while stack:
        t = stack.pop()
        ctx = getattr(t, "_ctx", None)
        if ctx is None or id(ctx) in seen:
            continue
        seen.add(id(ctx))
        found.add(type(ctx))
        stack.extend(ctx.parents)
    return found


def run(layer, x, mask, fused, weights):
    """Outputs, input gradient and weight gradients of ``layer`` on ``x`` (fused or per-step path)."""
    layer._sequence_fusion = fused
    layer(Tensor(x))
    layer.set_weights(weights)
    for p in layer.trainable_weights:
        p.grad = None
    t = Tensor(x, requires_grad=True)
    if mask is not None:
        set_mask(t, mask)
    out = layer(t)
    out = out if isinstance(out, list) else [out]
    assert (OPS[type(layer)] in ops_in_graph(out)) == fused
    r = np.random.default_rng(1)
    loss = None
    for o in out:
        term = (o * Tensor(r.standard_normal(o.shape).astype(x.dtype))).sum()
        loss = term if loss is None else loss + term
    loss.backward()
    return [o.numpy() for o in out], t.grad, [p.grad for p in layer.trainable_weights]


@pytest.mark.parametrize("cls", [SimpleRNN, LSTM, GRU])
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("return_state", [False, True])
@pytest.mark.parametrize("masked", [False, True])
def test_fused_equals_per_step_path_float64(cls, return_sequences, go_backwards, return_state, masked, float64):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 6, 3))
    mask = None
    if masked:
        mask = rng.random((4, 6)) > 0.35
        mask[0] = False  # a sequence that is all padding
        mask[1, -2:] = False  # trailing padding
    kwargs = {"return_sequences": return_sequences, "go_backwards": go_backwards, "return_state": return_state}
    layer = cls(5, **kwargs)
    layer(Tensor(x))
    weights = [rng.standard_normal(w.shape) * 0.6 for w in layer.get_weights()]
    fused = run(layer, x, mask, True, weights)
    reference = run(cls(5, **kwargs), x, mask, False, weights)
    assert len(fused[0]) == len(reference[0]) == (1 + (cls._state_count if return_state else 0))
    for a, b in zip(fused[0] + [fused[1]] + fused[2], reference[0] + [reference[1]] + reference[2]):
        assert a.shape == b.shape and a.dtype == np.float64
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10)
    if masked and return_sequences:
        out = layer(set_mask(Tensor(x), mask))
        np.testing.assert_array_equal(ember.layers.base.get_mask(out[0] if return_state else out), mask)


@pytest.mark.parametrize("cls", [SimpleRNN, LSTM, GRU])
def test_fused_equals_per_step_path_float32_without_bias(cls):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 7, 4)).astype(np.float32)
    mask = rng.random((3, 7)) > 0.3
    layer = cls(6, use_bias=False, return_sequences=True)
    layer(Tensor(x))
    weights = [(rng.standard_normal(w.shape) * 0.5).astype(np.float32) for w in layer.get_weights()]
    fused = run(layer, x, mask, True, weights)
    reference = run(cls(6, use_bias=False, return_sequences=True), x, mask, False, weights)
    for a, b in zip(fused[0] + [fused[1]] + fused[2], reference[0] + [reference[1]] + reference[2]):
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_fallback_paths_do_not_use_the_fused_ops():
    x = Tensor(np.random.default_rng(0).standard_normal((2, 4, 3)).astype(np.float32), requires_grad=True)
    assert not ops_in_graph([LSTM(3, recurrent_activation="tanh")(x)]) & set(OPS.values())
    assert not ops_in_graph([SimpleRNN(3, activation="relu")(x)]) & set(OPS.values())
    assert not ops_in_graph([GRU(3, recurrent_dropout=0.5)(x, training=True)]) & set(OPS.values())
    # recurrent dropout only acts in training: inference runs fused
    assert GRUSequence in ops_in_graph([GRU(3, recurrent_dropout=0.5)(x, training=False)])
    # input dropout is applied before the fused op
    assert LSTMSequence in ops_in_graph([LSTM(3, dropout=0.5)(x, training=True)])


@pytest.mark.parametrize("factory", [
    lambda: SimpleRNN(3, return_sequences=True, go_backwards=True),
    lambda: LSTM(3),
    lambda: LSTM(2, go_backwards=True, return_sequences=True, use_bias=False),
    lambda: GRU(3, return_sequences=True),
    lambda: GRU(2, go_backwards=True),
])
def test_fused_layers_pass_finite_differences(factory):
    layer = run_layer_test(factory, np.random.default_rng(3).standard_normal((2, 4, 3)))
    assert layer._sequence_op is not None


@pytest.mark.parametrize("cls", [SimpleRNN, LSTM, GRU])
def test_fused_masked_gradients_against_finite_differences(cls, float64):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 5, 2))
    mask = np.array([[1, 1, 0, 1, 0], [0, 0, 0, 0, 0], [1, 0, 1, 1, 1]], dtype=bool)
    layer = cls(3, return_sequences=True, return_state=True, go_backwards=True)
    layer(Tensor(x))
    coefs = [rng.standard_normal(s) for s in [(3, 5, 3)] + [(3, 3)] * cls._state_count]

    def loss(t):
        out = layer(set_mask(t, mask))
        total = None
        for o, c in zip(out, coefs):
            term = (o * Tensor(c)).sum()
            total = term if total is None else total + term
        return total

    t = Tensor(x, requires_grad=True)
    loss(t).backward()
    assert OPS[cls] in ops_in_graph([loss(Tensor(x, requires_grad=True))])

    def value():
        return float(loss(Tensor(x)).numpy())

    assert relative_error(t.grad, numeric_gradient(value, x)) < 1e-6
    for p in layer.trainable_weights:
        assert relative_error(p.grad, numeric_gradient(value, p.data)) < 1e-6, p.name


def test_sequence_op_rejects_bad_shapes():
    x, u = Tensor(np.zeros((2, 3, 4))), Tensor(np.zeros((5, 20)))
    with pytest.raises(ValueError, match="kernel has shape"):
        LSTMSequence.apply(x, Tensor(np.zeros((3, 20))), u)
    with pytest.raises(ValueError, match="mask has shape"):
        LSTMSequence.apply(x, Tensor(np.zeros((4, 20))), u, mask=np.ones((3, 2), bool))
    with pytest.raises(ValueError, match="steps >= 1"):
        SimpleRNNSequence.apply(Tensor(np.zeros((2, 0, 4))), Tensor(np.zeros((4, 5))), Tensor(np.zeros((5, 5))))
    with pytest.raises(ValueError, match=r"bias has shape \(15,\), expected \(2, 15\) \(input and recurrent"):
        GRUSequence.apply(x, Tensor(np.zeros((4, 15))), Tensor(np.zeros((5, 15))), Tensor(np.zeros(15)))
    with pytest.raises(ValueError, match=r"bias has shape \(2, 20\), expected \(20,\)"):
        LSTMSequence.apply(x, Tensor(np.zeros((4, 20))), u, Tensor(np.zeros((2, 20))))
    with pytest.raises(ValueError, match="outputs must be one of"):
        LSTMSequence.apply(x, Tensor(np.zeros((4, 20))), u, outputs="first")


@pytest.mark.parametrize("op, gates", [(SimpleRNNSequence, 1), (LSTMSequence, 4), (GRUSequence, 3)])
@pytest.mark.parametrize("masked", [False, True])
def test_sequence_and_last_outputs_equal_slices_of_the_packed_output(op, gates, masked, float64):
    """outputs="sequence" / "last" give the packed output's slices, and the same gradients as
    slicing the packed output (the slices' gradients scatter into zeros: the reference)."""
    rng = np.random.default_rng(5)
    n, steps, d, u = 3, 5, 4, 2
    x = rng.standard_normal((n, steps, d))
    weights = [rng.standard_normal((d, gates * u)), rng.standard_normal((u, gates * u)) * 0.5,
               rng.standard_normal((2, 3 * u) if op is GRUSequence else (gates * u,))]
    mask = rng.random((n, steps)) > 0.3 if masked else None
    coef = {"sequence": rng.standard_normal((n, steps, u)), "last": rng.standard_normal((n, u))}

    def grads(outputs):
        ts = [Tensor(a, requires_grad=True) for a in [x] + weights]
        out = op.apply(*ts, mask=mask, go_backwards=True, outputs=outputs)
        if outputs == "packed":
            out = {"sequence": out[:, :steps], "last": out[:, steps - 1]}[which]
        (out * Tensor(coef[which])).sum().backward()
        return [out.numpy()] + [t.grad for t in ts]

    for which in ("sequence", "last"):
        for a, b in zip(grads(which), grads("packed")):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cls", [SimpleRNN, LSTM, GRU])
def test_inference_equals_training_forward(cls):
    """Without a recorded graph the ops keep one step's gates (not every step's); the outputs are the
    same."""
    rng = np.random.default_rng(6)
    x = rng.standard_normal((4, 7, 3)).astype(np.float32)
    layer = cls(5, return_sequences=True)
    layer(Tensor(x))
    with ember.engine.no_grad():
        untracked = layer(Tensor(x))
    assert not ops_in_graph([untracked])  # nothing recorded: the one-step buffers
    inference = untracked.numpy()
    trained = layer(Tensor(x, requires_grad=True))
    assert OPS[cls] in ops_in_graph([trained])
    np.testing.assert_array_equal(inference, trained.numpy())


@pytest.mark.parametrize("cls", [SimpleRNN, LSTM, GRU])
def test_per_step_products_in_column_blocks_equal_one_product(cls, float64, monkeypatch):
    """[1, x_t] @ [b; W], h @ U and dz @ U.T computed in blocks of columns (as for W5's shapes) give the
    outputs and gradients of one product each: 4 units, blocks of at most 3 * 2 * G multiply-adds."""
    from ember.engine.ops import recurrent

    monkeypatch.setattr(OPS[cls], "_loop_kernel", None)  # the Python loop's products (the kernel's: tests/kernels)
    rng = np.random.default_rng(7)
    x = rng.standard_normal((3, 6, 4))
    layer = cls(4, return_sequences=True)
    layer(Tensor(x))
    weights = [w + 0.1 for w in layer.get_weights()]
    mask = rng.random((3, 6)) > 0.3
    reference = run(layer, x, mask, True, weights)
    g = 4 * cls._gates
    monkeypatch.setattr(recurrent._Sequence, "MIN_COLUMNS", 2)
    monkeypatch.setattr(recurrent, "SMALL_MACS", 3 * 2 * g)  # batch 3: dz @ U.T in blocks of 2 columns
    blocks, view = recurrent._column_blocks(rng.standard_normal((g, 4)), np.empty((3, 4)), 2)
    assert blocks.shape == (2, g, 2) and view.shape == (2, 3, 2)
    mat, out, h = rng.standard_normal((4, g)), np.empty((3, g)), rng.standard_normal((3, 4))
    blocks, view = recurrent._column_blocks(mat, out, 2)
    assert blocks.shape[0] > 1
    np.matmul(h, blocks, out=view)
    np.testing.assert_allclose(out, h @ mat, rtol=1e-14)
    # 5 columns: no multiple of 2 below 5 divides them, one block
    assert recurrent._column_blocks(np.zeros((4, 5)), np.empty((3, 5)), 2)[0].shape == (1, 4, 5)
    blocked = run(layer, x, mask, True, weights)
    np.testing.assert_allclose(np.concatenate([np.ravel(v) for v in _flat(blocked)]),
                               np.concatenate([np.ravel(v) for v in _flat(reference)]), rtol=1e-12, atol=1e-12)


def _flat(result):
    outs, dx, dws = result
    return list(outs) + [dx] + list(dws)


@pytest.mark.parametrize("cls", [LSTM, GRU])
@pytest.mark.parametrize("mode", ["never", "always"])
def test_time_loop_in_one_kernel_equals_the_python_loop(cls, mode, float64, monkeypatch):
    """Where NumPy's OpenBLAS is found the LSTM and GRU ops run their time loop in one Numba kernel (the
    batch in parts over the threads with mode "always"); outputs and gradients equal the step-by-step
    loop's."""
    from ember.kernels.cpu.jit import THREADS, set_parallel_mode
    from ember.kernels.registry import has_kernel

    if not has_kernel(OPS[cls]._loop_kernel, "numba"):
        pytest.skip("no whole-sequence kernel here")
    rng = np.random.default_rng(8)
    x = rng.standard_normal((11, 7, 5))
    mask = rng.random((11, 7)) > 0.3
    layer = cls(6, return_sequences=True, return_state=True)
    layer(Tensor(x))
    weights = [w + 0.1 for w in layer.get_weights()]
    before = THREADS["mode"]
    set_parallel_mode(mode)
    try:
        in_kernel = run(layer, x, mask, True, weights)
        assert _sequence_op(layer(Tensor(x, requires_grad=True)), OPS[cls]).in_kernel
        monkeypatch.setattr(OPS[cls], "_loop_kernel", None)
        python_loop = run(layer, x, mask, True, weights)
        assert not _sequence_op(layer(Tensor(x, requires_grad=True)), OPS[cls]).in_kernel
    finally:
        set_parallel_mode(before)
    for a, b in zip(_flat(in_kernel), _flat(python_loop), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def _sequence_op(outputs, op):
    """The ``op`` (a sequence op class) in the graph of ``outputs``."""
    stack = list(outputs)
    while stack:
        ctx = getattr(stack.pop(), "_ctx", None)
        if isinstance(ctx, op):
            return ctx
        stack.extend(ctx.parents if ctx is not None else [])
    raise AssertionError(f"no {op.__name__} op in the graph")


@pytest.mark.parametrize("cls", [LSTM, GRU])
def test_ops_hand_the_kernels_64_byte_aligned_weights(cls, monkeypatch):
    """The weights (and their transposes, and the gates' gradients that the weight gradient's product
    reads) reach the whole-sequence kernels 64-byte aligned, so that OpenBLAS's small-matrix kernels load
    them whole (see ALIGNMENT in kernels/cpu/blas.py) and the kernels need no copy of their own."""
    from ember.kernels import registry

    name = OPS[cls]._loop_kernel
    if not registry.has_kernel(name, "numba"):
        pytest.skip("no whole-sequence kernel here")
    seen = []
    for kernel in (name, name.replace("forward", "backward")):
        inner = registry._REGISTRY[kernel]["numba"]

        def spy(*args, inner=inner, kernel=kernel):
            # the LSTM's: xh, [b; W; U] / [W; U].T, ...; the GRU's: xh, [b; W] / W.T, U / U.T, ...
            operands = list(args[1:2 if cls is LSTM else 3])
            if kernel.endswith("backward"):
                operands.append(args[9])  # dz (LSTM) / dxw (GRU)
            seen.extend((kernel, a.ctypes.data % 64) for a in operands)
            return inner(*args)

        monkeypatch.setitem(registry._REGISTRY[kernel], "numba", spy)
    x = np.random.default_rng(2).standard_normal((4, 5, 3)).astype(np.float32)
    layer = cls(7, return_sequences=True)  # rows of 28 (LSTM) and 21 (GRU) floats: not multiples of 16
    t = Tensor(x, requires_grad=True)
    layer(t).sum().backward()
    assert {k for k, _ in seen} == {name, name.replace("forward", "backward")}
    assert all(offset == 0 for _, offset in seen), seen
