"""T-Grad (Tran, Mai, Le, Le): per-layer bias maps weighted by their contribution to the logit."""

from __future__ import annotations

import functools
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from tfxai import _batching, image_ops
from tfxai.decomposition import Decomposition, site_statistics, term_statistics
from tfxai.explainers.base import Explainer

EPSILON = 1e-16
#: What Eq. 8 needs of each term: ``S = sum_c ReLU(t)`` per position and ``sum(t)``.
STATISTICS = ("relu_sum", "total")


class TGrad(Explainer):
    """T-Grad saliency, paper Eq. 8.

    With the exact decomposition ``s = sum(x * g_x) + sum_i sum(term_i)`` of the
    target logit (:func:`tfxai.decompose`; ``term_i = ds/dz_i * b_i``):

    * ``S_input = sum_c ReLU(x * g_x)``, ``score_input = ReLU(sum(x * g_x))``;
    * ``S_i = sum_c ReLU(term_i)`` (elementwise ReLU before the channel sum),
      ``score_i = ReLU(sum(term_i))``;
    * ``phi(S)``: bilinear upsampling to the input size, divided by its sum
      (``+ 1e-16``);
    * ``T = phi(S_input) * score_input + sum_i phi(S_i) * score_i``.

    Dense-layer terms enter the decomposition but have no spatial extent and
    are left out of the map. The authors' code weights by the contribution
    share ``w_i = sum(term_i) / s``; for ``s > 0`` that only divides the map
    by ``s`` (same ranking, same normalised map); this class follows Eq. 8.

    Notes:
        **Zero maps on untrained models.** Every weight ``score`` is a ReLU of
        a sum, so T-Grad is all zero when no term has a positive sum. Keras
        initialises every bias, BatchNormalization ``beta`` and moving mean
        to 0 (``weights=None``, ``--weights none``): every bias term is then
        exactly 0 (``score_i = ReLU(0) = 0``), completeness leaves the logit
        to the input term, and the map is ``phi(S_input) * ReLU(s)``. It is
        zero when the explained logit ``s <= 0``, and vanishing when the
        random network's activations shrink layer after layer: a random
        MobileNet's logits are about ``1e-19`` on the bundled photos (96 and
        224 pixels) and its T-Grad maps about ``1e-24``, since the ``1e-16``
        of ``phi`` outweighs sums that small. A trained model, or
        ``tests/models.randomize_biases_and_bn``, gives the bias terms their
        weight back; explain the predicted class (``targets=None``), whose
        logit is the largest.

    Example::

        tgrad = tfxai.TGrad(model)
        maps = tgrad(images)                          # (N, H, W), predicted classes
        per_layer = tgrad.layer_maps(images)          # [(name, phi(S_i), score_i), ...], input first

    Args:
        model: the classifier or its adapter; piecewise linear unless ``mode="linearize"``.
        mode: ``"exact"`` or ``"linearize"`` (see
            :class:`tfxai.decomposition.Decomposition`).
        batch_size: images per forward/backward pass.
    """

    name = "tgrad"
    title = "T-Grad"
    aliases = ("t-grad",)

    def __init__(self, model: keras.Model, *, mode: str = "exact", batch_size: int = 32):
        super().__init__(model, output="logit", batch_size=batch_size)
        self.decomposition = Decomposition(self.adapter, mode=mode, batch_size=batch_size)
        self.mode = mode

    def _statistics(self, images: tf.Tensor, targets: tf.Tensor) -> list:
        """``S`` and ``sum(t)`` of the input term and of every spatial site, from one pass.

        The site terms are never built (:func:`tfxai.decomposition.site_statistics`).
        """
        input_term, spatial = self.decomposition.spatial_sites(images, targets)
        dtype = input_term.dtype
        return [term_statistics(input_term, STATISTICS)] + [site_statistics(s, STATISTICS, dtype) for s in spatial]

    def _layer_maps(self, images: tf.Tensor, targets: tf.Tensor) -> tuple[list, list]:
        size = tuple(images.shape[1:3])
        statistics = self._statistics(images, targets)
        maps = [normalized_upsample(st["relu_sum"], size) for st in statistics]
        scores = [tf.nn.relu(st["total"]) for st in statistics]
        return maps, scores

    def explain_batch(self, images: tf.Tensor, targets: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        size = tuple(images.shape[1:3])

        def chunk(index: tf.Tensor) -> tf.Tensor:
            return tgrad_map_from_statistics(self._statistics(tf.gather(images, index), tf.gather(targets, index)), size)

        return _batching.map_images(chunk, tf.shape(images)[0], self.batch_size, tf.TensorSpec(size, images.dtype))

    def layer_names(self) -> list[str]:
        """Names of the maps of :meth:`layer_maps`: ``"input"`` then every spatial site."""
        return ["input"] + [s.name for s in self.decomposition.sites if len(s.shape) == 3]

    def layer_maps(self, images: Any, targets: Any = None) -> list[tuple[str, tf.Tensor, tf.Tensor]]:
        """Per-layer normalised maps and weights (paper Fig. 2).

        Returns:
            A list of ``(name, phi(S_i) (N, H, W), score_i (N,))``, the input
            first; the T-Grad map is ``sum(map * score[:, None, None])``.
        """
        names = self.layer_names()

        def body(images: tf.Tensor, targets: tf.Tensor, seed: tf.Tensor) -> Any:
            size = tuple(images.shape[1:3])

            def chunk(index: tf.Tensor) -> Any:
                return self._layer_maps(tf.gather(images, index), tf.gather(targets, index))

            spec = ([tf.TensorSpec(size, images.dtype)] * len(names), [tf.TensorSpec([], images.dtype)] * len(names))
            return _batching.map_images(chunk, tf.shape(images)[0], self.batch_size, spec)

        maps, scores = self._run("layer_maps", body, images, targets)
        return list(zip(names, maps, scores))


def normalized_upsample(maps: tf.Tensor, size: tuple) -> tf.Tensor:
    """``phi``: bilinear upsampling of ``(N, h, w)`` maps to `size`, divided by the map's sum."""
    up = image_ops.resize(maps, size)
    return up / (tf.reduce_sum(up, axis=[1, 2], keepdims=True) + EPSILON)


def tgrad_map(terms: list, size: tuple) -> tf.Tensor:
    """Eq. 8 for ``(N, h, w, c)`` signed terms (the input term first): ``(N, H, W)`` map."""
    return tgrad_map_from_statistics([term_statistics(term, STATISTICS) for term in terms], size)


def tgrad_map_from_statistics(statistics: list, size: tuple) -> tf.Tensor:
    """Eq. 8 from each term's ``relu_sum`` ``S (N, h, w)`` and ``total`` ``sum(t) (N,)``.

    Bilinear upsampling is linear, so ``sum(up(S))`` is ``sum(S * W)`` with
    ``W`` the upsampling's adjoint applied to ones, and the weighted maps of
    all terms with the same size are added before a single upsampling; the
    result equals ``sum_i phi(S_i) * score_i`` term by term, with one resize per
    distinct feature-map size instead of one per layer.
    """
    groups: dict = {}
    for st in statistics:
        maps = st["relu_sum"]
        score = tf.nn.relu(st["total"])
        key = tuple(maps.shape[1:3])
        mass = tf.reduce_sum(maps * upsampling_mass(key, size, maps.dtype), axis=[1, 2])
        weighted = maps * (score / (mass + EPSILON))[:, None, None]
        groups[key] = groups[key] + weighted if key in groups else weighted
    return tf.add_n([image_ops.resize(maps, size) for maps in groups.values()])


def upsampling_mass(small: tuple, size: tuple, dtype: tf.DType) -> tf.Tensor:
    """``W (h, w)`` with ``sum(resize(S, size)) == sum(S * W)`` for every map ``S`` of shape `small`.

    Bilinear resizing is separable, ``resize(S) = A S B^T`` with the
    interpolation matrices of :func:`tfxai.image_ops.bilinear_matrix`, so ``W``
    is the outer product of their column sums: a constant, computed once.
    """
    return tf.constant(_mass(tuple(small), tuple(size)), dtype)


@functools.lru_cache(maxsize=None)
def _mass(small: tuple, size: tuple) -> np.ndarray:
    with tf.init_scope():  # eager, also while tracing
        rows = image_ops.bilinear_matrix(small[0], size[0]).numpy().sum(axis=0)
        cols = image_ops.bilinear_matrix(small[1], size[1]).numpy().sum(axis=0)
    return np.outer(rows, cols)
