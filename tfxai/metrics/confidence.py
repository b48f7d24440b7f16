"""Average Drop % and % Increase in Confidence (Chattopadhay et al., Grad-CAM++).

With ``Y`` the softmax probability of the target on the image and ``O`` the
probability on the *explanation map* ``E = substrate + L * (image - substrate)``,
where ``L`` is the map upsampled to the image size and min-max
normalised to [0, 1] per image:

* Average Drop % = ``100 / N * sum_i max(0, Y_i - O_i) / Y_i`` (lower is better);
* % Increase in Confidence = ``100 / N * sum_i [O_i > Y_i]`` (higher is better).

With the default ``substrate="black"`` (0 for images in [0, 1] or [0, 255]) this is Grad-CAM++'s ``E = L * image``. That
product only means "keep the salient pixels, remove the rest" if 0 means
*removed* in the model's input space, as for raw [0, 255] pixels with the
preprocessing inside the model (the EfficientNet-Lite0 asset). For models fed
normalised inputs pass the normalised value of black (or another substrate) as
`substrate`.

Reference:
    Chattopadhay, Sarkar, Howlader, Balasubramanian (2018), "Grad-CAM++:
    Generalized Gradient-based Visual Explanations for Deep Convolutional
    Networks", WACV, section 6.1 (Eq. 22).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import tensorflow as tf

from tfxai import _batching, image_ops
from tfxai.metrics import _common


class ConfidenceChange(NamedTuple):
    """Per-image confidences and both summary metrics.

    Attributes:
        original: ``(N,)`` Y, target probability on the image.
        explained: ``(N,)`` O, target probability on the explanation map.
        drop: ``(N,)`` ``max(0, Y - O) / Y`` (a fraction, not %).
        increase: ``(N,)`` bool ``O > Y``.
        average_drop: ``100 * mean(drop)``.
        increase_in_confidence: ``100 * mean(increase)``.
        targets: ``(N,)`` the explained classes.
    """

    original: np.ndarray
    explained: np.ndarray
    drop: np.ndarray
    increase: np.ndarray
    average_drop: float
    increase_in_confidence: float
    targets: np.ndarray


class Score(NamedTuple):
    """A summary value (in %) and its per-image terms."""

    value: float
    per_image: np.ndarray


def confidence_change(
    model: Any,
    images: Any,
    maps: Any,
    targets: Any = None,
    *,
    substrate: Any = "black",
    batch_size: int = 64,
) -> ConfidenceChange:
    """Y and O for every image, with Average Drop % and % Increase in Confidence.

    Args:
        model: the classifier or its adapter (never modified; probabilities =
            softmax of its logits, or sigmoid for a one-unit binary model).
        images: ``(N, H, W, C)`` in the model's input space.
        maps: ``(N, H, W)`` or smaller ``(N, h, w)`` maps (bilinearly upsampled).
        targets: None (predicted class on the image), an int, a class name or N of them.
        substrate: what a zero map value turns a pixel into (default ``"black"``,
            the low end of the model's input range: Grad-CAM++'s ``L * image``
            for images in ``[0, 1]`` or ``[0, 255]``); ``"blur"``, ``"zero"``, a
            number, an array or a callable.
        batch_size: images per model call.

    Example::

        change = tfxai.metrics.confidence_change(model, images, tfxai.GradCAM(model)(images))
        change.average_drop, change.increase_in_confidence
    """
    runtime, scores_fn, images, targets = _common.prepare(model, images, targets, "probability", batch_size)
    maps = _common.check_maps(maps, images)
    substrate = _common.make_substrate(substrate, images, runtime.adapter.input_range)
    function = runtime.compiled("confidence", confidence_fn(scores_fn, runtime.batch_size), images, maps, substrate, targets)
    y, o, drop, increase = (v.numpy() for v in function(images, maps, substrate, targets))
    increase = increase.astype(bool)
    return ConfidenceChange(y, o, drop, increase, float(100 * drop.mean()), float(100 * increase.mean()), targets.numpy())


def target_probability_fn(scores_fn: Any, batch_size: int, fixed: bool = False) -> Any:
    """The in-graph ``(images, targets) -> (N,)`` score of each image's target class, `batch_size` images per call."""

    def run(images: tf.Tensor, targets: tf.Tensor) -> tf.Tensor:
        def chunk(index: tf.Tensor) -> tf.Tensor:
            probs = scores_fn(tf.gather(images, index))
            return tf.gather(probs, tf.gather(targets, index), axis=1, batch_dims=1)

        return _batching.map_images(chunk, tf.shape(images)[0], batch_size, tf.TensorSpec([], images.dtype), fixed=fixed)

    return run


def confidence_fn(scores_fn: Any, batch_size: int, fixed: bool = False) -> Any:
    """The in-graph core ``(images, maps, substrate, targets) -> (Y, O, drop, increase)``, each ``(N,)`` float64.

    `maps` at image size (min-max normalised here), ``E = substrate + L (image
    - substrate)``, ``drop = max(0, Y - O) / Y`` and ``increase = [O > Y]``.
    The one core of :func:`confidence_change` and the evaluation runner.
    """
    probability = target_probability_fn(scores_fn, batch_size, fixed)

    def run(images: tf.Tensor, maps: tf.Tensor, substrate: tf.Tensor, targets: tf.Tensor) -> tuple:
        normalised = image_ops.minmax_normalize(maps)
        explained = substrate + normalised[..., None] * (images - substrate)
        y = tf.cast(probability(images, targets), tf.float64)
        o = tf.cast(probability(tf.cast(explained, images.dtype), targets), tf.float64)
        drop = tf.maximum(tf.constant(0.0, tf.float64), y - o) / tf.maximum(y, np.finfo(np.float64).tiny)
        return y, o, drop, tf.cast(o > y, tf.float64)

    return run


def average_drop(model: Any, images: Any, maps: Any, targets: Any = None, **kwargs: Any) -> Score:
    """Average Drop % = ``100 / N * sum max(0, Y - O) / Y`` (lower is better); see :func:`confidence_change`."""
    change = confidence_change(model, images, maps, targets, **kwargs)
    return Score(change.average_drop, 100 * change.drop)


def increase_in_confidence(model: Any, images: Any, maps: Any, targets: Any = None, **kwargs: Any) -> Score:
    """% Increase in Confidence = ``100 / N * sum [O > Y]`` (higher is better); see :func:`confidence_change`."""
    change = confidence_change(model, images, maps, targets, **kwargs)
    return Score(change.increase_in_confidence, 100 * change.increase.astype(np.float64))
