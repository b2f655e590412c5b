"""The architecture registry: one explicit entry per network, no registration by import.

    from models import build
    core = build(config, shapes)        # config.network picks the entry: the numeric core

Entries name their module instead of importing it so that `fab config`, `fab -l` and
config validation do not pay TensorFlow's import time.
"""
import importlib
from typing import NamedTuple


class Architecture(NamedTuple):
    module: str  # exports build(config, shapes) -> keras.Model
    needs_text: bool  # refuses a config with no text_columns
    summary: str  # one line for `fab variants`


REGISTRY: dict[str, Architecture] = {
    "deep_v1": Architecture("models.deep_v1", needs_text=False,
                            summary="embeddings + normalised numerics (+ bag of title words) -> MLP"),
    "rnn_v1": Architecture("models.rnn_v1", needs_text=True,
                           summary="title tokens -> GRU/LSTM, joined with the deep tower"),
    "dcn_v2": Architecture("models.dcn_v2", needs_text=False,
                           summary="cross network (explicit feature crosses) beside the MLP, same inputs as deep_v1"),
}


def build(config, shapes):
    """The numeric core of `config.network` (front-end ids in, probability out), sized by `shapes`."""
    return importlib.import_module(REGISTRY[config.network].module).build(config, shapes)


def load(path):
    """A saved .keras model of any network here; its custom layers are registered first.

    A model saved by other code (a layer since renamed or removed) is a NetfabError that says
    so, not Keras's deserialization traceback.
    """
    import keras

    import models.frontend  # noqa: F401  registers the custom layers with keras.saving (common's too)
    for entry in REGISTRY.values():  # and each architecture's own (dcn_v2's Cross)
        importlib.import_module(entry.module)
    from netfab.errors import NetfabError

    try:
        return keras.saving.load_model(path)
    except TypeError as error:  # what Keras raises for a class or config it cannot rebuild
        root = error
        while root.__context__ is not None:  # Keras wraps the class it could not find in further errors
            root = root.__context__
        cause = str(root).split(". ")[0][:200]
        raise NetfabError(f"{path}: this checkout's code cannot rebuild the Keras model saved there "
                          f"({cause}); it was saved by other code, such as an earlier netfab with a "
                          f"layer since renamed: retrain with this checkout, or use the commit that "
                          f"trained it (environment.json). Its SavedModel still serves as it is "
                          f"(fab serve, fab predict)") from None
