"""The Spark step engine: synchronous data-parallel SGD (BigDL's DistriOptimizer), parameters
exchanged in blocks through the executors' BlockManagers.

One Spark job (barrier mode: every trainer task runs at once) runs a segment of iterations, up to
the next point where the driver loop has work (an epoch end, a validation, checkpoint or summary
trigger, the end trigger). There is one trainer task per Spark slot, at most one per training
partition; a trainer holds one or more partitions' samples in memory for the whole run
(``trainer.py`` says what a task does per iteration). The driver receives only per-iteration
scalars; between jobs the weights and every owner's optimizer state stay in blocks, and the
driver reads them only for validation on local data, checkpoints, summaries and the final model.
"""
import collections
import contextlib
import json
import logging
import sys
import threading
import time
import uuid

import numpy as np

from ember.engine import config, no_grad
from ember.layers.serialization import serialize_layer
from ember.optim.dataset import SampleArrays, is_spark_data, to_dataset
from ember.optim.local import is_local_data, variable_bounds
from ember.optim.loop import InfrastructureFailure, IterationRecord, Segment, evaluate_dataset
from ember.optim.methods import LBFGS
from ember.optim.spark import parameter as P
from ember.optim.spark.blocks import BlockTimeout
from ember.optim.spark.data import barrier_ready, group_partitions, is_dataframe, to_sample_rdd
from ember.optim.spark.plan import assign_partitions, iterations_per_epoch
from ember.optim.spark.trainer import (
    STORED_TIMEOUT,
    USER_ERROR_MARK,
    DropSettings,
    TrainerSettings,
    describe_user_error,
    rebuild_model,
    stack_samples,
    train_segment,
)

logger = logging.getLogger("ember.optim")


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


# ---------------------------------------------------------------- what each task runs
def spark_trainer(settings):
    """The function each barrier task runs: ``train_segment`` with this executor's block client. An
    exception from user code or data leaves as a marked RuntimeError (and an error block the driver
    watches), so that the driver raises the original exception type after one attempt."""

    def run(index, iterator):
        from pyspark import BarrierTaskContext

        from ember.optim.spark.blocks import BlockClient

        ctx = BarrierTaskContext.get()
        worker = ctx.partitionId()
        client = BlockClient()
        try:
            yield train_segment(worker, iterator, settings, client, barrier=ctx.barrier)
        except Exception as error:
            described = describe_user_error(error, worker)
            if described is None:
                raise
            try:
                client.put(P.block_name(settings.run, "e", settings.start), described.encode())
            except Exception:  # noqa: BLE001 - the marked exception below still carries it
                pass
            raise RuntimeError(USER_ERROR_MARK + described) from None
        finally:
            client.close()

    return run


def spark_evaluator(settings, methods, batch_size):
    def run(iterator):
        from ember.engine import config as engine_config
        from ember.optim.dataset import ArrayDataset
        from ember.optim.spark.blocks import BlockClient

        samples = list(iterator)
        if not samples:
            return
        engine_config.set_default_dtype(settings.dtype)
        client = BlockClient()
        try:
            model = rebuild_model(settings)
            P.read_weight_blocks(model, client, settings.run, settings.trainers, settings.start,
                                 settings.stored_timeout)
        finally:
            client.close()
        model.eval()
        x, y = stack_samples(samples)
        yield evaluate_dataset(model, ArrayDataset(x, y), batch_size, methods)

    return run


# ---------------------------------------------------------------- errors back on the driver
class RemoteTraceback(Exception):
    """The traceback of an exception raised inside a Spark task (shown as the cause)."""


class TaskError(RuntimeError):
    """An exception from a Spark task whose type is not importable on the driver."""


def _resolve(module_name, qualname):
    obj = sys.modules.get(module_name)  # only modules the driver already has: nothing is imported
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
    return obj if isinstance(obj, type) and issubclass(obj, Exception) else None


def user_error_payload(text):
    """The JSON payload of a marked user error in a failed job's message, or None."""
    at = text.find(USER_ERROR_MARK)
    if at < 0:
        return None
    try:
        payload, _ = json.JSONDecoder().raw_decode(text, at + len(USER_ERROR_MARK))
    except ValueError:
        return None
    return payload


