"""LeNet-5 (LeCun et al. 1998) for 28x28 grey images, as in examples/lenet.py."""
from ember.layers import Conv2D, Dense, Flatten, Input, MaxPooling2D
from ember.zoo.models.common import classifier_head, finish


def LeNet5(num_classes=10, include_top=True, input_shape=(28, 28, 1), weights=None,  # noqa: N802
           classifier_activation="softmax"):
    """LeNet-5: two 5x5 convolutions (the first pads to keep 28x28), then Dense 120-84-classes;
    61,706 parameters for 10 classes. ``weights``: None or a file path (no pretrained entry).

    Example:
        >>> from ember.zoo.models import LeNet5
        >>> LeNet5().count_params()
        61706
    """
    if weights == "imagenet":
        raise ValueError("LeNet5 has no ImageNet weights: give weights=None or a file path")
    inp = Input(shape=tuple(input_shape))
    x = MaxPooling2D(2, name="pool1")(Conv2D(6, 5, padding="same", activation="relu", name="conv1")(inp))
    x = MaxPooling2D(2, name="pool2")(Conv2D(16, 5, activation="relu", name="conv2")(x))
    if include_top:
        x = Dense(84, activation="relu", name="fc2")(Dense(120, activation="relu", name="fc1")(Flatten()(x)))
        x = Dense(num_classes, activation=classifier_activation, name="fc3")(x)
    else:
        x = classifier_head(x, False, num_classes, None, None, None)
    return finish(inp, x, "lenet5", weights, "lenet5", include_top, num_classes)
