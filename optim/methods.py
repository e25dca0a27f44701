"""Optimization methods: a pure in-place update function per rule, and a small stateful class.

The pure functions work on any 1-D slice of the flat parameter buffer, so the local loop, the
Spark tasks (each owning one block) and the tests share one implementation. Each class keeps its
state (momentum, moments, step count) as arrays aligned with the slice it updates; ``state_dict``
and ``load_state_dict`` save and restore it exactly. Conventions follow PyTorch (which BigDL's
``optim`` mirrors): weight decay is added to the gradient (L2), except in AdamW.
"""
import dataclasses
import math

from ember.engine.backend import backend_name, get_array_module
from ember.kernels import get_kernel
from ember.kernels.registry import has_kernel


def _kernel(name, arr):
    return get_kernel(name, backend_name(get_array_module(arr)))


def _decoupled_decay(param, lr, weight_decay, decoupled):
    """Keras 3's weight decay (``decoupled``): ``param -= lr * weight_decay * param`` before the step; returns
    the L2 coefficient left for the gradient (0 then, else ``weight_decay``)."""
    if decoupled and weight_decay:
        param -= (lr * weight_decay) * param
        return 0.0
    return weight_decay


def sgd_update(param, grad, state, lr, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0,
               learning_rate_decay=0.0, decoupled=False, keras_momentum=False):
    """SGD with optional momentum, dampening, Nesterov, L2 weight decay and BigDL's learning-rate decay, in place.

        lr <- lr / (1 + n * learning_rate_decay)   (n: the updates done before this one)
        g <- grad + weight_decay * param
        v <- g on the first step, else momentum * v + (1 - dampening) * g
        d <- g + momentum * v (Nesterov) or v (momentum) or g (plain)
        param <- param - lr * d

    Args:
        param: a float array (a slice of the flat parameter buffer), updated in place.
        grad: its gradient, same shape.
        state: a dict this rule keeps its per-element state in (empty at the first step).
        lr: the learning rate; momentum, dampening, nesterov, weight_decay, learning_rate_decay: as above.
        decoupled: Keras 3's weight decay instead of L2: ``param -= lr * weight_decay * param`` first.
        keras_momentum: Keras's momentum, whose buffer holds the increments ``m <- momentum * m - lr * g`` and
            ``param <- param + m`` (Nesterov: ``param + momentum * m - lr * g``): the same as above while the rate
            is constant, and exact when it changes (a schedule, ReduceLROnPlateau) or is 0.

    Example:
        >>> import numpy as np
        >>> from ember.optim import sgd_update
        >>> param, state = np.array([1.0, -2.0]), {}
        >>> sgd_update(param, np.array([0.5, 0.5]), state, lr=0.1)
        >>> param  # param - lr * grad
        array([ 0.95, -2.05])
    """
    step = _sgd_step(param, state, lr, momentum, nesterov, weight_decay, learning_rate_decay, decoupled,
                     keras_momentum)
    if step is not None:
        lr, weight_decay, buf, first = step
        _kernel("sgd_update", param)(param, grad, buf, lr, momentum, dampening, nesterov, weight_decay, first)


def sgd_update_mean(param, parts, count, state, lr, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0,
                    learning_rate_decay=0.0, decoupled=False, keras_momentum=False):
    """``sgd_update`` with the gradient ``(parts[0] + parts[1]) / count``, the mean that a distributed owner
    forms from two gradient sums and the number of samples behind them; the same bits as that sum, that
    division (in the arrays' dtype, in that order) and ``sgd_update``, in one pass over the arrays on the CPU
    (the mean is never stored).

    Args:
        param: a float array (a slice of the flat parameter buffer), updated in place.
        parts: two arrays of its shape whose sum is the gradient sum.
        count: the number of samples it sums (an int > 0).
        state, lr, and the rest: as in ``sgd_update``.

    Example:
        >>> import numpy as np
        >>> from ember.optim.methods import sgd_update_mean
        >>> param = np.array([1.0, -2.0])
        >>> sgd_update_mean(param, (np.array([0.5, 1.0]), np.array([0.5, 0.0])), 2, {}, lr=0.1)
        >>> param  # param - lr * (a + b) / 2
        array([ 0.95, -2.05])
    """
    step = _sgd_step(param, state, lr, momentum, nesterov, weight_decay, learning_rate_decay, decoupled,
                     keras_momentum)
    if step is not None:
        lr, weight_decay, buf, first = step
        _kernel("sgd_update_mean", param)(param, parts[0], parts[1], count, buf, lr, momentum, dampening, nesterov,
                                          weight_decay, first)


sgd_update_mean.kernel = "sgd_update_mean"  # what OptimMethod.fuses_mean asks the kernel registry for


def _sgd_step(param, state, lr, momentum, nesterov, weight_decay, learning_rate_decay, decoupled, keras_momentum):
    """What ``sgd_update`` does before its kernel: (lr, L2 weight decay, momentum buffer or None, whether it is
    the buffer's first step) for the kernel, or None when the step is done without a gradient (Keras's
    momentum at a rate of 0)."""
    xp = get_array_module(param)
    if learning_rate_decay:
        n = state.get("neval", 0)
        lr = lr / (1 + n * learning_rate_decay)
        state["neval"] = n + 1
    weight_decay = _decoupled_decay(param, lr, weight_decay, decoupled)
    buf, first = None, False
    if momentum:
        first = "momentum_buffer" not in state
        if first:
            state["momentum_buffer"] = xp.empty_like(param)
        buf = state["momentum_buffer"]
    if keras_momentum and momentum:
        # Keras's buffer m is -r * v for the rate r the buffer was last scaled for (state["momentum_rate"]), so
        # that the fused kernel runs unchanged while the rate is constant.
        # NOTE: W1's 535,818 float32 weights at load 4: a form with an extra -lr * g pass took 725-1247 us a
        # step against the kernel's 331-635; this one (constant rate) a median 303 us against BigDL SGD's 342
        # (7 alternating runs, noisy). The rescaling below is one in-place pass, only when the rate changes
        rate = state.get("momentum_rate", lr)
        if not first and lr != rate:
            if lr != 0:
                buf *= rate / lr  # m = -rate * v = -lr * (rate / lr * v); a rate of 0 had m = 0
            else:  # m <- momentum * m; param <- param + m (Nesterov: + momentum * m); the buffer keeps its rate
                buf *= momentum
                param -= (rate * momentum if nesterov else rate) * buf
                return None
        state["momentum_rate"] = lr
    return lr, weight_decay, buf, first


