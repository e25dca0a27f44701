"""The block-partitioned parameter (BigDL's AllReduceParameter): the flat weight vector cut into one
contiguous block per trainer, block names, the wire codec (exact or bfloat16) and the payloads of
weights and optimizer state. Pure NumPy; the block store is a ``blocks.BlockStore`` (put, get, remove
and the forms derived from them).
"""
import io
import json

import numpy as np

from ember.layers.serialization import npz_bytes
from ember.optim import checkpoint as ckpt


def block_bounds(size, blocks):
    """Contiguous [start, stop) of each of ``blocks`` blocks of a ``size``-element vector."""
    base, extra = divmod(size, blocks)
    bounds, start = [], 0
    for b in range(blocks):
        stop = start + base + (1 if b < extra else 0)
        bounds.append((start, stop))
        start = stop
    return bounds


def block_name(run, kind, *parts):
    """``ember-<run>-<kind>-<parts...>``: w (weights of an iteration, per owner), g (gradient, from
    trainer to owner), s (optimizer state), x (non-trainable weights), n (norms), p (progress),
    e (a user error)."""
    return "-".join(["ember", run, kind] + [str(p) for p in parts])


def bf16_encode(a):
    """float32 -> bfloat16 bits (uint16), rounding to nearest even: half the bytes on the wire."""
    u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)
    return ((u + (((u >> 16) & 1) + 0x7FFF)) >> 16).astype(np.uint16)


def bf16_decode(b, dtype=np.float32):
    return (np.frombuffer(b, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32).astype(dtype, copy=False)


def encode(a, compress):
    return bf16_encode(a) if compress == "bf16" else a


def decode(data, dtype, compress):
    return bf16_decode(data, dtype) if compress == "bf16" else np.frombuffer(data, dtype=dtype)


def npz_arrays(data):
    with np.load(io.BytesIO(data), allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def extra_weights_bytes(model):
    """The non-trainable weights (BatchNorm statistics...) as one npz payload."""
    return npz_bytes({f"a{k}": np.asarray(w.data) for k, w in enumerate(model.non_trainable_weights)})


def write_weight_blocks(model, client, run, trainers, iteration):
    """Put the model's weights as the blocks of ``iteration``: one per owner, one for the rest."""
    param = next(iter(model._flat_parameters().data.values()))
    for q, (a, b) in enumerate(block_bounds(param.size, trainers)):
        client.put(block_name(run, "w", iteration, q), np.ascontiguousarray(param[a:b]))
    client.put(block_name(run, "x", iteration), extra_weights_bytes(model))


def read_weight_blocks(model, client, run, trainers, iteration, timeout):
    """Set the model's weights from the blocks of ``iteration`` (trainable: one per owner; the rest:
    one block written by trainer 0 or the driver); returns the flat parameter and gradient buffers."""
    flat = model._flat_parameters()
    param = next(iter(flat.data.values()))
    for q, (a, b) in enumerate(block_bounds(param.size, trainers)):
        client.get_into(block_name(run, "w", iteration, q), param[a:b], timeout)
    extra = npz_arrays(client.get(block_name(run, "x", iteration), timeout))
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
    arrays = npz_arrays(data)
    meta = json.loads(bytes(arrays.pop("__meta__")).decode())
    return ckpt.unflatten_optim_state(meta, arrays)


def merge_owner_states(states):
    """Every owner's optimizer state as one state dict, keys prefixed by block (``block<w>/...``)."""
    merged = {"class_name": states[0]["class_name"], "learning_rate": states[0]["learning_rate"],
              "hyper": states[0]["hyper"], "state": {}}
    for w, s in enumerate(states):
        for k, v in s["state"].items():
            merged["state"][f"block{w}/{k}"] = v
    return merged


def owner_state(saved, worker):
    """Owner ``worker``'s part of a merged state dict (the inverse of ``merge_owner_states``)."""
    prefix = f"block{worker}/"
    state = {k[len(prefix):]: v for k, v in saved["state"].items() if k.startswith(prefix)}
    return {**saved, "state": state}
