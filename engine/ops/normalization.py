"""Batch normalisation in training mode as one op (closed-form backward)."""
from ember.engine.backend import get_array_module
from ember.engine.tensor import Function


class BatchNormTrain(Function):
    """y = gamma * (x - mean) / sqrt(var + eps) + beta, statistics over ``axes`` of this batch.

    ``forward`` also exposes the batch mean and (biased) variance as ``self.mean``/``self.var``
    so the layer can update its running statistics.
    """

    def forward(self, x, gamma, beta, axes=(0,), eps=1e-3):
        xp = get_array_module(x)
        self.axes = axes
        self.mean = x.mean(axis=axes, keepdims=True)
        centered = x - self.mean
        self.var = (centered * centered).mean(axis=axes, keepdims=True)
        self.inv_std = 1.0 / xp.sqrt(self.var + eps)
        self.xhat = centered * self.inv_std
        self.gamma = gamma
        return self.xhat * gamma + beta

    def backward(self, g):
        axes = self.axes
        dgamma = (g * self.xhat).sum(axis=axes, keepdims=True)
        dbeta = g.sum(axis=axes, keepdims=True)
        count = g.size // dbeta.size
        dxhat_sum = dbeta * self.gamma
        dxhat_xhat_sum = dgamma * self.gamma
        # dx = inv_std/m * (m*dxhat - sum(dxhat) - xhat*sum(dxhat*xhat)), dxhat = g*gamma
        dx = (self.inv_std / count) * (count * g * self.gamma - dxhat_sum - self.xhat * dxhat_xhat_sum)
        return dx, dgamma.reshape(self.gamma.shape), dbeta.reshape(self.gamma.shape)
