"""Integrated Gradients: convergence, batching, the tutorial pipeline, baselines."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfxai
from tfxai import baselines
from tfxai import integrated_gradients as tut
from tfxai._integration import rule
from tests import models


@pytest.fixture(scope="module")
def smooth_model():
    """A nonlinear (tanh) model: the IG integral is smooth, so quadrature errors shrink with m."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((6, 6, 2), dtype="float64")
    x = keras.layers.Conv2D(4, 3, activation="tanh", dtype="float64")(inputs)
    x = keras.layers.Flatten(dtype="float64")(x)
    outputs = keras.layers.Dense(3, dtype="float64")(x)
    model = keras.Model(inputs, outputs)
    models.randomize_biases_and_bn(model, seed=1, scale=0.5)
    return model


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).uniform(0, 1, size=(3, 6, 6, 2))


@pytest.mark.parametrize("method", ["trapezoid", "riemann_left", "riemann_right", "riemann_middle"])
def test_completeness_gap_shrinks_with_steps(smooth_model, images, method):
    gaps = []
    for num_steps in (2, 8, 32, 128):
        ig = tfxai.IntegratedGradients(smooth_model, num_steps=num_steps, method=method, output="probability")
        gaps.append(np.abs(ig.convergence_delta(images, ig.attributions(images))).max())
    assert all(b < a for a, b in zip(gaps, gaps[1:])), gaps
    assert gaps[-1] < gaps[0] / 10


def test_trapezoid_error_is_second_order(smooth_model, images):
    deltas = []
    for num_steps in (16, 32):
        ig = tfxai.IntegratedGradients(smooth_model, num_steps=num_steps, output="logit")
        deltas.append(np.abs(ig.convergence_delta(images, ig.attributions(images))).max())
    assert deltas[1] < deltas[0] / 3  # ~1/4 for an O(1/m^2) rule


@pytest.mark.parametrize("method", ["trapezoid", "riemann_right"])
def test_result_does_not_depend_on_batch_size(smooth_model, images, method):
    num_steps = 10
    rows = len(images) * (num_steps + 1)
    results = [
        tfxai.IntegratedGradients(smooth_model, num_steps=num_steps, method=method, batch_size=bs).attributions(images)
        for bs in (1, 7, rows)
    ]
    for other in results[1:]:
        np.testing.assert_allclose(other.numpy(), results[0].numpy(), rtol=1e-12, atol=1e-15)


def test_class_matches_slow_reference(smooth_model, images):
    """Against the definition, one GradientTape per alpha, float64."""
    num_steps, targets = 12, [0, 2, 1]
    alphas, weights = rule("trapezoid", num_steps)
    expected = np.zeros_like(images)
    for i, x in enumerate(images):
        for alpha, weight in zip(alphas, weights):
            point = tf.constant(alpha * x[None])
            with tf.GradientTape() as tape:
                tape.watch(point)
                prob = tf.nn.softmax(smooth_model(point))[0, targets[i]]
            expected[i] += weight * tape.gradient(prob, point).numpy()[0]
        expected[i] *= x
    got = tfxai.IntegratedGradients(smooth_model, num_steps=num_steps, batch_size=5).attributions(images, targets)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-10, atol=1e-14)


def test_tutorial_pipeline_step_by_step(localisation):
    """The tutorial's functions reproduce a hand-built GradientTape pipeline (float32, 1e-5)."""
    model, images, labels, _ = localisation
    image, target, m_steps = tf.constant(images[0]), int(labels[0]), 20
    baseline = tf.zeros_like(image)

    alphas = tut.alphas_for(m_steps)
    np.testing.assert_allclose(alphas.numpy(), np.linspace(0, 1, m_steps + 1), atol=1e-7)
    path = tut.interpolate_images(baseline, image, alphas)
    assert path.shape == (m_steps + 1, 32, 32, 3)
    np.testing.assert_allclose(path[5].numpy(), (alphas[5] * image).numpy(), atol=1e-6)

    # By hand: the model ends in softmax, so its output already is the probability.
    with tf.GradientTape() as tape:
        tape.watch(path)
        probs = model(path)[:, target]
    by_hand = tape.gradient(probs, path)
    grads = tut.compute_gradients(model, path, target)
    np.testing.assert_allclose(grads.numpy(), by_hand.numpy(), atol=1e-5, rtol=1e-4)

    avg = tut.integral_approximation(grads)
    np.testing.assert_allclose(avg.numpy(), ((by_hand[:-1] + by_hand[1:]) / 2).numpy().mean(0), atol=1e-5)
    full = tut.integrated_gradients(model, baseline, image, target, m_steps=m_steps, batch_size=7)
    np.testing.assert_allclose(full.numpy(), (image * avg).numpy(), atol=1e-5)
    cls = tfxai.IntegratedGradients(model, num_steps=m_steps).attributions(images[:1], [target])[0]
    np.testing.assert_allclose(cls.numpy(), full.numpy(), atol=1e-5)


