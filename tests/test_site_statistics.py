"""site_statistics (the reductions T-Grad and FullGrad read) against the same reductions of the built term."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from tfxai.decomposition import STATISTICS, Site, SiteGradient, site_statistics, term_statistics

RNG = np.random.default_rng(0)


def _site(gradient, residual, output=None, saturation=None):
    gradient = tf.constant(gradient)
    output = gradient if output is None else tf.constant(output)
    return SiteGradient(Site("s", "test", tuple(gradient.shape[1:])), gradient, output, tf.constant(residual), saturation)


def _check(site, residual=None):
    residual = site.residual if residual is None else residual
    expected = term_statistics(site.gradient * residual, STATISTICS)
    for wanted in (STATISTICS, ("relu_sum", "total"), ("abs_sum", "abs_min", "abs_max"), ("abs_min",)):
        got = site_statistics(site, wanted)
        assert set(got) == set(wanted)
        for name in wanted:
            assert got[name].shape == expected[name].shape, name
            np.testing.assert_allclose(got[name].numpy(), expected[name].numpy(), rtol=1e-12, atol=1e-14, err_msg=name)
            if name != "total":  # ReLU and abs sums are non-negative, as in the definition
                assert np.all(got[name].numpy() >= 0), name


@pytest.mark.parametrize("shape", [(3, 5, 4, 6), (3, 6), (2, 7, 5)])
@pytest.mark.parametrize("residual_shape", ["channels", "scalar"])
def test_per_channel_residual(shape, residual_shape):
    g = RNG.normal(size=shape)
    g[0, ..., 1] = 0.0  # exact zeros (a ReLU-masked gradient)
    r = RNG.normal(size=(1,) * (len(shape) - 1) + (shape[-1],)) if residual_shape == "channels" else np.float64(-0.7)
    _check(_site(g, r))


def test_per_channel_residual_with_a_zero_bias():
    g = RNG.normal(size=(2, 4, 4, 3)) + 5.0  # no zero gradient: the minimum comes from r
    r = np.array([[[[0.5, 0.0, -2.0]]]])
    _check(_site(g, r))


@pytest.mark.parametrize("fraction", [0.0, 0.02, 0.3, 0.8, 1.0])
@pytest.mark.parametrize("shape", [(3, 6, 5, 4), (4, 9)])
def test_saturation_residual(fraction, shape):
    """r = 6 (y >= 6): none, few, many or all rows saturated (the three branches)."""
    g = RNG.normal(size=shape)
    y = np.clip(RNG.normal(3.0, 2.0, size=shape), 0.0, 5.9)
    saturated = RNG.uniform(size=shape) < fraction
    y[saturated] = 6.0
    if fraction == 1.0:
        y[:] = 6.0
    r = np.where(y >= 6.0, 6.0, 0.0)
    _check(_site(g, r, output=y, saturation=6.0))


def test_full_size_residual():
    g = RNG.normal(size=(2, 5, 5, 3))
    r = RNG.normal(size=(2, 5, 5, 3)) * (RNG.uniform(size=(2, 5, 5, 3)) > 0.5)
    _check(_site(g, r))


def test_traced_with_unknown_batch():
    g = RNG.normal(size=(3, 4, 4, 5))
    y = np.where(RNG.uniform(size=g.shape) < 0.1, 6.0, 1.0)
    r = RNG.normal(size=(1, 1, 1, 5))

    @tf.function(input_signature=[tf.TensorSpec([None, 4, 4, 5], tf.float64)] * 2)
    def run(gradient, output):
        sites = [
            SiteGradient(Site("a", "t", (4, 4, 5)), gradient, output, tf.constant(r)),
            SiteGradient(Site("b", "t", (4, 4, 5)), gradient, output, tf.where(output >= 6.0, 6.0, 0.0), 6.0),
        ]
        return [site_statistics(s) for s in sites]

    channel, saturation = run(tf.constant(g), tf.constant(y))
    for got, residual in ((channel, r), (saturation, np.where(y >= 6.0, 6.0, 0.0))):
        expected = term_statistics(tf.constant(g * residual))
        assert got["relu_sum"].shape.as_list() == [3, 4, 4]
        for name in STATISTICS:
            np.testing.assert_allclose(got[name].numpy(), expected[name].numpy(), rtol=1e-12, atol=1e-14)
