"""dcn_v2: a cross network beside the MLP over the same features (Wang et al., DCN V2, 2020).

Each cross layer multiplies the input features element-wise with a learnt linear map of the
previous layer's output, x_{l+1} = x0 * (W x_l + b) + x_l, so that l layers model feature
crosses of degree l + 1 explicitly (a device x weekend interaction is one cross, where an MLP
must approximate the product with ReLUs). cross_rank > 0 factors W = U V^T, cheaper for wide inputs.
"""
import keras

from models.common import (bag_of_words, concat, encode_categoricals, encode_numerics, make_inputs,
                           mlp, output_head, text_features)


@keras.saving.register_keras_serializable(package="netfab")
class Cross(keras.layers.Layer):
    """One DCN-v2 cross layer: x0 * (W x + b) + x, W full-rank or U V^T of rank `rank`."""

    def __init__(self, rank: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.rank = rank

    def build(self, input_shape):
        width = input_shape[0][-1]
        if self.rank:
            self.v = self.add_weight(shape=(width, self.rank), initializer="glorot_uniform", name="v")
            self.u = self.add_weight(shape=(self.rank, width), initializer="glorot_uniform", name="u")
        else:
            self.w = self.add_weight(shape=(width, width), initializer="glorot_uniform", name="w")
        self.b = self.add_weight(shape=(width,), initializer="zeros", name="b")

    def call(self, inputs):
        x0, x = inputs
        mapped = keras.ops.matmul(keras.ops.matmul(x, self.v), self.u) if self.rank else keras.ops.matmul(x, self.w)
        return x0 * (mapped + self.b) + x

    def get_config(self):
        return {**super().get_config(), "rank": self.rank}


def build(config, shapes) -> keras.Model:
    inputs = make_inputs(config, shapes)
    parts = encode_categoricals(inputs, config, shapes) + encode_numerics(inputs, config, shapes)
    parts += text_features(inputs, config, shapes,
                           lambda tokens, column: bag_of_words(tokens, column, config, shapes))
    x0 = concat(parts)
    crossed = x0
    for i in range(config.cross_layers):
        crossed = Cross(config.cross_rank, name=f"cross_{i}")([x0, crossed])
    joined = keras.layers.Concatenate(name="cross_and_deep")([crossed, mlp(x0, config)])
    return keras.Model(inputs, output_head(joined, shapes), name="dcn_v2")
