"""site_statistics (the reductions T-Grad and FullGrad read) against the same reductions of the built term."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

import tfxai

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
    """r = 6 (y >= 6): none (the shortcut), few, many or all elements saturated."""
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


def test_bias_under_a_fused_relu():
    """r = (y > 0) * b: the gradient is masked by the ReLU's gradient op, b taken per channel."""
    g = RNG.normal(size=(3, 5, 4, 6))
    y = np.maximum(RNG.normal(size=g.shape), 0.0)  # a ReLU output: exact zeros where inactive
    b = RNG.normal(size=(6,))
    r = (y > 0) * b
    site = SiteGradient(Site("s", "conv_bias", (5, 4, 6)), tf.constant(g), tf.constant(y), tf.constant(r), None, tf.constant(b))
    _check(site)


def test_decomposition_tags_its_sites():
    """Which sites of a real decomposition take the per-channel, saturation and masked paths."""
    from tests.reference import decomposition as reference_decomposition

    model = reference_decomposition.small_bn_cnn()
    d = tfxai.decompose(model)
    images = tf.constant(RNG.normal(size=(2, 12, 12, 3)))
    _, _, _, sites = d.gradients(images, tf.constant([0, 1]))
    tags = {s.site.name: ("saturation" if s.saturation else "masked" if s.masked_bias is not None else
                          "channel" if tfxai.decomposition._is_per_channel(s.residual, s.gradient) else "dense")
            for s in sites}
    assert tags == {"conv1": "channel", "bn1": "channel", "conv2": "masked", "bn2": "channel", "conv3": "channel",
                    "relu6": "saturation", "head": "channel"}
    for s in sites:
        expected = term_statistics(s.gradient * s.residual)
        for name, value in site_statistics(s).items():
            np.testing.assert_allclose(value.numpy(), expected[name].numpy(), rtol=1e-12, atol=1e-14, err_msg=s.site.name)
