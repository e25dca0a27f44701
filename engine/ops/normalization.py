"""Batch normalisation as single ops (closed-form backward). Channels-last inputs, the common case,
go through the ``batch_norm_*`` kernels on a (M, C) view; other axes use the generic NumPy form."""
from ember.engine.backend import backend_name, get_array_module
from ember.engine.tensor import Function
from ember.kernels import get_kernel


def _k(name, arr):
    return get_kernel(name, backend_name(get_array_module(arr)))


def _channels_last(x, axes):
    return tuple(axes) == tuple(range(x.ndim - 1))


def _check_activation(activation):
    if activation not in (None, "relu"):
        raise ValueError(f"batch norm: activation must be None or 'relu', got {activation!r}")
    return activation == "relu"


class BatchNormTrain(Function):
    """y = gamma * (x - mean) / sqrt(var + eps) + beta, statistics over ``axes`` of this batch, then
    ReLU when ``activation == "relu"`` (one op: the layers fuse BatchNormalization -> ReLU).

    ``forward`` also exposes the batch mean and (biased) variance as ``self.mean``/``self.var``
    (shaped like gamma) so the layer can update its running statistics.
    """

    def forward(self, x, gamma, beta, axes=(0,), eps=1e-3, activation=None):
        self.axes, self.gamma, self.beta, self.shape = axes, gamma, beta, x.shape
        self.relu = _check_activation(activation)
        if _channels_last(x, axes):
            c = x.shape[-1]
            self.x2 = x.reshape(-1, c)
            y, mean, var, self.inv_std = _k("batch_norm_forward_train", x)(
                self.x2, gamma.reshape(c), beta.reshape(c), eps, self.relu)
            self.mean2 = mean
            self.mean, self.var = mean.reshape(gamma.shape), var.reshape(gamma.shape)
            return y.reshape(x.shape)
        xp = get_array_module(x)
        self.x2 = None
        self.mean = x.mean(axis=axes, keepdims=True)
        centered = x - self.mean
        self.var = (centered * centered).mean(axis=axes, keepdims=True)
        self.inv_std = 1.0 / xp.sqrt(self.var + eps)
        self.xhat = centered * self.inv_std
        y = self.xhat * gamma + beta
        if self.relu:
            self.mask = y > 0
            y = xp.maximum(y, 0)
        return y

    def backward(self, g):
        if self.x2 is not None:
            c = self.shape[-1]
            dx, dgamma, dbeta = _k("batch_norm_backward", g)(g.reshape(-1, c), self.x2, self.mean2, self.inv_std,
                                                             self.gamma.reshape(c), self.beta.reshape(c), self.relu)
            return dx.reshape(self.shape), dgamma.reshape(self.gamma.shape), dbeta.reshape(self.gamma.shape)
        if self.relu:
            g = g * self.mask
        axes = self.axes
        dgamma = (g * self.xhat).sum(axis=axes, keepdims=True)
        dbeta = g.sum(axis=axes, keepdims=True)
        count = g.size // dbeta.size
        # dx = inv_std/m * (m*dxhat - sum(dxhat) - xhat*sum(dxhat*xhat)), dxhat = g*gamma
        dx = (self.inv_std / count) * (count * g * self.gamma - dbeta * self.gamma - self.xhat * dgamma * self.gamma)
        return dx, dgamma.reshape(self.gamma.shape), dbeta.reshape(self.gamma.shape)


class BatchNormInference(Function):
    """y = gamma * (x - mean) / sqrt(var + eps) + beta with fixed (moving) statistics, computed as one
    scale-and-shift pass (with the ReLU after it when ``activation == "relu"``). Gradients flow to x,
    gamma and beta (fine-tuning with frozen statistics)."""

    def forward(self, x, gamma, beta, mean=None, var=None, axis=-1, eps=1e-3, activation=None):
        xp = get_array_module(x)
        self.axis = axis % x.ndim
        self.relu = _check_activation(activation)
        self.inv_std = (1.0 / xp.sqrt(var + eps)).astype(x.dtype)
        self.scale = (gamma * self.inv_std).astype(x.dtype)
        shift = (beta - mean * self.scale).astype(x.dtype)
        self.x, self.mean, self.gamma_shape = x, mean, gamma.shape
        if self.axis == x.ndim - 1:
            c = x.shape[-1]
            y = _k("scale_shift", x)(x.reshape(-1, c), self.scale, shift, self.relu).reshape(x.shape)
        else:
            shape = [1] * x.ndim
            shape[self.axis] = x.shape[self.axis]
            y = x * self.scale.reshape(shape) + shift.reshape(shape)
            if self.relu:
                y = xp.maximum(y, 0)
        self.y = y if self.relu and self.tracked else None
        return y

    def backward(self, g):
        if self.relu:
            g = g * (self.y > 0)
        shape = [1] * g.ndim
        shape[self.axis] = g.shape[self.axis]
        axes = tuple(i for i in range(g.ndim) if i != self.axis)
        dx = g * self.scale.reshape(shape) if self.needs_input_grad[0] else None
        dgamma = dbeta = None
        if self.needs_input_grad[1]:
            xhat = (self.x - self.mean.reshape(shape)) * self.inv_std.reshape(shape)
            dgamma = (g * xhat).sum(axis=axes).reshape(self.gamma_shape)
        if self.needs_input_grad[2]:
            dbeta = g.sum(axis=axes).reshape(self.gamma_shape)
        return dx, dgamma, dbeta


class LocalResponseNorm(Function):
    """Cross-channel LRN over the last axis (see ``lrn_forward``): y = x * s^-beta."""

    def forward(self, x, size=5, alpha=1e-4, beta=0.75, k=1.0):
        c = x.shape[-1]
        self.shape, self.args = x.shape, (size, alpha, beta, k)
        self.x2 = x.reshape(-1, c)
        self.y2, self.s2 = _k("lrn_forward", x)(self.x2, size, alpha, beta, k)
        return self.y2.reshape(x.shape)

    def backward(self, g):
        c = self.shape[-1]
        return _k("lrn_backward", g)(g.reshape(-1, c), self.x2, self.y2, self.s2, *self.args).reshape(self.shape)
