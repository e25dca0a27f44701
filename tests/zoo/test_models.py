"""The model zoo: published parameter counts, a forward pass, variants, docstring examples."""
import doctest

import numpy as np
import pytest

import ember
from ember.zoo import models
from ember.zoo.models import common, inception, lenet, mobilenet, resnet, text, vgg


def trainable(model):
    return sum(w.size for w in model.trainable_weights)


# (builder, kwargs, trainable parameters, all parameters): torchvision's and keras.applications' numbers
PUBLISHED = [
    (models.LeNet5, {}, 61_706, 61_706),
    (models.ResNet18, {}, 11_689_512, None),
    (models.ResNet34, {}, 21_797_672, None),
    (models.ResNet50, {}, 25_557_032, None),
    (models.ResNet50, {"variant": "keras"}, 25_583_592, 25_636_712),
    (models.ResNet101, {}, 44_549_160, None),
    (models.ResNet101, {"variant": "keras"}, 44_601_832, 44_707_176),
    (models.ResNet152, {}, 60_192_808, None),
    (models.ResNet152, {"variant": "keras"}, 60_268_520, 60_419_944),
    (models.VGG16, {}, 138_357_544, 138_357_544),
    (models.VGG16, {"variant": "keras"}, 138_357_544, 138_357_544),
    (models.VGG19, {}, 143_667_240, 143_667_240),
    (models.InceptionV1, {}, 6_624_904, None),
    (models.InceptionV3, {}, 23_834_568, None),
    (models.InceptionV3, {"variant": "keras"}, 23_817_352, 23_851_784),
    (models.MobileNetV2, {}, 3_504_872, None),
    (models.MobileNetV2, {"variant": "keras"}, 3_504_872, 3_538_984),
]


@pytest.mark.parametrize("builder,kwargs,n_trainable,n_all", PUBLISHED,
                         ids=[f"{b.__name__}-{k.get('variant', 'default')}" for b, k, _, _ in PUBLISHED])
def test_parameter_counts_are_the_published_ones(builder, kwargs, n_trainable, n_all):
    model = builder(**kwargs)
    assert trainable(model) == n_trainable
    if n_all is not None:
        assert model.count_params() == n_all
    assert model.outputs[0].shape == (None, 1000 if builder is not models.LeNet5 else 10)


# small inputs keep this quick; every model also runs at its real size in the importer tests or bench/
FORWARD = [
    (models.LeNet5, {}, (28, 28, 1), 10),
    (models.ResNet18, {"num_classes": 7}, (64, 64, 3), 7),
    (models.ResNet50, {"variant": "keras", "num_classes": 7}, (64, 64, 3), 7),
    (models.VGG16, {"include_top": False, "pooling": "avg"}, (32, 32, 3), 512),
    (models.VGG19, {"variant": "keras", "include_top": False, "pooling": "max"}, (32, 32, 3), 512),
    (models.InceptionV1, {"num_classes": 5}, (96, 96, 3), 5),
    (models.InceptionV3, {"variant": "keras", "num_classes": 5}, (139, 139, 3), 5),
    (models.MobileNetV2, {"num_classes": 3}, (64, 64, 3), 3),
    (models.MobileNetV2, {"variant": "keras", "num_classes": 3}, (64, 64, 3), 3),
]


@pytest.mark.parametrize("builder,kwargs,shape,out", FORWARD,
                         ids=[f"{b.__name__}-{k.get('variant', 'default')}" for b, k, _, _ in FORWARD])
def test_forward_pass_on_one_image(builder, kwargs, shape, out, rng):
    model = builder(input_shape=shape, **kwargs).eval()
    with ember.no_grad():
        y = model(rng.normal(size=(1,) + shape).astype(np.float32)).numpy()
    assert y.shape == (1, out) and np.all(np.isfinite(y))
    if kwargs.get("variant") == "keras" and kwargs.get("include_top", True):
        assert y.sum() == pytest.approx(1.0, abs=1e-5)  # Keras's heads end in softmax


