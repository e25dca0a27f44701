"""Train LeNet-5 on real MNIST with ember's distributed optimizer on Spark, and report test accuracy.

Run locally (embedded Spark, local[2]):   python examples/train_lenet_spark.py
With spark-submit:                         ember-submit --master local[2] examples/train_lenet_spark.py
Or on a cluster:                           ember-submit --master spark://host:7077 examples/train_lenet_spark.py
    (ember-submit is spark-submit with ember's block-service jar and plugin added; `python -m ember.jvm`
    prints those arguments for a spark-submit of your own. ember must be installed on every node, or
    shipped with --archives; see the README's "Running on a cluster".)

Options: --epochs 1 --batch-size 128 --lr 0.01 --partitions 2 --master local[2]
A short run (CI): EMBER_EXAMPLE_ITERATIONS=20 stops after 20 iterations instead of the epochs.
"""
import argparse
import os
import time

from lenet import lenet5, normalize

import ember
from ember import optim
from ember.optim.spark.data import rdd_from_arrays
from ember.zoo.datasets import mnist


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--partitions", type=int, default=2)
    parser.add_argument("--master", default=None, help="default: spark-submit's --master, else local[2]")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    sc = ember.init_nncontext(app_name="ember-lenet5-mnist", master=args.master, default_master="local[2]")
    ember.set_seed(args.seed)
    (x_train, y_train), (x_test, y_test) = mnist.load_data()
    x_train, x_test = normalize(x_train), normalize(x_test)
    # the arrays travel to the executors as broadcasts, one slice per partition (not inside the tasks)
    train = rdd_from_arrays(sc, x_train, y_train, args.partitions)
    test = rdd_from_arrays(sc, x_test, y_test, args.partitions)
    print(f"MNIST: {len(x_train)} training and {len(x_test)} test images in {args.partitions} partitions on "
          f"{sc.master}", flush=True)

    model = lenet5()
    iterations = int(os.environ.get("EMBER_EXAMPLE_ITERATIONS", "0"))
    end = optim.MaxIteration(iterations) if iterations else optim.MaxEpoch(args.epochs)
    opt = optim.Optimizer(model, train, "sparse_categorical_crossentropy", optim.SGD(args.lr, momentum=0.9),
                          end, args.batch_size)
    opt.set_validation(1000, test, optim.EveryEpoch(), [optim.Top1Accuracy(), optim.Loss()])
    opt.set_progress(log_every=50)
    start = time.perf_counter()
    opt.optimize()
    elapsed = time.perf_counter() - start
    model.eval()
    accuracy = float((model.predict(x_test, batch_size=1000).argmax(1) == y_test).mean())
    records = iterations * args.batch_size if iterations else args.epochs * len(x_train)
    print(f"trained {f'{iterations} iterations' if iterations else f'{args.epochs} epoch(s)'} on Spark in "
          f"{elapsed:.1f} s ({records / elapsed:.0f} records/s); test accuracy {accuracy:.4f}")
    sc.stop()


if __name__ == "__main__":
    main()
