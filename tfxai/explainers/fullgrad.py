"""FullGrad (Srinivas & Fleuret, 2019): input-gradient plus bias-gradient maps."""

from __future__ import annotations

import keras
import tensorflow as tf

from tfxai import _batching, _validation, image_ops
from tfxai.decomposition import Decomposition, site_statistics, term_statistics
from tfxai.explainers.base import Explainer

VARIANTS = ("official", "pytorch_grad_cam")
#: What the official post-processing needs of each term: ``sum_c |t|`` per position, ``min |t|``, ``max |t|``.
STATISTICS = ("abs_sum", "abs_min", "abs_max")


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

    name = "fullgrad"
    title = "FullGrad"

    def __init__(self, model: keras.Model, *, variant: str = "official", mode: str = "exact", batch_size: int = 32):
        super().__init__(model, output="logit", batch_size=batch_size)
        self.variant = _validation.check_choice(variant, "variant", VARIANTS)
        self.decomposition = Decomposition(self.adapter, mode=mode, batch_size=batch_size)
        self.mode = mode

    def explain_batch(self, images: tf.Tensor, targets: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        size = tuple(images.shape[1:3])

        def chunk(index: tf.Tensor) -> tf.Tensor:
            batch, labels = tf.gather(images, index), tf.gather(targets, index)
            if self.variant != "official":  # per-channel min-max: from the full terms
                return fullgrad_map(self.decomposition.spatial_terms(batch, labels), size, self.variant)
            input_term, spatial = self.decomposition.spatial_sites(batch, labels)
            dtype = input_term.dtype
            statistics = [(term_statistics(input_term, STATISTICS), input_term.shape[-1])] + [
                (site_statistics(s, STATISTICS, dtype), s.gradient.shape[-1]) for s in spatial
            ]
            return fullgrad_map_from_statistics(statistics, size)

        spec = tf.TensorSpec(size, images.dtype)
        return _batching.map_images(chunk, tf.shape(images)[0], self.batch_size, spec)


def fullgrad_map(terms: list, size: tuple, variant: str = "official") -> tf.Tensor:
    """Combine ``(N, h, w, c)`` signed terms into an ``(N, H, W)`` FullGrad map.

    Upsampling is linear, so the normalised maps of all terms with the same
    size are summed first and upsampled once per distinct size (the result is
    the per-layer definition; it only saves work).
    """
    if variant == "official":
        return fullgrad_map_from_statistics(
            [(term_statistics(term, STATISTICS), term.shape[-1]) for term in terms], size
        )
    groups: dict = {}
    for term in terms:
        magnitude = tf.abs(term)
        axes = [1, 2, 3] if variant == "official" else [1, 2]  # jointly / per channel
        shifted = magnitude - tf.reduce_min(magnitude, axis=axes, keepdims=True)
        eps = 1e-6 if variant == "official" else 1e-7
        normalised = tf.reduce_sum(shifted / (tf.reduce_max(shifted, axis=axes, keepdims=True) + eps), axis=-1)
        key = tuple(normalised.shape[1:3])
        groups[key] = groups[key] + normalised if key in groups else normalised
    total = tf.add_n([image_ops.resize(maps, size) for maps in groups.values()])
    if variant == "official":
        return total
    shifted = total - tf.reduce_min(total, axis=[1, 2], keepdims=True)
    return shifted / (tf.reduce_max(shifted, axis=[1, 2], keepdims=True) + 1e-7)


def fullgrad_map_from_statistics(statistics: list, size: tuple) -> tf.Tensor:
    """The official FullGrad map from ``(statistics, channels)`` of each term.

    ``sum_c (|t| - m) / (M - m + 1e-6)`` with ``m, M`` the min and max of
    ``|t|`` over the sample is ``(sum_c |t| - C m) / (M - m + 1e-6)``, so
    ``abs_sum``, ``abs_min`` and ``abs_max`` (:data:`STATISTICS`) suffice.
    """
    groups: dict = {}
    for st, channels in statistics:
        low, high = st["abs_min"][:, None, None], st["abs_max"][:, None, None]
        normalised = (st["abs_sum"] - channels * low) / (high - low + 1e-6)
        key = tuple(normalised.shape[1:3])
        groups[key] = groups[key] + normalised if key in groups else normalised
    return tf.add_n([image_ops.resize(maps, size) for maps in groups.values()])
