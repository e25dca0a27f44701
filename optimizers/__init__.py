"""``keras.optimizers`` for ``import ember as keras``: Keras's optimizer names and arguments
(``SGD(learning_rate=0.01, momentum=0.9, nesterov=True)``, ``Adam(learning_rate=1e-3)``, ...), which are
``ember.optim``'s update rules, with Keras's defaults and epsilon placement where Keras's differ from
BigDL's (see ``ember.zoo.keras.optimizers``); ``get("adam")`` as in Keras.

Example:
    >>> from ember import optimizers
    >>> optimizers.SGD(learning_rate=0.1, momentum=0.9).hyper["momentum"]
    0.9
    >>> optimizers.Adam().hyper["epsilon"]  # Keras's default; BigDL's ember.optim.Adam has 1e-8
    1e-07
    >>> decay = optimizers.schedules.ExponentialDecay(0.1, decay_steps=100, decay_rate=0.5)
    >>> optimizers.SGD(learning_rate=decay, clipnorm=1.0).options.clipnorm
    1.0
"""
from ember.optim.methods import OptimMethod
from ember.optimizers import schedules
from ember.zoo.keras.models import get_optimizer as get
from ember.zoo.keras.optimizers import SGD, Adadelta, Adagrad, Adam, Adamax, AdamW, RMSprop

Optimizer = OptimMethod

__all__ = ["SGD", "Adadelta", "Adagrad", "Adam", "AdamW", "Adamax", "Optimizer", "RMSprop", "get", "schedules"]
