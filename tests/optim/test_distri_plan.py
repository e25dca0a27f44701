"""The Spark engine's plan and its trainer function, without Spark: trainers run in threads and
exchange blocks through an in-memory store; the result equals the local optimizer."""
import dataclasses
import json
import threading
import time

import numpy as np
import pytest

import ember
from ember import optim
from ember.layers import Dense, Layer
from ember.layers.serialization import npz_bytes, serialize_layer
from ember.optim.dataset import SampleArrays
from ember.optim.loop import compute_loss
from ember.optim.spark import parameter as P
from ember.optim.spark import plan
from ember.optim.spark import trainer as T
from ember.optim.spark.blocks import BlockStore, BlockTimeout
from ember.optim.spark.engine import custom_objects


def test_plan_helpers():
    assert plan.assign_partitions(5, 2) == [[0, 2, 4], [1, 3]]
    assert P.block_bounds(10, 3) == [(0, 4), (4, 7), (7, 10)]
    # samples are dealt round-robin: batch 10 over 3 partitions gives 4/3/3, then 3/4/3, then 3/3/4
    counts = [[len(plan.sample_positions(i, p, 10, 3, 100)) for p in range(3)] for i in range(3)]
    assert counts == [[4, 3, 3], [3, 4, 3], [3, 3, 4]]
    np.testing.assert_array_equal(plan.sample_positions(2, 0, 6, 2, 7), [6, 0, 1])  # cycles through the partition
    assert plan.global_batch_order([2, 3], 2, [[1], [0]], 0) == [(1, 0), (0, 0)]
    # a batch smaller than the partition count: every partition still takes its turn
    seen = [p for i in range(5) for p, _ in plan.global_batch_order([4] * 5, 3, [[0, 2, 4], [1, 3]], i)]
    assert sorted(seen) == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4]
    # empty partitions are left out of the deal
    assert {p for i in range(4) for p, _ in plan.global_batch_order([3, 0, 3], 2, [[0, 2], [1]], i)} == {0, 2}
    # shuffled: every pass over a partition is a permutation of it, and passes differ
    first = [int(j) for i in range(5) for j in plan.sample_positions(i, 0, 4, 2, 10, shuffle_seed=7)]
    assert sorted(first[:10]) == list(range(10)) and first[:10] != first[10:] and first[:10] != list(range(10))


class MemoryBlocks(BlockStore):
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


