"""The explainer contract, checked once on every registered method (the registry is the table) and a few variants."""

import warnings

import numpy as np
import pytest
import tensorflow as tf

import tfxai
from tfxai.errors import DegenerateMapWarning
from tests import models
from tests.conftest import assert_unchanged, degenerate_images, weights_snapshot
from tfxai import _registry

def registered(name):
    """A registered method with its command-line settings (seeded), and `batch_size` rows per call."""
    return lambda m, bs: _registry.build(name, m, batch_size=bs)


#: Every registered method (the registry is the table), plus the variants of some.
FACTORIES = {name: registered(name) for name in _registry.METHODS}
FACTORIES.update({
    "ig-uniform": lambda m, bs: tfxai.IntegratedGradients(
        m, baseline="uniform", num_baseline_samples=2, num_steps=4, seed=5, batch_size=bs
    ),
    "gradcam++-official": lambda m, bs: tfxai.GradCAMPlusPlus(m, variant="official", batch_size=bs),
    "fullgrad-pytorch_grad_cam": lambda m, bs: tfxai.FullGrad(m, variant="pytorch_grad_cam", batch_size=bs),
    "noisetunnel-inputxgradient": lambda m, bs: tfxai.NoiseTunnel(
        tfxai.InputXGradient(m, batch_size=bs), num_samples=4, seed=1, batch_size=bs),
})
STOCHASTIC = {"smoothgrad", "ig-uniform", "noisetunnel-inputxgradient"}


@pytest.fixture(scope="module")
def model(softmax_cnn):
    return softmax_cnn


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(1).uniform(size=(5, 16, 16, 3)).astype("float32")


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_contract(name, model, images):
    check_contract(FACTORIES[name], model, images)


def check_contract(factory, model, images):
    """The contract every method keeps: shape, dtype, batching, order, one trace, model unchanged."""
    snapshot = weights_snapshot(model)
    explainer = factory(model, 64)
    targets = [0, 1, 2, 3, 4]

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        maps = explainer(images, targets).numpy()
    assert maps.shape == (5, 16, 16) and maps.dtype == np.float32
    assert np.all(np.isfinite(maps)) and np.ptp(maps) > 0
    # a constant or all-zero map (this random model has some) is always said, and only then
    flat = maps.reshape(5, -1)
    assert degenerate_images(caught) == np.nonzero(flat.max(axis=1) == flat.min(axis=1))[0].tolist()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DegenerateMapWarning)  # the same images again, checked above
        np.testing.assert_allclose(explainer(tf.constant(images), targets), maps, rtol=1e-5, atol=1e-7)
        one_at_a_time = factory(model, 1)(images, targets).numpy()
        np.testing.assert_allclose(one_at_a_time, maps, rtol=1e-4, atol=1e-6)
        order = [3, 0, 4, 1, 2]
        permuted = explainer(images[order], np.array(targets)[order]).numpy()
        np.testing.assert_allclose(permuted, maps[order], rtol=1e-4, atol=1e-6)

        # one trace per input shape, whatever the batch size
        assert explainer.trace_count == 1
        explainer(images[:2], targets[:2])
        assert explainer.trace_count == 1

    assert_unchanged(model, snapshot)
    assert np.allclose(model(images).numpy().sum(-1), 1.0, atol=1e-5)  # still ends in softmax


@pytest.mark.parametrize("name", sorted(STOCHASTIC))
def test_seeds_reproduce(name, model, images):
    a = FACTORIES[name](model, 64)(images, 1).numpy()
    b = FACTORIES[name](model, 64)(images, 1).numpy()
    np.testing.assert_array_equal(a, b)
    other = FACTORIES[name](model, 64)
    other.seed = 999
    assert not np.allclose(other(images, 1).numpy(), a)


def test_unseeded_calls_differ(model, images):
    explainer = tfxai.SmoothGrad(model, num_samples=3, seed=None)
    assert not np.allclose(explainer(images, 1).numpy(), explainer(images, 1).numpy())


def test_float64_models_give_float64_maps(float64):
    model, _, _ = models.linear_model((4, 4, 3), num_classes=2)
    maps = tfxai.IntegratedGradients(model, num_steps=4)(np.ones((2, 4, 4, 3)) * 0.5, 1)
    assert maps.dtype == tf.float64
