"""``Tensor``: an n-d array with reverse-mode automatic differentiation (define-by-run).

Each operation is a ``Function`` subclass with ``forward`` and ``backward`` side by side; calling
``Function.apply`` runs ``forward`` on raw arrays and, when a gradient is needed, records the node
on the result. ``Tensor.backward`` walks the recorded graph once in reverse topological order, so
gradients through shared subgraphs are summed exactly once per path.
"""
import time

import numpy as np

from ember.engine import config, profiler
from ember.engine.backend import get_array_module


class Tensor:
    """An array that can record the operations applied to it and differentiate through them.

    Args:
        data: array-like; Python numbers and float lists take the default dtype.
        requires_grad: record operations on this tensor so ``.grad`` gets filled by ``backward``.
        dtype: optional dtype to cast to.

    Example:
        >>> import ember
        >>> x = ember.Tensor([1.0, 2.0, 3.0], requires_grad=True)
        >>> (x * x).sum().backward()
        >>> x.grad.tolist()
        [2.0, 4.0, 6.0]
    """

    # _keras_mask: a boolean (batch, steps) array that layers attach to sequence outputs (Embedding(mask_zero=True),
    # Masking) for the recurrent layers after them; unset on every other tensor (see ember.layers.base.get_mask)
    # _grad_zero: set when ``.grad`` is known to hold zeros (``zero_grad``), so that ``backward`` may let an op
    # write this leaf's gradient straight into ``.grad`` (``Function.grad_out``) instead of adding it
    __slots__ = ("data", "grad", "requires_grad", "_ctx", "name", "_keras_mask", "_grad_zero", "__weakref__")
    __array_priority__ = 1000  # so ndarray + Tensor dispatches to Tensor.__radd__

    def __init__(self, data, requires_grad=False, dtype=None, name=None):
        if isinstance(data, Tensor):
            data = data.data
        xp = get_array_module(data)
        if dtype is not None:
            data = xp.asarray(data, dtype=dtype)
        elif isinstance(data, xp.ndarray):
            pass  # arrays keep their dtype
        else:
            data = np.asarray(data)
            if data.dtype.kind == "f":  # Python floats take the engine's default dtype
                data = data.astype(config.get_default_dtype())
        self.data = data
        self.grad = None
        self.requires_grad = bool(requires_grad)
        if self.requires_grad and data.dtype.kind != "f":
            raise TypeError(f"only floating tensors can require gradients, got dtype {data.dtype}")
        self._ctx = None
        self.name = name
        self._grad_zero = False

    # ---- array-like surface ----
    @property
    def shape(self):
        return self.data.shape

    @property
    def ndim(self):
        return self.data.ndim

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def size(self):
        return self.data.size

    @property
    def T(self):
        return self.transpose()

    @property
    def is_leaf(self):
        return self._ctx is None

    def __len__(self):
        return len(self.data)

    def numpy(self):
        """The data as a NumPy array (copied from the GPU when needed)."""
        return self.data if isinstance(self.data, np.ndarray) else self.data.get()

    def item(self):
        return self.data.item()

    def detach(self):
        """A tensor sharing this data but cut from the graph."""
        return Tensor(self.data, requires_grad=False)

    def __repr__(self):
        grad = ", requires_grad=True" if self.requires_grad else ""
        return f"Tensor({np.array2string(np.asarray(self.numpy()), precision=4)}, dtype={self.dtype}{grad})"

    # ---- autograd ----
    def zero_grad(self):
        if self.grad is not None:
            self.grad[...] = 0
            self._grad_zero = True

    def backward(self, grad=None, retain_graph=False):
        """Accumulate d(self)/d(leaf) into ``leaf.grad`` for every leaf that requires a gradient.

        Args:
            grad: the gradient flowing into this tensor; defaults to 1 for a scalar.
            retain_graph: keep the recorded graph so ``backward`` can be called again.
        """
        if not self.requires_grad:
            raise RuntimeError("backward() on a tensor that does not require grad (no graph was recorded)")
        xp = get_array_module(self.data)
        if grad is None:
            if self.data.size != 1:
                raise RuntimeError(f"backward() without a gradient needs a scalar, got shape {self.shape}")
            grad = xp.ones_like(self.data)
        else:
            grad = grad.data if isinstance(grad, Tensor) else xp.asarray(grad, dtype=self.dtype)
            if grad.shape != self.shape:
                raise ValueError(f"backward(): gradient shape {grad.shape} != tensor shape {self.shape}")

        order = _topological_order(self)
        grads = {id(self): grad}
        # NOTE: nodes are popped, so that each activation (and what its op kept) is freed as soon as the
        # backward pass is past it rather than at the end: ResNet-50's training step peaked at 2,795 MiB
        # with the whole graph held through the backward pass
        while order:
            node = order.pop()
            g = grads.pop(id(node), None)
            if g is None:
                continue
            ctx = node._ctx
            if ctx is None:
                if node.requires_grad:
                    if node.grad is None:
                        # NOTE: always a copy: one op may hand the same array to several inputs.
                        node.grad = g.copy()
                    elif node._grad_zero:  # written, not added: its zeros may be deferred (FlatParameters)
                        node.grad[...] = g  # in place: .grad may be a view into a flat buffer
                    else:
                        node.grad += g
                    node._grad_zero = False
                continue
            handed = None
            if _writable_leaves(ctx.parents, grads):
                handed = ctx.grad_out = _grad_destinations(ctx.parents, grads)
            if profiler.ACTIVE is None:
                parent_grads = ctx.backward(g)
            else:
                t0 = time.perf_counter()
                parent_grads = ctx.backward(g)
                profiler.ACTIVE.add(type(ctx).__name__, "backward", time.perf_counter() - t0)
            ctx.grad_out = None
            if not isinstance(parent_grads, tuple):
                parent_grads = (parent_grads,)
            if handed is not None:
                for parent, dest, pg in zip(ctx.parents, handed, parent_grads):
                    if dest is not None and pg is not None:  # the op returned it instead of writing it:
                        parent._grad_zero = True  # the leaf's .grad is still to be written, not added to
            for parent, pg in zip(ctx.parents, parent_grads):
                if pg is None or not parent.requires_grad:
                    continue
                if pg.shape != parent.shape:
                    raise RuntimeError(
                        f"{type(ctx).__name__}.backward returned shape {pg.shape} for input {parent.shape}"
                    )
                key = id(parent)
                if key in grads:
                    grads[key] = grads[key] + pg
                else:
                    grads[key] = pg
            if not retain_graph:
                node._ctx = None
            del node, g, ctx, parent_grads

    # ---- operators (implemented in the op modules, bound at import of ember.engine) ----


