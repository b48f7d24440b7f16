"""Targets: which class is explained, and what score of it (one place for both).

A target is given as ``None`` (each image's predicted class), one ``int`` (the
same class for every image) or ``N`` ints (one per image). The explained score
is either the class logit or its softmax probability.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import tensorflow as tf

from tfxai.errors import InvalidInputError, InvalidTypeError

OUTPUTS = ("logit", "probability")


def parse_targets(targets: Any, num_images: int, num_classes: int) -> np.ndarray | None:
    """Check `targets` and return an int32 array of shape (N,), or None for "predicted".

    Raises:
        InvalidTypeError: for floats, booleans, strings or one-hot arrays.
        InvalidInputError: for a wrong number of targets or out-of-range classes.
    """
    if targets is None:
        return None
    if isinstance(targets, (bool, np.bool_)):
        raise InvalidTypeError(f"`targets` must be None, an int or N ints. Received: targets={targets!r}.")
    if isinstance(targets, (int, np.integer)):
        array = np.full((num_images,), int(targets), dtype=np.int64)
    else:
        try:
            array = np.asarray(targets.numpy() if hasattr(targets, "numpy") else targets)
        except Exception:
            raise InvalidTypeError(
                f"`targets` must be None, an int or a sequence of N ints. Received: {targets!r}."
            ) from None
        if array.ndim == 2:
            raise InvalidInputError(
                f"`targets` must be class indices of shape (N,); received shape {array.shape}, "
                "which looks one-hot. Pass `np.argmax(targets, axis=-1)` instead."
            )
        if array.dtype.kind not in "iu":
            if array.dtype.kind == "f" and array.size and np.all(array == np.round(array)) and array.ndim == 1:
                raise InvalidTypeError(
                    "`targets` must be integer class indices; received floats "
                    f"{array[:8].tolist()}. Cast them: `np.asarray(targets, dtype=int)`."
                )
            raise InvalidTypeError(
                f"`targets` must be integer class indices; received an array of dtype {array.dtype}."
            )
        if array.ndim == 0:
            array = np.full((num_images,), int(array), dtype=np.int64)
        elif array.ndim != 1:
            raise InvalidInputError(f"`targets` must have shape (N,); received shape {array.shape}.")
    if array.shape[0] != num_images:
        raise InvalidInputError(
            f"`targets` has {array.shape[0]} entries but `images` has {num_images} images. "
            "Pass one class index per image, a single int, or None for the predicted class. "
            f"Received: targets={array[:10].tolist()}{'...' if array.shape[0] > 10 else ''}."
        )
    bad = (array < 0) | (array >= num_classes)
    if bad.any():
        raise InvalidInputError(
            f"`targets` must be class indices in [0, {num_classes - 1}] for a model with "
            f"{num_classes} classes. Received out-of-range values: {sorted(set(array[bad].tolist()))[:10]}."
        )
    return array.astype(np.int32)


def select_scores(logits: tf.Tensor, targets: tf.Tensor, output: str = "logit") -> tf.Tensor:
    """Pick each row's explained score: shape (N, K) logits and (N,) targets -> (N,).

    `output="logit"` returns the pre-softmax class score; `output="probability"`
    returns softmax(logits)[target].
    """
    if output == "probability":
        logits = tf.nn.softmax(logits, axis=-1)
    return tf.gather(logits, tf.cast(targets, tf.int32), axis=1, batch_dims=1)


def score_fn(output: str) -> Callable[[tf.Tensor, tf.Tensor], tf.Tensor]:
    """Return ``f(logits, targets) -> (N,)`` for the given `output` kind."""
    return lambda logits, targets: select_scores(logits, targets, output)
