"""The engine core: tensors with reverse-mode autograd, the ops, dtype/seed policy, device switch."""
from ember.engine import functional
from ember.engine.backend import get_array_module, to_device
from ember.engine.config import (
    get_default_dtype,
    get_rng_state,
    is_grad_enabled,
    no_grad,
    rng,
    set_check_numerics,
    set_default_dtype,
    set_rng_state,
    set_seed,
)
from ember.engine.tensor import Function, Tensor, as_tensor

__all__ = [
    "Function", "Tensor", "as_tensor", "functional", "get_array_module", "get_default_dtype",
    "get_rng_state", "is_grad_enabled", "no_grad", "rng", "set_check_numerics", "set_default_dtype",
    "set_rng_state", "set_seed", "to_device",
]
