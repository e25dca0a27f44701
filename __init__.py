"""ember: deep learning that trains and serves neural networks natively on Apache Spark.

Example:
    >>> import ember
    >>> from ember.layers import Dense
    >>> model = ember.Sequential([Dense(2, input_shape=(3,))])
    >>> model.count_params()
    8
"""
import sys

# ``import ember as keras``: the modules Keras code reaches through the package (README: "Coming from Keras")
from ember import (
    activations,
    backend,
    callbacks,
    datasets,
    metrics,
    models,
    optimizers,
    preprocessing,
    regularizers,
    utils,
)
from ember._version import __version__  # noqa: E402
from ember.engine import (
    Tensor,
    get_default_dtype,
    no_grad,
    set_check_numerics,
    set_default_dtype,
    set_seed,
)
from ember.layers import Input, initializers, losses
from ember.optim.spark.context import init_nncontext
from ember.zoo.keras import Model, Sequential, load_model

# ``ember.losses`` is ``ember.layers.losses`` under Keras's name: `from ember.losses import mse` works too
sys.modules.setdefault(f"{__name__}.losses", losses)

__all__ = [
    "Input", "Model", "Sequential", "Tensor", "activations", "backend", "callbacks", "datasets", "init_nncontext",
    "initializers",
    "get_default_dtype", "load_model", "losses", "metrics", "models", "no_grad", "optimizers", "preprocessing",
    "regularizers", "set_check_numerics", "set_default_dtype", "set_seed", "utils", "__version__",
]
