"""Pure pieces: chunked row accumulation and quadrature rules."""

import numpy as np
import pytest
import tensorflow as tf

from tfxai import _batching, _integration


@pytest.mark.parametrize("batch_size", [1, 2, 5, 7, 12, 100])
def test_accumulate_rows_visits_every_row_once(batch_size):
    calls = []

    def row(image_index, k):
        calls.append(int(tf.size(image_index)))
        # row (i, k) contributes 10**k to image i, plus a count of 1
        return {"value": tf.cast(10 ** k, tf.float64) + 0 * tf.cast(image_index, tf.float64), "count": tf.ones_like(k)}

    spec = {"value": tf.TensorSpec([], tf.float64), "count": tf.TensorSpec([], tf.int32)}
    out = _batching.accumulate_rows(row, 4, 3, batch_size, spec)
    np.testing.assert_array_equal(out["value"].numpy(), [111.0] * 4)
    np.testing.assert_array_equal(out["count"].numpy(), [3] * 4)
    assert max(calls) <= batch_size
    assert sum(calls) == 12


def test_accumulate_rows_in_a_tf_function_with_unknown_batch():
    @tf.function(input_signature=[tf.TensorSpec([None, 2], tf.float32)])
    def sums(x):
        return _batching.map_images(lambda i: tf.gather(x, i) * 2.0, tf.shape(x)[0], 3, tf.TensorSpec([2], tf.float32))

    x = np.arange(14, dtype="float32").reshape(7, 2)
    np.testing.assert_array_equal(sums(x).numpy(), 2 * x)


@pytest.mark.parametrize("method", _integration.METHODS)
@pytest.mark.parametrize("num_steps", [1, 2, 9, 50])
def test_rules_integrate_linear_functions_exactly(method, num_steps):
    alphas, weights = _integration.rule(method, num_steps)
    assert np.isclose(weights.sum(), 1.0)
    assert alphas.min() >= 0 and alphas.max() <= 1
    if method in ("trapezoid", "riemann_middle"):
        np.testing.assert_allclose(np.sum(weights * (3 * alphas + 2)), 3.5)  # integral of 3a + 2


def test_rule_alphas_follow_the_lecture():
    np.testing.assert_allclose(_integration.rule("trapezoid", 4)[0], [0, 0.25, 0.5, 0.75, 1])
    np.testing.assert_allclose(_integration.rule("trapezoid", 4)[1], [0.125, 0.25, 0.25, 0.25, 0.125])
    np.testing.assert_allclose(_integration.rule("riemann_left", 4)[0], [0, 0.25, 0.5, 0.75])
    np.testing.assert_allclose(_integration.rule("riemann_right", 4)[0], [0.25, 0.5, 0.75, 1])
    np.testing.assert_allclose(_integration.rule("riemann_middle", 4)[0], [0.125, 0.375, 0.625, 0.875])
    # Riemann rules converge at first order on a convex function, the trapezoid/midpoint at second order
    f = np.square
    errors = {m: abs(np.sum(_integration.rule(m, 10)[1] * f(_integration.rule(m, 10)[0])) - 1 / 3) for m in _integration.METHODS}
    assert errors["trapezoid"] < errors["riemann_right"] / 5 and errors["riemann_middle"] < errors["riemann_left"] / 5


# ----------------------------------------------------------------------------- one engine (issue 16)
def test_row_numbers_are_int64_past_2_to_the_31():
    """N x K rows past 2**31 (RISE masks x images): the last chunk's rows keep the right image and k (was: int32 overflow)."""
    from tfxai import _batching

    rows_per_image, total = 2**30 + 3, 3 * (2**30 + 3)  # 3 images: 3 221 225 481 rows
    chunk = tf.constant((total - 1) // 1000, tf.int64)
    image, k, valid = _batching._chunk_rows(chunk, tf.constant(total, tf.int64), rows_per_image, 1000, fixed=False)
    assert valid is None and image.dtype == tf.int32
    assert int(image[-1]) == 2 and int(k[-1]) == rows_per_image - 1
    assert int(image[0]) == ((total - 1) // 1000 * 1000) // rows_per_image


def test_fixed_chunks_for_xla_give_the_same_sums_and_maps():
    from tfxai import _batching

    values = tf.reshape(tf.range(7 * 5, dtype=tf.float32), [7, 5])

    def row(image, k):
        return tf.gather_nd(values, tf.stack([image, k], axis=1))[:, None] * tf.ones([1, 2])

    spec = tf.TensorSpec([2], tf.float32)
    plain = _batching.accumulate_rows(row, 7, 5, 3, spec)
    fixed = _batching.accumulate_rows(row, 7, 5, 3, spec, fixed=True)
    np.testing.assert_array_equal(fixed, plain)
    np.testing.assert_array_equal(plain[:, 0], tf.reduce_sum(values, axis=1))
    seen = []

    def chunk(index):
        seen.append(index.shape[0])
        return tf.gather(values, index)[:, 0]

    mapped = tf.function(lambda: _batching.map_images(chunk, 7, 4, tf.TensorSpec([], tf.float32), fixed=True))()
    np.testing.assert_array_equal(mapped, values[:, 0])
    assert seen == [4]  # every chunk has the static batch size (XLA)
    np.testing.assert_array_equal(_batching.map_images(chunk, 7, 4, tf.TensorSpec([], tf.float32)), values[:, 0])