def adam_update(param, grad, state, lr, beta_1=0.9, beta_2=0.999, epsilon=1e-8, weight_decay=0.0,
                decoupled=False, keras_epsilon=False):
    """Adam (and AdamW when ``decoupled``), in place; t counts steps from 1.

        AdamW: param <- param * (1 - lr * weight_decay); Adam: g <- grad + weight_decay * param
        m <- beta_1 m + (1 - beta_1) g;   v <- beta_2 v + (1 - beta_2) g^2
        param <- param - lr * (m / (1 - beta_1^t)) / (sqrt(v / (1 - beta_2^t)) + epsilon)

    With ``keras_epsilon`` the epsilon is added before the bias correction, as Keras (and TensorFlow) do:
    ``param <- param - lr sqrt(1 - beta_2^t) / (1 - beta_1^t) * m / (sqrt(v) + epsilon)``, which is the
    rule above with ``epsilon / sqrt(1 - beta_2^t)`` in place of ``epsilon``.

    Args:
        param: a float array (a slice of the flat parameter buffer), updated in place.
        grad: its gradient, same shape.
        state: a dict this rule keeps its per-element state in (empty at the first step).
        lr, beta_1, beta_2, epsilon, weight_decay: as above; decoupled: AdamW's decay.

    Example:
        >>> import numpy as np
        >>> from ember.optim import adam_update
        >>> param, state = np.array([1.0, -2.0]), {}
        >>> adam_update(param, np.array([0.5, -0.5]), state, lr=0.1)
        >>> param  # the first step moves each element by lr
        array([ 0.9, -1.9])
    """
    xp = get_array_module(param)
    t = state["step"] = state.get("step", 0) + 1
    m = state.setdefault("m", xp.zeros_like(param))
    v = state.setdefault("v", xp.zeros_like(param))
    if keras_epsilon:
        epsilon = epsilon / math.sqrt(1.0 - beta_2 ** t)
    _kernel("adam_update", param)(param, grad, m, v, t, lr, beta_1, beta_2, epsilon, weight_decay, decoupled)


def adamax_update(param, grad, state, lr, beta_1=0.9, beta_2=0.999, epsilon=1e-8, weight_decay=0.0,
                  decoupled=False, keras_epsilon=False):
    """Adamax, in place: m <- beta_1 m + (1 - beta_1) g; u <- max(beta_2 u, |g| + epsilon);
    param <- param - lr / (1 - beta_1^t) * m / u (with g = grad + weight_decay * param).

    With ``keras_epsilon`` the epsilon goes where Keras puts it: u <- max(beta_2 u, |g|) and
    param <- param - lr / (1 - beta_1^t) * m / (u + epsilon); with ``decoupled``, Keras 3's weight decay
    (``param -= lr * weight_decay * param`` before the step) instead of L2.

    Args:
        param: a float array (a slice of the flat parameter buffer), updated in place.
        grad: its gradient, same shape.
        state: a dict this rule keeps its per-element state in (empty at the first step).
        lr, beta_1, beta_2, epsilon, weight_decay, decoupled, keras_epsilon: as above.

    Example:
        >>> import numpy as np
        >>> from ember.optim import adamax_update
        >>> param, state = np.array([1.0, -2.0]), {}
        >>> adamax_update(param, np.array([0.5, -0.5]), state, lr=0.1)
        >>> param  # the first step moves each element by lr
        array([ 0.9, -1.9])
    """
    xp = get_array_module(param)
    t = state["step"] = state.get("step", 0) + 1
    weight_decay = _decoupled_decay(param, lr, weight_decay, decoupled)
    g = grad + weight_decay * param if weight_decay else grad
    m = state.setdefault("m", xp.zeros_like(param))
    u = state.setdefault("u", xp.zeros_like(param))
    m *= beta_1
    m += (1 - beta_1) * g
    if keras_epsilon:
        xp.maximum(u * beta_2, xp.abs(g), out=u)
        param -= (lr / (1 - beta_1 ** t)) * m / (u + epsilon)
    else:
        xp.maximum(u * beta_2, xp.abs(g) + epsilon, out=u)
        param -= (lr / (1 - beta_1 ** t)) * m / u


