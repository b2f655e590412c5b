"""rnn_v1: title tokens -> GRU/LSTM, joined with the deep tower (categoricals + numerics) -> MLP."""
import keras

from models.common import (concat, embed_tokens, encode_categoricals, encode_numerics,
                           make_inputs, mlp, output_head, text_features)

CELLS = {"gru": keras.layers.GRU, "lstm": keras.layers.LSTM}


def build(config, shapes) -> keras.Model:
    inputs = make_inputs(config, shapes)
    deep = encode_categoricals(inputs, config, shapes) + encode_numerics(inputs, config, shapes)
    rnn = CELLS[config.rnn_cell](config.rnn_units, seed=config.seed, name="text_rnn")
    text = text_features(inputs, config, shapes, lambda tokens: rnn(embed_tokens(tokens, config, shapes)))
    x = mlp(concat(deep + [text]), config)
    return keras.Model(inputs, output_head(x, shapes), name="rnn_v1")