def _topological_order(root):
    order, seen = [], set()
    stack = [(root, False)]
    while stack:
        node, done = stack.pop()
        if done:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        if node._ctx is not None:
            for p in node._ctx.parents:
                if p.requires_grad and id(p) not in seen:
                    stack.append((p, False))
    return order


def _writable_leaves(parents, grads):
    """Whether some parent is a leaf whose ``.grad`` holds zeros and has no gradient pending here."""
    for p in parents:
        if p._ctx is None and p.requires_grad and getattr(p, "_grad_zero", False) and id(p) not in grads:
            return True
    return False


def _grad_destinations(parents, grads):
    """Per parent, its zeroed ``.grad`` for the op to write the gradient into (then it returns None for
    that input), or None; a leaf given twice gets it once."""
    out = []
    for p in parents:
        if p._ctx is None and p.requires_grad and getattr(p, "_grad_zero", False) and id(p) not in grads:
            p._grad_zero = False  # from here on the op's write (or a later +=) owns it
            out.append(p.grad)
        else:
            out.append(None)
    return tuple(out)


def as_tensor(x, like=None):
    """Wrap ``x`` as a Tensor; plain numbers take the dtype of ``like`` when given.

    Args:
        x: a Tensor (returned as is), an array, or a number.
        like: an optional Tensor whose floating dtype a plain number takes.

    Example:
        >>> import numpy as np
        >>> from ember.engine import Tensor, as_tensor
        >>> as_tensor(2.0, like=Tensor(np.zeros(1, "float64")))
        Tensor(2., dtype=float64)
        >>> t = Tensor([1.0])
        >>> as_tensor(t) is t
        True
    """
    if isinstance(x, Tensor):
        return x
    if like is not None and isinstance(x, (int, float, np.number)) and like.dtype.kind == "f":
        xp = get_array_module(like.data)
        return Tensor(xp.asarray(x, dtype=like.dtype))
    return Tensor(x)


