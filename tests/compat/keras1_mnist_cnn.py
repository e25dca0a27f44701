# Port of Keras 1's examples/mnist_cnn.py (Keras 1.2.2, "Trains a simple convnet on the MNIST dataset", MIT),
# the model BigDL's Keras examples trained too:
# https://github.com/keras-team/keras/blob/1.2.2/examples/mnist_cnn.py
# Keras 1's spellings as they are (Convolution2D(nb_filter, nb_row, nb_col, border_mode=...), nb_epoch,
# np_utils, K.image_dim_ordering()). Same calls in the same order; only the imports and the data loading
# (a small subset, fewer epochs) are changed.

import numpy as np

np.random.seed(1337)  # for reproducibility

from ember import backend as K  # noqa: E402  was: from keras import backend as K
from ember.datasets import mnist  # noqa: E402  was: from keras.datasets import mnist
from ember.layers.convolutional import Convolution2D, MaxPooling2D  # noqa: E402  was: from keras.layers import ...
from ember.layers.core import Activation, Dense, Dropout, Flatten  # noqa: E402  was: from keras.layers import ...
from ember.models import Sequential  # noqa: E402  was: from keras.models import Sequential
from ember.utils import np_utils  # noqa: E402  was: from keras.utils import np_utils

batch_size = 128
nb_classes = 10
nb_epoch = 3  # was: 12

# input image dimensions
img_rows, img_cols = 28, 28
# number of convolutional filters to use
nb_filters = 32
# size of pooling area for max pooling
pool_size = (2, 2)
# convolution kernel size
kernel_size = (3, 3)

(X_train, y_train), (X_test, y_test) = mnist.load_data()
X_train, y_train, X_test, y_test = X_train[:640], y_train[:640], X_test[:256], y_test[:256]  # was: (all)

if K.image_dim_ordering() == 'th':
    X_train = X_train.reshape(X_train.shape[0], 1, img_rows, img_cols)
    X_test = X_test.reshape(X_test.shape[0], 1, img_rows, img_cols)
    input_shape = (1, img_rows, img_cols)
else:
    X_train = X_train.reshape(X_train.shape[0], img_rows, img_cols, 1)
    X_test = X_test.reshape(X_test.shape[0], img_rows, img_cols, 1)
    input_shape = (img_rows, img_cols, 1)

X_train = X_train.astype('float32')
X_test = X_test.astype('float32')
X_train /= 255
X_test /= 255
print('X_train shape:', X_train.shape)
print(X_train.shape[0], 'train samples')
print(X_test.shape[0], 'test samples')

# convert class vectors to binary class matrices
Y_train = np_utils.to_categorical(y_train, nb_classes)
Y_test = np_utils.to_categorical(y_test, nb_classes)

model = Sequential()

model.add(Convolution2D(nb_filters, kernel_size[0], kernel_size[1],
                        border_mode='valid',
                        input_shape=input_shape))
model.add(Activation('relu'))
model.add(Convolution2D(nb_filters, kernel_size[0], kernel_size[1]))
model.add(Activation('relu'))
model.add(MaxPooling2D(pool_size=pool_size))
model.add(Dropout(0.25))

model.add(Flatten())
model.add(Dense(128))
model.add(Activation('relu'))
model.add(Dropout(0.5))
model.add(Dense(nb_classes))
model.add(Activation('softmax'))

model.compile(loss='categorical_crossentropy',
              optimizer='adadelta',
              metrics=['accuracy'])

model.fit(X_train, Y_train, batch_size=batch_size, nb_epoch=nb_epoch,
          verbose=1, validation_data=(X_test, Y_test))
score = model.evaluate(X_test, Y_test, verbose=0)
print('Test score:', score[0])
print('Test accuracy:', score[1])
