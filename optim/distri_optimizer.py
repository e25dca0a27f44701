"""Synchronous data-parallel SGD on Spark (BigDL's DistriOptimizer), blocks through the BlockManager.

One Spark job (barrier mode: every trainer task runs at once) trains a segment of iterations, up
to the next point where the driver has work (an epoch end, a validation or checkpoint trigger, the
end trigger). There is one trainer task per Spark slot, at most one per training partition; a
trainer holds one or more partitions' samples in memory for the whole job.

Every iteration i, trainer w:
  1. assembles the weights of iteration i from blocks ``w/i/q`` (one per owner q; its own in memory),
  2. takes from each of its partitions p the next ``share[p]`` samples (the global batch is split
     over the partitions; shares may differ by one), computes the gradient sum of its samples,
  3. cuts the flat gradient into one contiguous block per trainer and puts block q as ``g/i/w/q``,
  4. as owner of block w, adds the blocks ``g/i/r/w`` of every trainer r in a fixed order, divides
     by the global batch size, clips, applies the optimization method to weight block w only (its
     state lives in this task) and puts ``w/i+1/w``.
Blocks move between executors by Spark's block transfer service; the driver receives only
per-iteration scalars (loss, sample counts, timings) at the end of each job. Between jobs the
weights and every owner's optimizer state stay in blocks; the driver reads them only for
checkpoints and for the final model.
"""
import collections
import io
import json
import logging
import math
import os
import time
import uuid

import numpy as np

from ember.engine import config, no_grad
from ember.layers.serialization import npz_bytes, serialize_layer
from ember.optim import checkpoint as ckpt
from ember.optim.methods import LBFGS
from ember.optim.optimizer import BaseOptimizer, TrainingDivergedError, compute_loss, ensure_log_handler

logger = logging.getLogger("ember.optim")


# ---------------------------------------------------------------- plan (pure, testable without Spark)
def batch_shares(batch_size, partitions):
    """The global batch split over ``partitions``: sizes differ by at most one, first ones larger."""
    base, extra = divmod(batch_size, partitions)
    return [base + (1 if p < extra else 0) for p in range(partitions)]


def assign_partitions(partitions, trainers):
    """Trainer w holds partitions w, w + trainers, ... (each list in increasing order)."""
    return [list(range(w, partitions, trainers)) for w in range(trainers)]


def block_bounds(size, blocks):
    """Contiguous [start, stop) of each of ``blocks`` blocks of a ``size``-element vector."""
    base, extra = divmod(size, blocks)
    bounds, start = [], 0
    for b in range(blocks):
        stop = start + base + (1 if b < extra else 0)
        bounds.append((start, stop))
        start = stop
    return bounds


def sample_positions(iteration, share, size):
    """Positions (in the partition's order) of the samples a partition gives to global iteration
    ``iteration``: the next ``share`` samples, cycling through the partition."""
    start = iteration * share
    return np.arange(start, start + share) % size


def global_batch_order(partition_sizes, shares, assignment, iteration):
    """(partition, position) pairs of global iteration ``iteration``, in the order the trainers and
    their partitions contribute them (what a local run must see to be equivalent)."""
    order = []
    for held in assignment:
        for p in held:
            order.extend((p, int(j)) for j in sample_positions(iteration, shares[p], partition_sizes[p]))
    return order


def bf16_encode(a):
    """float32 -> bfloat16 bits (uint16), rounding to nearest even: half the bytes on the wire."""
    u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)
    return ((u + (((u >> 16) & 1) + 0x7FFF)) >> 16).astype(np.uint16)


