"""Guided Integrated Gradients: an adaptive path that moves the low-gradient features first."""

from __future__ import annotations

import math
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from tfxai import _batching, _validation, baselines
from tfxai.errors import InvalidInputError, InvalidTypeError
from tfxai.explainers.base import BaselineExplainer

#: Tolerance of the "l1 target reached" test, relative and absolute (PAIR's ``EPSILON`` with ``math.isclose``).
EPSILON = 1e-9


def _check_fraction(value: Any) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
        raise InvalidTypeError(f"`fraction` must be a number in (0, 1]. Received: fraction={value!r}.")
    if not np.isfinite(value) or not 0 < value <= 1:
        raise InvalidInputError(
            f"`fraction` must be in (0, 1]: the share of features moved at each step (0.25 in the paper). "
            f"Received: fraction={value!r}."
        )
    return float(value)


class GuidedIG(BaselineExplainer):
    """Guided Integrated Gradients (Kapishnikov et al. 2021): IG along an adaptive path.

    Integrated Gradients integrates along the straight line from the baseline
    ``x'`` to ``x``, and collects the gradients of regions where the model is
    saturated or noisy. Guided IG builds the path as it goes: at each of the
    `num_steps` steps it moves only the `fraction` of the features whose
    gradient has the smallest magnitude toward ``x``, until the path has
    covered ``1/num_steps`` of the L1 distance ``||x - x'||_1``; the
    attribution is the path integral ``sum_k (p_k - p_{k-1}) * grad(p_{k-1})``
    over the path points ``p_0 = x', ..., p_m = x`` (a left Riemann sum along
    the path). Per image, with ``d = x - x'``:

    1. The path point ``p`` starts at ``x'``; for step ``k = 1..m`` (``m = num_steps``):
       ``g = grad score(p)``, ``alpha = k / m``,
       ``[a_min, a_max] = [alpha - max_dist, alpha + max_dist]`` clipped to ``[0, 1]``,
       ``x_min = x' + a_min d``, ``x_max = x' + a_max d``, target ``L = ||d||_1 (1 - alpha)``.
    2. Repeat: features behind ``a_min`` jump to ``x_min`` (the path stays
       within `max_dist` of the straight line, in units of alpha); if
       ``||p - x||_1`` is within ``1e-9`` (relative and absolute) of ``L``, stop; otherwise select
       ``S``: the features not yet at ``x_max`` whose ``|g_i|`` is at most the
       ``floor(fraction (D - 1))``-th smallest ``|g|`` of all ``D`` features (those
       at ``x_max`` rank as ``+inf``, ties are all selected, features with
       ``d_i = 0`` are always at ``x_max``); ``gamma = (||p - x||_1 - L) /
       sum_S |x_max - p|``. If ``gamma > 1`` the selected features go all the
       way to ``x_max`` and the loop repeats with the next ones; else they move
       the fraction ``gamma`` of the way and the step is done.
    3. ``a += (p_k - p_{k-1}) * g`` (``p_k``: the point after step ``k``).

    The path ends at ``x``, so ``sum a -> score(x) - score(x')`` as
    `num_steps` grows (completeness, see :meth:`convergence_delta`). The gap
    closes more slowly than IG's: the features that move in a step are chosen
    for their small gradient at its start, so the left sum tends to
    underestimate their share (PAIR's implementation has the same gap; on
    a small random CNN with 200 steps it was ~20x IG's).
    ``fraction=1`` moves every feature together, so the path is the straight
    line (whatever `max_dist`), and Guided IG is Integrated Gradients with the
    left Riemann rule (``method="riemann_left"``, ``num_steps`` intervals:
    gradients at ``alpha = 0, 1/m, ..., (m-1)/m``); ``max_dist=0`` forces the
    same straight line whatever `fraction`.

    This is PAIR's ``saliency.core.GuidedIG`` written for a batch of images
    inside one TensorFlow graph: the path, its L1 bookkeeping and the ranking
    are float64 (as PAIR's NumPy), the model sees the path points in its own
    dtype; each step's gradients are taken `batch_size` images at a time.
    Where PAIR would loop forever or fail an assertion (rounding leaves the
    path just past its target, or nothing left to move) the step simply ends.
    The path follows the ranking of ``|gradient|``: on float32 models a
    gradient that rounds differently (another graph, a ReLU6 input within
    rounding of its kink) can send it another way, so float32 attributions
    are reproducible run to run but can differ visibly from another
    implementation's; float64 models give PAIR's result to 1e-13.

    Attributions are ``(N, H, W, C)`` and signed; the map is
    ``sum_c |a_c|`` (as :class:`~tfxai.IntegratedGradients`; PAIR's
    ``VisualizeImageGrayscale`` also sums absolute values over channels).

    Example::

        gig = tfxai.GuidedIG(model, baseline="black", num_steps=200)
        attributions = gig.attributions(images, targets=[281, 207])   # (N, H, W, C), signed
        maps = gig(images, targets=[281, 207])                        # (N, H, W)
        delta = gig.convergence_delta(images, attributions, [281, 207])  # sum a - (s(x) - s(x'))

    Args:
        model: the classifier or its adapter.
        baseline: as :class:`~tfxai.IntegratedGradients`: a name from
            ``tfxai.baselines.NAMES``, a number or array broadcastable to the
            images, or a callable ``images -> baselines``.
        num_steps: steps ``m`` (gradient evaluations per image); PAIR's default 200.
        fraction: share of the features, in ``(0, 1]``, moved at each inner
            iteration (those with the smallest ``|gradient|``); the paper's 0.25.
        max_dist: how far, in units of alpha, a feature may lag or lead the
            straight line (``>= 0``; PAIR's default 0.02; 0 is the straight
            line, 1 or more an unbounded path inside the baseline-input box).
        output: ``"logit"`` (default) or ``"probability"``.
        batch_size: images per gradient pass.
        seed: seed of a random baseline (``uniform``, ``gaussian``).

    References:
        Kapishnikov, Venugopalan, Avci, Wedin, Terry, Birdal (2021), "Guided
        Integrated Gradients: An Adaptive Path Method for Removing Noise",
        CVPR 2021, arXiv:2106.09788; PAIR ``saliency`` (``saliency/core/guided_ig.py``).
    """

    name = "guidedig"
    title = "Guided IG"
    slow = True

    @classmethod
    def quick_settings(cls, quick: bool) -> dict:
        return {"num_steps": 16 if quick else 64, "seed": 0}

    def __init__(
        self,
        model: keras.Model,
        *,
        baseline: Any = "black",
        num_steps: int = 200,
        fraction: float = 0.25,
        max_dist: float = 0.02,
        output: str = "logit",
        batch_size: int = 32,
        seed: int | None = None,
    ):
        super().__init__(model, output=output, batch_size=batch_size, seed=seed)
        self.num_steps = _validation.check_positive_int(num_steps, "num_steps")
        self.fraction = _check_fraction(fraction)
        self.max_dist = _validation.check_non_negative_float(max_dist, "max_dist")
        self._baseline = baselines.Baseline(baseline)
        self.baseline = self._baseline.value

    def attribute_batch(self, images: tf.Tensor, targets: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        targets = self.runtime.resolve(images, targets)
        dtype = images.dtype
        shape = images.shape[1:]
        size = shape.num_elements()
        n = tf.shape(images)[0]
        f64 = tf.float64
        x_in = tf.reshape(tf.cast(images, f64), [n, size])
        x_base = tf.reshape(tf.cast(self.baselines(images, seed), f64), [n, size])
        return tf.cast(tf.reshape(self._path(x_in, x_base, targets, dtype, shape), tf.shape(images)), dtype)

    def _gradients(self, x: tf.Tensor, targets: tf.Tensor, dtype: tf.DType, shape: tf.TensorShape) -> tf.Tensor:
        """``(N, D)`` float64 gradients of the score at path points `x`, `batch_size` images per pass."""

        def one(index: tf.Tensor) -> tf.Tensor:
            points = tf.cast(tf.reshape(tf.gather(x, index), [-1, *shape]), dtype)
            return self.input_gradients(points, tf.gather(targets, index))[0]

        grads = _batching.map_images(one, tf.shape(x)[0], self.batch_size, tf.TensorSpec(shape, dtype))
        return tf.reshape(tf.cast(grads, tf.float64), tf.shape(x))

    def _path(self, x_in: tf.Tensor, x_base: tf.Tensor, targets: tf.Tensor, dtype: tf.DType,
              shape: tf.TensorShape) -> tf.Tensor:
        """The Guided IG path and its attributions for ``(N, D)`` float64 inputs and baselines (pure TF)."""
        f64 = tf.float64
        size = int(x_in.shape[1])
        steps = self.num_steps
        rank = int(math.floor((size - 1) * self.fraction))  # np.quantile(..., method="lower")'s index
        # each unfinished inner iteration saturates >= rank + 1 features: a bound on the inner loop
        max_inner = -(-size // (rank + 1)) + 2
        diff = x_in - x_base
        moving = tf.not_equal(diff, 0)
        safe_diff = tf.where(moving, diff, tf.ones_like(diff))
        l1_total = tf.reduce_sum(tf.abs(diff), axis=1)
        inf = tf.constant(np.inf, f64)

        def step_body(step: tf.Tensor, x: tf.Tensor, attr: tf.Tensor) -> tuple:
            grad = self._gradients(x, targets, dtype, shape)
            fraction_done = (tf.cast(step, f64) + 1.0) / steps
            alpha_min = tf.maximum(fraction_done - self.max_dist, 0.0)
            alpha_max = tf.minimum(fraction_done + self.max_dist, 1.0)
            x_min = x_base + diff * alpha_min
            x_max = x_base + diff * alpha_max
            l1_target = l1_total * (1.0 - fraction_done)
            abs_grad = tf.abs(grad)

            def inner_body(i: tf.Tensor, x: tf.Tensor, done: tf.Tensor) -> tuple:
                x_alpha = tf.where(moving, (x - x_base) / safe_diff, alpha_max)
                pushed = tf.where(x_alpha < alpha_min, x_min, x)
                l1_current = tf.reduce_sum(tf.abs(pushed - x_in), axis=1)
                gap = l1_current - l1_target
                tolerance = tf.maximum(EPSILON * tf.maximum(tf.abs(l1_target), tf.abs(l1_current)), EPSILON)
                reached = gap <= tolerance  # PAIR: isclose (a gap below -tolerance fails its assertion)
                ranked = tf.where(tf.equal(pushed, x_max), inf, abs_grad)
                threshold = tf.sort(ranked, axis=1)[:, rank]
                selected = (ranked <= threshold[:, None]) & (ranked < inf)
                l1_s = tf.reduce_sum(tf.where(selected, tf.abs(pushed - x_max), 0.0), axis=1)
                gamma = tf.where(l1_s > 0, gap / tf.where(l1_s > 0, l1_s, 1.0), inf)
                partial = pushed + (x_max - pushed) * gamma[:, None]
                moved = tf.where(selected, tf.where(gamma[:, None] > 1.0, x_max, partial), pushed)
                new_x = tf.where(reached[:, None], pushed, moved)
                finished = reached | (gamma <= 1.0) | (l1_s <= 0)
                return i + 1, tf.where(done[:, None], x, new_x), done | finished

            _, x_next, _ = tf.while_loop(
                lambda i, x, done: (i < max_inner) & tf.reduce_any(~done),
                inner_body,
                (tf.constant(0), x, tf.zeros([tf.shape(x)[0]], tf.bool)),
            )
            return step + 1, x_next, attr + (x_next - x) * grad

        _, _, attr = tf.while_loop(
            lambda step, x, attr: step < steps, step_body, (tf.constant(0), x_base, tf.zeros_like(x_in))
        )
        return attr

    def reduce_channels(self, attributions: tf.Tensor) -> tf.Tensor:
        return tf.reduce_sum(tf.abs(attributions), axis=-1)

