"""Model files and checkpoints from outside are untrusted: every damaged or hostile file gives a
ModelFileError naming the file, the field and what was expected, within bounded memory and time."""
import io
import json
import os
import re
import resource
import subprocess
import sys
import threading
import zipfile

import numpy as np
import pytest

import ember
from ember import optim
from ember.layers import Dense
from ember.layers.archive import ModelFileError


def small_model():
    ember.set_seed(0)
    return ember.Sequential([Dense(4, activation="relu", input_shape=(3,)), Dense(2, activation="softmax")])


def saved(tmp_path, name="m.ember"):
    path = tmp_path / name
    small_model().save(path)
    return path


def rewrite(path, out, **members):
    """A copy of archive ``path`` at ``out`` with ``members`` (name -> bytes) replaced or added."""
    with zipfile.ZipFile(path) as zf:
        entries = {n: zf.read(n) for n in zf.namelist()}
    entries.update(members)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return out


def meta_of(path):
    with zipfile.ZipFile(path) as zf:
        return json.loads(zf.read("model.json"))


@pytest.mark.parametrize("model_json, field", [
    (b"[1, 2, 3]", "a JSON object"),
    (b'{"format": "ember-model", "format_version": 1, "model": {}, "weights": 5}', "field 'weights'"),
    (b"\xff\xfe{not utf-8}", "UTF-8"),
    (b"[" * 100000 + b"]" * 100000, "nested at most"),
    (b'{"format": "ember-model", "format_version": 1, "weights": []}', "the keys ['model']"),
    (b'{"format": "other", "format_version": 1, "model": {}, "weights": []}', "format"),
])
def test_malformed_model_json(tmp_path, model_json, field):
    bad = rewrite(saved(tmp_path), tmp_path / "bad.ember", **{"model.json": model_json})
    with pytest.raises(ModelFileError, match=re.escape(field)) as info:
        ember.load_model(bad)
    assert str(bad) in str(info.value)


def test_an_architecture_larger_than_its_weights_is_refused_before_allocation(tmp_path):
    path = saved(tmp_path)
    meta = meta_of(path)
    meta["model"]["config"]["layers"][1]["config"]["units"] = 2 ** 25  # 2.3 KB asking for gigabytes
    bad = rewrite(path, tmp_path / "huge.ember", **{"model.json": json.dumps(meta).encode()})
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(ModelFileError, match="more than the .* the file still holds"):
        ember.load_model(bad)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200_000  # KB: nothing big was made


def test_a_zip_bomb_member_is_refused(tmp_path):
    path = saved(tmp_path)
    for inner in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):  # the bomb in the file, or inside its .npz
        bomb = io.BytesIO()
        with zipfile.ZipFile(bomb, "w", inner) as zf:
            zf.writestr("w0000.npy", b"\0" * (400 << 20))  # 400 MB of zeros deflate to about 400 KB
        bad = rewrite(path, tmp_path / "bomb.ember", **{"weights.npz": bomb.getvalue()})
        assert os.path.getsize(bad) < 2 << 20
        with pytest.raises(ModelFileError, match="a zip bomb"):
            ember.load_model(bad)


def test_an_array_header_claiming_more_than_its_bytes_is_refused(tmp_path):
    path = saved(tmp_path)
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": (1 << 40,)})
    npz = io.BytesIO()
    with zipfile.ZipFile(npz, "w") as zf:
        zf.writestr("w0000.npy", header.getvalue() + b"\0" * 64)
    bad = rewrite(path, tmp_path / "claims.ember", **{"weights.npz": npz.getvalue()})
    with pytest.raises(ModelFileError, match="bytes of data for shape"):
        ember.load_model(bad)


def test_object_arrays_are_refused(tmp_path):
    path = saved(tmp_path)
    npz = io.BytesIO()
    np.savez(npz, w0000=np.array([{"a": 1}], dtype=object), allow_pickle=True)
    bad = rewrite(path, tmp_path / "objects.ember", **{"weights.npz": npz.getvalue()})
    with pytest.raises(ModelFileError, match="object arrays are refused"):
        ember.load_model(bad)


def test_only_regular_files_are_opened(tmp_path):
    link = tmp_path / "zero.ember"
    os.symlink("/dev/zero", link)
    with pytest.raises(ModelFileError, match="not a regular file"):
        ember.load_model(link)
    fifo = tmp_path / "fifo.ember"
    os.mkfifo(fifo)
    result = {}
    reader = threading.Thread(target=lambda: result.update(error=_load_error(fifo)), daemon=True)
    reader.start()
    reader.join(timeout=10)
    assert not reader.is_alive(), "loading a FIFO hung"
    assert isinstance(result["error"], ModelFileError) and "not a regular file" in str(result["error"])
    with pytest.raises(ModelFileError, match="not a regular file"):
        ember.load_model(tmp_path)


