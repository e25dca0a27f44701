"""One helper that checks any layer (in the spirit of Keras' ``run_layer_test``).

It builds the layer in float64, checks the output shape against ``compute_output_shape``, the
config round trip, ``count_params``, and compares every input and parameter gradient with central
finite differences.
"""
import numpy as np

import ember
from ember.engine import Tensor

GRAD_RTOL = 1e-6


def numeric_gradient(f, array, eps=1e-6):
    grad = np.zeros_like(array)
    it = np.nditer(array, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = array[i]
        array[i] = old + eps
        plus = f()
        array[i] = old - eps
        minus = f()
        array[i] = old
        grad[i] = (plus - minus) / (2 * eps)
    return grad


def relative_error(a, b):
    scale = max(np.linalg.norm(a), np.linalg.norm(b), 1e-12)
    return np.linalg.norm(a - b) / scale


def run_layer_test(factory, inputs, expected_shape=None, training=False, seed=7, check_grad=True,
                   input_grad=True, roundtrip=True):
    """Check a layer built by ``factory()`` on ``inputs`` (array or list of arrays). Returns the layer."""
    ember.set_default_dtype("float64")
    is_list = isinstance(inputs, list)
    arrays = [np.array(a, dtype=np.float64) if np.asarray(a).dtype.kind == "f" else np.asarray(a)
              for a in (inputs if is_list else [inputs])]
    layer = factory()

    def forward(tensors):
        ember.set_seed(seed)
        return layer(tensors if is_list else tensors[0], training=training)

    out = forward([Tensor(a) for a in arrays])
    assert layer.built
    shapes = [(None,) + a.shape[1:] for a in arrays]
    want = layer.compute_output_shape(shapes if is_list else shapes[0])
    assert tuple(want)[1:] == out.shape[1:], f"compute_output_shape {want} vs actual {out.shape}"
    if expected_shape is not None:
        assert out.shape == tuple(expected_shape)
    assert layer.count_params() == sum(w.size for w in layer.weights)
    assert type(layer).__name__ in repr(layer)

    if roundtrip:
        clone = type(layer).from_config(layer.get_config())
        ember.set_seed(seed)
        clone(Tensor(arrays[0]) if not is_list else [Tensor(a) for a in arrays], training=training)
        clone.set_weights(layer.get_weights())
        ember.set_seed(seed)
        out2 = clone([Tensor(a) for a in arrays] if is_list else Tensor(arrays[0]), training=training)
        np.testing.assert_array_equal(out2.numpy(), out.numpy())
        assert clone.get_config() == layer.get_config() | {"name": clone.name}

    if check_grad:
        r = np.random.default_rng(seed + 1).standard_normal(out.shape)
        tensors = [Tensor(a, requires_grad=input_grad and a.dtype.kind == "f") for a in arrays]
        params = layer.trainable_weights
        for p in params:
            p.grad = None
        y = forward(tensors)
        (y * Tensor(r)).sum().backward()

        def value():
            return float((forward([Tensor(a) for a in arrays]).numpy() * r).sum())

        checked = 0
        for t, a in zip(tensors, arrays):
            if t.requires_grad:
                num = numeric_gradient(value, a)
                err = relative_error(t.grad, num)
                assert err < GRAD_RTOL, f"input gradient of {layer.name}: relative error {err:.2e}"
                checked += 1
        for p in params:
            num = numeric_gradient(value, p.data)
            assert p.grad is not None, f"no gradient reached {p.name}"
            err = relative_error(p.grad, num)
            assert err < GRAD_RTOL, f"gradient of {p.name}: relative error {err:.2e}"
            checked += 1
        assert checked > 0, "nothing was gradient-checked"
    ember.set_default_dtype("float32")
    return layer
