"""Expected Gradients and Blur IG against closed forms, float64 references and their completeness identities."""

from __future__ import annotations

import math
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfxai
from tests import models
from tests.conftest import assert_unchanged, weights_snapshot
from tfxai import image_ops


# --------------------------------------------------------------------------- float64 references
def tanh_mlp(shape=(6, 6, 2), hidden=5, classes=3, seed=0):
    """f(x) = V tanh(W flatten(x) + b) + c in float64, with its weights (a smooth model for the identities)."""
    rng = np.random.default_rng(seed)
    inputs = keras.Input(shape, dtype="float64")
    first = keras.layers.Dense(hidden, activation="tanh", dtype="float64")
    second = keras.layers.Dense(classes, dtype="float64")
    model = keras.Model(inputs, second(first(keras.layers.Flatten(dtype="float64")(inputs))))
    size = int(np.prod(shape))
    params = [rng.normal(size=(size, hidden)) / math.sqrt(size) * 3, rng.normal(size=hidden) * 0.3,
              rng.normal(size=(hidden, classes)), rng.normal(size=classes) * 0.3]
    first.set_weights(params[:2])
    second.set_weights(params[2:])
    return model, params


def mlp_logits(params, x):
    w, b, v, c = params
    return np.tanh(x.reshape(len(x), -1) @ w + b) @ v + c


def mlp_gradient(params, x, target):
    """d logit_target / dx of :func:`tanh_mlp`, (N, H, W, C)."""
    w, b, v, _ = params
    h = np.tanh(x.reshape(len(x), -1) @ w + b)
    return (((1 - h**2) * v[:, target]) @ w.T).reshape(x.shape)


def blur_numpy(image, sigma, truncate=4.0):
    """SciPy's gaussian_filter(image, [s, s, 0], mode="constant", truncate) written from the formula (loops)."""
    if sigma == 0:
        return image.copy()
    radius = int(truncate * sigma + 0.5) if truncate is not None else int(10 * sigma) + 1
    t = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (t / sigma) ** 2)
    kernel /= kernel.sum()
    height, width = image.shape[:2]

    def weight(i, a):  # the tap between output i and input a; 0 beyond the radius (inputs outside are 0)
        return kernel[i - a + radius] if abs(i - a) <= radius else 0.0

    rows = np.array([[weight(i, a) for a in range(height)] for i in range(height)])
    cols = np.array([[weight(j, b) for b in range(width)] for j in range(width)])
    # out[i, j] = sum_{a, b} k(i - a) k(j - b) x[a, b]
    return np.einsum("ia,jb,abc->ijc", rows, cols, image)


def blur_ig_numpy(params, image, target, max_sigma, steps, grad_step=None, sqrt=False, truncate=4.0,
                  method="riemann_left"):
    """PAIR's Blur IG loop (saliency.core.blur_ig, batch_size=1), float64; grad_step None: a central difference.

    `method`: PAIR's left sum, or the midpoint / trapezoid rule on the same sigma grid.
    """
    fractions = np.arange(steps + 1) / steps
    grid = max_sigma * (np.sqrt(fractions) if sqrt else fractions)
    widths = np.diff(grid)
    if method == "riemann_left":
        nodes, weights = grid[:-1], widths
    elif method == "riemann_middle":
        nodes, weights = (grid[:-1] + grid[1:]) / 2, widths
    else:
        nodes, weights = grid, (np.r_[widths, 0.0] + np.r_[0.0, widths]) / 2
    total = np.zeros_like(image)
    for sigma, weight in zip(nodes, weights):
        point = blur_numpy(image, sigma, truncate)
        if grad_step is not None:
            velocity = (blur_numpy(image, sigma + grad_step, truncate) - point) / grad_step
        elif sigma == 0:
            velocity = np.zeros_like(image)
        else:
            h = 1e-5 * sigma
            velocity = (blur_numpy(image, sigma + h, truncate) - blur_numpy(image, sigma - h, truncate)) / (2 * h)
        grad = mlp_gradient(params, point[None], target)[0]
        total += weight * velocity * grad
    return -total


# --------------------------------------------------------------------------- the blur
@pytest.mark.parametrize("size, sigma", [((7, 5), 0.3), ((7, 5), 1.6), ((6, 6), 50.0), ((4, 9), 3.0)])
def test_zero_padded_blur_and_its_sigma_derivative_equal_the_formula(size, sigma):
    image = np.random.default_rng(0).normal(size=(*size, 2))
    sigmas = tf.constant([sigma], tf.float64)
    blurred, derivative = image_ops.gaussian_blur_zero(image[None], sigmas, 50.0, derivative=True)
    np.testing.assert_allclose(blurred[0], blur_numpy(image, sigma), rtol=0, atol=1e-13)
    h = 1e-5 * sigma  # the radius stays constant on [sigma - h, sigma + h] here
    central = (blur_numpy(image, sigma + h) - blur_numpy(image, sigma - h)) / (2 * h)
    np.testing.assert_allclose(derivative[0], central, rtol=0, atol=1e-7 * max(1.0, np.abs(central).max()))
    assert np.abs(central).max() > 1e-6  # not a vacuous comparison


