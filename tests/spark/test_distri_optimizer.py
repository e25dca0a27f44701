"""The distributed optimizer: the same weights as the local optimizer on the same global batches,
on 1, 2 and 3 partitions of a local[2] cluster; checkpoints and validation through Spark."""
import os

import numpy as np
import pytest

import ember
from ember import optim
from ember.layers import Dense, Dropout
from ember.optim.distri_optimizer import assign_partitions, batch_shares, global_batch_order

pytestmark = pytest.mark.spark


def data(n=300):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 5))
    return x, (x[:, 0] + x[:, 1] > 0).astype(np.int64)


def mlp(dropout=False):
    ember.set_seed(0)
    layers = [Dense(8, activation="tanh", input_shape=(5,))] + ([Dropout(0.0)] if dropout else [])
    return ember.Sequential(layers + [Dense(2, activation="softmax")])


def local_equivalent(rdd, x, y, trainers, batch_size, iterations):
    """The samples of each global batch in the order the trainers contribute them."""
    sizes = [len(p) for p in rdd.glom().collect()]
    offsets = np.cumsum([0] + sizes)
    parts = len(sizes)
    assignment, shares = assign_partitions(parts, trainers), batch_shares(batch_size, parts)
    index = [offsets[p] + j for it in range(iterations) for p, j in global_batch_order(sizes, shares, assignment, it)]
    return x[index], y[index]


@pytest.mark.parametrize("dtype, tolerance", [("float64", 1e-10), ("float32", 1e-5)])
@pytest.mark.parametrize("partitions", [1, 2, 3])
@pytest.mark.parametrize("method", ["sgd", "adam"])
def test_distributed_equals_local(sc, partitions, method, dtype, tolerance):
    if dtype == "float32" and (partitions != 3 or method != "adam"):
        pytest.skip("float32: one case is enough")
    ember.set_default_dtype(dtype)
    x, y = data()
    x = x.astype(dtype)

    def make():
        return optim.SGD(0.1, momentum=0.9) if method == "sgd" else optim.Adam(0.01)

    rdd = sc.parallelize([(x[i], y[i]) for i in range(len(x))], partitions)
    model = mlp()
    opt = optim.Optimizer(model, rdd, "sparse_categorical_crossentropy", make(), optim.MaxIteration(20), 32)
    assert type(opt).__name__ == "DistriOptimizer"
    opt.set_progress(0, quiet=True).optimize()
    assert opt.state["iteration"] == 20 and opt.trainers == min(partitions, 2)
    lx, ly = local_equivalent(rdd, x, y, opt.trainers, 32, 20)
    reference = mlp()
    local = optim.Optimizer(reference, (lx, ly), "sparse_categorical_crossentropy", make(), optim.MaxIteration(20), 32)
    local.set_shuffle(False).set_progress(0, quiet=True).optimize()
    for a, b in zip(model.get_weights(), reference.get_weights()):
        np.testing.assert_allclose(a, b, rtol=tolerance, atol=tolerance)
    assert not np.allclose(model.get_weights()[0], mlp().get_weights()[0])  # it did train
    losses = [r["loss"] for r in opt.iteration_records]
    assert len(losses) == 20 and losses[-1] < losses[0]


def test_epochs_validation_checkpoint_and_clipping(sc, tmp_path):
    x, y = data(400)
    rdd = sc.parallelize([(x[i], y[i]) for i in range(len(x))], 3)
    val = sc.parallelize([(x[i], y[i]) for i in range(0, 400, 2)], 2)
    model = mlp()
    opt = optim.Optimizer(model, rdd, "sparse_categorical_crossentropy", optim.SGD(0.2, momentum=0.9),
                          optim.MaxEpoch(3), 50)
    opt.set_validation(64, val, optim.EveryEpoch(), [optim.Top1Accuracy(), optim.Loss()])
    opt.set_checkpoint(str(tmp_path), optim.EveryEpoch()).set_gradclip_l2norm(1.0).set_progress(0, quiet=True)
    opt.optimize()
    assert opt.state["iteration"] == 3 * 8 and opt.state["epoch"] == 4
    assert opt.state["score"] > 0.9
    found = sorted(os.listdir(tmp_path))
    assert found == ["checkpoint-16.ember", "checkpoint-24.ember", "checkpoint-8.ember"]
    loaded = optim.load_checkpoint(os.path.join(tmp_path, "checkpoint-24.ember"))
    for a, b in zip(loaded.weights, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert any(k.startswith("block1/") for k in loaded.optim_state["state"])  # every owner's momentum is saved
    predictions = model.predict(x).argmax(1)
    assert (predictions == y).mean() > 0.9
