"""Optimised forms of a trained model's numeric core; the front end stays as it was trained.

    from netfab.train.core_forms import FORMS, optimized_form
    form = optimized_form("int8", models.load(".../model.keras"), config)   # the zip's front end + core
    form.model.save("model.keras"); form.core.save("core.keras")
    model_zip.export_saved_model(form.model, "saved_model", serve=form.serve)

  xla      the same weights; the SavedModel runs the core as one XLA-compiled function, the
           front end's string ops outside it. The text branch runs on every row instead of once
           per distinct title (XLA needs shapes it can know: UniqueV2's are not), and a batch is
           padded to the next power of two rows, so that XLA compiles one program per size
           class, not per batch size; each is compiled when its size first comes.
  int8     Dense kernels and embedding tables stored as int8 with a float32 scale per output
           channel or row (Keras's weight-only int8), turned back into float32 as they are
           used; activations stay float32.
  float16  weights and arithmetic in float16 (Keras's float16 dtype policy); the probability
           is returned as float32, like every zip's signature.

The forms only build models: fab optimize (netfab/train/optimize.py) measures each one and
refuses a form that loses test AUC.
"""
import dataclasses
from collections.abc import Callable

# Keras and TensorFlow are imported by the functions that need them, so that fab optimize can
# check its options against FORMS first.
FORMS = {  # name -> what it changes, for optimization.json
    "xla": "the core XLA-compiled in the SavedModel's serving function; the same weights",
    "int8": "Dense kernels and embedding tables stored as int8 with a float32 scale each (weight-only)",
    "float16": "the core's weights and arithmetic in float16",
}


@dataclasses.dataclass
class OptimizedModel:
    name: str  # one of FORMS
    model: object  # keras.Model: front end + optimised core (model.keras), raw columns in
    core: object  # keras.Model: the optimised core alone (core.keras)
    serve: Callable | None  # features -> probability for the SavedModel; None: model's own call
    changed_files: tuple[str, ...]  # what differs from the trained zip besides saved_model/


def optimized_form(name: str, model, config) -> OptimizedModel:
    """`name`'s form of `model` (a zip's model.keras) for the zip's NetConfig `config`."""
    front_end, core = split_model(model)
    return {"xla": _xla, "int8": _int8, "float16": _float16}[name](model, front_end, core, config)


def split_model(model):
    """The front end and the numeric core of an exported model (models.frontend.with_front_end)."""
    import keras

    from models.frontend import FRONT_END

    cores = [layer for layer in model.layers if isinstance(layer, keras.Model) and layer.name != FRONT_END]
    return model.get_layer(FRONT_END), cores[0]


def _xla(model, front_end, core, config) -> OptimizedModel:
    import keras
    import tensorflow as tf

    from models.common import PerDistinct

    # The same layers (so the same variables), but each row through the text branch: exact, as
    # PerDistinct only avoids computing a repeated row twice.
    per_row = keras.models.clone_model(
        core, clone_function=lambda layer: layer.layer if isinstance(layer, PerDistinct) else layer)
    compiled = tf.function(lambda features: per_row(features, training=False), jit_compile=True)

    def serve(features):
        encoded = front_end(features, training=False)
        rows = tf.shape(next(iter(encoded.values())))[0]
        padding = next_power_of_two(rows) - rows
        padded = {name: tf.pad(values, [[0, padding]] + [[0, 0]] * (values.shape.rank - 1))
                  for name, values in encoded.items()}  # zeros: an out-of-vocabulary id, a mean, no tokens
        return compiled(padded)[:rows]

    return OptimizedModel("xla", model, core, serve, changed_files=())


def next_power_of_two(rows):
    """The smallest power of two >= rows (an int32 tensor), by smearing the high bit: no loop,
    which the single-threaded executor fab serve uses for a lone request could not run."""
    import tensorflow as tf

    bits = tf.maximum(rows, 1) - 1
    for shift in (1, 2, 4, 8, 16):
        bits = tf.bitwise.bitwise_or(bits, tf.bitwise.right_shift(bits, shift))
    return bits + 1


def _int8(model, front_end, core, config) -> OptimizedModel:
    import keras
    from keras.quantizers import Int8QuantizationConfig

    from models.frontend import with_front_end

    quantized = _copy(core)
    # activation_quantizer=None: weight-only. Quantising activations too (Keras's default) makes
    # every Dense call quantise its input, which is slower on CPU and moves the scores further.
    quantized.quantize(config=Int8QuantizationConfig(weight_quantizer=None, activation_quantizer=None),
                       filters=lambda layer: isinstance(layer, (keras.layers.Dense, keras.layers.Embedding)))
    return OptimizedModel("int8", with_front_end(quantized, front_end, config), quantized, None,
                          changed_files=("model.keras", "core.keras"))


def _float16(model, front_end, core, config) -> OptimizedModel:
    import keras

    from models.frontend import with_front_end

    half = keras.Model.from_config(_float16_policies(core.get_config()))
    half.set_weights(core.get_weights())  # cast to float16 as they are assigned
    # The probability back in float32, the dtype every zip's signature returns.
    half = keras.Model(half.input, keras.ops.cast(half.output, "float32"), name=core.name)
    return OptimizedModel("float16", with_front_end(half, front_end, config), half, None,
                          changed_files=("model.keras", "core.keras"))


def _float16_policies(config):
    """A model config with every float32 dtype policy made float16 (int inputs keep their dtype)."""
    if isinstance(config, dict):
        if config.get("class_name") == "DTypePolicy" and config["config"].get("name") == "float32":
            return {**config, "config": {**config["config"], "name": "float16"}}
        return {key: _float16_policies(value) for key, value in config.items()}
    if isinstance(config, list):
        return [_float16_policies(value) for value in config]
    return config


def _copy(core):
    import keras

    copy = keras.models.clone_model(core)
    copy.set_weights(core.get_weights())
    return copy