def _load_error(path):
    try:
        ember.load_model(path)
    except Exception as e:  # noqa: BLE001 - returned for the assertion
        return e
    return None


def test_a_damaged_optimizer_state_in_a_checkpoint(tmp_path):
    x = np.random.default_rng(0).normal(size=(32, 3))
    y = (x[:, 0] > 0).astype(int)
    opt = optim.Optimizer(small_model(), (x, y), "sparse_categorical_crossentropy", optim.Adam(0.01),
                          optim.MaxIteration(2), 16)
    opt.set_checkpoint(tmp_path / "ck", optim.SeveralIteration(2)).set_progress(0, quiet=True).optimize()
    good = optim.latest_checkpoint(tmp_path / "ck")
    with zipfile.ZipFile(good) as zf:
        meta = json.loads(zf.read("optim.json"))
    meta["arrays"].append("u")  # names an array the file does not hold
    bad = rewrite(good, tmp_path / "bad-optim.ember", **{"optim.json": json.dumps(meta).encode()})
    with pytest.raises(ModelFileError, match="optim.json/optim.npz"):
        optim.load_checkpoint(bad)
    state = rewrite(good, tmp_path / "bad-state.ember", **{"state.json": b'{"format": "ember-checkpoint", '
                                                                          b'"format_version": 1, "epoch": -1, '
                                                                          b'"iteration": 2}'})
    with pytest.raises(ModelFileError, match="field 'epoch'"):
        optim.load_checkpoint(state)


FUZZ = r"""
import io, json, os, random, resource, sys, time, zipfile
import ember
from ember import optim
from ember.layers import Dense
from ember.layers.archive import ModelFileError

# address space: what is mapped now (Numba, NumPy, BLAS threads) plus 1 GiB; nothing may need more
with open("/proc/self/statm") as f:
    mapped = int(f.read().split()[0]) * resource.getpagesize()
resource.setrlimit(resource.RLIMIT_AS, (mapped + (1 << 30),) * 2)
folder, cases, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
ember.set_seed(0)
model = ember.Sequential([Dense(4, activation="relu", input_shape=(3,)), Dense(2, activation="softmax")])
model.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
good = os.path.join(folder, "good.ember")
model.save(good)
import numpy as np
x = np.random.default_rng(0).normal(size=(8, 3))
opt = optim.Optimizer(model, (x, (x[:, 0] > 0).astype(int)), "sparse_categorical_crossentropy", optim.Adam(0.01),
                      optim.MaxIteration(1), 4)
opt.set_checkpoint(os.path.join(folder, "ck"), optim.SeveralIteration(1)).set_progress(0, quiet=True).optimize()
sources = {}
for kind, path in (("model", good), ("checkpoint", optim.latest_checkpoint(os.path.join(folder, "ck")))):
    with zipfile.ZipFile(path) as zf:
        sources[kind] = {n: zf.read(n) for n in zf.namelist()}
load = {"model": ember.load_model, "checkpoint": optim.load_checkpoint}
rng = random.Random(seed)
outcomes = {"loaded": 0, "ModelFileError": 0}
slowest = 0.0
for case in range(cases):
    target = "model" if case % 2 == 0 else "checkpoint"
    entries = dict(sources[target])
    name = rng.choice(sorted(entries))
    data = bytearray(entries[name])
    kind = rng.randrange(6)
    if kind == 5:  # a layer's config value replaced by something of another type or size
        name = "model.json"
        meta = json.loads(entries[name])
        layer = rng.choice(meta["model"]["config"]["layers"])
        key = rng.choice(sorted(layer["config"]) + ["class_name"])
        value = rng.choice([None, -5, 0, 2 ** 40, 1e308, "x", [], {}, [3, -1], "Dense", "Conv2D", "os.system"])
        if key == "class_name":
            layer["class_name"] = value
        else:
            layer["config"][key] = value
        data = bytearray(json.dumps(meta).encode())
    elif kind == 0 and data:  # flip bytes
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
    elif kind == 1:  # truncate
        data = data[:rng.randrange(len(data) + 1)]
    elif kind == 2:  # drop the member
        entries.pop(name)
        data = None
    elif kind == 3 and name == "model.json":  # a JSON value replaced by something of another type
        meta = json.loads(bytes(data))
        key = rng.choice(sorted(meta))
        meta[key] = rng.choice([None, 5, "x", [], {}, [1, [2]], 2 ** 40, -1])
        data = json.dumps(meta).encode()
    else:  # random bytes
        data = bytes(rng.randrange(256) for _ in range(rng.randint(0, 300)))
    if data is not None:
        entries[name] = bytes(data)
    path = os.path.join(folder, f"case{case}.ember")
    if rng.random() < 0.1:  # a damaged zip container
        raw = io.BytesIO()
        with zipfile.ZipFile(raw, "w") as zf:
            for n, d in entries.items():
                zf.writestr(n, d)
        raw = bytearray(raw.getvalue())
        for _ in range(4):
            raw[rng.randrange(len(raw))] = rng.randrange(256)
        open(path, "wb").write(raw)
    else:
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            for n, d in entries.items():
                zf.writestr(n, d)
    t0 = time.perf_counter()
    try:
        load[target](path)
        outcomes["loaded"] += 1
    except ModelFileError:
        outcomes["ModelFileError"] += 1
    except Exception as e:
        print("UNEXPECTED", case, kind, name, type(e).__name__, e)
        raise
    slowest = max(slowest, time.perf_counter() - t0)
    os.unlink(path)
print(json.dumps({"cases": cases, **outcomes, "slowest_s": round(slowest, 3),
                  "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024}))
"""


