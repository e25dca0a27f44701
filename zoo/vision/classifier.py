"""``ImageClassifier``: a pretrained zoo model that labels images, for users without Spark."""
import numpy as np

from ember.engine import no_grad
from ember.zoo.vision.image import decode

# model name -> (builder in ember.zoo.models, its registry key)
MODELS = {"mobilenet_v2": "MobileNetV2", "resnet18": "ResNet18", "resnet34": "ResNet34", "resnet50": "ResNet50",
          "resnet101": "ResNet101", "resnet152": "ResNet152", "vgg16": "VGG16", "vgg19": "VGG19",
          "inception_v1": "InceptionV1", "inception_v3": "InceptionV3"}


def _softmax(logits):
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def build_pretrained(model_name, weights="imagenet"):
    """The zoo model ``model_name`` (a key of ``MODELS``) with ``weights``, in inference mode."""
    from ember.zoo import models

    if model_name not in MODELS:
        raise ValueError(f"unknown model {model_name!r}; expected one of {sorted(MODELS)}")
    return getattr(models, MODELS[model_name])(weights=weights).eval()


class ImageClassifier:
    """Labels images with a pretrained model: each image decoded (paths or bytes) or taken as an RGB
    array, preprocessed as the model's weights expect, scored in batches.

    Args:
        model_name: "mobilenet_v2", "resnet50", "inception_v3", ... (see ``MODELS``).
        weights: "imagenet" (downloaded once, verified) or a model already built (with ``preprocessing``
            and ``class_names`` attributes, as the zoo's builders give them).
        batch_size: images per forward pass.

    Example (the +SKIP lines download the weights; the rest uses a random ResNet-18):
        >>> import numpy as np, ember
        >>> from ember.zoo import weights
        >>> from ember.zoo.models import ResNet18
        >>> from ember.zoo.vision import ImageClassifier
        >>> ember.set_seed(0)
        >>> model = ResNet18()
        >>> model.preprocessing = weights.get("resnet18/torchvision").preprocessing
        >>> model.class_names = weights.imagenet_class_names()
        >>> clf = ImageClassifier("resnet18", weights=model)
        >>> top = clf.predict([np.zeros((64, 80, 3), np.uint8)], top_k=3)
        >>> len(top[0]), [type(v).__name__ for v in top[0][0]]
        (3, ['int', 'str', 'float'])
        >>> clf = ImageClassifier("mobilenet_v2")  # doctest: +SKIP
        >>> clf.predict(["cat.jpg"], top_k=1)  # doctest: +SKIP
        [[(285, 'Egyptian Mau', 0.71...)]]
    """

    def __init__(self, model_name="mobilenet_v2", weights="imagenet", batch_size=16):
        self.model = weights if hasattr(weights, "preprocessing") else build_pretrained(model_name, weights)
        self.model_name = model_name
        self.batch_size = int(batch_size)

    def scores(self, images):
        """Class probabilities, one row per image."""
        prep = self.model.preprocessing
        rows = []
        images = list(images)
        for start in range(0, len(images), self.batch_size):
            chunk = [decode(im) if isinstance(im, (str, bytes, bytearray)) or hasattr(im, "__fspath__") else im
                     for im in images[start:start + self.batch_size]]
            with no_grad():
                logits = self.model(np.stack([prep(im) for im in chunk]), training=False).numpy()
            rows.append(logits if _is_probability(logits) else _softmax(logits.astype(np.float64)))
        return np.concatenate(rows) if rows else np.zeros((0, len(self.model.class_names)))

    def predict(self, images, top_k=5):
        """The ``top_k`` (class index, class name, probability) of each image."""
        names = self.model.class_names
        out = []
        for row in self.scores(images):
            top = np.argsort(row)[::-1][:top_k]
            out.append([(int(i), names[i], float(row[i])) for i in top])
        return out


def _is_probability(scores):
    return bool(np.all(scores >= 0) and np.allclose(scores.sum(axis=1), 1.0, atol=1e-3))
