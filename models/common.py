"""Building blocks every architecture shares, so that each builder reads as its idea alone.

The numeric core's inputs are what the front end (data/preparation.py, models/frontend.py) makes
of a row: an int32 vocabulary id per categorical (0 = out of vocabulary), a standardised float32
per numeric (0 = null), int32 token ids [text_max_tokens] per text column. No string reaches the core.
"""
import keras


def make_inputs(config, shapes) -> dict[str, keras.KerasTensor]:
    """One named input per feature column, in the front end's encoding."""
    inputs = {c: keras.Input(shape=(), dtype="int32", name=c) for c in config.categorical_columns}
    inputs.update({c: keras.Input(shape=(shapes.list_max_items,), dtype="int32", name=c) for c in config.list_columns})
    inputs.update({c: keras.Input(shape=(), dtype="float32", name=c) for c in config.numeric_columns})
    inputs.update({c: keras.Input(shape=(shapes.text_max_tokens,), dtype="int32", name=c)
                   for c in config.text_columns})
    return inputs


def encode_categoricals(inputs, config, shapes) -> list:
    """Each categorical's id -> an embedding (row 0: the out-of-vocabulary bucket); each list
    column's ids -> the mean of their embeddings (a bag; padding ignored, an empty list gives zeros)."""
    embedded = [keras.layers.Embedding(shapes.cardinality(c), shapes.embedding_dims[c], name=f"embed_{c}")(inputs[c])
                for c in config.categorical_columns]
    for c in config.list_columns:
        vectors = keras.layers.Embedding(shapes.list_cardinality(c), shapes.embedding_dims[c], name=f"embed_{c}")(inputs[c])
        present = keras.ops.expand_dims(keras.ops.cast(keras.ops.not_equal(inputs[c], 0), "float32"), -1)
        embedded.append(keras.ops.sum(vectors * present, axis=1) / keras.ops.maximum(keras.ops.sum(present, axis=1), 1.0))
    return embedded


def encode_numerics(inputs, config, shapes) -> list:
    """All (already standardised) numerics stacked into one vector."""
    if not config.numeric_columns:
        return []
    return [keras.ops.stack([inputs[c] for c in config.numeric_columns], axis=-1)]


@keras.saving.register_keras_serializable(package="netfab")
class PerDistinct(keras.layers.Wrapper):
    """Runs the wrapped layer once per distinct row of a batch (a value of a 1-D batch, a row of a
    2-D one) and gives each row its result.

    Text features belong to the item, so titles repeat across rows: a 16K-row batch of the
    fixture's data holds ~2K distinct titles. Tokenising them (the front end) and running the text
    branch (the core) only on those is exact (gradients of repeated rows add up, as they would row
    by row) and much cheaper.
    """

    def call(self, inputs, training=None):
        import tensorflow as tf  # UniqueV2 over rows: this layer runs on the TensorFlow backend only

        distinct, row_to_distinct = tf.raw_ops.UniqueV2(x=inputs, axis=[0])
        return tf.gather(self.layer(distinct, training=training), row_to_distinct)

    def compute_output_shape(self, input_shape):
        return self.layer.compute_output_shape(input_shape)


def text_features(inputs, config, shapes, branch) -> list:
    """For each text column, `branch(token_ids, column) -> features`, built as its own small model
    (its own weights) and run once per distinct text of that column."""
    features = []
    for column in config.text_columns:
        tokens = keras.Input(shape=(shapes.text_max_tokens,), dtype="int32", name=column)
        per_text = keras.Model(tokens, branch(tokens, column), name=f"text_branch_{column}")
        features.append(PerDistinct(per_text, name=f"per_distinct_{column}")(inputs[column]))
    return features


def embed_tokens(token_ids, column, config, shapes, mask_padding=True):
    """A text column's token ids -> token embeddings; with mask_padding, later layers skip the padding."""
    return keras.layers.Embedding(shapes.text_vocab_size(column), config.text_embedding_dim,
                                  mask_zero=mask_padding, name=f"embed_tokens_{column}")(token_ids)


def bag_of_words(token_ids, column, config, shapes):
    """The mean of the text's token embeddings, word order ignored; an empty text gives zeros.

    Written out instead of a masked GlobalAveragePooling1D, whose mean over zero tokens is 0/0.
    """
    embedded = embed_tokens(token_ids, column, config, shapes, mask_padding=False)
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


def output_head(x, shapes):
    """The task's output (shapes.task, netfab/tasks.py), what the exported model answers per row:
    binary       a probability (one sigmoid unit)                   [rows]
    multiclass   a probability per class, summing to 1 (softmax)    [rows, classes]
    multilabel   a probability per tag, each on its own (sigmoids)  [rows, tags]
    regression   a value: one linear unit on the standardised target, scaled back to the label's
                 units with the training split's mean and std (shapes.label_mean, label_std)
    """
    if shapes.task == "multiclass":
        return keras.layers.Dense(len(shapes.classes), activation="softmax", name="probability")(x)
    if shapes.task == "multilabel":
        return keras.layers.Dense(len(shapes.classes), activation="sigmoid", name="probability")(x)
    if shapes.task == "regression":
        standardised = keras.layers.Dense(1, name="standardised_value")(x)
        value = keras.layers.Rescaling(shapes.label_std, offset=shapes.label_mean, name="value")(standardised)
        return keras.ops.squeeze(value, axis=-1)
    probability = keras.layers.Dense(1, activation="sigmoid", name="probability")(x)
    return keras.ops.squeeze(probability, axis=-1)


def concat(parts: list):
    return parts[0] if len(parts) == 1 else keras.layers.Concatenate(name="features")(parts)


# Losses of a one-value-per-row output ([rows]: binary, regression). Keras's own reduce over the last
# axis, which for a [rows] output is the batch: one number per batch, so a per-row sample weight
# (weight_column) would only scale the batch. These give a loss per row, the same mean unweighted.
@keras.saving.register_keras_serializable(package="netfab")
def binary_crossentropy_per_row(y_true, y_pred):
    return keras.losses.binary_crossentropy(keras.ops.expand_dims(y_true, -1), keras.ops.expand_dims(y_pred, -1))


@keras.saving.register_keras_serializable(package="netfab")
def mean_squared_error_per_row(y_true, y_pred):
    return keras.losses.mean_squared_error(keras.ops.expand_dims(y_true, -1), keras.ops.expand_dims(y_pred, -1))
