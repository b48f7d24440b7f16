"""A noise wrapper for any attribution method: SmoothGrad, SquareGrad and VarGrad (Captum's NoiseTunnel idea).

``NoiseTunnel(explainer, kind=...)`` explains ``S = num_samples`` noisy copies
``x + sigma * eps_k`` (``eps_k ~ N(0, 1)``, ``sigma = noise_scale * (high -
low)`` of the adapter's input range) with the wrapped explainer's
attributions ``a_k`` and returns, per input channel:

* ``"smoothgrad"``: ``mean_k a_k`` (Smilkov et al. 2017);
* ``"squaregrad"``: ``mean_k a_k^2`` (Hooker et al. 2019; xplique ``SquareGrad``);
* ``"vargrad"``: the unbiased sample variance ``S / (S - 1) * (mean_k a_k^2 -
  (mean_k a_k)^2)`` (Adebayo et al. 2018; xplique ``VarGrad`` uses the same
  ``S / (S - 1)`` factor, Captum's NoiseTunnel the biased ``1 / S`` one).

The map is the wrapped explainer's own channel reduction of that statistic
(max of ``|.|`` over channels for the vanilla gradient; xplique reduces with
a channel mean). Noise draw ``k`` depends only on ``(seed, k)``; the rows
(image, draw) are evaluated ``batch_size`` at a time.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from tfxai import _batching, _runtime, _validation
from tfxai.errors import InvalidInputError, InvalidTypeError
from tfxai.explainers.base import AttributionExplainer, Explainer
from tfxai.explainers.gradients import VanillaGradient

KINDS = ("smoothgrad", "squaregrad", "vargrad")


class NoiseTunnel(AttributionExplainer):
    """SmoothGrad / SquareGrad / VarGrad on top of any attribution explainer.

    Example::

        ig = tfxai.IntegratedGradients(model, num_steps=16)
        smooth_ig = tfxai.NoiseTunnel(ig, kind="smoothgrad", num_samples=20, seed=0)
        maps = smooth_ig(images)

    Args:
        explainer: an :class:`~tfxai.explainers.base.AttributionExplainer`
            (Vanilla Gradient, Input x Gradient, Integrated Gradients, Guided
            Backprop, ...), or such a class together with ``model=``.
        kind: ``"smoothgrad"``, ``"squaregrad"`` or ``"vargrad"`` (see the module docstring).
        num_samples: noisy copies per image (at least 2 for VarGrad).
        noise_scale: noise standard deviation as a fraction of the input range ``high - low``.
        model: the model, when `explainer` is a class.
        batch_size: noisy rows per call of the wrapped explainer (default: the wrapped explainer's).
        seed: seed of the noise (None: a fresh seed per call). A stochastic
            wrapped explainer gets one seed derived from it per call.

    References:
        Smilkov et al. (2017), "SmoothGrad: removing noise by adding noise", arXiv:1706.03825.
        Adebayo et al. (2018), "Sanity Checks for Saliency Maps", NeurIPS (VarGrad).
        Hooker et al. (2019), "A Benchmark for Interpretability Methods in Deep Neural Networks" (SmoothGrad-Squared).
    """

    def __init__(self, explainer: Any, *, kind: str = "smoothgrad", num_samples: int = 50, noise_scale: float = 0.15,
                 model: Any = None, batch_size: int | None = None, seed: int | None = None):
        if isinstance(explainer, type):
            if not issubclass(explainer, AttributionExplainer):
                raise InvalidTypeError(_not_attribution(explainer.__name__))
            if model is None:
                raise InvalidInputError(
                    f"`explainer` is the class {explainer.__name__}; pass the model too: "
                    f"`NoiseTunnel({explainer.__name__}, model=model)` or `NoiseTunnel({explainer.__name__}(model))`."
                )
            explainer = explainer(model)
        elif not isinstance(explainer, AttributionExplainer):
            name = type(explainer).__name__
            raise InvalidTypeError(_not_attribution(name) if isinstance(explainer, Explainer) else (
                f"`explainer` must be an attribution explainer such as `tfxai.VanillaGradient(model)`; received {name}."
            ))
        self.explainer = explainer
        super().__init__(explainer.adapter, output=explainer.output,
                         batch_size=explainer.batch_size if batch_size is None else batch_size, seed=seed)
        self.kind = _validation.check_choice(kind, "kind", KINDS)
        self.num_samples = _validation.check_positive_int(num_samples, "num_samples", minimum=2 if kind == "vargrad" else 1)
        self.noise_scale = _validation.check_non_negative_float(noise_scale, "noise_scale")
        low, high = self.adapter.input_range
        self.sigma = self.noise_scale * (high - low)
        self.signed = explainer.signed if self.kind == "smoothgrad" else False

    def check_inputs(self, images: tf.Tensor) -> None:
        self.explainer.check_inputs(images)

    def noise(self, shape: Any, seed: tf.Tensor, k: tf.Tensor, dtype: tf.DType) -> tf.Tensor:
        """``sigma * eps`` for draws `k` ``(R,)``: ``(R, *shape)``; draw k depends only on ``(seed, k)``."""
        return self.sigma * tf.map_fn(
            lambda j: tf.random.stateless_normal(shape, _runtime.row_seed(seed, j), dtype=dtype),
            k, fn_output_signature=dtype,
        )

    def attribute_batch(self, images: tf.Tensor, targets: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        targets = self.runtime.resolve(images, targets)  # the class of the clean image
        inner_seed = tf.stack([seed[0], seed[1] + self.num_samples])
        shape = tf.shape(images)[1:]
        vargrad = self.kind == "vargrad"

        def row(image_index: tf.Tensor, k: tf.Tensor) -> Any:
            noisy = tf.gather(images, image_index) + self.noise(shape, seed, k, images.dtype)
            a = self.explainer.attribute_batch(noisy, tf.gather(targets, image_index), inner_seed)
            if self.kind == "smoothgrad":
                return a
            return (a, a * a) if vargrad else a * a

        one = tf.TensorSpec(images.shape[1:], images.dtype)
        spec = (one, one) if vargrad else one
        sums = _batching.accumulate_rows(row, tf.shape(images)[0], self.num_samples, self.batch_size, spec)
        n = float(self.num_samples)
        if not vargrad:
            return sums / n
        total, squares = sums
        mean = total / n
        return tf.maximum(squares - total * mean, 0.0) / (n - 1.0)

    def reduce_channels(self, attributions: tf.Tensor) -> tf.Tensor:
        return self.explainer.reduce_channels(attributions)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.explainer!r}, kind={self.kind!r}, num_samples={self.num_samples}, "
                f"noise_scale={self.noise_scale}, batch_size={self.batch_size}, seed={self.seed})")


def _not_attribution(name: str) -> str:
    return (
        f"NoiseTunnel wraps attribution explainers (per-pixel, per-channel input attributions such as "
        f"VanillaGradient, InputXGradient, IntegratedGradients, GuidedBackprop); {name} is not one."
    )


class _VanillaNoise(NoiseTunnel):
    kind_name = "smoothgrad"

    @classmethod
    def quick_settings(cls, quick: bool) -> dict:
        return {"num_samples": 10 if quick else 50, "seed": 0}

    def __init__(self, model: Any, *, num_samples: int = 50, noise_scale: float = 0.15, output: str = "probability",
                 batch_size: int = 32, seed: int | None = None):
        super().__init__(VanillaGradient(model, output=output, batch_size=batch_size), kind=self.kind_name,
                         num_samples=num_samples, noise_scale=noise_scale, batch_size=batch_size, seed=seed)


class SquareGrad(_VanillaNoise):
    """SquareGrad: ``mean_k (d score / d x (x + sigma eps_k))^2``, map = max over channels.

    :class:`NoiseTunnel` ``(VanillaGradient(model), kind="squaregrad")``;
    `output` is the explained score of the vanilla gradient (``"probability"``
    by default, as tfxai's Vanilla Gradient and SmoothGrad).
    """

    name = "squaregrad"
    title = "SquareGrad"
    signed = False
    aliases = ("smoothgrad_squared", "smoothgrad2")
    kind_name = "squaregrad"


class VarGrad(_VanillaNoise):
    """VarGrad: the sample variance over noisy copies of the vanilla gradient, map = max over channels.

    :class:`NoiseTunnel` ``(VanillaGradient(model), kind="vargrad")``.
    """

    name = "vargrad"
    title = "VarGrad"
    signed = False
    kind_name = "vargrad"


__all__ = ["NoiseTunnel", "SquareGrad", "VarGrad", "KINDS"]
