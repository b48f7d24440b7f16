"""Insertion and deletion curves (Petsiuk et al., RISE; the T-Grad / Poly-CAM protocol).

Pixels are ranked by their map value (most salient first). *Deletion* replaces the
top-ranked pixels of the image with a substrate, *insertion* starts
from the substrate and reveals the top-ranked pixels of the image;
``pixels_per_step`` pixels (all channels) change per step. After each step the
softmax probability of the target class is recorded. A good map makes the
deletion curve fall fast (low AUC) and the insertion curve rise fast (high AUC).

Ranking: the map is upsampled bilinearly to the image size if it is
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

from tfxai import _batching, _validation
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


def curve_auc(scores: Any, fractions: Any, rule: str = "trapezoid") -> Any:
    """AUC of ``(N, S + 1)`` curves sampled at ``fractions`` ``(S + 1,)`` with `rule`, in float64.

    A NumPy ``(N,)`` array when called eagerly, a tensor inside a graph (the
    evaluation runner's compiled score step uses this same function).
    """
    _validation.check_choice(rule, "auc", AUC_RULES)
    scores = tf.cast(scores, tf.float64) if tf.is_tensor(scores) else tf.constant(np.asarray(scores, np.float64))
    if rule == "mean_of_steps":
        value = tf.reduce_mean(scores[:, 1:], axis=1)
    else:
        widths = tf.constant(np.diff(np.asarray(fractions, np.float64)), tf.float64)
        value = tf.reduce_sum((scores[:, 1:] + scores[:, :-1]) * 0.5 * widths, axis=1)
    return value.numpy() if tf.executing_eagerly() else value


def curve_fractions(height: int, width: int, steps: int, per_step: int) -> np.ndarray:
    """``(S + 1,)`` fraction of the pixels changed after each of the `steps` steps of `per_step` pixels."""
    return np.minimum(np.arange(steps + 1) * per_step, height * width) / (height * width)


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


def pixel_ranks(maps: tf.Tensor) -> tf.Tensor:
    """Rank ``(N, H*W)`` of every pixel, 0 = most salient; ties in row-major order (stable sort)."""
    flat = tf.reshape(maps, [tf.shape(maps)[0], -1])
    order = tf.argsort(-flat, axis=-1, stable=True)
    return tf.argsort(order, axis=-1, stable=True)


def _curves(model, images, maps, targets, substrate, mode, num_steps, pixels_per_step, auc, output, batch_size):
    _validation.check_choice(auc, "auc", AUC_RULES)
    runtime, scores_fn, images, targets = _common.prepare(model, images, targets, output, batch_size)
    maps = _common.check_maps(maps, images)
    height, width = int(images.shape[1]), int(images.shape[2])
    steps, per_step = step_schedule(height, width, num_steps, pixels_per_step)
    substrate = _common.make_substrate(substrate, images, runtime.adapter.input_range)
    ranks = pixel_ranks(maps)
    run = curves_fn(scores_fn, tuple(images.shape[1:]), steps, per_step, mode == "deletion", runtime.batch_size)
    function = runtime.compiled(("curves", steps, per_step, mode), run, images, substrate, ranks, targets)
    scores = function(images, substrate, ranks, targets).numpy().astype(np.float64)
    fractions = curve_fractions(height, width, steps, per_step)
    return CurveResult(fractions, scores, curve_auc(scores, fractions, auc), targets.numpy(), auc)


def curves_fn(scores_fn, image_shape, steps, per_step, delete, batch_size, fixed=False):
    """The in-graph curves ``(images, substrate, ranks, targets) -> (N, S + 1)`` scores.

    The one core of :func:`insertion`, :func:`deletion` and the evaluation
    runner; `fixed`: static chunk shapes for XLA (see :mod:`tfxai._batching`).
    """
    height, width = image_shape[0], image_shape[1]

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
            row, tf.shape(images)[0], steps + 1, batch_size, tf.TensorSpec([steps + 1], images.dtype), fixed=fixed
        )

    return run


def deletion(
    model: Any,
    images: Any,
    maps: Any,
    targets: Any = None,
    *,
    substrate: Any = "blur",
    num_steps: int | None = 224,
    pixels_per_step: int | None = None,
    auc: str = "trapezoid",
    output: str = "probability",
    batch_size: int = 64,
) -> CurveResult:
    """Deletion curves: replace the most salient pixels by `substrate`, step by step.

    Args:
        model: the classifier or its adapter (never modified; a final softmax is applied once).
        images: ``(N, H, W, C)`` in the model's input space.
        maps: ``(N, H, W)`` maps, or smaller ``(N, h, w)`` maps (bilinearly upsampled).
        targets: None (predicted class on the unperturbed image), an int, a class name or N of them.
        substrate: what removed pixels become: ``"blur"`` (default: Gaussian
            kernel 11, sigma 5, as the T-Grad protocol), ``"black"`` (the low end
            of the model's input range), ``"zero"``, a number, an array
            broadcastable to the images, or a callable ``f(images)``, in the
            model's input space. (An IG *baseline* is a different thing.)
        num_steps: number of steps S (``pixels_per_step = ceil(H W / S)``).
        pixels_per_step: pixels changed per step (overrides `num_steps`).
        auc: ``"trapezoid"`` (RISE, default) or ``"mean_of_steps"`` (the paper's).
        output: ``"probability"`` (default) or ``"logit"``.
        batch_size: perturbed images per model call.

    Returns:
        :class:`CurveResult` with ``scores`` of shape ``(N, S + 1)``. Lower AUC is better.

    Example::

        maps = tfxai.GradCAM(model)(images)
        result = tfxai.metrics.deletion(model, images, maps, num_steps=16)
        result.auc                                     # (N,)
    """
    return _curves(model, images, maps, targets, substrate, "deletion", num_steps, pixels_per_step, auc, output, batch_size)


def insertion(model: Any, images: Any, maps: Any, targets: Any = None, **kwargs: Any) -> CurveResult:
    """Insertion curves: start from the substrate and reveal the most salient pixels step by step.

    Same keyword-only arguments as :func:`deletion` (`substrate`, `num_steps`,
    `pixels_per_step`, `auc`, `output`, `batch_size`). Higher AUC is better.
    """
    options = {"substrate": "blur", "num_steps": 224, "pixels_per_step": None, "auc": "trapezoid",
               "output": "probability", "batch_size": 64}
    unknown = set(kwargs) - set(options)
    if unknown:
        raise TypeError(f"insertion() got unexpected keyword arguments {sorted(unknown)}; see tfxai.metrics.deletion.")
    options.update(kwargs)
    return _curves(model, images, maps, targets, options.pop("substrate"), "insertion", **options)


class InsertionDeletion(NamedTuple):
    """Both curves of the same maps and their per-image difference ``insertion.auc - deletion.auc``."""

    insertion: CurveResult
    deletion: CurveResult
    difference: np.ndarray


def insertion_minus_deletion(model: Any, images: Any, maps: Any, targets: Any = None, **kwargs: Any) -> InsertionDeletion:
    """Insertion AUC minus deletion AUC per image (higher is better; the T-Grad paper's summary)."""
    ins = insertion(model, images, maps, targets, **kwargs)
    dele = deletion(model, images, maps, ins.targets, **kwargs)
    return InsertionDeletion(ins, dele, ins.auc - dele.auc)
