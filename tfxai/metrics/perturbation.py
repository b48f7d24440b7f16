"""Insertion and deletion curves (Petsiuk et al., RISE; the T-Grad / Poly-CAM protocol).

Pixels are ranked by saliency (most salient first). *Deletion* replaces the
top-ranked pixels of the image with a baseline substrate, *insertion* starts
from the substrate and reveals the top-ranked pixels of the image;
``pixels_per_step`` pixels (all channels) change per step. After each step the
softmax probability of the target class is recorded. A good map makes the
deletion curve fall fast (low AUC) and the insertion curve rise fast (high AUC).

Ranking: the saliency map is upsampled bilinearly to the image size if it is
smaller, flattened row-major, and sorted by decreasing value with a *stable*
sort, so tied pixels keep row-major order (top-left first). A constant map
therefore deletes pixels in reading order.

AUC rules:

* ``"trapezoid"`` (default, RISE): trapezoidal rule over the ``S + 1`` points
  ``(fraction_k, score_k)``, ``k = 0..S``, the unperturbed start included; with
  ``S * pixels_per_step == H * W`` this is ``(sum - s_0 / 2 - s_S / 2) / S``.
* ``"mean_of_steps"`` (the T-Grad paper's and Poly-CAM's scripts): the mean of
  the ``S`` post-step scores ``s_1..s_S``; the start point is excluded.

References:
    Petsiuk, Das, Saenko (2018), "RISE: Randomized Input Sampling for Explanation
    of Black-box Models", BMVC. Englebert et al. (2022), "Poly-CAM".
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
import tensorflow as tf

from tfxai import _batching, _validation, surgery
from tfxai.metrics import _common

AUC_RULES = ("trapezoid", "mean_of_steps")


class CurveResult(NamedTuple):
    """Per-image insertion or deletion curves.

    Attributes:
        fractions: ``(S + 1,)`` fraction of pixels changed after each step (``0`` first).
        scores: ``(N, S + 1)`` target score (softmax probability by default) after each step.
        auc: ``(N,)`` area under each curve with the chosen rule.
        targets: ``(N,)`` the explained classes.
        auc_rule: the rule used for `auc`.
    """

    fractions: np.ndarray
    scores: np.ndarray
    auc: np.ndarray
    targets: np.ndarray
    auc_rule: str


def curve_auc(scores: Any, fractions: Any, rule: str = "trapezoid") -> np.ndarray:
    """AUC of ``(N, S + 1)`` curves sampled at ``fractions`` ``(S + 1,)`` with `rule`."""
    _validation.check_choice(rule, "auc", AUC_RULES)
    scores = np.asarray(scores, np.float64)
    fractions = np.asarray(fractions, np.float64)
    if rule == "mean_of_steps":
        return scores[:, 1:].mean(axis=1)
    widths = np.diff(fractions)
    return ((scores[:, 1:] + scores[:, :-1]) * 0.5 * widths).sum(axis=1)


def step_schedule(height: int, width: int, num_steps: int | None, pixels_per_step: int | None) -> tuple[int, int]:
    """``(S, pixels_per_step)``: ``pixels_per_step = ceil(H W / num_steps)`` and ``S = ceil(H W / pixels_per_step)``.

    The effective number of steps ``S`` may be smaller than `num_steps` when
    ``H W`` is not a multiple of it (every pixel changes exactly once, no step
    repeats the previous one). 224 steps of 224 pixels for 224x224 images.
    """
    total = height * width
    if pixels_per_step is None:
        num_steps = _validation.check_positive_int(224 if num_steps is None else num_steps, "num_steps")
        pixels_per_step = math.ceil(total / num_steps)
    else:
        pixels_per_step = _validation.check_positive_int(pixels_per_step, "pixels_per_step")
    pixels_per_step = min(pixels_per_step, total)
    return math.ceil(total / pixels_per_step), pixels_per_step


def pixel_ranks(saliency: tf.Tensor) -> tf.Tensor:
    """Rank ``(N, H*W)`` of every pixel, 0 = most salient; ties in row-major order (stable sort)."""
    flat = tf.reshape(saliency, [tf.shape(saliency)[0], -1])
    order = tf.argsort(-flat, axis=-1, stable=True)
    return tf.argsort(order, axis=-1, stable=True)


def _curves(model, images, saliency, targets, baseline, mode, num_steps, pixels_per_step, auc, output, batch_size):
    model, images = _common.check_common(model, images, output, batch_size)
    _validation.check_choice(auc, "auc", AUC_RULES)
    saliency = _common.check_maps(saliency, images)
    height, width = int(images.shape[1]), int(images.shape[2])
    steps, per_step = step_schedule(height, width, num_steps, pixels_per_step)
    substrate = _common.make_baseline(baseline, images)
    scores_fn = _common.cached_score_model(model, output)
    targets = _common.resolve_targets(scores_fn, images, targets, surgery.num_classes(model), batch_size)
    ranks = pixel_ranks(saliency)
    scores = _run_curves(scores_fn, images, substrate, ranks, targets, steps, per_step, mode == "deletion", batch_size)
    scores = scores.numpy().astype(np.float64)
    fractions = np.minimum(np.arange(steps + 1) * per_step, height * width) / (height * width)
    return CurveResult(fractions, scores, curve_auc(scores, fractions, auc), targets.numpy(), auc)


def _run_curves(scores_fn, images, substrate, ranks, targets, steps, per_step, delete, batch_size):
    height, width, channels = images.shape[1:]

    def run(images, substrate, ranks, targets):
        def row(image_index, k):
            threshold = k * per_step  # pixels changed after k steps
            changed = tf.gather(ranks, image_index) < threshold[:, None]
            changed = tf.reshape(changed, [-1, height, width, 1])
            original = tf.gather(images, image_index)
            other = tf.gather(substrate, image_index)
            if delete:
                perturbed = tf.where(changed, other, original)
            else:
                perturbed = tf.where(changed, original, other)
            probs = scores_fn(perturbed)
            score = tf.gather(probs, tf.gather(targets, image_index), axis=1, batch_dims=1)
            return tf.one_hot(k, steps + 1, dtype=score.dtype) * score[:, None]

        return _batching.accumulate_rows(
            row, tf.shape(images)[0], steps + 1, batch_size, tf.TensorSpec([steps + 1], images.dtype)
        )

    key = ("curves", steps, per_step, delete, batch_size)
    function = _common.compiled(scores_fn, key, lambda: run, images, substrate, ranks, targets)
    return function(images, substrate, ranks, targets)


def deletion(
    model: Any,
    images: Any,
    saliency: Any,
    targets: Any = None,
    *,
    baseline: Any = "blur",
    num_steps: int | None = 224,
    pixels_per_step: int | None = None,
    auc: str = "trapezoid",
    output: str = "probability",
    batch_size: int = 64,
) -> CurveResult:
    """Deletion curves: replace the most salient pixels by `baseline`, step by step.

    Args:
        model: the classifier (never modified; a final softmax is applied once).
        images: ``(N, H, W, C)`` in the model's input space.
        saliency: ``(N, H, W)`` maps, or smaller ``(N, h, w)`` maps (bilinearly upsampled).
        targets: None (predicted class on the unperturbed image), an int or N ints.
        baseline: ``"blur"`` (default: Gaussian kernel 11, sigma 5, as the T-Grad
            protocol), ``"zero"``, a number, an array broadcastable to the images,
            or a callable ``f(images)``. It is in the model's input space.
        num_steps: number of steps S (``pixels_per_step = ceil(H W / S)``).
        pixels_per_step: pixels changed per step (overrides `num_steps`).
        auc: ``"trapezoid"`` (RISE, default) or ``"mean_of_steps"`` (the paper's).
        output: ``"probability"`` (default, softmax) or ``"logit"``.
        batch_size: perturbed images per model call.

    Returns:
        :class:`CurveResult` with ``scores`` of shape ``(N, S + 1)``. Lower AUC is better.
    """
    return _curves(model, images, saliency, targets, baseline, "deletion", num_steps, pixels_per_step, auc, output, batch_size)


def insertion(
    model: Any,
    images: Any,
    saliency: Any,
    targets: Any = None,
    *,
    baseline: Any = "blur",
    num_steps: int | None = 224,
    pixels_per_step: int | None = None,
    auc: str = "trapezoid",
    output: str = "probability",
    batch_size: int = 64,
) -> CurveResult:
    """Insertion curves: start from `baseline` and reveal the most salient pixels step by step.

    Same arguments as :func:`deletion`. Higher AUC is better.
    """
    return _curves(model, images, saliency, targets, baseline, "insertion", num_steps, pixels_per_step, auc, output, batch_size)


class InsertionDeletion(NamedTuple):
    """Both curves of the same maps and their per-image difference ``insertion.auc - deletion.auc``."""

    insertion: CurveResult
    deletion: CurveResult
    difference: np.ndarray


def insertion_minus_deletion(model: Any, images: Any, saliency: Any, targets: Any = None, **kwargs: Any) -> InsertionDeletion:
    """Insertion AUC minus deletion AUC per image (higher is better; the T-Grad paper's summary)."""
    ins = insertion(model, images, saliency, targets, **kwargs)
    dele = deletion(model, images, saliency, ins.targets, **kwargs)
    return InsertionDeletion(ins, dele, ins.auc - dele.auc)
