"""netfab: the machinery that takes a Keras prototype to a production model.

Researchers edit netconfig.py, variant_config.json, models/ and data/; this package holds
everything else: a small core (errors, environment, tasks, config, model_zip) and one wing per flow
(storage, dataset, train, tune, serve, deploy), each described in its __init__ docstring.
"""
__version__ = "0.1.0"

import os as _os

# TensorFlow's C++ INFO lines (oneDNN, CPU features) drown the training log; warnings stay.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
