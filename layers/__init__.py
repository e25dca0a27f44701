"""Layers (Keras names), containers (Sequential, Model), losses and initializers."""
from ember.layers import initializers, losses, regularizers
from ember.layers.base import InputSpec, Layer, SymbolicTensor
from ember.layers.containers import Model, Sequential
from ember.layers.convolutional import (
    AveragePooling1D,
    AveragePooling2D,
    Conv1D,
    Conv2D,
    Conv2DTranspose,
    Convolution1D,
    Convolution2D,
    Cropping2D,
    DepthwiseConv2D,
    GlobalAveragePooling1D,
    GlobalAveragePooling2D,
    GlobalMaxPooling1D,
    GlobalMaxPooling2D,
    MaxPooling1D,
    MaxPooling2D,
    SeparableConv2D,
    UpSampling2D,
    ZeroPadding2D,
)
from ember.layers.core import (
    Activation,
    Dense,
    Dropout,
    Flatten,
    Input,
    InputLayer,
    Lambda,
    Masking,
    Permute,
    ReLU,
    RepeatVector,
    Reshape,
    SpatialDropout1D,
    SpatialDropout2D,
)
from ember.layers.embedding import Embedding
from ember.layers.merge import Add, Average, Concatenate, Maximum, Merge, Minimum, Multiply, Subtract, merge
from ember.layers.normalization import BatchNormalization, LayerNormalization, LocalResponseNormalization
from ember.layers.recurrent import GRU, LSTM, SimpleRNN
from ember.layers.serialization import load_model
from ember.layers.wrappers import Bidirectional, TimeDistributed

__all__ = [
    "AveragePooling1D", "Bidirectional", "Convolution1D", "Convolution2D", "Cropping2D", "GlobalAveragePooling1D",
    "GlobalMaxPooling1D", "Masking", "MaxPooling1D", "ReLU", "RepeatVector", "SeparableConv2D", "SpatialDropout1D",
    "SpatialDropout2D", "TimeDistributed",
    "UpSampling2D",
    "GRU", "LSTM", "Activation", "Add", "Average", "AveragePooling2D", "BatchNormalization", "Concatenate",
    "Conv1D", "Conv2D", "Conv2DTranspose", "Dense", "DepthwiseConv2D", "Dropout", "Embedding", "Flatten",
    "GlobalAveragePooling2D", "GlobalMaxPooling2D", "Input", "InputLayer", "InputSpec", "Lambda", "Layer",
    "LayerNormalization", "LocalResponseNormalization", "MaxPooling2D", "Maximum", "Minimum", "Model",
    "Merge", "Multiply", "Permute", "Reshape", "Sequential", "SimpleRNN", "Subtract", "SymbolicTensor", "ZeroPadding2D",
    "initializers", "load_model", "merge", "losses", "regularizers",
]
