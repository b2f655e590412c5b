"""The front end as Keras layers: raw row values in, the numeric core's inputs out.

    from models.frontend import build_front_end, with_front_end
    front = build_front_end(config, shapes)        # raw columns -> ids, standardised numbers, token ids
    model = with_front_end(core, front, config)    # what the model zip exports: raw rows in

Training does not run these layers row by row: data/preparation.py applies the same tables once
to every row (calling string_lookup and text_vectorization below on the distinct values), and the
core trains on the compact arrays. The exported model chains the front end and the core, so a
served model still takes the raw JSON rows training read, and gives the core's scores.
"""
import keras

from models.common import PerDistinct

FRONT_END = "front_end"  # the front end's name inside an exported model: fab optimize finds it by it


def string_lookup(vocabulary: list[str], name: str | None = None):
    """Value -> 1 + its rank in `vocabulary`; anything else ("", unseen) -> 0."""
    return keras.layers.StringLookup(vocabulary=vocabulary, num_oov_indices=1, name=name)


def text_vectorization(vocabulary: list[str], max_tokens: int, name: str | None = None):
    """Text -> token ids, padded with 0 to max_tokens (1 is the OOV token)."""
    return keras.layers.TextVectorization(
        vocabulary=vocabulary, standardize="lower_and_strip_punctuation", split="whitespace",
        output_sequence_length=max_tokens, name=name)


@keras.saving.register_keras_serializable(package="netfab")
class Standardize(keras.layers.Layer):
    """(x - mean) / std of the training split, and a null (NaN) becomes 0: the training mean."""

    def __init__(self, mean: float, variance: float, **kwargs):
        super().__init__(**kwargs)
        self.mean, self.variance = float(mean), float(variance)

    def call(self, x):
        std = keras.ops.maximum(keras.ops.sqrt(keras.ops.cast(self.variance, "float32")), 1e-7)
        scaled = (x - keras.ops.cast(self.mean, "float32")) / std
        return keras.ops.where(keras.ops.isnan(scaled), keras.ops.zeros_like(scaled), scaled)

    def get_config(self):
        return {**super().get_config(), "mean": self.mean, "variance": self.variance}


@keras.saving.register_keras_serializable(package="netfab")
class ListLookup(keras.layers.Layer):
    """A list column's items, joined by LIST_SEPARATOR in one string per row -> int32 [max_items]
    ids: 0 pads, 1 is an item not in `vocabulary`, 2 + rank for a known one; items past max_items
    are dropped."""

    def __init__(self, vocabulary: list[str], max_items: int, **kwargs):
        super().__init__(**kwargs)
        self.vocabulary, self.max_items = list(vocabulary), int(max_items)
        self.lookup = keras.layers.StringLookup(vocabulary=self.vocabulary, mask_token="", num_oov_indices=1)

    def call(self, joined):
        import tensorflow as tf  # ragged string splitting: this layer runs on the TensorFlow backend only

        from data.loading import LIST_SEPARATOR

        items = tf.strings.split(joined, LIST_SEPARATOR).to_tensor(default_value="", shape=[None, self.max_items])
        return keras.ops.cast(self.lookup(items), "int32")

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.max_items)

    def get_config(self):
        return {**super().get_config(), "vocabulary": self.vocabulary, "max_items": self.max_items}


def raw_inputs(config) -> dict:
    """One named input per raw feature column: what the exported model's signature takes."""
    inputs = {c: keras.Input(shape=(), dtype="string", name=c)
              for c in config.categorical_columns + config.list_columns}  # a list: its items joined
    inputs.update({c: keras.Input(shape=(), dtype="float32", name=c) for c in config.numeric_columns})
    inputs.update({c: keras.Input(shape=(), dtype="string", name=c) for c in config.text_columns})
    return inputs


def raw_columns(rows: list[dict], config) -> dict:
    """JSON rows as the raw inputs' numpy columns: a null string is "", a null number NaN (which
    the front end turns into the training mean): the same values the exported signature is fed."""
    import numpy as np

    from data.loading import category_string  # an integer or boolean category as its string

    columns = {c: np.array([category_string(row.get(c)) for row in rows], dtype=object)
               for c in config.categorical_columns + config.list_columns + config.text_columns}
    columns.update({c: np.array([np.nan if row.get(c) is None else row[c] for row in rows], dtype=np.float32)
                    for c in config.numeric_columns})
    return columns


def build_front_end(config, shapes) -> keras.Model:
    """raw columns -> {column: core input}, with the training split's tables (data/preparation.py)."""
    inputs = raw_inputs(config)
    outputs = {}
    for column in config.categorical_columns:
        ids = string_lookup(shapes.vocabularies[column], name=f"lookup_{column}")(inputs[column])
        outputs[column] = keras.ops.cast(ids, "int32")
    for column in config.list_columns:
        outputs[column] = PerDistinct(ListLookup(shapes.vocabularies[column], shapes.list_max_items),
                                      name=f"per_distinct_{column}")(inputs[column])
    for column in config.numeric_columns:
        outputs[column] = Standardize(shapes.numeric_mean[column], shapes.numeric_variance[column],
                                      name=f"standardize_{column}")(inputs[column])
    for column in config.text_columns:
        tokenize = text_vectorization(shapes.text_vocabularies[column], shapes.text_max_tokens,
                                      name=f"tokenize_{column}")
        tokens = PerDistinct(tokenize, name=f"per_distinct_{column}")(inputs[column])
        outputs[column] = keras.ops.cast(tokens, "int32")
    return keras.Model(inputs, outputs, name=FRONT_END)


def with_front_end(core: keras.Model, front_end: keras.Model, config) -> keras.Model:
    """Raw rows in, the core's probability out: the model a zip exports."""
    inputs = raw_inputs(config)
    return keras.Model(inputs, core(front_end(inputs)), name=f"{core.name}_raw")
