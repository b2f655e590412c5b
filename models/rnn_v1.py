"""rnn_v1: each text column's tokens -> GRU/LSTM, joined with the deep tower (categoricals + numerics) -> MLP."""
import keras

from models.common import (concat, embed_tokens, encode_categoricals, encode_numerics,
                           make_inputs, mlp, output_head, text_features)

CELLS = {"gru": keras.layers.GRU, "lstm": keras.layers.LSTM}


def build(config, shapes) -> keras.Model:
    inputs = make_inputs(config, shapes)
    deep = encode_categoricals(inputs, config, shapes) + encode_numerics(inputs, config, shapes)
    def rnn(tokens, column):  # one recurrent layer per text column, each with its own weights
        cell = CELLS[config.rnn_cell](config.rnn_units, seed=config.seed, name="text_rnn")
        return cell(embed_tokens(tokens, column, config, shapes))

    x = mlp(concat(deep + text_features(inputs, config, shapes, rnn)), config)
    return keras.Model(inputs, output_head(x, shapes), name="rnn_v1")
