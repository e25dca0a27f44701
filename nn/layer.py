"""``bigdl.nn.layer``: Torch-style constructors returning ember layers (see ``ember.zoo.bigdl.layer``)."""
from ember.zoo.bigdl.layer import (
    Dropout,
    Linear,
    LogSoftMax,
    Model,
    ReLU,
    Reshape,
    Sequential,
    Sigmoid,
    SoftMax,
    SpatialConvolution,
    SpatialMaxPooling,
    Tanh,
    View,
)

__all__ = ["Dropout", "Linear", "LogSoftMax", "Model", "ReLU", "Reshape", "Sequential", "Sigmoid", "SoftMax",
           "SpatialConvolution", "SpatialMaxPooling", "Tanh", "View"]
