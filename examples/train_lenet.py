"""Train LeNet-5 on scikit-learn's handwritten digits with ember, locally, and report test accuracy.

Run:  python examples/train_lenet.py [--epochs 10] [--batch-size 32] [--lr 0.02]

This is the README's main job for now; it grows into distributed training on Spark later.
"""
import argparse
import time

import numpy as np

import ember
from ember import layers as L


def load_digits_32x32():
    try:
        from sklearn.datasets import load_digits
    except ImportError as e:
        raise SystemExit("this example needs scikit-learn for its data: pip install 'ember-dl[examples]'") from e
    digits = load_digits()
    x = np.kron(digits.images / 16.0, np.ones((4, 4)))[..., None].astype(np.float32)
    return x, digits.target


def lenet5(input_shape):
    return ember.Sequential([
        L.Conv2D(6, 5, activation="relu", input_shape=input_shape), L.MaxPooling2D(2),
        L.Conv2D(16, 5, activation="relu"), L.MaxPooling2D(2), L.Flatten(),
        L.Dense(120, activation="relu"), L.Dense(84, activation="relu"), L.Dense(10),
    ], name="lenet5")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=0.02)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    x, y = load_digits_32x32()
    order = np.random.default_rng(args.seed).permutation(len(x))
    x, y = x[order], y[order]
    split = int(0.8 * len(x))
    x_train, y_train, x_test, y_test = x[:split], y[:split], x[split:], y[split:]

    ember.set_seed(args.seed)
    model = lenet5(x.shape[1:])
    model.summary()
    loss_fn = ember.losses.SparseCategoricalCrossentropy(from_logits=True)
    params, grads = model.parameters_flat(), model.gradients_flat()
    velocity = np.zeros_like(params)
    rng = np.random.default_rng(args.seed + 1)
    for epoch in range(1, args.epochs + 1):
        model.train()
        start, seen, total = time.perf_counter(), 0, 0.0
        perm = rng.permutation(len(x_train))
        for i in range(0, len(perm), args.batch_size):
            idx = perm[i:i + args.batch_size]
            model.zero_grad()
            loss = loss_fn(y_train[idx], model(x_train[idx]))
            loss.backward()
            velocity[...] = 0.9 * velocity - args.lr * grads  # SGD with momentum on the flat buffer
            params += velocity
            seen += len(idx)
            total += loss.item() * len(idx)
        elapsed = time.perf_counter() - start
        print(f"epoch {epoch}/{args.epochs}  loss {total / seen:.4f}  "
              f"throughput {seen / elapsed:,.0f} records/second", flush=True)
    model.eval()
    with ember.no_grad():
        accuracy = (model(x_test).numpy().argmax(axis=1) == y_test).mean()
    print(f"test accuracy {accuracy:.4f} on {len(x_test)} held-out digits")


if __name__ == "__main__":
    main()
