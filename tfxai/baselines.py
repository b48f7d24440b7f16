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

import numpy as np
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


class Baseline:
    """A method's `baseline` argument, checked once: a name, a number or array, or a callable.

    Integrated Gradients, DeepLIFT and Guided IG take the same argument:

    * a name from :data:`NAMES`, built in the model's valid input range (``input_range``);
    * a number or an array broadcastable to the images (one image ``(H, W, C)`` or ``N`` images);
    * a callable ``images -> baselines`` of the images' shape.

    Example::

        spec = Baseline("black")
        x0 = spec(images, input_range=(0.0, 255.0), seed=tf.constant([0, 0]))   # (N, H, W, C)

    Raises:
        InvalidInputError: an unknown name, NaN/infinite values.
        InvalidTypeError: anything else.
    """

    def __init__(self, value: Any, name: str = "baseline"):
        from tfxai import _validation
        from tfxai.errors import InvalidInputError, InvalidTypeError

        self.argument = name
        if isinstance(value, str):
            _validation.check_choice(value, name, NAMES)
        elif not callable(value):
            try:
                value = np.asarray(value, dtype=np.float64)
            except (TypeError, ValueError):
                raise InvalidTypeError(
                    f"`{name}` must be a baseline name, a number, an array or a callable. Received: {name}={value!r}."
                ) from None
            if not np.all(np.isfinite(value)):
                raise InvalidInputError(f"`{name}` contains NaN or infinite values.")
        self.value = value

    @property
    def random(self) -> bool:
        """Whether it is a random baseline (``uniform``, ``gaussian``): it needs a seed and may be drawn several times."""
        return isinstance(self.value, str) and self.value in RANDOM

    @property
    def shared(self) -> bool:
        """Whether every image gets the same baseline (a constant name, a number, one image)."""
        if isinstance(self.value, str):
            return self.value in ("black", "white", "uniform")
        return isinstance(self.value, np.ndarray) and (self.value.ndim < 4 or self.value.shape[0] == 1)

    def __call__(self, images: tf.Tensor, input_range: tuple, seed: Any = 0) -> tf.Tensor:
        """Baselines ``(N, H, W, C)`` for `images` (in-graph); `seed` is used by random names only."""
        if isinstance(self.value, str):
            return make(self.value, images, input_range, seed)
        if callable(self.value):
            return tf.cast(self.value(images), images.dtype)
        return tf.broadcast_to(tf.cast(self.value, images.dtype), tf.shape(images))

    def check(self, images: tf.Tensor) -> None:
        """Check an array's shape, or a callable's output, against a batch, eagerly (before tracing)."""
        from tfxai.errors import InvalidInputError

        name = self.argument
        if isinstance(self.value, np.ndarray):
            try:
                np.broadcast_shapes(self.value.shape, tuple(images.shape))
            except ValueError:
                raise InvalidInputError(
                    f"`{name}` of shape {self.value.shape} cannot be broadcast to images of shape "
                    f"{tuple(images.shape)}. Pass a number, one image (H, W, C) or N images."
                ) from None
        elif callable(self.value) and not isinstance(self.value, str):
            value = np.asarray(self.value(images[:1]))
            try:
                np.broadcast_shapes(value.shape, (1, *images.shape[1:]))
            except ValueError:
                raise InvalidInputError(
                    f"The `{name}` callable returned shape {value.shape} for images of shape "
                    f"{(1, *images.shape[1:])}; it must return baselines of the images' shape."
                ) from None
            if value.dtype.kind not in "biuf" or not np.all(np.isfinite(value)):
                raise InvalidInputError(
                    f"The `{name}` callable returned NaN, infinite or non-numeric values; it must return "
                    "finite baselines in the model's input space."
                )

    def __repr__(self) -> str:
        if isinstance(self.value, np.ndarray):
            return repr(float(self.value)) if self.value.ndim == 0 else f"<array {self.value.shape}>"
        return repr(self.value)
