"""Chunked evaluation with one meaning of `batch_size`: rows per model call.

A method that expands each image into ``K`` rows (IG steps, SmoothGrad samples,
Score-CAM masks, metric steps) describes one row by ``(image index, row index
k)``. :func:`accumulate_rows` walks the ``N * K`` rows in chunks of
`batch_size` inside the graph (a `tf.while_loop` when traced) and sums each
row's contribution into its image. Memory is bounded by one chunk plus the
``(N, ...)`` accumulators, and the result does not depend on `batch_size` up to
floating-point summation order.
"""

from __future__ import annotations

from typing import Any, Callable

import tensorflow as tf


def accumulate_rows(
    row_fn: Callable[[tf.Tensor, tf.Tensor], Any],
    num_images: tf.Tensor | int,
    rows_per_image: int,
    batch_size: int,
    output_spec: Any,
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

    Returns:
        A nest matching ``output_spec`` of tensors of shape ``(N, ...)``.
    """
    num_images = tf.cast(num_images, tf.int32)
    total = num_images * rows_per_image
    specs = tf.nest.flatten(output_spec)
    accumulators = [tf.zeros(tf.concat([[num_images], s.shape], 0), s.dtype) for s in specs]

    def body(start, accumulators):
        rows = tf.range(start, tf.minimum(start + batch_size, total))
        image_index = rows // rows_per_image
        outputs = tf.nest.flatten(row_fn(image_index, rows % rows_per_image))
        scatter_index = image_index[:, None]
        return start + batch_size, [
            tf.tensor_scatter_nd_add(acc, scatter_index, tf.cast(out, acc.dtype))
            for acc, out in zip(accumulators, outputs)
        ]

    _, accumulators = tf.while_loop(
        lambda start, _: start < total,
        body,
        (tf.constant(0, tf.int32), accumulators),
        shape_invariants=(tf.TensorShape([]), [tf.TensorShape([None, *s.shape]) for s in specs]),
    )
    return tf.nest.pack_sequence_as(output_spec, accumulators)


def map_images(fn: Callable[[tf.Tensor], Any], num_images: tf.Tensor | int, batch_size: int, output_spec: Any) -> Any:
    """Evaluate ``fn(image_index) -> (R, ...)`` on chunks of `batch_size` images.

    The one-row-per-image case of :func:`accumulate_rows`, without its
    accumulators: each chunk's outputs are kept in a ``tf.TensorArray`` and
    concatenated once at the end (no zero-filled accumulator, no scatter
    copies; the values are the same, nothing is summed).
    """
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
