"""FullGrad (Srinivas & Fleuret, 2019): input-gradient plus bias-gradient maps."""

from __future__ import annotations

import keras
import tensorflow as tf

from tfxai import _batching, _validation, image_ops
from tfxai.decomposition import Decomposition
from tfxai.explainers.base import Explainer

VARIANTS = ("official", "pytorch_grad_cam")


class FullGrad(Explainer):
    """FullGrad saliency from the exact decomposition of the target logit.

    The logit ``s`` splits into ``x * ds/dx`` and one ``ds/dy * r`` term per
    bias site (:func:`tfxai.decompose`). Each spatial term (the input term and
    every conv/depthwise/BatchNormalization/Rescaling/activation-constant term;
    dense terms carry no spatial information and are left out) is
    post-processed and the results are summed:

    * ``variant="official"`` (the authors' ``_postProcess``): abs, min-max per
      sample over all ``(h, w, c)`` jointly (``(v - min) / (max + 1e-6)``),
      channel sum, bilinear upsampling to the input size, sum over maps.
    * ``variant="pytorch_grad_cam"`` (the implementation the T-Grad paper ran):
      abs, min-max of each channel separately (``(v - min) / (max + 1e-7)``),
      upsampling, channel sum, sum over maps, final min-max of the sum.

    Upsampling uses half-pixel centres (:func:`tfxai.image_ops.resize`); the
    official code uses ``align_corners=True``, OpenCV half-pixel centres.

    Args:
        model: the classifier; must be piecewise linear unless
            ``mode="linearize"`` (see :class:`tfxai.decomposition.Decomposition`).
        variant: ``"official"`` or ``"pytorch_grad_cam"``.
        mode: ``"exact"`` or ``"linearize"``.
        batch_size: images per forward/backward pass.

    References:
        Srinivas, Fleuret (2019), "Full-Gradient Representation for Neural
        Network Visualization", NeurIPS, arXiv:1905.00780.
    """

    def __init__(self, model: keras.Model, variant: str = "official", mode: str = "exact", batch_size: int = 32):
        super().__init__(model, output="logit", batch_size=batch_size)
        self.variant = _validation.check_choice(variant, "variant", VARIANTS)
        self.decomposition = Decomposition(model, mode=mode, batch_size=batch_size)
        self.mode = mode

    def explain_batch(self, images: tf.Tensor, targets: tf.Tensor) -> tf.Tensor:
        size = tuple(images.shape[1:3])

        def chunk(index: tf.Tensor) -> tf.Tensor:
            _, _, input_term, values = self.decomposition.terms(tf.gather(images, index), tf.gather(targets, index))
            spatial = [input_term] + [v for v in values if v.shape.rank == 4]
            return fullgrad_map(spatial, size, self.variant)

        spec = tf.TensorSpec(size, images.dtype)
        return _batching.map_images(chunk, tf.shape(images)[0], self.batch_size, spec)


def fullgrad_map(terms: list, size: tuple, variant: str = "official") -> tf.Tensor:
    """Combine ``(N, h, w, c)`` signed terms into an ``(N, H, W)`` FullGrad map."""
    total = 0.0
    for term in terms:
        magnitude = tf.abs(term)
        if variant == "official":
            low = tf.reduce_min(magnitude, axis=[1, 2, 3], keepdims=True)
            shifted = magnitude - low
            high = tf.reduce_max(shifted, axis=[1, 2, 3], keepdims=True)
            normalised = tf.reduce_sum(shifted / (high + 1e-6), axis=-1)
            total += image_ops.resize(normalised, size)
        else:
            low = tf.reduce_min(magnitude, axis=[1, 2], keepdims=True)
            shifted = magnitude - low
            high = tf.reduce_max(shifted, axis=[1, 2], keepdims=True)
            total += tf.reduce_sum(image_ops.resize(shifted / (high + 1e-7), size), axis=-1)
    if variant == "official":
        return total
    low = tf.reduce_min(total, axis=[1, 2], keepdims=True)
    shifted = total - low
    return shifted / (tf.reduce_max(shifted, axis=[1, 2], keepdims=True) + 1e-7)
