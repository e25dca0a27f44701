"""Regularizers on Spark: two partitions (two trainers exchanging blocks) train with the penalties to
the same weights and losses as the local loop on the same global batches, in float64."""
import numpy as np
import pytest

import ember
from ember import layers, optim, regularizers

pytestmark = pytest.mark.spark


def regularized_mlp():
    ember.set_seed(0)
    return ember.Sequential([
        layers.Dense(8, activation="tanh", input_shape=(5,), kernel_regularizer=regularizers.l2(0.05),
                     bias_regularizer=regularizers.l1(0.1), activity_regularizer=regularizers.l1_l2(l1=0.02, l2=0.01)),
        layers.Dense(2, activation="softmax", kernel_regularizer=regularizers.l1(0.03))])


def test_distributed_training_with_regularizers_equals_local(sc):
    from ember.optim.spark.plan import global_batch_order

    ember.set_default_dtype("float64")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, 5))
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
    rdd = sc.parallelize([(x[i], y[i]) for i in range(len(x))], 2)
    losses = {"spark": [], "local": []}

    def recorder(key):
        return type("Recorder", (), {"on_iteration_end": lambda self, o, st: losses[key].append(st["loss"])})()

    model = regularized_mlp()
    opt = optim.Optimizer(model, rdd, "sparse_categorical_crossentropy", optim.SGD(0.1, momentum=0.9),
                          optim.MaxIteration(10), 16)
    opt.add_listener(recorder("spark")).set_shuffle(False).set_progress(0, quiet=True).optimize()
    sizes = [len(p) for p in rdd.glom().collect()]
    offsets = np.cumsum([0] + sizes)
    index = [offsets[p] + j for it in range(10) for p, j in global_batch_order(sizes, 16, opt.engine.assignment, it)]
    reference = regularized_mlp()
    local = optim.Optimizer(reference, (x[index], y[index]), "sparse_categorical_crossentropy",
                            optim.SGD(0.1, momentum=0.9), optim.MaxIteration(10), 16)
    local.add_listener(recorder("local")).set_shuffle(False).set_progress(0, quiet=True).optimize()
    for a, b in zip(model.get_weights(), reference.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(losses["spark"], losses["local"], rtol=1e-10)
    # the reported loss holds the penalties: more than the cross-entropy of the same weights alone
    reference(x[index[-16:]], training=True)
    assert reference.penalty().item() > 0.05
