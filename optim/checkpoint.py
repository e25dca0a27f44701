"""Training checkpoints: everything needed to continue a run exactly, in one zip file, no pickle.

Members (a superset of a model file, so ``ember.load_model`` reads a checkpoint too):
    ``model.json``, ``weights.npz``  the model, as ``Model.save`` writes it,
    ``optim.json``, ``optim.npz``    the optimization method: class, learning rate, hyper-parameters,
                                     scalar state in JSON, array state (lists of arrays too) in npz,
    ``state.json``                   epoch/iteration counters, position in the epoch, RNG states,
                                     learning-rate schedule state,
    ``data.npz``                     the sample order of the unfinished epoch (only mid-epoch).
Files are named ``checkpoint-<iteration>.ember`` and written atomically (temporary file + rename).
"""
import io
import json
import os
import re
import zipfile

import numpy as np

from ember.layers.serialization import model_archive_entries, npz_bytes, read_weights, write_zip_atomic

CHECKPOINT_FORMAT, CHECKPOINT_VERSION = "ember-checkpoint", 1
_NAME = re.compile(r"^checkpoint-(\d+)\.ember$")


def checkpoint_name(iteration):
    return f"checkpoint-{int(iteration)}.ember"


def flatten_optim_state(state_dict):
    """Split an ``OptimMethod.state_dict()`` into JSON-able metadata and named arrays."""
    meta = {"class_name": state_dict["class_name"], "learning_rate": state_dict["learning_rate"],
            "hyper": state_dict["hyper"], "scalars": {}, "arrays": [], "lists": {}}
    arrays = {}
    for key, value in state_dict["state"].items():
        if isinstance(value, list):
            meta["lists"][key] = len(value)
            for i, v in enumerate(value):
                arrays[f"l:{key}:{i}"] = np.asarray(v)
        elif hasattr(value, "shape") and getattr(value, "ndim", 0) > 0:
            meta["arrays"].append(key)
            arrays[f"a:{key}"] = np.asarray(value.get() if hasattr(value, "get") else value)
        else:
            meta["scalars"][key] = value.item() if hasattr(value, "item") else value
    return meta, arrays


def unflatten_optim_state(meta, arrays):
    state = dict(meta["scalars"])
    for key in meta["arrays"]:
        state[key] = arrays[f"a:{key}"]
    for key, n in meta["lists"].items():
        state[key] = [arrays[f"l:{key}:{i}"] for i in range(n)]
    return {"class_name": meta["class_name"], "learning_rate": meta["learning_rate"], "hyper": meta["hyper"],
            "state": state}


def save_checkpoint(path, model, optim_state_dict, train_state, order=None):
    """Write a checkpoint to ``path`` atomically.

    Args:
        optim_state_dict: ``OptimMethod.state_dict()``.
        train_state: JSON-able dict (counters, RNG states, schedule state).
        order: the current epoch's sample order when stopping mid-epoch.
    """
    entries = model_archive_entries(model)
    optim_meta, optim_arrays = flatten_optim_state(optim_state_dict)
    entries["optim.json"] = json.dumps(optim_meta).encode()
    entries["optim.npz"] = npz_bytes(optim_arrays)
    state = {"format": CHECKPOINT_FORMAT, "format_version": CHECKPOINT_VERSION, **train_state}
    entries["state.json"] = json.dumps(state).encode()
    if order is not None:
        entries["data.npz"] = npz_bytes({"order": np.asarray(order)})
    write_zip_atomic(path, entries)


class Checkpoint:
    """A loaded checkpoint: ``weights`` (arrays in ``model.weights`` order), ``optim_state`` (for
    ``OptimMethod.load_state_dict``), ``train_state`` (dict) and ``order`` (array or None)."""

    def __init__(self, path, weights, optim_state, train_state, order):
        self.path, self.weights, self.optim_state = path, weights, optim_state
        self.train_state, self.order = train_state, order

    @property
    def iteration(self):
        return self.train_state["iteration"]


def load_checkpoint(path):
    """Read a checkpoint file written by ``save_checkpoint`` (arrays only: nothing is unpickled)."""
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise ValueError(f"load_checkpoint: {path!r} is not an ember checkpoint ({e})") from e
    with zf:
        names = set(zf.namelist())
        needed = {"model.json", "weights.npz", "optim.json", "optim.npz", "state.json"}
        if not needed <= names:
            raise ValueError(f"load_checkpoint: {path!r} lacks {sorted(needed - names)}; not an ember checkpoint")
        state = json.loads(zf.read("state.json"))
        if state.get("format") != CHECKPOINT_FORMAT or state.get("format_version", 0) > CHECKPOINT_VERSION:
            raise ValueError(f"load_checkpoint: {path!r} has format {state.get('format')!r} version "
                             f"{state.get('format_version')!r}; this ember reads {CHECKPOINT_FORMAT!r} "
                             f"<= {CHECKPOINT_VERSION}")
        meta = json.loads(zf.read("model.json"))
        weights = read_weights(zf, meta, path)
        with np.load(io.BytesIO(zf.read("optim.npz")), allow_pickle=False) as data:
            optim_arrays = {k: data[k] for k in data.files}
        optim_state = unflatten_optim_state(json.loads(zf.read("optim.json")), optim_arrays)
        order = None
        if "data.npz" in names:
            with np.load(io.BytesIO(zf.read("data.npz")), allow_pickle=False) as data:
                order = data["order"]
    return Checkpoint(os.fspath(path), weights, optim_state, state, order)


def list_checkpoints(folder):
    """Checkpoint files in ``folder``, oldest (lowest iteration) first."""
    if not os.path.isdir(folder):
        return []
    found = [(int(m.group(1)), name) for name in os.listdir(folder) if (m := _NAME.match(name))]
    return [os.path.join(folder, name) for _, name in sorted(found)]


def prune_checkpoints(folder, keep):
    """Delete every checkpoint in ``folder`` but ``keep`` (a path), after ``keep`` was written."""
    for old in list_checkpoints(folder):
        if os.path.abspath(old) != os.path.abspath(keep):
            os.unlink(old)


def latest_checkpoint(folder):
    """The newest checkpoint in ``folder`` (by iteration), or None."""
    found = list_checkpoints(folder)
    return found[-1] if found else None


def resolve_checkpoint(path):
    """``path`` itself, or the newest checkpoint when ``path`` is a folder (a clear error if it has none)."""
    if os.path.isdir(path):
        found = latest_checkpoint(path)
        if found is None:
            raise ValueError(f"resume: no checkpoint-<iteration>.ember file in {path!r}")
        return found
    return path
