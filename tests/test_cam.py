"""CAM family: weight functions by hand, float64 references, architectures, localisation, errors."""

from __future__ import annotations

import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfxai
from tfxai import surgery
from tfxai.errors import (DegenerateMapWarning, InvalidInputError, InvalidTypeError, LayerNotFoundError,
                          UnsupportedModelError)
from tfxai.explainers import cam_weights
from tfxai.explainers.cam import CAM
from tests import models
from tests.conftest import assert_unchanged, degenerate_images, weights_snapshot
from tests.reference import cam as ref

GRADIENT_CAMS = [tfxai.GradCAM, tfxai.GradCAMPlusPlus, tfxai.XGradCAM]
ALL_CAMS = [*GRADIENT_CAMS, tfxai.ScoreCAM, tfxai.EigenCAM, tfxai.AblationCAM]
TIGHT = dict(rtol=1e-9, atol=1e-12)


def _t(array):
    return tf.constant(np.asarray(array, np.float64))


def _images(n, size=16, seed=0, dtype="float32"):
    return np.random.default_rng(seed).uniform(0, 1, size=(n, size, size, 3)).astype(dtype)


# --------------------------------------------------------------------------- weight functions by hand
# One image, 2x2 positions, 2 channels. Channel 0: A = [[1, 2], [3, 4]] (sum 10), g = [[1, -1], [0, 0.5]].
# Channel 1: A = 0.5 everywhere (sum 2), g = [[-1, 0], [0, 0]]: the Grad-CAM++ denominator
# 2 g^2 + 2 g^3 = 2 - 2 = 0 at the only non-zero gradient.
A = np.stack([[[1.0, 2.0], [3.0, 4.0]], np.full((2, 2), 0.5)], axis=-1)[None]
G = np.stack([[[1.0, -1.0], [0.0, 0.5]], [[-1.0, 0.0], [0.0, 0.0]]], axis=-1)[None]


def test_gradcam_weights_are_spatial_means():
    np.testing.assert_allclose(cam_weights.gradcam_weights(_t(G)).numpy(), [[0.5 / 4, -1 / 4]])


def test_weighted_sum_by_hand():
    cam = cam_weights.weighted_sum(_t(A), _t([[2.0, -4.0]])).numpy()
    np.testing.assert_allclose(cam[0], 2 * A[0, ..., 0] - 4 * A[0, ..., 1])


def test_gradcam_plus_plus_alphas_and_weights_by_hand():
    # channel 0: alpha = g^2 / (2 g^2 + 10 g^3): 1/12 at g=1, 1/(2-10) = -1/8 at g=-1, 0 at g=0,
    # 0.25 / (0.5 + 1.25) = 1/7 at g=0.5. Channel 1: zero denominator -> alpha 0 (no NaN).
    alphas = cam_weights.gradcam_plus_plus_alphas(_t(A), _t(G)).numpy()
    np.testing.assert_allclose(alphas[0, ..., 0], [[1 / 12, -1 / 8], [0.0, 1 / 7]])
    np.testing.assert_array_equal(alphas[0, ..., 1], np.zeros((2, 2)))
    weights = cam_weights.gradcam_plus_plus_weights(_t(A), _t(G)).numpy()
    np.testing.assert_allclose(weights, [[1 / 12 * 1 + 1 / 7 * 0.5, 0.0]])  # ReLU(g) drops g=-1


def test_gradcam_plus_plus_uses_the_sum_of_activations_not_sum_of_a_times_g3():
    # The common bug puts sum_ab(A_ab g_ab^3) = 1 - 2 + 0 + 0.5 = -0.5 in the denominator.
    buggy_alpha_at_g1 = 1.0 / (2.0 + (-0.5) * 1.0)
    alphas = cam_weights.gradcam_plus_plus_alphas(_t(A), _t(G)).numpy()
    assert alphas[0, 0, 0, 0] == pytest.approx(1 / 12)
    assert abs(alphas[0, 0, 0, 0] - buggy_alpha_at_g1) > 0.5


def test_gradcam_plus_plus_official_variant_normalises_alphas():
    total = 1 / 12 - 1 / 8 + 1 / 7
    alphas = cam_weights.gradcam_plus_plus_alphas(_t(A), _t(G), "official").numpy()
    np.testing.assert_allclose(alphas[0, ..., 0], np.array([[1 / 12, -1 / 8], [0.0, 1 / 7]]) / total)
    np.testing.assert_array_equal(alphas[0, ..., 1], np.zeros((2, 2)))  # zero sum stays zero
    weights = cam_weights.gradcam_plus_plus_weights(_t(A), _t(G), "official").numpy()
    np.testing.assert_allclose(weights, [[(1 / 12 + 0.5 / 7) / total, 0.0]])


