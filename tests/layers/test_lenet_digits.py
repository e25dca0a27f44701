"""LeNet-5 trained by a plain SGD loop on scikit-learn's digits reaches > 95% test accuracy."""
import numpy as np
import pytest

import ember
from ember import layers as L

datasets = pytest.importorskip("sklearn.datasets")


def test_lenet5_learns_digits():
    digits = datasets.load_digits()
    x = np.kron(digits.images / 16.0, np.ones((4, 4)))[..., None].astype(np.float32)  # 8x8 -> 32x32
    y = digits.target
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], y[order]
    x_train, y_train, x_test, y_test = x[:1400], y[:1400], x[1400:], y[1400:]

    ember.set_seed(0)
    model = ember.Sequential([
        L.Conv2D(6, 5, activation="relu", input_shape=(32, 32, 1)), L.MaxPooling2D(2),
        L.Conv2D(16, 5, activation="relu"), L.MaxPooling2D(2), L.Flatten(),
        L.Dense(120, activation="relu"), L.Dense(84, activation="relu"), L.Dense(10),
    ])
    loss_fn = ember.losses.SparseCategoricalCrossentropy(from_logits=True)
    params, grads = model.parameters_flat(), model.gradients_flat()
    velocity = np.zeros_like(params)
    rng = np.random.default_rng(1)
    first_loss = None
    for _ in range(15):
        perm = rng.permutation(len(x_train))
        for i in range(0, len(perm), 32):
            idx = perm[i:i + 32]
            model.zero_grad()
            loss = loss_fn(y_train[idx], model(x_train[idx]))
            loss.backward()
            first_loss = first_loss or loss.item()
            velocity[...] = 0.9 * velocity - 0.02 * grads
            params += velocity
    model.eval()
    with ember.no_grad():
        predicted = model(x_test).numpy().argmax(axis=1)
    accuracy = (predicted == y_test).mean()
    assert loss.item() < first_loss
    assert accuracy > 0.95, f"test accuracy {accuracy:.3f}"
