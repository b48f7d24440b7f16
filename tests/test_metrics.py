"""Metrics against hand-computed values on tiny models, plus behaviour on the trained localisation CNN."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfxai
from tfxai import image_ops, metrics
from tfxai.errors import InvalidInputError, InvalidTypeError
from tests import models
from tests.conftest import assert_unchanged, weights_snapshot

IMAGE = np.array([[1.0, 2.0], [3.0, 4.0]]).reshape(1, 2, 2, 1)
SALIENCY = np.array([[0.1, 0.4], [0.3, 0.2]]).reshape(1, 2, 2)  # order: 2, 3, 4, 1


def mean_model(num_classes=2, softmax=False):
    """logit_0 = mean of the pixels (other logits 0), optionally followed by a softmax."""
    inputs = keras.Input((None, None, 1), dtype="float64")
    pooled = keras.layers.GlobalAveragePooling2D(dtype="float64")(inputs)
    dense = keras.layers.Dense(num_classes, activation="softmax" if softmax else None, dtype="float64")
    model = keras.Model(inputs, dense(pooled))
    kernel = np.zeros((1, num_classes))
    kernel[0, 0] = 1.0
    dense.set_weights([kernel, np.zeros(num_classes)])
    return model


def sigmoid(x):
    return 1 / (1 + np.exp(-np.asarray(x)))


def test_deletion_and_insertion_by_hand():
    model = mean_model()
    kwargs = dict(substrate="zero", pixels_per_step=1, output="logit", targets=0)
    dele = metrics.deletion(model, IMAGE, SALIENCY, **kwargs)
    ins = metrics.insertion(model, IMAGE, SALIENCY, **kwargs)
    np.testing.assert_allclose(dele.fractions, [0, 0.25, 0.5, 0.75, 1])
    # remove 2, then 3, then 4, then 1 (sum 10 -> 8 -> 5 -> 1 -> 0), divided by 4 pixels
    np.testing.assert_allclose(dele.scores, [[2.5, 2.0, 1.25, 0.25, 0.0]])
    np.testing.assert_allclose(ins.scores, [[0.0, 0.5, 1.25, 2.25, 2.5]])
    np.testing.assert_allclose(dele.auc, [(2.5 / 2 + 2.0 + 1.25 + 0.25 + 0.0 / 2) / 4])
    np.testing.assert_allclose(ins.auc, [(0 / 2 + 0.5 + 1.25 + 2.25 + 2.5 / 2) / 4])
    paper = metrics.deletion(model, IMAGE, SALIENCY, auc="mean_of_steps", **kwargs)
    np.testing.assert_allclose(paper.auc, [(2.0 + 1.25 + 0.25 + 0.0) / 4])
    both = metrics.insertion_minus_deletion(model, IMAGE, SALIENCY, **kwargs)
    np.testing.assert_allclose(both.difference, ins.auc - dele.auc)


def test_ties_keep_row_major_order_and_batching_is_invisible():
    model = mean_model()
    flat = np.ones((1, 2, 2))
    for batch_size in (1, 3, 64):
        dele = metrics.deletion(model, IMAGE, flat, 0, substrate="zero", pixels_per_step=1, output="logit", batch_size=batch_size)
        np.testing.assert_allclose(dele.scores, [[2.5, 2.25, 1.75, 1.0, 0.0]])


def test_probability_is_softmax_of_logits_applied_once_and_predicted_target():
    # logits (mean, 0) behind a softmax: p_0 = sigmoid(mean); a double softmax would give another number
    model = mean_model(num_classes=2, softmax=True)
    dele = metrics.deletion(model, IMAGE, SALIENCY, substrate="zero", pixels_per_step=2)
    np.testing.assert_array_equal(dele.targets, [0])  # predicted: mean 2.5 > 0
    np.testing.assert_allclose(dele.scores, sigmoid([[2.5, 1.25, 0.0]]))
    assert dele.scores.shape == (1, 3)


def test_metric_caches_die_with_the_model():
    import gc
    import weakref

    for softmax in (False, True):  # the model itself, and a rebuilt copy without its softmax
        model = mean_model(num_classes=2, softmax=softmax)
        metrics.deletion(model, IMAGE, SALIENCY, substrate="zero", pixels_per_step=2)
        metrics.average_drop(model, IMAGE, SALIENCY)
        ref = weakref.ref(model)
        del model
        gc.collect()
        assert ref() is None, "a metric cache keeps the model alive"


def test_blur_baseline_multi_step_upsampled_maps_and_constant_baseline():
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 1, (3, 12, 12, 1))
    model = mean_model()
    ins = metrics.insertion(model, images, rng.uniform(size=(3, 3, 3)), 0, num_steps=5, output="logit")
    blurred = image_ops.gaussian_blur(tf.constant(images), 5.0, 11).numpy()
    np.testing.assert_allclose(ins.scores[:, 0], blurred.mean(axis=(1, 2, 3)), rtol=1e-10)
    np.testing.assert_allclose(ins.scores[:, -1], images.mean(axis=(1, 2, 3)), rtol=1e-10)
    assert ins.scores.shape == (3, 6)  # 144 px / 5 steps -> 29 px per step -> 5 steps
    np.testing.assert_allclose(ins.fractions, [0, 29 / 144, 58 / 144, 87 / 144, 116 / 144, 1])
    dele = metrics.deletion(model, images, np.ones((3, 12, 12)), 0, substrate=0.5, num_steps=4, output="logit")
    np.testing.assert_allclose(dele.scores[:, -1], 0.5)
    # a callable baseline and an array baseline give the same curves
    a = metrics.deletion(model, images, images[..., 0], 0, substrate=lambda x: x * 0 + 0.25, num_steps=4, output="logit")
    b = metrics.deletion(model, images, images[..., 0], 0, substrate=np.full((1, 1, 1, 1), 0.25), num_steps=4, output="logit")
    np.testing.assert_allclose(a.scores, b.scores)


def test_errors_name_the_argument():
    model = mean_model()
    with pytest.raises(InvalidInputError, match="auc"):
        metrics.deletion(model, IMAGE, SALIENCY, auc="simpson")
    with pytest.raises(InvalidInputError, match="maps"):
        metrics.deletion(model, IMAGE, np.ones((2, 2, 2)))
    with pytest.raises(InvalidInputError, match="maps"):
        metrics.insertion(model, IMAGE, np.ones((1, 4, 4)))
    with pytest.raises(InvalidInputError, match="substrate"):
        metrics.insertion(model, IMAGE, SALIENCY, substrate="grey")
    with pytest.raises(InvalidInputError, match="num_steps"):
        metrics.insertion(model, IMAGE, SALIENCY, num_steps=0)
    with pytest.raises(InvalidInputError, match="substrate"):
        metrics.average_drop(model, IMAGE, SALIENCY, substrate=np.zeros((3, 3)))


def test_average_drop_and_increase_by_hand():
    model = mean_model(num_classes=2, softmax=True)
    images = np.concatenate([IMAGE, IMAGE])
    maps = np.array([[[0.0, 1.0], [0.5, 0.25]], [[0.0, 2.0], [1.0, 0.5]]])  # same after min-max
    change = metrics.confidence_change(model, images, maps, 0)
    y, o = sigmoid(2.5), sigmoid((0 + 2 + 1.5 + 1) / 4)
    np.testing.assert_allclose(change.original, [y, y])
    np.testing.assert_allclose(change.explained, [o, o])
    np.testing.assert_allclose(change.average_drop, 100 * (y - o) / y)
    assert change.increase_in_confidence == 0.0
    # baseline 10: E = 10 + L (x - 10) has a larger mean, so confidence increases and drop is 0
    raised = metrics.increase_in_confidence(model, images, maps, 0, substrate=10.0)
    assert raised.value == 100.0
    np.testing.assert_array_equal(raised.per_image, [100.0, 100.0])
    assert metrics.average_drop(model, images, maps, 0, substrate=10.0).value == 0.0


def test_spearman_and_ssim():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(3, 8, 8)), rng.normal(size=(3, 8, 8))

    def reference(x, y):
        rx = np.argsort(np.argsort(x.ravel())).astype(float)
        ry = np.argsort(np.argsort(y.ravel())).astype(float)
        return np.corrcoef(rx, ry)[0, 1]

    np.testing.assert_allclose(metrics.spearman(a, b), [reference(x, y) for x, y in zip(a, b)], atol=1e-12)
    np.testing.assert_allclose(metrics.spearman(a, np.exp(a)), 1.0)
    np.testing.assert_allclose(metrics.spearman(a, -a), -1.0)
    constant = np.concatenate([np.zeros((1, 8, 8)), a[1:]])
    rho = metrics.spearman(constant, b).numpy()
    assert np.isnan(rho[0]) and np.all(np.isfinite(rho[1:]))
    np.testing.assert_allclose(metrics.ssim(a, 3 * a + 1), 1.0, atol=1e-5)
    assert np.all(metrics.ssim(a, b).numpy() < 0.5)


def test_reinitialize_draws_nonzero_biases():
    layer = keras.layers.Dense(4)
    layer.build((None, 9))
    metrics.reinitialize_layer(layer, np.random.default_rng(0))
    kernel, bias = (np.asarray(w) for w in layer.weights)
    assert np.all(bias != 0) and np.all(np.abs(bias) <= 1 / 3) and np.abs(kernel).max() <= 1 / 3


def test_cascading_randomization_on_small_cnn():
    model = models.small_cnn()
    images = np.random.default_rng(0).uniform(size=(2, 16, 16, 3)).astype("float32")
    snapshot = weights_snapshot(model)
    result = metrics.cascading_randomization(model, lambda m: tfxai.VanillaGradient(m, output="logit"), images, seed=1, keep_maps=True)
    assert_unchanged(model, snapshot)
    assert result.layers == ["head", "conv2", "conv1"]
    assert result.spearman.shape == (3, 2) and result.ssim.shape == (3, 2) and result.maps.shape == (3, 2, 16, 16)
    np.testing.assert_allclose(result.original_maps, tfxai.VanillaGradient(model, output="logit")(images, result_targets(model, images)))
    assert np.all(result.spearman[-1] < 0.9)
    # the last row is the map of a model with every layer re-initialised: recompute it independently
    again = metrics.cascading_randomization(model, lambda m: tfxai.VanillaGradient(m, output="logit"), images, seed=1)
    np.testing.assert_allclose(again.spearman, result.spearman)
    top = metrics.cascading_randomization(model, lambda m: tfxai.VanillaGradient(m, output="logit"), images, layers=1, seed=1)
    assert top.layers == ["head"]
    # checkpoints: the same cumulative randomisation, explained after layers 2 and 3 only
    sparse = metrics.cascading_randomization(model, lambda m: tfxai.VanillaGradient(m, output="logit"), images, seed=1, every=2)
    assert sparse.layers == ["conv2", "conv1"]
    np.testing.assert_allclose(sparse.spearman, result.spearman[1:])
    with pytest.raises(InvalidInputError, match="every"):
        metrics.cascading_randomization(model, lambda m: tfxai.VanillaGradient(m), images, every=0)
    with pytest.raises(InvalidInputError, match="layers"):
        metrics.cascading_randomization(model, lambda m: tfxai.VanillaGradient(m), images, layers=["pool"])
    with pytest.raises(InvalidTypeError, match="explainer_factory"):
        metrics.cascading_randomization(model, "grad", images)


def result_targets(model, images):
    return np.argmax(model(images), axis=-1)


def test_identity_randomization_of_unused_weights_keeps_maps():
    # a map that ignores the model (constant) correlates perfectly whatever is randomised
    model = models.small_cnn()
    images = np.random.default_rng(0).uniform(size=(1, 16, 16, 3)).astype("float32")

    class Constant:
        def __init__(self, m):
            pass

        def __call__(self, x, targets=None):
            return np.arange(16 * 16, dtype="float32").reshape(1, 16, 16)

    result = metrics.cascading_randomization(model, Constant, images, targets=[0])
    np.testing.assert_allclose(result.spearman, 1.0)
    np.testing.assert_allclose(result.ssim, 1.0, atol=1e-5)


@pytest.mark.slow
def test_deletion_by_true_mask_beats_random_ranking(localisation):
    model, images, labels, masks = localisation
    images, labels, masks = images[:24], labels[:24], masks[:24]
    snapshot = weights_snapshot(model)
    # zero substrate: a blurred copy keeps the (smeared) square in its quadrant, so the class survives
    kwargs = dict(targets=labels, num_steps=32, batch_size=128, substrate="zero")
    by_mask = metrics.deletion(model, images, masks.astype("float32"), **kwargs)
    random = metrics.deletion(model, images, np.random.default_rng(0).uniform(size=masks.shape), **kwargs)
    assert by_mask.auc.mean() < random.auc.mean() - 0.1
    ins_mask = metrics.insertion(model, images, masks.astype("float32"), **kwargs)
    ins_random = metrics.insertion(model, images, np.random.default_rng(0).uniform(size=masks.shape), **kwargs)
    assert ins_mask.auc.mean() > ins_random.auc.mean()
    assert_unchanged(model, snapshot)
