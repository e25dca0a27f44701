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
import json
import os
import re

import numpy as np

from ember.layers.archive import ModelFileError, open_archive, read_json, read_npz
from ember.layers.serialization import model_archive_entries, npz_bytes, read_model_archive, write_zip_atomic

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
    """Write a checkpoint to ``path`` atomically (a zip of arrays and JSON; nothing pickled).

    ``Optimizer.set_checkpoint`` writes these during training; ``load_checkpoint`` reads them.

    Args:
        path: the file to write.
        model: the model whose weights to save.
        optim_state_dict: ``OptimMethod.state_dict()``.
        train_state: JSON-able dict (counters, RNG states, schedule state); ``epoch`` and ``iteration`` are required.
        order: the current epoch's sample order when stopping mid-epoch.

    Example:
        >>> import os, tempfile
        >>> import ember
        >>> from ember.layers import Dense
        >>> from ember.optim import Adam, load_checkpoint, save_checkpoint
        >>> model = ember.Sequential([Dense(2, input_shape=(3,))])
        >>> path = os.path.join(tempfile.mkdtemp(), "checkpoint-7.ember")
        >>> save_checkpoint(path, model, Adam().state_dict(), {"epoch": 1, "iteration": 7})
        >>> load_checkpoint(path).iteration
        7
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
    """Read a checkpoint file written by ``save_checkpoint`` (arrays only: nothing is unpickled). A damaged
    or foreign file raises ``ModelFileError`` naming the file and the field.

    Args:
        path: the checkpoint file.

    Returns:
        A ``Checkpoint`` with ``weights`` (arrays in ``model.weights`` order), ``optim_state``,
        ``train_state`` (dict), ``order`` (array or None) and ``iteration``.

    Example:
        >>> import os, tempfile
        >>> import ember
        >>> from ember.layers import Dense
        >>> from ember.optim import SGD, load_checkpoint, save_checkpoint
        >>> model = ember.Sequential([Dense(2, input_shape=(3,))])
        >>> path = os.path.join(tempfile.mkdtemp(), "checkpoint-3.ember")
        >>> save_checkpoint(path, model, SGD(0.1).state_dict(), {"epoch": 1, "iteration": 3})
        >>> ckpt = load_checkpoint(path)
        >>> [w.shape for w in ckpt.weights], ckpt.optim_state["learning_rate"], ckpt.train_state["epoch"]
        ([(3, 2), (2,)], 0.1, 1)
    """
    with open_archive(path, "an ember checkpoint") as zf:
        meta, weights = read_model_archive(zf, path)
        state = read_json(zf, path, "state.json", ("epoch", "iteration"))
        if state.get("format") != CHECKPOINT_FORMAT or not isinstance(state.get("format_version"), int) \
                or state["format_version"] > CHECKPOINT_VERSION:
            raise ModelFileError(path, "state.json: format", f"{CHECKPOINT_FORMAT!r} version <= "
                                 f"{CHECKPOINT_VERSION}, found {state.get('format')!r} {state.get('format_version')!r}")
        for key in ("epoch", "iteration", "position", "records"):
            if not isinstance(state.get(key, 0), int) or state.get(key, 0) < 0:
                raise ModelFileError(path, f"state.json: field {key!r}", "an integer >= 0")
        optim_meta = read_json(zf, path, "optim.json", ("class_name", "learning_rate", "hyper"))
        optim_arrays = read_npz(zf, path, "optim.npz")
        try:
            optim_state = unflatten_optim_state(optim_meta, optim_arrays)
        except (KeyError, TypeError, AttributeError, ValueError) as e:
            raise ModelFileError(path, "optim.json/optim.npz",
                                 f"the optimizer state they describe ({type(e).__name__}: {e})") from None
        order = None
        if "data.npz" in zf.namelist():
            order = read_npz(zf, path, "data.npz").get("order")
            if order is None or order.ndim != 1 or order.dtype.kind not in "iu":
                raise ModelFileError(path, "member data.npz", "an integer array 'order'")
    return Checkpoint(os.fspath(path), weights, optim_state, state, order)


def list_checkpoints(folder):
    """Checkpoint files in ``folder``, oldest (lowest iteration) first."""
    if not os.path.isdir(folder):
        return []
    found = [(int(m.group(1)), name) for name in os.listdir(folder) if (m := _NAME.match(name))]
    return [os.path.join(folder, name) for _, name in sorted(found)]


def checkpoint_run_id(path):
    """The id of the run that wrote checkpoint ``path`` (None for files written before runs had ids, or
    unreadable ones)."""
    try:
        with open_archive(path, "an ember checkpoint") as zf:
            return read_json(zf, path, "state.json").get("run_id")
    except ModelFileError:
        return None


def prune_checkpoints(folder, keep, run_id=None):
    """Delete the checkpoints in ``folder`` but ``keep`` (a path) that run ``run_id`` wrote (every one
    when ``run_id`` is None), after ``keep`` was written: never what another run wrote."""
    for old in list_checkpoints(folder):
        if os.path.abspath(old) != os.path.abspath(keep) and (run_id is None or checkpoint_run_id(old) == run_id):
            os.unlink(old)


class FolderInUseError(RuntimeError):
    """Another running process trains with the same checkpoint folder."""


class FolderLock:
    """One run at a time per checkpoint folder: an exclusive lock on ``<folder>/.ember-lock`` while it
    trains. The OS releases it when the process ends, however it ends, so a killed run never leaves the
    folder locked; whoever takes the lock next removes the temporary files a killed writer left.

    Example:
        >>> import tempfile
        >>> from ember.optim.checkpoint import FolderLock
        >>> folder = tempfile.mkdtemp()
        >>> with FolderLock(folder):
        ...     FolderLock(folder).acquire()
        Traceback (most recent call last):
        ...
        ember.optim.checkpoint.FolderInUseError: ...
    """

    def __init__(self, folder):
        self.folder = os.fspath(folder)
        self.path = os.path.join(self.folder, ".ember-lock")
        self.fd = None

    def acquire(self):
        import fcntl

        fd = os.open(self.path, os.O_CREAT | os.O_RDWR | getattr(os, "O_NOFOLLOW", 0), 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise FolderInUseError(f"checkpoint folder {self.folder!r} is in use by another run (process {owner}); "
                                   "give each run its own folder") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self.fd = fd
        for name in os.listdir(self.folder):  # no other writer now: any temporary file is an orphan
            if name.startswith(".ember-") and name.endswith(".tmp"):
                try:
                    os.unlink(os.path.join(self.folder, name))
                except OSError:
                    pass
        return self

    def release(self):
        if self.fd is not None:
            os.close(self.fd)  # closing the descriptor releases the lock
            self.fd = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()


def latest_checkpoint(folder):
    """The newest checkpoint in ``folder`` (by iteration, from the ``checkpoint-<iteration>.ember`` names), or None.

    Args:
        folder: the checkpoint folder given to ``set_checkpoint``.

    Example:
        >>> import os, tempfile
        >>> import ember
        >>> from ember.layers import Dense
        >>> from ember.optim import SGD, latest_checkpoint, save_checkpoint
        >>> folder = tempfile.mkdtemp()
        >>> latest_checkpoint(folder) is None
        True
        >>> model = ember.Sequential([Dense(1, input_shape=(1,))])
        >>> for it in (5, 10):
        ...     save_checkpoint(os.path.join(folder, f"checkpoint-{it}.ember"), model, SGD().state_dict(),
        ...                     {"epoch": 1, "iteration": it})
        >>> os.path.basename(latest_checkpoint(folder))
        'checkpoint-10.ember'
    """
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
