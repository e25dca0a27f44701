"""``keras.optimizers`` for ``import ember as keras``: Keras's optimizer names and arguments
(``SGD(learning_rate=0.01, momentum=0.9, nesterov=True)``, ``Adam(learning_rate=1e-3)``, ...), which are
``ember.optim``'s update rules, with Keras's defaults where Keras's differ from BigDL's (``Adam`` and
``AdamW``: epsilon 1e-7, see ``ember.zoo.keras.optimizers``); ``get("adam")`` as in Keras.

Example:
    >>> from ember import optimizers
    >>> optimizers.SGD(learning_rate=0.1, momentum=0.9).hyper["momentum"]
    0.9
    >>> optimizers.Adam().hyper["epsilon"]  # Keras's default; BigDL's ember.optim.Adam has 1e-8
    1e-07
"""
from ember.optim.methods import SGD, Adadelta, Adagrad, Adamax, OptimMethod, RMSprop
from ember.zoo.keras.models import get_optimizer as get
from ember.zoo.keras.optimizers import Adam, AdamW

Optimizer = OptimMethod

__all__ = ["SGD", "Adadelta", "Adagrad", "Adam", "AdamW", "Adamax", "Optimizer", "RMSprop", "get"]
