"""Integrated Gradients as an explainer class (batched, chunked over alphas)."""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from tfxai import _batching, _integration, _validation, baselines
from tfxai.errors import InvalidInputError
from tfxai.explainers.base import BaselineExplainer


class IntegratedGradients(BaselineExplainer):
    """Integrated Gradients along the straight path from a baseline ``x'`` to ``x``.

    ``IG(x) = (x - x') * integral_0^1 d score / d x (x' + alpha (x - x')) d alpha``,
    with the integral replaced by the quadrature rule `method` over
    `num_steps` intervals (``trapezoid``: ``num_steps + 1`` alphas, as in the TF
    tutorial; ``riemann_left``, ``riemann_right`` (the lecture's formula),
    ``riemann_middle``: ``num_steps`` alphas). The score is the softmax
    probability by default, as in the tutorial. Completeness:
    ``sum IG -> score(x) - score(x')`` as `num_steps` grows (see
    :meth:`convergence_delta`).

    The ``N x draws x alphas`` rows are evaluated `batch_size` at a time and
    each row's weighted gradient is summed into its image, so the rule is
    never cut at chunk borders and memory does not grow with `num_steps`.

    Attributions are ``(N, H, W, C)`` and signed; the map is ``sum_c |IG_c|``.

    Named baselines use the model's valid input range, read by
    :func:`tfxai.adapt` (``[0, 255]`` behind a leading ``Rescaling``; give it
    once with ``tfxai.adapt(model, input_range=(low, high))`` otherwise).

    Example::

        ig = tfxai.IntegratedGradients(model, baseline="blur", num_steps=64)
        maps = ig(images, targets=[281, 207])             # (N, H, W)
        delta = ig.convergence_delta(images, ig.attributions(images, [281, 207]), [281, 207])

    Args:
        model: the classifier or its adapter.
        baseline: a name from ``tfxai.baselines.NAMES`` (``black``, ``white``,
            ``uniform``, ``gaussian``, ``blur``, ``max_distance``), a number or
            array broadcastable to the images, or a callable
            ``images -> baselines``.
        num_steps: number of intervals ``m``.
        method: quadrature rule, one of ``trapezoid``, ``riemann_left``,
            ``riemann_right``, ``riemann_middle``.
        batch_size: rows (interpolated images) per gradient pass.
        num_baseline_samples: draws averaged for ``uniform``/``gaussian`` baselines.
        seed: seed of the random baselines (None: a fresh seed per call).
        output: ``"probability"`` (default) or ``"logit"``.

    References:
        Sundararajan, Taly, Yan (2017), "Axiomatic Attribution for Deep
        Networks", arXiv:1703.01365; TensorFlow tutorial "Integrated gradients".
    """

    name = "ig"
    title = "Integrated Gradients"
    aliases = ("integratedgradients",)

    @classmethod
    def quick_settings(cls, quick: bool) -> dict:
        return {"num_steps": 16 if quick else 32, "seed": 0}

    def __init__(
        self,
        model: keras.Model,
        *,
        baseline: Any = "black",
        num_steps: int = 50,
        method: str = "trapezoid",
        num_baseline_samples: int = 1,
        seed: int | None = None,
        output: str = "probability",
        batch_size: int = 32,
    ):
        super().__init__(model, output=output, batch_size=batch_size, seed=seed)
        self.num_steps = _validation.check_positive_int(num_steps, "num_steps")
        self.method = _validation.check_choice(method, "method", _integration.METHODS)
        self.num_baseline_samples = _validation.check_positive_int(num_baseline_samples, "num_baseline_samples")
        self._baseline = baselines.Baseline(baseline)
        if self.num_baseline_samples > 1 and not self._baseline.random:
            raise InvalidInputError(
                f"`num_baseline_samples` > 1 only makes sense for random baselines {baselines.RANDOM}; "
                f"baseline {baseline!r} is deterministic. Received: num_baseline_samples={num_baseline_samples}."
            )
        self.baseline = self._baseline.value

    def attribute_batch(self, images: tf.Tensor, targets: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        targets = self.runtime.resolve(images, targets)
        dtype = images.dtype
        num_alphas = _integration.num_points(self.method, self.num_steps)
        draws = self.num_baseline_samples
        stacked = tf.stack([self.baselines(images, seed, d) for d in range(draws)])  # (draws, N, H, W, C)

        def row(image_index: tf.Tensor, k: tf.Tensor) -> tf.Tensor:
            draw, step = k // num_alphas, k % num_alphas
            alpha, weight = _integration.points(self.method, self.num_steps, step, dtype)
            x = tf.gather(images, image_index)
            x0 = tf.gather_nd(stacked, tf.stack([draw, image_index], axis=1))
            grads = self.input_gradients(x0 + alpha[:, None, None, None] * (x - x0), tf.gather(targets, image_index))[0]
            return (x - x0) * grads * (weight / draws)[:, None, None, None]

        spec = tf.TensorSpec(images.shape[1:], dtype)
        return _batching.accumulate_rows(row, tf.shape(images)[0], draws * num_alphas, self.batch_size, spec)

    def reduce_channels(self, attributions: tf.Tensor) -> tf.Tensor:
        return tf.reduce_sum(tf.abs(attributions), axis=-1)
