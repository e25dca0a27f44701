"""Keras 3's base-optimizer options on ``ember.optimizers`` (issue 18): ``clipnorm``, ``clipvalue``,
``global_clipnorm``, ``use_ema`` / ``ema_momentum`` / ``ema_overwrite_frequency`` and learning-rate schedule objects
(``ember.optimizers.schedules``) train a small model to Keras's weights (torch backend): same initial weights,
same data, the same batches. Each case also trains without the option and must then be far from Keras, so that
the check can fail. Saved models keep the options and the schedule (by its config)."""
import numpy as np
import pytest
from keras_reference import keras_or_skip as _keras  # tests/ is on sys.path (conftest)

import ember
from ember import layers, optim


def _data(dtype="float32"):
    rng = np.random.default_rng(5)
    return rng.normal(size=(96, 6)).astype(dtype), rng.integers(0, 3, size=96)


def _build(lib):
    inp = lib.Input(shape=(6,))
    h = lib.layers.Dense(8, activation="tanh")(inp)
    return lib.Model(inp, lib.layers.Dense(3, activation="softmax")(h))


def _pair(keras):
    keras.utils.set_random_seed(0)
    theirs = _build(keras)
    ours = _build(ember)
    ours.set_weights(theirs.get_weights())
    return ours, theirs


def _difference(ours, theirs):
    return max(float(np.abs(a - b).max()) for a, b in zip(ours.get_weights(), theirs.get_weights()))


def _run(keras, make, plain=None, fits=(3,), batch_size=16):
    """Largest weight difference from Keras after ``fits`` (epochs per fit call) with ``make(lib)``'s optimizer
    on both sides; with ``plain``, also ember trained with ``plain(ember)`` (the option left out) against Keras."""
    x, y = _data()
    out = []
    for ours_make in ([make] if plain is None else [make, plain]):
        ours, theirs = _pair(keras)
        theirs.compile(make(keras), "sparse_categorical_crossentropy")
        ours.compile(ours_make(ember), "sparse_categorical_crossentropy")
        for epochs in fits:
            theirs.fit(x, y, batch_size=batch_size, epochs=epochs, shuffle=False, verbose=0)
            ours.fit(x, y, batch_size=batch_size, epochs=epochs, shuffle=False, verbose=0)
        out.append(_difference(ours, theirs))
    return out


def _s(lib):
    return lib.optimizers.schedules