def rmsprop_update(param, grad, state, lr, rho=0.9, epsilon=1e-7, momentum=0.0, centered=False, weight_decay=0.0,
                   decoupled=False, keras_epsilon=False):
    """RMSprop, in place: v <- rho v + (1 - rho) g^2; with ``centered``, a <- rho a + (1 - rho) g and
    the denominator uses v - a^2; d = g / (sqrt(.) + epsilon); with momentum b <- momentum b + d,
    param <- param - lr * b, else param <- param - lr * d (g = grad + weight_decay * param).

    With ``keras_epsilon`` the epsilon is inside the square root, as Keras's: d = g / sqrt(. + epsilon), and
    the momentum buffer accumulates lr * d (the same as above for a constant lr); with ``decoupled``,
    Keras 3's weight decay (``param -= lr * weight_decay * param`` before the step) instead of L2.

    Args:
        param: a float array (a slice of the flat parameter buffer), updated in place.
        grad: its gradient, same shape.
        state: a dict this rule keeps its per-element state in (empty at the first step).
        lr, rho, epsilon, momentum, centered, weight_decay, decoupled, keras_epsilon: as above.

    Example:
        >>> import numpy as np
        >>> from ember.optim import rmsprop_update
        >>> param, state = np.array([1.0, -2.0]), {}
        >>> rmsprop_update(param, np.array([0.5, -0.5]), state, lr=0.1)
        >>> param  # lr * g / sqrt(0.1 * g^2) = 0.316
        array([ 0.68377243, -1.68377243])
    """
    xp = get_array_module(param)
    weight_decay = _decoupled_decay(param, lr, weight_decay, decoupled)
    g = grad + weight_decay * param if weight_decay else grad
    v = state.setdefault("v", xp.zeros_like(param))
    v *= rho
    v += (1 - rho) * g * g
    if centered:
        a = state.setdefault("a", xp.zeros_like(param))
        a *= rho
        a += (1 - rho) * g
        var = v - a * a
    else:
        var = v
    if keras_epsilon:  # Keras: increment = lr * g / sqrt(var + eps); momentum accumulates the increment
        d = (lr * g) / xp.sqrt(var + epsilon)
        if momentum:
            b = state.setdefault("b", xp.zeros_like(param))
            b *= momentum
            b += d
            d = b
        param -= d
        return
    d = g / (xp.sqrt(var) + epsilon)
    if momentum:
        b = state.setdefault("b", xp.zeros_like(param))
        b *= momentum
        b += d
        d = b
    param -= lr * d


def adagrad_update(param, grad, state, lr, lr_decay=0.0, initial_accumulator_value=0.0, epsilon=1e-10,
                   weight_decay=0.0, decoupled=False, keras_epsilon=False):
    """Adagrad, in place: s <- s + g^2; param <- param - lr / (1 + (t - 1) lr_decay) * g / (sqrt(s) + epsilon),
    with s starting at ``initial_accumulator_value`` and g = grad + weight_decay * param.

    With ``keras_epsilon`` the epsilon is inside the square root, as Keras's: g / sqrt(s + epsilon); with
    ``decoupled``, Keras 3's weight decay (``param -= lr * weight_decay * param`` before the step) instead of L2.

    Args:
        param: a float array (a slice of the flat parameter buffer), updated in place.
        grad: its gradient, same shape.
        state: a dict this rule keeps its per-element state in (empty at the first step).
        lr, lr_decay, initial_accumulator_value, epsilon, weight_decay, decoupled, keras_epsilon: as above.

    Example:
        >>> import numpy as np
        >>> from ember.optim import adagrad_update
        >>> param, state = np.array([1.0, -2.0]), {}
        >>> adagrad_update(param, np.array([0.5, -0.5]), state, lr=0.1)
        >>> param  # lr * g / sqrt(g^2) = lr
        array([ 0.9, -1.9])
    """
    xp = get_array_module(param)
    t = state["step"] = state.get("step", 0) + 1
    weight_decay = _decoupled_decay(param, lr, weight_decay, decoupled)
    g = grad + weight_decay * param if weight_decay else grad
    if "sum" not in state:
        state["sum"] = xp.full_like(param, initial_accumulator_value)
    s = state["sum"]
    s += g * g
    rate = lr / (1 + (t - 1) * lr_decay)
    if keras_epsilon:
        param -= (rate * g) / xp.sqrt(s + epsilon)
    else:
        param -= rate * g / (xp.sqrt(s) + epsilon)


def adadelta_update(param, grad, state, lr=1.0, rho=0.9, epsilon=1e-6, weight_decay=0.0, decoupled=False):
    """Adadelta, in place: v <- rho v + (1 - rho) g^2; d = sqrt(u + eps) / sqrt(v + eps) * g;
    u <- rho u + (1 - rho) d^2; param <- param - lr * d (g = grad + weight_decay * param). Keras's rule is
    the same; with ``decoupled``, Keras 3's weight decay (``param -= lr * weight_decay * param`` first).

    Args:
        param: a float array (a slice of the flat parameter buffer), updated in place.
        grad: its gradient, same shape.
        state: a dict this rule keeps its per-element state in (empty at the first step).
        lr, rho, epsilon, weight_decay, decoupled: as above.

    Example:
        >>> import numpy as np
        >>> from ember.optim import adadelta_update
        >>> param, state = np.array([1.0, -2.0]), {}
        >>> adadelta_update(param, np.array([0.5, -0.5]), state, lr=1.0)
        >>> param  # sqrt(eps) / sqrt(0.1 * g^2 + eps) * g
        array([ 0.99683779, -1.99683779])
    """
    xp = get_array_module(param)
    weight_decay = _decoupled_decay(param, lr, weight_decay, decoupled)
    g = grad + weight_decay * param if weight_decay else grad
    v = state.setdefault("v", xp.zeros_like(param))
    u = state.setdefault("u", xp.zeros_like(param))
    v *= rho
    v += (1 - rho) * g * g
    d = xp.sqrt(u + epsilon) / xp.sqrt(v + epsilon) * g
    u *= rho
    u += (1 - rho) * d * d
    param -= lr * d


