"""TextClassifier: word ids -> embedding -> CNN, LSTM or GRU encoder -> Dense head (Analytics Zoo's)."""
from ember.layers import GRU, LSTM, Activation, Conv1D, Dense, Dropout, Embedding, GlobalMaxPooling2D, Input, Reshape
from ember.zoo.models.common import finish

ENCODERS = ("cnn", "lstm", "gru")


def TextClassifier(num_classes, vocab_size, embedding_dim=200, sequence_length=500, encoder="cnn",  # noqa: N802
                   encoder_output_dim=256, include_top=True, input_shape=None, weights=None,
                   embedding_weights=None, train_embedding=False):
    """Analytics Zoo's TextClassifier: Embedding, then a Conv1D(5, ReLU) + global max pooling, an LSTM
    or a GRU of ``encoder_output_dim`` units, then Dense(128), Dropout(0.2), ReLU, Dense(num_classes,
    softmax).

    Args:
        num_classes: classes out.
        vocab_size: word ids are in [0, vocab_size).
        embedding_dim, embedding_weights: the table's width, and optionally its values (e.g. GloVe),
            an array (vocab_size, embedding_dim); it is frozen unless ``train_embedding``.
        sequence_length: words per sample (``input_shape`` defaults to ``(sequence_length,)``).
        encoder: "cnn", "lstm" or "gru".
        include_top: end with the Dense head; otherwise the encoder's output.
        weights: None or a file path.

    Example:
        >>> from ember.zoo.models import TextClassifier
        >>> model = TextClassifier(5, vocab_size=1000, embedding_dim=50, sequence_length=100)
        >>> model.count_params()
        147797
    """
    if encoder not in ENCODERS:
        raise ValueError(f"encoder must be one of {ENCODERS}, got {encoder!r}")
    if weights == "imagenet":
        raise ValueError("TextClassifier has no pretrained weights: give weights=None or a file path")
    shape = tuple(input_shape) if input_shape is not None else (int(sequence_length),)
    inp = Input(shape=shape, dtype="int64")
    embedding = Embedding(vocab_size, embedding_dim, name="embedding")
    x = embedding(inp)
    if embedding_weights is not None:
        embedding.set_weights([embedding_weights])
    embedding.trainable = bool(train_embedding or embedding_weights is None)
    if encoder == "cnn":
        x = Conv1D(encoder_output_dim, 5, activation="relu", name="encoder")(x)
        x = GlobalMaxPooling2D()(Reshape((x.shape[1], 1, encoder_output_dim))(x))
    else:
        x = (LSTM if encoder == "lstm" else GRU)(encoder_output_dim, name="encoder")(x)
    if include_top:
        x = Activation("relu")(Dropout(0.2)(Dense(128, name="dense")(x)))
        x = Dense(num_classes, activation="softmax", name="predictions")(x)
    return finish(inp, x, f"text_classifier_{encoder}", weights, "text_classifier", include_top, num_classes)