# name -> (the optimizer with the option, the same without it), each a function of the library (keras or ember)
CASES = {
    "clipnorm": (lambda k: k.optimizers.SGD(1.0, clipnorm=0.05), lambda k: k.optimizers.SGD(1.0)),
    "clipnorm-adam": (lambda k: k.optimizers.Adam(0.05, clipnorm=0.02), lambda k: k.optimizers.Adam(0.05)),
    "global_clipnorm": (lambda k: k.optimizers.SGD(1.0, momentum=0.5, global_clipnorm=0.1),
                        lambda k: k.optimizers.SGD(1.0, momentum=0.5)),
    "clipvalue": (lambda k: k.optimizers.SGD(2.0, clipvalue=0.01), lambda k: k.optimizers.SGD(2.0)),
    "use_ema": (lambda k: k.optimizers.Adam(0.05, use_ema=True, ema_momentum=0.9),
                lambda k: k.optimizers.Adam(0.05)),
    "ema_overwrite_frequency": (
        lambda k: k.optimizers.SGD(0.5, momentum=0.9, use_ema=True, ema_momentum=0.8, ema_overwrite_frequency=4),
        lambda k: k.optimizers.SGD(0.5, momentum=0.9, use_ema=True, ema_momentum=0.8)),
    "ExponentialDecay": (lambda k: k.optimizers.SGD(_s(k).ExponentialDecay(0.5, 5, 0.5)),
                         lambda k: k.optimizers.SGD(0.5)),
    "PiecewiseConstantDecay": (lambda k: k.optimizers.Adam(_s(k).PiecewiseConstantDecay([3, 10], [0.1, 0.01, 0.001])),
                               lambda k: k.optimizers.Adam(0.1)),
    "PolynomialDecay": (lambda k: k.optimizers.SGD(_s(k).PolynomialDecay(0.5, 10, power=2.0, cycle=True)),
                        lambda k: k.optimizers.SGD(0.5)),
    "InverseTimeDecay": (lambda k: k.optimizers.RMSprop(_s(k).InverseTimeDecay(0.01, 4, 0.5, staircase=True)),
                         lambda k: k.optimizers.RMSprop(0.01)),
    "CosineDecay-warmup": (
        lambda k: k.optimizers.SGD(_s(k).CosineDecay(0.0, 12, alpha=0.1, warmup_target=0.5, warmup_steps=5),
                                   momentum=0.8, nesterov=True),
        lambda k: k.optimizers.SGD(0.1, momentum=0.8, nesterov=True)),
    "CosineDecayRestarts": (
        lambda k: k.optimizers.Adam(_s(k).CosineDecayRestarts(0.05, 4, t_mul=2.0, m_mul=0.7, alpha=0.05)),
        lambda k: k.optimizers.Adam(0.05)),
    "schedule-weight_decay": (lambda k: k.optimizers.AdamW(_s(k).ExponentialDecay(0.05, 5, 0.5), weight_decay=0.1),
                              lambda k: k.optimizers.AdamW(0.05, weight_decay=0.1)),
    # gradient accumulation: 18 batches in 3 epochs of 6, so accumulations span epochs (and fit calls) unfinished
    "gradient_accumulation_steps": (lambda k: k.optimizers.SGD(0.5, momentum=0.5, gradient_accumulation_steps=4),
                                    lambda k: k.optimizers.SGD(0.5, momentum=0.5)),
    "gradient_accumulation-clipnorm-adam": (
        lambda k: k.optimizers.Adam(0.05, clipnorm=0.05, gradient_accumulation_steps=2),
        lambda k: k.optimizers.Adam(0.05, clipnorm=0.05)),
    "gradient_accumulation-schedule-ema": (  # the schedule sees every batch, the average the updates // N
        lambda k: k.optimizers.SGD(_s(k).ExponentialDecay(0.5, 4, 0.5), use_ema=True, ema_momentum=0.7,
                                   ema_overwrite_frequency=2, gradient_accumulation_steps=4),
        lambda k: k.optimizers.SGD(_s(k).ExponentialDecay(0.5, 4, 0.5), use_ema=True, ema_momentum=0.7,
                                   ema_overwrite_frequency=2)),
    "gradient_accumulation-weight_decay": (lambda k: k.optimizers.AdamW(0.05, weight_decay=0.1,
                                                                          gradient_accumulation_steps=3),
                                           lambda k: k.optimizers.AdamW(0.05, weight_decay=0.1)),
    # loss scaling divides the gradient before clipping: clipping the scaled gradient would be clipvalue 1e-5 here
    "loss_scale_factor-clipvalue": (lambda k: k.optimizers.RMSprop(0.01, loss_scale_factor=1000.0, clipvalue=0.01),
                                    lambda k: k.optimizers.RMSprop(0.01, clipvalue=0.01 / 1000.0)),
    "loss_scale_factor-accumulation-global_clipnorm": (
        lambda k: k.optimizers.Adagrad(0.1, loss_scale_factor=1e-3, gradient_accumulation_steps=2,
                                       global_clipnorm=0.1),
        lambda k: k.optimizers.Adagrad(0.1, loss_scale_factor=1e-3, global_clipnorm=0.1)),
}
# Measured (float32, 3 epochs of 6 batches, max |ours - Keras| over all weights): 6e-8 (ExponentialDecay,
# PolynomialDecay) .. 5.2e-6 (clipnorm with Adam); CosineDecay warming up from 0 with Nesterov SGD 3.0e-7,
# PiecewiseConstantDecay 4.4e-6, use_ema 2.9e-6, clipnorm with SGD 1.2e-7. The same after fit(epochs=1) then
# fit(epochs=2). Without the option: 0.041 (InverseTimeDecay) .. 0.72. gradient_accumulation_steps and
# loss_scale_factor (issue 18): 6e-8 .. 4.0e-6 (accumulation with clipnorm and Adam), the same over fit(1) + fit(2);
# without the option 0.016 (the accumulation under loss scaling) .. 0.40. A factor of 1e-45 (every float32
# gradient underflows) leaves the weights as Keras's (difference 0.0; the factor ignored: 0.25); 2^14 with Adam 4.5e-6.
TOL = 2e-5


