"""Embedding: integer ids -> dense vectors."""
import numpy as np

from ember.engine.ops.shape import EmbeddingLookup
from ember.layers import initializers, regularizers
from ember.layers.base import Layer, keras1_arguments, set_mask


class Embedding(Layer):
    """Looks up row ``i`` of an (input_dim, output_dim) table for every id ``i`` in the input.

    Args:
        input_dim, output_dim: the table's rows (the vocabulary size) and columns.
        mask_zero: id 0 is padding: the (batch, steps) mask ``ids != 0`` goes with the output to the
            recurrent layers after it, which then skip those steps (Keras's masking).

    Shape: (batch, ...) integer ids in [0, input_dim) -> (batch, ..., output_dim).

    Example:
        >>> import numpy as np
        >>> from ember.layers import Embedding
        >>> from ember.layers.base import get_mask
        >>> get_mask(Embedding(5, 2, mask_zero=True)(np.array([[3, 0]]))).tolist()
        [[True, False]]
    """

    _dtype_kind = "i"

    @keras1_arguments(init="embeddings_initializer", W_regularizer="embeddings_regularizer")
    def __init__(self, input_dim, output_dim, embeddings_initializer="uniform", mask_zero=False, input_length=None,
                 embeddings_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        self.embeddings_regularizer = regularizers.get(embeddings_regularizer)
        self.mask_zero = bool(mask_zero)
        self.input_length = input_length  # Keras 2's argument; the length comes from the input
        self.input_dim, self.output_dim = int(input_dim), int(output_dim)
        self.embeddings_initializer = initializers.get(embeddings_initializer)

    def build(self, input_shape):
        self.embeddings = self.add_weight("embeddings", (self.input_dim, self.output_dim),
                                          self.embeddings_initializer, regularizer=self.embeddings_regularizer)

    def call(self, x, training=False):
        ids = x.data
        if ids.dtype.kind == "f":
            if not np.all(np.asarray(ids == np.floor(ids))):
                raise TypeError(f"Layer '{self.name}' (Embedding) expects integer ids, got non-integral floats")
            ids = ids.astype(np.int64)
        if ids.size and (int(ids.min()) < 0 or int(ids.max()) >= self.input_dim):
            raise ValueError(f"Layer '{self.name}' (Embedding) expects ids in [0, {self.input_dim}), "
                             f"got values in [{int(ids.min())}, {int(ids.max())}]")
        out = EmbeddingLookup.apply(self.embeddings, ids=ids)
        return set_mask(out, ids != 0) if self.mask_zero else out

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (self.output_dim,)

    def get_config(self):
        return {**super().get_config(), "input_dim": self.input_dim, "output_dim": self.output_dim,
                "embeddings_initializer": initializers.serialize(self.embeddings_initializer),
                "mask_zero": self.mask_zero, "input_length": self.input_length,
                **regularizers.serialize_fields(self, "embeddings_regularizer")}
