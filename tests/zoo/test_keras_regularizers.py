"""Kernel, bias, recurrent and activity regularizers (``keras.regularizers``): the penalties, their
gradients, their place in the training loss (locally and in the Spark trainer), their configs, and the
same training and evaluation numbers as Keras 3 (torch backend) from the same weights."""
import json
import threading

import numpy as np
import pytest
from keras_reference import keras_or_skip as _keras  # tests/ is on sys.path (conftest)

import ember
from ember import layers, optim, regularizers
from ember.engine import Tensor
from ember.layers.serialization import npz_bytes, serialize_layer
from ember.optim.spark import parameter as P
from ember.optim.spark import plan
from ember.optim.spark import trainer as T
from ember.optim.spark.blocks import BlockStore, BlockTimeout


def test_penalties_by_hand():
    x = np.array([[1.0, -2.0], [0.5, 0.0]])
    assert regularizers.l1(0.1)(x).item() == pytest.approx(0.1 * 3.5)
    assert regularizers.l2(0.1)(x).item() == pytest.approx(0.1 * 5.25)
    assert regularizers.l1_l2(l1=0.1, l2=0.2)(x).item() == pytest.approx(0.35 + 0.2 * 5.25)
    assert regularizers.L1L2()(x).item() == 0.0
    assert regularizers.get("l2").l2 == 0.01 and regularizers.get("L1").l1 == 0.01
    with pytest.raises(ValueError, match="l2 must be a finite number >= 0"):
        regularizers.L2(-1.0)
    with pytest.raises(ValueError, match="unknown regularizer 'l3'"):
        layers.Dense(2, kernel_regularizer="l3")


def test_penalty_gradients_match_finite_differences(float64):
    """d(l1 * sum|w| + l2 * sum w^2)/dw = l1 * sign(w) + 2 l2 w, through the layer's losses."""
    rng = np.random.default_rng(0)
    layer = layers.Dense(3, kernel_regularizer=regularizers.l1_l2(l1=0.03, l2=0.2),
                         bias_regularizer=regularizers.l2(0.5), activity_regularizer=regularizers.l2(0.05))
    x = rng.normal(size=(5, 4))
    layer(x)
    layer.bias.data[...] = rng.normal(size=3)

    def penalty():
        layer(x)
        return float(sum(p.item() for p in layer.losses))

    for w in (layer.kernel, layer.bias):
        w.grad = None
        layer(x)
        total = layer.penalty()
        total.backward()
        numeric = np.zeros(w.shape)
        for i in np.ndindex(w.shape):
            old = w.data[i]
            w.data[i] = old + 1e-6
            up = penalty()
            w.data[i] = old - 1e-6
            down = penalty()
            w.data[i] = old
            numeric[i] = (up - down) / 2e-6
        np.testing.assert_allclose(w.grad, numeric, rtol=1e-6, atol=1e-8)


def test_configs_keep_the_regularizers(tmp_path):
    model = ember.Sequential([
        layers.Input(shape=(6, 4)),
        layers.LSTM(3, return_sequences=True, kernel_regularizer="l2", recurrent_regularizer=regularizers.l1(0.2),
                    bias_regularizer=regularizers.l2(0.3)),
        layers.Conv1D(2, 2, kernel_regularizer=regularizers.l1_l2(l1=0.1, l2=0.2), activity_regularizer="l1"),
        layers.Flatten(),
        layers.Dense(2, kernel_regularizer=regularizers.L2(1e-3), bias_regularizer="l1"),
    ])
    cfg = model.layers[1].get_config()
    assert cfg["kernel_regularizer"] == {"class_name": "L1L2", "config": {"l1": 0.1, "l2": 0.2}}
    assert cfg["activity_regularizer"] == {"class_name": "L1", "config": {"l1": 0.01}}
    assert "bias_regularizer" not in cfg
    path = str(tmp_path / "m.ember")
    model.save(path)
    again = ember.load_model(path)
    for a, b in zip(model.layers, again.layers):
        assert a.get_config().keys() == b.get_config().keys()
        for key in ("kernel_regularizer", "recurrent_regularizer", "bias_regularizer", "activity_regularizer"):
            assert repr(getattr(a, key, None)) == repr(getattr(b, key, None)), key
    x = np.random.default_rng(0).normal(size=(4, 6, 4)).astype(np.float32)
    model(x)
    again(x)
    np.testing.assert_allclose([p.item() for p in again.losses], [p.item() for p in model.losses], rtol=1e-6)
    assert len(model.losses) == 7  # 3 LSTM weights, the Conv1D kernel, the Dense kernel and bias, one activity
    depthwise = layers.DepthwiseConv2D(3, depthwise_regularizer="l2")
    assert depthwise.get_config()["depthwise_regularizer"] == {"class_name": "L2", "config": {"l2": 0.01}}