@pytest.mark.parametrize("case", sorted(CASES))
def test_option_trains_like_keras(case):
    keras = _keras()
    make, plain = CASES[case]
    with_option, without = _run(keras, make, plain)
    assert with_option < TOL, (case, with_option)
    assert without > 20 * TOL, (case, without)  # the option matters in this run: the comparison can fail


@pytest.mark.parametrize("case", ["ExponentialDecay", "ema_overwrite_frequency", "clipnorm-adam",
                                  "gradient_accumulation-schedule-ema", "gradient_accumulation_steps"])
def test_the_step_count_carries_over_fit_calls(case):
    """Keras's ``iterations`` is the optimizer's: a second ``fit`` continues the schedule and the average."""
    keras = _keras()
    (after,) = _run(keras, CASES[case][0], fits=(1, 2))
    assert after < TOL, (case, after)


def test_a_schedule_subclass_of_ones_own():
    keras = _keras()

    def make(lib):
        class Halving(lib.optimizers.schedules.LearningRateSchedule):
            def __call__(self, step):
                return 0.4 / (1.0 + step // 4)

            def get_config(self):
                return {}

        return lib.optimizers.SGD(Halving(), momentum=0.5)

    with_schedule, without = _run(keras, make, lambda k: k.optimizers.SGD(0.4, momentum=0.5))
    assert with_schedule < TOL and without > 20 * TOL, (with_schedule, without)


@pytest.mark.parametrize("name, kwargs", [
    ("ExponentialDecay", dict(initial_learning_rate=0.3, decay_steps=7, decay_rate=0.6, staircase=True)),
    ("ExponentialDecay", dict(initial_learning_rate=0.3, decay_steps=7, decay_rate=0.6)),
    ("PiecewiseConstantDecay", dict(boundaries=[5, 9, 30], values=[1.0, 0.5, 0.2, 0.05])),
    ("PolynomialDecay", dict(initial_learning_rate=0.5, decay_steps=13, end_learning_rate=0.01, power=0.5)),
    ("PolynomialDecay", dict(initial_learning_rate=0.5, decay_steps=13, power=3.0, cycle=True)),
    ("InverseTimeDecay", dict(initial_learning_rate=0.2, decay_steps=3, decay_rate=0.7)),
    ("CosineDecay", dict(initial_learning_rate=0.2, decay_steps=20, alpha=0.2)),
    ("CosineDecay", dict(initial_learning_rate=0.0, decay_steps=20, warmup_target=0.4, warmup_steps=8)),
    ("CosineDecayRestarts", dict(initial_learning_rate=0.2, first_decay_steps=5, t_mul=1.0, m_mul=0.5)),
    ("CosineDecayRestarts", dict(initial_learning_rate=0.2, first_decay_steps=5, t_mul=1.5, alpha=0.1)),
])
def test_schedule_values_match_keras(name, kwargs):
    keras = _keras()
    ours, theirs = getattr(ember.optimizers.schedules, name)(**kwargs), getattr(keras.optimizers.schedules,
                                                                                name)(**kwargs)
    steps = range(0, 80)
    got = np.array([ours(s) for s in steps])
    want = np.array([float(keras.ops.convert_to_numpy(theirs(s))) for s in steps])
    np.testing.assert_allclose(got, want, rtol=2e-6, atol=1e-8)
    assert ours.get_config() == theirs.get_config()


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_momentum_follows_keras_formula_when_the_rate_changes_or_is_zero(nesterov):
    """Keras's m <- momentum m - lr g; param <- param + m (Nesterov: + momentum m - lr g) in float64 over rates
    that change, drop to 0 and come back (BigDL's v <- momentum v + g; param -= lr v would differ)."""
    rates = [0.1, 0.1, 0.0, 0.0, 0.05, 0.2, 0.2, 0.0, 0.3, 0.01] * 2
    boundaries = list(range(len(rates) - 1))
    schedule = ember.optimizers.schedules.PiecewiseConstantDecay(boundaries, rates)
    rng = np.random.default_rng(3)
    start = rng.normal(size=30)
    grads = [rng.normal(size=30) for _ in rates]
    want, m = start.copy(), np.zeros(30)
    for lr, g in zip(rates, grads):
        m = 0.9 * m - lr * g
        want += 0.9 * m - lr * g if nesterov else m
    opt, got = ember.optimizers.SGD(schedule, momentum=0.9, nesterov=nesterov), start.copy()
    assert opt.learning_rate == 0.1 and [schedule(k) for k in range(len(rates))] == rates
    for g in grads:
        opt.update(got, g.copy())
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-13)
    bigdl, other = optim.SGD(0.1, momentum=0.9, nesterov=nesterov), start.copy()
    for lr, g in zip(rates, grads):
        bigdl.update(other, g.copy(), lr)
    assert np.abs(other - want).max() > 1e-2


