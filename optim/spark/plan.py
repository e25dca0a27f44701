"""How a global batch is split over the training partitions (pure functions, no Spark).

Samples are dealt round-robin: the k-th sample of the run comes from partition ``k mod P``, at
that partition's position ``k // P`` (cycling through the partition when it is exhausted). The
global batch of iteration ``i`` is samples ``[i*B, (i+1)*B)``. So any batch size >= 1 works with
any partition count: when B is not a multiple of P the partitions that give one sample more take
turns, and a partition may give nothing to an iteration (B < P). With ``shuffle_seed`` each
partition's positions go through a fresh permutation on every pass over the partition.
"""
import functools
import math

import numpy as np


def assign_partitions(partitions, trainers):
    """Trainer w holds partitions w, w + trainers, ... (each list in increasing order)."""
    return [list(range(w, partitions, trainers)) for w in range(trainers)]


def iterations_per_epoch(total, batch_size):
    return math.ceil(total / batch_size)


def dealt_slots(partition_sizes):
    """Partition -> its slot in the deal (empty partitions are left out of it)."""
    return {p: k for k, p in enumerate(p for p, n in enumerate(partition_sizes) if n)}


def partition_counters(iteration, partition, batch_size, partitions):
    """The partition's own sample counters (``k // P`` for its ``k`` in the iteration's range)."""
    first = iteration * batch_size
    k0 = first + (partition - first) % partitions  # the partition's first global index in the range
    return np.arange(k0, first + batch_size, partitions) // partitions


@functools.lru_cache(maxsize=16)
def _permutation(seed, partition, size, cycle):
    """The order of pass ``cycle`` over a partition (cached: a pass spans many iterations)."""
    return np.random.default_rng([int(seed), int(partition), int(cycle)]).permutation(size)


def sample_positions(iteration, partition, batch_size, partitions, size, shuffle_seed=None):
    """Positions (in the partition's stored order) of the samples ``partition`` (its slot in the deal
    over ``partitions`` non-empty partitions; ``size`` samples) gives to global iteration ``iteration``;
    may be empty."""
    counters = partition_counters(iteration, partition, batch_size, partitions)
    offsets = counters % size
    if shuffle_seed is None or not len(counters):
        return offsets
    cycles = counters // size
    out = np.empty_like(offsets)
    for cycle in np.unique(cycles):  # at most two passes meet in one iteration
        where = cycles == cycle
        out[where] = _permutation(shuffle_seed, partition, size, cycle)[offsets[where]]
    return out


def global_batch_order(partition_sizes, batch_size, assignment, iteration, shuffle_seed=None):
    """(partition, position) pairs of global iteration ``iteration``, in the order the trainers and
    their partitions contribute them (what a local run must see to be equivalent)."""
    slots = dealt_slots(partition_sizes)
    order = []
    for held in assignment:
        for p in held:
            if p in slots:
                positions = sample_positions(iteration, slots[p], batch_size, len(slots), partition_sizes[p],
                                             shuffle_seed)
                order.extend((p, int(j)) for j in positions)
    return order
