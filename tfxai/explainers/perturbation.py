"""Black-box perturbation methods: RISE and Occlusion.

Both probe the model with many perturbed copies of each image and never use a
gradient. Each image expands into rows (one per mask or patch) that are
evaluated `batch_size` rows per model call inside the graph
(:func:`tfxai._batching.accumulate_rows`), so memory is bounded by one chunk
and the maps do not depend on `batch_size`.

The *substrate* is what replaces hidden pixels: a number (default ``0.0``, the
papers' ``x * M``), ``"low"`` (the low end of the adapter's input range, e.g.
black for ``[0, 255]`` or ``(-1, 1)`` inputs) or ``"blur"`` (Gaussian blur of
the image, kernel 11 and sigma 5, as the insertion/deletion metrics).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import tensorflow as tf

from tfxai import _batching, _runtime, _validation, image_ops
from tfxai.errors import InvalidInputError, InvalidTypeError
from tfxai.explainers.base import Explainer

#: Gaussian blur of the ``"blur"`` substrate (the insertion/deletion metrics' blur).
BLUR_SIGMA, BLUR_KERNEL = 5.0, 11
NORMALIZATIONS = ("expectation", "masks")


def _check_substrate(substrate: Any) -> Any:
    if isinstance(substrate, str):
        return _validation.check_choice(substrate, "substrate", ("low", "blur"))
    if isinstance(substrate, (bool, np.bool_)) or not isinstance(substrate, (int, float, np.number)):
        raise InvalidTypeError(
            f"`substrate` must be a number, 'low' or 'blur'. Received: substrate={substrate!r}."
        )
    if not np.isfinite(substrate):
        raise InvalidInputError(f"`substrate` must be finite. Received: substrate={substrate!r}.")
    return float(substrate)


def substrate_images(images: tf.Tensor, substrate: Any, input_range: tuple) -> tf.Tensor:
    """The ``(N, H, W, C)`` values that replace hidden pixels (see the module docstring)."""
    if substrate == "blur":
        return image_ops.gaussian_blur(images, BLUR_SIGMA, BLUR_KERNEL)
    value = input_range[0] if substrate == "low" else substrate
    return tf.fill(tf.shape(images), tf.cast(value, images.dtype))


def _pair(value: Any, name: str) -> tuple[int, int]:
    if isinstance(value, (tuple, list)) and len(value) == 2:
        return tuple(_validation.check_positive_int(v, name) for v in value)
    value = _validation.check_positive_int(value, name)
    return value, value


def _check_probability(value: Any, name: str) -> float:
    value = _validation.check_non_negative_float(value, name)
    if not 0.0 < value < 1.0:
        raise InvalidInputError(f"`{name}` must lie strictly between 0 and 1. Received: {name}={value!r}.")
    return value


# ------------------------------------------------------------------------------------------- RISE
def rise_grids(indices: tf.Tensor, seed: tf.Tensor, grid_size: tuple[int, int], probability: float,
               cell: tuple[int, int]) -> tuple[tf.Tensor, tf.Tensor]:
    """Binary grids ``(R, gh, gw)`` (1 = kept) and shifts ``(R, 2)`` of the RISE masks `indices`.

    Mask ``k`` depends only on ``(seed, k)``: one stateless uniform draw of
    ``gh * gw + 2`` numbers, the first ``gh * gw`` compared with `probability`
    (cell kept when ``u < p``), the last two scaled to the shift ``(dy, dx)``
    in ``[0, cell_h) x [0, cell_w)``.
    """
    gh, gw = grid_size

    def one(k: tf.Tensor) -> tf.Tensor:
        return tf.random.stateless_uniform([gh * gw + 2], _runtime.row_seed(seed, k), dtype=tf.float32)

    draws = tf.map_fn(one, tf.cast(indices, tf.int32), fn_output_signature=tf.float32)
    grids = tf.cast(tf.reshape(draws[:, : gh * gw], [-1, gh, gw]) < probability, tf.float32)
    scale = tf.constant([cell[0], cell[1]], tf.float32)
    shifts = tf.minimum(tf.cast(tf.floor(draws[:, gh * gw :] * scale), tf.int32), tf.constant([cell[0] - 1, cell[1] - 1]))
    return grids, shifts


def rise_masks(grids: tf.Tensor, shifts: tf.Tensor, size: tuple[int, int], cell: tuple[int, int],
               dtype: tf.DType = tf.float32) -> tf.Tensor:
    """RISE masks ``(R, H, W)`` in [0, 1]: grids upsampled bilinearly, then shifted crops.

    A ``(gh, gw)`` grid is resized (bilinear, half-pixel centres, edges
    clamped) to ``((gh + 1) * cell_h, (gw + 1) * cell_w)`` with ``cell =
    ceil(size / grid)`` (the authors' code), and the ``(H, W)`` window starting at
    the shift ``(dy, dx)`` is kept.
    """
    height, width = size
    up = ((grids.shape[1] + 1) * cell[0], (grids.shape[2] + 1) * cell[1])
    upsampled = image_ops.resize(tf.cast(grids, dtype), up)  # (R, uh, uw)
    rows = shifts[:, :1] + tf.range(height)[None]
    cols = shifts[:, 1:] + tf.range(width)[None]
    cropped = tf.gather(upsampled, rows, axis=1, batch_dims=1)  # (R, H, uw)
    return tf.gather(cropped, cols, axis=2, batch_dims=1)  # (R, H, W)


class RISE(Explainer):
    """RISE: the class probability under random masks, averaged with the masks as weights.

    ``S = 1 / (K p) * sum_k P(c | x * M_k + (1 - M_k) * substrate) * M_k``
    (Petsiuk et al., Eq. 6 with ``E[M] = p``), over ``K = num_masks`` masks
    ``M_k``: random binary ``grid_size`` grids (cell kept with probability
    `p`), upsampled bilinearly to ``(grid + 1) * ceil(H / grid)`` pixels and
    cropped at a random shift below one cell (the authors' code). Mask ``k``
    depends only on ``(seed, k)``; ``seed=None`` draws a fresh seed per call.

    ``normalization="masks"`` divides by ``sum_k M_k`` per pixel instead of
    ``K p`` (xplique's ``Rise``), which removes the Monte-Carlo fluctuation of
    the mask coverage.

    Differences from xplique 2.0 ``Rise``: xplique upsamples to
    ``int(H (1 + 1/grid))`` and crops every chunk of masks at one shared shift
    (``tf.image.random_crop`` on the whole chunk); here each mask has its own
    shift, as in the paper.

    Args:
        model: the classifier (see :class:`~tfxai.explainers.base.Explainer`).
        num_masks: K, masks per image (the paper uses 4000 for ImageNet).
        grid_size: cells per side of the binary grid (int or ``(gh, gw)``).
        p: probability that a cell is kept.
        substrate: what hidden pixels become: a number (default 0: ``x * M``), ``"low"`` or ``"blur"``.
        normalization: ``"expectation"`` (``K p``, the paper) or ``"masks"``.
        output: ``"probability"`` (default, the paper) or ``"logit"``.
        batch_size: masked images per model call.
        seed: seed of the masks.

    References:
        Petsiuk, Das, Saenko (2018), "RISE: Randomized Input Sampling for
        Explanation of Black-box Models", BMVC, arXiv:1806.07421.
    """

    name = "rise"
    title = "RISE"
    signed = False
    slow = True

    @classmethod
    def quick_settings(cls, quick: bool) -> dict:
        return {"num_masks": 256 if quick else 4000, "seed": 0}

    def __init__(self, model: Any, *, num_masks: int = 4000, grid_size: Any = 7, p: float = 0.5,
                 substrate: Any = 0.0, normalization: str = "expectation", output: str = "probability",
                 batch_size: int = 32, seed: int | None = None):
        super().__init__(model, output=output, batch_size=batch_size, seed=seed)
        self.num_masks = _validation.check_positive_int(num_masks, "num_masks")
        self.grid_size = _pair(grid_size, "grid_size")
        self.p = _check_probability(p, "p")
        self.substrate = _check_substrate(substrate)
        self.normalization = _validation.check_choice(normalization, "normalization", NORMALIZATIONS)

    def cells(self, size: tuple[int, int]) -> tuple[int, int]:
        """Cell size ``ceil(H / gh), ceil(W / gw)`` in pixels for images of `size`."""
        return math.ceil(size[0] / self.grid_size[0]), math.ceil(size[1] / self.grid_size[1])

    def masks(self, size: tuple[int, int], seed: int, indices: Any = None) -> tf.Tensor:
        """The masks ``(K, H, W)`` (or those of `indices`) used for images of `size` with `seed`."""
        indices = tf.range(self.num_masks) if indices is None else tf.constant(indices, tf.int32)
        cell = self.cells(size)
        grids, shifts = rise_grids(indices, self.runtime.seed(seed), self.grid_size, self.p, cell)
        return rise_masks(grids, shifts, size, cell, self.adapter.dtype)

    def explain_batch(self, images: tf.Tensor, targets: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        size = (int(images.shape[1]), int(images.shape[2]))
        cell = self.cells(size)
        targets = self.runtime.resolve(images, targets)
        substrate = substrate_images(images, self.substrate, self.adapter.input_range)

        def row(image_index: tf.Tensor, k: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            grids, shifts = rise_grids(k, seed, self.grid_size, self.p, cell)
            masks = rise_masks(grids, shifts, size, cell, images.dtype)
            kept = masks[..., None]
            masked = tf.gather(images, image_index) * kept + tf.gather(substrate, image_index) * (1 - kept)
            scores = self.adapter.scores(self.logits(masked), tf.gather(targets, image_index), self.output)
            return scores[:, None, None] * masks, masks

        spec = (tf.TensorSpec(size, images.dtype), tf.TensorSpec(size, images.dtype))
        weighted, coverage = _batching.accumulate_rows(row, tf.shape(images)[0], self.num_masks, self.batch_size, spec)
        if self.normalization == "masks":
            return tf.math.divide_no_nan(weighted, coverage)
        return weighted / tf.cast(self.num_masks * self.p, images.dtype)


# -------------------------------------------------------------------------------------- Occlusion
def occlusion_anchors(size: tuple[int, int], patch: tuple[int, int], stride: tuple[int, int]) -> np.ndarray:
    """Top-left corners ``(P, 2)`` of the patches, row-major: ``a * stride`` for ``a < ceil((H - patch + 1) / stride)``.

    The same anchors as xplique's ``Occlusion``; when ``(H - patch)`` is not a
    multiple of the stride the last rows/columns are covered by no patch (map 0 there).
    """
    ys = [a * stride[0] for a in range(math.ceil((size[0] - patch[0] + 1) / stride[0]))]
    xs = [a * stride[1] for a in range(math.ceil((size[1] - patch[1] + 1) / stride[1]))]
    return np.array([(y, x) for y in ys for x in xs], np.int32).reshape(-1, 2)


class Occlusion(Explainer):
    """Occlusion sensitivity: the score drop when a sliding patch hides the pixel, averaged.

    Each ``patch_size`` patch (anchors every `stride` pixels, see
    :func:`occlusion_anchors`; by default 1/7 of the image side with half
    a patch of stride, 32 and 16 pixels at 224x224) is replaced by the `substrate`; the pixel's value
    is the mean over the patches covering it of ``score(x) - score(x with the
    patch hidden)``, where the score is the target's softmax probability
    (``output="logit"`` for the logit). Signed: a patch that raises the score
    gives a negative value. Pixels covered by no patch get 0.

    Relation to peers: Captum's ``Occlusion`` also averages over the covering
    patches; xplique's ``Occlusion`` sums them (``xplique = tfxai * coverage``,
    identical where every pixel is covered equally often, e.g. stride = patch).

    Args:
        model: the classifier.
        patch_size: patch height and width (int or pair) in pixels; None: ``ceil(side / 7)``.
        stride: step between patches (int or pair); None: half the patch; ``"patch"``: the patch size.
        substrate: a number (default 0), ``"low"`` (the input range's low end) or ``"blur"``.
        output: ``"probability"`` (default) or ``"logit"``.
        batch_size: occluded images per model call.

    References:
        Zeiler & Fergus (2014), "Visualizing and Understanding Convolutional
        Networks", ECCV, arXiv:1311.2901.
    """

    name = "occlusion"
    title = "Occlusion"
    signed = True
    slow = True

    @classmethod
    def quick_settings(cls, quick: bool) -> dict:
        return {"stride": "patch"} if quick else {}

    def __init__(self, model: Any, *, patch_size: Any = None, stride: Any = None, substrate: Any = 0.0,
                 output: str = "probability", batch_size: int = 32, seed: int | None = None):
        super().__init__(model, output=output, batch_size=batch_size, seed=seed)
        self.patch_size = None if patch_size is None else _pair(patch_size, "patch_size")
        self.stride = stride if stride is None or (isinstance(stride, str) and stride == "patch") else _pair(stride, "stride")
        self.substrate = _check_substrate(substrate)

    def geometry(self, size: tuple[int, int]) -> tuple[tuple[int, int], tuple[int, int]]:
        """``(patch, stride)`` in pixels for images of `size` (``H x W``).

        Defaults: ``patch = ceil(side / 7)`` (32 pixels for 224, one RISE cell),
        ``stride = ceil(patch / 2)``; ``stride="patch"`` tiles without overlap.
        """
        patch = self.patch_size or (math.ceil(size[0] / 7), math.ceil(size[1] / 7))
        if self.stride is None:
            stride = (math.ceil(patch[0] / 2), math.ceil(patch[1] / 2))
        else:
            stride = patch if self.stride == "patch" else self.stride
        return patch, stride

    def check_inputs(self, images: tf.Tensor) -> None:
        size = tuple(images.shape[1:3])
        patch, _ = self.geometry(size)
        if patch[0] > size[0] or patch[1] > size[1]:
            raise InvalidInputError(
                f"`patch_size` {patch} is larger than the images {size}; pass a smaller patch."
            )

    def coverage(self, size: tuple[int, int]) -> np.ndarray:
        """``(H, W)`` number of patches covering each pixel."""
        patch, stride = self.geometry(size)
        counts = np.zeros(size)
        for y, x in occlusion_anchors(size, patch, stride):
            counts[y : y + patch[0], x : x + patch[1]] += 1
        return counts

    def explain_batch(self, images: tf.Tensor, targets: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        size = (int(images.shape[1]), int(images.shape[2]))
        patch, stride = self.geometry(size)
        anchors = tf.constant(occlusion_anchors(size, patch, stride))
        num_patches = int(anchors.shape[0])
        substrate = substrate_images(images, self.substrate, self.adapter.input_range)

        def base(index: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            logits = self.logits(tf.gather(images, index))
            resolved = _runtime.resolve_predicted(tf.gather(targets, index), logits)
            return resolved, self.adapter.scores(logits, resolved, self.output)

        spec = (tf.TensorSpec([], tf.int32), tf.TensorSpec([], images.dtype))
        resolved, base_scores = _batching.map_images(base, tf.shape(images)[0], self.batch_size, spec)
        ys, xs = tf.range(size[0]), tf.range(size[1])

        def row(image_index: tf.Tensor, k: tf.Tensor) -> tf.Tensor:
            corner = tf.gather(anchors, k)  # (R, 2)
            inside_y = (ys[None] >= corner[:, :1]) & (ys[None] < corner[:, :1] + patch[0])
            inside_x = (xs[None] >= corner[:, 1:]) & (xs[None] < corner[:, 1:] + patch[1])
            hidden = inside_y[:, :, None] & inside_x[:, None, :]  # (R, H, W)
            occluded = tf.where(hidden[..., None], tf.gather(substrate, image_index), tf.gather(images, image_index))
            scores = self.adapter.scores(self.logits(occluded), tf.gather(resolved, image_index), self.output)
            drop = tf.gather(base_scores, image_index) - scores
            return drop[:, None, None] * tf.cast(hidden, images.dtype)

        total = _batching.accumulate_rows(row, tf.shape(images)[0], num_patches, self.batch_size,
                                          tf.TensorSpec(size, images.dtype))
        return tf.math.divide_no_nan(total, tf.constant(self.coverage(size), images.dtype))


__all__ = ["RISE", "Occlusion", "rise_grids", "rise_masks", "occlusion_anchors", "substrate_images"]
