"""Images without Spark: decoding (Pillow), reading folders into arrays, transforms, and a pretrained
``ImageClassifier``; the Spark image reader uses the same decoding, so both give the same pixels."""
from ember.zoo.vision import transforms
from ember.zoo.vision.classifier import ImageClassifier
from ember.zoo.vision.image import (
    ImageDecodeError,
    decode,
    from_image_struct,
    list_images,
    read_images,
    to_image_struct,
)

__all__ = ["ImageClassifier", "ImageDecodeError", "decode", "from_image_struct", "list_images", "read_images",
           "to_image_struct", "transforms"]
