"""Shared plumbing of the metrics: the adapted model's scores, map checks, substrates.

Metrics run on the one runtime (:mod:`tfxai._runtime`) of the model adapter
(:func:`tfxai.adapt`): one :class:`~tfxai._runtime.Runtime` per adapter and
`batch_size`, kept on the adapter (which dies with the model), holding the
compiled metric functions.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import tensorflow as tf

from tfxai import _runtime, _validation, image_ops
from tfxai.adapter import ModelAdapter, adapt
from tfxai.errors import InvalidInputError, InvalidTypeError

#: The insertion/deletion blur of the T-Grad / Poly-CAM protocol (torchvision gaussian_blur(11, 5)).
BLUR_KERNEL = 11
BLUR_SIGMA = 5.0
SUBSTRATES = ("blur", "black", "zero")


def score_fn(adapter: ModelAdapter, output: str) -> Callable[[tf.Tensor], tf.Tensor]:
    """``f(images) -> (N, K)``: probabilities (softmax, or sigmoid for binary models, applied once) or logits."""

    def scores(images: tf.Tensor) -> tf.Tensor:
        logits = adapter.logits(images)
        return adapter.probabilities(logits) if output == "probability" else logits

    return scores


def prepare(model: Any, images: Any, targets: Any, output: str, batch_size: Any) -> tuple:
    """``(runtime, scores, images, targets)`` for a metric: validated, targets resolved (None = predicted)."""
    adapter = adapt(model)
    _validation.check_choice(output, "output", _runtime.OUTPUTS)
    runtime = adapter.runtime(_validation.check_positive_int(batch_size, "batch_size"))
    images = runtime.images(images)
    scores = score_fn(adapter, output)
    parsed = runtime.targets(targets, int(images.shape[0]), fill=False)
    if parsed is None:
        predicted = runtime.compiled("predicted", runtime.predicted, images)(images)
    else:
        predicted = tf.constant(parsed)
    return runtime, scores, images, predicted


def check_maps(maps: Any, images: tf.Tensor, name: str = "maps") -> tf.Tensor:
    """Convert `maps` to ``(N, H, W)`` float at image resolution (bilinear upsampling if smaller)."""
    if isinstance(maps, (tf.Tensor, tf.Variable)):
        array = maps
    else:
        try:
            array = np.asarray(maps, dtype=np.float64)
        except Exception:
            raise InvalidTypeError(
                f"`{name}` must be an array of shape (N, H, W) (or (N, h, w) / (N, H, W, 1)); "
                f"received {type(maps).__name__}."
            ) from None
    array = tf.cast(tf.convert_to_tensor(array), images.dtype)
    if array.shape.rank == 4 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.shape.rank != 3:
        raise InvalidInputError(
            f"`{name}` must have shape (N, H, W); received shape {tuple(array.shape)}. "
            "Reduce channels first (explainers already return (N, H, W) maps)."
        )
    if array.shape[0] != images.shape[0]:
        raise InvalidInputError(
            f"`{name}` has {array.shape[0]} maps but `images` has {images.shape[0]} images; pass one map per image."
        )
    if not bool(tf.reduce_all(tf.math.is_finite(array))):
        raise InvalidInputError(f"`{name}` contains NaN or infinite values.")
    size = tuple(images.shape[1:3])
    if tuple(array.shape[1:3]) != size:
        if array.shape[1] > size[0] or array.shape[2] > size[1]:
            raise InvalidInputError(
                f"`{name}` has spatial size {tuple(array.shape[1:3])}, larger than the images {size}; "
                "maps may only be smaller (they are upsampled bilinearly)."
            )
        array = image_ops.resize(array, size)
    return array


def make_substrate(substrate: Any, images: tf.Tensor, input_range: tuple, name: str = "substrate") -> tf.Tensor:
    """The substrate ``(N, H, W, C)`` that replaces removed pixels (not an IG baseline).

    ``"blur"``: Gaussian blur of each image (kernel 11, sigma 5, reflect padding);
    ``"black"``: the low end of the model's input range; ``"zero"``: zeros; a
    number: that constant; an array broadcastable to the images; a callable
    ``f(images) -> array``.
    """
    if isinstance(substrate, str):
        if substrate == "blur":
            return image_ops.gaussian_blur(images, BLUR_SIGMA, BLUR_KERNEL)
        if substrate == "black":
            return tf.fill(tf.shape(images), tf.cast(input_range[0], images.dtype))
        if substrate == "zero":
            return tf.zeros_like(images)
        raise InvalidInputError(
            f"`{name}` must be 'blur', 'black', 'zero', a number, an array or a callable. Received: {name}={substrate!r}."
        )
    if callable(substrate):
        substrate = substrate(images)
    if isinstance(substrate, (bool, np.bool_)):
        raise InvalidTypeError(f"`{name}` must be 'blur', 'black', 'zero', a number, an array or a callable; received a bool.")
    try:
        value = tf.cast(tf.convert_to_tensor(np.asarray(substrate) if not tf.is_tensor(substrate) else substrate), images.dtype)
        value = tf.broadcast_to(value, tf.shape(images))
    except (ValueError, TypeError, tf.errors.InvalidArgumentError) as exc:
        raise InvalidInputError(
            f"`{name}` must broadcast to the images' shape {tuple(images.shape)}; "
            f"received shape {tuple(np.shape(substrate))} ({exc.__class__.__name__})."
        ) from None
    if tf.executing_eagerly() and not bool(tf.reduce_all(tf.math.is_finite(value))):  # checked eagerly, once
        raise InvalidInputError(f"`{name}` contains NaN or infinite values.")
    return value
