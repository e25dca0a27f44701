"""SGD and Adam updates with Numba: one parallel pass over the buffer instead of NumPy's five or
more (each with a temporary as large as the model). ``sgd_update_mean`` also takes the gradient as the
two parts a distributed owner adds and the sample count it divides by, in the same pass."""
import numpy as np

from ember.kernels.cpu.jit import parallel_above, prange, serialized
from ember.kernels.registry import register


@parallel_above(4 << 20)
def _sgd(param, grad, buf, lr, momentum, keep, nesterov, weight_decay, first):
    # keep = 1 - dampening, computed in float64 by the caller (1 - x in float32 loses digits)
    for i in prange(param.size):
        g = grad[i] + weight_decay * param[i]
        if momentum != 0:
            b = g if first else momentum * buf[i] + keep * g
            buf[i] = b
            g = g + momentum * b if nesterov else b
        param[i] -= lr * g


@parallel_above(4 << 20)
def _mean_of_parts(out, a, b, count):
    for i in prange(out.size):
        out[i] = (a[i] + b[i]) / count


# NOTE: the same arithmetic as _sgd with grad[i] = (a[i] + b[i]) / count (the same bits: tests/kernels), in one
# pass that reads a, b, param and buf and writes param and buf: 6 arrays' worth of memory traffic where the
# sum, the division and _sgd took 10 (sum: 3, division: 2, update: 5), 50 MB each at 25M parameters on 2 owners.
@parallel_above(4 << 20)
def _sgd_mean(param, a, b, count, buf, lr, momentum, keep, nesterov, weight_decay, first):
    for i in prange(param.size):
        g = (a[i] + b[i]) / count + weight_decay * param[i]
        if momentum != 0:
            v = g if first else momentum * buf[i] + keep * g
            buf[i] = v
            g = g + momentum * v if nesterov else v
        param[i] -= lr * g


@parallel_above(4 << 20)
def _adam(param, grad, m, v, lr_t, bias2, beta_1, beta_2, keep_1, keep_2, epsilon, weight_decay, decay_factor):
    for i in prange(param.size):
        p = param[i] * decay_factor
        g = grad[i] + weight_decay * p
        mi = beta_1 * m[i] + keep_1 * g
        vi = beta_2 * v[i] + keep_2 * g * g
        m[i] = mi
        v[i] = vi
        param[i] = p - lr_t * mi / (np.sqrt(vi / bias2) + epsilon)


def _flat(a):
    return a.ndim == 1 and a.flags.c_contiguous


@register("sgd_update", "numba", wrap=serialized)
def sgd_update(param, grad, buf, lr, momentum, dampening, nesterov, weight_decay, first):
    if not (_flat(param) and _flat(grad)):
        from ember.kernels.reference.optim import sgd_update as reference

        return reference(param, grad, buf, lr, momentum, dampening, nesterov, weight_decay, first)
    s = param.dtype.type
    _sgd(param, grad, buf if buf is not None else param[:0], s(lr), s(momentum), s(1 - dampening), bool(nesterov),
         s(weight_decay), bool(first))


@register("adam_update", "numba", wrap=serialized)
def adam_update(param, grad, m, v, step, lr, beta_1, beta_2, epsilon, weight_decay, decoupled):
    if not (_flat(param) and _flat(grad)):
        from ember.kernels.reference.optim import adam_update as reference

        return reference(param, grad, m, v, step, lr, beta_1, beta_2, epsilon, weight_decay, decoupled)
    s = param.dtype.type
    decay_factor = 1 - lr * weight_decay if decoupled else 1.0
    wd = 0.0 if decoupled else weight_decay
    _adam(param, grad, m, v, s(lr / (1 - beta_1 ** step)), s(1 - beta_2 ** step), s(beta_1), s(beta_2),
          s(1 - beta_1), s(1 - beta_2), s(epsilon), s(wd), s(decay_factor))


@register("mean_of_parts", "numba", wrap=serialized)
def mean_of_parts(out, a, b, count):
    if not (_flat(out) and _flat(a) and _flat(b)):
        from ember.kernels.reference.optim import mean_of_parts as reference

        return reference(out, a, b, count)
    _mean_of_parts(out, a, b, out.dtype.type(count))


@register("sgd_update_mean", "numba", wrap=serialized)
def sgd_update_mean(param, a, b, count, buf, lr, momentum, dampening, nesterov, weight_decay, first):
    if not (_flat(param) and _flat(a) and _flat(b)):
        from ember.kernels.reference.optim import sgd_update_mean as reference

        return reference(param, a, b, count, buf, lr, momentum, dampening, nesterov, weight_decay, first)
    s = param.dtype.type
    _sgd_mean(param, a, b, s(count), buf if buf is not None else param[:0], s(lr), s(momentum), s(1 - dampening),
              bool(nesterov), s(weight_decay), bool(first))