def bf16_decode(b, dtype=np.float32):
    return (np.frombuffer(b, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32).astype(dtype, copy=False)


def _encode(a, compress):
    return bf16_encode(a) if compress == "bf16" else a


def _decode(data, dtype, compress):
    return bf16_decode(data, dtype) if compress == "bf16" else np.frombuffer(data, dtype=dtype)


def _fromnpz_bytes(data):
    with np.load(io.BytesIO(data), allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def _block(run, kind, *parts):
    return "-".join(["ember", run, kind] + [str(p) for p in parts])


# ---------------------------------------------------------------- the trainer task
_WORKER_CACHE = {}


def _rebuild_model(spec):
    from ember.layers.serialization import deserialize_layer

    return deserialize_layer(json.loads(spec["model_json"]), spec.get("custom_objects"))


def custom_objects(model):
    """What a worker needs to rebuild ``model`` besides ember: the functions of its Lambda layers and
    layer classes defined outside ember (they travel with the job, pickled by Spark)."""
    found, stack = {}, [model]
    while stack:
        layer = stack.pop()
        if type(layer).__name__ == "Lambda":
            found[getattr(layer.function, "__name__", "")] = layer.function
        elif not type(layer).__module__.startswith("ember."):
            found[type(layer).__name__] = type(layer)
        stack.extend(layer.layers)
    return found


def _stack_samples(samples):
    """Samples (x, y) -> (x batch, y batch); x and y may be arrays or lists of arrays."""
    xs, ys = zip(*samples)
    if isinstance(xs[0], (list, tuple)):
        x = [np.stack([s[i] for s in xs]) for i in range(len(xs[0]))]
    else:
        x = np.stack(xs)
    if isinstance(ys[0], (list, tuple)):
        y = [np.stack([s[i] for s in ys]) for i in range(len(ys[0]))]
    else:
        y = np.stack([np.asarray(v) for v in ys])
    return x, y


def _extra_weightsnpz_bytes(model):
    """The non-trainable weights (BatchNorm statistics...) as one npz payload."""
    return npz_bytes({f"a{k}": np.asarray(w.data) for k, w in enumerate(model.non_trainable_weights)})


def write_weight_blocks(model, client, run, trainers, iteration):
    """Put the model's weights as the blocks of ``iteration``: one per owner, one for the rest."""
    param = next(iter(model._flat_parameters().data.values()))
    for q, (a, b) in enumerate(block_bounds(param.size, trainers)):
        client.put(_block(run, "w", iteration, q), np.ascontiguousarray(param[a:b]))
    client.put(_block(run, "x", iteration), _extra_weightsnpz_bytes(model))


def read_weight_blocks(model, client, run, trainers, iteration, timeout):
    """Set the model's weights from the blocks of ``iteration`` (trainable: one per owner; the rest:
    one block written by trainer 0 or the driver); returns the flat parameter and gradient buffers."""
    flat = model._flat_parameters()
    param = next(iter(flat.data.values()))
    for q, (a, b) in enumerate(block_bounds(param.size, trainers)):
        param[a:b] = np.frombuffer(client.get(_block(run, "w", iteration, q), timeout), dtype=param.dtype)
    extra = _fromnpz_bytes(client.get(_block(run, "x", iteration), timeout))
    for k, w in enumerate(model.non_trainable_weights):
        w.data[...] = extra[f"a{k}"]
    return param, next(iter(flat.grad.values()))


def state_block_bytes(state_dict):
    """An ``OptimMethod.state_dict()`` as one npz payload (its JSON part in ``__meta__``)."""
    meta, arrays = ckpt.flatten_optim_state(state_dict)
    arrays["__meta__"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    return npz_bytes(arrays)


def state_from_block(data):
    """The inverse of ``state_block_bytes``."""
    arrays = _fromnpz_bytes(data)
    meta = json.loads(bytes(arrays.pop("__meta__")).decode())
    return ckpt.unflatten_optim_state(meta, arrays)


def _cache_partitions(key, tagged_samples):
    """The samples of trainer ``key`` = (run, worker), read once per Python worker process and kept
    there for the next jobs of the run (Spark reuses its Python workers)."""
    cached = _WORKER_CACHE.get(key)
    if cached is None:
        for other in [k for k in _WORKER_CACHE if k[0] != key[0]]:
            del _WORKER_CACHE[other]  # another run's data
        by_partition = {}
        for p, sample in tagged_samples:
            by_partition.setdefault(p, []).append(sample)
        cached = _WORKER_CACHE[key] = by_partition
    else:
        for _ in tagged_samples:  # already here: just drain the iterator
            pass
    return cached


def _sub_batches(count, parts):
    """Sizes of up to ``parts`` nearly equal sub-batches of ``count`` samples (none empty)."""
    return batch_shares(count, min(parts, count)) if count else []


def drop_deadline(drop, history, iteration, planned):
    """Seconds a trainer may spend on its ``planned`` samples before it stops and drops the rest, or
    None while dropping is not active (before ``warmup`` iterations, or without timings yet).

    The limit is the (1 - drop percentage) quantile of the recent per-sample compute times of every
    trainer (each owner sees every trainer's time with its gradient block), times ``planned``: a trainer
    slower than that quantile gives the gradient of the samples it finished instead of holding up all.
    """
    if iteration < drop["warmup"] or not history:
        return None
    return float(np.quantile(np.asarray(history), 1.0 - drop["percentage"])) * planned


def _gradient_sum(model, criterion, samples, sizes, iteration, deadline=None):
    """Accumulate into the model's (zeroed) flat gradient the gradient of the summed loss over ``samples``, taken in
    sub-batches of ``sizes``; stop after the sub-batch that ends past ``deadline`` (perf_counter).
    Returns (loss sum, samples used)."""
    loss_sum, used = 0.0, 0
    for n in sizes:
        x, y = _stack_samples(samples[used:used + n])
        loss = compute_loss(criterion, y, model(x, training=True))
        value = float(np.asarray(loss.data)) * n
        if not math.isfinite(value):
            raise TrainingDivergedError(f"training loss became {value / n} at iteration {iteration + 1}")
        loss.backward(np.asarray(float(n), dtype=loss.dtype))  # d(n * mean loss) = d(sum of losses)
        loss_sum += value
        used += n
        if deadline is not None and time.perf_counter() > deadline:
            break
    return loss_sum, used


def train_segment(worker, tagged_samples, spec, client, barrier=None):
    """Run iterations [spec["start"], spec["stop"]) as trainer ``worker``; returns per-iteration records
    (iteration, loss sum, samples, compute seconds, synchronisation-and-update seconds).

    ``tagged_samples`` yields (partition, sample) pairs for the partitions this trainer holds;
    ``client`` puts, gets and removes blocks (a BlockClient in Spark); ``barrier()`` waits for all
    trainers (BarrierTaskContext.barrier in Spark) before the last blocks are removed.
    """
    from ember.engine import config as engine_config
    from ember.layers import losses as losses_module
    from ember.optim import methods as methods_module
    from ember.optim.clipping import clip_by_global_norm, clip_by_value, squared_norm

    run, trainers, start, stop = spec["run"], spec["trainers"], spec["start"], spec["stop"]
    engine_config.set_default_dtype(spec["dtype"])
    cached = _cache_partitions((run, worker), tagged_samples)
    held = spec["assignment"][worker]
    if sorted(cached) != sorted(held):
        raise RuntimeError(f"trainer {worker} expected partitions {held} but got {sorted(cached)}")
    model = _rebuild_model(spec)
    model.train()
    criterion = losses_module.get(spec["criterion"])
    param, grad = read_weight_blocks(model, client, run, trainers, start, spec["timeout"])
    bounds = block_bounds(param.size, trainers)
    lo, hi = bounds[worker]
    cls = getattr(methods_module, spec["optim_class"])
    method = cls.__new__(cls)  # configured by its state dict, as saved
    method.load_state_dict({"class_name": spec["optim_class"], "learning_rate": spec["learning_rate"],
                            "hyper": spec["hyper"], "state": {}})
    if spec["state_from"] is not None:
        saved = state_from_block(client.get(_block(run, "s", spec["state_from"], worker), spec["timeout"]))
        method.state = saved["state"]
    schedule = spec["schedule"]
    compress = spec.get("compress")
    drop = spec.get("drop")
    history = collections.deque(drop["history"], maxlen=drop["window"] * trainers) if drop is not None else None
    master = param[lo:hi].copy()  # the owner's exact copy of its block (the wire may carry bf16)
    wire = np.dtype(np.uint16) if compress == "bf16" else param.dtype
    # gradient blocks go out as [samples, seconds] (float64) + the block, each through one reused buffer
    send_buffers = {q: np.empty(16 + (b - a) * wire.itemsize, dtype=np.uint8)
                    for q, (a, b) in enumerate(bounds) if q != worker}
    records = []
    for i in range(start, stop):
        t0 = time.perf_counter()
        if i > start:
            for q, (a, b) in enumerate(bounds):
                if q != worker:
                    param[a:b] = _decode(client.get(_block(run, "w", i, q), spec["timeout"]), param.dtype, compress)
            # every replica computes with the same weights: the owner's block as the others received it
            param[lo:hi] = _decode(_encode(master, compress).tobytes(), param.dtype, compress)
        t1 = time.perf_counter()
        samples = []
        for p in held:
            data = cached[p]
            samples.extend(data[j] for j in sample_positions(i, spec["shares"][p], len(data)))
        planned = len(samples)
        engine_config.set_seed(spec["seed"] * 1_000_003 + i * 1009 + worker)  # dropout: same in every run
        grad[...] = 0
        limit = drop_deadline(drop, history, i, planned) if drop is not None else None
        sizes = _sub_batches(planned, drop["sub_batches"] if drop is not None else 1)
        loss_sum, count = _gradient_sum(model, criterion, samples, sizes, i, None if limit is None else t1 + limit)
        t2 = time.perf_counter()
        for q, (a, b) in enumerate(bounds):
            if q != worker:
                send = send_buffers[q]
                send[:16].view(np.float64)[:] = count, t2 - t1  # what the owners need to weigh and time it
                send[16:].view(wire)[...] = _encode(grad[a:b], compress)
                client.put(_block(run, "g", i, worker, q), send)
        total = np.zeros(hi - lo, dtype=param.dtype)
        counts = []
        for r in range(trainers):  # a fixed order, so the sum is the same in every run
            if r == worker:
                total += grad[lo:hi]
                counts.append((count, t2 - t1))
            else:
                data = client.get(_block(run, "g", i, r, worker), spec["timeout"])
                counts.append(tuple(np.frombuffer(data, dtype=np.float64, count=2)))
                total += _decode(memoryview(data)[16:], param.dtype, compress)
        if history is not None:
            history.extend(seconds / n for n, seconds in counts if n > 0)
        samples_in = int(sum(n for n, _ in counts))
        skipped = samples_in < spec["batch_size"] * (1 - drop["max_percentage"]) if drop is not None else False
        total /= samples_in
        if spec["clip_const"] is not None:
            clip_by_value(total, *spec["clip_const"])
        if spec["clip_norm"] is not None:
            client.put(_block(run, "n", i, worker), np.array([squared_norm(total)]))
            norms = [float(np.frombuffer(client.get(_block(run, "n", i, r), spec["timeout"]))[0])
                     for r in range(trainers)]
            clip_by_global_norm(total, spec["clip_norm"], sum(norms))
        lr = schedule.get_learning_rate(method.learning_rate, i, i // spec["iterations_per_epoch"] + 1)
        if not skipped:  # (BigDL: an iteration that lost more than max_drop_percentage is not applied)
            method.update(master, total, lr)
        # within a job the weights travel compressed; at its end exactly (for the driver and the next job)
        client.put(_block(run, "w", i + 1, worker), master if i + 1 == stop else _encode(master, compress))
        if i - 2 >= start:  # every trainer is past iteration i - 1: nobody reads these any more
            _remove_iteration(client, run, i - 2, worker, trainers, spec["clip_norm"] is not None)
        # (iteration, loss sum, samples, compute: forward + backward, synchronisation: weights in,
        # gradient blocks out and in, the owner's update, samples dropped, whether the update was skipped)
        records.append((i, loss_sum, count, t2 - t1, (t1 - t0) + (time.perf_counter() - t2), planned - count,
                        bool(skipped)))
        if spec.get("progress_every") and (i + 1) % spec["progress_every"] == 0:  # for the driver's progress line
            client.put(_block(run, "p", i + 1, worker), np.array([loss_sum, count], dtype=np.float64))
    client.put(_block(run, "s", stop, worker), state_block_bytes(method.state_dict()))
    if worker == 0:
        client.put(_block(run, "x", stop), _extra_weightsnpz_bytes(model))
    if barrier is not None:
        barrier()
    for i in range(max(start, stop - 2), stop):
        _remove_iteration(client, run, i, worker, trainers, spec["clip_norm"] is not None)
    return records


def _remove_iteration(client, run, i, worker, trainers, with_norms):
    for q in range(trainers):
        if q != worker:
            client.remove(_block(run, "g", i, worker, q))
    if with_norms:
        client.remove(_block(run, "n", i, worker))
    client.remove(_block(run, "w", i, worker))


def _spark_trainer(spec):
    """The function each barrier task runs (module level: pickled by reference)."""

    def run(index, iterator):
        from pyspark import BarrierTaskContext

        from ember.optim.spark_blocks import BlockClient

        ctx = BarrierTaskContext.get()
        client = BlockClient()
        try:
            yield train_segment(ctx.partitionId(), iterator, spec, client, barrier=ctx.barrier)
        finally:
            client.close()

    return run


def _spark_evaluator(spec, methods, batch_size):
    def run(iterator):
        from ember.optim.dataset import ArrayDataset
        from ember.optim.optimizer import evaluate_dataset
        from ember.optim.spark_blocks import BlockClient

        samples = list(iterator)
        if not samples:
            return
        from ember.engine import config as engine_config

        engine_config.set_default_dtype(spec["dtype"])
        client = BlockClient()
        try:
            model = _rebuild_model(spec)
            read_weight_blocks(model, client, spec["run"], spec["trainers"], spec["start"], spec["timeout"])
        finally:
            client.close()
        model.eval()
        x, y = _stack_samples(samples)
        yield evaluate_dataset(model, ArrayDataset(x, y), batch_size, methods)

    return run


class DistriOptimizer(BaseOptimizer):
    """Trains on a Spark RDD of samples ``(features, label)`` (features: an array, or a list of arrays
    for several inputs), synchronously, with parameters exchanged in blocks (see module docstring).
    Chosen by ``Optimizer(...)`` when the training set is an RDD; same setters as the local one."""

    def __init__(self, model, training_set, criterion, optim_method=None, end_trigger=None, batch_size=32):
        super().__init__(model, training_set, criterion, optim_method, end_trigger, batch_size)
        if isinstance(self.optim_method, LBFGS):
            raise ValueError("LBFGS evaluates the loss several times per step; use it with the local optimizer")
        self.rdd = training_set
        self.sc = training_set.context
        self.run_id = uuid.uuid4().hex[:10]
        self.timeout = 600.0
        self.max_retries = 5
        self.compress = None
        self.drop = None
        self.trainers = None
        self.iteration_records = []

    def set_drop_module_property(self, drop_percentage, max_drop_percentage, batch_size=100, warmup_iteration=200,
                                 sub_batches=4):
        """Drop straggling work (BigDL's ``setDropModuleProperty``): after ``warmup_iteration``
        iterations, a trainer that has spent longer on its share than the (1 - ``drop_percentage``)
        quantile of every trainer's per-sample compute time over the last ``batch_size`` iterations
        stops after its current sub-batch (its share is computed in ``sub_batches`` pieces) and sends
        the gradient of the samples it finished; the owners average over the samples that arrived. An
        iteration that lost more than ``max_drop_percentage`` of the global batch is not applied.

        NOTE: with dropping on, a run's result depends on timing, and BatchNorm statistics are taken
        per sub-batch (as in BigDL, where each thread's model replica sees its own part).
        """
        if not 0.0 < drop_percentage < 1.0:
            raise ValueError(f"set_drop_module_property: drop_percentage must be in (0, 1), got {drop_percentage}")
        if not drop_percentage <= max_drop_percentage <= 1.0:
            raise ValueError("set_drop_module_property: max_drop_percentage must be in [drop_percentage, 1], got "
                             f"{max_drop_percentage}")
        for name, value, low in (("batch_size", batch_size, 1), ("warmup_iteration", warmup_iteration, 0),
                                 ("sub_batches", sub_batches, 2)):
            if int(value) != value or value < low:
                raise ValueError(f"set_drop_module_property: {name} must be an integer >= {low}, got {value!r}")
        self.drop = {"percentage": float(drop_percentage), "max_percentage": float(max_drop_percentage),
                     "window": int(batch_size), "warmup": int(warmup_iteration), "sub_batches": int(sub_batches)}
        return self

    def set_compression(self, kind):
        """Send gradient and weight blocks as bfloat16 ("bf16", half the bytes) or exactly (None, the
        default). The owners keep and update exact float32 weights either way."""
        if kind not in (None, "bf16"):
            raise ValueError(f"set_compression: expected None or 'bf16', got {kind!r}")
        if kind == "bf16" and config.get_default_dtype() != np.float32:
            raise ValueError("bf16 compression is for float32 models")
        self.compress = kind
        return self

    # ---- plan ----
    def _plan(self):
        partitions = self.rdd.getNumPartitions()
        slots = max(1, self.sc.defaultParallelism)
        self.trainers = min(partitions, slots)
        self.assignment = assign_partitions(partitions, self.trainers)
        if self.batch_size < partitions:
            raise ValueError(f"batch_size {self.batch_size} is smaller than the {partitions} training partitions; "
                             "repartition the training set or use a larger batch")
        tagged = self.rdd.mapPartitionsWithIndex(lambda i, it: ((i, s) for s in it))
        counts = dict(tagged.mapPartitions(_count_tags).reduceByKey(lambda a, b: a + b).collect())
        self.sizes = [counts.get(p, 0) for p in range(partitions)]
        if min(self.sizes) == 0:
            raise ValueError(f"training partitions {[p for p, n in enumerate(self.sizes) if n == 0]} are empty; "
                             "repartition the training set")
        self.shares = batch_shares(self.batch_size, partitions)
        self.total = sum(self.sizes)
        self.iterations_per_epoch = math.ceil(self.total / self.batch_size)
        # as many trainers as partitions: each trainer task reads its own partition, no shuffle
        self.grouped = tagged if self.trainers == partitions else _group_partitions(tagged, self.assignment)

    def _segment_end(self, start):
        """The first iteration after ``start`` at which the driver has work."""
        k = start
        while True:
            k += 1
            state = dict(self.state, iteration=k, epoch=(k // self.iterations_per_epoch) + 1,
                         epoch_finished=k % self.iterations_per_epoch == 0)
            if state["epoch_finished"] or self.end_trigger(state):
                return k
            for trigger in (self.validation and self.validation["trigger"], self.checkpoint_trigger):
                if trigger is not None and trigger(state):
                    return k

    def _spec(self, start, stop, state_from):
        return {"run": self.run_id, "trainers": self.trainers, "start": start, "stop": stop,
                "assignment": self.assignment, "shares": self.shares, "batch_size": self.batch_size,
                "iterations_per_epoch": self.iterations_per_epoch, "dtype": str(config.get_default_dtype()),
                "model_json": self._architecture,
                "criterion": self.criterion, "optim_class": type(self.optim_method).__name__,
                "learning_rate": self.optim_method.learning_rate, "hyper": dict(self.optim_method.hyper),
                "schedule": self.schedule, "clip_const": self.clip_const, "clip_norm": self.clip_norm,
                "seed": self._seed, "timeout": self.timeout, "state_from": state_from, "compress": self.compress,
                "progress_every": self.log_every, "custom_objects": self._custom_objects,
                "drop": None if self.drop is None else {**self.drop, "history": list(self._drop_history)}}

    # ---- weights on the driver (start, checkpoints, end) ----
    def _put_weights(self, blocks, iteration):
        write_weight_blocks(self.model, blocks, self.run_id, self.trainers, iteration)

    def _fetch_weights(self, blocks, iteration):
        read_weight_blocks(self.model, blocks, self.run_id, self.trainers, iteration, self.timeout)

    def _fetch_states(self, blocks, iteration):
        return [state_from_block(blocks.get(_block(self.run_id, "s", iteration, w), self.timeout))
                for w in range(self.trainers)]

    # ---- the loop ----
    def optimize(self):
        """Train until the end trigger fires; returns the model with the trained weights."""
        from ember.optim.spark_blocks import DriverBlocks

        if self.log_level >= logging.INFO:
            ensure_log_handler()
        if not self.model.built:
            x, _ = _stack_samples([self.rdd.first()])
            with no_grad():
                self.model(x, training=False)
        self._seed = int(config.rng().integers(2 ** 31))
        self._architecture = json.dumps(serialize_layer(self.model))
        self._custom_objects = custom_objects(self.model)
        t_plan = time.perf_counter()
        self._plan()
        if self.drop is not None:  # the recent per-sample compute times of every trainer
            self._drop_history = collections.deque(maxlen=self.drop["window"] * self.trainers)
        self.timings = {"plan_s": time.perf_counter() - t_plan, "jobs_s": 0.0, "jobs": 0, "validation_s": 0.0}
        blocks = DriverBlocks(self.sc)
        self._failures = 0
        if getattr(self, "_resume_from", None) is not None:
            state_from = self._restore(blocks, self._resume_from)
            self._resume_from = None
        else:
            self._put_weights(blocks, self.state["iteration"])
            state_from = None
        start_time = time.perf_counter()
        self.stop_training = False
        self._notify("on_train_begin")
        epoch_first = len(self.iteration_records)
        while not self.end_trigger(self.state) and not self.stop_training:
            start = self.state["iteration"]
            if start % self.iterations_per_epoch == 0:
                epoch_first = len(self.iteration_records)
                self._notify("on_epoch_begin", self.state["epoch"])
            stop = self._segment_end(start)
            spec = self._spec(start, stop, state_from)
            t0 = time.perf_counter()
            watcher = _ProgressWatcher(self, blocks, start, stop, start_time)
            try:
                results = self.grouped.barrier().mapPartitionsWithIndex(_spark_trainer(spec)).collect()
            except Exception as e:  # noqa: BLE001 - any failed job: reload and retry, up to max_retries
                watcher.finish()
                state_from = self._recover(blocks, e, start)
                continue
            watcher.finish()
            job_seconds = time.perf_counter() - t0
            self.timings["jobs_s"] += job_seconds
            self.timings["jobs"] += 1
            self._record(results, start, stop, job_seconds, time.perf_counter() - start_time)
            state_from = stop
            st = self.state
            st["iteration"] = stop
            st["epoch"] = stop // self.iterations_per_epoch + 1
            st["epoch_finished"] = stop % self.iterations_per_epoch == 0
            val_values = None
            if self.validation is not None and self.validation["trigger"](st):
                t_val = time.perf_counter()
                val_values = self._validate(stop)
                self.timings["validation_s"] += time.perf_counter() - t_val
            if self.checkpoint_path is not None and self.checkpoint_trigger(st):
                self._checkpoint(blocks, stop)
            if st["epoch_finished"]:
                done = self.iteration_records[epoch_first:]
                logs = {"loss": float(np.mean([r["loss"] for r in done]))}
                logs.update({f"val_{k}": v for k, v in (val_values or {}).items()})
                self._notify("on_epoch_end", st["epoch"] - 1, logs)
            st["epoch_finished"] = False
        self._fetch_weights(blocks, self.state["iteration"])
        self._notify("on_train_end")
        return self.model

    def _recover(self, blocks, error, start):
        """After a failed job: continue from the newest checkpoint (or, without one, from the weights of
        iteration ``start`` if they survived), under a new run id; returns where optimizer state comes from."""
        text = str(error)
        if "TrainingDivergedError" in text:
            where = self.last_checkpoint or "no checkpoint was written"
            raise TrainingDivergedError(f"training diverged (NaN or infinite loss) before iteration {start + 1}; the "
                                        f"last good checkpoint is {where}") from None
        self._failures += 1
        if self._failures > self.max_retries:
            raise RuntimeError(f"distributed training failed {self._failures} times (max_retries={self.max_retries}); "
                               f"last error: {text.strip().splitlines()[-1] if text.strip() else error!r}") from error
        logger.warning("training job failed (%d/%d): %s; retrying from %s", self._failures, self.max_retries,
                       (text.strip().splitlines() or [repr(error)])[-1][:300],
                       self.last_checkpoint or f"the weights of iteration {start}")
        old_run = self.run_id
        self.run_id = uuid.uuid4().hex[:10]
        if self.last_checkpoint is not None:
            return self._restore(blocks, ckpt.load_checkpoint(self.last_checkpoint))
        # no checkpoint: carry the surviving blocks of iteration `start` over to the new run id
        carried = [("x", start)] + [("w", start, q) for q in range(self.trainers)]
        if start:  # optimizer state exists once an iteration has run
            carried += [("s", start, w) for w in range(self.trainers)]
        try:
            payloads = [(parts, blocks.get(_block(old_run, *parts), 10)) for parts in carried]
        except Exception as lost:  # noqa: BLE001
            raise RuntimeError("a training job failed, no checkpoint was set and the weights did not survive; use "
                               "set_checkpoint(path, trigger) to make runs recoverable") from lost
        for parts, data in payloads:
            blocks.put(_block(self.run_id, *parts), data)
        return start if start else None

    def _restore(self, blocks, loaded):
        """Put a checkpoint's weights and every owner's optimizer state into blocks; returns its iteration."""
        ts = loaded.train_state
        if ts.get("trainers") not in (None, self.trainers):
            raise ValueError(f"checkpoint {loaded.path} was written by {ts['trainers']} trainers, this run has "
                             f"{self.trainers}; use as many Spark slots (or partitions) as then")
        self.model.set_weights(loaded.weights)
        self.state.update({k: ts[k] for k in ("epoch", "iteration", "records", "loss", "score")})
        self.schedule.load_state_dict(ts.get("schedule", {}))
        iteration = self.state["iteration"]
        self._put_weights(blocks, iteration)
        saved = loaded.optim_state
        for w in range(self.trainers):
            prefix = f"block{w}/"
            state = {k[len(prefix):]: v for k, v in saved["state"].items() if k.startswith(prefix)}
            blocks.put(_block(self.run_id, "s", iteration, w), state_block_bytes({**saved, "state": state}))
        self.last_checkpoint = loaded.path
        return iteration if any(k.startswith("block") for k in saved["state"]) else None

    def resume(self, path):
        """Continue from a checkpoint file (or the newest one in a folder) written by a distributed run."""
        self._resume_from = ckpt.load_checkpoint(ckpt.resolve_checkpoint(path))
        return self

    def _record(self, results, start, stop, job_seconds, wall):
        per_iteration = {}
        for records in results:
            for i, loss_sum, count, compute, sync, dropped, skipped in records:
                agg = per_iteration.setdefault(i, [0.0, 0, 0.0, 0.0, 0, False])
                agg[0] += loss_sum
                agg[1] += count
                agg[2] = max(agg[2], compute)
                agg[3] = max(agg[3], sync)
                agg[4] += dropped
                agg[5] = agg[5] or skipped
                if self.drop is not None and count:
                    self._drop_history.append(compute / count)
        iterations = stop - start
        for i in range(start, stop):
            loss_sum, count, compute, sync, dropped, skipped = per_iteration[i]
            loss = loss_sum / count
            self.state["loss"] = loss
            self.iteration_records.append({"iteration": i + 1, "loss": loss, "compute_s": compute, "sync_s": sync,
                                           "dropped": dropped, "skipped": skipped})
            if self.train_summary is not None:
                self.train_summary.add_scalar("Loss", loss, i + 1)
        throughput = iterations * self.batch_size / job_seconds
        self.state["records"] += iterations * self.batch_size
        logger.log(self.log_level, "[Epoch %d][Iteration %d][Wall Clock %.1fs] Trained %d records in %.2f seconds. "
                   "Throughput is %.1f records/second. Loss is %.6g.", start // self.iterations_per_epoch + 1, stop,
                   wall, iterations * self.batch_size, job_seconds, throughput, self.state["loss"])
        if self.train_summary is not None:
            self.train_summary.add_scalar("Throughput", throughput, stop)

    def _validate(self, iteration):
        v = self.validation
        val_rdd = v["rdd"]
        spec = self._spec(iteration, iteration, None)
        parts = val_rdd.mapPartitions(_spark_evaluator(spec, v["methods"], v["batch_size"])).collect()
        totals = [sum((p[k] for p in parts), None) for k in range(len(v["methods"]))]
        values = {m.name: r.result()[0] for m, r in zip(v["methods"], totals)}
        self.state["score"] = totals[0].result()[0]
        self.schedule.on_validation(self.state["score"], values.get("Loss"))
        if self.val_summary is not None:
            for name, value in values.items():
                self.val_summary.add_scalar(name, value, iteration)
        logger.log(self.log_level, "[Iteration %d] validation: %s", iteration,
                   ", ".join(f"{k} is {val:.6g}" for k, val in values.items()))
        return values

    def set_validation(self, batch_size, val_set, trigger=None, val_method=None):
        from ember.optim import validation as validation_module
        from ember.optim.triggers import EveryEpoch

        if not hasattr(val_set, "mapPartitions"):
            return super().set_validation(batch_size, val_set, trigger, val_method)
        methods = [validation_module.get(m) for m in (val_method or ["accuracy"])]
        self.validation = {"batch_size": int(batch_size), "rdd": val_set, "trigger": trigger or EveryEpoch(),
                           "methods": methods}
        return self

    def _checkpoint(self, blocks, iteration):
        self._fetch_weights(blocks, iteration)
        states = self._fetch_states(blocks, iteration)
        merged = {"class_name": states[0]["class_name"], "learning_rate": states[0]["learning_rate"],
                  "hyper": states[0]["hyper"], "state": {}}
        for w, s in enumerate(states):  # every owner's state, by block
            for k, v in s["state"].items():
                merged["state"][f"block{w}/{k}"] = v
        train_state = {k: self.state[k] for k in ("epoch", "iteration", "records", "loss", "score")}
        train_state.update(position=0, trainers=self.trainers, engine_rng=config.get_rng_state(),
                           schedule=self.schedule.state_dict(), seed=self._seed)
        path = os.path.join(self.checkpoint_path, ckpt.checkpoint_name(iteration))
        ckpt.save_checkpoint(path, self.model, merged, train_state)
        if self.checkpoint_overwrite:
            ckpt.prune_checkpoints(self.checkpoint_path, path)
        self.last_checkpoint = path
        logger.log(self.log_level, "checkpoint written: %s", path)


class _ProgressWatcher:
    """While a job runs, read the trainers' small progress blocks (every ``log_every`` iterations) and
    print BigDL's progress line on the driver: epoch, iteration, loss and records/second."""

    def __init__(self, optimizer, blocks, start, stop, start_time):
        import threading

        self.opt, self.blocks, self.start_time = optimizer, blocks, start_time
        every = optimizer.log_every
        self.points = [k for k in range(start + 1, stop + 1) if every and k % every == 0]
        self.done = threading.Event()
        self.thread = None
        if self.points:
            self.thread = threading.Thread(target=self._run, name="ember-progress", daemon=True)
            self.thread.start()

    def _run(self):
        opt = self.opt
        last_time, last_iteration = time.perf_counter(), self.points[0] - opt.log_every
        for k in self.points:
            totals = np.zeros(2)
            for w in range(opt.trainers):
                name = _block(opt.run_id, "p", k, w)
                while True:
                    if self.done.is_set():
                        return
                    try:
                        totals += np.frombuffer(self.blocks.get(name, 0.5), dtype=np.float64)
                        break
                    except Exception:  # noqa: BLE001 - not there yet (or the job failed): look again
                        continue
                self.blocks.remove(name)
            now = time.perf_counter()
            records = (k - last_iteration) * opt.batch_size
            ipe = opt.iterations_per_epoch
            logger.log(opt.log_level, "[Epoch %d %d/%d][Iteration %d][Wall Clock %.1fs] Trained %d records in %.4f "
                       "seconds. Throughput is %.1f records/second. Loss is %.6g.", (k - 1) // ipe + 1,
                       min(((k - 1) % ipe + 1) * opt.batch_size, opt.total), opt.total, k, now - self.start_time,
                       records, now - last_time, records / max(now - last_time, 1e-9), totals[0] / totals[1])
            last_time, last_iteration = now, k

    def finish(self):
        self.done.set()
        if self.thread is not None:
            self.thread.join(timeout=5)


def _count_tags(iterator):
    counts = {}
    for p, _ in iterator:
        counts[p] = counts.get(p, 0) + 1
    return list(counts.items())


def _group_partitions(tagged, assignment):
    """An RDD with one partition per trainer holding (partition, sample) pairs of its partitions.
    Built with a shuffle once and cached, so each job's trainer task finds its data in the cache."""
    owner = {p: w for w, held in enumerate(assignment) for p in held}
    keyed = tagged.map(lambda ps: (owner[ps[0]], ps))
    grouped = keyed.partitionBy(len(assignment), lambda w: w).map(lambda kv: kv[1])
    return grouped.cache()
