"""Closed forms on a linear model f(x) = W . x + b (float64): the methods are exact there."""

import numpy as np
import pytest

import tfxai
from tests import models

RULES = ["trapezoid", "riemann_left", "riemann_right", "riemann_middle"]


@pytest.fixture
def linear():
    model, w, b = models.linear_model((4, 4, 3), num_classes=3, seed=1)
    x = np.random.default_rng(2).uniform(0, 1, size=(5, 4, 4, 3))
    targets = np.array([0, 1, 2, 1, 0])
    return model, w, b, x, targets


def _w_times_x(w, x, targets):
    weights = w[:, targets].T.reshape(x.shape)
    return weights * x, weights


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("num_steps", [1, 3, 17])
def test_ig_on_linear_model_is_w_times_x(linear, rule, num_steps):
    model, w, _, x, targets = linear
    ig = tfxai.IntegratedGradients(model, baseline=0.0, num_steps=num_steps, method=rule, output="logit", batch_size=4)
    attributions = ig.attributions(x, targets).numpy()
    expected, _ = _w_times_x(w, x, targets)
    assert attributions.dtype == np.float64
    np.testing.assert_allclose(attributions, expected, rtol=1e-12, atol=1e-12)


def test_input_x_gradient_on_linear_model_is_w_times_x(linear):
    model, w, _, x, targets = linear
    attributions = tfxai.InputXGradient(model, output="logit").attributions(x, targets).numpy()
    expected, _ = _w_times_x(w, x, targets)
    np.testing.assert_allclose(attributions, expected, rtol=1e-12, atol=1e-14)
    maps = tfxai.InputXGradient(model, output="logit")(x, targets).numpy()
    np.testing.assert_allclose(maps, expected.sum(-1), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("noise_scale", [0.0, 0.15, 3.0])
def test_smoothgrad_on_linear_model_is_abs_w(linear, noise_scale):
    model, w, _, x, targets = linear
    sg = tfxai.SmoothGrad(model, num_samples=7, noise_scale=noise_scale, seed=3, output="logit", batch_size=5)
    _, weights = _w_times_x(w, x, targets)
    np.testing.assert_allclose(sg.attributions(x, targets).numpy(), weights, rtol=1e-12)
    np.testing.assert_allclose(sg(x, targets).numpy(), np.abs(weights).max(-1), rtol=1e-12)


def test_vanilla_gradient_on_linear_model_is_max_abs_w(linear):
    model, w, _, x, targets = linear
    _, weights = _w_times_x(w, x, targets)
    maps = tfxai.VanillaGradient(model, output="logit")(x, targets).numpy()
    np.testing.assert_allclose(maps, np.abs(weights).max(-1), rtol=1e-12)


def test_probability_output_is_softmax_gradient(linear):
    """d softmax_t / dx = p_t (w_t - sum_j p_j w_j) for a linear model."""
    model, w, b, x, targets = linear
    logits = x.reshape(len(x), -1) @ w + b
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    expected = np.stack(
        [p[i, t] * (w[:, t] - w @ p[i]) for i, t in enumerate(targets)]
    ).reshape(x.shape)
    got = tfxai.VanillaGradient(model, output="probability").attributions(x, targets).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-14)


def test_fgsm_on_linear_model(linear):
    """Untargeted FGSM moves against the target's cross-entropy gradient: closed form on a linear model."""
    model, w, b, x, targets = linear
    logits = x.reshape(len(x), -1) @ w + b
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    onehot = np.eye(3)[targets]
    grad = ((p - onehot) @ w.T).reshape(x.shape)  # d CE / dx
    adversarial = tfxai.fgsm(model, x, targets, epsilon=0.05, clip=None).numpy()
    np.testing.assert_allclose(adversarial, x + 0.05 * np.sign(grad), rtol=1e-12)
    clipped = tfxai.fgsm(model, x, targets, epsilon=0.5, clip=(0.0, 1.0)).numpy()
    np.testing.assert_allclose(clipped, np.clip(x + 0.5 * np.sign(grad), 0, 1), rtol=1e-12)
    toward = tfxai.fgsm(model, x, targets, epsilon=0.05, targeted=True, clip=None).numpy()
    np.testing.assert_allclose(toward, x - 0.05 * np.sign(grad), rtol=1e-12)
