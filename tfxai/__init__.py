"""tfxai: explain Keras 3 image classifiers on TensorFlow.

Explainers are classes whose instances are called on batches of images::

    import tfxai
    maps = tfxai.GradCAM(model)(images, targets=None)   # (N, H, W)

A model is read once by :func:`tfxai.adapt` (logits from its live weights,
output kind, input range); every explainer, metric and attack takes the model
or its adapter. See the README for the conventions.
"""

from __future__ import annotations

import os as _os
import sys as _sys


def _start_tensorflow_quietly() -> None:
    """Load TensorFlow with its C++ start-up logs (CUDA probing, oneDNN notes) sent to /dev/null.

    They are printed before absl logging starts, so no environment variable hides them. Python errors
    are raised after stderr is restored. A library import does the same unless TensorFlow is already
    imported or TF_CPP_MIN_LOG_LEVEL is 0 (then the terminal is left alone); TF_CPP_MIN_LOG_LEVEL
    defaults to 2 afterwards (C++ errors still show).
    """
    _os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    saved, devnull = _os.dup(2), _os.open(_os.devnull, _os.O_WRONLY)
    _os.dup2(devnull, 2)
    try:
        import tensorflow as _tf

        # devices are probed here (CUDA, oneDNN notes); no op runs, so the eager context stays
        # unconfigured and a MultiWorkerMirroredStrategy can still be created afterwards
        _tf.config.list_physical_devices()
    finally:
        _os.dup2(saved, 2)
        _os.close(saved)
        _os.close(devnull)


def _launched_as_command_line() -> bool:
    """True while `python -m tfxai` or the `tfxai` script imports this package."""
    orig = list(getattr(_sys, "orig_argv", []))
    if _sys.argv[:1] == ["-m"] and "-m" in orig:
        return orig[orig.index("-m") + 1 : orig.index("-m") + 2] in (["tfxai"], ["tfxai.__main__"])
    return _os.path.basename(_sys.argv[0] if _sys.argv else "") == "tfxai"


if _launched_as_command_line():
    from tfxai.cli import check_arguments as _check_arguments

    _check_arguments(_sys.argv[1:])  # --help and usage errors answer here, before TensorFlow loads (fast)
    _start_tensorflow_quietly()
elif "tensorflow" not in _sys.modules and _os.environ.get("TF_CPP_MIN_LOG_LEVEL", "").strip() != "0":
    # a library import (notebook, script): TensorFlow's C++ start-up lines ("oneDNN custom operations",
    # "Could not find cuda drivers", "E0000 ... failed call to cuInit") read as errors to a student and
    # fail nbgrader cells. TF_CPP_MIN_LOG_LEVEL=0 (show every log) before `import tfxai` keeps them.
    _start_tensorflow_quietly()

import keras as _keras

if _keras.backend.backend() != "tensorflow":  # pragma: no cover - environment guard
    raise ImportError(
        f"tfxai needs the TensorFlow backend of Keras; KERAS_BACKEND is {_keras.backend.backend()!r}. "
        "Set `KERAS_BACKEND=tensorflow` before importing keras."
    )

from tfxai import baselines, data, errors, image_ops, integrated_gradients, models, surgery  # noqa: E402
from tfxai.adapter import ModelAdapter, adapt  # noqa: E402
from tfxai import metrics  # noqa: E402
from tfxai import callbacks  # noqa: E402
from tfxai.decomposition import Decomposition, decompose  # noqa: E402
from tfxai.attacks import fgsm, fgsm_perturbation, iterative_fgsm, pgd  # noqa: E402
from tfxai import explainers as _explainers  # noqa: E402
from tfxai.explainers import *  # noqa: E402,F401,F403 - every explainer class, listed once in explainers.__all__

__version__ = "0.1.0"

__all__ = [
    "adapt",
    "ModelAdapter",
    "decompose",
    "Decomposition",
    *_explainers.__all__,
    "fgsm",
    "fgsm_perturbation",
    "iterative_fgsm",
    "pgd",
    "baselines",
    "data",
    "models",
    "errors",
    "image_ops",
    "integrated_gradients",
    "surgery",
    "metrics",
]
