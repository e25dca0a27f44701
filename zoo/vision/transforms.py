"""Image transforms (Spark-free): composable steps from a decoded image to a model input.

Steps before ``ToTensor`` take and return Pillow images (Pillow does the resampling); ``ToTensor``
turns one into a float32 array (HWC or CHW, RGB or BGR, scaled); ``ChannelNormalize`` works on such
arrays. ``Compose(...)(image)`` transforms one image, ``Compose(...).batch(images)`` stacks many (what
a Spark partition does). Random steps take a ``seed`` and draw from their own generator, so a run is
repeatable.

Example:
    >>> import numpy as np
    >>> from ember.zoo.vision import transforms as T
    >>> pipeline = T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor(),
    ...                       T.ChannelNormalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))])
    >>> pipeline(np.zeros((300, 400, 3), np.uint8)).shape
    (224, 224, 3)
"""
import numpy as np


def _pil(image):
    from PIL import Image

    if isinstance(image, Image.Image):
        return image
    array = np.asarray(image)
    if array.dtype != np.uint8 or array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (1, 3, 4)):
        raise ValueError(f"expected an image: a Pillow image or a uint8 array of shape (H, W), (H, W, 1), (H, W, 3) "
                         f"or (H, W, 4), got {array.dtype} {array.shape}")
    return Image.fromarray(array[:, :, 0] if array.ndim == 3 and array.shape[2] == 1 else array)


def _size_pair(size, what):
    if isinstance(size, int):
        if size < 1:
            raise ValueError(f"{what}: size must be >= 1, got {size}")
        return size, size
    h, w = (int(s) for s in size)
    if h < 1 or w < 1:
        raise ValueError(f"{what}: size must be >= 1, got {size}")
    return h, w


class Transform:
    """Base class: ``__call__(image)`` returns the transformed image."""

    def __call__(self, image):
        raise NotImplementedError

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({args})"


class Compose(Transform):
    """The steps one after another."""

    def __init__(self, steps):
        self.steps = list(steps)
        for step in self.steps:
            if not callable(step):
                raise TypeError(f"Compose: every step must be callable, got {step!r}")

    def __call__(self, image):
        for step in self.steps:
            image = step(image)
        return image

    def batch(self, images):
        """The transformed images stacked into one array (they must end at one shape)."""
        out = [self(image) for image in images]
        shapes = {np.shape(o) for o in out}
        if len(shapes) > 1:
            raise ValueError(f"Compose.batch: the images end at different shapes {sorted(shapes)}; add a Resize "
                             "or a crop with a fixed size")
        return np.stack(out)


class Resize(Transform):
    """``size`` an int: the shorter side becomes ``size`` (aspect kept); ``(h, w)``: exactly that size.

    Args:
        interpolation: a Pillow resampling filter name ("bilinear", "bicubic", "nearest", "lanczos").
    """

    def __init__(self, size, interpolation="bilinear"):
        self.size = size if isinstance(size, int) else tuple(size)
        _size_pair(size, "Resize")
        self.interpolation = interpolation

    def __call__(self, image):
        from PIL import Image

        img = _pil(image)
        method = getattr(Image.Resampling, self.interpolation.upper(), None)
        if method is None:
            raise ValueError(f"Resize: unknown interpolation {self.interpolation!r}")
        w, h = img.size
        if isinstance(self.size, int):
            if min(w, h) == self.size:
                return img
            scale = self.size / min(w, h)
            target = (max(1, round(w * scale)), max(1, round(h * scale)))
        else:
            target = (self.size[1], self.size[0])
        return img.resize(target, method)


class CenterCrop(Transform):
    """The centre ``size`` (int or (h, w)) of the image; an image smaller than that is padded with zeros."""

    def __init__(self, size):
        self.size = size if isinstance(size, int) else tuple(size)
        _size_pair(size, "CenterCrop")

    def __call__(self, image):
        img = _pil(image)
        ch, cw = _size_pair(self.size, "CenterCrop")
        w, h = img.size
        left, top = (w - cw) // 2, (h - ch) // 2
        return img.crop((left, top, left + cw, top + ch))


class RandomCrop(Transform):
    """A ``size`` crop at a random place (drawn from this transform's own generator)."""

    def __init__(self, size, seed=None):
        self.size = size if isinstance(size, int) else tuple(size)
        _size_pair(size, "RandomCrop")
        self.seed = seed
        self._rng = np.random.default_rng(seed)

    def __call__(self, image):
        img = _pil(image)
        ch, cw = _size_pair(self.size, "RandomCrop")
        w, h = img.size
        if w < cw or h < ch:
            raise ValueError(f"RandomCrop: the image ({h}x{w}) is smaller than the crop ({ch}x{cw}); Resize first")
        left = int(self._rng.integers(0, w - cw + 1))
        top = int(self._rng.integers(0, h - ch + 1))
        return img.crop((left, top, left + cw, top + ch))