def rebuild_user_error(payload):
    """The exception a task raised, as its own type where the driver knows it, with the task's traceback
    as its cause."""
    cls = _resolve(payload["module"], payload["type"])
    error = None
    if cls is not None:
        try:
            error = cls(payload["message"])
        except Exception:  # noqa: BLE001 - a constructor with other arguments
            error = None
    if error is None:
        error = TaskError(f"{payload['module']}.{payload['type']}: {payload['message']}")
    cause = RemoteTraceback(f"in Spark task (trainer {payload['worker']}):\n{payload['traceback']}")
    return error, cause


def failure_kind(text):
    for needle, kind in (("ExecutorLostFailure", "lost executor"), ("FetchFailed", "fetch failure"),
                         ("Python worker exited unexpectedly", "killed worker"), ("BlockTimeout", "block timeout"),
                         ("BlockCorruptError", "corrupt block"),
                         ("EOFError", "killed worker"), ("Connection reset", "connection lost"),
                         ("TaskKilled", "killed task")):
        if needle in text:
            return kind
    return "infrastructure"


def last_line(text):
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1][:300] if lines else "?"


class _ProgressWatcher:
    """While a job runs: read the trainers' small progress blocks (every ``every`` iterations) and pass
    BigDL's progress line to the loop; watch for a user error block and cancel the job at once."""

    def __init__(self, engine, loop, blocks, start, stop, group, every):
        self.engine, self.loop, self.blocks, self.group = engine, loop, blocks, group
        self.start = start
        self.points = [k for k in range(start + 1, stop + 1) if every and k % every == 0]
        self.user_error = None
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, name="ember-progress", daemon=True)
        self.thread.start()

    def _check_error(self):
        try:
            data = self.blocks.get(P.block_name(self.engine.run_id, "e", self.start), 0)
        except Exception:  # noqa: BLE001 - not there
            return False
        self.user_error = json.loads(bytes(data).decode())
        self.engine.sc.cancelJobGroup(self.group)
        return True

    def _wait_for(self, name):
        while not self.done.is_set():
            if self._check_error():
                return None
            try:
                return self.blocks.get(name, 0.25)
            except Exception:  # noqa: BLE001 - not there yet (or the job failed): look again
                continue
        return None

    def _run(self):
        e, loop = self.engine, self.loop
        last_time, last_iteration = time.perf_counter(), self.start
        for k in self.points:
            totals = np.zeros(2)
            for w in range(e.trainers):
                data = self._wait_for(P.block_name(e.run_id, "p", k, w))
                if data is None:
                    return
                totals += np.frombuffer(data, dtype=np.float64)
                self.blocks.remove(P.block_name(e.run_id, "p", k, w))
            now = time.perf_counter()
            ipe = e.iterations_per_epoch
            loop.progress(k, (k - 1) // ipe + 1, min(((k - 1) % ipe + 1) * loop.batch_size, e.size),
                          (k - last_iteration) * loop.batch_size, now - last_time, totals[0] / max(totals[1], 1))
            last_time, last_iteration = now, k
        while not self.done.wait(1.0):  # a user error fails a local job at once; on clusters this cancels retries
            if self._check_error():
                return

    def finish(self):
        self.done.set()
        self.thread.join(timeout=5)
        if self.user_error is None:
            self._check_error_quietly()

    def _check_error_quietly(self):
        try:
            data = self.blocks.get(P.block_name(self.engine.run_id, "e", self.start), 0)
            self.user_error = json.loads(bytes(data).decode())
        except Exception:  # noqa: BLE001
            pass


