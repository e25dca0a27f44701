"""The per-partition trainer: what each Spark task runs for a segment of iterations. A plain
function of (worker, samples, settings, block client, barrier), tested without Spark.

Every iteration i, trainer w:
  1. assembles the weights of iteration i from blocks ``w/i/q`` (one per owner q; its own in memory),
  2. takes from each of its partitions the samples the plan deals them (``plan.sample_positions``),
     computes the gradient sum of its samples (possibly none),
  3. cuts the flat gradient into one contiguous block per trainer and puts block q as ``g/i/w/q``,
  4. as owner of block w, adds the blocks ``g/i/r/w`` of every trainer r in a fixed order, divides
     by the number of samples that arrived, clips, applies the optimization method to weight block w
     only (its state lives in this task) and puts ``w/i+1/w``. Without clipping, compression or dropping,
     an SGD owner does the last addition, the division and the update in one pass (``update_mean``).
"""
import collections
import dataclasses
import json
import math
import time
import traceback

import numpy as np

from ember.engine.backend import backend_name, get_array_module
from ember.kernels import get_kernel
from ember.optim.dataset import SampleArrays
from ember.optim.loop import TrainingDivergedError, compute_loss
from ember.optim.spark import parameter as P
from ember.optim.spark.plan import dealt_slots, sample_positions

# NOTE: how long a reader looks for a block stored before it asked (a finished job's, or the driver's) before
# calling it lost with its executor. Puts are answered after the BlockManager told the master, so one lookup finds
# such a block (Spark's fetch retries a failing executor itself); the seconds spare a run a retry for a hiccup
STORED_TIMEOUT = 5.0


@dataclasses.dataclass
class DropSettings:
    """BigDL's straggler dropping (see ``TrainingLoop.set_drop_module_property``)."""
    percentage: float
    max_percentage: float
    window: int
    warmup: int
    sub_batches: int
    history: list = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class TrainerSettings:
    """Everything a trainer task needs for iterations [start, stop) of run ``run``."""
    run: str
    trainers: int
    start: int
    stop: int
    assignment: list  # partitions held by each trainer
    partition_sizes: list
    batch_size: int
    iterations_per_epoch: int
    dtype: str
    model_json: str
    criterion: object
    optim_class: str
    learning_rate: float
    hyper: dict
    schedule: object
    seed: int
    timeout: float = 600.0  # for a block another trainer is computing
    stored_timeout: float = STORED_TIMEOUT  # for a block stored before the job started
    clip_const: tuple = None
    clip_norm: float = None
    clip_variable_norm: float = None  # Keras's clipnorm: per variable (variable_bounds: each one's place)
    variable_bounds: list = None
    optim_options: object = None  # the method's StepOptions (Keras's weight average and schedule)
    state_from: int = None  # the iteration whose optimizer-state blocks to load (None: fresh state)
    compress: str = None
    shuffle_seed: int = None
    progress_every: int = 0
    custom_objects: dict = None
    metrics: list = dataclasses.field(default_factory=list)
    drop: DropSettings = None


# ---------------------------------------------------------------- errors raised by user code or data
USER_ERROR_MARK = "EMBER-USER-ERROR:"
INFRASTRUCTURE_ERRORS = (TimeoutError, ConnectionError, EOFError, KeyboardInterrupt, SystemExit)


def describe_user_error(error, worker):
    """A JSON text naming a user-code exception (type, message, the task's traceback), or None when
    ``error`` comes from the infrastructure (blocks, sockets, a killed process)."""
    if isinstance(error, INFRASTRUCTURE_ERRORS) or not isinstance(error, Exception):
        return None
    cls = type(error)
    return json.dumps({"module": cls.__module__, "type": cls.__qualname__, "message": str(error), "worker": worker,
                       "traceback": "".join(traceback.format_exception(cls, error, error.__traceback__))})


# ---------------------------------------------------------------- samples
_WORKER_CACHE = {}


