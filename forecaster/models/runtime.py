"""Import TensorFlow once, quietly.

TensorFlow's C++ layer prints start-up chatter (oneDNN notes, "could not find
cuda drivers", absl warnings) to file descriptor 2 while it loads, before any
environment variable can silence it. Commands that build or load a model call
:func:`import_tensorflow` first: it sets ``TF_CPP_MIN_LOG_LEVEL`` (unless the
user set it) and points descriptor 2 at /dev/null only for the import itself.
It also gives Keras a folder of ours for ``keras.json`` (``KERAS_HOME``, see
:func:`forecaster.settings.prepare_library_dir`) unless the user set one.
Python exceptions raised by the import still propagate normally.
"""

from __future__ import annotations

import logging
import os
import sys
from types import ModuleType


def import_tensorflow() -> ModuleType:
    """``import tensorflow`` without its C++ start-up noise on stderr."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    from forecaster.settings import prepare_library_dir

    prepare_library_dir("KERAS_HOME")  # keras.json under the data home, never in ~/.keras
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            import keras  # noqa: F401  (loads its backend while stderr is muted)
            import tensorflow
    finally:
        os.dup2(saved, 2)
        os.close(saved)
    # Python-side chatter (e.g. retracing notes during walk-forward refits) is not for users.
    tensorflow.get_logger().setLevel(logging.ERROR)
    return tensorflow
