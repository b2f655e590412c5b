"""deep_v1: embeddings of categoricals + standardised numerics (+ a bag of title words) -> MLP."""
import keras

from models.common import (bag_of_words, concat, encode_categoricals, encode_numerics,
                           make_inputs, mlp, output_head, text_features)


def build(config, shapes) -> keras.Model:
    inputs = make_inputs(config, shapes)
    parts = encode_categoricals(inputs, config, shapes) + encode_numerics(inputs, config, shapes)
    parts += text_features(inputs, config, shapes,
                           lambda tokens, column: bag_of_words(tokens, column, config, shapes))
    x = mlp(concat(parts), config)
    return keras.Model(inputs, output_head(x, shapes), name="deep_v1")