def test_ema_average_is_keras_formula():
    """The average by hand: m = 0 at the first update, then ema_momentum; overwritten every 2 updates."""
    opt = ember.optimizers.SGD(1.0, use_ema=True, ema_momentum=0.5, ema_overwrite_frequency=2)
    p = np.array([0.0])
    opt.update(p, np.array([-1.0]))  # p = 1, ema = 1
    opt.update(p, np.array([-1.0]))  # p = 2, ema = 1.5, overwritten: p = 1.5
    assert p.tolist() == [1.5] and opt.state["ema"].tolist() == [1.5] and opt.iterations == 2
    opt.update(p, np.array([-1.0]))  # p = 2.5, ema = 2.0, kept
    assert p.tolist() == [2.5] and opt.state["ema"].tolist() == [2.0]


def test_clipnorm_is_per_variable_and_global_clipnorm_over_all():
    from ember.optim.clipping import Clipping

    bounds = [(0, 2), (2, 3)]
    g = np.array([3.0, 4.0, 0.5])
    Clipping(variable_norm=1.0).apply(g, bounds)
    np.testing.assert_allclose(g, [0.6, 0.8, 0.5])
    g = np.array([3.0, 4.0, 0.0])
    Clipping(global_norm=1.0).apply(g, bounds)
    np.testing.assert_allclose(g, [0.6, 0.8, 0.0])


def test_bad_options_are_refused_as_keras_refuses_them():
    with pytest.raises(ValueError, match="only one of clipnorm, clipvalue and global_clipnorm"):
        ember.optimizers.Adam(clipnorm=1.0, global_clipnorm=1.0)
    with pytest.raises(ValueError, match="only one of"):
        ember.optimizers.SGD(clipvalue=0.5, clipnorm=1.0)
    with pytest.raises(ValueError, match="ema_momentum must be in"):
        ember.optimizers.RMSprop(use_ema=True, ema_momentum=1.5)
    with pytest.raises(ValueError, match="ema_overwrite_frequency must be an integer >= 1"):
        ember.optimizers.Adagrad(use_ema=True, ema_overwrite_frequency=0)
    with pytest.raises(ValueError, match="clipnorm must be a number > 0"):
        ember.optimizers.Adamax(clipnorm=-1.0)
    with pytest.raises(TypeError, match="LearningRateSchedule"):
        ember.optimizers.SGD(learning_rate="0.1")
    with pytest.raises(ValueError, match="gradient_accumulation_steps must be an integer >= 2"):
        ember.optimizers.Adam(gradient_accumulation_steps=1)  # (Keras: "must be an integer >= 2")
    with pytest.raises(ValueError, match="loss_scale_factor must be a finite number > 0"):
        ember.optimizers.SGD(loss_scale_factor=0.0)
    with pytest.raises(ValueError, match="decay_steps must be > 0"):
        ember.optimizers.schedules.ExponentialDecay(0.1, 0, 0.5)
    with pytest.raises(ValueError, match="one value more than boundaries"):
        ember.optimizers.schedules.PiecewiseConstantDecay([1, 2], [0.1, 0.2])
    with pytest.raises(NotImplementedError, match="must override get_config"):
        ember.optimizers.schedules.LearningRateSchedule().get_config()

    x, y = _data()
    model = ember.Sequential([layers.Dense(3, activation="softmax", input_shape=(6,))])
    model.compile(ember.optimizers.SGD(0.1, clipnorm=1.0), "sparse_categorical_crossentropy")
    model.set_gradient_clipping_by_l2_norm(2.0)  # BigDL's clipping as well: which one is meant?
    with pytest.raises(ValueError, match="gradient clipping is set twice"):
        model.fit(x, y, verbose=0)
    schedule = ember.optimizers.schedules.ExponentialDecay(0.1, 10, 0.5)
    loop = optim.Optimizer(model, (x, y), "sparse_categorical_crossentropy", ember.optimizers.SGD(schedule),
                           optim.MaxEpoch(1), 16).set_learning_rate_schedule(optim.Step(5, 0.5))
    with pytest.raises(ValueError, match="learning_rate is a schedule .* keep one"):
        loop.set_progress(0, quiet=True).optimize()