def test_blur_wider_than_the_image_fades_toward_zero_padding():
    image = np.ones((1, 8, 8, 1))
    blurred = image_ops.gaussian_blur_zero(image, tf.constant([50.0], tf.float64), 50.0).numpy()
    # the kernel (401 taps) is not clipped to the image: only the 15 central taps meet it, the rest meet zeros
    t = np.arange(-200, 201)
    k = np.exp(-0.5 * (t / 50.0) ** 2)
    k /= k.sum()
    inside = k[200 - 7:200 + 8].sum()
    assert blurred.max() < inside < 0.12
    np.testing.assert_allclose(blurred[0, 0, 0, 0], k[200:208].sum() ** 2, rtol=1e-12)


# --------------------------------------------------------------------------- Blur IG
@pytest.fixture
def mlp(float64):
    return tanh_mlp()


@pytest.fixture
def images():
    return np.random.default_rng(3).uniform(0, 1, size=(2, 6, 6, 2))


@pytest.mark.parametrize("max_sigma, sqrt", [(2.0, False), (50.0, False), (3.0, True)])
def test_blur_ig_equals_the_float64_reference_of_pairs_algorithm(mlp, images, max_sigma, sqrt):
    model, params = mlp
    targets = [0, 2]
    steps = 6
    fd = tfxai.BlurIG(model, max_sigma=max_sigma, num_steps=steps, grad_step=0.01, sqrt=sqrt, batch_size=5)
    exact = tfxai.BlurIG(model, max_sigma=max_sigma, num_steps=steps, sqrt=sqrt, batch_size=5)
    got_fd, got_exact = fd.attributions(images, targets).numpy(), exact.attributions(images, targets).numpy()
    for n, target in enumerate(targets):
        reference_fd = blur_ig_numpy(params, images[n], target, max_sigma, steps, grad_step=0.01, sqrt=sqrt)
        np.testing.assert_allclose(got_fd[n], reference_fd, rtol=0, atol=1e-10 * np.abs(reference_fd).max())
        reference = blur_ig_numpy(params, images[n], target, max_sigma, steps, sqrt=sqrt)
        np.testing.assert_allclose(got_exact[n], reference, rtol=0, atol=1e-6 * np.abs(reference).max())
    assert fd.max_sigma == max_sigma
    np.testing.assert_allclose(exact(images, targets), np.abs(got_exact).sum(-1), rtol=1e-12)  # the map: sum_c |a|


@pytest.mark.parametrize("method, sqrt", [("riemann_middle", False), ("trapezoid", True)])
def test_blur_ig_quadrature_rules_equal_the_reference(mlp, images, method, sqrt):
    model, params = mlp
    explainer = tfxai.BlurIG(model, max_sigma=3.0, num_steps=5, sqrt=sqrt, method=method, batch_size=4)
    got = explainer.attributions(images, 1).numpy()
    for n in range(len(images)):
        reference = blur_ig_numpy(params, images[n], 1, 3.0, 5, sqrt=sqrt, method=method)
        np.testing.assert_allclose(got[n], reference, rtol=0, atol=1e-6 * np.abs(reference).max())


@pytest.mark.parametrize("truncate", [None, 4.0])
def test_blur_ig_sums_to_the_logit_drop_to_the_blurred_image(mlp, images, truncate):
    model, params = mlp
    blurred = np.stack([blur_numpy(image, 4.0, truncate) for image in images])
    drop = mlp_logits(params, images)[:, 1] - mlp_logits(params, blurred)[:, 1]
    gaps = []
    for steps in (4, 16, 64, 256):
        explainer = tfxai.BlurIG(model, max_sigma=4.0, num_steps=steps, truncate=truncate, batch_size=64)
        attributions = explainer.attributions(images, 1).numpy()
        delta = explainer.convergence_delta(images, attributions, 1)
        np.testing.assert_allclose(delta, attributions.sum(axis=(1, 2, 3)) - drop, atol=1e-10)  # the identity's terms
        gaps.append(np.abs(delta).max())
    assert all(b < a / 2.5 for a, b in zip(gaps, gaps[1:])), gaps  # O(1/m): left Riemann sum
    assert gaps[-1] < 0.01 * np.abs(drop).max(), (gaps, drop)


