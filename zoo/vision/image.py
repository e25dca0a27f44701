"""Decoding images and reading folders of them into arrays, without Spark; and the conversions to and
from Spark's image struct, so that the local and the Spark readers give the same pixels.

Images decode with Pillow (its decompression-bomb limit stays on) and come out as (H, W, 3) uint8
RGB: grayscale, palette, CMYK, RGBA (alpha dropped) and 16-bit images are converted explicitly.
Spark's image source stores pixels as BGR with OpenCV modes (0: 8-bit gray, 16: BGR, 24: BGRA); the
struct helpers convert between that and RGB arrays, explicitly.
"""
import io
import os

import numpy as np

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
OPENCV_MODES = {0: 1, 16: 3, 24: 4}  # Spark image mode -> channels (CV_8UC1, CV_8UC3, CV_8UC4)


class ImageDecodeError(ValueError):
    """A file or byte string that is not a decodable image (names it and why); a ``ValueError``.

    Example:
        >>> from ember.zoo.vision import ImageDecodeError, decode
        >>> try:
        ...     decode(b"not an image", origin="junk.jpg")
        ... except ImageDecodeError as e:
        ...     print(str(e)[:35])
        junk.jpg: not a decodable image (ca
    """


def decode(data, origin="<bytes>"):
    """An encoded image (bytes, or a path) -> an (H, W, 3) uint8 RGB array.

    Example:
        >>> import io, numpy as np
        >>> from PIL import Image
        >>> buf = io.BytesIO(); Image.new("L", (4, 2), 200).save(buf, "PNG")
        >>> from ember.zoo.vision import decode
        >>> decode(buf.getvalue()).shape
        (2, 4, 3)
    """
    from PIL import Image, UnidentifiedImageError

    if isinstance(data, (str, os.PathLike)):
        origin = os.fspath(data)
        with open(data, "rb") as f:
            data = f.read()
    if not data:
        raise ImageDecodeError(f"{origin}: an empty file is not an image")
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            return to_rgb(img)
    except Image.DecompressionBombError as e:
        raise ImageDecodeError(f"{origin}: refused as a decompression bomb ({e})") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise ImageDecodeError(f"{origin}: not a decodable image ({e})") from None