def _lbfgs_direction(flat_grad, old_dirs, old_stps, ro, h_diag):
    """d = -H g by the two-loop recursion over the stored (y, s) pairs, with H0 = h_diag."""
    alphas = [0.0] * len(old_dirs)
    q = -flat_grad
    for i in range(len(old_dirs) - 1, -1, -1):
        alphas[i] = float(old_stps[i] @ q) * ro[i]
        q -= alphas[i] * old_dirs[i]
    d = r = q * h_diag
    for i in range(len(old_dirs)):
        beta = float(old_dirs[i] @ r) * ro[i]
        r += (alphas[i] - beta) * old_stps[i]
    return d


def lbfgs_optimize(feval, param, grad, state, lr=1.0, max_iter=20, max_eval=None, tolerance_grad=1e-7,
                   tolerance_change=1e-9, history_size=100):
    """L-BFGS without line search, in place; returns the first loss (the rule and arguments: ``LBFGS``).

    Example (``feval()`` returns the loss at ``param`` and fills ``grad``; ``state`` keeps the history):
        >>> import numpy as np; from ember.optim import lbfgs_optimize
        >>> p, g = np.array([3.0]), np.zeros(1)
        >>> def feval(): g[:] = 2 * (p - 1); return float((p[0] - 1) ** 2)
        >>> lbfgs_optimize(feval, p, g, {}), p.round(4).tolist()
        (4.0, [1.0])
    """
    xp = get_array_module(param)
    max_eval = max_iter * 5 // 4 if max_eval is None else max_eval
    loss = orig_loss = float(feval())
    flat_grad = grad.copy()
    evals = 1
    state["func_evals"] = state.get("func_evals", 0) + 1
    if float(xp.abs(flat_grad).max()) <= tolerance_grad:
        return orig_loss
    d, t = state.get("d"), state.get("t")
    old_dirs = state.setdefault("old_dirs", [])
    old_stps = state.setdefault("old_stps", [])
    ro = state.setdefault("ro", [])
    h_diag = state.get("H_diag", 1.0)
    prev_flat_grad = state.get("prev_flat_grad")
    n_iter = 0
    while n_iter < max_iter:
        n_iter += 1
        state["n_iter"] = state.get("n_iter", 0) + 1
        if state["n_iter"] == 1:
            d = -flat_grad
            old_dirs.clear(), old_stps.clear(), ro.clear()
            h_diag = 1.0
        else:
            y = flat_grad - prev_flat_grad
            s = d * t
            ys = float(y @ s)
            if ys > 1e-10:
                if len(old_dirs) == history_size:
                    old_dirs.pop(0), old_stps.pop(0), ro.pop(0)
                old_dirs.append(y), old_stps.append(s), ro.append(1.0 / ys)
                h_diag = ys / float(y @ y)
            d = _lbfgs_direction(flat_grad, old_dirs, old_stps, ro, h_diag)
        prev_flat_grad = flat_grad.copy()
        prev_loss = loss
        t = min(1.0, 1.0 / float(xp.abs(flat_grad).sum())) * lr if state["n_iter"] == 1 else lr
        if float(flat_grad @ d) > -tolerance_change:
            break
        param += t * d
        if n_iter != max_iter:
            loss = float(feval())
            flat_grad = grad.copy()
            evals += 1
            state["func_evals"] += 1
        if n_iter == max_iter or evals >= max_eval or float(xp.abs(flat_grad).max()) <= tolerance_grad:
            break
        if float(xp.abs(d * t).max()) <= tolerance_change or abs(loss - prev_loss) < tolerance_change:
            break
    state.update(d=d, t=t, H_diag=h_diag, prev_flat_grad=prev_flat_grad)
    return orig_loss


