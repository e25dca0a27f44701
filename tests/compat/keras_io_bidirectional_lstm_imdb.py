# Port of keras-io examples/nlp/bidirectional_lstm_imdb.py ("Bidirectional LSTM on IMDB", fchollet, Apache-2.0):
# https://github.com/keras-team/keras-io/blob/master/examples/nlp/bidirectional_lstm_imdb.py
# Same calls in the same order; only the imports and the data loading are changed (IMDB is not on this
# machine: random review ids of the same vocabulary, a small subset).
import numpy as np

import ember as keras  # was: from tensorflow import keras
from ember import layers  # was: from tensorflow.keras import layers

max_features = 20000  # Only consider the top 20k words
maxlen = 200  # Only consider the first 200 words of each movie review

inputs = keras.Input(shape=(None,), dtype="int32")
x = layers.Embedding(max_features, 128)(inputs)
x = layers.Bidirectional(layers.LSTM(64, return_sequences=True))(x)
x = layers.Bidirectional(layers.LSTM(64))(x)
outputs = layers.Dense(1, activation="sigmoid")(x)
model = keras.Model(inputs, outputs)
model.summary()

# was: (x_train, y_train), (x_val, y_val) = keras.datasets.imdb.load_data(num_words=max_features)
rng = np.random.default_rng(0)
x_train = [list(rng.integers(1, max_features, size=rng.integers(5, 40))) for _ in range(64)]
y_train = rng.integers(0, 2, size=64)
x_val = [list(rng.integers(1, max_features, size=rng.integers(5, 40))) for _ in range(32)]
y_val = rng.integers(0, 2, size=32)
print(len(x_train), "Training sequences")
print(len(x_val), "Validation sequences")
x_train = keras.utils.pad_sequences(x_train, maxlen=maxlen)
x_val = keras.utils.pad_sequences(x_val, maxlen=maxlen)

model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
model.fit(x_train, y_train, batch_size=32, epochs=2, validation_data=(x_val, y_val))
