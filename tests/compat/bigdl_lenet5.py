# Port of BigDL pyspark/bigdl/models/lenet/lenet5.py (The BigDL Authors, Apache-2.0), actions "train" and "test":
# https://github.com/intel-analytics/BigDL/blob/branch-0.2/pyspark/bigdl/models/lenet/lenet5.py
# Same calls in the same order; only the imports and the data loading are changed (MNIST from
# ember.datasets, normalised with NumPy, a small subset; fewer epochs).
import sys
import tempfile
from optparse import OptionParser

from pyspark import SparkContext

from ember.datasets import mnist  # was: from bigdl.dataset import mnist
from ember.nn.criterion import *  # noqa: F403  was: from bigdl.nn.criterion import *
from ember.nn.layer import *  # noqa: F403  was: from bigdl.nn.layer import *
from ember.optim import *  # noqa: F403  was: from bigdl.optim.optimizer import *
from ember.util.common import *  # noqa: F403  was: from bigdl.util.common import *


def build_model(class_num):
    model = Sequential()  # noqa: F405
    model.add(Reshape([1, 28, 28]))  # noqa: F405
    model.add(SpatialConvolution(1, 6, 5, 5))  # noqa: F405
    model.add(Tanh())  # noqa: F405
    model.add(SpatialMaxPooling(2, 2, 2, 2))  # noqa: F405
    model.add(Tanh())  # noqa: F405
    model.add(SpatialConvolution(6, 12, 5, 5))  # noqa: F405
    model.add(SpatialMaxPooling(2, 2, 2, 2))  # noqa: F405
    model.add(Reshape([12 * 4 * 4]))  # noqa: F405
    model.add(Linear(12 * 4 * 4, 100))  # noqa: F405
    model.add(Tanh())  # noqa: F405
    model.add(Linear(100, class_num))  # noqa: F405
    model.add(LogSoftMax())  # noqa: F405
    return model


def get_minst(sc, data_type="train", location="/tmp/mnist"):
    # was: (images, labels) = mnist.read_data_sets(location, data_type)
    (x_train, y_train), (x_test, y_test) = mnist.load_data()
    images, labels = (x_train[:512], y_train[:512]) if data_type == "train" else (x_test[:256], y_test[:256])
    images = ((images.astype("float32") / 255 - 0.1307) / 0.3081)[..., None]  # was: .map(normalizer(...)) below
    images = sc.parallelize(images)
    labels = sc.parallelize(labels)
    # Target start from 1 in BigDL
    record = images.zip(labels).map(lambda features_label:
                                    Sample.from_ndarray(features_label[0], features_label[1] + 1))  # noqa: F405
    return record


if __name__ == "__main__":
    parser = OptionParser()
    parser.add_option("-a", "--action", dest="action", default="train")
    parser.add_option("-b", "--batchSize", type=int, dest="batchSize", default="128")
    parser.add_option("-m", "--modelPath", dest="modelPath", default="")
    parser.add_option("-o", "--checkpointPath", dest="checkpointPath", default=tempfile.mkdtemp())  # was: (later BigDL)
    (options, args) = parser.parse_args(sys.argv)

    sc = SparkContext(appName="lenet5", conf=create_spark_conf().setMaster("local[2]"))  # noqa: F405  was: conf=create_spark_conf())
    init_engine()  # noqa: F405

    if options.action == "train":
        train_data = get_minst(sc, "train")  # was: .map(normalizer(mnist.TRAIN_MEAN, mnist.TRAIN_STD))
        test_data = get_minst(sc, "test")  # was: .map(normalizer(mnist.TEST_MEAN, mnist.TEST_STD))
        optimizer = Optimizer(  # noqa: F405
            model=build_model(10),
            training_rdd=train_data,
            criterion=ClassNLLCriterion(),  # noqa: F405
            optim_method=SGD(learningrate=0.01, learningrate_decay=0.0002),  # noqa: F405
            end_trigger=MaxEpoch(2),  # noqa: F405  was: MaxEpoch(20)
            batch_size=options.batchSize)
        optimizer.set_validation(
            batch_size=options.batchSize,
            val_rdd=test_data,
            trigger=EveryEpoch(),  # noqa: F405
            val_method=["Top1Accuracy"]
        )
        optimizer.set_checkpoint(EveryEpoch(), options.checkpointPath)  # noqa: F405  was: "/tmp/lenet5/"
        trained_model = optimizer.optimize()
        parameters = trained_model.get_weights()  # was: trained_model.parameters()
        print("trained", len(parameters), "weight arrays")
    elif options.action == "test":
        # Load a pre-trained model and then validate it through top1 accuracy.
        test_data = get_minst(sc, "test")  # was: .map(normalizer(mnist.TEST_MEAN, mnist.TEST_STD))
        model = Model.load(options.modelPath)  # noqa: F405
        results = model.evaluate(test_data, options.batchSize, [Top1Accuracy()])  # noqa: F405
        for result in results:
            print(result)
    sc.stop()
