# Port of keras-io examples/timeseries/timeseries_classification_from_scratch.py ("Timeseries classification
# from scratch", hfawaz, Apache-2.0):
# https://github.com/keras-team/keras-io/blob/master/examples/timeseries/timeseries_classification_from_scratch.py
# A functional-API model (keras.layers.Input, Model(inputs=, outputs=)) of Conv1D, BatchNormalization, ReLU and
# GlobalAveragePooling1D, trained with ModelCheckpoint, ReduceLROnPlateau and EarlyStopping, reloaded from the
# best checkpoint. Same calls in the same order; only the imports and the data loading (FordA is downloaded
# in the original: here a synthetic two-class series set of the same shape, smaller, fewer epochs) are
# changed (250 steps, not 500), and the plots (matplotlib, plot_model) are left out: nothing displays them here.
import os
import tempfile

import numpy as np

import ember as keras  # was: import keras

os.chdir(tempfile.mkdtemp())  # was: (the working directory; best_model.keras is written there)


def readucr(n, seed):  # was: def readucr(filename): data = np.loadtxt(filename, delimiter="\t") ...
    """FordA-like rows: a label in {-1, 1} and a noisy series whose frequency depends on the label."""
    rng = np.random.default_rng(seed)
    y = rng.choice([-1, 1], size=n)
    t = np.linspace(0, 1, 250)
    x = np.sin(2 * np.pi * (3 + 6 * (y[:, None] > 0)) * t + rng.uniform(0, 6.3, (n, 1)))
    x += 0.3 * rng.normal(size=x.shape)
    return x, y.astype(int)


x_train, y_train = readucr(240, 0)  # was: readucr(root_url + "FordA_TRAIN.tsv")
x_test, y_test = readucr(120, 1)  # was: readucr(root_url + "FordA_TEST.tsv")

classes = np.unique(np.concatenate((y_train, y_test), axis=0))

x_train = x_train.reshape((x_train.shape[0], x_train.shape[1], 1))
x_test = x_test.reshape((x_test.shape[0], x_test.shape[1], 1))

num_classes = len(np.unique(y_train))

idx = np.random.permutation(len(x_train))
x_train = x_train[idx]
y_train = y_train[idx]

y_train[y_train == -1] = 0
y_test[y_test == -1] = 0


def make_model(input_shape):
    input_layer = keras.layers.Input(input_shape)

    conv1 = keras.layers.Conv1D(filters=64, kernel_size=3, padding="same")(input_layer)
    conv1 = keras.layers.BatchNormalization()(conv1)
    conv1 = keras.layers.ReLU()(conv1)

    conv2 = keras.layers.Conv1D(filters=64, kernel_size=3, padding="same")(conv1)
    conv2 = keras.layers.BatchNormalization()(conv2)
    conv2 = keras.layers.ReLU()(conv2)

    conv3 = keras.layers.Conv1D(filters=64, kernel_size=3, padding="same")(conv2)
    conv3 = keras.layers.BatchNormalization()(conv3)
    conv3 = keras.layers.ReLU()(conv3)

    gap = keras.layers.GlobalAveragePooling1D()(conv3)

    output_layer = keras.layers.Dense(num_classes, activation="softmax")(gap)

    return keras.models.Model(inputs=input_layer, outputs=output_layer)


model = make_model(input_shape=x_train.shape[1:])

epochs = 6  # was: 500
batch_size = 32

callbacks = [
    keras.callbacks.ModelCheckpoint(
        "best_model.keras", save_best_only=True, monitor="val_loss"
    ),
    keras.callbacks.ReduceLROnPlateau(
        monitor="val_loss", factor=0.5, patience=20, min_lr=0.0001
    ),
    keras.callbacks.EarlyStopping(monitor="val_loss", patience=50, verbose=1),
]
model.compile(
    optimizer="adam",
    loss="sparse_categorical_crossentropy",
    metrics=["sparse_categorical_accuracy"],
)
history = model.fit(
    x_train,
    y_train,
    batch_size=batch_size,
    epochs=epochs,
    callbacks=callbacks,
    validation_split=0.2,
    verbose=1,
)

model = keras.models.load_model("best_model.keras")

test_loss, test_acc = model.evaluate(x_test, y_test)

print("Test accuracy", test_acc)
print("Test loss", test_loss)

metric = "sparse_categorical_accuracy"
print(metric, history.history[metric][-1], "val_" + metric, history.history["val_" + metric][-1])  # was: plt.plot(...)