def test_a_plain_function_regularizer_trains_but_cannot_be_saved(tmp_path):
    model = ember.Sequential([layers.Dense(2, input_shape=(3,), kernel_regularizer=lambda w: (w * w).sum() * 0.1)])
    model.compile("sgd", "mse")
    model.fit(np.ones((4, 3)), np.zeros((4, 2)), verbose=0)
    with pytest.raises(ValueError, match="only Regularizer subclasses"):
        model.save(str(tmp_path / "m.ember"))


def _pair(keras, seed=0):
    """The same small functional model in Keras and in ember, with Keras's weights copied into ours."""
    def build(lib):
        inp = lib.Input(shape=(6,))
        h = lib.layers.Dense(5, activation="tanh", kernel_regularizer=lib.regularizers.l2(0.05),
                             bias_regularizer=lib.regularizers.l1(0.02),
                             activity_regularizer=lib.regularizers.L1L2(l1=0.01, l2=0.03))(inp)
        out = lib.layers.Dense(3, activation="softmax", kernel_regularizer=lib.regularizers.L1L2(l1=0.04))(h)
        return lib.Model(inp, out)

    keras.utils.set_random_seed(seed)
    theirs = build(keras)
    ours = build(ember)
    weights = [w.copy() for w in theirs.get_weights()]
    weights[1] += 0.1  # non-zero biases, so that the bias penalty counts
    theirs.set_weights(weights)
    ours.set_weights(weights)
    return theirs, ours


def test_training_and_evaluation_match_keras():
    """Two epochs of SGD in order (no shuffling): the same weights, History losses and evaluate loss as Keras."""
    keras = _keras()
    rng = np.random.default_rng(3)
    x = rng.normal(size=(64, 6)).astype(np.float32)
    y = rng.integers(0, 3, size=64)
    theirs, ours = _pair(keras)
    theirs(x[:8])
    ours(x[:8])
    np.testing.assert_allclose(sum(float(p.item()) for p in ours.losses),
                               sum(float(keras.ops.convert_to_numpy(p)) for p in theirs.losses), rtol=1e-5)
    theirs.compile(keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy", metrics=["accuracy"])
    ours.compile(ember.optimizers.SGD(0.1), "sparse_categorical_crossentropy", ["accuracy"])
    ht = theirs.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    ho = ours.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6)
    np.testing.assert_allclose(ho.history["loss"], ht.history["loss"], rtol=2e-5)
    et = theirs.evaluate(x, y, batch_size=16, verbose=0)
    eo = ours.evaluate(x, y, batch_size=16)
    np.testing.assert_allclose(eo, et, rtol=2e-5)  # the loss counts the penalties, as Keras's does
    out = ours(x, training=False)  # one batch of all 64: the activity penalty over all samples / 64
    plain = ember.losses.get("sparse_categorical_crossentropy")(y, out).item()
    assert ours.penalty().item() > 0.01 and eo[0] == pytest.approx(plain + ours.penalty().item(), rel=1e-5)


class MemoryBlocks(BlockStore):
    """put/get/remove like the BlockManager client, in memory."""

    def __init__(self):
        self.blocks, self.cond = {}, threading.Condition()

    def put(self, block_id, payload):
        with self.cond:
            self.blocks[block_id] = bytes(memoryview(payload).cast("B"))
            self.cond.notify_all()

    def get(self, block_id, timeout=10):
        with self.cond:
            if not self.cond.wait_for(lambda: block_id in self.blocks, timeout):
                raise BlockTimeout(block_id)
            return self.blocks[block_id]

    def remove(self, block_id):
        with self.cond:
            self.blocks.pop(block_id, None)