def to_rgb(img):
    """A Pillow image of any mode -> (H, W, 3) uint8 RGB (16-bit scaled down, alpha dropped)."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith("I;16") or array.max() > 255 else 255.0
        gray = np.clip(np.rint(array * (255.0 / top)), 0, 255).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if img.mode == "F":
        gray = np.clip(np.rint(np.asarray(img, dtype=np.float64)), 0, 255).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    return np.asarray(img.convert("RGB"), dtype=np.uint8)


def list_images(path, recursive=True):
    """Image files under ``path`` (a file, a folder, or a list of either), sorted, by extension.

    Args:
        path: a file, a folder, or a list of files and folders.
        recursive: look in sub-folders too.

    Example:
        >>> import os, tempfile
        >>> from ember.zoo.vision import list_images
        >>> root = tempfile.mkdtemp()
        >>> os.makedirs(os.path.join(root, "cats"))
        >>> for name in ("cats/b.png", "a.jpg", "notes.txt"):
        ...     open(os.path.join(root, name), "wb").close()
        >>> [os.path.relpath(p, root) for p in list_images(root)]
        ['a.jpg', 'cats/b.png']
    """
    if isinstance(path, (list, tuple)):
        return [f for p in path for f in list_images(p, recursive)]
    path = os.fspath(path)
    if os.path.isfile(path):
        return [path]
    if not os.path.isdir(path):
        raise FileNotFoundError(f"{path}: no such file or folder")
    found = []
    for root, dirs, files in os.walk(path):
        dirs.sort()
        found.extend(os.path.join(root, f) for f in sorted(files) if f.lower().endswith(IMAGE_EXTENSIONS))
        if not recursive:
            break
    return found


def label_of(path, root):
    """The name of the folder directly under ``root`` that holds ``path`` (its class), or None."""
    rel = os.path.relpath(path, root)
    parts = rel.split(os.sep)
    return parts[0] if len(parts) > 1 else None


def read_images(path, recursive=True, sample_fraction=None, seed=0, drop_invalid=True, label_from_folder=False):
    """Decode the images under ``path`` (a folder, a file or a list of paths).

    Args:
        path: a folder, a file or a list of paths.
        recursive: look in sub-folders too.
        sample_fraction: keep each file with this probability (seeded), as Spark's image source does.
        seed: the seed of that sampling.
        drop_invalid: undecodable files are skipped (and counted) instead of raising.
        label_from_folder: classes from the first folder level under ``path`` (sorted names -> 0, 1, ...).

    Returns:
        a dict with ``images`` (list of (H, W, 3) uint8 RGB arrays), ``paths``, ``invalid`` (paths
        skipped), and with ``label_from_folder`` also ``labels`` (int array) and ``classes`` (names).

    Example:
        >>> import os, tempfile
        >>> from PIL import Image
        >>> from ember.zoo.vision import read_images
        >>> root = tempfile.mkdtemp()
        >>> for cls in ("cat", "dog"):
        ...     os.makedirs(os.path.join(root, cls))
        ...     Image.new("RGB", (4, 3)).save(os.path.join(root, cls, "1.png"))
        >>> open(os.path.join(root, "dog", "2.png"), "wb").close()  # empty: not an image
        >>> out = read_images(root, label_from_folder=True)
        >>> [im.shape for im in out["images"]], out["labels"].tolist(), out["classes"], len(out["invalid"])
        ([(3, 4, 3), (3, 4, 3)], [0, 1], ['cat', 'dog'], 1)
    """
    files = list_images(path, recursive)
    if sample_fraction is not None:
        if not 0 < sample_fraction <= 1:
            raise ValueError(f"read_images: sample_fraction must be in (0, 1], got {sample_fraction}")
        keep = np.random.default_rng(seed).random(len(files)) < sample_fraction
        files = [f for f, k in zip(files, keep) if k]
    images, paths, invalid = [], [], []
    for f in files:
        try:
            images.append(decode(f))
            paths.append(f)
        except ImageDecodeError:
            if not drop_invalid:
                raise
            invalid.append(f)
    out = {"images": images, "paths": paths, "invalid": invalid}
    if label_from_folder:
        root = os.fspath(path)
        names = [label_of(p, root) for p in paths]
        if any(n is None for n in names):
            raise ValueError(f"read_images: label_from_folder needs every image in a class folder under {root}")
        out["classes"] = sorted(set(names))
        index = {c: i for i, c in enumerate(out["classes"])}
        out["labels"] = np.array([index[n] for n in names], dtype=np.int64)
    return out


def to_image_struct(origin, rgb):
    """An (H, W, 3) uint8 RGB array -> the fields of Spark's image struct (BGR bytes, mode 16).

    Args:
        origin: the image's path or name.
        rgb: an (H, W, 3) uint8 RGB array.

    Example:
        >>> import numpy as np
        >>> from ember.zoo.vision import to_image_struct
        >>> s = to_image_struct("red.png", np.array([[[255, 0, 0]]], np.uint8))
        >>> s["height"], s["width"], s["mode"], list(s["data"])  # blue, green, red
        (1, 1, 16, [0, 0, 255])
    """
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"to_image_struct: expected an (H, W, 3) uint8 RGB array, got {rgb.dtype} {rgb.shape}")
    return {"origin": origin, "height": int(rgb.shape[0]), "width": int(rgb.shape[1]), "nChannels": 3,
            "mode": 16, "data": bytearray(np.ascontiguousarray(rgb[:, :, ::-1]).tobytes())}


def from_image_struct(row):
    """Spark's image struct (a Row or dict: height, width, nChannels, mode, data) -> (H, W, 3) uint8 RGB.

    Args:
        row: a Spark ``Row`` of the image schema, or a dict with the same fields.

    Example:
        >>> import numpy as np
        >>> from ember.zoo.vision import from_image_struct, to_image_struct
        >>> rgb = np.arange(12, dtype=np.uint8).reshape(2, 2, 3)
        >>> bool((from_image_struct(to_image_struct("x", rgb)) == rgb).all())
        True
        >>> from_image_struct({"height": 1, "width": 1, "nChannels": 1, "mode": 0, "data": b"7"}).tolist()
        [[[55, 55, 55]]]
    """
    get = row.__getitem__
    try:
        height, width, channels, mode, data = (get(k) for k in ("height", "width", "nChannels", "mode", "data"))
    except (KeyError, ValueError) as e:
        raise ValueError(f"expected Spark's image struct (origin, height, width, nChannels, mode, data): {e}") from None
    if mode not in OPENCV_MODES or OPENCV_MODES[mode] != channels:
        raise ValueError(f"image {get('origin') if 'origin' in _keys(row) else ''}: mode {mode} with {channels} "
                         "channels; expected 8-bit OpenCV modes 0 (gray), 16 (BGR) or 24 (BGRA)")
    if height < 0 or width < 0 or len(data) != height * width * channels:
        raise ValueError(f"image struct: {len(data)} bytes of data for {height}x{width}x{channels}")
    pixels = np.frombuffer(bytes(data), dtype=np.uint8).reshape(height, width, channels)
    if channels == 1:
        return np.repeat(pixels, 3, axis=2)
    return np.ascontiguousarray(pixels[:, :, 2::-1])  # BGR(A) -> RGB


def _keys(row):
    return row.asDict().keys() if hasattr(row, "asDict") else row.keys()
