"""In-graph cores of the evaluation metrics, for compiled (and distributed) steps.

The same quantities as :func:`tfxai.metrics.insertion`, :func:`~tfxai.metrics.deletion`
and :func:`~tfxai.metrics.confidence_change`, written as pure TensorFlow
functions of tensors (no NumPy, no Python callbacks), so they run inside one
`tf.function` per step on every replica of a `tf.distribute` strategy, on a
GPU without host round trips, and optionally under XLA (``jit_compile``):

* pixels ranked with :func:`tfxai.metrics.perturbation.pixel_ranks` (stable
  sort, ties in row-major order) and the step schedule of
  :func:`~tfxai.metrics.perturbation.step_schedule`;
* perturbed images scored in fixed-size chunks of `batch_size` rows inside a
  `tf.while_loop` (the last chunk is padded with a repeated row and masked, so
  every model call has the same shape: XLA-compatible);
* AUCs and the confidence terms in float64.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import tensorflow as tf

from tfxai import image_ops
from tfxai.errors import InvalidInputError, InvalidTypeError
from tfxai.metrics import _common


def probability_fn(model_or_adapter: Any) -> Callable[[tf.Tensor], tf.Tensor]:
    """``f(images) -> (N, K)`` probabilities of the model's classes (softmax of its logits, once)."""
    from tfxai.adapter import adapt

    return _common.score_fn(adapt(model_or_adapter), "probability")


def probability_dtype(model_or_adapter: Any) -> tf.DType:
    """The float dtype the metrics compute in (the adapter's: float32 for ordinary models)."""
    from tfxai.adapter import adapt

    return adapt(model_or_adapter).dtype


def substrate_fn(model_or_adapter: Any, substrate: Any, example: tf.Tensor | None = None,
                 name: str = "substrate") -> Callable[[tf.Tensor], tf.Tensor]:
    """``f(images) -> substrate`` in-graph (checked eagerly once on `example` when given).

    The substrates of :func:`tfxai.metrics.insertion`: ``"blur"`` (Gaussian,
    kernel 11, sigma 5, reflect padding), ``"black"`` (the low end of the
    model's input range), ``"zero"``, a number, an array broadcastable to the
    images, or a callable ``f(images)`` written in TensorFlow.
    """
    from tfxai.adapter import adapt

    input_range = adapt(model_or_adapter).input_range
    if example is not None:  # the metrics' own eager checks and messages
        _common.make_substrate(substrate, example, input_range, name=name)
    if isinstance(substrate, str):
        if substrate not in _common.SUBSTRATES:
            raise InvalidInputError(
                f"`{name}` must be 'blur', 'black', 'zero', a number, an array or a callable. Received: {substrate!r}."
            )
        return lambda images: _common.make_substrate(substrate, images, input_range, name=name)
    if callable(substrate):
        return lambda images: tf.broadcast_to(tf.cast(substrate(images), images.dtype), tf.shape(images))
    if isinstance(substrate, (bool, np.bool_)):
        raise InvalidTypeError(f"`{name}` must be 'blur', 'black', 'zero', a number, an array or a callable; received a bool.")
    value = np.asarray(substrate, np.float64)
    if not np.all(np.isfinite(value)):
        raise InvalidInputError(f"`{name}` contains NaN or infinite values.")
    return lambda images: tf.broadcast_to(tf.cast(value, images.dtype), tf.shape(images))


def non_empty(fn: Callable[[tf.Tensor], tf.Tensor], images: tf.Tensor) -> tf.Tensor:
    """``fn(images)``, skipped for an empty batch (returns `images`): reflect padding rejects 0 rows."""
    return tf.cond(tf.shape(images)[0] > 0, lambda: tf.cast(fn(images), images.dtype), lambda: images)


def chunked_rows(
    row_fn: Callable[[tf.Tensor, tf.Tensor], tf.Tensor],
    num_images: tf.Tensor,
    rows_per_image: int,
    width: int,
    batch_size: int,
    dtype: tf.DType,
    fixed: bool = False,
) -> tf.Tensor:
    """``(N, width)`` sums of ``row_fn(image_index, k) -> (R, width)`` over rows ``(i, k)``, ``R <= batch_size``.

    With `fixed` (for XLA, which needs static shapes) every call of `row_fn`
    sees exactly `batch_size` rows: rows past the end repeat the last row and
    are masked out. Otherwise the last chunk is just shorter (no wasted rows).
    """
    num_images = tf.cast(num_images, tf.int32)
    total = num_images * rows_per_image
    last = tf.maximum(total - 1, 0)

    # loop over a chunk counter: XLA (TF 2.21, CPU) runs no iteration of `start < total` loops when total is 1
    chunks = (total + batch_size - 1) // batch_size

    def body(chunk: tf.Tensor, acc: tf.Tensor) -> tuple:
        first = chunk * batch_size
        if fixed:
            rows = first + tf.range(batch_size, dtype=tf.int32)
            valid = tf.cast(rows < total, dtype)[:, None]
            rows = tf.minimum(rows, last)
        else:
            rows = first + tf.range(tf.minimum(batch_size, total - first), dtype=tf.int32)
            valid = tf.ones([1, 1], dtype)
        image_index = rows // rows_per_image
        out = tf.cast(row_fn(image_index, rows % rows_per_image), dtype) * valid
        return chunk + 1, tf.tensor_scatter_nd_add(acc, image_index[:, None], out)

    _, acc = tf.while_loop(
        lambda chunk, _: chunk < chunks,
        body,
        (tf.constant(0, tf.int32), tf.zeros(tf.stack([num_images, width]), dtype)),
        shape_invariants=(tf.TensorShape([]), tf.TensorShape([None, width])),
    )
    return acc