@pytest.mark.parametrize("encoder,n_params", [("cnn", 147_797), ("lstm", 397_909), ("gru", 320_085)])
def test_text_classifier(encoder, n_params, rng):
    model = models.TextClassifier(5, vocab_size=1000, embedding_dim=50, sequence_length=40, encoder=encoder)
    assert model.count_params() == n_params
    y = model.eval()(rng.integers(0, 1000, size=(3, 40))).numpy()
    assert y.shape == (3, 5) and np.allclose(y.sum(1), 1, atol=1e-5)


def test_text_classifier_freezes_given_embeddings(rng):
    table = rng.normal(size=(100, 8)).astype(np.float32)
    model = models.TextClassifier(2, vocab_size=100, embedding_dim=8, sequence_length=10, embedding_weights=table)
    embedding = {layer.name: layer for layer in model.layers}["embedding"]
    np.testing.assert_array_equal(embedding.get_weights()[0], table)
    assert trainable(model) == model.count_params() - table.size


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="variant must be one of"):
        models.ResNet50(variant="caffe")
    with pytest.raises(ValueError, match="Keras publishes no ResNet-18"):
        models.ResNet18(variant="keras")
    with pytest.raises(ValueError, match="depth must be one of"):
        models.ResNet(42)
    with pytest.raises(ValueError, match="pooling must be"):
        models.ResNet18(include_top=False, pooling="median", input_shape=(32, 32, 3))
    with pytest.raises(ValueError, match="encoder must be one of"):
        models.TextClassifier(2, 10, encoder="transformer")
    with pytest.raises(ValueError, match="weights must be None, 'imagenet' or a file path"):
        models.LeNet5(weights=3)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        models.LeNet5(weights="/nonexistent/lenet.pth")


def test_layer_names_follow_each_family():
    tv = {layer.name for layer in models.ResNet50().layers}
    assert {"conv1", "bn1", "layer1.0.conv2", "layer1.0.downsample.0", "layer4.2.bn3", "fc"} <= tv
    keras = {layer.name for layer in models.ResNet50(variant="keras").layers}
    assert {"conv1_conv", "conv2_block1_0_conv", "conv5_block3_3_bn", "predictions"} <= keras
    mb = {layer.name for layer in models.MobileNetV2().layers}
    assert {"features.0.0", "features.1.conv.0.0", "features.1.conv.1", "features.2.conv.3", "features.18.1",
            "classifier.1"} <= mb
    mbk = {layer.name for layer in models.MobileNetV2(variant="keras").layers}
    assert {"Conv1", "expanded_conv_depthwise", "block_16_project_BN", "Conv_1_bn", "predictions"} <= mbk


def test_weights_from_an_ember_file(tmp_path, rng):
    trained = models.LeNet5()
    trained.set_weights([rng.normal(size=w.shape).astype(np.float32) for w in trained.get_weights()])
    trained.save(str(tmp_path / "lenet.ember"))
    loaded = models.LeNet5(weights=str(tmp_path / "lenet.ember"))
    x = rng.normal(size=(2, 28, 28, 1)).astype(np.float32)
    np.testing.assert_array_equal(loaded.eval()(x).numpy(), trained.eval()(x).numpy())
    with pytest.raises(ValueError, match="model layers missing from the file"):
        models.ResNet18(weights=str(tmp_path / "lenet.ember"), input_shape=(32, 32, 3))


def test_make_divisible():
    assert [mobilenet.make_divisible(v) for v in (32, 16 * 0.35, 24 * 0.5, 1280 * 1.4)] == [32, 8, 16, 1792]


@pytest.mark.parametrize("module", [models, common, inception, lenet, mobilenet, resnet, text, vgg])
def test_docstring_examples(module):
    failures, _ = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert failures == 0