@pytest.mark.parametrize("records", ["samples", "column batches"])
def test_two_trainers_in_threads_equal_the_local_optimizer(float64, records):
    """Partitions of (features, label) samples (an RDD) or of SampleArrays column batches (a DataFrame's
    Arrow batches, here two per partition) train identically."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(90, 4))
    y = (x[:, 0] > 0).astype(np.int64)
    partitions = [list(zip(x[:40], y[:40])), list(zip(x[40:], y[40:]))]

    def model():
        ember.set_seed(0)
        return ember.Sequential([Dense(6, activation="relu", input_shape=(4,)), Dense(2, activation="softmax")])

    trained = model()
    settings = T.TrainerSettings(
        run="t", trainers=2, start=0, stop=7, assignment=[[0], [1]], partition_sizes=[40, 50], batch_size=16,
        iterations_per_epoch=6, dtype="float64", model_json=json.dumps(serialize_layer(trained)),
        criterion="sparse_categorical_crossentropy", optim_class="SGD", learning_rate=0.1,
        hyper=dict(optim.SGD(0.1, momentum=0.9).hyper), schedule=optim.Default(), seed=3, timeout=10,
        clip_norm=5.0)
    store = MemoryBlocks()
    param = trained.parameters_flat()
    for q, (a, b) in enumerate(P.block_bounds(param.size, 2)):
        store.put(P.block_name("t", "w", 0, q), param[a:b].copy())
    store.put(P.block_name("t", "x", 0), npz_bytes({}))
    barrier = threading.Barrier(2)
    results = {}

    def trainer(w):
        T._WORKER_CACHE.clear()
        if records == "samples":
            tagged = ((w, s) for s in partitions[w])
        else:
            xs, ys = np.array([s[0] for s in partitions[w]]), np.array([s[1] for s in partitions[w]])
            tagged = [(w, SampleArrays(xs[:7], ys[:7])), (w, SampleArrays(xs[7:], ys[7:]))]
        results[w] = T.train_segment(w, tagged, settings, store, barrier.wait)[0]

    threads = [threading.Thread(target=trainer, args=(w,)) for w in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r[0] for r in results[0]] == list(range(7)) and all(r[2] == 8 for r in results[1])
    final = np.concatenate([np.frombuffer(store.get(P.block_name("t", "w", 7, q)), dtype=np.float64)
                            for q in range(2)])
    # the local optimizer on the same global batches
    order = [(p, j) for it in range(7) for p, j in plan.global_batch_order([40, 50], 16, [[0], [1]], it)]
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
    back = P.bf16_decode(P.bf16_encode(a).tobytes())
    np.testing.assert_allclose(back, a, rtol=2 ** -8)
    assert P.bf16_encode(a).nbytes == a.nbytes // 2
    assert back[0] == 1.0 and back[1] == -2.5  # exactly representable values survive
    # round to nearest even: 1 + 2^-8 lies halfway between 1 and 1 + 2^-7 and goes to 1
    assert P.bf16_decode(P.bf16_encode(np.array([1 + 2 ** -8], np.float32)).tobytes())[0] == 1.0


class SleepOnSlowThread(Layer):
    """Identity that sleeps 80 ms per call in a thread named "slow" (a straggling trainer) and 10 ms in
    any other. The steady 10 ms sets the deadline: with the fast trainers' bare compute (a fraction of
    a millisecond) as the deadline, a scheduling hiccup made a fast trainer drop too, now and then."""

    def call(self, x, training=False):
        time.sleep(0.08 if threading.current_thread().name == "slow" else 0.01)
        return x


def run_trainers(model, settings, partitions, names, store=None):
    """Run ``train_segment`` for every trainer in its own thread, starting from ``model``'s weights;
    returns (records by trainer, initial flat weights, final flat weights)."""
    store = MemoryBlocks() if store is None else store
    trainers = settings.trainers
    param = model.parameters_flat()
    for q, (a, b) in enumerate(P.block_bounds(param.size, trainers)):
        store.put(P.block_name("t", "w", settings.start, q), param[a:b].copy())
    store.put(P.block_name("t", "x", settings.start), npz_bytes({}))
    barrier = threading.Barrier(trainers)
    results = {}

    def trainer(w):
        results[w] = T.train_segment(w, ((w, s) for s in partitions[w]), settings, store, barrier.wait)[0]

    T._WORKER_CACHE.clear()
    threads = [threading.Thread(target=trainer, args=(w,), name=names[w]) for w in range(trainers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    final = np.concatenate([np.frombuffer(store.get(P.block_name("t", "w", settings.stop, q)), dtype=np.float64)
                            for q in range(trainers)])
    return results, param.copy(), final


def drop_spec(model, drop, iterations=10, batch_size=24, partitions=3):
    return T.TrainerSettings(
        run="t", trainers=3, start=0, stop=iterations, assignment=[[p] for p in range(3)],
        partition_sizes=[40] * partitions, batch_size=batch_size, iterations_per_epoch=5, dtype="float64",
        model_json=json.dumps(serialize_layer(model)), criterion="sparse_categorical_crossentropy",
        optim_class="SGD", learning_rate=0.1, hyper=dict(optim.SGD(0.1, momentum=0.9).hyper),
        schedule=optim.Default(), seed=3, timeout=10, drop=drop, custom_objects=custom_objects(model))


def drop_data():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(120, 4))
    y = (x[:, 0] > 0).astype(np.int64)
    return [list(zip(x[k * 40:(k + 1) * 40], y[k * 40:(k + 1) * 40])) for k in range(3)]


def test_a_straggling_trainer_drops_the_rest_of_its_share(float64):
    ember.set_seed(0)
    model = ember.Sequential([Dense(6, activation="relu", input_shape=(4,)), SleepOnSlowThread(),
                              Dense(2, activation="softmax")])
    partitions = drop_data()
    # compile the kernels first: a first call that compiles would count as a very slow trainer
    x0 = np.array([r[0] for r in partitions[0][:2]])
    y0 = np.array([r[1] for r in partitions[0][:2]])
    compute_loss(ember.layers.losses.get("sparse_categorical_crossentropy"), y0, model(x0, training=True)).backward()
    model.zero_grad()
    drop = T.DropSettings(percentage=0.4, max_percentage=0.5, window=20, warmup=3, sub_batches=4)
    results, initial, final = run_trainers(model, drop_spec(model, drop), partitions, ["fast0", "slow", "fast2"])
    counts = {w: [r[2] for r in results[w]] for w in range(3)}
    # before the warm-up ends nobody drops; after it the slow trainer stops after its first sub-batch (2 of 8)
    assert all(counts[w][:3] == [8, 8, 8] for w in range(3))
    assert counts[1][3:] == [2] * 7 and all(r[5] == 6 for r in results[1][3:])
    assert not any(r[6] for w in range(3) for r in results[w])  # at most 25% lost < 50%: always applied
    # the same updates computed directly: SGD on the mean gradient of exactly the samples that arrived
    reference = model  # its weights are still the initial ones
    np.testing.assert_array_equal(reference.parameters_flat(), initial)
    criterion = ember.layers.losses.get("sparse_categorical_crossentropy")
    sgd = optim.SGD(0.1, momentum=0.9)
    for i in range(10):
        rows = [partitions[w][j] for w in range(3)
                for j in plan.sample_positions(i, w, 24, 3, 40)[:counts[w][i]]]
        x = np.array([r[0] for r in rows])
        y = np.array([r[1] for r in rows])
        reference.zero_grad()
        compute_loss(criterion, y, reference(x, training=True)).backward()
        sgd.update(reference.parameters_flat(), reference.gradients_flat(), 0.1)
    np.testing.assert_allclose(final, reference.parameters_flat(), rtol=1e-10, atol=1e-12)


def test_an_iteration_that_lost_more_than_the_maximum_is_not_applied(float64):
    ember.set_seed(0)
    model = ember.Sequential([Dense(3, input_shape=(4,)), Dense(2, activation="softmax")])
    # earlier timings (from the driver) far below anything real: every trainer stops after one sub-batch
    drop = T.DropSettings(percentage=0.1, max_percentage=0.5, window=100, warmup=0, sub_batches=4,
                          history=[1e-9] * 300)
    results, initial, final = run_trainers(model, drop_spec(model, drop, iterations=4), drop_data(), ["a", "b", "c"])
    assert all(r[2] == 2 and r[5] == 6 and r[6] for w in range(3) for r in results[w])  # 75% lost > 50%
    np.testing.assert_array_equal(final, initial)


def test_three_trainers_with_a_batch_of_two_equal_the_local_optimizer(float64):
    """Batch 2 over 3 partitions: each iteration one trainer contributes nothing, in turns."""
    ember.set_seed(0)
    model = ember.Sequential([Dense(3, activation="tanh", input_shape=(4,)), Dense(2, activation="softmax")])
    partitions = drop_data()
    results, initial, final = run_trainers(model, drop_spec(model, None, iterations=9, batch_size=2),
                                           partitions, ["a", "b", "c"])
    counts = [[r[2] for r in results[w]] for w in range(3)]
    assert counts == [[1, 1, 0] * 3, [1, 0, 1] * 3, [0, 1, 1] * 3]
    order = [(p, j) for it in range(9) for p, j in plan.global_batch_order([40] * 3, 2, [[0], [1], [2]], it)]
    lx = np.array([partitions[p][j][0] for p, j in order])
    ly = np.array([partitions[p][j][1] for p, j in order])
    local = optim.Optimizer(model, (lx, ly), "sparse_categorical_crossentropy", optim.SGD(0.1, momentum=0.9),
                            optim.MaxIteration(9), 2)
    local.set_shuffle(False).set_progress(0, quiet=True).optimize()
    np.testing.assert_allclose(final, model.parameters_flat(), rtol=1e-12, atol=1e-14)
    assert not np.allclose(final, initial)


@pytest.mark.parametrize("option", ["clipnorm", "global_clipnorm", "clipvalue", None])
def test_keras_optimizer_options_in_three_blocks_equal_the_local_optimizer(float64, option, monkeypatch):
    """Keras's clipnorm (each variable's norm from the owners' partial sums: the blocks cut variables), its
    global_clipnorm and clipvalue, its weight average (use_ema, overwritten every 4 updates; the driver's final
    average is the owners' state blocks in order) and a schedule as learning_rate, on three trainers, equal
    the local optimizer on the same global batches. Without clipping the owners update in one fused pass."""
    from ember.optim import methods
    from ember.optim.local import variable_bounds

    fused_calls = []

    def counted(*args, **kwargs):
        fused_calls.append(1)
        return methods.sgd_update_mean(*args, **kwargs)

    counted.kernel = methods.sgd_update_mean.kernel
    monkeypatch.setattr(methods.SGD, "_mean_rule", staticmethod(counted))

    ember.set_seed(0)
    model = ember.Sequential([Dense(6, activation="tanh", input_shape=(4,)), Dense(2, activation="softmax")])
    partitions = drop_data()
    bounds = variable_bounds(model)
    assert bounds == [(0, 24), (24, 30), (30, 42), (42, 44)] and P.block_bounds(44, 3) == [(0, 15), (15, 30), (30, 44)]

    def keras_sgd():
        return ember.optimizers.SGD(ember.optimizers.schedules.ExponentialDecay(2.0, 4, 0.7), momentum=0.5,
                                    use_ema=True, ema_momentum=0.7, ema_overwrite_frequency=4,
                                    **({} if option is None else
                                       {option: {"clipnorm": 0.05, "global_clipnorm": 0.1, "clipvalue": 0.01}[option]}))

    opt = keras_sgd()
    spec = drop_spec(model, None, iterations=9)
    loop = optim.Optimizer(model, (np.zeros((2, 4)), np.zeros(2, np.int64)), "mse", opt)
    clipping = loop.gradient_clipping()
    spec = dataclasses.replace(spec, hyper=dict(opt.hyper), optim_options=opt.options, clip_const=clipping.const,
                               clip_norm=clipping.global_norm, clip_variable_norm=clipping.variable_norm,
                               variable_bounds=bounds)
    store = MemoryBlocks()
    _, initial, final = run_trainers(model, spec, partitions, ["a", "b", "c"], store)
    states = [P.state_from_block(store.get(P.block_name("t", "s", 9, w)))["state"] for w in range(3)]
    average = np.concatenate([s["ema"] for s in states])
    assert [s["iterations"] for s in states] == [9, 9, 9]

    order = [(p, j) for it in range(9) for p, j in plan.global_batch_order([40] * 3, 24, [[0], [1], [2]], it)]
    lx = np.array([partitions[p][j][0] for p, j in order])
    ly = np.array([partitions[p][j][1] for p, j in order])
    seen = {}
    local = optim.Optimizer(model, (lx, ly), "sparse_categorical_crossentropy", keras_sgd(), optim.MaxIteration(9), 24)
    local.add_listener(type("Last", (), {"on_iteration_end": lambda self, o, st: seen.update(
        weights=model.parameters_flat().copy())})())
    local.set_shuffle(False).set_progress(0, quiet=True).optimize()
    np.testing.assert_allclose(final, seen["weights"], rtol=1e-12, atol=1e-14)  # the weights before finalizing
    np.testing.assert_allclose(average, model.parameters_flat(), rtol=1e-12, atol=1e-14)  # after: the average
    assert not np.allclose(final, average, rtol=1e-6) and not np.allclose(final, initial)
    assert len(fused_calls) == (27 if option is None else 0)  # 3 owners x 9 iterations
    if option is None:
        return
    # the clipping changed the run: without it the weights differ
    plain = ember.Sequential([Dense(6, activation="tanh", input_shape=(4,)), Dense(2, activation="softmax")])
    plain.set_weights([initial[a:b].reshape(w.shape) for (a, b), w in zip(bounds, model.get_weights())])
    unclipped = ember.optimizers.SGD(ember.optimizers.schedules.ExponentialDecay(2.0, 4, 0.7), momentum=0.5,
                                     use_ema=True, ema_momentum=0.7, ema_overwrite_frequency=4)
    optim.Optimizer(plain, (lx, ly), "sparse_categorical_crossentropy", unclipped, optim.MaxIteration(9), 24) \
        .set_shuffle(False).set_progress(0, quiet=True).optimize()
    assert not np.allclose(plain.parameters_flat(), seen["weights"], rtol=1e-3)


def test_user_errors_are_told_from_infrastructure_failures():
    try:
        raise ValueError("bad label 11")
    except ValueError as e:
        described = json.loads(T.describe_user_error(e, 1))
    assert described["type"] == "ValueError" and described["message"] == "bad label 11"
    assert "raise ValueError" in described["traceback"] and described["worker"] == 1
    for infrastructure in (BlockTimeout("w-3"), ConnectionError("closed"), KeyboardInterrupt()):
        assert T.describe_user_error(infrastructure, 0) is None


def test_shared_memory_files_of_dead_processes_are_removed(tmp_path):
    import os
    import subprocess
    import sys

    from ember.optim.spark.blocks import remove_stale_shared_files

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)  # that process has exited
    for name in (f"ember-blocks-{dead_pid}-a1b2-put", f"ember-blocks-{dead_pid}-a1b2-get",
                 f"ember-blocks-{os.getpid()}-c3d4-put", "ember-blocks-notapid-x-put", "other-file"):
        (tmp_path / name).write_bytes(b"weights")
    removed = remove_stale_shared_files(str(tmp_path))
    assert sorted(removed) == [f"ember-blocks-{dead_pid}-a1b2-get", f"ember-blocks-{dead_pid}-a1b2-put"]
    assert sorted(os.listdir(tmp_path)) == sorted([f"ember-blocks-{os.getpid()}-c3d4-put", "ember-blocks-notapid-x-put",
                                                   "other-file"])


@pytest.mark.parametrize("option", ["clipnorm", "global_clipnorm"])
def test_gradient_accumulation_and_loss_scaling_in_three_blocks_equal_the_local_optimizer(float64, option):
    """Keras's gradient_accumulation_steps (each owner accumulates its block; the clipping norms are exchanged
    only at the updates) and loss_scale_factor (each trainer's backward pass starts from the factor, the owner
    divides its mean) on three trainers equal the local optimizer on the same global batches; without the
    accumulation the weights differ."""
    from ember.optim.local import variable_bounds

    ember.set_seed(0)
    model = ember.Sequential([Dense(6, activation="tanh", input_shape=(4,)), Dense(2, activation="softmax")])
    partitions = drop_data()
    bounds = variable_bounds(model)

    def keras_adam(accumulate=3):
        return ember.optimizers.Adam(0.05, loss_scale_factor=64.0, gradient_accumulation_steps=accumulate,
                                     use_ema=True, ema_momentum=0.7, ema_overwrite_frequency=2,
                                     **{option: {"clipnorm": 0.05, "global_clipnorm": 0.1}[option]})

    opt = keras_adam()
    spec = drop_spec(model, None, iterations=10)
    loop = optim.Optimizer(model, (np.zeros((2, 4)), np.zeros(2, np.int64)), "mse", opt)
    clipping = loop.gradient_clipping()
    spec = dataclasses.replace(spec, optim_class="Adam", learning_rate=0.05, hyper=dict(opt.hyper),
                               optim_options=opt.options, clip_norm=clipping.global_norm,
                               clip_variable_norm=clipping.variable_norm,
                               variable_bounds=bounds)
    store = MemoryBlocks()
    _, initial, final = run_trainers(model, spec, partitions, ["a", "b", "c"], store)
    states = [P.state_from_block(store.get(P.block_name("t", "s", 10, w)))["state"] for w in range(3)]
    assert [s["iterations"] for s in states] == [10] * 3 and all(s["step"] == 3 for s in states)  # 3 updates
    assert not any(k.startswith("t-n-") for k in store.blocks)  # the norms sent at the updates were removed

    order = [(p, j) for it in range(10) for p, j in plan.global_batch_order([40] * 3, 24, [[0], [1], [2]], it)]
    lx = np.array([partitions[p][j][0] for p, j in order])
    ly = np.array([partitions[p][j][1] for p, j in order])

    def local(make):
        replica = ember.Sequential([Dense(6, activation="tanh", input_shape=(4,)), Dense(2, activation="softmax")])
        replica.set_weights([initial[a:b].reshape(w.shape) for (a, b), w in zip(bounds, model.get_weights())])
        seen = {}
        run = optim.Optimizer(replica, (lx, ly), "sparse_categorical_crossentropy", make, optim.MaxIteration(10), 24)
        run.add_listener(type("Last", (), {"on_iteration_end": lambda self, o, st: seen.update(
            weights=replica.parameters_flat().copy())})())
        run.set_shuffle(False).set_progress(0, quiet=True).optimize()
        return seen["weights"]

    np.testing.assert_allclose(final, local(keras_adam()), rtol=1e-12, atol=1e-14)
    assert not np.allclose(final, local(keras_adam(None)), rtol=1e-3)