@pytest.mark.parametrize("method", ["riemann_left", "riemann_right", "riemann_middle"])
def test_tutorial_riemann_rules_match_class(smooth_model, images, method):
    got = tut.integrated_gradients(smooth_model, 0.0, tf.constant(images[0]), 1, m_steps=9, batch_size=4, method=method)
    cls = tfxai.IntegratedGradients(smooth_model, num_steps=9, method=method).attributions(images[:1], [1])[0]
    np.testing.assert_allclose(got.numpy(), cls.numpy(), rtol=1e-10, atol=1e-15)


def test_one_step_riemann_right_is_gradient_times_delta(smooth_model, images):
    ig = tfxai.IntegratedGradients(smooth_model, baseline=0.2, num_steps=1, method="riemann_right", output="logit")
    grads = tfxai.VanillaGradient(smooth_model, output="logit").attributions(images, [1, 1, 1]).numpy()
    np.testing.assert_allclose(ig.attributions(images, 1).numpy(), (images - 0.2) * grads, rtol=1e-12)


def test_baseline_definitions():
    x = tf.constant(np.random.default_rng(0).uniform(0, 255, size=(2, 8, 8, 3)))
    rng_range = (0.0, 255.0)
    np.testing.assert_array_equal(baselines.black(x, rng_range).numpy(), 0.0)
    np.testing.assert_array_equal(baselines.white(x, rng_range).numpy(), 255.0)
    np.testing.assert_array_equal(baselines.max_distance(x, rng_range).numpy(), np.where(x < 127.5, 255.0, 0.0))
    u = baselines.uniform(x, rng_range, seed=4).numpy()
    assert u.min() >= 0 and u.max() <= 255 and u.std() > 50
    np.testing.assert_array_equal(u, baselines.uniform(x, rng_range, seed=4).numpy())
    assert not np.array_equal(u, baselines.uniform(x, rng_range, seed=5).numpy())
    g = baselines.gaussian(x, rng_range, noise_scale=0.1, seed=1).numpy()
    assert g.min() >= 0 and g.max() <= 255
    assert 15 < np.std(g - x.numpy()) < 30  # sigma = 25.5 before clipping
    constant = tf.fill((1, 16, 16, 3), 0.3)
    np.testing.assert_allclose(baselines.blur(constant, sigma=2.0).numpy(), 0.3, atol=1e-6)
    blurred = baselines.blur(x, sigma=2.0).numpy()
    assert blurred.std() < x.numpy().std() / 2


def test_distribution_baseline_is_averaged_over_draws(smooth_model, images):
    """IG with D draws equals the mean of the D single-draw IGs (linearity of the estimator)."""
    ig = tfxai.IntegratedGradients(smooth_model, baseline="uniform", num_baseline_samples=3, seed=7, num_steps=6)
    averaged = ig.attributions(images, 0).numpy()
    singles = []
    for draw in range(3):
        seed = tf.constant([7, draw], tf.int32)
        fixed = baselines.uniform(images, (0.0, 1.0), seed=seed).numpy()
        singles.append(tfxai.IntegratedGradients(smooth_model, baseline=fixed[0], num_steps=6).attributions(images, 0).numpy())
    np.testing.assert_allclose(averaged, np.mean(singles, axis=0), rtol=1e-10, atol=1e-15)
    delta = ig.convergence_delta(images, averaged, 0)
    assert np.all(np.isfinite(delta))


@pytest.mark.parametrize("name", baselines.NAMES)
def test_every_named_baseline_runs_and_is_seeded(smooth_model, images, name):
    ig = tfxai.IntegratedGradients(smooth_model, baseline=name, seed=1, num_steps=4)
    a, b = ig(images), ig(images)
    assert a.shape == (3, 6, 6)
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert np.all(np.isfinite(a.numpy()))


def test_ig_errors(smooth_model):
    with pytest.raises(ValueError, match="method"):
        tfxai.IntegratedGradients(smooth_model, method="simpson")
    with pytest.raises(ValueError, match="baseline"):
        tfxai.IntegratedGradients(smooth_model, baseline="grey")
    with pytest.raises(TypeError, match="baseline"):
        tfxai.IntegratedGradients(smooth_model, baseline=object())
    with pytest.raises(ValueError, match="num_baseline_samples"):
        tfxai.IntegratedGradients(smooth_model, baseline="black", num_baseline_samples=2)
    with pytest.raises(ValueError, match="num_steps"):
        tfxai.IntegratedGradients(smooth_model, num_steps=0)
    with pytest.raises(ValueError, match="input_range"):
        tfxai.adapt(smooth_model, input_range=(1, 0))
    with pytest.raises(ValueError, match="broadcast"):
        tfxai.IntegratedGradients(smooth_model, baseline=np.zeros((5, 5, 2)))(np.zeros((1, 6, 6, 2)))
    with pytest.raises(ValueError, match="m_steps"):
        tut.alphas_for(0)
