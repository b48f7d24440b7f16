"""Chunked evaluation with one meaning of `batch_size`: rows per model call.

A method that expands each image into ``K`` rows (IG steps, SmoothGrad samples,
Score-CAM masks, metric steps) describes one row by ``(image index, row index
k)``. :func:`accumulate_rows` walks the ``N * K`` rows in chunks of
`batch_size` inside the graph (a `tf.while_loop` when traced) and sums each
row's contribution into its image. Memory is bounded by one chunk plus the
``(N, ...)`` accumulators, and the result does not depend on `batch_size` up to
floating-point summation order.

Row counts are int64 (``N * K`` may pass 2**31); one image's ``K`` rows and
`batch_size` must each stay below 2**31 (:data:`MAX_ROWS`), else a clear
:class:`~tfxai.errors.InvalidInputError` is raised when the step is built.

With ``fixed=True`` (for XLA, which needs static shapes) every call of the
row function sees exactly `batch_size` rows: rows past the end repeat the last
row and are masked out. Otherwise the last chunk is just shorter.
"""

from __future__ import annotations

from typing import Any, Callable

import tensorflow as tf

from tfxai._validation import MAX_COUNT
from tfxai.errors import InvalidInputError

#: Rows per image and rows per call must stay below this (int32 row indices in the row functions).
MAX_ROWS = MAX_COUNT


def check_rows(rows_per_image: int, batch_size: int) -> None:
    """Refuse a count the int32 row index of a row function cannot hold (a clear error, not all-zero maps)."""
    for value, what in ((rows_per_image, "rows per image (e.g. IG steps x baseline samples, RISE masks, SmoothGrad "
                         "samples, metric steps)"), (batch_size, "batch_size")):
        if int(value) > MAX_ROWS:
            raise InvalidInputError(
                f"{what} is {int(value):,}, above the limit of {MAX_ROWS:,} (2**31 - 1) rows; such a job would run for "
                "hours. Use a smaller count."
            )


def _chunk_rows(chunk: tf.Tensor, total: tf.Tensor, rows_per_image: int, batch_size: int, fixed: bool) -> tuple:
    """``(image_index, k, valid)`` of chunk number `chunk`: int32 indices from int64 row numbers.

    `valid` is None (every row real) unless `fixed`, where it is a bool ``(batch_size,)`` mask of the real rows.
    """
    first = chunk * batch_size
    if fixed:
        rows = first + tf.range(batch_size, dtype=tf.int64)
        valid = rows < total
        rows = tf.minimum(rows, tf.maximum(total - 1, 0))
    else:
        rows = first + tf.range(tf.minimum(tf.cast(batch_size, tf.int64), total - first), dtype=tf.int64)
        valid = None
    return tf.cast(rows // rows_per_image, tf.int32), tf.cast(rows % rows_per_image, tf.int32), valid


def accumulate_rows(
    row_fn: Callable[[tf.Tensor, tf.Tensor], Any],
    num_images: tf.Tensor | int,
    rows_per_image: int,
    batch_size: int,
    output_spec: Any,
    fixed: bool = False,
) -> Any:
    """Sum ``row_fn`` over rows ``(i, k)``, ``k < rows_per_image``, grouped by image ``i``.

    Args:
        row_fn: ``row_fn(image_index, k)`` with two int32 vectors of equal length
            ``R <= batch_size``; returns a (nest of) tensors of shape ``(R, ...)``.
        num_images: number of images N (a Python int or scalar tensor).
        rows_per_image: K, rows per image.
        batch_size: rows evaluated per call of ``row_fn``.
        output_spec: a (nest of) ``tf.TensorSpec`` giving the per-row shape
            (without the leading axis) and dtype of ``row_fn``'s outputs.
        fixed: every call of ``row_fn`` sees exactly `batch_size` rows (XLA's static shapes).

    Returns:
        A nest matching ``output_spec`` of tensors of shape ``(N, ...)``.
    """
    check_rows(rows_per_image, batch_size)
    num_images = tf.cast(num_images, tf.int32)
    total = tf.cast(num_images, tf.int64) * rows_per_image
    # loop over a chunk counter: XLA (TF 2.21, CPU) runs no iteration of `start < total` loops when total is 1
    chunks = (total + batch_size - 1) // batch_size
    specs = tf.nest.flatten(output_spec)
    accumulators = [tf.zeros(tf.concat([[num_images], s.shape], 0), s.dtype) for s in specs]

    def body(chunk, accumulators):
        image_index, k, valid = _chunk_rows(chunk, total, rows_per_image, batch_size, fixed)
        outputs = [tf.cast(o, a.dtype) for o, a in zip(tf.nest.flatten(row_fn(image_index, k)), accumulators)]
        if valid is not None:
            outputs = [tf.where(tf.reshape(valid, [-1] + [1] * (o.shape.rank - 1)), o, tf.zeros_like(o)) for o in outputs]
        scatter_index = image_index[:, None]
        return chunk + 1, [tf.tensor_scatter_nd_add(acc, scatter_index, out) for acc, out in zip(accumulators, outputs)]

    _, accumulators = tf.while_loop(
        lambda chunk, _: chunk < chunks,
        body,
        (tf.constant(0, tf.int64), accumulators),
        shape_invariants=(tf.TensorShape([]), [tf.TensorShape([None, *s.shape]) for s in specs]),
    )
    return tf.nest.pack_sequence_as(output_spec, accumulators)


def map_images(
    fn: Callable[[tf.Tensor], Any], num_images: tf.Tensor | int, batch_size: int, output_spec: Any, fixed: bool = False
) -> Any:
    """Evaluate ``fn(image_index) -> (R, ...)`` on chunks of `batch_size` images.

    The one-row-per-image case of :func:`accumulate_rows`, without its
    accumulators: each chunk's outputs are kept in a ``tf.TensorArray`` and
    concatenated once at the end (no zero-filled accumulator, no scatter
    copies; the values are the same, nothing is summed). With `fixed` (XLA)
    it is :func:`accumulate_rows` with one row per image (static chunk shapes).
    """
    if fixed:
        return accumulate_rows(lambda index, _: fn(index), num_images, 1, batch_size, output_spec, fixed=True)
    check_rows(1, batch_size)
    num_images = tf.cast(num_images, tf.int32)
    specs = tf.nest.flatten(output_spec)
    arrays = [
        tf.TensorArray(s.dtype, size=0, dynamic_size=True, infer_shape=False, element_shape=tf.TensorShape([None, *s.shape]))
        for s in specs
    ]

    def body(step, start, arrays):
        index = tf.range(start, tf.minimum(start + batch_size, num_images))
        outputs = tf.nest.flatten(fn(index))
        return step + 1, start + batch_size, [a.write(step, tf.cast(o, a.dtype)) for a, o in zip(arrays, outputs)]

    _, _, arrays = tf.while_loop(
        lambda step, start, _: start < num_images, body, (tf.constant(0, tf.int32), tf.constant(0, tf.int32), arrays)
    )
    outputs = []
    for array, spec in zip(arrays, specs):
        value = array.concat()
        value.set_shape([None, *spec.shape])
        outputs.append(value)
    return tf.nest.pack_sequence_as(output_spec, outputs)
