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