def cache_partitions(key, tagged_samples):
    """The samples of trainer ``key`` = (run, worker), read once per Python worker process and kept
    there for the next jobs of the run (Spark reuses its Python workers). A partition's records are
    (features, label) samples, or ``SampleArrays`` (column batches of a DataFrame), joined into one."""
    cached = _WORKER_CACHE.get(key)
    if cached is None:
        for other in [k for k in _WORKER_CACHE if k[0] != key[0]]:
            del _WORKER_CACHE[other]  # another run's data
        by_partition = {}
        for p, sample in tagged_samples:
            by_partition.setdefault(p, []).append(sample)
        for p, records in by_partition.items():
            if isinstance(records[0], SampleArrays):
                by_partition[p] = SampleArrays.concat(records)
        cached = _WORKER_CACHE[key] = by_partition
    else:
        for _ in tagged_samples:  # already here: just drain the iterator
            pass
    return cached


def stack_samples(samples):
    """Samples (x, y) -> (x batch, y batch); x and y may be arrays or lists of arrays. ``samples`` may
    also be a ``SampleArrays`` or a list of them (already in columns)."""
    if isinstance(samples, SampleArrays):
        return samples.stacked()
    if samples and isinstance(samples[0], SampleArrays):
        return SampleArrays.concat(list(samples)).stacked()
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


def rebuild_model(settings):
    from ember.layers.serialization import deserialize_layer

    return deserialize_layer(json.loads(settings.model_json), settings.custom_objects)


def sub_batches(count, parts):
    """Sizes of up to ``parts`` nearly equal sub-batches of ``count`` samples (none empty)."""
    parts = min(parts, count)
    if not parts:
        return []
    base, extra = divmod(count, parts)
    return [base + (1 if p < extra else 0) for p in range(parts)]


def drop_deadline(drop, history, iteration, planned):
    """Seconds a trainer may spend on its ``planned`` samples before it stops and drops the rest, or
    None while dropping is not active (before ``warmup`` iterations, or without timings yet).

    The limit is the (1 - drop percentage) quantile of the recent per-sample compute times of every
    trainer (each owner sees every trainer's time with its gradient block), times ``planned``: a trainer
    slower than that quantile gives the gradient of the samples it finished instead of holding up all.
    """
    if iteration < drop.warmup or not history:
        return None
    return float(np.quantile(np.asarray(history), 1.0 - drop.percentage)) * planned


def gradient_sum(model, criterion, samples, sizes, iteration, metrics=(), deadline=None, scale=None):
    """Accumulate into the model's (zeroed) flat gradient the gradient of the summed loss over ``samples``,
    taken in sub-batches of ``sizes``; stop after the sub-batch that ends past ``deadline`` (perf_counter).
    ``scale``: Keras's ``loss_scale_factor``, the gradient is that of ``scale *`` the summed loss (the owner's
    method divides it again). Returns (loss sum, samples used, the metrics' results on the training outputs or
    None)."""
    loss_sum, used, scored = 0.0, 0, None
    for n in sizes:
        x, y = stack_samples(samples[used:used + n])
        out = model(x, training=True)
        loss = compute_loss(criterion, y, out, model)
        value = float(np.asarray(loss.data)) * n
        if not math.isfinite(value):
            raise TrainingDivergedError(f"training loss became {value / n} at iteration {iteration + 1}")
        seed = float(n) if scale is None else float(n) * scale
        loss.backward(np.asarray(seed, dtype=loss.dtype))  # d(n * mean loss) = d(sum of losses)
        if metrics:
            from ember.optim.validation import select_output

            results = [m(*select_output(m, out, y)) for m in metrics]
            scored = results if scored is None else [a + b for a, b in zip(scored, results)]
        loss_sum += value
        used += n
        if deadline is not None and time.perf_counter() > deadline:
            break
    return loss_sum, used, scored


