"""SGD and Adam updates over a slice of the flat parameter buffer, in place (NumPy reference).
The rules are written out in ``ember.optim.methods``; the state arrays are created there."""
import numpy as np

from ember.kernels.registry import register


@register("sgd_update", "numpy")
def sgd_update(param, grad, buf, lr, momentum, dampening, nesterov, weight_decay, first):
    """``buf`` is the momentum buffer (None without momentum); ``first``: this is its first step."""
    g = grad + weight_decay * param if weight_decay else grad
    if momentum:
        if first:
            buf[...] = g
        else:
            buf *= momentum
            buf += (1 - dampening) * g
        g = g + momentum * buf if nesterov else buf
    param -= lr * g


@register("adam_update", "numpy")
def adam_update(param, grad, m, v, step, lr, beta_1, beta_2, epsilon, weight_decay, decoupled):
    if weight_decay and decoupled:
        param *= 1 - lr * weight_decay
        g = grad
    else:
        g = grad + weight_decay * param if weight_decay else grad
    m *= beta_1
    m += (1 - beta_1) * g
    v *= beta_2
    v += (1 - beta_2) * g * g
    denom = np.sqrt(v / (1 - beta_2 ** step)) + epsilon
    param -= (lr / (1 - beta_1 ** step)) * m / denom
