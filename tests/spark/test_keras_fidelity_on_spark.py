"""Keras fidelity on Spark: with Keras's Adam, losses added by ``add_loss`` (inside a layer's call, and
a symbolic tensor of the model) train two partitions to the same weights and losses as the local loop on
the same global batches, in float64; ``weighted_metrics`` report (unweighted: Spark takes no sample
weights) under Keras's names; an ``add_loss`` function, which executors cannot carry, is refused with a
clear error."""
import numpy as np
import pytest

import ember
from ember import layers, optim
from ember.engine import functional as F

pytestmark = pytest.mark.spark


def test_add_loss_trains_on_spark_as_locally(sc):
    from ember.optim.spark.plan import global_batch_order

    class MeanAbsLoss(layers.Layer):  # defined here: the executors get it from the job itself
        def call(self, x, training=False):
            self.add_loss(F.mean(F.abs(x)) * 0.05)
            return x

        def compute_output_shape(self, input_shape):
            return input_shape

    def square_mean(h):
        return F.mean(h * h) * 0.1

    def build():
        ember.set_seed(0)
        inp = layers.Input(shape=(5,))
        hidden = layers.Dense(8, activation="tanh")(inp)
        model = ember.Model(inp, layers.Dense(2, activation="softmax")(MeanAbsLoss()(hidden)))
        model.add_loss(layers.Lambda(square_mean)(hidden))
        return model

    ember.set_default_dtype("float64")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, 5))
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
    rdd = sc.parallelize([(x[i], y[i]) for i in range(len(x))], 2)
    losses = {"spark": [], "local": []}

    def recorder(key):
        return type("Recorder", (), {"on_iteration_end": lambda self, o, st: losses[key].append(st["loss"])})()

    model = build()
    # Keras's Adam (epsilon placed as Keras): its hyper-parameters travel to the executors
    opt = optim.Optimizer(model, rdd, "sparse_categorical_crossentropy", ember.optimizers.Adam(0.02),
                          optim.MaxIteration(8), 16)
    opt.add_listener(recorder("spark")).set_shuffle(False).set_progress(0, quiet=True).optimize()
    sizes = [len(p) for p in rdd.glom().collect()]
    offsets = np.cumsum([0] + sizes)
    index = [offsets[p] + j for it in range(8) for p, j in global_batch_order(sizes, 16, opt.engine.assignment, it)]
    reference = build()
    local = optim.Optimizer(reference, (x[index], y[index]), "sparse_categorical_crossentropy",
                            ember.optimizers.Adam(0.02), optim.MaxIteration(8), 16)
    local.add_listener(recorder("local")).set_shuffle(False).set_progress(0, quiet=True).optimize()
    for a, b in zip(model.get_weights(), reference.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(losses["spark"], losses["local"], rtol=1e-10)
    reference(x[index[-16:]], training=True)
    assert len(reference.losses) == 2 and reference.penalty().item() > 0.02  # both added losses counted

    # Keras's fit on the RDD: weighted_metrics report under Keras's names (no weights on Spark: equal)
    model.compile(ember.optimizers.SGD(0.1), "sparse_categorical_crossentropy", metrics=["accuracy"],
                  weighted_metrics=["accuracy"])
    history = model.fit(rdd, batch_size=16, epochs=1, verbose=0).history
    assert history["weighted_accuracy"] == history["accuracy"] and 0 < history["accuracy"][0] <= 1

    # an add_loss function stays in this process: refused before any job
    model.add_loss(lambda: F.sum(model.layers[1].kernel) * 0.0)
    with pytest.raises(ValueError, match="hold add_loss functions"):
        optim.Optimizer(model, rdd, "sparse_categorical_crossentropy", optim.SGD(0.1), optim.MaxIteration(1), 16)


def test_keras_optimizer_options_train_on_spark_as_locally(sc):
    """Keras's clipnorm (per variable, across parameter blocks), a schedule as learning_rate and use_ema (the
    driver's final weights are the owners' averages) on two partitions equal the local loop, in float64."""
    from ember.optim.spark.plan import global_batch_order

    def build():
        ember.set_seed(0)
        inp = layers.Input(shape=(5,))
        hidden = layers.Dense(8, activation="tanh")(inp)
        return ember.Model(inp, layers.Dense(2, activation="softmax")(hidden))

    def keras_adam():
        return ember.optimizers.Adam(ember.optimizers.schedules.CosineDecay(0.05, 6, warmup_target=0.1,
                                                                            warmup_steps=2),
                                     clipnorm=0.05, use_ema=True, ema_momentum=0.6, ema_overwrite_frequency=3)

    ember.set_default_dtype("float64")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, 5))
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
    rdd = sc.parallelize([(x[i], y[i]) for i in range(len(x))], 2)
    rates = {"spark": [], "local": []}

    def recorder(key):
        return type("Recorder", (), {"on_iteration_end": lambda self, o, st: rates[key].append(st["loss"])})()

    model = build()
    opt = optim.Optimizer(model, rdd, "sparse_categorical_crossentropy", keras_adam(), optim.MaxIteration(8), 16)
    opt.add_listener(recorder("spark")).set_shuffle(False).set_progress(0, quiet=True).optimize()
    sizes = [len(p) for p in rdd.glom().collect()]
    offsets = np.cumsum([0] + sizes)
    index = [offsets[p] + j for it in range(8) for p, j in global_batch_order(sizes, 16, opt.engine.assignment, it)]
    reference = build()
    local = optim.Optimizer(reference, (x[index], y[index]), "sparse_categorical_crossentropy", keras_adam(),
                            optim.MaxIteration(8), 16)
    local.add_listener(recorder("local")).set_shuffle(False).set_progress(0, quiet=True).optimize()
    for a, b in zip(model.get_weights(), reference.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(rates["spark"], rates["local"], rtol=1e-10)
    assert local.optim_method.iterations == 8
    np.testing.assert_array_equal(reference.parameters_flat(), local.optim_method.state["ema"])  # finalized


def test_gradient_accumulation_and_loss_scaling_train_on_spark_as_locally(sc):
    """Keras's gradient_accumulation_steps with loss_scale_factor and global_clipnorm on two partitions equal the
    local loop (float64); a fit that would start inside the accumulation the previous fit left, and a function as
    learning_rate, are refused before any job, naming the option."""
    from ember.optim.spark.plan import global_batch_order

    def build():
        ember.set_seed(0)
        inp = layers.Input(shape=(5,))
        return ember.Model(inp, layers.Dense(2, activation="softmax")(layers.Dense(8, activation="tanh")(inp)))

    def keras_adam():
        return ember.optimizers.Adam(0.05, gradient_accumulation_steps=3, loss_scale_factor=32.0, global_clipnorm=0.1)

    ember.set_default_dtype("float64")
    rng = np.random.default_rng(1)
    x = rng.normal(size=(96, 5))
    y = (x[:, 0] - x[:, 2] > 0).astype(np.int64)
    rdd = sc.parallelize([(x[i], y[i]) for i in range(len(x))], 2)
    model, method = build(), keras_adam()
    opt = optim.Optimizer(model, rdd, "sparse_categorical_crossentropy", method, optim.MaxIteration(9), 16)
    opt.set_shuffle(False).set_progress(0, quiet=True).optimize()
    sizes = [len(p) for p in rdd.glom().collect()]
    offsets = np.cumsum([0] + sizes)
    index = [offsets[p] + j for it in range(9) for p, j in global_batch_order(sizes, 16, opt.engine.assignment, it)]
    reference = build()
    local = optim.Optimizer(reference, (x[index], y[index]), "sparse_categorical_crossentropy", keras_adam(),
                            optim.MaxIteration(9), 16)
    local.set_shuffle(False).set_progress(0, quiet=True).optimize()
    for a, b in zip(model.get_weights(), reference.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    assert local.optim_method.iterations == 3 and not np.allclose(model.get_weights()[0], build().get_weights()[0])

    again = optim.Optimizer(model, rdd, "sparse_categorical_crossentropy", method, optim.MaxIteration(4), 16)
    again.set_progress(0, quiet=True).optimize()  # 9 was a multiple of 3; this one leaves 1 batch accumulated
    third = optim.Optimizer(model, rdd, "sparse_categorical_crossentropy", method, optim.MaxIteration(3), 16)
    with pytest.raises(ValueError, match="gradient_accumulation_steps=3: the previous fit on Spark ended 1 batch"):
        third.set_progress(0, quiet=True).optimize()
    function = optim.Optimizer(model, rdd, "sparse_categorical_crossentropy", ember.optimizers.SGD(lambda: 0.1),
                               optim.MaxIteration(1), 16)
    with pytest.raises(ValueError, match="learning_rate is a function of no arguments: on Spark"):
        function.set_progress(0, quiet=True).optimize()