@dataclasses.dataclass(frozen=True)
class StepOptions:
    """Keras 3's optimizer options that act around the update rule (all off for ``ember.optim``'s BigDL
    methods; ``ember.optimizers`` sets them from Keras's arguments).

    Attributes:
        clipnorm: clip each variable's gradient to this L2 norm: ``g * clipnorm / max(|g|, clipnorm)``
            (applied by the local and the Spark engines, which know where each variable lies in the flat buffer).
        clipvalue: clip each gradient element into ``[-clipvalue, clipvalue]``.
        global_clipnorm: scale all gradients by ``min(1, global_clipnorm / |all gradients|)``.
        use_ema, ema_momentum, ema_overwrite_frequency: an exponential moving average of the weights, kept in
            the method's ``state["ema"]`` (per element, so any slice of the buffer keeps its own):
            ``ema <- m * ema + (1 - m) * param`` after each update, with m = 0 at the first update and
            ``ema_momentum`` after; the weights are overwritten by it every ``ema_overwrite_frequency``
            updates and when training ends (``TrainingLoop`` does that, as Keras's ``fit`` does).
        schedule: a callable ``step -> learning rate`` (Keras's ``LearningRateSchedule``), asked with the
            method's update count before each update; it replaces ``learning_rate`` and any ``lr`` given.
        loss_scale_factor: the engines multiply the loss by it before the backward pass (Keras's ``scale_loss``)
            and ``update`` divides the gradient by it first, before accumulation and clipping (Keras's ``apply``).
        gradient_accumulation_steps: N >= 2: ``update`` adds each gradient to ``state["accumulated"]`` and applies
            the rule (after clipping) to the mean of the last N only at every Nth call, as Keras 3 does. Every call
            counts in ``state["iterations"]`` (Keras's ``_iterations``, which a schedule is asked with); the
            ``iterations`` property is that count // N (Keras's ``optimizer.iterations``), which the weight average
            (updated at every call, as Keras's) uses for its first step and its overwrite frequency.

    Example:
        >>> from ember.optim.methods import StepOptions
        >>> StepOptions(clipnorm=1.0).clipping_given()
        ['clipnorm']
    """
    clipnorm: float = None
    clipvalue: float = None
    global_clipnorm: float = None
    use_ema: bool = False
    ema_momentum: float = 0.99
    ema_overwrite_frequency: int = None
    schedule: object = None
    loss_scale_factor: float = None
    gradient_accumulation_steps: int = None

    def clipping_given(self):
        """The names of the clipping options that are on (Keras: a value of 0 or None is off)."""
        return [k for k in ("clipnorm", "clipvalue", "global_clipnorm") if getattr(self, k)]

    def check(self, who):
        """Clear errors for what Keras refuses (and for negative values, which Keras silently ignores)."""
        given = [k for k in ("clipnorm", "clipvalue", "global_clipnorm") if getattr(self, k) is not None]
        if len(given) > 1:  # as Keras: given at all (even 0), not only on
            raise ValueError(f"{who}: only one of clipnorm, clipvalue and global_clipnorm can be set (as in Keras), "
                             f"got clipnorm={self.clipnorm}, clipvalue={self.clipvalue}, "
                             f"global_clipnorm={self.global_clipnorm}")
        for k in ("clipnorm", "clipvalue", "global_clipnorm"):
            v = getattr(self, k)
            if v is not None and not (isinstance(v, (int, float)) and v >= 0):
                raise ValueError(f"{who}: {k} must be a number > 0 (or None), got {v!r}")
        n = self.gradient_accumulation_steps
        if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n < 2):
            # Keras's words: "`gradient_accumulation_steps` must be an integer >= 2"
            raise ValueError(f"{who}: gradient_accumulation_steps must be an integer >= 2 (or None), got {n!r}")
        f = self.loss_scale_factor
        if f is not None and (isinstance(f, bool) or not isinstance(f, (int, float)) or not 0 < f < math.inf):
            raise ValueError(f"{who}: loss_scale_factor must be a finite number > 0 (or None), got {f!r}")
        if self.use_ema:
            if not 0 <= self.ema_momentum <= 1:
                raise ValueError(f"{who}: ema_momentum must be in [0, 1], got {self.ema_momentum!r}")
            f = self.ema_overwrite_frequency
            if f is not None and (not isinstance(f, int) or isinstance(f, bool) or f < 1):
                raise ValueError(f"{who}: ema_overwrite_frequency must be an integer >= 1 or None, got {f!r}")


def moving_average_update(param, state, step, momentum, overwrite_frequency=None):
    """Keras 3's weight average after update ``step + 1`` (``step``: the updates made before it), in place:
    ``ema <- m * ema + (1 - m) * param`` with m = 0 when ``step`` is 0, else ``momentum``; then
    ``param <- ema`` when ``(step + 1) % overwrite_frequency == 0``. ``state["ema"]`` holds the average.

    Args:
        param: the weights (a slice of the flat buffer) after the update; state: the method's state dict.
        step, momentum, overwrite_frequency: as above.

    Example:
        >>> import numpy as np
        >>> from ember.optim.methods import moving_average_update
        >>> p, state = np.array([1.0]), {}
        >>> moving_average_update(p, state, 0, 0.5); p[0] = 3.0
        >>> moving_average_update(p, state, 1, 0.5, overwrite_frequency=2); p
        array([2.])
    """
    xp = get_array_module(param)
    if "ema" not in state:
        state["ema"] = xp.zeros_like(param)
    ema = state["ema"]
    m = momentum if step != 0 else 0.0
    ema *= m
    ema += (1 - m) * param
    if overwrite_frequency and (step + 1) % overwrite_frequency == 0:
        param[...] = ema


def _copy_state_value(value):
    if isinstance(value, list):
        return [_copy_state_value(v) for v in value]
    return value.copy() if hasattr(value, "copy") else value


