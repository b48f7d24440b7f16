"""Shared fixtures: seeds, float64 mode, the trained localisation CNN, the real ImageNet model."""

from __future__ import annotations

import re

import keras
import numpy as np
import pytest

from tests import models
from tfxai.errors import DegenerateMapWarning


@pytest.fixture(autouse=True)
def _fresh_keras_session():
    keras.utils.clear_session()
    yield


@pytest.fixture
def float64():
    """Run Keras in float64 for the test, restoring floatx and the global dtype policy afterwards.

    Keras caches its global dtype policy the first time a layer asks for it, so
    restoring floatx alone would leave later (session-scoped) models in float64.
    """
    previous_floatx, previous_policy = keras.config.floatx(), keras.config.dtype_policy()
    keras.config.set_floatx("float64")
    keras.config.set_dtype_policy("float64")
    try:
        yield
    finally:
        keras.config.set_floatx(previous_floatx)
        keras.config.set_dtype_policy(previous_policy)


@pytest.fixture
def cnn64(float64):
    """:func:`tests.models.small_cnn` (5 classes, logits) built in float64, for the float64 references."""
    return models.small_cnn(num_classes=5)


@pytest.fixture(scope="module")
def softmax_cnn():
    """:func:`tests.models.small_cnn` on 16x16x3 images, 5 classes, ending in softmax (seeded): the contract's model."""
    return models.small_cnn((16, 16, 3), num_classes=5, softmax=True, seed=4)


@pytest.fixture(scope="session")
def localisation():
    """(trained model ending in softmax, images, labels, masks) on held-out generated data."""
    model = models.trained_localisation_cnn()
    images, labels, masks = models.localisation_data(64, seed=123)
    return model, images, labels, masks


@pytest.fixture(scope="session")
def real_model():
    if not models.REAL_MODEL.exists():
        pytest.skip(f"needs ../shared/assets (not found at {models.ASSETS})")
    return models.load_real_model()


@pytest.fixture(scope="session")
def real_samples():
    if not models.SAMPLES.exists():
        pytest.skip(f"needs ../shared/assets (not found at {models.ASSETS})")
    return models.load_samples(8)


def weights_snapshot(model):
    """Copies of every weight and the config, to check a model is unchanged."""
    return [np.array(w) for w in model.get_weights()], model.to_json()


def assert_unchanged(model, snapshot):
    weights, config = snapshot
    now = model.get_weights()
    assert len(now) == len(weights)
    for a, b in zip(now, weights):
        np.testing.assert_array_equal(a, b)
    assert model.to_json() == config


def degenerate_images(caught):
    """The image indices named by the DegenerateMapWarnings in `caught` (sorted)."""
    found = []
    for warning in caught:
        if issubclass(warning.category, DegenerateMapWarning):
            found += [int(i) for i in re.search(r"for images \[([\d, ]*)\]", str(warning.message)).group(1).split(",")]
    return sorted(found)