# ---------------------------------------------------------------- the engine
class SparkEngine:
    """Steps as Spark barrier jobs over an RDD of ``(features, label)`` samples (or a DataFrame with
    ``feature_cols``/``label_cols``); see the module docstring."""

    def __init__(self, data, feature_cols=None, label_cols=None):
        self.feature_cols, self.label_cols = feature_cols, label_cols
        self.rdd = to_sample_rdd(data, feature_cols, label_cols)
        self._converted = is_dataframe(data)  # a cached RDD made here, released when training ends
        self.sc = self.rdd.context
        self.run_id = uuid.uuid4().hex[:10]
        self.timeout = 600.0
        self.stored_timeout = STORED_TIMEOUT
        self.compress = None
        self.drop = None
        self.trainers = None
        self.iteration_records = []
        self._state_from = None
        self._blocks = None

    # ---- settings ----
    def configure(self, name, value):
        if name == "compression":
            if value not in (None, "bf16"):
                raise ValueError(f"set_compression: expected None or 'bf16', got {value!r}")
            if value == "bf16" and config.get_default_dtype() != np.float32:
                raise ValueError("bf16 compression is for float32 models")
            self.compress = value
        elif name == "drop":
            self.drop = _drop_settings(*value)
        else:
            raise ValueError(f"unknown Spark engine setting {name!r}")

    def validation_data(self, data):
        if is_spark_data(data):
            return to_sample_rdd(data, self.feature_cols, self.label_cols)
        return to_dataset(data, "validation set")

    @property
    def size(self):
        return self.total

    # ---- plan ----
    def prepare(self, loop):
        from ember.optim.spark.blocks import DriverBlocks
        from ember.optim.spark.context import ensure_block_service

        ensure_block_service(self.sc)
        if isinstance(loop.optim_method, LBFGS):
            raise ValueError("LBFGS evaluates the loss several times per step; use it with the local optimizer")
        _check_options_for_spark(loop.optim_method)
        model = loop.model
        if not model.built:
            first = self.rdd.first()
            x, _ = stack_samples([first[:1] if isinstance(first, SampleArrays) else first])
            with no_grad():
                model(x, training=False)
        self._seed = int(config.rng().integers(2 ** 31))
        self._shuffle_seed = int(config.rng().integers(2 ** 31)) if loop.shuffle else None
        self._architecture = json.dumps(serialize_layer(model))
        self._custom_objects = custom_objects(model)
        t_plan = time.perf_counter()
        self._plan()
        self.iterations_per_epoch = iterations_per_epoch(self.total, loop.batch_size)
        self.drop_history = (collections.deque(maxlen=self.drop.window * self.trainers)
                             if self.drop is not None else None)
        self.timings = {"plan_s": time.perf_counter() - t_plan, "jobs_s": 0.0, "jobs": 0, "validation_s": 0.0,
                        "loops_s": 0.0}
        self._blocks = DriverBlocks(self.sc)
        P.write_weight_blocks(model, self._blocks, self.run_id, self.trainers, loop.state["iteration"])
        self._state_from = None

    def _plan(self):
        partitions = self.rdd.getNumPartitions()
        self.trainers = min(partitions, max(1, self.sc.defaultParallelism))
        self.assignment = assign_partitions(partitions, self.trainers)
        tagged = self.rdd.mapPartitionsWithIndex(lambda i, it: ((i, s) for s in it))
        known = getattr(self.rdd, "ember_partition_sizes", None)  # counted on the JVM (a DataFrame's batches)
        if known is not None and len(known) == partitions:
            self.sizes = list(known)
        else:
            counts = dict(tagged.mapPartitions(_count_tags).reduceByKey(lambda a, b: a + b).collect())
            self.sizes = [counts.get(p, 0) for p in range(partitions)]
        self.total = sum(self.sizes)
        if not self.total:
            raise ValueError("the training set is empty")
        if self.trainers == partitions and barrier_ready(tagged):
            self.grouped = tagged  # each trainer task reads its own partition: no shuffle
        else:
            if self.trainers == partitions:
                logger.info("the training RDD's lineage mixes partition counts (coalesce, union...), which Spark's "
                            "barrier mode refuses; its samples are regrouped once (a shuffle, then cached) into %d "
                            "trainer partitions", self.trainers)
            self.grouped = group_partitions(tagged, self.assignment)

    def begin_epoch(self, loop):
        pass

    def segment_end(self, loop, start):
        """The first iteration after ``start`` at which the driver has work."""
        self.iterations_per_epoch = ipe = iterations_per_epoch(self.total, loop.batch_size)
        triggers = loop.driver_triggers()
        k = start
        while True:
            k += 1
            state = dict(loop.state, iteration=k, epoch=k // ipe + 1, epoch_finished=k % ipe == 0,
                         position=(k % ipe) * loop.batch_size)
            if state["epoch_finished"] or any(t(state) for t in triggers):
                return k

    def _settings(self, loop, start, stop):
        m = loop.optim_method
        clipping = loop.gradient_clipping()
        return TrainerSettings(
            run=self.run_id, trainers=self.trainers, start=start, stop=stop, assignment=self.assignment,
            partition_sizes=self.sizes, batch_size=loop.batch_size, iterations_per_epoch=self.iterations_per_epoch,
            dtype=str(config.get_default_dtype()), model_json=self._architecture, criterion=loop.criterion,
            optim_class=type(m).__name__, learning_rate=m.learning_rate, hyper=dict(m.hyper), schedule=loop.schedule,
            seed=self._seed, timeout=self.timeout, stored_timeout=self.stored_timeout,
            clip_const=clipping.const, clip_norm=clipping.global_norm,
            clip_variable_norm=clipping.variable_norm, variable_bounds=variable_bounds(loop.model),
            optim_options=m.options,
            state_from=self._state_from, compress=self.compress, shuffle_seed=self._shuffle_seed,
            progress_every=self._progress_every(loop), custom_objects=self._custom_objects,
            metrics=list(loop.train_metrics),
            drop=None if self.drop is None else DropSettings(**{**vars(self.drop), "history": list(self.drop_history)}))

    @staticmethod
    def _progress_every(loop):
        if loop.log_every:
            return loop.log_every
        return 10 if loop.progress_bar else 0

    # ---- a segment ----
    def run_segment(self, loop, start, stop):
        settings = self._settings(loop, start, stop)
        group = f"ember-{self.run_id}-{start}"
        self.sc.setJobGroup(group, f"ember training, iterations {start + 1}-{stop}", interruptOnCancel=True)
        t0 = time.perf_counter()
        watcher = _ProgressWatcher(self, loop, self._blocks, start, stop, group, settings.progress_every)
        try:
            results = self.grouped.barrier().mapPartitionsWithIndex(spark_trainer(settings)).collect()
        except Exception as error:  # noqa: BLE001 - sorted below: user errors reach the user, the rest is retried
            watcher.finish()
            self._raise_failure(error, watcher.user_error)
        watcher.finish()
        job_seconds = time.perf_counter() - t0
        self.timings["jobs_s"] += job_seconds
        self.timings["jobs"] += 1
        self._state_from = stop
        return self._segment(loop, results, start, stop, job_seconds)

    def _raise_failure(self, error, user_error):
        text = str(error)
        payload = user_error or user_error_payload(text)
        if payload is not None:
            exc, cause = rebuild_user_error(payload)
            raise exc from cause
        if "Barrier execution mode does not" in text or "BarrierJobSlotsNumberCheckFailed" in text:
            raise RuntimeError(f"Spark refused the barrier training job: {last_line(text)}") from None
        raise InfrastructureFailure(last_line(text), failure_kind(text)) from error

    def _segment(self, loop, results, start, stop, job_seconds):
        per_iteration, metrics, loops = {}, None, []
        for records, scored in results:
            if scored is not None:
                metrics = scored if metrics is None else [a + b for a, b in zip(metrics, scored)]
            loops.append(sum(r[3] + r[4] for r in records))
            for i, loss_sum, count, compute, sync, dropped, skipped, phases in records:
                agg = per_iteration.setdefault(i, [0.0, 0, 0.0, 0.0, 0, False, 0.0, (0.0,) * len(phases)])
                agg[0] += loss_sum
                agg[1] += count
                agg[2] = max(agg[2], compute)
                agg[3] = max(agg[3], sync)
                agg[4] += dropped
                agg[5] = agg[5] or skipped
                agg[6] = max(agg[6], compute + sync)
                agg[7] = tuple(max(x, y) for x, y in zip(agg[7], phases))
                if self.drop_history is not None and count:
                    self.drop_history.append(compute / count)
        # NOTE: the job's time beyond its slowest trainer's loop is paid once per job: the barrier tasks' start
        # (Python workers, imports, caching the samples, rebuilding the model, reading the weights) and finish
        self.timings["loops_s"] += max(loops, default=0.0)
        seconds = job_seconds / (stop - start)
        out = []
        for i in range(start, stop):
            loss_sum, count, compute, sync, dropped, skipped, wall, phases = per_iteration[i]
            loss = loss_sum / max(count, 1)
            lr = loop.optim_method.learning_rate_at(
                loop.schedule.get_learning_rate(loop.optim_method.learning_rate, i, i // self.iterations_per_epoch + 1),
                step=i)  # NOTE: each fit on Spark starts the optimizer's state (and update count) afresh
            self.iteration_records.append({"iteration": i + 1, "loss": loss, "compute_s": compute, "sync_s": sync,
                                           "dropped": dropped, "skipped": skipped, "iteration_s": wall,
                                           **dict(zip(("pull_s", "push_s", "reduce_s", "update_s"), phases))})
            out.append(IterationRecord(i + 1, loss, loop.batch_size, seconds, lr))
        return Segment(out, metrics)

    # ---- the model on the driver ----
    @contextlib.contextmanager
    def _stored_blocks(self):
        """The driver's reads of blocks a finished job stored (its trainers' last puts are answered before it
        ends): one missing was lost with its executor, and the run retries from its newest checkpoint at once
        instead of waiting ``timeout`` for a block that will never come."""
        try:
            yield
        except BlockTimeout as lost:
            raise InfrastructureFailure(f"{lost}: the last training job stored it, and it was lost with its "
                                        "executor", "lost block") from lost

    def sync_model(self, loop):
        with self._stored_blocks():
            P.read_weight_blocks(loop.model, self._blocks, self.run_id, self.trainers, loop.state["iteration"],
                                 self.stored_timeout)

    def _owner_state(self, iteration, worker):
        with self._stored_blocks():
            return P.state_from_block(self._blocks.get(P.block_name(self.run_id, "s", iteration, worker),
                                                       self.stored_timeout))

    def moving_average(self, loop):
        """Keras's weight average (``use_ema``): each owner keeps the average of its block in its optimizer
        state; their blocks in order are the whole flat vector."""
        it = loop.state["iteration"]
        states = [self._owner_state(it, w) for w in range(self.trainers)]
        if any("ema" not in s["state"] for s in states):
            return None
        return np.concatenate([np.asarray(s["state"]["ema"]) for s in states])

    def finish(self, loop):
        self.sync_model(loop)
        n = loop.optim_method.options.gradient_accumulation_steps
        pending = 0
        if n and self._state_from is not None:
            # the gradients of a last, unfinished accumulation stay in the owners' state, which the next fit on
            # Spark does not see (_check_options_for_spark refuses that fit); every owner counted the same calls
            it = loop.state["iteration"]
            owner = self._owner_state(it, 0)
            pending = int(owner["state"].get("iterations", 0)) % n
        loop.optim_method.spark_pending_accumulation = pending
        if self._converted:
            self.rdd.unpersist()  # (a later optimize() converts nothing again: Spark recomputes it)

    def evaluate(self, loop, data, batch_size, methods):
        t0 = time.perf_counter()
        try:
            if is_local_data(data):
                self.sync_model(loop)
                loop.model.eval()
                try:
                    return evaluate_dataset(loop.model, data, batch_size, methods)
                finally:
                    loop.model.train()
            it = loop.state["iteration"]
            settings = self._settings(loop, it, it)
            parts = data.mapPartitions(spark_evaluator(settings, methods, batch_size)).collect()
            return [sum((p[k] for p in parts), None) for k in range(len(methods))]
        finally:
            self.timings["validation_s"] += time.perf_counter() - t0

    # ---- checkpoints and recovery ----
    def checkpoint_state(self, loop):
        it = loop.state["iteration"]
        self.sync_model(loop)
        states = [self._owner_state(it, w) for w in range(self.trainers)]
        return P.merge_owner_states(states), {"trainers": self.trainers, "seed": self._seed}, None

    def restore(self, loop, loaded):
        """Put a checkpoint's weights and every owner's optimizer state into blocks."""
        ts = loaded.train_state
        if ts.get("trainers") not in (None, self.trainers):
            raise ValueError(f"checkpoint {loaded.path} was written by {ts['trainers']} trainers, this run has "
                             f"{self.trainers}; use as many Spark slots (or partitions) as then")
        if len(loaded.weights) != len(loop.model.weights):
            raise ValueError(f"resume: {loaded.path!r} holds {len(loaded.weights)} weights but the model has "
                             f"{len(loop.model.weights)}; it was written for another model")
        loop.model.set_weights(loaded.weights)
        iteration = ts["iteration"]
        P.write_weight_blocks(loop.model, self._blocks, self.run_id, self.trainers, iteration)
        saved = loaded.optim_state
        if not any(k.startswith("block") for k in saved["state"]):  # a local run's checkpoint: fresh owner states
            self._state_from = None
            return
        for w in range(self.trainers):
            self._blocks.put(P.block_name(self.run_id, "s", iteration, w),
                             P.state_block_bytes(P.owner_state(saved, w)))
        self._state_from = iteration

    def recover(self, loop, failure):
        """After a failed job: continue from the newest checkpoint (or, without one, from the weights of the
        current iteration if they survived), under a new run id."""
        from ember.optim import checkpoint as ckpt

        old_run, start = self.run_id, loop.state["iteration"]
        self.run_id = uuid.uuid4().hex[:10]
        if loop.last_checkpoint is not None:
            loop.restore(ckpt.load_checkpoint(loop.last_checkpoint))
            return
        carried = [("x", start)] + [("w", start, q) for q in range(self.trainers)]
        if self._state_from is not None:
            carried += [("s", start, w) for w in range(self.trainers)]
        try:
            payloads = [(parts, self._blocks.get(P.block_name(old_run, *parts), 10)) for parts in carried]
        except Exception as lost:  # noqa: BLE001
            raise RuntimeError("a training job failed, no checkpoint was set and the weights did not survive; use "
                               "set_checkpoint(path, trigger) to make runs recoverable") from lost
        for parts, data in payloads:
            self._blocks.put(P.block_name(self.run_id, *parts), data)


def _check_options_for_spark(method):
    """Clear errors for Keras optimizer options that training on Spark cannot follow exactly."""
    o = method.options
    refusal = getattr(o.schedule, "spark_refusal", None)
    if refusal:
        raise ValueError(refusal)
    pending = getattr(method, "spark_pending_accumulation", 0)
    if o.gradient_accumulation_steps and pending:
        raise ValueError(
            f"gradient_accumulation_steps={o.gradient_accumulation_steps}: the previous fit on Spark ended {pending} "
            f"batch(es) into an accumulation, whose gradients Keras would apply with this fit's first batches; on "
            "Spark each fit starts the optimizer state (the accumulated gradients too) afresh, so this fit would "
            "train differently. Make every fit's number of batches a multiple of gradient_accumulation_steps, or "
            "train in one fit")


def _drop_settings(drop_percentage, max_drop_percentage, batch_size, warmup_iteration, sub_batches):
    """Drop straggling work (BigDL's ``setDropModuleProperty``): after ``warmup_iteration`` iterations, a
    trainer that has spent longer on its share than the (1 - ``drop_percentage``) quantile of every trainer's
    per-sample compute time over the last ``batch_size`` iterations stops after its current sub-batch (its
    share is computed in ``sub_batches`` pieces) and sends the gradient of the samples it finished; the owners
    average over the samples that arrived. An iteration that lost more than ``max_drop_percentage`` of the
    global batch is not applied.

    NOTE: with dropping on, a run's result depends on timing, and BatchNorm statistics are taken per
    sub-batch (as in BigDL, where each thread's model replica sees its own part).
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
    return DropSettings(float(drop_percentage), float(max_drop_percentage), int(batch_size), int(warmup_iteration),
                        int(sub_batches))


def _count_tags(iterator):
    counts = {}
    for p, record in iterator:  # a (features, label) sample, or a DataFrame's column batch
        counts[p] = counts.get(p, 0) + (len(record) if isinstance(record, SampleArrays) else 1)
    return list(counts.items())