class OptimMethod:
    """Base class: ``update(param, grad)`` applies the rule in place to (a slice of) the flat buffer.

    ``learning_rate`` may be changed between steps (schedules do); hyper-parameters are in
    ``hyper``; per-element state lives in ``state``; ``state_dict``/``load_state_dict`` save and
    restore all of it. Subclasses set ``_rule`` to one of the ``*_update`` functions.

    Args:
        learning_rate: the step size, > 0.
        **hyper: the rule's other arguments.

    Example:
        >>> import numpy as np
        >>> from ember.optim import OptimMethod, sgd_update
        >>> class PlainSGD(OptimMethod):
        ...     _rule = staticmethod(sgd_update)
        >>> opt = PlainSGD(0.5)
        >>> param = np.array([1.0, 2.0])
        >>> opt.update(param, np.array([1.0, 1.0]))
        >>> param
        array([0.5, 1.5])
        >>> opt
        PlainSGD(learning_rate=0.5)
    """

    _rule = None
    _mean_rule = None  # the rule taking the gradient as (two parts, a count), fused (see update_mean)
    options = StepOptions()  # Keras's clipping, weight average and schedule: off (ember.optimizers sets them)
    counts_iterations = False  # keep Keras's update count in state["iterations"]

    def __init__(self, learning_rate, **hyper):
        if learning_rate <= 0:
            raise ValueError(f"{type(self).__name__}: learning_rate must be > 0, got {learning_rate!r}")
        self.learning_rate = float(learning_rate)
        self.hyper = hyper
        self.state = {}

    @property
    def iterations(self):
        """The updates this method has made (Keras's ``optimizer.iterations``; counted by Keras's optimizers);
        with ``gradient_accumulation_steps`` N, the gradients given // N, as Keras's."""
        calls = int(self.state.get("iterations", 0))
        n = self.options.gradient_accumulation_steps
        return calls // n if n else calls

    def learning_rate_at(self, lr=None, step=None):
        """The rate of the next update: the schedule's value at ``step`` (default: the gradients given so far,
        Keras's ``_iterations``) when ``options.schedule`` is set, else ``lr`` (default ``learning_rate``)."""
        schedule = self.options.schedule
        if schedule is not None:
            return float(schedule(int(self.state.get("iterations", 0)) if step is None else step))
        return self.learning_rate if lr is None else lr

    def optimize(self, feval, param, grad, lr=None, clip=None):
        """One step, BigDL style: ``feval()`` computes the loss and fills ``grad`` (in place); the rule
        then updates ``param`` in place. Returns the loss. LBFGS overrides this to evaluate repeatedly.
        ``lr`` (e.g. from a schedule) replaces ``learning_rate`` for this step; ``clip(grad)`` (in place) clips
        the gradient the rule receives (see ``update``)."""
        loss = feval()
        o = self.options
        if clip is not None and o.loss_scale_factor is None and not o.gradient_accumulation_steps:
            clip(grad)  # the same order as in update; a subclass of one's own may define update(param, grad, lr)
            clip = None
        if clip is None:
            self.update(param, grad, lr)
        else:
            self.update(param, grad, lr, clip)
        return loss

    def update(self, param, grad, lr=None, clip=None):
        """Apply one gradient, in place, as Keras 3's ``optimizer.apply``: divide it by ``loss_scale_factor``,
        accumulate it (``gradient_accumulation_steps``: the rule runs at every Nth call, on the mean), clip it
        with ``clip(grad)`` when given, run the rule, update the weight average (``use_ema``) and count the call.
        ``grad`` may be changed (it is scaled and clipped in place)."""
        if param.shape != grad.shape:
            raise ValueError(f"{type(self).__name__}.update: param shape {param.shape} != grad shape {grad.shape}")
        o = self.options
        step = self.state.get("iterations", 0)
        if o.loss_scale_factor is not None:
            grad /= o.loss_scale_factor
        n = o.gradient_accumulation_steps
        applies = True
        if n:
            accumulated = self.state.get("accumulated")
            if accumulated is None:
                accumulated = self.state["accumulated"] = get_array_module(param).zeros_like(param)
            applies = (step + 1) % n == 0
            if applies:  # Keras: (g + accumulated) / N; the accumulator back to 0
                grad += accumulated
                grad /= n
                accumulated[...] = 0
            else:
                accumulated += grad
        if applies:
            if clip is not None:
                clip(grad)
            type(self)._rule(param, grad, self.state, self.learning_rate_at(lr, step), **self.hyper)
        self._updated(param, step)

    def fuses_mean(self, param):
        """Whether ``update_mean`` on ``param`` runs in one pass: the rule has a fused form (SGD's) with a
        kernel for ``param``'s device, and no ``loss_scale_factor`` or ``gradient_accumulation_steps`` needs
        the mean gradient first."""
        rule, o = type(self)._mean_rule, self.options
        return (rule is not None and o.loss_scale_factor is None and not o.gradient_accumulation_steps
                and has_kernel(rule.kernel, backend_name(get_array_module(param))))

    def update_mean(self, param, parts, count, lr=None):
        """``update(param, (parts[0] + parts[1]) / count, lr)``: the update with the mean of two gradient sums
        over ``count`` samples (the distributed owner's), in one pass where ``fuses_mean`` (the same bits);
        otherwise the mean is formed first.

        Example:
            >>> import numpy as np
            >>> from ember.optim import SGD
            >>> param = np.array([1.0])
            >>> SGD(0.5).update_mean(param, (np.array([1.0]), np.array([3.0])), 4)
            >>> param  # 1 - 0.5 * (1 + 3) / 4
            array([0.5])
        """
        a, b = parts
        if not param.shape == a.shape == b.shape:
            raise ValueError(f"{type(self).__name__}.update_mean: param shape {param.shape}, gradient parts' shapes "
                             f"{a.shape} and {b.shape}: expected all equal")
        if not self.fuses_mean(param):
            grad = get_array_module(param).add(a, b)
            grad /= count
            self.update(param, grad, lr)
            return
        step = self.state.get("iterations", 0)
        type(self)._mean_rule(param, parts, count, self.state, self.learning_rate_at(lr, step), **self.hyper)
        self._updated(param, step)

    def _updated(self, param, step):
        """After the rule (or a call that only accumulated): Keras's weight average and the call count."""
        o = self.options
        n = o.gradient_accumulation_steps
        if o.use_ema:  # (Keras updates the average at every call; its step is the updates made, // N)
            moving_average_update(param, self.state, step // n if n else step, o.ema_momentum,
                                  o.ema_overwrite_frequency)
        if self.counts_iterations or o.use_ema or o.schedule is not None or n:
            self.state["iterations"] = step + 1

    def state_dict(self):
        """Everything needed to continue exactly: learning rate, hyper-parameters, state arrays (copies)."""
        return {"class_name": type(self).__name__, "learning_rate": self.learning_rate, "hyper": dict(self.hyper),
                "state": {k: _copy_state_value(v) for k, v in self.state.items()}}

    def load_state_dict(self, saved):
        if saved.get("class_name") != type(self).__name__:
            raise ValueError(f"{type(self).__name__}.load_state_dict: state is for {saved.get('class_name')!r}")
        self.learning_rate = float(saved["learning_rate"])
        self.hyper = dict(saved["hyper"])
        self.state = {k: _copy_state_value(v) for k, v in saved["state"].items()}

    def __repr__(self):
        args = ", ".join([f"learning_rate={self.learning_rate}"] + [f"{k}={v!r}" for k, v in self.hyper.items()])
        return f"{type(self).__name__}({args})"


