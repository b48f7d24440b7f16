"""Guided IG: the float64 reference, completeness, the straight-line limits, the linear closed form, batching."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfxai
from tests import models
from tests.conftest import assert_unchanged, weights_snapshot
from tests.reference.guided_ig import guided_ig

SHAPE = (6, 6, 2)


@pytest.fixture(scope="module")
def relu_model():
    """A float64 ReLU CNN with random biases (piecewise-linear: the path's choices matter)."""
    return models.small_cnn(SHAPE, num_classes=3, dtype="float64", seed=2)


@pytest.fixture(scope="module")
def smooth_model():
    """A float64 tanh model: the path integral is smooth, so the Riemann gap shrinks with the steps."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input(SHAPE, dtype="float64")
    x = keras.layers.Conv2D(4, 3, activation="tanh", dtype="float64")(inputs)
    x = keras.layers.Flatten(dtype="float64")(x)
    model = keras.Model(inputs, keras.layers.Dense(3, dtype="float64")(x))
    models.randomize_biases_and_bn(model, seed=1, scale=0.5)
    return model


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).uniform(0, 1, size=(3, *SHAPE))


def grad_fn(model, target, output="logit"):
    def grad(point):
        point = tf.constant(point.reshape(1, *SHAPE))
        with tf.GradientTape() as tape:
            tape.watch(point)
            logits = model(point)
            score = tf.nn.softmax(logits)[0, target] if output == "probability" else logits[0, target]
        return tape.gradient(score, point).numpy()[0]

    return grad


def reference(model, images, baselines, targets, steps, fraction, max_dist, output="logit"):
    return np.stack([
        guided_ig(x, x0, grad_fn(model, t, output), steps, fraction, max_dist).reshape(SHAPE)
        for x, x0, t in zip(images, baselines, targets)
    ])


@pytest.mark.parametrize("fraction, max_dist", [(0.25, 0.02), (0.1, 1.0), (0.5, 0.1), (0.03, 0.0), (1.0, 0.02)])
def test_equals_float64_reference(relu_model, images, fraction, max_dist):
    targets, steps = [0, 1, 2], 16
    explainer = tfxai.GuidedIG(relu_model, num_steps=steps, fraction=fraction, max_dist=max_dist, batch_size=2)
    got = explainer.attributions(images, targets).numpy()
    expected = reference(relu_model, images, np.zeros_like(images), targets, steps, fraction, max_dist)
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12)


def test_equals_reference_with_ties_and_features_already_at_the_input(float64):
    """Equal |gradients| (all selected together) and features where the baseline equals the input (never moved)."""
    inputs = keras.Input(SHAPE, dtype="float64")
    hidden = keras.layers.Dense(1, activation="tanh", dtype="float64")
    head = keras.layers.Dense(2, dtype="float64")
    smooth = keras.Model(inputs, head(hidden(keras.layers.Flatten(dtype="float64")(inputs))))
    rng = np.random.default_rng(3)
    # gradient_i = w_i * tanh'(.) * v_k: few distinct |w_i| give many exact ties in |gradient|
    hidden.set_weights([rng.integers(-2, 3, size=(72, 1)) / 4.0, np.array([0.1])])
    head.set_weights([np.array([[1.0, -2.0]]), np.zeros(2)])
    rng = np.random.default_rng(4)
    x = rng.uniform(size=(2, *SHAPE))
    x0 = rng.uniform(size=(2, *SHAPE))
    x0[:, :2] = x[:, :2]  # a third of the features start at the input
    targets = [0, 1]
    got = tfxai.GuidedIG(smooth, baseline=lambda images: tf.constant(x0), num_steps=12, fraction=0.2,
                         max_dist=0.1).attributions(x, targets).numpy()
    expected = reference(smooth, x, x0, targets, 12, 0.2, 0.1)
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12)
    assert np.all(got[:, :2] == 0)  # a feature that never moves gets nothing


def test_probability_output_equals_reference(relu_model, images):
    got = tfxai.GuidedIG(relu_model, num_steps=10, output="probability").attributions(images, [2, 0, 1]).numpy()
    expected = reference(relu_model, images, np.zeros_like(images), [2, 0, 1], 10, 0.25, 0.02, "probability")
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-14)


def test_completeness_gap_shrinks_with_steps(smooth_model, images):
    gaps = []
    for steps in (4, 16, 64):
        explainer = tfxai.GuidedIG(smooth_model, num_steps=steps)
        delta = explainer.convergence_delta(images, explainer.attributions(images, [0, 1, 2]), [0, 1, 2])
        gaps.append(np.abs(delta).max())
    assert gaps[0] > gaps[1] > gaps[2], gaps
    assert gaps[2] < gaps[0] / 8, gaps  # first order in 1/m: ~1/16 here


def test_convergence_delta_is_sum_minus_score_difference(relu_model, images):
    explainer = tfxai.GuidedIG(relu_model, num_steps=8, baseline=0.5)
    attributions = explainer.attributions(images, [0, 1, 2]).numpy()
    logits_x = relu_model(images).numpy()[np.arange(3), [0, 1, 2]]
    logits_0 = relu_model(np.full_like(images, 0.5)).numpy()[np.arange(3), [0, 1, 2]]
    expected = attributions.sum(axis=(1, 2, 3)) - (logits_x - logits_0)
    np.testing.assert_allclose(explainer.convergence_delta(images, attributions, [0, 1, 2]), expected, atol=1e-12)


@pytest.mark.parametrize("fraction, max_dist", [(1.0, 0.02), (1.0, 1.0), (0.25, 0.0)])
def test_straight_line_limits_are_ig_with_the_left_riemann_rule(smooth_model, images, fraction, max_dist):
    """fraction=1 moves all features together (the straight line); max_dist=0 pins every feature to it.

    The gradient of each step is taken where the step starts: alphas 0, 1/m, ..., (m-1)/m, weights 1/m.
    """
    steps = 12
    got = tfxai.GuidedIG(smooth_model, num_steps=steps, fraction=fraction, max_dist=max_dist).attributions(images, [0, 1, 2])
    ig = tfxai.IntegratedGradients(smooth_model, num_steps=steps, method="riemann_left", output="logit")
    np.testing.assert_allclose(got.numpy(), ig.attributions(images, [0, 1, 2]).numpy(), rtol=1e-9, atol=1e-12)
    other = tfxai.IntegratedGradients(smooth_model, num_steps=steps, method="riemann_right", output="logit")
    assert not np.allclose(got.numpy(), other.attributions(images, [0, 1, 2]).numpy(), rtol=1e-6)


def test_guided_path_differs_from_the_straight_line(relu_model, images):
    """With a free path (max_dist=1, fraction=0.1) Guided IG is not IG (else the test of the path is empty)."""
    guided = tfxai.GuidedIG(relu_model, num_steps=16, fraction=0.1, max_dist=1.0).attributions(images, [0, 1, 2])
    ig = tfxai.IntegratedGradients(relu_model, num_steps=16, method="riemann_left", output="logit")
    difference = np.abs(guided.numpy() - ig.attributions(images, [0, 1, 2]).numpy()).max()
    assert difference > 1e-3 * np.abs(guided.numpy()).max()


@pytest.mark.parametrize("fraction, max_dist", [(0.25, 0.02), (0.05, 1.0)])
def test_linear_model_closed_form(float64, fraction, max_dist):
    """f = w . x + b has a constant gradient: every path from x' to x gives (x - x') * w exactly."""
    model, w, _ = models.linear_model(SHAPE, num_classes=2, seed=5)
    rng = np.random.default_rng(6)
    x, x0 = rng.uniform(size=(2, *SHAPE)), rng.uniform(size=SHAPE)
    got = tfxai.GuidedIG(model, baseline=x0, num_steps=7, fraction=fraction, max_dist=max_dist).attributions(x, [1, 0])
    expected = (x - x0) * np.stack([w[:, 1], w[:, 0]]).reshape(2, *SHAPE)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-10, atol=1e-13)


def test_batch_equals_one_image_at_a_time(relu_model, images):
    explainer = tfxai.GuidedIG(relu_model, num_steps=10, fraction=0.2, max_dist=0.1, batch_size=2)
    batch = explainer.attributions(images, [0, 1, 2]).numpy()
    for i, target in enumerate([0, 1, 2]):
        alone = tfxai.GuidedIG(relu_model, num_steps=10, fraction=0.2, max_dist=0.1).attributions(images[i:i + 1], target)
        np.testing.assert_allclose(batch[i], alone.numpy()[0], rtol=1e-12, atol=1e-15)
    maps = explainer(images, [0, 1, 2]).numpy()
    np.testing.assert_allclose(maps, np.abs(batch).sum(-1), rtol=1e-12)  # the map sums |a| over channels


def test_float32_model_matches_reference_and_leaves_the_model_alone():
    model = models.small_cnn((8, 8, 3), num_classes=4, seed=7)
    snapshot = weights_snapshot(model)
    images = np.random.default_rng(8).uniform(size=(2, 8, 8, 3)).astype("float32")
    explainer = tfxai.GuidedIG(model, num_steps=12)
    got = explainer.attributions(images, [1, 3])
    assert got.dtype == tf.float32
    # the path is float64 (as PAIR's NumPy), the model sees float32 points: the reference does the same
    for i, target in enumerate([1, 3]):
        def grad(point, target=target):
            point = tf.constant(point.reshape(1, 8, 8, 3), tf.float32)
            with tf.GradientTape() as tape:
                tape.watch(point)
                score = model(point)[0, target]
            return tape.gradient(score, point).numpy().astype(np.float64)

        expected = guided_ig(images[i], np.zeros((8, 8, 3)), grad, 12, 0.25, 0.02).reshape(8, 8, 3)
        np.testing.assert_allclose(got.numpy()[i], expected, rtol=1e-5, atol=1e-7)
    assert_unchanged(model, snapshot)
    # the live weights are read: change them after the explainer is built and the attributions follow
    for variable in model.trainable_variables:
        variable.assign(variable * 1.5)
    changed = explainer.attributions(images, [1, 3]).numpy()
    assert not np.allclose(changed, got.numpy(), rtol=1e-3)


def test_zero_distance_gives_zero_attributions(relu_model, images):
    explainer = tfxai.GuidedIG(relu_model, num_steps=5, baseline=lambda x: x)
    with pytest.warns(tfxai.errors.DegenerateMapWarning):
        attributions = explainer.attributions(images, [0, 1, 2]).numpy()
    assert np.all(attributions == 0)
