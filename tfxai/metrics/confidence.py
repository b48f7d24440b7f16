"""Average Drop % and % Increase in Confidence (Chattopadhay et al., Grad-CAM++).

With ``Y`` the softmax probability of the target on the image and ``O`` the
probability on the *explanation map* ``E = baseline + L * (image - baseline)``,
where ``L`` is the saliency map upsampled to the image size and min-max
normalised to [0, 1] per image:

* Average Drop % = ``100 / N * sum_i max(0, Y_i - O_i) / Y_i`` (lower is better);
* % Increase in Confidence = ``100 / N * sum_i [O_i > Y_i]`` (higher is better).

With the default ``baseline=0`` this is Grad-CAM++'s ``E = L * image``. That
product only means "keep the salient pixels, remove the rest" if 0 means
*removed* in the model's input space, as for raw [0, 255] pixels with the
preprocessing inside the model (the EfficientNet-Lite0 asset). For models fed
normalised inputs pass the normalised value of black (or another substrate) as
`baseline`.

Reference:
    Chattopadhay, Sarkar, Howlader, Balasubramanian (2018), "Grad-CAM++:
    Generalized Gradient-based Visual Explanations for Deep Convolutional
    Networks", WACV, section 6.1 (Eq. 22).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import tensorflow as tf

from tfxai import _batching, image_ops, surgery
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
    saliency: Any,
    targets: Any = None,
    *,
    baseline: Any = 0.0,
    batch_size: int = 64,
) -> ConfidenceChange:
    """Y and O for every image, with Average Drop % and % Increase in Confidence.

    Args:
        model: the classifier (never modified; probabilities = softmax of its logits).
        images: ``(N, H, W, C)`` in the model's input space.
        saliency: ``(N, H, W)`` or smaller ``(N, h, w)`` maps (bilinearly upsampled).
        targets: None (predicted class on the image), an int or N ints.
        baseline: what a zero map value turns a pixel into (default 0, Grad-CAM++'s
            ``L * image``); ``"blur"``, ``"zero"``, a number, an array or a callable.
        batch_size: images per model call.
    """
    model, images = _common.check_common(model, images, "probability", batch_size)
    maps = image_ops.minmax_normalize(_common.check_maps(saliency, images))
    substrate = _common.make_baseline(baseline, images)
    scores_fn = _common.cached_score_model(model, "probability")
    targets = _common.resolve_targets(scores_fn, images, targets, surgery.num_classes(model), batch_size)
    explained_images = substrate + maps[..., None] * (images - substrate)

    def build():
        def run(images, targets):
            def chunk(index):
                probs = scores_fn(tf.gather(images, index))
                return tf.gather(probs, tf.gather(targets, index), axis=1, batch_dims=1)

            return _batching.map_images(chunk, tf.shape(images)[0], batch_size, tf.TensorSpec([], images.dtype))

        return run

    function = _common.compiled(scores_fn, ("target_probability", batch_size), build, images, targets)
    y = function(images, targets).numpy().astype(np.float64)
    o = function(tf.cast(explained_images, images.dtype), targets).numpy().astype(np.float64)
    drop = np.maximum(0.0, y - o) / np.maximum(y, np.finfo(np.float64).tiny)
    increase = o > y
    return ConfidenceChange(y, o, drop, increase, float(100 * drop.mean()), float(100 * increase.mean()), targets.numpy())


def average_drop(model: Any, images: Any, saliency: Any, targets: Any = None, **kwargs: Any) -> Score:
    """Average Drop % = ``100 / N * sum max(0, Y - O) / Y`` (lower is better); see :func:`confidence_change`."""
    change = confidence_change(model, images, saliency, targets, **kwargs)
    return Score(change.average_drop, 100 * change.drop)


def increase_in_confidence(model: Any, images: Any, saliency: Any, targets: Any = None, **kwargs: Any) -> Score:
    """% Increase in Confidence = ``100 / N * sum [O > Y]`` (higher is better); see :func:`confidence_change`."""
    change = confidence_change(model, images, saliency, targets, **kwargs)
    return Score(change.increase_in_confidence, 100 * change.increase.astype(np.float64))
