"""Gradient saliency methods: Vanilla Gradient, Input x Gradient, SmoothGrad."""

from __future__ import annotations

import keras
import tensorflow as tf

from tfxai import _batching, _runtime, _validation
from tfxai.errors import InvalidInputError
from tfxai.explainers.base import AttributionExplainer


class _GradientMethod(AttributionExplainer):
    def __init__(self, model: keras.Model, *, output: str = "probability", batch_size: int = 32):
        super().__init__(model, output=output, batch_size=batch_size)

    def _gradients(self, images: tf.Tensor, targets: tf.Tensor) -> tf.Tensor:
        """d score / d input for every image, chunked by `batch_size`, shape (N, H, W, C)."""

        def chunk(index: tf.Tensor) -> tf.Tensor:
            return self.input_gradients(tf.gather(images, index), tf.gather(targets, index))[0]

        spec = tf.TensorSpec(images.shape[1:], images.dtype)
        return _batching.map_images(chunk, tf.shape(images)[0], self.batch_size, spec)


class VanillaGradient(_GradientMethod):
    """Vanilla gradient saliency: ``max_c |d score / d x_c|``.

    The attributions are the signed gradients ``(N, H, W, C)``; the map is the
    absolute gradient reduced with a max over channels, shape ``(N, H, W)``.

    Args:
        model: the classifier (see :class:`~tfxai.explainers.base.Explainer`).
        output: ``"probability"`` (default, as in the T-Grad paper's baselines) or ``"logit"``.
        batch_size: images per gradient pass.

    References:
        Simonyan, Vedaldi, Zisserman (2014), "Deep Inside Convolutional Networks",
        arXiv:1312.6034.
    """

    name = "vanilla"
    title = "Vanilla Gradient"
    aliases = ("vanillagradient", "saliency")

    def attribute_batch(self, images: tf.Tensor, targets: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        return self._gradients(images, targets)

    def reduce_channels(self, attributions: tf.Tensor) -> tf.Tensor:
        return tf.reduce_max(tf.abs(attributions), axis=-1)


class InputXGradient(_GradientMethod):
    """Input x Gradient: ``x * d score / d x``, summed over channels for the map.

    Attributions ``(N, H, W, C)`` are signed; the map ``(N, H, W)`` is their
    channel sum (a signed map; for a linear model it sums to ``score - bias``).

    References:
        Shrikumar, Greenside, Kundaje (2017), "Learning Important Features Through
        Propagating Activation Differences", arXiv:1704.02685.
    """

    name = "inputxgradient"
    title = "Input x Gradient"
    signed = True
    aliases = ("ixg",)

    def attribute_batch(self, images: tf.Tensor, targets: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        return images * self._gradients(images, targets)

    def reduce_channels(self, attributions: tf.Tensor) -> tf.Tensor:
        return tf.reduce_sum(attributions, axis=-1)

    def explain_batch(self, images: tf.Tensor, targets: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        """The map chunk by chunk: the ``(N, H, W, C)`` attributions are never gathered."""

        def chunk(index: tf.Tensor) -> tf.Tensor:
            batch = tf.gather(images, index)
            return self.reduce_channels(batch * self.input_gradients(batch, tf.gather(targets, index))[0])

        return _batching.map_images(chunk, tf.shape(images)[0], self.batch_size, tf.TensorSpec(images.shape[1:3], images.dtype))


class SmoothGrad(_GradientMethod):
    """SmoothGrad: the gradient averaged over noisy copies of the image.

    ``mean_k d score / d x (x + sigma * eps_k)`` with ``eps_k ~ N(0, 1)`` and
    ``sigma = noise_scale * (high - low)``, the model's input range (read by
    :func:`tfxai.adapt`: ``[0, 255]`` for a model that rescales raw pixels).
    Attributions are that mean gradient ``(N, H, W, C)``; the map is its
    absolute value, max over channels (abs is taken after the mean).

    Noise draw ``k`` depends only on ``(seed, k)``, so results do not depend on
    `batch_size` or on the order of the images. With ``seed=None`` each call
    draws a fresh seed.

    Args:
        model: the classifier.
        num_samples: noisy copies per image.
        noise_scale: noise standard deviation as a fraction of the image's range.
        seed: integer seed for the stateless noise, or None.
        output: ``"probability"`` (default) or ``"logit"``.
        batch_size: noisy rows per gradient pass.

    References:
        Smilkov, Thorat, Kim, Viegas, Wattenberg (2017), "SmoothGrad: removing
        noise by adding noise", arXiv:1706.03825.
    """

    name = "smoothgrad"
    title = "SmoothGrad"

    @classmethod
    def quick_settings(cls, quick: bool) -> dict:
        return {"num_samples": 8 if quick else 25, "seed": 0}

    def __init__(
        self,
        model: keras.Model,
        *,
        num_samples: int = 50,
        noise_scale: float = 0.15,
        seed: int | None = None,
        output: str = "probability",
        batch_size: int = 32,
    ):
        AttributionExplainer.__init__(self, model, output=output, batch_size=batch_size, seed=seed)
        self.num_samples = _validation.check_positive_int(num_samples, "num_samples")
        self.noise_scale = _validation.check_non_negative_float(noise_scale, "noise_scale")
        low, high = self.adapter.input_range
        if self.noise_scale * (high - low) > 1e6 * max(abs(low), abs(high), 1.0):
            raise InvalidInputError(
                f"`noise_scale` is the noise standard deviation as a fraction of the input range {self.adapter.input_range}; "
                f"received noise_scale={noise_scale!r}, noise a million times larger than any pixel. Typical: 0.1-0.2."
            )

    def attribute_batch(self, images: tf.Tensor, targets: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        targets = self.runtime.resolve(images, targets)
        low, high = self.adapter.input_range
        sigma = tf.constant(self.noise_scale * (high - low), images.dtype)
        shape = tf.shape(images)[1:]

        def row(image_index: tf.Tensor, k: tf.Tensor) -> tf.Tensor:
            noise = tf.map_fn(
                lambda j: tf.random.stateless_normal(shape, _runtime.row_seed(seed, j), dtype=images.dtype),
                k,
                fn_output_signature=images.dtype,
            )
            noisy = tf.gather(images, image_index) + sigma * noise
            grads = self.input_gradients(noisy, tf.gather(targets, image_index))[0]
            return grads / self.num_samples

        spec = tf.TensorSpec(images.shape[1:], images.dtype)
        return _batching.accumulate_rows(row, tf.shape(images)[0], self.num_samples, self.batch_size, spec)

    def reduce_channels(self, attributions: tf.Tensor) -> tf.Tensor:
        return tf.reduce_max(tf.abs(attributions), axis=-1)


__all__ = ["VanillaGradient", "InputXGradient", "SmoothGrad"]
