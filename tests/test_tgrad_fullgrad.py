"""T-Grad and FullGrad against float64 references written from the papers, plus localisation."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfxai
from tests import models
from tests.conftest import assert_unchanged, weights_snapshot
from tests.reference import decomposition as reference_decomposition
from tests.reference import tgrad as reference
from tfxai.errors import InvalidInputError, UnsupportedModelError

TARGETS = np.array([2, 1, 0])  # logits of both signs
# float64 throughout (tfxai.image_ops.resize interpolates float64 maps in float64).
MAP_TOL = dict(rtol=1e-9, atol=1e-12)


@pytest.fixture
def bn_cnn(float64):
    model = reference_decomposition.small_bn_cnn()
    images = np.random.default_rng(0).normal(0, 1, size=(3, 12, 12, 3))
    _, input_term, terms = reference_decomposition.decomposition(model, images, TARGETS)
    spatial = [v for name, v in terms.items() if name != "head"]  # dense terms stay out of maps
    return model, images, input_term, spatial


def test_tgrad_matches_reference(bn_cnn):
    model, images, input_term, spatial = bn_cnn
    expected = reference.tgrad(input_term, spatial, (12, 12))
    explainer = tfxai.TGrad(model, batch_size=2)  # 3 images: a full and a partial chunk
    maps = explainer(images, TARGETS).numpy()
    assert maps.shape == (3, 12, 12)
    np.testing.assert_allclose(maps, expected, **MAP_TOL)
    # targets=None explains the predicted classes (same trace)
    predicted = model(images).numpy().argmax(axis=1)
    _, predicted_input, predicted_terms = reference_decomposition.decomposition(model, images, predicted)
    spatial_predicted = [v for name, v in predicted_terms.items() if name != "head"]
    np.testing.assert_allclose(
        explainer(images).numpy(), reference.tgrad(predicted_input, spatial_predicted, (12, 12)), **MAP_TOL
    )
    assert explainer.trace_count == 1


def test_fullgrad_official_matches_reference(bn_cnn):
    model, images, input_term, spatial = bn_cnn
    expected = reference.fullgrad_official(input_term, spatial, (12, 12))
    maps = tfxai.FullGrad(model, batch_size=2)(images, TARGETS).numpy()
    np.testing.assert_allclose(maps, expected, **MAP_TOL)


def test_fullgrad_pytorch_grad_cam_matches_reference(bn_cnn):
    model, images, input_term, spatial = bn_cnn
    expected = reference.fullgrad_pytorch_grad_cam(input_term, spatial, (12, 12))
    maps = tfxai.FullGrad(model, variant="pytorch_grad_cam")(images, TARGETS).numpy()
    np.testing.assert_allclose(maps, expected, **MAP_TOL)
    np.testing.assert_allclose(maps.max(axis=(1, 2)), 1.0, rtol=1e-6)


def test_layer_maps_recombine_to_tgrad(bn_cnn):
    model, images, input_term, spatial = bn_cnn
    explainer = tfxai.TGrad(model)
    layers = explainer.layer_maps(images, TARGETS)
    assert [name for name, _, _ in layers] == ["input", "conv1", "bn1", "conv2", "bn2", "conv3", "relu6"]
    maps = explainer(images, TARGETS).numpy()
    total = sum(m.numpy() * s.numpy()[:, None, None] for _, m, s in layers)
    np.testing.assert_allclose(total, maps, **MAP_TOL)
    for (name, layer_map, scores), term in zip(layers, [input_term, *spatial]):
        np.testing.assert_allclose(scores.numpy(), np.maximum(term.sum(axis=(1, 2, 3)), 0.0), rtol=1e-9, atol=1e-12)
        positive = np.maximum(term, 0).sum(axis=(1, 2, 3)) > 0
        np.testing.assert_allclose(layer_map.numpy().sum(axis=(1, 2))[positive], 1.0, rtol=1e-12)
    # The authors weight by the signed share sum(term)/s; for s > 0 that is Eq. 8 divided by s.
    logits = model(images).numpy()[np.arange(3), TARGETS]
    authors = sum(m.numpy() * np.maximum(s.numpy() / logits, 0)[:, None, None] for _, m, s in layers)
    positive = logits > 0
    assert positive.any() and not positive.all()
    np.testing.assert_allclose(authors[positive], (maps / logits[:, None, None])[positive], **MAP_TOL)


def _pointing_accuracy(maps, masks):
    flat = maps.reshape(len(maps), -1).argmax(axis=1)
    return masks.reshape(len(masks), -1)[np.arange(len(masks)), flat].mean()


# Chance level is the object's area, 6.25 %. Observed (one training run): FullGrad 98 %,
# pytorch-grad-cam FullGrad 97 %, T-Grad 55 %. T-Grad's input map alone always points inside the
# object, but Eq. 8 weights it by ReLU(sum(x * ds/dx)), and on ~42 % of these images the input term's
# total contribution is negative (the conv biases carry the logit): the input map is then dropped and
# the diffuse bias maps decide (0 % hits). Where the input term counts, T-Grad hits ~95 %.
POINTING_BOUNDS = {"TGrad": 0.4, "FullGrad": 0.7}


@pytest.mark.slow
@pytest.mark.parametrize("method", ["TGrad", "FullGrad"])
def test_points_inside_the_object(localisation, method):
    model, images, labels, masks = localisation
    snapshot = weights_snapshot(model)
    explainer = getattr(tfxai, method)(model)
    maps = explainer(images, labels).numpy()
    assert maps.shape == masks.shape and np.all(np.isfinite(maps))
    accuracy = _pointing_accuracy(maps, masks)
    assert accuracy >= POINTING_BOUNDS[method], accuracy
    # a shuffled map does not point at the object that often (the test can fail)
    assert _pointing_accuracy(maps[::-1], masks) < accuracy
    if method == "TGrad":
        name, input_map, input_score = explainer.layer_maps(images, labels)[0]
        assert name == "input" and _pointing_accuracy(input_map.numpy(), masks) >= 0.9
        counted = input_score.numpy() > 0
        assert counted.mean() >= 0.3
        assert _pointing_accuracy(maps[counted], masks[counted]) >= 0.85
    assert_unchanged(model, snapshot)


def test_errors_and_refusal():
    model = models.small_cnn()
    with pytest.raises(InvalidInputError, match="variant"):
        tfxai.FullGrad(model, variant="grad_cam")
    with pytest.raises(InvalidInputError, match="mode"):
        tfxai.TGrad(model, mode="fast")
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(2, 3, activation="swish", name="c")(inputs)
    x = keras.layers.Activation("sigmoid", name="s")(x)
    gated = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(x)))
    for method in (tfxai.TGrad, tfxai.FullGrad):
        with pytest.raises(UnsupportedModelError, match="linearize") as info:
            method(gated)
        assert info.value.layers == ["c/activation", "s"]
    images = np.random.default_rng(0).uniform(size=(2, 8, 8, 3)).astype("float32")
    maps = tfxai.TGrad(gated, mode="linearize")(images)
    assert maps.shape == (2, 8, 8) and np.all(np.isfinite(maps.numpy()))
    with pytest.raises(InvalidInputError):
        tfxai.TGrad(model)(np.zeros((2, 16, 16, 3), "float32"), targets=[0, 7])


def test_tgrad_of_an_untrained_model_is_the_input_term_times_relu_of_the_logit(float64):
    """graph (issue 16): why T-Grad is zero on `--weights none` models (the TGrad docstring's note).

    Keras initialises biases to 0 and BatchNormalization to the identity, so every
    bias term is 0 and T = phi(S_input) * ReLU(s): zero wherever the logit s <= 0.
    """
    keras.utils.set_random_seed(7)
    d = "float64"
    inputs = keras.Input((12, 12, 3), dtype=d)
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", dtype=d)(inputs)
    x = keras.layers.BatchNormalization(dtype=d)(x)
    x = keras.layers.ReLU(dtype=d)(x)
    x = keras.layers.GlobalAveragePooling2D(dtype=d)(x)
    model = keras.Model(inputs, keras.layers.Dense(3, dtype=d)(x))  # untouched initial weights
    images = np.random.default_rng(0).normal(0, 1, size=(4, 12, 12, 3))
    logits = model(images).numpy()
    targets = np.array([np.argmin(logits[i]) if i % 2 else np.argmax(logits[i]) for i in range(4)])
    chosen = logits[np.arange(4), targets]
    assert np.any(chosen < 0) and np.any(chosen > 0)
    out = tfxai.decompose(model)(images, targets)
    assert all(np.all(t.value.numpy() == 0) for t in out.terms)  # every bias term is exactly 0
    maps = tfxai.TGrad(model)(images, targets).numpy()
    # independent: S_input = sum_c ReLU(x * ds/dx), phi(S) = S / (sum S + 1e-16) (same size), times ReLU(s)
    x_t = tf.constant(images)
    with tf.GradientTape() as tape:
        tape.watch(x_t)
        score = tf.gather(model(x_t), targets, axis=1, batch_dims=1)
    s_input = np.maximum(images * tape.gradient(score, x_t).numpy(), 0).sum(-1)
    expected = s_input / (s_input.sum(axis=(1, 2), keepdims=True) + 1e-16) * np.maximum(chosen, 0)[:, None, None]
    np.testing.assert_allclose(maps, expected, **MAP_TOL)
    assert np.all(maps[chosen <= 0] == 0) and np.all(maps[chosen > 0].max(axis=(1, 2)) > 0)
