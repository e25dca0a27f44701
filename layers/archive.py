"""Reading ember's zip archives (model files, checkpoints) as untrusted input, within bounds.

Every size the file declares is checked against what the file holds and against a limit before
anything is allocated: only regular files are opened (no FIFO, device or directory, whatever a
symlink points to); each member is read with a size cap and a compression-ratio check; ``.npy``
headers inside an ``.npz`` are parsed first and their shapes checked against the bytes that follow;
JSON members must be UTF-8 objects of bounded depth. Anything malformed raises ``ModelFileError``
naming the file, the member or field, and what was expected.
"""
import io
import json
import os
import stat
import struct
import zipfile

import numpy as np

# NOTE: a zip bomb of 1.5 MB inflated to 2.6 GB before these checks, and a 2.3 KB model.json declaring
# Dense(units=2**25) allocated 3.3 GB while its architecture was built.
MAX_MEMBER_BYTES = int(os.environ.get("EMBER_MAX_MEMBER_BYTES", 16 << 30))  # one member, uncompressed
MAX_JSON_BYTES = 64 << 20
MAX_RATIO = 200  # uncompressed / compressed, for members larger than SMALL_MEMBER
SMALL_MEMBER = 64 << 20
MAX_JSON_DEPTH = 200


# what zipfile raises on a damaged archive (its own error, and others for headers it cannot parse)
ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError, NotImplementedError,
              struct.error, OverflowError, RuntimeError)  # RuntimeError: an encrypted member


class ModelFileError(ValueError):
    """A model or checkpoint file that is unreadable, malformed or larger than it may be."""

    def __init__(self, path, what, expected):
        name = os.fspath(path) if isinstance(path, (str, bytes, os.PathLike)) else getattr(path, "name", "<bytes>")
        super().__init__(f"{name!r}: {what}; expected {expected}")
        self.path, self.what, self.expected = name, what, expected


def open_archive(path, kind="an ember model file"):
    """A ``ZipFile`` on ``path`` once it is known to be a regular file and a zip archive (or on an open
    binary file object, such as model bytes received in a Spark task)."""
    if hasattr(path, "read"):
        try:
            return zipfile.ZipFile(path)
        except ZIP_ERRORS as e:
            raise ModelFileError(path, "is not a zip archive", f"{kind} ({e})") from None
    try:
        info = os.stat(path)
    except OSError as e:
        raise ModelFileError(path, "cannot be read", f"{kind} ({e.strerror or e})") from None
    if not stat.S_ISREG(info.st_mode):
        raise ModelFileError(path, "is not a regular file", f"{kind} (a FIFO, device or folder is refused)")
    try:
        return zipfile.ZipFile(path)
    except ZIP_ERRORS as e:
        raise ModelFileError(path, "is not a zip archive", f"{kind} ({e})") from None


def read_member(zf, path, name, limit=MAX_MEMBER_BYTES):
    """The bytes of member ``name``, after checking its declared size and compression ratio."""
    try:
        info = zf.getinfo(name)
    except KeyError:
        raise ModelFileError(path, f"member {name}", "present (the archive lacks it)") from None
    if info.file_size > limit:
        raise ModelFileError(path, f"member {name}", f"at most {limit} bytes (a zip bomb?), it declares "
                             f"{info.file_size}")
    if info.file_size > SMALL_MEMBER and info.file_size > MAX_RATIO * max(info.compress_size, 1):
        raise ModelFileError(path, f"member {name}", f"a compression ratio below {MAX_RATIO} (a zip bomb?), it "
                             f"declares {info.file_size} bytes from {info.compress_size}")
    try:
        with zf.open(info) as f:
            data = f.read(info.file_size + 1)
    except ZIP_ERRORS as e:
        raise ModelFileError(path, f"member {name}", f"a readable member ({e})") from None
    if len(data) != info.file_size:
        raise ModelFileError(path, f"member {name}", f"{info.file_size} bytes as declared, it holds {len(data)}")
    return data


def _depth(text):
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            escaped = not escaped and ch == "\\"
            if ch == '"' and not escaped:
                in_string = False
            continue
        if ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def read_json(zf, path, name, required=()):
    """Member ``name`` as a JSON object holding the keys ``required``."""
    data = read_member(zf, path, name, MAX_JSON_BYTES)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ModelFileError(path, f"member {name}", f"UTF-8 text ({e.reason} at byte {e.start})") from None
    if _depth(text) > MAX_JSON_DEPTH:
        raise ModelFileError(path, f"member {name}", f"JSON nested at most {MAX_JSON_DEPTH} deep")
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as e:
        raise ModelFileError(path, f"member {name}", f"valid JSON ({e})") from None
    if not isinstance(value, dict):
        raise ModelFileError(path, f"member {name}", f"a JSON object, it holds a {type(value).__name__}")
    missing = [k for k in required if k not in value]
    if missing:
        raise ModelFileError(path, f"member {name}", f"the keys {missing}")
    return value


def _npy_array(raw, path, where):
    """One ``.npy`` payload: header checked (no objects, shape matching the bytes) before the array is made."""
    f = io.BytesIO(raw)
    try:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        else:
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
    except (ValueError, SyntaxError, TypeError, EOFError) as e:
        raise ModelFileError(path, where, f"a NumPy array header ({e})") from None
    if dtype.hasobject:
        raise ModelFileError(path, where, "numbers (object arrays are refused)")
    count = 1
    for n in shape:
        count *= int(n)
    if count * dtype.itemsize != len(raw) - f.tell():
        raise ModelFileError(path, where, f"{count * dtype.itemsize} bytes of data for shape {shape} {dtype}, it "
                             f"holds {len(raw) - f.tell()}")
    array = np.frombuffer(raw, dtype=dtype, count=count, offset=f.tell())
    return array.reshape(shape, order="F" if fortran else "C").copy()


def read_npz(zf, path, name):
    """Member ``name`` (an ``.npz``) as a dict of arrays, every array's size checked before it is made."""
    data = read_member(zf, path, name)
    try:
        inner = zipfile.ZipFile(io.BytesIO(data))
    except ZIP_ERRORS as e:
        raise ModelFileError(path, f"member {name}", f"a NumPy .npz archive ({e})") from None
    arrays = {}
    with inner:
        for info in inner.infolist():
            where = f"member {name}, array {info.filename}"
            raw = read_member(inner, path, info.filename, min(MAX_MEMBER_BYTES, len(data) * MAX_RATIO + SMALL_MEMBER))
            key = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
            arrays[key] = _npy_array(raw, path, where)
    return arrays
