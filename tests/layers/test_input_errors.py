"""The bad inputs users met, each with a message naming the argument or layer and what was expected."""
import numpy as np
import pytest

import ember
from ember import optim
from ember.layers import LSTM, Conv2D, Dense


def classifier():
    ember.set_seed(0)
    model = ember.Sequential([Dense(4, activation="relu", input_shape=(3,)), Dense(2, activation="softmax")])
    model.compile("sgd", "sparse_categorical_crossentropy", ["accuracy"])
    return model


X = np.random.default_rng(0).normal(size=(10, 3)).astype("float32")
Y = np.arange(10) % 2


@pytest.mark.parametrize("batch_size", [0, -3, 2.7, "8", None])
def test_batch_sizes_must_be_whole_numbers_of_at_least_one(batch_size):
    model = classifier()
    for call in (lambda: model.evaluate(X, Y, batch_size=batch_size), lambda: model.predict(X, batch_size=batch_size),
                 lambda: model.fit(X, Y, batch_size=batch_size, verbose=0)):
        with pytest.raises(ValueError, match=f"batch_size must be an integer >= 1, got {batch_size!r}"):
            call()
    opt = optim.Optimizer(model, (X, Y), "sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="set_validation: batch_size must be an integer >= 1"):
        opt.set_validation(batch_size, (X, Y))


def test_nan_rows_are_reported_with_their_index():
    model = classifier()
    bad = X.copy()
    bad[7, 1] = np.nan
    for call in (lambda: model.evaluate(bad, Y), lambda: model.predict(bad), lambda: model.predict_classes(bad),
                 lambda: model.fit(bad, Y, verbose=0)):
        with pytest.raises(ValueError, match="row 7 holds NaN or infinite values"):
            call()
    ds = optim.ArrayDataset(bad, Y, allow_nonfinite=True)  # allowed on request
    assert len(ds) == 10


def test_missing_targets():
    with pytest.raises(ValueError, match=r"the targets \(y\) are None"):
        optim.Optimizer(classifier(), (X, None), "sparse_categorical_crossentropy")


def test_binary_crossentropy_targets_outside_zero_one():
    model = ember.Sequential([Dense(1, activation="sigmoid", input_shape=(3,))])
    model.compile("sgd", "binary_crossentropy")
    with pytest.raises(ValueError, match=r"targets must be in \[0, 1\]; got [2-7].0"):
        model.fit(X, (np.arange(10) % 8).reshape(-1, 1).astype("float32"), verbose=0)


def test_an_rnn_over_zero_steps():
    layer = LSTM(4)
    with pytest.raises(ValueError, match="'lstm.*' \\(LSTM\\): the input has 0 time steps"):
        layer(np.zeros((2, 0, 3), dtype="float32"))


def test_a_convolution_window_larger_than_its_input():
    with pytest.raises(ValueError, match="its window of 5 .* does not fit an input of size 3"):
        ember.Sequential([Conv2D(2, 5, input_shape=(3, 3, 1))])
    ember.Sequential([Conv2D(2, 5, padding="same", input_shape=(3, 3, 1))])  # fine with 'same'
