"""Pure-NumPy reference kernels: the specification every fast kernel is tested against."""
# importing the modules registers their kernels
from ember.kernels.reference import (  # noqa: F401
    activation,
    conv,
    embedding,
    loss,
    normalization,
    optim,
    pooling,
    recurrent,
    special,
)