def test_blur_ig_explains_the_live_weights(mlp, images):
    model, params = mlp
    explainer = tfxai.BlurIG(model, max_sigma=2.0, num_steps=4)
    snapshot = weights_snapshot(model)
    before = explainer.attributions(images, 0).numpy()
    assert_unchanged(model, snapshot)
    model.layers[-1].set_weights([params[2] * -2.0, params[3]])  # "trained" after the explainer was built
    np.testing.assert_allclose(explainer.attributions(images, 0).numpy(), -2.0 * before, rtol=1e-10)


# --------------------------------------------------------------------------- Expected Gradients
def eg_reference(model, images, baselines, indices, alphas, target):
    """Per-draw terms ``(x - x'_k) * grad(x'_k + alpha_k (x - x'_k))`` in float64: (N, K, H, W, C)."""
    terms = []
    for index, alpha in zip(indices, alphas):
        x0 = baselines[index][None]
        point = tf.constant(x0 + alpha * (images - x0))
        with tf.GradientTape() as tape:
            tape.watch(point)
            score = model(point)[:, target]
        terms.append((images - x0) * tape.gradient(score, point).numpy())
    return np.stack(terms, axis=1)


def test_eg_on_a_linear_model_is_the_closed_form(float64):
    model, w, b = models.linear_model((4, 4, 3), num_classes=2)
    rng = np.random.default_rng(0)
    images, baselines = rng.uniform(size=(3, 4, 4, 3)), rng.uniform(size=(7, 4, 4, 3))
    explainer = tfxai.ExpectedGradients(model, baselines=baselines, num_samples=20, seed=4, batch_size=9)
    indices, alphas = explainer.draws()
    assert indices.shape == alphas.shape == (20,) and set(indices) <= set(range(7)) and 0 <= alphas.min() < alphas.max() < 1
    attributions = explainer.attributions(images, 1).numpy()
    # the gradient is w everywhere: EG = (x - mean of the drawn baselines) * w, whatever the alphas
    closed = (images - baselines[indices].mean(axis=0)) * w[:, 1].reshape(4, 4, 3)
    np.testing.assert_allclose(attributions, closed, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(explainer.convergence_delta(images, attributions, 1), 0.0, atol=1e-12)  # exact here
    # the expectation's identity: sum = f(x) - f(mean of the drawn baselines), not of all of them
    over_all = explainer.convergence_delta(images, attributions, 1, over="baselines")
    shift = (baselines.mean(axis=0) - baselines[indices].mean(axis=0)).reshape(-1) @ w[:, 1]
    np.testing.assert_allclose(over_all, shift, atol=1e-12)
    # trained after the explainer was built: the live weights are explained
    model.layers[-1].set_weights([2 * w, b])
    np.testing.assert_allclose(explainer.attributions(images, 1).numpy(), 2 * closed, rtol=1e-12)


def test_eg_equals_the_float64_monte_carlo_reference_and_converges_in_expectation(mlp, images):
    model, params = mlp
    baselines = np.random.default_rng(5).uniform(0, 1, size=(12, 6, 6, 2))
    explainer = tfxai.ExpectedGradients(model, baselines=baselines, num_samples=400, seed=11, batch_size=128)
    snapshot = weights_snapshot(model)
    attributions = explainer.attributions(images, 2).numpy()
    assert_unchanged(model, snapshot)
    indices, alphas = explainer.draws()
    terms = eg_reference(model, images, baselines, indices, alphas, 2)
    np.testing.assert_allclose(attributions, terms.mean(axis=1), rtol=1e-10, atol=1e-13)
    # sum EG -> f(x) - E f(x') within a few standard errors of the per-draw sums
    sums = terms.sum(axis=(2, 3, 4))
    standard_error = sums.std(axis=1, ddof=1) / math.sqrt(sums.shape[1])
    expected = mlp_logits(params, images)[:, 2] - mlp_logits(params, baselines)[:, 2].mean()
    delta = explainer.convergence_delta(images, attributions, 2, over="baselines")
    np.testing.assert_allclose(delta, attributions.sum(axis=(1, 2, 3)) - expected, atol=1e-10)
    assert np.all(np.abs(delta) < 4 * standard_error), (delta, standard_error)
    assert np.all(np.abs(delta) < 0.2 * np.abs(expected))  # and the bound is not vacuous


def test_eg_with_one_repeated_baseline_is_ig_with_drawn_alphas(mlp, images):
    model, _ = mlp
    baseline = np.random.default_rng(6).uniform(0, 1, size=(6, 6, 2))
    explainer = tfxai.ExpectedGradients(model, baselines=np.stack([baseline] * 5), num_samples=600, seed=2)
    eg = explainer.attributions(images, 0).numpy()
    _, alphas = explainer.draws()
    # exactly IG's integrand at the drawn alphas ...
    integrand = eg_reference(model, images, baseline[None], np.zeros(600, int), alphas, 0)
    np.testing.assert_allclose(eg, integrand.mean(axis=1), rtol=1e-10, atol=1e-13)
    # ... hence IG (a fine quadrature) up to the Monte Carlo error of the alphas
    ig = tfxai.IntegratedGradients(model, baseline=baseline, num_steps=256, output="logit").attributions(images, 0).numpy()
    standard_error = integrand.std(axis=1, ddof=1) / math.sqrt(600)
    assert np.mean(np.abs(eg - ig) < 4 * standard_error + 1e-12) > 0.99
    assert np.abs(eg.sum(axis=(1, 2, 3)) - ig.sum(axis=(1, 2, 3))).max() < 4 * integrand.sum(axis=(2, 3, 4)).std(1).max() / math.sqrt(600)


def test_eg_reads_datasets_like_arrays(mlp, images):
    model, _ = mlp
    baselines = np.random.default_rng(7).uniform(0, 1, size=(9, 6, 6, 2))
    reference = tfxai.ExpectedGradients(model, baselines=baselines, num_samples=8, seed=1).attributions(images, 0).numpy()
    labels = np.arange(9)
    for dataset in (
        tf.data.Dataset.from_tensor_slices(baselines),
        tf.data.Dataset.from_tensor_slices(baselines).batch(4),
        tf.data.Dataset.from_tensor_slices((baselines, labels)).batch(2),
    ):
        explainer = tfxai.ExpectedGradients(model, baselines=dataset, num_samples=8, seed=1)
        assert explainer.num_baselines == 9
        np.testing.assert_allclose(explainer.attributions(images, 0).numpy(), reference, rtol=1e-12)
    with pytest.warns(UserWarning, match=r"first 5 images.*max_baselines=5.*shuffle"):
        capped = tfxai.ExpectedGradients(model, baselines=tf.data.Dataset.from_tensor_slices(baselines).repeat().batch(4),
                                         max_baselines=5)
    np.testing.assert_array_equal(capped.baselines.numpy(), baselines[:5])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # exactly max_baselines images: nothing was left out, no warning
        tfxai.ExpectedGradients(model, baselines=tf.data.Dataset.from_tensor_slices(baselines).batch(3), max_baselines=9)


def test_eg_uniform_distribution_draws_noise_in_the_input_range(mlp, images):
    model, params = mlp
    explainer = tfxai.ExpectedGradients(tfxai.adapt(model, input_range=(-1.0, 2.0)), baselines="uniform",
                                        num_samples=64, seed=3)
    attributions = explainer.attributions(images, 1).numpy()
    fold = tf.random.experimental
    noise_seed = tf.unstack(fold.stateless_split(explainer.runtime.seed(3), 3))[2]
    noise = np.stack([tf.random.stateless_uniform((6, 6, 2), fold.stateless_fold_in(noise_seed, k), -1.0, 2.0,
                                                  dtype=tf.float64).numpy() for k in range(64)])
    assert noise.min() < -0.9 and noise.max() > 1.9
    _, alphas = explainer.draws()
    terms = eg_reference(model, images, noise, np.arange(64), alphas, 1)
    np.testing.assert_allclose(attributions, terms.mean(axis=1), rtol=1e-10, atol=1e-13)
    # the delta over the draws uses the same noise images
    expected = mlp_logits(params, images)[:, 1] - mlp_logits(params, noise)[:, 1].mean()
    delta = explainer.convergence_delta(images, attributions, 1)
    np.testing.assert_allclose(delta, attributions.sum(axis=(1, 2, 3)) - expected, atol=1e-10)


def test_eg_seeds_reproduce_and_unseeded_calls_differ(mlp, images):
    model, _ = mlp
    baselines = np.random.default_rng(8).uniform(0, 1, size=(6, 6, 6, 2))
    first = tfxai.ExpectedGradients(model, baselines=baselines, num_samples=4, seed=1)(images, 0).numpy()
    np.testing.assert_array_equal(tfxai.ExpectedGradients(model, baselines=baselines, num_samples=4, seed=1)(images, 0), first)
    assert not np.allclose(tfxai.ExpectedGradients(model, baselines=baselines, num_samples=4, seed=2)(images, 0), first)
    unseeded = tfxai.ExpectedGradients(model, baselines=baselines, num_samples=4)
    assert not np.allclose(unseeded(images, 0), unseeded(images, 0))


def test_eg_baselines_must_match_the_images_of_a_model_taking_any_size():
    inputs = keras.Input((None, None, 2))
    model = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(inputs)))
    explainer = tfxai.ExpectedGradients(model, baselines=np.zeros((2, 8, 8, 2)), num_samples=2, seed=0)
    assert explainer(np.random.default_rng(0).uniform(size=(1, 8, 8, 2)), 0).shape == (1, 8, 8)
    with pytest.raises(ValueError, match=r"\(2, 8, 8, 2\).*\(1, 6, 6, 2\).*\(H, W, C\)"):
        explainer(np.ones((1, 6, 6, 2)), 0)