def test_fuzzed_model_files_give_a_model_or_a_model_file_error(tmp_path):
    """Seeded mutations of a compiled model file and of a checkpoint (bytes flipped, truncated, members
    dropped or replaced, JSON values and layer configs of the wrong type or size, a damaged container),
    loaded in a process whose address space is capped at 1 GiB above what it maps at the start."""
    script = tmp_path / "fuzz.py"
    script.write_text(FUZZ)
    out = subprocess.run([sys.executable, str(script), str(tmp_path), "400", "7"], capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["cases"] == 400 and report["loaded"] + report["ModelFileError"] == 400
    assert report["ModelFileError"] > 200 and report["slowest_s"] < 5, report


def _raised_in_ember(error):
    """Whether the innermost frame of ``error``'s traceback is ember's own code (a message written for
    users), not NumPy's or Python's internals."""
    tb = error.__traceback__
    while tb.tb_next is not None:
        tb = tb.tb_next
    root = os.path.dirname(os.path.dirname(os.path.abspath(ember.__file__)))
    return os.path.abspath(tb.tb_frame.f_code.co_filename).startswith(os.path.join(root, os.path.basename(
        os.path.dirname(os.path.abspath(ember.__file__)))))


def test_fuzzed_training_and_inference_arguments_get_ember_errors():
    """Seeded combinations of bad batch sizes, shapes, NaN rows, label ranges and types for fit, evaluate
    and predict: each call succeeds or raises ValueError/TypeError from ember's own checks."""
    import random

    rng = random.Random(3)
    model = small_model()
    model.compile("sgd", "sparse_categorical_crossentropy", ["accuracy"])
    good_x = np.random.default_rng(0).normal(size=(20, 3)).astype("float32")
    good_y = np.arange(20) % 2
    counts = {"ok": 0, "refused": 0}
    for _ in range(300):
        x = good_x.copy()
        y = good_y.copy()
        batch = rng.choice([0, -3, 2.7, 1, 5, 32, 10 ** 9, None, "8", True])
        change = rng.randrange(8)
        if change == 1:
            x = x[:, :2]  # wrong feature count
        elif change == 2:
            x[rng.randrange(20), rng.randrange(3)] = rng.choice([np.nan, np.inf])
        elif change == 3:
            y = y + rng.choice([2, -5, 11])  # labels outside the classes
        elif change == 4:
            y = y[:7]  # fewer targets than inputs
        elif change == 5:
            x = x[:0]
            y = y[:0]
        elif change == 6:
            y = y.astype("float32") + 0.5  # not class ids
        elif change == 7:
            x = x.astype(object)
        call = rng.choice(["fit", "evaluate", "predict"])
        try:
            if call == "fit":
                model.fit(x, y, batch_size=batch, epochs=1, verbose=0)
            elif call == "evaluate":
                model.evaluate(x, y, batch_size=batch)
            else:
                model.predict(x, batch_size=batch)
            counts["ok"] += 1
        except (ValueError, TypeError) as e:
            assert _raised_in_ember(e), f"{call}(batch_size={batch!r}, change {change}): {type(e).__name__}: {e}"
            counts["refused"] += 1
    assert counts["ok"] > 20 and counts["refused"] > 150, counts
