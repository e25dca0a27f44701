"""LeNet-5 and MNIST preparation shared by the example scripts."""
import numpy as np

import ember
from ember import layers as L


def lenet5():
    """LeNet-5 on 28x28x1 (the first convolution pads to keep 28x28): 61,706 parameters."""
    return ember.Sequential([
        L.Conv2D(6, 5, padding="same", activation="relu", input_shape=(28, 28, 1)), L.MaxPooling2D(2),
        L.Conv2D(16, 5, activation="relu"), L.MaxPooling2D(2), L.Flatten(),
        L.Dense(120, activation="relu"), L.Dense(84, activation="relu"), L.Dense(10, activation="softmax"),
    ])


def normalize(images):
    """uint8 images (n, 28, 28) -> float32 (n, 28, 28, 1) with MNIST's mean and deviation removed."""
    return ((images[..., None] / 255.0 - 0.1307) / 0.3081).astype(np.float32)
