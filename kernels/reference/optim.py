"""SGD and Adam updates over a slice of the flat parameter buffer, in place (NumPy reference), and the
mean of two gradient parts that the distributed owner adds (alone, or fused with SGD's update).
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


@register("mean_of_parts", "numpy")
def mean_of_parts(out, a, b, count):
    """``out <- (a + b) / count``, added and divided in the array's dtype in that order (``out`` may be ``a``);
    ``count`` is an int (the samples whose gradients were summed)."""
    np.add(a, b, out=out)
    out /= count


@register("sgd_update_mean", "numpy")
def sgd_update_mean(param, a, b, count, buf, lr, momentum, dampening, nesterov, weight_decay, first):
    """``sgd_update`` with the gradient ``(a + b) / count`` (``mean_of_parts``): the specification of the
    fused kernel, which computes the same bits without storing the mean."""
    grad = np.empty_like(param)
    mean_of_parts(grad, a, b, count)
    sgd_update(param, grad, buf, lr, momentum, dampening, nesterov, weight_decay, first)


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