def test_xgradcam_weights_by_hand():
    weights = cam_weights.xgradcam_weights(_t(A), _t(G)).numpy()
    eps = 1e-7
    expected0 = (1 * 1 + 2 * -1 + 3 * 0 + 4 * 0.5) / (10 + eps)
    expected1 = 0.5 * -1 / (2 + eps)
    np.testing.assert_allclose(weights, [[expected0, expected1]], rtol=1e-12)
    zero = cam_weights.xgradcam_weights(_t(np.zeros((1, 2, 2, 1))), _t(np.ones((1, 2, 2, 1)))).numpy()
    np.testing.assert_array_equal(zero, [[0.0]])  # all-zero channel: eps keeps it finite


def test_channel_masks_normalise_and_flag_constant_maps():
    maps = _t([[[1.0, 3.0], [2.0, 5.0]], [[7.0, 7.0], [7.0, 7.0]]])
    masks, valid = cam_weights.channel_masks(maps)
    np.testing.assert_allclose(masks[0].numpy(), [[0.0, 0.5], [0.25, 1.0]])
    np.testing.assert_array_equal(masks[1].numpy(), np.zeros((2, 2)))
    np.testing.assert_array_equal(valid.numpy(), [1.0, 0.0])


def test_eigen_projection_by_hand_and_sign_rule():
    a0 = np.array([[0.0, 1.0], [2.0, 3.0]])
    centred = a0 - 1.5
    # Rank one, channel sum 3 * a0 increases with a0: projection = +sqrt(5) * centred a0.
    positive = np.stack([a0, 2 * a0], axis=-1)[None]
    np.testing.assert_allclose(cam_weights.eigen_projection(_t(positive)).numpy()[0], np.sqrt(5) * centred, atol=1e-12)
    # A1 = 10 - 3 a0: channel sum 10 - 2 a0 decreases with a0, so the rule picks -sqrt(10) * centred a0.
    negative = np.stack([a0, 10 - 3 * a0], axis=-1)[None]
    np.testing.assert_allclose(cam_weights.eigen_projection(_t(negative)).numpy()[0], -np.sqrt(10) * centred, atol=1e-12)
    # The rule does not depend on the channel order or on which sign the SVD returns.
    swapped = negative[..., ::-1].copy()
    np.testing.assert_allclose(cam_weights.eigen_projection(_t(swapped)).numpy()[0], -np.sqrt(10) * centred, atol=1e-12)


# --------------------------------------------------------------------------- float64 references
@pytest.mark.parametrize(
    "method, reference",
    [
        (lambda m: tfxai.GradCAM(m, "pool", batch_size=2), ref.grad_cam),
        (lambda m: tfxai.GradCAMPlusPlus(m, "pool", batch_size=2), ref.grad_cam_plus_plus),
        (lambda m: tfxai.GradCAMPlusPlus(m, "pool", variant="official"), lambda a, g: ref.grad_cam_plus_plus(a, g, official=True)),
        (lambda m: tfxai.XGradCAM(m, "pool", batch_size=2), ref.xgrad_cam),
        (lambda m: tfxai.EigenCAM(m, "pool", batch_size=2), lambda a, g: ref.eigen_cam(a)),
    ],
    ids=["gradcam", "gradcam++", "gradcam++official", "xgradcam", "eigencam"],
)
def test_matches_float64_reference(cnn64, method, reference):
    images = _images(3, dtype="float64")
    targets = np.array([0, 3, 4])
    acts, grads, _ = ref.activations_and_gradients(cnn64, "pool", images, targets)
    expected = reference(acts, grads)
    assert expected.max() > 0  # the comparison is not between zero maps
    explainer = method(cnn64)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        maps = explainer(images, targets).numpy()
    # the reference's empty maps (all positions <= 0 before the ReLU) are exactly the ones warned about
    assert degenerate_images(caught) == [i for i in range(3) if expected[i].max() == 0]
    assert maps.dtype == np.float64 and maps.shape == (3, 16, 16)
    np.testing.assert_allclose(maps, ref.upsample(expected, (16, 16)), rtol=1e-9, atol=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DegenerateMapWarning)  # the same images, checked above
        layer_maps = type(explainer)(cnn64, "pool", upsample=False, **_extra(explainer))(images, targets).numpy()
    np.testing.assert_allclose(layer_maps, expected, rtol=1e-9, atol=1e-12)


def _extra(explainer):
    return {"variant": explainer.variant} if hasattr(explainer, "variant") else {}


@pytest.mark.parametrize("upsample", [True, False])
def test_scorecam_matches_float64_reference(cnn64, upsample):
    images = _images(2, dtype="float64")
    targets = np.array([1, 2])
    expected = ref.score_cam(cnn64, "pool", images, targets, upsample=upsample)
    assert expected.max() > 0
    maps = tfxai.ScoreCAM(cnn64, "pool", batch_size=5, upsample=upsample)(images, targets).numpy()
    np.testing.assert_allclose(maps, expected, rtol=1e-9, atol=1e-12)


