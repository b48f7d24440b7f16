"""The first call of a method runs eagerly (no tracing) and gives the maps of the compiled calls.

:meth:`tfxai._runtime.Runtime.compiled` runs a body eagerly the first time a
key (entry point, image shape, dtype) is seen and traces it when the key comes
back; these tests check that both paths compute the same maps for every
registered method (chunk loops with ``tf.while_loop``/``tf.TensorArray``, the
``tf.cond`` of the saturation statistics and partial chunks included), and that
the switch to always compile still works.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import tensorflow as tf

import tfxai
from tests.reference import decomposition as reference_decomposition
from tfxai import _registry, _runtime


def _build(name, model, batch_size=2):
    """A registered method with its quick command-line settings, seeded when it draws random numbers."""
    cls = _registry.METHODS[name]
    overrides = {"seed": 3} if "seed" in inspect.signature(cls.__init__).parameters else {}
    if "num_channels" in inspect.signature(cls.__init__).parameters:
        overrides["num_channels"] = None  # every channel of the small model
    return _registry.build(name, model, quick=True, batch_size=batch_size, **overrides)


@pytest.fixture(scope="module")
def model(softmax_cnn):
    return softmax_cnn


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(1).uniform(size=(3, 16, 16, 3)).astype("float32")


@pytest.mark.parametrize("name", list(_registry.METHODS))
def test_first_call_is_eager_and_equals_the_compiled_calls(monkeypatch, name, model, images):
    explainer = _build(name, model)
    targets = [0, 3, 4]
    if explainer.slow:  # many model calls per map: compiled on the first call
        monkeypatch.setattr(_runtime, "EAGER_CALLS", 0)
        compiled = _build(name, model)
        compiled(images, targets)
        assert compiled.trace_count == 1
        monkeypatch.setattr(_runtime, "EAGER_CALLS", 1)
        explainer.slow = False  # the eager path must give the same maps all the same
    first = explainer(images, targets).numpy()
    assert explainer.trace_count == 0, "the first call must not trace"
    second = explainer(images, targets).numpy()  # the key comes back: traced and compiled
    assert explainer.trace_count == 1
    third = explainer(images[:1], targets[:1]).numpy()  # another batch size: same trace
    assert explainer.trace_count == 1
    assert np.all(np.isfinite(first)) and np.ptp(first) > 0
    np.testing.assert_allclose(first, second, rtol=1e-6, atol=1e-6 * np.abs(second).max())
    np.testing.assert_allclose(third, second[:1], rtol=1e-5, atol=1e-6 * np.abs(second).max())
    # targets=None: the predicted class, resolved in the body (tf.cond) on both paths
    eager_none = _build(name, model)
    eager_none.slow = False
    eager_none = eager_none(images).numpy()
    np.testing.assert_allclose(explainer(images).numpy(), eager_none, rtol=1e-6, atol=1e-6 * np.abs(eager_none).max())


@pytest.mark.parametrize("name", ["tgrad", "fullgrad"])
@pytest.mark.parametrize("scale", [1.0, 30.0])  # 30: the ReLU6 site saturates (the tf.cond's other branch)
def test_decomposition_first_call_float64(float64, name, scale):
    model = tfxai.adapt(reference_decomposition.small_bn_cnn(), input_range=(-30, 30))
    images = scale * np.random.default_rng(0).uniform(-1, 1, size=(3, 12, 12, 3))
    explainer = _registry.build(name, model, batch_size=2)
    first = explainer(images, [0, 1, 2]).numpy()
    assert explainer.trace_count == 0
    second = explainer(images, [0, 1, 2]).numpy()
    assert explainer.trace_count == 1
    np.testing.assert_allclose(first, second, rtol=1e-9, atol=1e-12 * np.abs(second).max())
    if scale > 1:  # the saturated branch ran
        peak = tfxai.decompose(model).forward(tf.constant(images))[1]
        assert any(float(tf.reduce_max(y)) >= 6.0 for site, y, _ in peak if site.name == "relu6")


def test_decomposition_first_call(float64):
    model = tfxai.adapt(reference_decomposition.small_bn_cnn(), input_range=(-3, 3))
    images = np.random.default_rng(2).uniform(-3, 3, size=(3, 12, 12, 3))
    d = tfxai.decompose(model, batch_size=2)
    first, second = d(images), d(images)
    assert d.runtime.trace_count == 1
    np.testing.assert_allclose(first.input_term, second.input_term, rtol=1e-12)
    for a, b in zip(first.terms, second.terms):
        np.testing.assert_allclose(a.value, b.value, rtol=1e-12, atol=1e-15)


def test_always_compile_switch(monkeypatch, model, images):
    monkeypatch.setattr(_runtime, "EAGER_CALLS", 0)
    explainer = tfxai.GradCAM(model)
    explainer(images)
    assert explainer.trace_count == 1  # traced on the first call, as before


def test_eager_calls_switch(monkeypatch, model, images):
    monkeypatch.setattr(_runtime, "EAGER_CALLS", 2)
    explainer = tfxai.VanillaGradient(model)
    maps = [explainer(images, 1).numpy() for _ in range(3)]
    assert explainer.trace_count == 1  # two eager calls, then one trace
    np.testing.assert_allclose(maps[0], maps[2], rtol=1e-6, atol=1e-9)


def test_slow_methods_compile_on_the_first_call(model, images):
    explainer = tfxai.RISE(model, num_masks=40, seed=1)
    assert explainer.slow
    explainer(images)
    assert explainer.trace_count == 1