def test_the_learning_rate_reported_is_the_schedules():
    x, y = _data()
    model = ember.Sequential([layers.Dense(3, activation="softmax", input_shape=(6,))])
    schedule = ember.optimizers.schedules.PiecewiseConstantDecay([2], [0.1, 0.01])
    model.compile(ember.optimizers.SGD(schedule), "sparse_categorical_crossentropy")
    rates = []
    loop = optim.Optimizer(model, (x, y), "sparse_categorical_crossentropy", model.optimizer, optim.MaxIteration(5), 16)
    loop.add_listener(type("L", (), {"on_iteration_end": lambda self, o, st: rates.append(
        o.optim_method.learning_rate_at(step=st["iteration"] - 1))})())
    loop.set_progress(0, quiet=True).optimize()
    assert rates == [0.1, 0.1, 0.1, 0.01, 0.01] and model.optimizer.iterations == 5


def test_saved_model_keeps_options_and_schedule(tmp_path):
    x, y = _data()

    class Halving(ember.optimizers.schedules.LearningRateSchedule):
        def __init__(self, rate):
            self.rate = rate

        def __call__(self, step):
            return self.rate / 2 ** step

        def get_config(self):
            return {"rate": self.rate}

    for opt, custom in ((ember.optimizers.Adam(ember.optimizers.schedules.CosineDecay(0.1, 50, warmup_target=0.2,
                                                                                     warmup_steps=5),
                                               global_clipnorm=2.0, use_ema=True, ema_overwrite_frequency=3), None),
                        (ember.optimizers.SGD(Halving(0.3), clipvalue=0.5), {"Halving": Halving})):
        model = ember.Sequential([layers.Dense(3, activation="softmax", input_shape=(6,))])
        model.compile(opt, "sparse_categorical_crossentropy")
        path = str(tmp_path / "m.ember")
        model.save(path)
        again = ember.load_model(path, custom_objects=custom).optimizer
        assert type(again) is type(opt) and again.hyper == opt.hyper
        o, a = opt.options, again.options
        for k in ("clipnorm", "clipvalue", "global_clipnorm", "use_ema", "ema_momentum", "ema_overwrite_frequency"):
            assert getattr(a, k) == getattr(o, k), k
        assert type(a.schedule) is type(o.schedule) and a.schedule.get_config() == o.schedule.get_config()
        assert [again.learning_rate_at(step=s) for s in range(8)] == [opt.learning_rate_at(step=s) for s in range(8)]
        if custom is not None:  # without the class: a clear error naming custom_objects
            with pytest.raises(ValueError, match="custom_objects"):
                ember.load_model(path)


def test_callbacks_that_set_the_rate_refuse_a_schedule_as_keras_does():
    x, y = _data()
    for callback in (ember.callbacks.LearningRateScheduler(lambda epoch, lr: lr / 2),
                     ember.callbacks.ReduceLROnPlateau(monitor="loss", patience=0, min_delta=10.0)):
        model = ember.Sequential([layers.Dense(3, activation="softmax", input_shape=(6,))])
        model.compile(ember.optimizers.SGD(ember.optimizers.schedules.ExponentialDecay(0.1, 10, 0.5)),
                      "sparse_categorical_crossentropy")
        with pytest.raises(TypeError, match="not settable"):
            model.fit(x, y, epochs=2, verbose=0, callbacks=[callback])