class Function:
    """One differentiable operation: ``forward`` on arrays, ``backward`` from output to input grads.

    Subclasses keep on ``self`` only what ``backward`` needs. ``self.needs_input_grad`` tells which
    inputs want a gradient, so ``backward`` can skip work (return ``None`` for those). ``apply`` runs
    the op on Tensors and records it in the graph when a gradient is needed.

    Example:
        >>> from ember.engine import Function, Tensor
        >>> class Cube(Function):
        ...     def forward(self, x):
        ...         self.x = x
        ...         return x ** 3
        ...     def backward(self, g):
        ...         return 3 * self.x ** 2 * g
        >>> x = Tensor([2.0], requires_grad=True)
        >>> y = Cube.apply(x)
        >>> y.backward()
        >>> y, x.grad.tolist()
        (Tensor([8.], dtype=float32, requires_grad=True), [12.0])
    """

    parents = ()
    # set by ``Tensor.backward`` while ``backward`` runs: per input, an array of zeros (a leaf's ``.grad``)
    # that the op may write that input's gradient into, returning None for it; None or a None entry: return it
    grad_out = None
    tracked = False
    # a list while ``ember.engine.replay`` records: each apply appends (op, inputs, kwargs, output)
    _tape = None  # set before forward: whether backward may run (grad enabled and an input needs it)

    def forward(self, *arrays, **kwargs):  # pragma: no cover - interface
        raise NotImplementedError

    def backward(self, grad):  # pragma: no cover - interface
        raise NotImplementedError

    @classmethod
    def apply(cls, *inputs, **kwargs):
        """Run the op on Tensors (or numbers); returns the output Tensor."""
        return cls.apply_with_context(*inputs, **kwargs)[0]

    @classmethod
    def apply_with_context(cls, *inputs, **kwargs):
        """Like ``apply``, but also returns the op instance (for values its forward computed)."""
        if all(type(t) is Tensor for t in inputs):  # the common case: no wrapping needed
            tensors = inputs
        else:
            like = next((t for t in inputs if isinstance(t, Tensor)), None)
            tensors = tuple(as_tensor(t, like=like) for t in inputs)
        ctx = cls()
        needs = ctx.needs_input_grad = tuple(t.requires_grad for t in tensors)
        track = True in needs and config.is_grad_enabled()
        ctx.tracked = track
        if profiler.ACTIVE is None:
            out = ctx.forward(*[t.data for t in tensors], **kwargs)
        else:
            t0 = time.perf_counter()
            out = ctx.forward(*[t.data for t in tensors], **kwargs)
            profiler.ACTIVE.add(cls.__name__, "forward", time.perf_counter() - t0)
        # NOTE: the ndarray test first: ``hasattr(out, "__array_interface__")`` builds a dict on every call
        # (about 2 us, ten times per layer step)
        if type(out) is not np.ndarray and (isinstance(out, np.generic) or not (
                hasattr(out, "__array_interface__") or hasattr(out, "__cuda_array_interface__"))):
            out = np.asarray(out)  # NumPy reductions return scalars, not 0-d arrays; numbers and lists
        result = Tensor.__new__(Tensor)
        result.data = out
        result.grad = None
        result.name = None
        result.requires_grad = track
        result._ctx = None
        if track:
            ctx.parents = tuple(tensors)
            result._ctx = ctx
        if Function._tape is not None:
            Function._tape.append((ctx, tensors, kwargs, result))
        return result, ctx