# ---------------------------------------------------------------- one trainer's segment
class _Trainer:
    """One trainer's model replica, its owned block and its optimizer state for one segment."""

    def __init__(self, worker, tagged_samples, settings, client):
        from ember.engine import config as engine_config
        from ember.layers import losses as losses_module
        from ember.optim import methods as methods_module

        s = self.settings = settings
        self.worker, self.client = worker, client
        engine_config.set_default_dtype(s.dtype)
        self.cached = cache_partitions((s.run, worker), tagged_samples)
        self.held = s.assignment[worker]
        missing = [p for p in self.held if p not in self.cached and s.partition_sizes[p]]
        if missing:
            raise RuntimeError(f"trainer {worker} expected partitions {self.held} but has no samples of {missing}")
        changed = {p: len(self.cached[p]) for p in self.held
                   if p in self.cached and len(self.cached[p]) != s.partition_sizes[p]}
        if changed:
            raise RuntimeError(f"trainer {worker}: partitions {changed} (partition: samples) differ from the plan's "
                               f"counts {[s.partition_sizes[p] for p in changed]}; the data changed between passes "
                               "(a non-deterministic source): cache or checkpoint it before training")
        self.model = rebuild_model(s)
        self.model.train()
        self.criterion = losses_module.get(s.criterion)
        self.param, self.grad = P.read_weight_blocks(self.model, client, s.run, s.trainers, s.start,
                                                     s.stored_timeout)
        self.flat = self.model._flat_parameters()  # the buffers of param and grad
        self.bounds = P.block_bounds(self.param.size, s.trainers)
        self.lo, self.hi = self.bounds[worker]
        cls = getattr(methods_module, s.optim_class)
        self.method = cls.__new__(cls)  # configured by its state dict, as saved
        self.method.load_state_dict({"class_name": s.optim_class, "learning_rate": s.learning_rate,
                                     "hyper": s.hyper, "state": {}})
        if s.optim_options is not None:
            self.method.options = s.optim_options
        if s.state_from is not None:
            saved = P.state_from_block(client.get(P.block_name(s.run, "s", s.state_from, worker),
                                                  s.stored_timeout))
            self.method.state = saved["state"]
        self.history = (collections.deque(s.drop.history, maxlen=s.drop.window * s.trainers)
                        if s.drop is not None else None)
        self.master = self.param[self.lo:self.hi].copy()  # the owner's exact block (the wire may carry bf16)
        self.normed = set()  # the iterations whose clipping norms this owner sent (removed with the iteration)
        self.summed = np.empty(self.hi - self.lo, dtype=self.param.dtype)  # reduce's sum, reused
        # NOTE: the last addition of the reduce, the division by the samples and SGD's update in one pass
        # (kernels/cpu/optim.py _sgd_mean) where nothing needs the mean gradient first: at 25M parameters on
        # 2 trainers it reads and writes 6 x 50 MB instead of 10 x 50 MB per owner and iteration
        self.fused = (s.trainers > 1 and s.compress is None and s.drop is None and s.clip_const is None
                      and s.clip_norm is None and s.clip_variable_norm is None and self.method.fuses_mean(self.master))

    def name(self, kind, *parts):
        return P.block_name(self.settings.run, kind, *parts)

    def pull_weights(self, i):
        """The weights of iteration ``i``: the other owners' blocks, and its own as they received it."""
        s = self.settings
        for q, (a, b) in enumerate(self.bounds):
            if q != self.worker:
                name = self.name("w", i, q)
                if s.compress is None:  # checked, then copied once: from the shared-memory file to the model
                    # (unlocked with the push: no request of its own)
                    self.client.get_into(name, self.param[a:b], s.timeout, defer_unlock=True)
                else:
                    self.param[a:b] = P.decode(self.client.get_view(name, s.timeout), self.param.dtype, s.compress)
        own = self.param[self.lo:self.hi]
        if s.compress is None:
            if not np.may_share_memory(self.master, own):
                # NOTE: from here on the owner updates its block inside the model's own parameter (the
                # exact weights the others receive): no copy of the block per iteration
                own[...] = self.master
                self.master = own
        else:  # every replica computes with the same weights: the owner's block as the others received it
            self.param[self.lo:self.hi] = P.decode(P.encode(self.master, s.compress).tobytes(), self.param.dtype,
                                                   s.compress)

    def samples(self, i):
        s = self.settings
        slots = dealt_slots(s.partition_sizes)
        out, columns = [], []
        for p in self.held:
            if p in slots:
                data = self.cached[p]
                positions = sample_positions(i, slots[p], s.batch_size, len(slots), len(data), s.shuffle_seed)
                if isinstance(data, SampleArrays):  # a DataFrame's partition, in columns
                    columns.append(data.take(positions))
                else:
                    out.extend(data[j] for j in positions)
        return SampleArrays.concat(columns) if columns else out

    def compute(self, i, samples, t1):
        """The gradient of this trainer's samples (zero when it has none); (loss sum, count, metrics)."""
        from ember.engine import config as engine_config

        s = self.settings
        engine_config.set_seed(s.seed * 1_000_003 + i * 1009 + self.worker)  # dropout: same in every run
        drop = s.drop
        limit = drop_deadline(drop, self.history, i, len(samples)) if drop is not None else None
        sizes = sub_batches(len(samples), drop.sub_batches if drop is not None else 1)
        scale = s.optim_options.loss_scale_factor if s.optim_options is not None else None
        # NOTE: the first backward pass writes the gradients instead of adding them to zeros written before
        # (FlatParameters.zero_grad): at 25M parameters that is 100 MB of zeros per iteration not written
        self.flat.zero_grad(deferred=True)
        try:
            return gradient_sum(self.model, self.criterion, samples, sizes, i, s.metrics,
                                None if limit is None else t1 + limit, scale)
        finally:
            self.flat.flush_zero()

    def push_gradients(self, i, count, seconds):
        s = self.settings
        head = np.array([count, seconds], dtype=np.float64)  # what the owners need to weigh and time it
        for q, (a, b) in enumerate(self.bounds):
            if q != self.worker:  # written from the gradient itself; sent with the reduce's get, answered then
                self.client.put_parts(self.name("g", i, self.worker, q), (head, P.encode(self.grad[a:b], s.compress)),
                                      wait=False, defer=True)

    def reduce(self, i, count, seconds):
        """Every trainer's gradient of the owned block, added in a fixed order (the same sum in every run) but
        for the last addition, which ``update`` makes (a + b, b None with one trainer), and the samples that
        arrived: (a, b, samples). a and b may be views of received blocks: valid until the next block request."""
        s = self.settings
        total, counts, a, b = self.summed, [], None, None
        for r in range(s.trainers):
            if r == self.worker:
                part = self.grad[self.lo:self.hi]
                counts.append((count, seconds))
            else:  # read where it arrived (valid until the next get): added, never copied first
                data = self.client.get_view(self.name("g", i, r, self.worker), s.timeout)
                counts.append(tuple(np.frombuffer(data, dtype=np.float64, count=2)))
                part = P.decode(data[16:], self.param.dtype, s.compress)
            # NOTE: the parts are added in a fixed order, starting from the first (not zeros + it): the same
            # bits in every run. Part 0 is kept as it is when no get comes before part 1 is added to it.
            if r == 0:
                a = part
                if self.worker > 1:
                    np.copyto(total, part)
                    a = total
            elif r == s.trainers - 1:
                b = part
            elif a is total:
                total += part
            else:
                np.add(a, part, out=total)
                a = total
        if self.history is not None:
            self.history.extend(secs / n for n, secs in counts if n > 0)
        return a, b, int(sum(n for n, _ in counts))

    def update(self, i, a, b, samples_in):
        """Average (a + b) / samples, clip and apply the update to the owned block; True when it was applied."""
        s = self.settings
        skipped = (s.drop is not None and samples_in < s.batch_size * (1 - s.drop.max_percentage)) or not samples_in
        lr = s.schedule.get_learning_rate(self.method.learning_rate, i, i // s.iterations_per_epoch + 1)
        if self.fused:
            if not skipped:
                self.method.update_mean(self.master, (a, b), samples_in, lr)
        else:
            total = self.summed
            if b is None:
                np.divide(a, max(samples_in, 1), out=total)
            else:  # the last addition and the division in one pass
                get_kernel("mean_of_parts", backend_name(get_array_module(total)))(total, a, b, max(samples_in, 1))
            if not skipped:  # (BigDL: an iteration that lost more than max_drop_percentage is not applied)
                # NOTE: the method clips (calls back): after its loss scaling and gradient accumulation, only a
                # gradient it applies; every owner applies at the same iterations
                self.method.update(self.master, total, lr, lambda g: self.clip(i, g))
        # within a job the weights travel compressed; at its end exactly (for the driver and the next job)
        # NOTE: sent with the next iteration's pull (one wake-up of the service for the put, the removals and the
        # get, instead of 3), at the end of the segment at once
        last = i + 1 == s.stop
        self.client.put_parts(self.name("w", i + 1, self.worker),
                              self.master if last else P.encode(self.master, s.compress), wait=last, defer=not last)
        return not skipped

    def clip(self, i, total):
        """Clip the owned block's mean gradient ``total`` in place (value, global norm, per-variable norm)."""
        from ember.optim.clipping import (
            clip_by_global_norm,
            clip_by_value,
            clip_by_variable_norm,
            squared_norm,
            variable_squared_norms,
        )

        s = self.settings
        if s.clip_const is not None:
            clip_by_value(total, *s.clip_const)
        if s.clip_norm is not None:
            self.client.put(self.name("n", i, self.worker), np.array([squared_norm(total)]))
            self.normed.add(i)
            norms = [float(np.frombuffer(self.client.get(self.name("n", i, r), s.timeout))[0])
                     for r in range(s.trainers)]
            clip_by_global_norm(total, s.clip_norm, sum(norms))
        if s.clip_variable_norm is not None:
            # NOTE: each owner sends the squared norms of the parts of every variable its block holds (one float
            # per variable); their sum, in trainer order, is each variable's exact squared norm on every owner
            own = variable_squared_norms(total, s.variable_bounds, self.lo)
            self.client.put(self.name("n", i, self.worker), own)
            self.normed.add(i)
            parts = [own if r == self.worker else np.frombuffer(self.client.get(self.name("n", i, r), s.timeout))
                     for r in range(s.trainers)]
            sums = parts[0].copy()
            for part in parts[1:]:
                sums += part
            clip_by_variable_norm(total, s.variable_bounds, s.clip_variable_norm, sums, self.lo)

    def remove_iteration(self, i, defer=False):
        """Remove this trainer's blocks of iteration ``i`` in one request, answered with the next get
        (``defer``: also sent with it)."""
        names = [self.name("g", i, self.worker, q) for q in range(self.settings.trainers) if q != self.worker]
        if i in self.normed:
            self.normed.discard(i)
            names.append(self.name("n", i, self.worker))
        names.append(self.name("w", i, self.worker))
        self.client.remove_many(names, wait=False, defer=defer)

    def finish(self, barrier):
        s = self.settings
        self.client.put(self.name("s", s.stop, self.worker), P.state_block_bytes(self.method.state_dict()))
        if self.worker == 0:
            self.client.put(self.name("x", s.stop), P.extra_weights_bytes(self.model))
        if barrier is not None:
            barrier()
        for i in range(max(s.start, s.stop - 2), s.stop):
            self.remove_iteration(i)


def train_segment(worker, tagged_samples, settings, client, barrier=None):
    """Run iterations [settings.start, settings.stop) as trainer ``worker``.

    ``tagged_samples`` yields (partition, sample) pairs for the partitions this trainer holds;
    ``client`` puts, gets and removes blocks (a BlockClient in Spark); ``barrier()`` waits for all
    trainers (BarrierTaskContext.barrier in Spark) before the last blocks are removed.

    Returns (records, metric results): one record per iteration (iteration, loss sum, samples, compute
    seconds, synchronisation-and-update seconds, samples dropped, whether the update was skipped, and the
    seconds of the synchronisation's phases: pull, push, reduce, update), and the training metrics summed
    over this trainer's samples of the segment (None without metrics). Compute plus synchronisation is the
    iteration's wall time inside the trainer.
    """
    s = settings
    t = _Trainer(worker, tagged_samples, s, client)
    records, scored = [], None
    for i in range(s.start, s.stop):
        t0 = time.perf_counter()
        if i > s.start:
            t.pull_weights(i)
        t1 = time.perf_counter()
        samples = t.samples(i)
        loss_sum, count, results = t.compute(i, samples, t1)
        if results is not None:
            scored = results if scored is None else [a + b for a, b in zip(scored, results)]
        t2 = time.perf_counter()
        t.push_gradients(i, count, t2 - t1)
        t3 = time.perf_counter()
        a, b, samples_in = t.reduce(i, count, t2 - t1)
        t4 = time.perf_counter()
        applied = t.update(i, a, b, samples_in)
        if i - 2 >= s.start:  # every trainer is past iteration i - 1: nobody reads these any more
            t.remove_iteration(i - 2, defer=i + 1 < s.stop)
        t5 = time.perf_counter()
        # NOTE: the phases cost 2 more clock reads (70 ns each) and 39 pickled bytes per iteration and trainer
        # (a record: 37 -> 76 bytes; W1: 36 KB more to the driver per epoch), against W1's 3 ms of compute
        records.append((i, loss_sum, count, t2 - t1, (t1 - t0) + (t5 - t2), len(samples) - count, not applied,
                        (t1 - t0, t3 - t2, t4 - t3, t5 - t4)))
        if s.progress_every and (i + 1) % s.progress_every == 0:  # for the driver's progress line
            client.put(t.name("p", i + 1, worker), np.array([loss_sum, count], dtype=np.float64))
    t.finish(barrier)
    return records, scored