def target_probability(
    probabilities: Callable, images: tf.Tensor, targets: tf.Tensor, batch_size: int, fixed: bool = False
) -> tf.Tensor:
    """``(N,)`` probability of each image's target class."""

    def row(index: tf.Tensor, _: tf.Tensor) -> tf.Tensor:
        probs = probabilities(tf.gather(images, index))
        return tf.gather(probs, tf.gather(targets, index), axis=1, batch_dims=1)[:, None]

    return chunked_rows(row, tf.shape(images)[0], 1, 1, batch_size, images.dtype, fixed)[:, 0]


def predicted_classes(probabilities: Callable, images: tf.Tensor, batch_size: int, fixed: bool = False) -> tf.Tensor:
    """``(N,)`` int32 argmax class of each image."""

    def row(index: tf.Tensor, _: tf.Tensor) -> tf.Tensor:
        return tf.cast(tf.argmax(probabilities(tf.gather(images, index)), axis=-1), tf.float64)[:, None]

    return tf.cast(chunked_rows(row, tf.shape(images)[0], 1, 1, batch_size, tf.float64, fixed)[:, 0], tf.int32)


def curve_scores(
    probabilities: Callable,
    images: tf.Tensor,
    substrate: tf.Tensor,
    ranks: tf.Tensor,
    targets: tf.Tensor,
    steps: int,
    per_step: int,
    delete: bool,
    batch_size: int,
    fixed: bool = False,
) -> tf.Tensor:
    """``(N, steps + 1)`` target probability after ``k`` steps of `per_step` pixels (deletion or insertion)."""
    height, width = images.shape[1], images.shape[2]

    def row(image_index: tf.Tensor, k: tf.Tensor) -> tf.Tensor:
        changed = tf.gather(ranks, image_index) < (k * per_step)[:, None]
        changed = tf.reshape(changed, [-1, height, width, 1])
        original = tf.gather(images, image_index)
        other = tf.gather(substrate, image_index)
        perturbed = tf.where(changed, other, original) if delete else tf.where(changed, original, other)
        probs = probabilities(perturbed)
        score = tf.gather(probs, tf.gather(targets, image_index), axis=1, batch_dims=1)
        return tf.one_hot(k, steps + 1, dtype=score.dtype) * score[:, None]

    return chunked_rows(row, tf.shape(images)[0], steps + 1, steps + 1, batch_size, images.dtype, fixed)


def curve_auc(scores: tf.Tensor, fractions: np.ndarray, rule: str) -> tf.Tensor:
    """``(N,)`` float64 AUC of ``(N, S + 1)`` curves (the rules of :func:`tfxai.metrics.curve_auc`)."""
    scores = tf.cast(scores, tf.float64)
    if rule == "mean_of_steps":
        return tf.reduce_mean(scores[:, 1:], axis=1)
    widths = tf.constant(np.diff(np.asarray(fractions, np.float64)), tf.float64)
    return tf.reduce_sum((scores[:, 1:] + scores[:, :-1]) * 0.5 * widths, axis=1)


def confidence_terms(
    probabilities: Callable,
    images: tf.Tensor,
    maps: tf.Tensor,
    targets: tf.Tensor,
    substrate: tf.Tensor,
    batch_size: int,
    fixed: bool = False,
) -> tuple[tf.Tensor, tf.Tensor]:
    """``(drop, increase)`` float64 ``(N,)``: ``max(0, Y - O) / Y`` and ``[O > Y]`` (Grad-CAM++)."""
    normalised = image_ops.minmax_normalize(maps)
    explained = substrate + normalised[..., None] * (images - substrate)
    y = tf.cast(target_probability(probabilities, images, targets, batch_size, fixed), tf.float64)
    o = tf.cast(target_probability(probabilities, tf.cast(explained, images.dtype), targets, batch_size, fixed), tf.float64)
    drop = tf.maximum(tf.constant(0.0, tf.float64), y - o) / tf.maximum(y, np.finfo(np.float64).tiny)
    return drop, tf.cast(o > y, tf.float64)


def count_non_finite(maps: tf.Tensor) -> tf.Tensor:
    """Number of maps (rows) holding NaN or infinite values (int32 scalar)."""
    flat = tf.reshape(maps, [tf.shape(maps)[0], -1])
    return tf.reduce_sum(tf.cast(tf.reduce_any(~tf.math.is_finite(flat), axis=1), tf.int32))
