"""The distributed optimizer's plan and its trainer function, without Spark: two trainers run in
threads and exchange blocks through an in-memory store; the result equals the local optimizer."""
import threading

import numpy as np
import pytest

import ember
from ember import optim
from ember.layers import Dense
from ember.optim import distri_optimizer as D
from ember.optim.spark_blocks import BlockTimeout


def test_plan_helpers():
    assert D.batch_shares(10, 3) == [4, 3, 3]
    assert D.assign_partitions(5, 2) == [[0, 2, 4], [1, 3]]
    assert D.block_bounds(10, 3) == [(0, 4), (4, 7), (7, 10)]
    np.testing.assert_array_equal(D.sample_positions(2, 3, 7), [6, 0, 1])  # cycles through the partition
    assert D.global_batch_order([2, 3], [1, 1], [[1], [0]], 0) == [(1, 0), (0, 0)]


class MemoryBlocks:
    """put/get/remove like the BlockManager client, in memory, get waiting for the block."""

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


def test_two_trainers_in_threads_equal_the_local_optimizer(float64):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(90, 4))
    y = (x[:, 0] > 0).astype(np.int64)
    partitions = [list(zip(x[:40], y[:40])), list(zip(x[40:], y[40:]))]

    def model():
        ember.set_seed(0)
        return ember.Sequential([Dense(6, activation="relu", input_shape=(4,)), Dense(2, activation="softmax")])

    trained = model()
    spec = {"run": "t", "trainers": 2, "start": 0, "stop": 7, "assignment": [[0], [1]], "shares": [8, 8],
            "batch_size": 16, "iterations_per_epoch": 6, "dtype": "float64",
            "model_json": D.json.dumps(D.serialize_layer(trained)),
            "criterion": "sparse_categorical_crossentropy", "optim_class": "SGD", "learning_rate": 0.1,
            "hyper": dict(optim.SGD(0.1, momentum=0.9).hyper), "schedule": optim.Default(), "clip_const": None,
            "clip_norm": 5.0, "seed": 3, "timeout": 10, "state_from": None}
    store = MemoryBlocks()
    param = trained.parameters_flat()
    for q, (a, b) in enumerate(D.block_bounds(param.size, 2)):
        store.put(D._block("t", "w", 0, q), param[a:b].copy())
    store.put(D._block("t", "x", 0), D.npz_bytes({}))
    barrier = threading.Barrier(2)
    results = {}

    def trainer(w):
        D._WORKER_CACHE.clear()
        results[w] = D.train_segment(w, ((w, s) for s in partitions[w]), spec, store, barrier.wait)

    threads = [threading.Thread(target=trainer, args=(w,)) for w in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r[0] for r in results[0]] == list(range(7)) and all(r[2] == 8 for r in results[1])
    final = np.concatenate([np.frombuffer(store.get(D._block("t", "w", 7, q)), dtype=np.float64) for q in range(2)])
    # the local optimizer on the same global batches
    order = [(p, j) for it in range(7) for p, j in D.global_batch_order([40, 50], [8, 8], [[0], [1]], it)]
    lx = np.array([partitions[p][j][0] for p, j in order])
    ly = np.array([partitions[p][j][1] for p, j in order])
    reference = model()
    local = optim.Optimizer(reference, (lx, ly), "sparse_categorical_crossentropy", optim.SGD(0.1, momentum=0.9),
                            optim.MaxIteration(7), 16)
    local.set_shuffle(False).set_gradclip_l2norm(5.0).set_progress(0, quiet=True).optimize()
    np.testing.assert_allclose(final, reference.parameters_flat(), rtol=1e-12, atol=1e-14)
    leftovers = [k for k in store.blocks if "-g-" in k or "-n-" in k]
    assert leftovers == []  # every gradient and norm block was removed
    with pytest.raises(BlockTimeout):
        store.get("never", timeout=0.01)


def test_bf16_codec():
    a = np.array([1.0, -2.5, 3.14159265, 1e-3, 65504.0, 0.0], dtype=np.float32)
    back = D.bf16_decode(D.bf16_encode(a).tobytes())
    np.testing.assert_allclose(back, a, rtol=2 ** -8)
    assert D.bf16_encode(a).nbytes == a.nbytes // 2
    assert back[0] == 1.0 and back[1] == -2.5  # exactly representable values survive
    # round to nearest even: 1 + 2^-8 lies halfway between 1 and 1 + 2^-7 and goes to 1
    assert D.bf16_decode(D.bf16_encode(np.array([1 + 2 ** -8], np.float32)).tobytes())[0] == 1.0