def test_learning_rate_attribute_is_the_current_scheduled_rate_as_in_keras():
    keras = _keras()
    x, y = _data()
    ours, theirs = _pair(keras)
    theirs.compile(keras.optimizers.Adam(_s(keras).ExponentialDecay(0.1, 4, 0.5)), "sparse_categorical_crossentropy")
    ours.compile(ember.optimizers.Adam(_s(ember).ExponentialDecay(0.1, 4, 0.5)), "sparse_categorical_crossentropy")
    assert ours.optimizer.learning_rate == pytest.approx(0.1)
    for model in (ours, theirs):
        model.fit(x, y, batch_size=16, epochs=1, verbose=0, shuffle=False)
    want = float(keras.ops.convert_to_numpy(theirs.optimizer.learning_rate))
    assert ours.optimizer.iterations == int(keras.ops.convert_to_numpy(theirs.optimizer.iterations)) == 6
    assert ours.optimizer.learning_rate == pytest.approx(want, rel=1e-6) and want == pytest.approx(0.1 * 0.5 ** 1.5)


def test_loss_scale_factor_scales_the_backward_pass_as_keras():
    """The scaled loss is what the backward pass differentiates: a factor so small that every float32 gradient
    underflows to 0 leaves the weights where they were, in Keras and here (the same factor ignored would train);
    a large one trains as without it (unscaled before the update)."""
    keras = _keras()
    tiny = (lambda k: k.optimizers.SGD(0.5, loss_scale_factor=1e-45), lambda k: k.optimizers.SGD(0.5))
    with_factor, without = _run(keras, *tiny)
    assert with_factor == 0.0 and without > 20 * TOL, (with_factor, without)
    ours, theirs = _pair(keras)
    x, y = _data()
    start = ours.get_weights()
    ours.compile(ember.optimizers.SGD(0.5, loss_scale_factor=1e-45), "sparse_categorical_crossentropy")
    history = ours.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0).history
    assert all(np.array_equal(a, b) for a, b in zip(ours.get_weights(), start))
    assert history["loss"][0] > 0.5  # the loss reported is the unscaled one, as Keras's
    (large,) = _run(keras, lambda k: k.optimizers.Adam(0.05, loss_scale_factor=2.0 ** 14))
    assert large < TOL, large


def test_gradient_accumulation_by_hand():
    """N = 3 in float64: no change for two gradients, then the rule on their mean with the third; iterations
    is the updates made (calls // N), the schedule is asked with the calls, the average is updated every call."""
    opt = ember.optimizers.SGD(ember.optimizers.schedules.PiecewiseConstantDecay([2, 5], [1.0, 0.5, 0.1]),
                               gradient_accumulation_steps=3, use_ema=True, ema_momentum=0.5)
    p = np.array([0.0])
    rates = []
    for k, g in enumerate([1.0, 2.0, 6.0, 3.0, 3.0, 9.0]):
        rates.append(opt.learning_rate_at())
        opt.update(p, np.array([g]))
        if k == 1:
            assert p.tolist() == [0.0] and opt.iterations == 0 and opt.state["accumulated"].tolist() == [3.0]
        if k == 2:  # the rate of call 2 (step <= 2): 1.0; the mean (1 + 2 + 6) / 3 = 3
            assert p.tolist() == [-3.0] and opt.iterations == 1 and opt.state["accumulated"].tolist() == [0.0]
            assert opt.state["ema"].tolist() == [-3.0]  # still the first update (m = 0) in Keras's count
    assert rates == [1.0, 1.0, 1.0, 0.5, 0.5, 0.5]
    assert p.tolist() == [-3.0 - 0.5 * 5.0] and opt.iterations == 2 and opt.state["iterations"] == 6
    # the average moved at every call, with m = 0.5 from call 3 on: -3, -3, then (-3 - 5.5) / 2
    assert opt.state["ema"].tolist() == [-4.25]


def test_a_function_as_learning_rate_is_called_each_update_as_keras():
    """``learning_rate=lambda: rate[0]`` with a callback that quarters ``rate`` after each epoch trains as Keras;
    ember with the constant first rate (the function ignored) ends far from it."""
    keras = _keras()
    x, y = _data()

    def train(lib, model, function):
        rate = [0.05]
        model.compile(lib.optimizers.Adam((lambda: rate[0]) if function else 0.05), "sparse_categorical_crossentropy")
        quarter = lib.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: rate.__setitem__(0, rate[0] / 4))
        model.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0, callbacks=[quarter])
        return model

    out = []
    for function in (True, False):
        ours, theirs = _pair(keras)
        train(keras, theirs, True)
        train(ember, ours, function)
        out.append(_difference(ours, theirs))
        if function:
            assert ours.optimizer.learning_rate == pytest.approx(0.05 / 64)  # the function's value now
    assert out[0] < TOL and out[1] > 20 * TOL, out