def _regularized_mlp():
    ember.set_seed(0)
    return ember.Sequential([
        layers.Dense(6, activation="relu", input_shape=(4,), kernel_regularizer=regularizers.l2(0.05),
                     bias_regularizer=regularizers.l1(0.1), activity_regularizer=regularizers.l1_l2(l1=0.02, l2=0.01)),
        layers.Dense(2, activation="softmax", kernel_regularizer=regularizers.l1(0.03))])


def test_the_spark_trainer_adds_the_same_penalties_as_the_local_loop(float64):
    """Two trainers (threads, in-memory blocks) with 8 samples each of a global batch of 16: a trainer adds
    n times the penalties' gradient, the owners divide the sum by 16, which is the local gradient of
    mean loss + penalties. Equal to 1e-12 after 7 iterations, losses included."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(90, 4))
    y = (x[:, 0] > 0).astype(np.int64)
    partitions = [list(zip(x[:40], y[:40])), list(zip(x[40:], y[40:]))]
    trained = _regularized_mlp()
    settings = T.TrainerSettings(
        run="r", trainers=2, start=0, stop=7, assignment=[[0], [1]], partition_sizes=[40, 50], batch_size=16,
        iterations_per_epoch=6, dtype="float64", model_json=json.dumps(serialize_layer(trained)),
        criterion="sparse_categorical_crossentropy", optim_class="SGD", learning_rate=0.1,
        hyper=dict(optim.SGD(0.1, momentum=0.9).hyper), schedule=optim.Default(), seed=3, timeout=10)
    store = MemoryBlocks()
    param = trained.parameters_flat()
    for q, (a, b) in enumerate(P.block_bounds(param.size, 2)):
        store.put(P.block_name("r", "w", 0, q), param[a:b].copy())
    store.put(P.block_name("r", "x", 0), npz_bytes({}))
    barrier = threading.Barrier(2)
    results = {}

    def trainer(w):
        T._WORKER_CACHE.clear()
        results[w] = T.train_segment(w, ((w, s) for s in partitions[w]), settings, store, barrier.wait)[0]

    threads = [threading.Thread(target=trainer, args=(w,)) for w in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    final = np.concatenate([np.frombuffer(store.get(P.block_name("r", "w", 7, q)), dtype=np.float64)
                            for q in range(2)])
    order = [(p, j) for it in range(7) for p, j in plan.global_batch_order([40, 50], 16, [[0], [1]], it)]
    lx = np.array([partitions[p][j][0] for p, j in order])
    ly = np.array([partitions[p][j][1] for p, j in order])
    reference = _regularized_mlp()
    losses = []
    local = optim.Optimizer(reference, (lx, ly), "sparse_categorical_crossentropy", optim.SGD(0.1, momentum=0.9),
                            optim.MaxIteration(7), 16)
    local.add_listener(type("L", (), {"on_iteration_end": lambda self, o, st: losses.append(st["loss"])})())
    local.set_shuffle(False).set_progress(0, quiet=True).optimize()
    np.testing.assert_allclose(final, reference.parameters_flat(), rtol=1e-12, atol=1e-14)
    distributed = [(results[0][i][1] + results[1][i][1]) / 16 for i in range(7)]
    np.testing.assert_allclose(distributed, losses, rtol=1e-12)
    # and the penalties did matter: without them the weights end elsewhere
    plain = ember.Sequential([layers.Dense(6, activation="relu", input_shape=(4,)),
                              layers.Dense(2, activation="softmax")])
    ember.set_seed(0)
    plain.set_weights(_regularized_mlp().get_weights())
    optim.Optimizer(plain, (lx, ly), "sparse_categorical_crossentropy", optim.SGD(0.1, momentum=0.9),
                    optim.MaxIteration(7), 16).set_shuffle(False).set_progress(0, quiet=True).optimize()
    assert np.abs(plain.parameters_flat() - final).max() > 1e-3


def test_penalty_tensor_is_part_of_the_graph():
    layer = layers.Dense(2, kernel_initializer="ones", kernel_regularizer=regularizers.l2(0.5))
    layer(np.ones((1, 3), dtype=np.float32))
    penalty = layer.penalty()
    assert isinstance(penalty, Tensor) and penalty.item() == pytest.approx(0.5 * 6)
    assert layers.Dense(2).penalty() is None