class SGD(OptimMethod):
    """Stochastic gradient descent; see ``sgd_update`` for the rule.

    Args:
        learning_rate: the step size.
        momentum: the momentum factor (0: none).
        dampening: damps the gradient's share of the momentum.
        nesterov: Nesterov momentum (needs momentum > 0 and dampening 0).
        weight_decay: L2 penalty added to the gradient.
        learning_rate_decay: BigDL's decay: lr / (1 + n * decay) at update n.
        learningrate, learningrate_decay, weightdecay: BigDL's spellings of the same.

    Example:
        >>> import numpy as np
        >>> from ember.optim import SGD
        >>> opt = SGD(0.1, momentum=0.9)
        >>> param = np.array([1.0])
        >>> for _ in range(2):
        ...     opt.update(param, np.array([1.0]))
        >>> param.round(4).tolist()  # 1 - 0.1 * 1 - 0.1 * (0.9 + 1)
        [0.71]
    """

    _rule = staticmethod(sgd_update)
    _mean_rule = staticmethod(sgd_update_mean)

    def __init__(self, learning_rate=0.01, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0,
                 learning_rate_decay=0.0, learningrate=None, learningrate_decay=None, weightdecay=None):
        # BigDL's keyword names (bigdl.optim.optimizer.SGD(learningrate=, learningrate_decay=, weightdecay=))
        learning_rate = learning_rate if learningrate is None else learningrate
        learning_rate_decay = learning_rate_decay if learningrate_decay is None else learningrate_decay
        weight_decay = weight_decay if weightdecay is None else weightdecay
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: nesterov needs momentum > 0 and dampening = 0")
        if learning_rate_decay < 0:
            raise ValueError(f"SGD: learning_rate_decay must be >= 0, got {learning_rate_decay!r}")
        hyper = {"learning_rate_decay": float(learning_rate_decay)} if learning_rate_decay else {}
        super().__init__(learning_rate, momentum=momentum, dampening=dampening, nesterov=nesterov,
                         weight_decay=weight_decay, **hyper)


class Adam(OptimMethod):
    """Adam, BigDL's (epsilon 1e-8 by default, as BigDL's; Keras's, with 1e-7, is ``ember.optimizers.Adam``);
    see ``adam_update`` for the rule.

    Args:
        learning_rate: the step size.
        beta_1, beta_2: decay rates of the first and second moment estimates.
        epsilon: added to the denominator.
        weight_decay: L2 penalty added to the gradient.
        learningrate, beta1, beta2: BigDL's spellings of the same (``learningrate_decay`` only as 0).

    Example:
        >>> import numpy as np
        >>> from ember.optim import Adam
        >>> opt = Adam(0.1)
        >>> param = np.array([1.0, 1.0])
        >>> opt.update(param, np.array([2.0, -0.5]))
        >>> param.round(4).tolist()  # the first step moves each element by about lr
        [0.9, 1.1]
    """

    _rule = staticmethod(adam_update)

    def __init__(self, learning_rate=1e-3, beta_1=0.9, beta_2=0.999, epsilon=1e-8, weight_decay=0.0,
                 learningrate=None, learningrate_decay=0.0, beta1=None, beta2=None):
        # BigDL's keyword names (bigdl.optim.optimizer.Adam(learningrate=, learningrate_decay=, beta1=, beta2=))
        if learningrate_decay:
            raise ValueError(f"Adam: learningrate_decay={learningrate_decay!r} is not supported; use a learning "
                             "rate schedule (Optimizer.set_learning_rate_schedule) instead")
        learning_rate = learning_rate if learningrate is None else learningrate
        beta_1 = beta_1 if beta1 is None else beta1
        beta_2 = beta_2 if beta2 is None else beta2
        super().__init__(learning_rate, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon, weight_decay=weight_decay)


class AdamW(OptimMethod):
    """Adam with decoupled weight decay (the parameter shrinks by lr * weight_decay each step); see ``adam_update``.

    Args:
        learning_rate: the step size.
        beta_1, beta_2, epsilon: as in ``Adam``.
        weight_decay: the decoupled decay rate.

    Example:
        >>> import numpy as np
        >>> from ember.optim import AdamW
        >>> opt = AdamW(0.1, weight_decay=0.5)
        >>> param = np.array([1.0])
        >>> opt.update(param, np.array([0.0]))
        >>> param.tolist()  # no gradient: only the decay, 1 * (1 - 0.1 * 0.5)
        [0.95]
    """

    _rule = staticmethod(adam_update)

    def __init__(self, learning_rate=1e-3, beta_1=0.9, beta_2=0.999, epsilon=1e-8, weight_decay=0.01):
        super().__init__(learning_rate, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon, weight_decay=weight_decay,
                         decoupled=True)


class Adamax(OptimMethod):
    """Adamax (Adam with the infinity norm); see ``adamax_update``.

    Args:
        learning_rate: the step size.
        beta_1, beta_2, epsilon, weight_decay: as in ``adamax_update``.

    Example:
        >>> import numpy as np
        >>> from ember.optim import Adamax
        >>> opt = Adamax(0.1)
        >>> param = np.array([1.0])
        >>> opt.update(param, np.array([3.0]))
        >>> param.round(4).tolist()
        [0.9]
    """

    _rule = staticmethod(adamax_update)

    def __init__(self, learning_rate=2e-3, beta_1=0.9, beta_2=0.999, epsilon=1e-8, weight_decay=0.0):
        super().__init__(learning_rate, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon, weight_decay=weight_decay)


