"""Image operations in TensorFlow (no OpenCV/SciPy): blurring, resizing, cropping, normalising.

Shared by baselines, CAM upsampling, metrics and plots.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import tensorflow as tf


def gaussian_kernel(sigma: float, kernel_size: int | None = None, dtype: tf.DType = tf.float32) -> tf.Tensor:
    """A normalised 1-D Gaussian kernel; size defaults to ``2 * ceil(3 sigma) + 1``."""
    if kernel_size is None:
        kernel_size = 2 * math.ceil(3.0 * sigma) + 1
    x = tf.range(kernel_size, dtype=tf.float64) - (kernel_size - 1) / 2.0
    kernel = tf.exp(-0.5 * tf.square(x / sigma))
    return tf.cast(kernel / tf.reduce_sum(kernel), dtype)


def gaussian_blur(images: tf.Tensor, sigma: float, kernel_size: int | None = None) -> tf.Tensor:
    """Blur (N, H, W, C) images with a separable Gaussian, reflect padding (as torchvision).

    The kernel is clipped to the image size so that reflection is defined.
    """
    images = tf.convert_to_tensor(images)
    if sigma <= 0:
        return images
    height, width = images.shape[1], images.shape[2]
    if kernel_size is None:
        kernel_size = 2 * math.ceil(3.0 * sigma) + 1
    limit = 2 * (min(height, width) - 1) + 1
    kernel_size = min(kernel_size, limit if limit % 2 else limit - 1)
    kernel = gaussian_kernel(sigma, kernel_size, images.dtype)
    channels = images.shape[-1]
    pad = kernel_size // 2
    padded = tf.pad(images, [[0, 0], [pad, pad], [pad, pad], [0, 0]], mode="REFLECT")
    vertical = tf.tile(tf.reshape(kernel, [kernel_size, 1, 1, 1]), [1, 1, channels, 1])
    horizontal = tf.tile(tf.reshape(kernel, [1, kernel_size, 1, 1]), [1, 1, channels, 1])
    blurred = tf.nn.depthwise_conv2d(padded, vertical, [1, 1, 1, 1], "VALID")
    return tf.nn.depthwise_conv2d(blurred, horizontal, [1, 1, 1, 1], "VALID")


def resize(maps: tf.Tensor, size: tuple[int, int], method: str = "bilinear") -> tf.Tensor:
    """Resize (N, h, w) or (N, h, w, C) maps to `size` (half-pixel centres, no antialiasing).

    ``tf.image.resize`` computes bilinear resizing in float32 whatever the
    input dtype; float64 maps are therefore resized with the same weights as
    separable interpolation matrices in float64 (:func:`bilinear_matrix`), so
    float64 explanations stay exact to float64 rounding.
    """
    maps = tf.convert_to_tensor(maps)
    squeeze = maps.shape.rank == 3
    if squeeze:
        maps = maps[..., None]
    height, width = maps.shape[1], maps.shape[2]
    if (height, width) != tuple(size):
        dtype = maps.dtype
        if method == "bilinear" and dtype == tf.float64 and height is not None and width is not None:
            rows = bilinear_matrix(height, size[0], dtype)
            cols = bilinear_matrix(width, size[1], dtype)
            maps = tf.einsum("ih,nhwc,jw->nijc", rows, maps, cols)
        else:
            maps = tf.cast(tf.image.resize(maps, size, method=method), dtype)
    return maps[..., 0] if squeeze else maps


def bilinear_matrix(in_size: int, out_size: int, dtype: tf.DType = tf.float64) -> tf.Tensor:
    """``(out_size, in_size)`` weights of 1-D bilinear resizing with half-pixel centres.

    Output pixel ``i`` samples the input at ``s = (i + 0.5) * in_size / out_size - 0.5``
    between ``floor(s)`` and ``ceil(s)``, both clamped to the image (TensorFlow's
    ``resize_bilinear(half_pixel_centers=True)``, OpenCV's ``INTER_LINEAR``).
    """
    source = (np.arange(out_size) + 0.5) * (in_size / out_size) - 0.5
    floor = np.floor(source)
    lerp = source - floor
    lower = np.clip(floor, 0, in_size - 1).astype(int)
    upper = np.clip(np.ceil(source), 0, in_size - 1).astype(int)
    matrix = np.zeros((out_size, in_size))
    np.add.at(matrix, (np.arange(out_size), lower), 1.0 - lerp)
    np.add.at(matrix, (np.arange(out_size), upper), lerp)
    return tf.constant(matrix, dtype)


def center_crop(image: tf.Tensor, size: int | tuple[int, int], resize_to: float) -> tf.Tensor:
    """The ImageNet evaluation transform of one (H, W, C) image, as float32.

    The shorter side is resized to `resize_to` (bilinear, antialiased; the
    longer side keeps the aspect ratio) and the central ``size`` square (or
    ``(height, width)`` rectangle) is cropped. Works in and out of graphs
    (``tf.data`` maps included).
    """
    height, width = (size, size) if isinstance(size, int) else tuple(size)
    image = tf.cast(image, tf.float32)
    shape = tf.cast(tf.shape(image)[:2], tf.float64)
    scale = tf.cast(resize_to, tf.float64) / tf.reduce_min(shape)
    new_shape = tf.maximum(tf.cast(tf.round(shape * scale), tf.int32), [height, width])
    image = tf.image.resize(image, new_shape, antialias=True)
    top = (new_shape[0] - height) // 2
    left = (new_shape[1] - width) // 2
    return tf.ensure_shape(image[top : top + height, left : left + width], (height, width, image.shape[-1]))


def minmax_normalize(maps: tf.Tensor, axis: tuple[int, ...] | None = None, eps: float = 1e-12) -> tf.Tensor:
    """Scale each map to [0, 1] over `axis` (default: all but the batch axis); constant maps give 0."""
    maps = tf.convert_to_tensor(maps)
    if axis is None:
        axis = tuple(range(1, maps.shape.rank))
    low = tf.reduce_min(maps, axis=axis, keepdims=True)
    high = tf.reduce_max(maps, axis=axis, keepdims=True)
    return tf.math.divide_no_nan(maps - low, tf.maximum(high - low, eps) * tf.cast(high > low, maps.dtype))



def gaussian_blur_matrices(size: int, sigmas: tf.Tensor, max_sigma: float, truncate: float | None = 4.0) -> tuple:
    """``(R, size, size)`` float64 matrices of a zero-padded 1-D Gaussian blur per sigma, and their sigma derivatives.

    ``A[r, i, j] = k_r(i - j)``, the sampled kernel ``k(t) = exp(-t^2 / (2 sigma^2)) / Z`` on
    ``|t| <= radius = floor(truncate * sigma + 0.5)``, ``Z`` its sum over ``[-radius, radius]``:
    SciPy's ``ndimage.gaussian_filter1d(x, sigma, mode="constant", cval=0, truncate=truncate)``. The
    product ``A @ x`` is that blur exactly for any sigma: a kernel longer than the image is neither
    clipped nor renormalised, its part beyond the image meets the zero padding (the image fades
    toward 0 as sigma grows past the image size). ``truncate=None``: no truncation (the kernel
    normalised over ``|t| <= 10 max_sigma + 1``; the rest is below 1e-21).

    The derivative is exact for the sampled kernel at its radius:
    ``dk(t)/dsigma = k(t) (t^2 - sum_u k(u) u^2) / sigma^3`` (0 at ``sigma = 0``, where the blur is
    the identity). `sigmas`: ``(R,)`` values in ``[0, max_sigma]``.
    """
    sigmas = tf.cast(tf.convert_to_tensor(sigmas), tf.float64)
    if truncate is None:
        taps = int(math.ceil(10.0 * max_sigma)) + 1
    else:
        taps = int(math.floor(truncate * max_sigma + 0.5))
    taps = max(taps, size - 1, 1)
    t = tf.range(-taps, taps + 1, dtype=tf.float64)[None, :]  # (1, 2T+1)
    positive = sigmas > 0
    sigma = tf.where(positive, sigmas, tf.ones_like(sigmas))[:, None]
    inside = tf.ones_like(t, dtype=tf.bool) if truncate is None else tf.abs(t) <= tf.floor(truncate * sigma + 0.5)
    weights = tf.where(inside, tf.exp(-0.5 * tf.square(t / sigma)), tf.zeros_like(t))
    kernel = weights / tf.reduce_sum(weights, axis=1, keepdims=True)
    second_moment = tf.reduce_sum(kernel * tf.square(t), axis=1, keepdims=True)
    derivative = kernel * (tf.square(t) - second_moment) / sigma**3
    delta = tf.cast(tf.equal(t, 0.0), tf.float64) * tf.ones_like(kernel)
    kernel = tf.where(positive[:, None], kernel, delta)
    derivative = tf.where(positive[:, None], derivative, tf.zeros_like(derivative))
    index = tf.range(size)[:, None] - tf.range(size)[None, :] + taps  # (size, size): i - j + T
    return tf.gather(kernel, index, axis=1), tf.gather(derivative, index, axis=1)


def gaussian_blur_zero(
    images: tf.Tensor, sigmas: tf.Tensor, max_sigma: float, truncate: float | None = 4.0, derivative: bool = False
) -> Any:
    """Blur each of ``(R, H, W, C)`` images with its own sigma, zero padding; optionally ``d blur / d sigma``.

    SciPy's ``ndimage.gaussian_filter(x, sigma=[s, s, 0], mode="constant", truncate=4.0)`` on the
    spatial axes (PAIR ``saliency``'s Blur IG blur), computed as ``A_H x A_W^T`` with the
    matrices of :func:`gaussian_blur_matrices`, exact for any sigma (kernels larger than the image
    included). The padding value is 0 in the images' space. With `derivative`, also returns the
    exact ``d/dsigma`` of the blurred images (``dA_H x A_W^T + A_H x dA_W^T``).
    """
    images = tf.convert_to_tensor(images)
    dtype = images.dtype
    height, width = images.shape[1], images.shape[2]
    rows, d_rows = (tf.cast(m, dtype) for m in gaussian_blur_matrices(height, sigmas, max_sigma, truncate))
    cols, d_cols = (tf.cast(m, dtype) for m in gaussian_blur_matrices(width, sigmas, max_sigma, truncate))
    vertical = tf.einsum("rih,rhwc->riwc", rows, images)
    blurred = tf.einsum("riwc,rjw->rijc", vertical, cols)
    if not derivative:
        return blurred
    d_vertical = tf.einsum("rih,rhwc->riwc", d_rows, images)
    d_blurred = tf.einsum("riwc,rjw->rijc", d_vertical, cols) + tf.einsum("riwc,rjw->rijc", vertical, d_cols)
    return blurred, d_blurred