def test_scorecam_skips_constant_channels(cnn64):
    conv2 = cnn64.get_layer("conv2")
    kernel, bias = conv2.get_weights()
    kernel[..., 0] = 0.0
    bias[0] = 0.3  # channel 0 of conv2 (and so of pool) is the constant 0.3
    conv2.set_weights([kernel, bias])
    images = _images(2, dtype="float64")
    targets = np.array([0, 1])
    maps = tfxai.ScoreCAM(cnn64, "pool", batch_size=7)(images, targets).numpy()
    assert np.isfinite(maps).all()
    np.testing.assert_allclose(maps, ref.score_cam(cnn64, "pool", images, targets), rtol=1e-9, atol=1e-12)


def test_scorecam_num_channels_keeps_the_top_channels_by_std(cnn64):
    images = _images(2, dtype="float64")
    targets = np.array([1, 2])
    acts, _, _ = ref.activations_and_gradients(cnn64, "pool", images, targets)
    explainer = tfxai.ScoreCAM(cnn64, "pool", num_channels=3, batch_size=4)
    maps = explainer(images, targets).numpy()
    for i in range(2):
        # Zero every channel but the 3 with the largest spatial std: same as Score-CAM on those 3.
        keep = np.argsort(-acts[i].std(axis=(0, 1)))[:3]
        expected = np.zeros((16, 16))
        for c in keep:
            up = ref.bilinear(acts[i, :, :, c], 16, 16)
            mask = (up - up.min()) / (up.max() - up.min())
            logits = cnn64(images[i : i + 1] * mask[None, :, :, None]).numpy()[0]
            p = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
            expected += p[targets[i]] * up
        np.testing.assert_allclose(maps[i], np.maximum(expected, 0), rtol=1e-9, atol=1e-12)
    full = tfxai.ScoreCAM(cnn64, "pool")(images, targets).numpy()
    assert not np.allclose(full, maps)


# --------------------------------------------------------------------------- contract
@pytest.mark.parametrize("cls", ALL_CAMS)
def test_batch_size_and_targets(cls):
    model = models.small_cnn(num_classes=5, softmax=True)
    images = _images(5)
    explainer = cls(model, batch_size=2)
    by_none = explainer(images).numpy()
    traces = explainer.trace_count
    predicted = explainer.predict(images)
    by_predicted = cls(model, batch_size=5)(images, predicted).numpy()
    np.testing.assert_allclose(by_none, by_predicted, rtol=1e-5, atol=1e-7)
    single = np.stack([explainer(images[i : i + 1], int(predicted[i])).numpy()[0] for i in range(5)])
    np.testing.assert_allclose(single, by_none, rtol=1e-5, atol=1e-7)
    assert by_none.shape == (5, 16, 16) and by_none.dtype == np.float32
    assert explainer.trace_count == traces + 1  # + predict(); batch sizes 5 and 1 share one trace


def test_targets_change_gradient_cams_but_not_eigencam():
    model = models.small_cnn(num_classes=5)
    images = _images(2)
    a, b = tfxai.GradCAM(model)(images, 0).numpy(), tfxai.GradCAM(model)(images, 1).numpy()
    assert not np.allclose(a, b)
    eigen = tfxai.EigenCAM(model)
    np.testing.assert_array_equal(eigen(images, 0).numpy(), eigen(images, 1).numpy())


@pytest.mark.filterwarnings("ignore::tfxai.errors.DegenerateMapWarning")  # random model: one target's map is empty
def test_softmax_model_gives_the_same_gradcam_as_logits_model_and_is_unchanged():
    with_softmax = models.small_cnn(num_classes=5, softmax=True, seed=3)
    without = models.small_cnn(num_classes=5, softmax=False, seed=3)
    snapshot = weights_snapshot(with_softmax)
    images = _images(3)
    for cls in [tfxai.GradCAM, tfxai.GradCAMPlusPlus, tfxai.ScoreCAM, tfxai.AblationCAM]:
        a = cls(with_softmax)(images, [0, 1, 2]).numpy()
        b = cls(without)(images, [0, 1, 2]).numpy()
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    assert_unchanged(with_softmax, snapshot)
    assert with_softmax.layers[-1].activation is keras.activations.softmax
    # Through the softmax the gradient would be different (the logit is what is explained).
    acts, grads, logits = ref.activations_and_gradients(without, "pool", images.astype("float32"), [0, 1, 2])
    assert np.abs(grads).max() > 0


