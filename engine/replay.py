"""A model's training call recorded once and replayed: the same ops on new input arrays, without the
Python of the layers around them (CUDA-graph / ``torch.compile`` style, on CPU).

``StepReplay(fn)`` calls ``fn(x_tensor)`` normally the first time it sees an input shape and dtype,
recording every op (``Function.apply``) into a tape. Later calls with that shape run the recorded ops'
``forward`` on the new arrays and return a Tensor whose graph is one node (``Replayed``): its backward
runs the recorded ops' ``backward`` in reverse. The last op is applied normally, so that what reads the
output's node (a loss taking a softmax's logits) sees the op it expects.

Only for calls whose ops depend on nothing but the input, the parameters and numbers written in the
code: the caller checks that (``ember.layers`` models say so through ``Model.replayable``). A tape is
refused, and the call always runs normally, when an op reads a tensor of more than one value that is
neither the input, a parameter nor an earlier op's output, or takes an array among its keyword arguments
(other than an earlier op's output array, as the fused bias + ReLU + max pooling takes its ``y``).
"""
import time
import weakref

import numpy as np

from ember.engine import config, profiler
from ember.engine.tensor import Function, Tensor

MAX_TAPES = 4  # input shapes kept (an epoch's last, smaller batch is a second one)


def _holds_array(value):
    """Whether ``value`` is, or holds (in lists, tuples, dicts), an array: data the recording would freeze."""
    if isinstance(value, (list, tuple)):
        return any(_holds_array(v) for v in value)
    if isinstance(value, dict):
        return any(_holds_array(v) for v in value.values())
    return isinstance(value, (np.ndarray, Tensor)) or hasattr(value, "__cuda_array_interface__")


class _Tape(list):
    """(ctx, tensors, kwargs, result) of each op, in order."""


class _Plan:
    """A checked tape: per op, where each input comes from."""

    def __init__(self, tape, x, params):
        self.ok = False
        if len(tape) < 2:
            return
        slot_of = {id(entry[3]): i for i, entry in enumerate(tape)}
        data_slot_of = {id(entry[3].data): i for i, entry in enumerate(tape)}
        param_index = {id(p): i for i, p in enumerate(params)}
        self.steps = []
        for i, (ctx, tensors, kwargs, _) in enumerate(tape):
            sources = []
            for t in tensors:
                if t is x:
                    sources.append(("x", 0))
                elif id(t) in slot_of and slot_of[id(t)] < i:
                    sources.append(("slot", slot_of[id(t)]))
                elif id(t) in param_index:
                    sources.append(("param", param_index[id(t)]))
                elif t.data.size == 1 and not t.requires_grad and t._ctx is None:
                    sources.append(("const", t))  # a number in the code (``x * 2.0``)
                else:
                    return  # a tensor made outside the recorded ops: it may depend on the data
            arrays = {}  # keyword arguments that are an earlier op's output array (a fused op's ``y=``)
            for name, value in kwargs.items():
                j = data_slot_of.get(id(value)) if isinstance(value, np.ndarray) else None
                if j is not None and j < i:
                    arrays[name] = j
                elif _holds_array(value):
                    return
            self.steps.append((ctx, tuple(sources), (kwargs, arrays)))
        last_ctx, last_sources, (_, last_arrays) = self.steps[-1]
        slots = [index for kind, index in last_sources if kind == "slot"]
        if len(slots) != 1 or any(kind == "x" for kind, _ in last_sources) or last_arrays:
            return  # the last op must read exactly one recorded output (the replayed node's)
        self.body, self.tail = self.steps[:-1], self.steps[-1]
        self.out_slot = slots[0]
        self.last_out = None  # a weak reference to the latest output made with these ops' state
        self.detached = False  # whether the recorded ops still point at the recording's tensors
        self.ok = True

    def busy(self):
        """Whether the ops' saved state still belongs to a graph whose backward has not run yet."""
        out = self.last_out() if self.last_out is not None else None
        return out is not None and out._ctx is not None


