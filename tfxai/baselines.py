"""Baselines for Integrated Gradients, built in the model's input space.

Each function takes images ``(N, H, W, C)`` (or one image ``(H, W, C)``) and
returns baselines of the same shape. `input_range` is ``(low, high)``, the
valid pixel range *in the space the model takes* (``(0, 1)`` for the TF
tutorial, ``(0, 255)`` for a model that rescales inside, ``(-1, 1)`` for
MobileNetV2-preprocessed inputs). Random baselines take a `seed` (an int, or a
stateless seed pair) and draw one noise pattern shared by every image, so a
permuted batch gets permuted baselines.

References:
    Sturmfels, Lundberg, Lee (2020), "Visualizing the Impact of Feature
    Attribution Baselines", Distill. doi:10.23915/distill.00022.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from tfxai import image_ops

NAMES = ("black", "white", "uniform", "gaussian", "blur", "max_distance")
RANDOM = ("uniform", "gaussian")


def _seed(seed: Any) -> tf.Tensor:
    seed = tf.convert_to_tensor(seed)
    if seed.shape.rank == 0:
        seed = tf.stack([tf.cast(seed, tf.int32), tf.constant(0, tf.int32)])
    return tf.cast(seed, tf.int32)


def black(images: Any, input_range: tuple[float, float] = (0.0, 1.0)) -> tf.Tensor:
    """The darkest valid image: every value at ``low``."""
    images = tf.convert_to_tensor(images)
    return tf.fill(tf.shape(images), tf.cast(input_range[0], images.dtype))


def white(images: Any, input_range: tuple[float, float] = (0.0, 1.0)) -> tf.Tensor:
    """The brightest valid image: every value at ``high``."""
    images = tf.convert_to_tensor(images)
    return tf.fill(tf.shape(images), tf.cast(input_range[1], images.dtype))


def uniform(images: Any, input_range: tuple[float, float] = (0.0, 1.0), seed: Any = 0) -> tf.Tensor:
    """Uniform noise over the valid range, ``U(low, high)`` per value."""
    images = tf.convert_to_tensor(images)
    low, high = input_range
    noise = tf.random.stateless_uniform(tf.shape(images)[-3:], _seed(seed), low, high, dtype=images.dtype)
    return tf.broadcast_to(noise, tf.shape(images))


def gaussian(
    images: Any, input_range: tuple[float, float] = (0.0, 1.0), noise_scale: float = 0.1, seed: Any = 0
) -> tf.Tensor:
    """The image plus Gaussian noise ``N(0, (noise_scale * (high - low))^2)``, clipped to the range."""
    images = tf.convert_to_tensor(images)
    low, high = input_range
    noise = tf.random.stateless_normal(tf.shape(images)[-3:], _seed(seed), dtype=images.dtype)
    return tf.clip_by_value(images + noise_scale * (high - low) * noise, low, high)


def blur(images: Any, sigma: float = 5.0) -> tf.Tensor:
    """A Gaussian blur of the image (standard deviation `sigma` pixels)."""
    images = tf.convert_to_tensor(images)
    if images.shape.rank == 3:
        return image_ops.gaussian_blur(images[None], sigma)[0]
    return image_ops.gaussian_blur(images, sigma)


def max_distance(images: Any, input_range: tuple[float, float] = (0.0, 1.0)) -> tf.Tensor:
    """For every value, the farthest valid value: ``high`` below the mid-range, else ``low``."""
    images = tf.convert_to_tensor(images)
    low, high = (tf.cast(v, images.dtype) for v in input_range)
    return tf.where(images < (low + high) / 2, high, low)


def make(name: str, images: Any, input_range: tuple[float, float] = (0.0, 1.0), seed: Any = 0) -> tf.Tensor:
    """Build the baseline called `name` (one of :data:`NAMES`) with default parameters."""
    if name in ("black", "white", "max_distance"):
        return globals()[name](images, input_range)
    if name in RANDOM:
        return globals()[name](images, input_range, seed=seed)
    if name == "blur":
        return blur(images)
    raise ValueError(f"unknown baseline {name!r}; expected one of {NAMES}")
