"""Integrated Gradients as an explainer class (batched, chunked over alphas)."""

from __future__ import annotations

from typing import Any, Callable

import keras
import numpy as np
import tensorflow as tf

from tfxai import _batching, _integration, _validation, baselines
from tfxai.errors import InvalidInputError, InvalidTypeError
from tfxai.explainers.base import AttributionExplainer


class IntegratedGradients(AttributionExplainer):
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

    Args:
        model: the classifier.
        baseline: a name from ``tfxai.baselines.NAMES`` (``black``, ``white``,
            ``uniform``, ``gaussian``, ``blur``, ``max_distance``), a number or
            array broadcastable to the images, or a callable
            ``images -> baselines``.
        num_steps: number of intervals ``m``.
        method: quadrature rule, one of ``trapezoid``, ``riemann_left``,
            ``riemann_right``, ``riemann_middle``.
        batch_size: rows (interpolated images) per gradient pass.
        input_range: the valid ``(low, high)`` pixel range in the model's input
            space, used by named baselines.
        num_baseline_samples: draws averaged for ``uniform``/``gaussian`` baselines.
        seed: seed of the random baselines (None: a fresh seed per call).
        output: ``"probability"`` (default) or ``"logit"``.

    References:
        Sundararajan, Taly, Yan (2017), "Axiomatic Attribution for Deep
        Networks", arXiv:1703.01365; TensorFlow tutorial "Integrated gradients".
    """

    stochastic = True

    def __init__(
        self,
        model: keras.Model,
        baseline: Any = "black",
        num_steps: int = 50,
        method: str = "trapezoid",
        batch_size: int = 32,
        input_range: tuple[float, float] = (0.0, 1.0),
        num_baseline_samples: int = 1,
        seed: int | None = None,
        output: str = "probability",
    ):
        super().__init__(model, output=output, batch_size=batch_size)
        self.num_steps = _validation.check_positive_int(num_steps, "num_steps")
        self.method = _validation.check_choice(method, "method", _integration.METHODS)
        self.input_range = _validation.check_range(input_range)
        self.num_baseline_samples = _validation.check_positive_int(num_baseline_samples, "num_baseline_samples")
        self.seed = _validation.check_seed(seed)
        if isinstance(baseline, str):
            _validation.check_choice(baseline, "baseline", baselines.NAMES)
            if self.num_baseline_samples > 1 and baseline not in baselines.RANDOM:
                raise InvalidInputError(
                    f"`num_baseline_samples` > 1 only makes sense for random baselines {baselines.RANDOM}; "
                    f"baseline {baseline!r} is deterministic. Received: num_baseline_samples={num_baseline_samples}."
                )
        elif not callable(baseline):
            try:
                baseline = np.asarray(baseline, dtype=np.float64)
            except (TypeError, ValueError):
                raise InvalidTypeError(
                    "`baseline` must be a baseline name, a number, an array or a callable. "
                    f"Received: baseline={baseline!r}."
                ) from None
            if not np.all(np.isfinite(baseline)):
                raise InvalidInputError("`baseline` contains NaN or infinite values.")
        self.baseline = baseline
        alphas, weights = _integration.rule(self.method, self.num_steps)
        self._alphas, self._weights = alphas, weights

    def baselines(self, images: tf.Tensor, seed: tf.Tensor, draw: tf.Tensor | int = 0) -> tf.Tensor:
        """Baselines ``(N, H, W, C)`` for draw `draw` (in-graph)."""
        if isinstance(self.baseline, str):
            return baselines.make(self.baseline, images, self.input_range, self.row_seed(seed, draw))
        if callable(self.baseline):
            return tf.cast(self.baseline(images), images.dtype)
        return tf.broadcast_to(tf.cast(self.baseline, images.dtype), tf.shape(images))

    def check_inputs(self, images: tf.Tensor) -> None:
        """Check that an array baseline broadcasts to `images` (eagerly, before tracing)."""
        if isinstance(self.baseline, np.ndarray):
            try:
                np.broadcast_shapes(self.baseline.shape, tuple(images.shape))
            except ValueError:
                raise InvalidInputError(
                    f"`baseline` of shape {self.baseline.shape} cannot be broadcast to images of shape "
                    f"{tuple(images.shape)}. Pass a number, one image (H, W, C) or N images."
                ) from None

    def attribute_batch(self, images: tf.Tensor, targets: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        targets = self.resolve_targets(images, targets)
        dtype = images.dtype
        alphas = tf.constant(self._alphas, dtype)
        weights = tf.constant(self._weights / self.num_baseline_samples, dtype)
        num_alphas = len(self._alphas)
        draws = self.num_baseline_samples
        stacked = tf.stack([self.baselines(images, seed, d) for d in range(draws)])  # (draws, N, H, W, C)

        def row(image_index: tf.Tensor, k: tf.Tensor) -> tf.Tensor:
            draw, step = k // num_alphas, k % num_alphas
            x = tf.gather(images, image_index)
            x0 = tf.gather_nd(stacked, tf.stack([draw, image_index], axis=1))
            alpha = tf.gather(alphas, step)[:, None, None, None]
            grads = self.input_gradients(x0 + alpha * (x - x0), tf.gather(targets, image_index))[0]
            return (x - x0) * grads * tf.gather(weights, step)[:, None, None, None]

        spec = tf.TensorSpec(images.shape[1:], dtype)
        return _batching.accumulate_rows(row, tf.shape(images)[0], draws * num_alphas, self.batch_size, spec)

    def reduce_channels(self, attributions: tf.Tensor) -> tf.Tensor:
        return tf.reduce_sum(tf.abs(attributions), axis=-1)

    def convergence_delta(self, images: Any, attributions: Any, targets: Any = None) -> np.ndarray:
        """``sum IG - (score(x) - mean score(x'))`` per image, shape (N,) (Captum's delta).

        Exact for deterministic baselines; for random ones the same `seed` must
        have produced `attributions`.
        """
        if self.seed is None and self.baseline in baselines.RANDOM:
            raise InvalidInputError("convergence_delta needs a fixed `seed` for random baselines.")

        def body(images: tf.Tensor, targets: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
            targets = self.resolve_targets(images, targets)
            score_x = self.scores(self.logits(images), targets)
            score_0 = tf.add_n(
                [self.scores(self.logits(self.baselines(images, seed, d)), targets) for d in range(self.num_baseline_samples)]
            ) / self.num_baseline_samples
            return score_x - score_0

        difference = self._run("delta", body, images, targets).numpy()
        return np.sum(np.asarray(attributions), axis=(1, 2, 3)) - difference