def test_sequential_model_matches_reference():
    keras.utils.set_random_seed(1)
    model = keras.Sequential(
        [
            keras.Input((12, 12, 3)),
            keras.layers.Conv2D(4, 3, activation="relu", name="c1"),
            keras.layers.Conv2D(5, 3, activation="relu", name="c2"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(3, name="out"),
        ]
    )
    models.randomize_biases_and_bn(model, 1)
    images = _images(2, size=12)
    explainer = tfxai.GradCAM(model)
    assert explainer.layer == "c2"
    acts, grads, _ = ref.activations_and_gradients(model, "c2", images, [0, 2])
    np.testing.assert_allclose(explainer(images, [0, 2]).numpy(), ref.upsample(ref.grad_cam(acts, grads), (12, 12)),
                               rtol=1e-4, atol=1e-6)


def _nested_and_flat():
    """An outer model with a head around `middle`, which wraps `backbone` (two levels), and a flat twin."""
    keras.utils.set_random_seed(2)
    conv1 = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv1")
    conv2 = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="conv2")
    pool = keras.layers.MaxPooling2D(name="pool")
    gap = keras.layers.GlobalAveragePooling2D(name="gap")
    head = keras.layers.Dense(4, activation="softmax", name="head")
    x_in = keras.Input((16, 16, 3))
    backbone = keras.Model(x_in, pool(conv2(conv1(x_in))), name="backbone")
    m_in = keras.Input((16, 16, 3))
    middle = keras.Model(m_in, backbone(m_in), name="middle")
    o_in = keras.Input((16, 16, 3))
    outer = keras.Model(o_in, head(gap(middle(o_in))), name="outer")
    models.randomize_biases_and_bn(outer, 2)
    f_in = keras.Input((16, 16, 3))
    flat = keras.Model(f_in, head(gap(pool(conv2(conv1(f_in))))), name="flat")
    return outer, flat, conv2