class RandomResizedCrop(Transform):
    """A random area fraction ``scale`` and aspect ratio ``ratio`` of the image, resized to ``size``
    (the Inception training crop); after 10 failed draws, the centre crop of the largest fitting box."""

    def __init__(self, size, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3), interpolation="bilinear", seed=None):
        self.size = size if isinstance(size, int) else tuple(size)
        _size_pair(size, "RandomResizedCrop")
        if not 0 < scale[0] <= scale[1] <= 1:
            raise ValueError(f"RandomResizedCrop: scale must satisfy 0 < min <= max <= 1, got {scale}")
        if not 0 < ratio[0] <= ratio[1]:
            raise ValueError(f"RandomResizedCrop: ratio must satisfy 0 < min <= max, got {ratio}")
        self.scale, self.ratio, self.interpolation, self.seed = tuple(scale), tuple(ratio), interpolation, seed
        self._rng = np.random.default_rng(seed)

    def box(self, width, height):
        """(left, top, w, h) of the crop for an image of ``width`` x ``height``."""
        area = width * height
        log_ratio = np.log(self.ratio)
        for _ in range(10):
            target = area * self._rng.uniform(*self.scale)
            aspect = float(np.exp(self._rng.uniform(*log_ratio)))
            w = int(round(np.sqrt(target * aspect)))
            h = int(round(np.sqrt(target / aspect)))
            if 0 < w <= width and 0 < h <= height:
                return int(self._rng.integers(0, width - w + 1)), int(self._rng.integers(0, height - h + 1)), w, h
        in_ratio = width / height
        if in_ratio < self.ratio[0]:
            w, h = width, int(round(width / self.ratio[0]))
        elif in_ratio > self.ratio[1]:
            h, w = height, int(round(height * self.ratio[1]))
        else:
            w, h = width, height
        return (width - w) // 2, (height - h) // 2, w, h

    def __call__(self, image):
        img = _pil(image)
        left, top, w, h = self.box(*img.size)
        return Resize(_size_pair(self.size, "RandomResizedCrop"), self.interpolation)(
            img.crop((left, top, left + w, top + h)))


class HFlip(Transform):
    """The image mirrored left to right."""

    def __call__(self, image):
        from PIL import Image

        return _pil(image).transpose(Image.Transpose.FLIP_LEFT_RIGHT)


class RandomHFlip(Transform):
    """Mirrored with probability ``p``."""

    def __init__(self, p=0.5, seed=None):
        if not 0 <= p <= 1:
            raise ValueError(f"RandomHFlip: p must be in [0, 1], got {p}")
        self.p, self.seed = float(p), seed
        self._rng = np.random.default_rng(seed)

    def __call__(self, image):
        return HFlip()(image) if self._rng.random() < self.p else _pil(image)


class ColorJitter(Transform):
    """Brightness, contrast and saturation each scaled by a random factor in [1 - x, 1 + x] (Pillow's
    ImageEnhance), in a random order."""

    def __init__(self, brightness=0.0, contrast=0.0, saturation=0.0, seed=None):
        for name, value in (("brightness", brightness), ("contrast", contrast), ("saturation", saturation)):
            if value < 0:
                raise ValueError(f"ColorJitter: {name} must be >= 0, got {value}")
        self.brightness, self.contrast, self.saturation, self.seed = brightness, contrast, saturation, seed
        self._rng = np.random.default_rng(seed)

    def __call__(self, image):
        from PIL import ImageEnhance

        img = _pil(image).convert("RGB")
        steps = [(ImageEnhance.Brightness, self.brightness), (ImageEnhance.Contrast, self.contrast),
                 (ImageEnhance.Color, self.saturation)]
        for k in self._rng.permutation(len(steps)):
            enhancer, amount = steps[k]
            if amount:
                img = enhancer(img).enhance(float(self._rng.uniform(max(0.0, 1 - amount), 1 + amount)))
        return img


class ToTensor(Transform):
    """A Pillow image -> a float32 array: RGB (or BGR) channels, ``layout`` "HWC" (ember's default,
    channels last) or "CHW", values times ``scale`` (1/255: [0, 1])."""

    def __init__(self, layout="HWC", channel_order="RGB", scale=1 / 255):
        if layout not in ("HWC", "CHW"):
            raise ValueError(f"ToTensor: layout must be 'HWC' or 'CHW', got {layout!r}")
        if channel_order not in ("RGB", "BGR"):
            raise ValueError(f"ToTensor: channel_order must be 'RGB' or 'BGR', got {channel_order!r}")
        self.layout, self.channel_order, self.scale = layout, channel_order, scale

    def __call__(self, image):
        x = np.asarray(_pil(image).convert("RGB"), dtype=np.float32) * np.float32(self.scale)
        if self.channel_order == "BGR":
            x = x[:, :, ::-1]
        if self.layout == "CHW":
            x = x.transpose(2, 0, 1)
        return np.ascontiguousarray(x)


class ChannelNormalize(Transform):
    """``(x - mean) / std`` per channel of a float array (channels last, or first with ``layout="CHW"``)."""

    def __init__(self, mean, std, layout="HWC"):
        self.mean, self.std, self.layout = tuple(float(m) for m in mean), tuple(float(s) for s in std), layout
        if len(self.mean) != len(self.std) or any(s <= 0 for s in self.std):
            raise ValueError(f"ChannelNormalize: mean and std need one value per channel and std > 0, got "
                             f"{self.mean} and {self.std}")

    def __call__(self, x):
        x = np.asarray(x, dtype=np.float32)
        shape = (-1, 1, 1) if self.layout == "CHW" else (1, 1, -1)
        channels = x.shape[0] if self.layout == "CHW" else x.shape[-1]
        if channels != len(self.mean):
            raise ValueError(f"ChannelNormalize: the array has {channels} channels, mean/std have {len(self.mean)}")
        mean = np.asarray(self.mean, np.float32).reshape(shape)
        std = np.asarray(self.std, np.float32).reshape(shape)
        return ((x - mean) / std).astype(np.float32)