class RMSprop(OptimMethod):
    """RMSprop; see ``rmsprop_update``.

    Args:
        learning_rate: the step size.
        rho: the decay of the squared-gradient average.
        epsilon: added to the denominator.
        momentum: momentum on the scaled step (0: none).
        centered: divide by the variance estimate instead of the second moment.
        weight_decay: L2 penalty added to the gradient.

    Example:
        >>> import numpy as np
        >>> from ember.optim import RMSprop
        >>> opt = RMSprop(0.01)
        >>> param = np.array([1.0])
        >>> opt.update(param, np.array([2.0]))
        >>> param.round(4).tolist()  # 1 - 0.01 * 2 / sqrt(0.1 * 4)
        [0.9684]
    """

    _rule = staticmethod(rmsprop_update)

    def __init__(self, learning_rate=1e-3, rho=0.9, epsilon=1e-7, momentum=0.0, centered=False, weight_decay=0.0):
        super().__init__(learning_rate, rho=rho, epsilon=epsilon, momentum=momentum, centered=centered,
                         weight_decay=weight_decay)


class Adagrad(OptimMethod):
    """Adagrad; see ``adagrad_update``.

    Args:
        learning_rate: the step size.
        lr_decay: the rate is lr / (1 + (t - 1) * lr_decay) at step t.
        initial_accumulator_value: the starting sum of squared gradients.
        epsilon: added to the denominator.
        weight_decay: L2 penalty added to the gradient.

    Example:
        >>> import numpy as np
        >>> from ember.optim import Adagrad
        >>> opt = Adagrad(0.1)
        >>> param = np.array([1.0])
        >>> opt.update(param, np.array([4.0]))
        >>> param.round(4).tolist()  # 1 - 0.1 * 4 / sqrt(16)
        [0.9]
    """

    _rule = staticmethod(adagrad_update)

    def __init__(self, learning_rate=1e-2, lr_decay=0.0, initial_accumulator_value=0.0, epsilon=1e-10,
                 weight_decay=0.0):
        super().__init__(learning_rate, lr_decay=lr_decay, initial_accumulator_value=initial_accumulator_value,
                         epsilon=epsilon, weight_decay=weight_decay)


class Adadelta(OptimMethod):
    """Adadelta; see ``adadelta_update``.

    Args:
        learning_rate: scales the computed step (1.0 as in the paper).
        rho: the decay of the running averages.
        epsilon: added inside the square roots.
        weight_decay: L2 penalty added to the gradient.

    Example:
        >>> import numpy as np
        >>> from ember.optim import Adadelta
        >>> opt = Adadelta()
        >>> param = np.array([1.0])
        >>> opt.update(param, np.array([1.0]))
        >>> param.round(5).tolist()  # 1 - sqrt(1e-6) / sqrt(0.1 + 1e-6)
        [0.99684]
    """

    _rule = staticmethod(adadelta_update)

    def __init__(self, learning_rate=1.0, rho=0.9, epsilon=1e-6, weight_decay=0.0):
        super().__init__(learning_rate, rho=rho, epsilon=epsilon, weight_decay=weight_decay)


class LBFGS(OptimMethod):
    """Limited-memory BFGS without line search (PyTorch's and BigDL's default), for full-batch or
    large-batch training; ``lbfgs_optimize`` is the rule as a function.

    Each ``optimize(feval, param, grad)`` runs up to ``max_iter`` inner iterations (``feval()`` returns
    the loss at ``param`` and writes the gradient into ``grad``): the direction d = -H g comes from the
    two-loop recursion over the last ``history_size`` pairs (s = t d, y = g_new - g_old, kept only when
    y.s > 1e-10), with H0 = (y.s)/(y.y); the step is t = min(1, 1/|g|_1) * lr on the very first
    iteration, lr after; it stops early when max|g| <= tolerance_grad, the directional derivative
    g.d > -tolerance_change, max|t d| <= tolerance_change or the loss changes by less than
    tolerance_change, or after ``max_eval`` (default ``max_iter * 5 // 4``) loss evaluations. It
    evaluates the loss several times per step, so it runs in the local optimizer only (the distributed
    optimizer rejects it); ``update`` raises.

    Args:
        learning_rate, max_iter, max_eval, tolerance_grad, tolerance_change, history_size: as above.

    Example:
        >>> import numpy as np
        >>> from ember.optim import LBFGS
        >>> param, grad = np.array([4.0]), np.zeros(1)
        >>> def feval():
        ...     grad[:] = 2 * (param - 1)
        ...     return float(((param - 1) ** 2).sum())
        >>> LBFGS(max_iter=10).optimize(feval, param, grad)
        9.0
        >>> param.round(4).tolist()
        [1.0]
    """

    def __init__(self, learning_rate=1.0, max_iter=20, max_eval=None, tolerance_grad=1e-7, tolerance_change=1e-9,
                 history_size=100):
        super().__init__(learning_rate, max_iter=max_iter, max_eval=max_eval, tolerance_grad=tolerance_grad,
                         tolerance_change=tolerance_change, history_size=history_size)

    def optimize(self, feval, param, grad, lr=None, clip=None):
        if param.shape != grad.shape:
            raise ValueError(f"LBFGS.optimize: param shape {param.shape} != grad shape {grad.shape}")
        if clip is not None:  # every evaluation's gradient is clipped
            def evaluate(feval=feval):
                loss = feval()
                clip(grad)
                return loss

            feval = evaluate
        return lbfgs_optimize(feval, param, grad, self.state, self.learning_rate if lr is None else lr, **self.hyper)

    def update(self, param, grad, lr=None, clip=None):
        raise TypeError("LBFGS re-evaluates the loss during a step; call optimize(feval, param, grad) instead")
