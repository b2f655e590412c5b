"""Building blocks every architecture shares, so that each builder reads as its idea alone.

Inputs are raw feature values, one scalar per row and column (strings for categoricals and
text, float32 for numerics); lookups, normalisation and tokenisation happen inside the model.
"""
import keras


def make_inputs(config) -> dict[str, keras.KerasTensor]:
    """One named input per raw feature column: what the exported model's signature takes."""
    inputs = {c: keras.Input(shape=(), dtype="string", name=c) for c in config.categorical_columns}
    inputs.update({c: keras.Input(shape=(), dtype="float32", name=c) for c in config.numeric_columns})
    if config.text_column:
        inputs[config.text_column] = keras.Input(shape=(), dtype="string", name=config.text_column)
    return inputs


def encode_categoricals(inputs, config, shapes) -> list:
    """Each categorical -> its vocabulary index (unseen values: the OOV bucket) -> an embedding."""
    encoded = []
    for column in config.categorical_columns:
        index = keras.layers.StringLookup(vocabulary=shapes.vocabularies[column],
                                          num_oov_indices=1, name=f"lookup_{column}")(inputs[column])
        encoded.append(keras.layers.Embedding(shapes.cardinality(column), shapes.embedding_dims[column],
                                              name=f"embed_{column}")(index))
    return encoded


def encode_numerics(inputs, config, shapes) -> list:
    """All numerics stacked and standardised with the training split's mean and variance."""
    if not config.numeric_columns:
        return []
    columns = config.numeric_columns
    stacked = keras.ops.stack([inputs[c] for c in columns], axis=-1)
    normalize = keras.layers.Normalization(mean=[shapes.numeric_mean[c] for c in columns],
                                           variance=[shapes.numeric_variance[c] for c in columns],
                                           name="normalize_numerics")
    return [normalize(stacked)]


@keras.saving.register_keras_serializable(package="netfab")
class PerDistinct(keras.layers.Wrapper):
    """Runs the wrapped layer once per distinct value of a 1-D batch and gives each row its result.

    Text features belong to the item, so titles repeat across rows: a 16K-row batch of the
    fixture's data holds ~2K distinct titles. Tokenising and embedding only those is exact
    (gradients of repeated rows add up, as they would row by row) and makes the text branch
    ~2.5x cheaper, which is half of the model's time when serving (benchmarks/serve.py).
    """

    def call(self, inputs, training=None):
        import tensorflow as tf  # string ops: this layer runs on the TensorFlow backend only

        distinct, row_to_distinct = tf.unique(inputs)
        return tf.gather(self.layer(distinct, training=training), row_to_distinct)

    def compute_output_shape(self, input_shape):
        return self.layer.compute_output_shape(input_shape)


def text_features(inputs, config, branch):
    """`branch(text) -> features`, built as its own small model and run once per distinct text."""
    text = keras.Input(shape=(), dtype="string", name=config.text_column)
    per_text = keras.Model(text, branch(text), name="text_branch")
    return PerDistinct(per_text, name="per_distinct_text")(inputs[config.text_column])


def tokenize_text(text, shapes):
    """Text -> token ids, padded with 0 to shapes.text_max_tokens (1 is the OOV token)."""
    return keras.layers.TextVectorization(
        vocabulary=shapes.text_vocabulary, standardize="lower_and_strip_punctuation",
        split="whitespace", output_sequence_length=shapes.text_max_tokens,
        name="tokenize_text")(text)


def embed_tokens(token_ids, config, shapes, mask_padding=True):
    """Token ids -> token embeddings; with mask_padding, later layers skip the padding."""
    vocab_size = len(shapes.text_vocabulary) + 2  # + padding "" and "[UNK]"
    return keras.layers.Embedding(vocab_size, config.text_embedding_dim, mask_zero=mask_padding,
                                  name="embed_tokens")(token_ids)


def bag_of_words(token_ids, config, shapes):
    """The mean of the text's token embeddings, word order ignored; an empty text gives zeros.

    Written out instead of a masked GlobalAveragePooling1D, whose mean over zero tokens is 0/0.
    """
    embedded = embed_tokens(token_ids, config, shapes, mask_padding=False)
    present = keras.ops.expand_dims(keras.ops.cast(keras.ops.not_equal(token_ids, 0), "float32"), -1)
    total = keras.ops.sum(embedded * present, axis=1)
    return total / keras.ops.maximum(keras.ops.sum(present, axis=1), 1.0)


def mlp(x, config):
    """Dense ReLU layers of config.hidden_units widths, each followed by dropout."""
    for i, units in enumerate(config.hidden_units):
        x = keras.layers.Dense(units, activation="relu", name=f"hidden_{i}")(x)
        if config.dropout:
            x = keras.layers.Dropout(config.dropout, seed=config.seed + i, name=f"dropout_{i}")(x)
    return x


def probability_head(x):
    """One sigmoid unit, squeezed to a probability per row."""
    logit = keras.layers.Dense(1, activation="sigmoid", name="probability")(x)
    return keras.ops.squeeze(logit, axis=-1)


def concat(parts: list):
    return parts[0] if len(parts) == 1 else keras.layers.Concatenate(name="features")(parts)