def test_nested_two_levels_by_name_path_object_and_default():
    outer, flat, conv2 = _nested_and_flat()
    snapshot = weights_snapshot(outer)
    images = _images(2)
    expected = tfxai.GradCAM(flat, "conv2")(images, [1, 3]).numpy()
    assert expected.max() > 0
    for layer in ["conv2", "middle/backbone/conv2", conv2]:
        explainer = tfxai.GradCAM(outer, layer)
        assert explainer.layer == "middle/backbone/conv2"
        np.testing.assert_allclose(explainer(images, [1, 3]).numpy(), expected, rtol=1e-5, atol=1e-7)
    default = tfxai.XGradCAM(outer)
    assert default.layer_shape[1:] == (8, 8, 6)
    np.testing.assert_allclose(default(images, [1, 3]).numpy(), tfxai.XGradCAM(flat, "pool")(images, [1, 3]).numpy(),
                               rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(tfxai.ScoreCAM(outer, "conv2")(images, [1, 3]).numpy(),
                               tfxai.ScoreCAM(flat, "conv2")(images, [1, 3]).numpy(), rtol=1e-5, atol=1e-7)
    assert_unchanged(outer, snapshot)


# --------------------------------------------------------------------------- errors
def test_bad_inputs():
    model = models.small_cnn(num_classes=5)
    with pytest.raises(LayerNotFoundError, match=r"No layer named 'conv3'.*Did you mean.*conv"):
        tfxai.GradCAM(model, "conv3")
    with pytest.raises(InvalidInputError, match=r"`layer` must produce a 4-D.*'head'.*Dense"):
        tfxai.GradCAMPlusPlus(model, "head")
    with pytest.raises(InvalidInputError, match=r"4-D"):
        tfxai.ScoreCAM(model, model.get_layer("head"))
    with pytest.raises(InvalidTypeError, match=r"`layer` must be None, a layer name"):
        tfxai.XGradCAM(model, 3)
    other = keras.layers.Conv2D(2, 3)
    with pytest.raises(LayerNotFoundError, match=r"not part of model"):
        tfxai.EigenCAM(model, other)
    with pytest.raises(InvalidInputError, match=r"`variant` must be one of 'paper', 'official'. Received: variant='mean'"):
        tfxai.GradCAMPlusPlus(model, variant="mean")
    with pytest.raises(InvalidInputError, match=r"`num_channels` must be an integer >= 1. Received: num_channels=0"):
        tfxai.ScoreCAM(model, num_channels=0)
    with pytest.raises(InvalidTypeError, match=r"`num_channels` must be an integer"):
        tfxai.ScoreCAM(model, num_channels=2.5)
    with pytest.raises(InvalidInputError, match=r"`num_channels` must be at most the layer's 8 channels"):
        tfxai.ScoreCAM(model, "pool", num_channels=9)
    with pytest.raises(InvalidTypeError, match=r"`upsample` must be True or False"):
        tfxai.GradCAM(model, upsample="yes")
    with pytest.raises(InvalidInputError, match=r"targets"):
        tfxai.GradCAM(model)(_images(2), [0, 7])


# --------------------------------------------------------------------------- localisation
def _pointing_hits(maps, masks):
    flat = maps.reshape(len(maps), -1)
    assert (flat.max(axis=1) > flat.min(axis=1)).all()  # no constant map: the argmax means something
    return masks.reshape(len(masks), -1)[np.arange(len(maps)), flat.argmax(axis=1)]


def test_pointing_game_on_trained_localisation_cnn(localisation):
    model, images, labels, masks = localisation
    snapshot = weights_snapshot(model)
    random_rate = masks.mean()  # a random map's maximum falls in the object with this probability
    assert random_rate < 0.1
    for cls, minimum in [(tfxai.GradCAMPlusPlus, 0.7), (tfxai.ScoreCAM, 0.7), (tfxai.EigenCAM, 0.7)]:
        hits = _pointing_hits(cls(model, batch_size=64)(images, labels).numpy(), masks)
        assert hits.mean() >= minimum, (cls.__name__, hits.mean())
        assert hits.mean() > 5 * random_rate
    # XGrad-CAM hits the object where its map is not empty (some maps are all zero, see below).
    with pytest.warns(DegenerateMapWarning, match=r"XGrad-CAM map all-zero for images \[0, 2, 6"):
        maps = tfxai.XGradCAM(model, batch_size=64)(images, labels).numpy().reshape(len(images), -1)
    live = maps.max(axis=1) > 0
    assert live.mean() >= 0.5
    hits = masks.reshape(len(masks), -1)[np.arange(len(maps)), maps.argmax(axis=1)]
    assert hits[live].mean() >= 0.7
    assert_unchanged(model, snapshot)


def test_gradcam_on_a_flatten_head_is_the_positional_mean_of_the_dense_kernel(localisation):
    """On conv3 -> Flatten -> Dense the logit is linear in A, so d logit_c / dA = W[h, w, k, c].

    Grad-CAM's weights are then the spatial means of the Dense kernel. This model encodes the class
    (the quadrant) in *where* a channel fires, which the spatial mean discards: the weights are
    negative for the channels that fire on the square, and Grad-CAM gives empty maps here, while
    Grad-CAM++ and Score-CAM localise (previous test). A known limit of Grad-CAM, not a bug.
    """
    model, images, labels, _ = localisation
    images, labels = images[:8], labels[:8]
    kernel = model.get_layer("predictions").get_weights()[0].reshape(8, 8, 32, 4)
    acts = keras.Model(model.inputs, model.get_layer("conv3").output)(images).numpy()
    weights = kernel.mean(axis=(0, 1))[:, labels].T  # (N, K)
    expected = np.maximum(np.einsum("nhwk,nk->nhw", acts, weights), 0.0)
    assert expected.max() == 0  # empty for every image, and said so
    with pytest.warns(DegenerateMapWarning, match=r"Grad-CAM map all-zero for images \[0, 1, 2, 3, 4, 5, 6, 7\] .*'conv3'"):
        maps = tfxai.GradCAM(model, "conv3", upsample=False)(images, labels).numpy()
    np.testing.assert_allclose(maps, expected, rtol=1e-4, atol=1e-5)


def _colour_data(num_images, seed):
    """Localisation images whose class is the *colour* of the square (red, green, blue, white)."""
    images, _, masks = models.localisation_data(num_images, seed=seed)
    rng = np.random.default_rng(seed + 1)
    labels = rng.integers(0, 4, num_images)
    palette = np.array([[1, 0.15, 0.15], [0.15, 1, 0.15], [0.15, 0.15, 1], [1, 1, 1]], "float32")
    colours = palette[labels][:, None, None, :] * rng.uniform(0.8, 1.0, (num_images, 1, 1, 1))
    return np.where(masks[..., None], colours, images).astype("float32"), labels, masks


@pytest.fixture(scope="module")
def colour_cnn():
    """A small CNN with a global-average-pooling head trained (~8 s) on :func:`_colour_data`."""
    keras.utils.set_random_seed(0)
    images, labels, _ = _colour_data(1000, seed=0)
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu")(x)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="last_conv")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(4, activation="softmax")(x), name="colour_cnn")
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy")
    model.fit(images, labels, epochs=3, batch_size=64, verbose=0)
    return model


def test_pointing_game_when_the_class_is_what_the_object_looks_like(colour_cnn):
    images, labels, masks = _colour_data(64, seed=7)
    assert (colour_cnn.predict(images, verbose=0).argmax(axis=1) == labels).mean() >= 0.9
    random_rate = masks.mean()
    for cls in [tfxai.GradCAM, tfxai.GradCAMPlusPlus, tfxai.XGradCAM, tfxai.ScoreCAM]:
        hits = _pointing_hits(cls(colour_cnn, batch_size=64)(images, labels).numpy(), masks)
        assert hits.mean() >= 0.7, (cls.__name__, hits.mean())
        assert hits.mean() > 5 * random_rate


# --------------------------------------------------------------------------- architectures
# Tracing a 400-layer graph costs ~20-30 s on 2 CPU cores, so the deep applications get Grad-CAM only;
# the other methods share its code path (CAM.activations_and_gradients / activations) and are run on
# the three shallower ones.
APPLICATIONS = [
    ("VGG16", 64, tfxai.GradCAMPlusPlus),
    ("ResNet50", 64, tfxai.XGradCAM),
    ("MobileNetV2", 64, tfxai.EigenCAM),
    ("MobileNet", 64, tfxai.EigenCAM),
    ("MobileNetV3Small", 64, tfxai.ScoreCAM),
    ("DenseNet121", 64, None),
    ("InceptionV3", 75, None),
    ("EfficientNetB0", 64, None),
]


@pytest.mark.slow
@pytest.mark.parametrize("name, size, other", APPLICATIONS, ids=[a[0] for a in APPLICATIONS])
def test_keras_applications(name, size, other):
    keras.utils.set_random_seed(0)
    model = getattr(keras.applications, name)(weights=None, input_shape=(size, size, 3), classes=10)
    models.randomize_biases_and_bn(model, 0)
    snapshot = weights_snapshot(model)
    images = _images(1, size=size, seed=1) * 255.0
    layer = "mixed7" if name == "InceptionV3" else None  # at 75 px, mixed10 is 1x1
    for cls in [tfxai.GradCAM, other]:
        if cls is None:
            continue
        explainer = cls(model, layer)
        assert explainer.layer_shape[1] >= 2
        maps = explainer(images).numpy()
        assert maps.shape == (1, size, size)
        assert np.isfinite(maps).all()
        assert maps.max() > maps.min(), (name, cls.__name__)
    assert_unchanged(model, snapshot)


@pytest.mark.slow
def test_real_model(real_model, real_samples):
    images, labels, _ = real_samples
    explainer = tfxai.GradCAM(real_model)
    assert explainer.layer == "top_relu"
    assert explainer.layer_shape == (None, 7, 7, 1280)
    maps = explainer(images[:2], labels[:2]).numpy()
    assert maps.shape == (2, 224, 224)
    assert np.isfinite(maps).all()
    assert (maps.reshape(2, -1).max(axis=1) > maps.reshape(2, -1).min(axis=1)).all()
    maps = tfxai.ScoreCAM(real_model, num_channels=8, batch_size=8)(images[:1], labels[:1]).numpy()
    assert maps.shape == (1, 224, 224) and np.isfinite(maps).all() and maps.max() > maps.min()


# --------------------------------------------------------------------------- the hook: a CAMBatch
def test_ablation_weights_by_hand():
    # y = 2: drops 0.5 and -0.5 -> 0.25, -0.25; y = -1 (divided by y itself): -1 -> -2 gives -1; y = 0 gives 0.
    weights = cam_weights.ablation_weights(_t([[2.0], [-1.0], [0.0]]), _t([[1.5, 2.5], [-2.0, -1.0], [1.0, 0.0]]))
    np.testing.assert_allclose(weights.numpy(), [[0.25, -0.25], [-1.0, 0.0], [0.0, 0.0]])


def test_a_variant_sees_images_resolved_targets_logits_and_the_head(cnn64):
    class TargetChannelCAM(CAM):
        """Test-only: weight 1 on the channel whose index is the target class, after checking the context."""

        needs_gradients = False

        def channel_weights(self, batch):
            # the head on the unchanged activations gives the logits of the images
            tf.debugging.assert_near(batch.head(batch.activations, batch.images), batch.logits, rtol=1e-9, atol=1e-12)
            tf.debugging.assert_near(self.logits(batch.images), batch.logits, rtol=1e-9, atol=1e-12)
            tf.debugging.assert_non_negative(batch.targets)  # resolved: no -1 left
            assert batch.gradients is None
            return tf.one_hot(batch.targets, int(batch.activations.shape[-1]), dtype=batch.activations.dtype)

    images = _images(3, dtype="float64")
    acts, _, logits = ref.activations_and_gradients(cnn64, "pool", images, [0, 0, 0])
    explainer = TargetChannelCAM(cnn64, "pool", upsample=False, batch_size=2)
    maps = explainer(images).numpy()  # targets=None: the predicted classes
    predicted = logits.argmax(axis=1)
    np.testing.assert_allclose(maps, acts[np.arange(3), :, :, predicted], **TIGHT)
    np.testing.assert_allclose(explainer(images, [4, 1, 2]).numpy(), acts[np.arange(3), :, :, [4, 1, 2]], **TIGHT)


@pytest.mark.parametrize("upsample", [True, False])
def test_ablationcam_matches_float64_reference(cnn64, upsample):
    images = _images(3, dtype="float64")
    targets = np.array([0, 3, 4])
    acts, _, logits = ref.activations_and_gradients(cnn64, "pool", images, targets)
    kernel, bias = cnn64.get_layer("head").get_weights()
    expected = ref.ablation_cam(acts, logits, targets, lambda a: a.reshape(-1) @ kernel + bias)  # Flatten -> Dense
    assert expected.max() > 0
    snapshot = weights_snapshot(cnn64)
    explainer = tfxai.AblationCAM(cnn64, "pool", upsample=upsample, batch_size=5)
    assert not explainer.head.needs_images
    maps = explainer(images, targets).numpy()
    np.testing.assert_allclose(maps, ref.upsample(expected, (16, 16)) if upsample else expected, **TIGHT)
    assert_unchanged(cnn64, snapshot)


def _gap_cnn(skip=False):
    """conv1 -> feat (ReLU) [+ a 1x1 shortcut from the input] -> GlobalAveragePooling -> Dense (logits), float64."""
    keras.utils.set_random_seed(5)
    inputs = keras.Input((12, 12, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv1")(inputs)
    x = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="feat")(x)
    if skip:
        x = keras.layers.Add(name="add")([x, keras.layers.Conv2D(6, 1, name="shortcut")(inputs)])
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    model = keras.Model(inputs, keras.layers.Dense(3, name="dense")(x), name="gap_cnn")
    return models.randomize_biases_and_bn(model, 5, scale=0.3)


@pytest.mark.parametrize("skip", [False, True], ids=["chain", "skip-connection"])
def test_ablationcam_closed_form_on_a_pooled_linear_head(float64, skip):
    """logit_c = sum_k W_kc mean_ij(A_ijk) (+ shortcut) + b_c, so zeroing channel k lowers it by exactly
    W_kc sum_ij A_ijk / (h w): w_k = W_kc mean(A_k) / logit_c. With a shortcut around the layer the head
    also reads the images, and the drop is the same (the shortcut does not depend on A)."""
    model = _gap_cnn(skip)
    images, targets = _images(3, size=12, dtype="float64"), np.array([0, 1, 2])
    probe = keras.Model(model.input, [model.get_layer("feat").output, model.output])
    acts, logits = (np.asarray(t) for t in probe(images))
    kernel = model.get_layer("dense").get_weights()[0]  # (K, classes)
    y = logits[np.arange(3), targets]
    weights = kernel[:, targets].T * acts.mean(axis=(1, 2)) / y[:, None]  # (N, K)
    explainer = tfxai.AblationCAM(model, "feat", upsample=False)
    assert explainer.head.needs_images is skip
    batch = explainer.batch(tf.constant(images), tf.constant(targets, tf.int32))
    np.testing.assert_allclose(explainer.channel_weights(batch), weights, **TIGHT)
    expected = np.maximum(np.einsum("nhwk,nk->nhw", acts, weights), 0.0)
    assert expected.max() > 0
    np.testing.assert_allclose(explainer(images, targets), expected, **TIGHT)


# --------------------------------------------------------------------------- the automatic CAM layer
def _head_variants():
    """Tiny models whose heads fooled "the last 4-D layer": (model, the layer Grad-CAM must explain)."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 3))
    features = keras.layers.Conv2D(6, 3, strides=2, padding="same", activation="relu", name="last")(
        keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="first")(inputs))  # 8x8
    # MobileNet: pooling with keepdims, then a 1x1 classifier convolution and a reshape
    x = keras.layers.GlobalAveragePooling2D(keepdims=True)(features)
    x = keras.layers.Dropout(0.1)(x)
    x = keras.layers.Conv2D(5, 1, name="classifier")(x)
    x = keras.layers.Activation("softmax")(keras.layers.Reshape((5,))(x))
    mobilenet_like = keras.Model(inputs, x, name="mobilenet_like")
    # an old ResNet: AveragePooling2D over the whole map, dropout, Flatten
    x = keras.layers.Flatten()(keras.layers.Dropout(0.1)(keras.layers.AveragePooling2D(8)(features)))
    avgpool_head = keras.Model(inputs, keras.layers.Dense(5)(x), name="avgpool_head")
    # squeeze-and-excitation inside the body (a global pooling that is not the head)
    se = keras.layers.Reshape((1, 1, 4))(keras.layers.GlobalAveragePooling2D()(features[..., :4]))
    x = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="after_se")(
        keras.layers.Multiply()([keras.layers.Conv2D(6, 1)(se), features]))
    se_body = keras.Model(inputs, keras.layers.Dense(5)(keras.layers.GlobalMaxPooling2D()(x)), name="se_body")
    return [(mobilenet_like, "last"), (avgpool_head, "last"), (se_body, "after_se")]


def test_the_automatic_layer_is_the_last_spatial_layer_before_the_head():
    for model, expected in _head_variants():
        models.randomize_biases_and_bn(model, 1, scale=0.5)
        assert surgery.default_cam_layer(model).path == expected, model.name
        assert tfxai.GradCAM(model).layer == expected
        explainer = tfxai.EigenCAM(model)
        assert explainer.layer == expected and explainer.layer_shape[1:3] == (8, 8)
        maps = explainer(_images(2)).numpy()
        assert (maps.reshape(2, -1).max(axis=1) > maps.reshape(2, -1).min(axis=1)).all(), model.name


def _one_by_one_model(input_shape=(4, 4, 3)):
    """4x4 input -> 'spatial' 2x2 -> MaxPooling -> 1x1 -> 'deepest' 1x1 conv -> GAP -> Dense."""
    inputs = keras.Input(input_shape)
    x = keras.layers.Conv2D(4, 3, activation="relu", name="spatial")(inputs)
    x = keras.layers.MaxPooling2D(name="pool")(x)
    x = keras.layers.Conv2D(4, 1, activation="relu", name="deepest")(x)
    outputs = keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(x))
    return keras.Model(inputs, outputs, name="tiny")


def test_a_1x1_cam_layer_is_refused_with_the_layer_and_the_input_size():
    model = _one_by_one_model()
    assert surgery.default_cam_layer(model).path == "deepest"
    for cls in ALL_CAMS:
        with pytest.raises(UnsupportedModelError, match=r"layer 'deepest': its output is 1x1 for 4x4 inputs.*"
                                                         r"larger inputs.*`layer=`.*'spatial' \(2x2") as caught:
            cls(model)
        assert caught.value.layers == ["deepest"]
    with pytest.raises(UnsupportedModelError, match="layer 'pool'"):
        tfxai.LayerCAM(model, "pool")
    assert tfxai.GradCAM(model, "spatial").layer_shape[1:3] == (2, 2)
    # open input size: refused at call time for images that make the layer 1x1
    explainer = tfxai.GradCAM(_one_by_one_model((None, None, 3)))
    with pytest.raises(InvalidInputError, match=r"layer 'deepest': its output is 1x1 for 4x4 inputs"):
        explainer(_images(1, size=4))
    assert explainer(_images(1, size=8)).shape == (1, 8, 8)


APPLICATION_LAYERS = [
    ("MobileNet", 96, "conv_pw_13_relu", (3, 3)),  # not the 1x1 `conv_preds` after the pooling
    ("MobileNetV3Small", 96, "activation_17", (3, 3)),  # not `conv_2`/`logits` (1x1) after the pooling
    ("InceptionV3", 299, "mixed10", (8, 8)),
]


@pytest.mark.parametrize("name, size, layer, grid", APPLICATION_LAYERS, ids=[a[0] for a in APPLICATION_LAYERS])
def test_automatic_layer_of_keras_applications(name, size, layer, grid):
    model = getattr(keras.applications, name)(weights=None, input_shape=(size, size, 3), classes=10)
    info = surgery.default_cam_layer(model)
    assert info.path == layer and info.output_shape[1:3] == grid


def test_inception_v3_at_75_pixels_is_refused_naming_mixed10_and_the_size():
    model = keras.applications.InceptionV3(weights=None, input_shape=(75, 75, 3), classes=10)
    assert surgery.default_cam_layer(model).path == "mixed10"
    with pytest.raises(UnsupportedModelError, match=r"layer 'mixed10': its output is 1x1 for 75x75 inputs.*"
                                                     r"larger inputs.*`layer=`.*'mixed7' \(3x3"):
        tfxai.GradCAM(model)


# --------------------------------------------------------------------------- degenerate maps
def _gap_model(kernel_scale=1.0, bias=0.0):
    """conv 'feat' (ReLU) -> GAP -> Dense(3), with the conv's kernel scaled and its biases set."""
    model = _gap_cnn()
    feat = model.get_layer("feat")
    kernel, _ = feat.get_weights()
    feat.set_weights([kernel * kernel_scale, np.full(kernel.shape[-1], bias, kernel.dtype)])
    return model


def test_all_zero_and_constant_maps_warn_with_the_method_images_and_cause():
    images = _images(3, size=12)
    dead = _gap_model(bias=-1e3)  # every ReLU of 'feat' is dead: A = 0, gradient 0
    with pytest.warns(DegenerateMapWarning, match=r"^Grad-CAM map all-zero for images \[0, 1, 2\] \(of 3\).*'feat'.*"
                                                  r"gradient.*zero.*dead ReLUs"):
        tfxai.GradCAM(dead, "feat")(images, 0)
    with pytest.warns(DegenerateMapWarning, match=r"^Vanilla Gradient map all-zero for images \[0, 1, 2\].*dead ReLUs"):
        tfxai.VanillaGradient(dead)(images, 0)
    # zero kernel, positive biases: A_k = b everywhere, so sum_k w_k A_k is the same at every position
    flat = _gap_model(kernel_scale=0.0, bias=0.5)
    target = int(np.argmax(flat.get_layer("dense").get_weights()[0].sum(axis=0)))  # w . b > 0: a non-zero map
    with pytest.warns(DegenerateMapWarning, match=r"^Grad-CAM map constant for images \[0, 1, 2\].*same at every"):
        maps = tfxai.GradCAM(flat, "feat")(images, target).numpy()
    assert maps.min() == maps.max() > 0
    # a live model warns about nothing
    with warnings.catch_warnings():
        warnings.simplefilter("error", DegenerateMapWarning)
        tfxai.EigenCAM(_gap_model(), "feat")(images, [0, 1, 2])
        tfxai.VanillaGradient(_gap_model())(images, [0, 1, 2])
