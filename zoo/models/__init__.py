"""Model builders: LeNet5, VGG16/19, ResNet18-152, InceptionV1/V3, MobileNetV2, TextClassifier.

Each takes ``num_classes``, ``include_top``, ``input_shape`` and ``weights`` (None, "imagenet" or a
file path); where torchvision and Keras publish different networks, ``variant`` picks one.

Example:
    >>> from ember.zoo.models import MobileNetV2
    >>> model = MobileNetV2(num_classes=10, input_shape=(32, 32, 3))
    >>> model.outputs[0].shape
    (None, 10)
"""
from ember.zoo.models.inception import InceptionV1, InceptionV3
from ember.zoo.models.lenet import LeNet5
from ember.zoo.models.mobilenet import MobileNetV2
from ember.zoo.models.resnet import ResNet, ResNet18, ResNet34, ResNet50, ResNet101, ResNet152
from ember.zoo.models.text import TextClassifier
from ember.zoo.models.vgg import VGG, VGG16, VGG19

__all__ = ["VGG", "VGG16", "VGG19", "InceptionV1", "InceptionV3", "LeNet5", "MobileNetV2", "ResNet", "ResNet18",
           "ResNet34", "ResNet50", "ResNet101", "ResNet152", "TextClassifier"]
