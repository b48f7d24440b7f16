"""Shared plumbing of the metrics: probabilities of a target, map checks, baselines."""

from __future__ import annotations

import weakref
from typing import Any, Callable

import keras
import numpy as np
import tensorflow as tf

from tfxai import _batching, _targets, _validation, image_ops, surgery
from tfxai.errors import InvalidInputError, InvalidTypeError

#: The insertion/deletion blur of the T-Grad / Poly-CAM protocol (torchvision gaussian_blur(11, 5)).
BLUR_KERNEL = 11
BLUR_SIGMA = 5.0


def score_model(model: keras.Model, output: str) -> Callable[[tf.Tensor], tf.Tensor]:
    """``f(images) -> (N, K)``: softmax probabilities (softmax applied exactly once) or logits.

    A model ending in softmax is evaluated through :func:`tfxai.surgery.logits_model`
    (a rebuilt copy without the softmax), so the probability is always
    ``softmax(logits)`` and never a softmax of probabilities.
    """
    logits_model = surgery.logits_model(model)

    def scores(images: tf.Tensor) -> tf.Tensor:
        logits = logits_model(images, training=False)
        return tf.nn.softmax(logits, axis=-1) if output == "probability" else logits

    return scores


def check_maps(maps: Any, images: tf.Tensor, name: str = "saliency") -> tf.Tensor:
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


def make_baseline(baseline: Any, images: tf.Tensor, name: str = "baseline") -> tf.Tensor:
    """The substrate ``(N, H, W, C)`` that replaces removed pixels.

    ``"blur"``: Gaussian blur of each image (kernel 11, sigma 5, reflect padding);
    ``"zero"``: zeros; a number: that constant; an array broadcastable to the images;
    a callable ``f(images) -> array``.
    """
    if isinstance(baseline, str):
        if baseline == "blur":
            return image_ops.gaussian_blur(images, BLUR_SIGMA, BLUR_KERNEL)
        if baseline in ("zero", "black"):
            return tf.zeros_like(images)
        raise InvalidInputError(
            f"`{name}` must be 'blur', 'zero', a number, an array or a callable. Received: {name}={baseline!r}."
        )
    if callable(baseline):
        baseline = baseline(images)
    if isinstance(baseline, (bool, np.bool_)):
        raise InvalidTypeError(f"`{name}` must be 'blur', 'zero', a number, an array or a callable; received a bool.")
    try:
        value = tf.cast(tf.convert_to_tensor(np.asarray(baseline) if not tf.is_tensor(baseline) else baseline), images.dtype)
        value = tf.broadcast_to(value, tf.shape(images))
    except (ValueError, TypeError, tf.errors.InvalidArgumentError) as exc:
        raise InvalidInputError(
            f"`{name}` must broadcast to the images' shape {tuple(images.shape)}; "
            f"received shape {tuple(np.shape(baseline))} ({exc.__class__.__name__})."
        ) from None
    if not bool(tf.reduce_all(tf.math.is_finite(value))):
        raise InvalidInputError(f"`{name}` contains NaN or infinite values.")
    return value


def resolve_targets(
    scores: Callable[[tf.Tensor], tf.Tensor], images: tf.Tensor, targets: Any, num_classes: int, batch_size: int
) -> tf.Tensor:
    """Parse `targets`; None means each image's predicted class (argmax on the unperturbed image)."""
    parsed = _targets.parse_targets(targets, int(images.shape[0]), num_classes)
    if parsed is not None:
        return tf.constant(parsed, tf.int32)
    return predicted(scores, images, batch_size)


def predicted(scores: Callable[[tf.Tensor], tf.Tensor], images: tf.Tensor, batch_size: int) -> tf.Tensor:
    """Argmax class of each image, chunked by `batch_size`."""

    def build():
        def run(images):
            return _batching.map_images(
                lambda index: tf.argmax(scores(tf.gather(images, index)), axis=-1, output_type=tf.int32),
                tf.shape(images)[0],
                batch_size,
                tf.TensorSpec([], tf.int32),
            )

        return run

    return compiled(scores, ("predicted", batch_size), build, images)(images)


_SCORE_FNS: "weakref.WeakKeyDictionary[Any, dict]" = weakref.WeakKeyDictionary()


def cached_score_model(model: keras.Model, output: str) -> "_ScoreFn":
    """:func:`score_model`, one per (model, output), so compiled metric functions are reused.

    The cache dies with the model: the score function only holds a weak
    reference to it, and its compiled functions live on the score function.
    """
    table = _SCORE_FNS.setdefault(model, {})
    if output not in table:
        table[output] = _ScoreFn(model, output)
    return table[output]


class _ScoreFn:
    """:func:`score_model` of a weakly held model, with its table of compiled metric functions."""

    def __init__(self, model: keras.Model, output: str):
        surgery.logits_model(model)  # build (eagerly) the cached copy without softmax, if any
        self._model = weakref.ref(model)
        self.output = output
        self.functions: dict = {}

    def __call__(self, images: tf.Tensor) -> tf.Tensor:
        model = self._model()
        if model is None:
            raise ReferenceError("the model of this score function no longer exists")
        return score_model(model, self.output)(images)


def compiled(owner: "_ScoreFn", key: Any, build: Callable[[], Callable], *examples: tf.Tensor) -> Callable:
    """A `tf.function` of ``build()`` cached on `owner`, per `key` and input shapes.

    The batch axis is left unknown, so every batch size shares one trace.
    """
    full_key = (key, tuple((tuple(e.shape[1:]), e.dtype.name) for e in examples))
    if full_key not in owner.functions:
        signature = [tf.TensorSpec((None, *e.shape[1:]), e.dtype) for e in examples]
        owner.functions[full_key] = tf.function(build(), input_signature=signature)
    return owner.functions[full_key]


def check_common(model: Any, images: Any, output: str, batch_size: Any) -> tuple[keras.Model, tf.Tensor]:
    model = _validation.check_model(model)
    images = _validation.as_images(images, model)
    _validation.check_choice(output, "output", _targets.OUTPUTS)
    _validation.check_positive_int(batch_size, "batch_size")
    return model, images
