"""Reductions: sum, mean, max, min over axes."""
from ember.engine.backend import get_array_module
from ember.engine.tensor import Function


def _normalize_axis(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, int):
        axis = (axis,)
    return tuple(a % ndim for a in axis)


def _expand(g, shape, axes, keepdims):
    if not keepdims:
        for a in sorted(axes):
            g = get_array_module(g).expand_dims(g, a)
    return g


class Sum(Function):
    def forward(self, a, axis=None, keepdims=False):
        self.shape, self.axes, self.keepdims = a.shape, _normalize_axis(axis, a.ndim), keepdims
        return a.sum(axis=self.axes, keepdims=keepdims)

    def backward(self, g):
        xp = get_array_module(g)
        return xp.broadcast_to(_expand(g, self.shape, self.axes, self.keepdims), self.shape).copy()


class Mean(Function):
    def forward(self, a, axis=None, keepdims=False):
        self.shape, self.axes, self.keepdims = a.shape, _normalize_axis(axis, a.ndim), keepdims
        self.count = 1
        for ax in self.axes:
            self.count *= a.shape[ax]
        return a.mean(axis=self.axes, keepdims=keepdims)

    def backward(self, g):
        xp = get_array_module(g)
        g = _expand(g, self.shape, self.axes, self.keepdims) / self.count
        return xp.broadcast_to(g, self.shape).copy()


class Max(Function):
    """Max over axes; the gradient is shared equally among tied maxima."""

    def forward(self, a, axis=None, keepdims=False):
        self.axes, self.keepdims = _normalize_axis(axis, a.ndim), keepdims
        y = a.max(axis=self.axes, keepdims=True)
        mask = (a == y).astype(a.dtype)
        self.mask = mask / mask.sum(axis=self.axes, keepdims=True)
        return y if keepdims else y.squeeze(axis=self.axes)

    def backward(self, g):
        return _expand(g, self.mask.shape, self.axes, self.keepdims) * self.mask


class Min(Function):
    def forward(self, a, axis=None, keepdims=False):
        self.axes, self.keepdims = _normalize_axis(axis, a.ndim), keepdims
        y = a.min(axis=self.axes, keepdims=True)
        mask = (a == y).astype(a.dtype)
        self.mask = mask / mask.sum(axis=self.axes, keepdims=True)
        return y if keepdims else y.squeeze(axis=self.axes)

    def backward(self, g):
        return _expand(g, self.mask.shape, self.axes, self.keepdims) * self.mask
