"""Pure-NumPy reference kernels: the specification every fast kernel is tested against."""
from ember.kernels.reference import activation, conv, embedding, loss, normalization, optim, pooling, special  # noqa: F401 - registers kernels