class Replayed(Function):
    """The recorded ops (all but the last) as one node: inputs are the call's input and the parameters."""

    def forward(self, x, *params, plan=None):
        self.plan = plan
        if not plan.detached:  # the recording's graph is done with: let its tensors go
            for ctx, _, _ in plan.steps:
                ctx.parents = ()
            plan.detached = True
        slots = [None] * len(plan.body)
        for i, (ctx, sources, (kwargs, arrays)) in enumerate(plan.body):
            args = [slots[j] if kind == "slot" else params[j] if kind == "param" else x if kind == "x" else j.data
                    for kind, j in sources]
            if arrays:
                kwargs = {**kwargs, **{name: slots[j] for name, j in arrays.items()}}
            out = ctx.forward(*args, **kwargs) if profiler.ACTIVE is None else _timed(ctx.forward, ctx, "forward",
                                                                                       *args, **kwargs)
            if type(out) is not np.ndarray and isinstance(out, np.generic):
                out = np.asarray(out)
            slots[i] = out
        return slots[plan.out_slot]

    def backward(self, g):
        plan = self.plan
        n_params = len(self.parents) - 1
        grads = [None] * len(plan.body)
        grads[plan.out_slot] = g
        param_grads = [None] * n_params
        gx = None
        dest = self.grad_out  # zeroed .grad arrays of parameters (from Tensor.backward), or None
        written = [False] * n_params
        for i in range(len(plan.body) - 1, -1, -1):
            gi = grads[i]
            if gi is None:
                continue
            grads[i] = None
            ctx, sources, _ = plan.body[i]
            if not ctx.tracked:
                continue  # no input of this op needs a gradient (the input's own reshaping, say)
            handed = ()
            if dest is not None:
                outs = []
                for kind, j in sources:
                    d = dest[j + 1] if kind == "param" else None
                    if d is not None and not written[j] and param_grads[j] is None:
                        written[j] = True
                        outs.append(d)
                    else:
                        outs.append(None)
                ctx.grad_out = handed = tuple(outs)
            pgs = ctx.backward(gi) if profiler.ACTIVE is None else _timed(ctx.backward, ctx, "backward", gi)
            ctx.grad_out = None
            if not isinstance(pgs, tuple):
                pgs = (pgs,)
            for place, ((kind, j), pg) in enumerate(zip(sources, pgs)):
                if pg is None:
                    continue
                if handed and handed[place] is not None:
                    # NOTE: handed the .grad but returned the gradient instead of writing it: written here (the
                    # .grad's zeros may have been deferred, FlatParameters.zero_grad), later parts are added
                    handed[place][...] = pg
                    continue
                if kind == "slot":
                    grads[j] = pg if grads[j] is None else grads[j] + pg
                elif kind == "param":
                    if written[j]:
                        d = dest[j + 1]
                        d += pg  # its op wrote the first part in place
                    else:
                        param_grads[j] = pg if param_grads[j] is None else param_grads[j] + pg
                else:
                    gx = pg if gx is None else gx + pg
        if dest is not None:
            for j in range(n_params):
                if dest[j + 1] is not None and not written[j] and param_grads[j] is None:
                    dest[j + 1][...] = 0  # handed but reached by no gradient: its zeros (they may have been deferred)
        return (gx, *[None if written[j] else param_grads[j] for j in range(n_params)])


def _timed(method, ctx, phase, *args, **kwargs):
    """``method(*args)`` timed into the active profile under the op's name; the same time is taken off
    the enclosing ``Replayed`` entry, which then shows only the replay's own bookkeeping."""
    t0 = time.perf_counter()
    out = method(*args, **kwargs)
    seconds = time.perf_counter() - t0
    profiler.ACTIVE.add(type(ctx).__name__, phase, seconds)
    profiler.ACTIVE.add("Replayed", phase, -seconds)
    profiler.ACTIVE.calls[("Replayed", phase)] -= 1
    return out


class StepReplay:
    """Calls ``fn`` (a Tensor -> Tensor function, such as a model's training call) and replays its
    recorded ops on later calls with the same input shape and dtype.

    Args:
        fn: the function; it must compute its output from its input and ``params`` through ops only.
        params: the Tensors (parameters) that ``fn`` reads besides its input.

    Example:
        >>> import numpy as np
        >>> from ember.engine import Tensor, functional as F
        >>> from ember.engine.replay import StepReplay
        >>> w = Tensor(np.ones((3, 2)), requires_grad=True)
        >>> step = StepReplay(lambda x: F.relu(F.matmul(F.reshape(x, (4, 3)), w)), [w])
        >>> step(np.full((4, 3), 1.0)).sum().backward()  # recorded
        >>> out = step(np.full((4, 3), 2.0))  # replayed
        >>> out.numpy()[0].tolist(), step.replays
        ([6.0, 6.0], 1)
        >>> w.zero_grad()
        >>> out.sum().backward()
        >>> w.grad.tolist()[0]
        [8.0, 8.0]
    """

    def __init__(self, fn, params):
        self.fn = fn
        self.params = list(params)
        self.plans = {}
        self.replays = 0

    def _key(self, x):
        return (x.shape, x.dtype.str, config.is_grad_enabled(), tuple(p.requires_grad for p in self.params))

    def __call__(self, x):
        data = x.data if isinstance(x, Tensor) else x
        key = self._key(data)
        plan = self.plans.get(key)
        if plan is None:
            return self._record(key, data)
        if not plan.ok or plan.busy():
            return self.fn(Tensor(data))
        self.replays += 1
        xt = Tensor(data)
        mid = Replayed.apply(xt, *self.params, plan=plan)
        ctx, sources, (kwargs, _) = plan.tail
        tensors = [mid if kind == "slot" else xt if kind == "x" else self.params[j] if kind == "param" else j
                   for kind, j in sources]
        out = type(ctx).apply(*tensors, **kwargs)
        plan.last_out = weakref.ref(out)
        return out

    def _record(self, key, data):
        xt = Tensor(data)
        tape = _Tape()
        previous, Function._tape = Function._tape, tape
        try:
            out = self.fn(xt)
        finally:
            Function._tape = previous
        plan = _Plan(tape, xt, self.params) if isinstance(out, Tensor) and tape and tape[-1][3] is out \
            else _Plan([], xt, self.params)
        if len(self.plans) >= MAX_TAPES:
            self.plans.pop(next(iter(self.plans)))
        if plan.ok:
            plan.last_out = weakref.ref(out)  # the recorded ops' state belongs to this graph until its backward
        self.plans[key] = plan
        return out