def tenth():
    """A learning rate function a saved model can name (module-level)."""
    return 0.1


def test_config_round_trip_and_saved_model_keep_the_new_options(tmp_path):
    keras = _keras()
    for make in (lambda k: k.optimizers.Adam(2e-3, loss_scale_factor=128.0, gradient_accumulation_steps=4,
                                             clipnorm=1.0),
                 lambda k: k.optimizers.SGD(k.optimizers.schedules.ExponentialDecay(0.1, 10, 0.5), momentum=0.9,
                                            gradient_accumulation_steps=2),
                 lambda k: k.optimizers.RMSprop(tenth, loss_scale_factor=2.0)):
        ours, theirs = make(ember), make(keras)
        config = ours.get_config()
        want = theirs.get_config()
        for key in ("loss_scale_factor", "gradient_accumulation_steps", "clipnorm", "use_ema", "ema_momentum"):
            assert config[key] == want[key], key
        assert sorted(config) == sorted(set(want) - {"amsgrad"}), sorted(set(config) ^ set(want))
        again = type(ours).from_config(config)
        assert type(again) is type(ours) and again.get_config() == config and again.hyper == ours.hyper
        assert [again.learning_rate_at(step=k) for k in range(30)] == [ours.learning_rate_at(step=k) for k in range(30)]
        model = ember.Sequential([layers.Dense(3, activation="softmax", input_shape=(6,))])
        model.compile(ours, "sparse_categorical_crossentropy")
        path = str(tmp_path / "m.ember")
        model.save(path)
        loaded = ember.load_model(path).optimizer
        assert loaded.get_config() == config
    assert ember.load_model(path).optimizer.learning_rate == 0.1  # the function, found again in its module
    model.compile(ember.optimizers.SGD(lambda: 0.1), "sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="cannot be saved by name"):
        model.save(path)


def test_spark_refuses_what_it_cannot_follow():
    """On Spark a function as learning_rate, and a fit that would start inside an accumulation the previous fit
    left, are refused with the option's name (the check runs before any Spark work)."""
    from ember.optim.spark.engine import _check_options_for_spark

    with pytest.raises(ValueError, match="learning_rate is a function of no arguments: on Spark"):
        _check_options_for_spark(ember.optimizers.SGD(lambda: 0.1))
    opt = ember.optimizers.SGD(0.1, gradient_accumulation_steps=4)
    _check_options_for_spark(opt)
    opt.spark_pending_accumulation = 2
    with pytest.raises(ValueError, match="gradient_accumulation_steps=4: the previous fit on Spark ended 2 batch"):
        _check_options_for_spark(opt)


def test_generators_accumulate_and_scale_as_keras():
    """The generator loop (``fit`` on a generator of batches, ``steps_per_epoch``) with gradient accumulation and
    loss scaling trains as Keras on the same batches as arrays; without the accumulation it ends far away."""
    keras = _keras()
    x, y = _data()
    out = []
    for accumulate in (3, None):
        ours, theirs = _pair(keras)
        theirs.compile(keras.optimizers.Adam(0.05, gradient_accumulation_steps=3, loss_scale_factor=16.0),
                       "sparse_categorical_crossentropy")
        ours.compile(ember.optimizers.Adam(0.05, gradient_accumulation_steps=accumulate, loss_scale_factor=16.0),
                     "sparse_categorical_crossentropy")
        theirs.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0)

        def batches():
            while True:
                for k in range(0, 96, 16):
                    yield x[k:k + 16], y[k:k + 16]

        ours.fit(batches(), steps_per_epoch=6, epochs=3, verbose=0)
        out.append(_difference(ours, theirs))
        if accumulate:  # Keras's iterations: the 18 batches // 3
            assert ours.optimizer.iterations == int(keras.ops.convert_to_numpy(theirs.optimizer.iterations)) == 6
    assert out[0] < TOL and out[1] > 20 * TOL, out
