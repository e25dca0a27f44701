"""Layers (Keras names), containers (Sequential, Model), losses and initializers."""
from ember.layers import initializers, losses
from ember.layers.base import InputSpec, Layer, SymbolicTensor
from ember.layers.containers import Model, Sequential
from ember.layers.convolutional import (
    AveragePooling2D,
    Conv1D,
    Conv2D,
    Conv2DTranspose,
    DepthwiseConv2D,
    GlobalAveragePooling2D,
    GlobalMaxPooling2D,
    MaxPooling2D,
    ZeroPadding2D,
)
from ember.layers.core import Activation, Dense, Dropout, Flatten, Input, InputLayer, Lambda, Permute, Reshape
from ember.layers.embedding import Embedding
from ember.layers.merge import Add, Average, Concatenate, Maximum, Minimum, Multiply, Subtract
from ember.layers.normalization import BatchNormalization, LayerNormalization, LocalResponseNormalization
from ember.layers.recurrent import GRU, LSTM, SimpleRNN
from ember.layers.serialization import load_model

__all__ = [
    "GRU", "LSTM", "Activation", "Add", "Average", "AveragePooling2D", "BatchNormalization", "Concatenate",
    "Conv1D", "Conv2D", "Conv2DTranspose", "Dense", "DepthwiseConv2D", "Dropout", "Embedding", "Flatten",
    "GlobalAveragePooling2D", "GlobalMaxPooling2D", "Input", "InputLayer", "InputSpec", "Lambda", "Layer",
    "LayerNormalization", "LocalResponseNormalization", "MaxPooling2D", "Maximum", "Minimum", "Model",
    "Multiply", "Permute", "Reshape", "Sequential", "SimpleRNN", "Subtract", "SymbolicTensor", "ZeroPadding2D",
    "initializers", "load_model", "losses",
]
