"""deep_v1: embeddings of categoricals + standardised numerics (+ a bag of title words) -> MLP."""
import keras

from models.common import (concat, embed_tokens, encode_categoricals, encode_numerics,
                           make_inputs, mlp, probability_head)


def build(config, shapes) -> keras.Model:
    inputs = make_inputs(config)
    parts = encode_categoricals(inputs, config, shapes) + encode_numerics(inputs, config, shapes)
    if config.text_column:
        # Word order ignored: the mean of the title's token embeddings (padding masked out).
        parts.append(keras.layers.GlobalAveragePooling1D(name="bag_of_words")(
            embed_tokens(inputs, config, shapes)))
    x = mlp(concat(parts), config)
    return keras.Model(inputs, probability_head(x), name="deep_v1")
