"""Keras's optimizers: ``ember.optim``'s update rules with Keras's defaults where they differ from
BigDL's (``ember.optim`` keeps BigDL's). ``ember.optimizers`` and ``compile("adam")`` give these.

| Keras name | what differs from ``ember.optim`` |
|---|---|
| ``Adam`` | epsilon 1e-7 (BigDL 1e-8), added to sqrt(v) before the bias correction as Keras does; a
  ``weight_decay`` is decoupled (``param -= lr * weight_decay * param``), as every Keras 3 optimizer's |
| ``AdamW`` | the same, and weight_decay 0.004 (Keras's default) |
"""
from ember.optim import methods


class Adam(methods.Adam):
    """Keras's Adam: ``ember.optim.Adam`` with Keras's epsilon (1e-7) in Keras's place::

        param <- param - lr sqrt(1 - beta_2^t) / (1 - beta_1^t) * m / (sqrt(v) + epsilon)

    (``ember.optim.Adam``, BigDL's, uses 1e-8 added to the bias-corrected sqrt(v)).

    Args:
        learning_rate, beta_1, beta_2, epsilon: as in Keras.
        weight_decay: Keras's decoupled weight decay: ``param -= lr * weight_decay * param`` each step
            (0 or None: none).

    Example:
        >>> from ember import optimizers
        >>> optimizers.Adam().hyper["epsilon"], optimizers.Adam().hyper["keras_epsilon"]
        (1e-07, True)
    """

    def __init__(self, learning_rate=1e-3, beta_1=0.9, beta_2=0.999, epsilon=1e-7, weight_decay=0.0):
        super().__init__(learning_rate, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon,
                         weight_decay=float(weight_decay or 0.0))
        if self.hyper["weight_decay"]:
            self.hyper["decoupled"] = True  # Keras 3 decays the weights themselves, not through the gradient
        self.hyper["keras_epsilon"] = True


class AdamW(methods.AdamW):
    """Keras's AdamW: decoupled weight decay (default 0.004), epsilon 1e-7 placed as in Keras's ``Adam``.

    Args:
        learning_rate, beta_1, beta_2, epsilon, weight_decay: as in Keras.

    Example:
        >>> from ember import optimizers
        >>> opt = optimizers.AdamW()
        >>> opt.hyper["weight_decay"], opt.hyper["epsilon"]
        (0.004, 1e-07)
    """

    def __init__(self, learning_rate=1e-3, beta_1=0.9, beta_2=0.999, epsilon=1e-7, weight_decay=0.004):
        super().__init__(learning_rate, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon, weight_decay=weight_decay)
        self.hyper["keras_epsilon"] = True
