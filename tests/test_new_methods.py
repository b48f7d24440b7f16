"""Issue 13 methods: LayerCAM, HiResCAM, Guided Backprop, Guided Grad-CAM, RISE, Occlusion, NoiseTunnel, ROAD.

Each method matches a float64 reference written from its paper
(tests/reference/new_methods.py) to 1e-9, leaves the user's model unchanged,
and the random ones are seeded, chunked (batch_size 1 == 64) and reproducible.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfxai
from tfxai import _registry
from tfxai.adapter import adapt
from tfxai.errors import InvalidInputError, InvalidTypeError
from tfxai.explainers.guided import GuidedBackprop, GuidedGradCAM
from tfxai.explainers.layercam import HiResCAM, LayerCAM
from tfxai.explainers.noise import NoiseTunnel, SquareGrad, VarGrad
from tfxai.explainers.perturbation import RISE, Occlusion, rise_grids
from tfxai.metrics.road import linear_imputation, road
from tests import models
from tests.conftest import assert_unchanged, weights_snapshot
from tests.reference import cam as cam_ref
from tests.reference import new_methods as ref

TIGHT = dict(rtol=1e-9, atol=1e-12)


def _images(n, size=16, seed=0, dtype="float64", high=1.0):
    return (high * np.random.default_rng(seed).uniform(0, 1, size=(n, size, size, 3))).astype(dtype)


# ------------------------------------------------------------------------------------------- registry
def test_registry_entries():
    expected = {
        "layercam": (LayerCAM, "LayerCAM", False), "hirescam": (HiResCAM, "HiResCAM", False),
        "guidedbackprop": (GuidedBackprop, "Guided Backprop", True),
        "guidedgradcam": (GuidedGradCAM, "Guided Grad-CAM", True),
        "rise": (RISE, "RISE", False), "occlusion": (Occlusion, "Occlusion", True),
        "squaregrad": (SquareGrad, "SquareGrad", False), "vargrad": (VarGrad, "VarGrad", False),
    }
    for name, (cls, title, signed) in expected.items():
        assert _registry.METHODS[name] is cls and cls.title == title and cls.signed is signed
    assert RISE.slow and Occlusion.slow and not LayerCAM.slow
    assert _registry.lookup("Guided-Backprop") == "guidedbackprop" and _registry.lookup("gbp") == "guidedbackprop"


# --------------------------------------------------------------------------------- LayerCAM, HiResCAM
@pytest.mark.parametrize("method, reference", [(LayerCAM, ref.layer_cam), (HiResCAM, ref.hires_cam)],
                         ids=["layercam", "hirescam"])
def test_elementwise_cams_match_float64_reference(cnn64, method, reference):
    snapshot = weights_snapshot(cnn64)
    images = _images(3)
    targets = np.array([0, 3, 4])
    acts, grads, _ = cam_ref.activations_and_gradients(cnn64, "pool", images, targets)
    expected = reference(acts, grads)
    assert expected.max() > 0 and (grads < 0).any()
    maps = method(cnn64, "pool", batch_size=2)(images, targets).numpy()
    assert maps.dtype == np.float64 and maps.shape == (3, 16, 16)
    np.testing.assert_allclose(maps, cam_ref.upsample(expected, (16, 16)), **TIGHT)
    assert_unchanged(cnn64, snapshot)


def test_layercam_and_hirescam_differ_where_gradients_are_negative(cnn64):
    images, targets = _images(2), np.array([1, 2])
    layer = LayerCAM(cnn64, "pool")(images, targets).numpy()
    hires = HiResCAM(cnn64, "pool")(images, targets).numpy()
    assert np.all(layer >= hires - 1e-12) and np.abs(layer - hires).max() > 1e-6


@pytest.mark.filterwarnings("ignore::tfxai.errors.DegenerateMapWarning")  # both maps of image 0 are empty (equal)
def test_hirescam_equals_gradcam_before_global_average_pooling(float64):
    # Draelos & Carin: with GAP + Dense after the layer, d logit / dA is constant over positions.
    keras.utils.set_random_seed(3)
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = models.randomize_biases_and_bn(keras.Model(inputs, keras.layers.Dense(3)(x)), 3)
    images, targets = _images(2, size=8), np.array([0, 2])
    np.testing.assert_allclose(HiResCAM(model, "conv")(images, targets), tfxai.GradCAM(model, "conv")(images, targets), **TIGHT)


# ------------------------------------------------------------------------------------- Guided Backprop
def relu_forms_model(softmax=False, seed=0):
    """Every ReLU form: fused relu (Conv, Dense), ReLU(max_value=6), Activation('relu6'), Activation('relu')."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv1")(inputs)
    x = keras.layers.Conv2D(5, 3, padding="same", name="conv2")(x)
    x = keras.layers.ReLU(max_value=6.0, name="relu6_layer")(x)
    x = keras.layers.MaxPooling2D(name="pool")(x)
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv3")(x)
    x = keras.layers.Activation("relu6", name="relu6_activation")(x)
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv4")(x)
    x = keras.layers.Activation("relu", name="relu_activation")(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(6, activation="relu", name="dense1")(x)
    outputs = keras.layers.Dense(3, activation="softmax" if softmax else None, name="head")(x)
    model = keras.Model(inputs, outputs, name="relu_forms")
    models.randomize_biases_and_bn(model, seed, scale=0.5)
    conv2 = model.get_layer("conv2")
    conv2.kernel.assign(conv2.kernel * 6.0)  # pushes some ReLU6 inputs above 6
    return model


def relu_forms_stages(model):
    w = {name: model.get_layer(name).get_weights() for name in ("conv1", "conv2", "conv3", "conv4", "dense1", "head")}
    return [
        ("conv", *w["conv1"]), ("relu",), ("conv", *w["conv2"]), ("relu6",), ("maxpool",),
        ("conv", *w["conv3"]), ("relu6",), ("conv", *w["conv4"]), ("relu",), ("flatten",),
        ("dense", *w["dense1"]), ("relu",), ("dense", *w["head"]),
    ]


@pytest.mark.parametrize("softmax", [False, True])
def test_guided_backprop_every_relu_form_matches_hand_guided_gradient(float64, softmax):
    model = relu_forms_model(softmax=softmax)
    snapshot = weights_snapshot(model)
    images, targets = _images(3, size=8, high=2.0), np.array([0, 1, 2])
    stages = relu_forms_stages(model)
    expected, logits = ref.guided_gradient(stages, images, targets)
    # The chain is the model: same logits; ReLU6 saturates somewhere and passes elsewhere.
    probe = keras.Model(model.input, model.get_layer("conv2").output)
    u = probe(images).numpy()
    assert (u > 6).any() and ((u > 0) & (u < 6)).any()
    explainer = GuidedBackprop(adapt(model, input_range=(0.0, 2.0)), batch_size=2)
    assert set(explainer.guided_layers) == {"conv1", "relu6_layer", "relu6_activation", "relu_activation", "dense1"}
    np.testing.assert_allclose(explainer.logits(tf.constant(images)), logits, **TIGHT)
    attributions = explainer.attributions(images, targets).numpy()
    np.testing.assert_allclose(attributions, expected, **TIGHT)
    np.testing.assert_allclose(explainer(images, targets), expected.mean(axis=-1), **TIGHT)
    # and it is not the plain gradient (the hand-written plain chain gives the ordinary one)
    plain, _ = ref.guided_gradient(stages, images, targets, guided=False)
    with tf.GradientTape() as tape:
        x = tf.constant(images)
        tape.watch(x)
        score = tf.reduce_sum(explainer.logits(x) * tf.one_hot(targets, 3, dtype=tf.float64))
    np.testing.assert_allclose(tape.gradient(score, x), plain, **TIGHT)
    assert np.abs(plain - expected).max() > 1e-3
    assert_unchanged(model, snapshot)


def test_guided_backprop_through_a_nested_backbone(float64):
    inner = relu_forms_model()
    inputs = keras.Input((8, 8, 3))
    outer = keras.Model(inputs, keras.layers.Activation("softmax")(inner(inputs)), name="outer")
    images, targets = _images(2, size=8, high=2.0), np.array([2, 0])
    expected, _ = ref.guided_gradient(relu_forms_stages(inner), images, targets)
    explainer = GuidedBackprop(adapt(outer, input_range=(0.0, 2.0)))
    np.testing.assert_allclose(explainer.attributions(images, targets), expected, **TIGHT)


def test_guided_gradcam_matches_reference(cnn64):
    images, targets = _images(2), np.array([1, 4])
    w = {n: cnn64.get_layer(n).get_weights() for n in ("conv1", "conv2", "head")}
    stages = [("conv", *w["conv1"]), ("relu",), ("conv", *w["conv2"]), ("relu",), ("maxpool",), ("flatten",),
              ("dense", *w["head"])]
    guided, _ = ref.guided_gradient(stages, images, targets)
    acts, grads, _ = cam_ref.activations_and_gradients(cnn64, "pool", images, targets)
    cam = cam_ref.upsample(cam_ref.grad_cam(acts, grads), (16, 16))
    explainer = GuidedGradCAM(cnn64, "pool", batch_size=1)
    np.testing.assert_allclose(explainer.attributions(images, targets), guided * cam[..., None], **TIGHT)
    np.testing.assert_allclose(explainer(images, targets), cam * guided.mean(axis=-1), **TIGHT)


# ------------------------------------------------------------------------------------------------ RISE
@pytest.mark.parametrize("normalization", ["expectation", "masks"])
@pytest.mark.parametrize("substrate", [0.0, "low", 0.25])
def test_rise_matches_float64_reference(cnn64, normalization, substrate):
    images, targets = _images(2), np.array([2, 4])
    explainer = RISE(adapt(cnn64, input_range=(-0.5, 1.0)), num_masks=40, grid_size=5, p=0.4,
                     substrate=substrate, normalization=normalization, seed=7, batch_size=9)
    snapshot = weights_snapshot(cnn64)
    maps = explainer(images, targets).numpy()
    grids, shifts = rise_grids(tf.range(40), explainer.runtime.seed(7), (5, 5), 0.4, explainer.cells((16, 16)))
    value = -0.5 if substrate == "low" else substrate
    expected = ref.rise(cnn64, images, targets, grids.numpy(), shifts.numpy(), 0.4, value, normalization)
    np.testing.assert_allclose(maps, expected, **TIGHT)
    assert_unchanged(cnn64, snapshot)


def test_rise_masks_are_seeded_per_mask_and_shifted_within_a_cell():
    explainer = RISE(models.small_cnn(), num_masks=2000, grid_size=(4, 5), p=0.3)
    cell = explainer.cells((16, 16))
    assert cell == (4, 4)
    seed = explainer.runtime.seed(3)
    grids, shifts = rise_grids(tf.range(2000), seed, (4, 5), 0.3, cell)
    assert abs(float(tf.reduce_mean(grids)) - 0.3) < 0.01  # 40,000 Bernoulli(0.3) cells
    assert shifts.numpy().min() == 0 and shifts.numpy().max() == 3 and len(np.unique(shifts.numpy(), axis=0)) == 16
    # mask k depends only on (seed, k)
    some, some_shifts = rise_grids(tf.constant([1999, 5]), seed, (4, 5), 0.3, cell)
    np.testing.assert_array_equal(some.numpy(), grids.numpy()[[1999, 5]])
    np.testing.assert_array_equal(some_shifts.numpy(), shifts.numpy()[[1999, 5]])
    other, _ = rise_grids(tf.range(2000), explainer.runtime.seed(4), (4, 5), 0.3, cell)
    assert np.mean(other.numpy() != grids.numpy()) > 0.3
    masks = explainer.masks((16, 16), seed=3, indices=[0, 1]).numpy()
    assert masks.shape == (2, 16, 16) and masks.min() >= 0 and masks.max() <= 1


def test_rise_is_chunked_and_reproducible():
    model = models.small_cnn(softmax=True, seed=2)
    images = _images(3, dtype="float32")
    a = RISE(model, num_masks=70, seed=5, batch_size=1)(images).numpy()
    b_explainer = RISE(model, num_masks=70, seed=5, batch_size=64)
    b = b_explainer(images).numpy()
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(b_explainer(images).numpy(), b, rtol=1e-6, atol=1e-8)
    c = RISE(model, num_masks=70, seed=6, batch_size=64)(images).numpy()
    assert np.abs(c - b).max() > 1e-3
    assert b_explainer.trace_count == 1


# ------------------------------------------------------------------------------------------ Occlusion
@pytest.mark.parametrize("patch, stride, substrate, output",
                         [((4, 4), (2, 2), 0.0, "probability"), ((5, 3), (3, 2), "low", "logit"),
                          ((4, 4), (4, 4), "blur", "probability")])
def test_occlusion_matches_float64_reference(cnn64, patch, stride, substrate, output):
    images, targets = _images(2), np.array([0, 3])
    snapshot = weights_snapshot(cnn64)
    explainer = Occlusion(cnn64, patch_size=patch, stride=stride, substrate=substrate, output=output, batch_size=7)
    maps = explainer(images, targets).numpy()
    if substrate == "blur":
        value = tfxai.image_ops.gaussian_blur(tf.constant(images), 5.0, 11).numpy()
    else:
        value = 0.0 if substrate == 0.0 else explainer.adapter.input_range[0]
    expected = ref.occlusion(cnn64, images, targets, patch, stride, value, output)
    assert np.abs(expected).max() > 1e-4
    np.testing.assert_allclose(maps, expected, **TIGHT)
    assert_unchanged(cnn64, snapshot)


def test_occlusion_is_chunked_and_averages_over_covering_patches():
    model = models.small_cnn(softmax=True, seed=2)
    images = _images(2, dtype="float32")
    one = Occlusion(model, patch_size=6, stride=4, batch_size=1)(images).numpy()
    many = Occlusion(model, patch_size=6, stride=4, batch_size=64)(images).numpy()
    np.testing.assert_allclose(one, many, rtol=1e-5, atol=1e-7)
    coverage = Occlusion(model, patch_size=6, stride=4).coverage((16, 16))
    assert coverage.max() == 4 and coverage[0, 0] == 1 and (coverage[14:, :] == 0).all()  # anchors 0, 4, 8
    assert (many[:, 14:, :] == 0).all()
    assert Occlusion(model).geometry((224, 224)) == ((32, 32), (16, 16))  # defaults: side / 7, half a patch
    assert Occlusion(model, **Occlusion.quick_settings(True)).geometry((16, 20)) == ((3, 3), (3, 3))
    with pytest.raises(InvalidInputError, match="patch_size"):
        Occlusion(model, patch_size=20)(images)
    with pytest.raises(InvalidTypeError, match="substrate"):
        Occlusion(model, substrate=[0])


# -------------------------------------------------------------------------------------- noise wrapper
def _noise(explainer, shape, seed, k):
    """The wrapper's draw convention: draw k is stateless_normal(shape, [seed, k]) times sigma."""
    return np.stack([explainer.sigma * tf.random.stateless_normal(shape, [seed, j], dtype=tf.float64).numpy()
                     for j in range(k)])


@pytest.mark.parametrize("kind", ["smoothgrad", "squaregrad", "vargrad"])
def test_noise_tunnel_matches_hand_formulas(cnn64, kind):
    images, targets = _images(2), np.array([1, 3])
    adapter = adapt(cnn64, input_range=(0.0, 2.0))
    explainer = NoiseTunnel(tfxai.VanillaGradient(adapter), kind=kind, num_samples=6, noise_scale=0.1, seed=11,
                            batch_size=5)
    assert explainer.sigma == pytest.approx(0.2)
    noise = _noise(explainer, (16, 16, 3), 11, 6)
    mean, squares, variance = ref.noisy_gradient_statistics(cnn64, images, targets, noise)
    expected = {"smoothgrad": mean, "squaregrad": squares, "vargrad": variance}[kind]
    np.testing.assert_allclose(explainer.attributions(images, targets), expected, **TIGHT)
    np.testing.assert_allclose(explainer(images, targets), np.abs(expected).max(axis=-1), **TIGHT)


def test_registered_squaregrad_and_vargrad_are_noise_tunnels_over_the_vanilla_gradient(cnn64):
    images, targets = _images(2), np.array([0, 2])
    noise = _noise(NoiseTunnel(tfxai.VanillaGradient(cnn64), noise_scale=0.15), (16, 16, 3), 2, 4)
    _, squares, variance = ref.noisy_gradient_statistics(cnn64, images, targets, noise)
    square = SquareGrad(cnn64, num_samples=4, seed=2, batch_size=3)
    var = VarGrad(cnn64, num_samples=4, seed=2, batch_size=3)
    np.testing.assert_allclose(square(images, targets), squares.max(axis=-1), **TIGHT)
    np.testing.assert_allclose(var(images, targets), variance.max(axis=-1), **TIGHT)
    built = _registry.build("vargrad", cnn64, quick=True, seed=2)
    assert built.num_samples == 10 and built.kind == "vargrad" and built.seed == 2


def test_noise_tunnel_wraps_other_attribution_methods_and_refuses_cams():
    model = models.small_cnn(softmax=True, seed=1)
    images = _images(2, dtype="float32")
    for inner in (tfxai.InputXGradient(model), GuidedBackprop(model), tfxai.IntegratedGradients(model, num_steps=4)):
        one = NoiseTunnel(inner, num_samples=3, seed=1, batch_size=1)(images).numpy()
        many = NoiseTunnel(inner, num_samples=3, seed=1, batch_size=6)(images).numpy()
        np.testing.assert_allclose(one, many, rtol=1e-4, atol=1e-6)
        assert np.ptp(one) > 0
    smooth_gb = NoiseTunnel(GuidedBackprop, model=model, num_samples=3, seed=1)
    assert smooth_gb.signed and not NoiseTunnel(GuidedBackprop(model), kind="squaregrad").signed
    with pytest.raises(InvalidTypeError, match="attribution"):
        NoiseTunnel(tfxai.GradCAM(model))
    with pytest.raises(InvalidInputError, match="num_samples"):
        NoiseTunnel(tfxai.VanillaGradient(model), kind="vargrad", num_samples=1)


# ----------------------------------------------------------------------------------------------- ROAD
def test_road_imputation_solves_the_authors_linear_system(float64):
    rng = np.random.default_rng(0)
    images = rng.uniform(size=(3, 9, 11, 2))
    removed = rng.uniform(size=(3, 9, 11)) < np.array([0.2, 0.6, 0.95])[:, None, None]
    removed[2, 0, 0] = False  # at least one kept pixel
    imputed, residual = linear_imputation(tf.constant(images), tf.constant(removed), tolerance=1e-13)
    assert residual.numpy().max() < 1e-12
    for i in range(3):
        a, b, _ = ref.road_system(images[i], removed[i])
        np.testing.assert_allclose(imputed.numpy()[i], ref.linear_imputation(images[i], removed[i]), **TIGHT)
        unknowns = imputed.numpy()[i][removed[i]]
        assert np.abs(a @ unknowns - b).max() < 1e-11  # the authors' equations hold
        np.testing.assert_array_equal(imputed.numpy()[i][~removed[i]], images[i][~removed[i]])
    # each removed pixel is the weighted mean of its in-image neighbours (interior pixel: weights sum to 1)
    y, x = np.argwhere(removed[1][1:-1, 1:-1])[0] + 1
    window = imputed.numpy()[1, y - 1 : y + 2, x - 1 : x + 2]
    weights = np.array([[1, 2, 1], [2, 0, 2], [1, 2, 1]]) / 12
    np.testing.assert_allclose(imputed.numpy()[1, y, x], (weights[..., None] * window).sum((0, 1)), **TIGHT)


def test_road_multigrid_preconditioner_converges_to_the_same_solution_in_far_fewer_iterations(float64):
    import sys

    solver = sys.modules["tfxai.metrics.road"]
    rng = np.random.default_rng(1)
    images = tf.constant(rng.uniform(size=(2, 48, 40, 3)))
    yy, xx = np.mgrid[:48, :40]
    blob = np.exp(-((yy - 20) ** 2 + (xx - 25) ** 2) / 200.0)
    removed = np.stack([blob > 0.3, blob < 0.7])  # a compact hole; most of the image
    hole = tf.constant(removed[..., None], tf.float64)
    results = {pre: solver.conjugate_gradients(images, hole, tf.zeros_like(images), 1e-12, 2000, pre)
               for pre in ("multigrid", "jacobi")}
    (xm, rm, im), (xj, rj, ij) = results["multigrid"], results["jacobi"]
    assert rm.numpy().max() < 1e-11 and rj.numpy().max() < 1e-11
    np.testing.assert_allclose(xm, xj, rtol=1e-9, atol=1e-10)
    assert int(im) * 3 < int(ij)
    a, b, _ = ref.road_system(images.numpy()[1], removed[1])
    assert np.abs(a @ xm.numpy()[1][removed[1]] - b).max() < 1e-10


def test_road_curves_match_reference_without_noise(cnn64):
    images, targets = _images(2), np.array([1, 2])
    maps = np.random.default_rng(3).uniform(size=(2, 16, 16))
    maps[0, :4] = maps[0, 0, 0]  # ties broken in row-major order
    result = road(cnn64, images, maps, targets, percentages=(25, 60), noise=0.0, tolerance=1e-13, batch_size=3)
    assert result.residual < 1e-11
    for order, curve in (("morf", result.morf), ("lerf", result.lerf)):
        for j, percent in enumerate((25, 60)):
            imputed = np.stack([ref.linear_imputation(images[i], ref.removal_masks(maps[i], percent / 100, order))
                                for i in range(2)])
            probs = ref._softmax(np.asarray(cnn64(imputed), np.float64))
            np.testing.assert_allclose(curve[:, j], probs[[0, 1], targets], **TIGHT)
    np.testing.assert_allclose(result.combined, (result.lerf.mean(1) - result.morf.mean(1)) / 2, **TIGHT)


def test_road_noise_is_seeded_and_chunk_independent():
    model = models.small_cnn(softmax=True, seed=1)
    images = _images(2, dtype="float32")
    maps = np.random.default_rng(0).uniform(size=(2, 16, 16))
    a = road(model, images, maps, seed=4, batch_size=1, percentages=(30, 70))
    b = road(model, images, maps, seed=4, batch_size=64, percentages=(30, 70))
    np.testing.assert_allclose(a.morf, b.morf, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(a.lerf, b.lerf, rtol=1e-4, atol=1e-6)
    c = road(model, images, maps, seed=5, batch_size=64, percentages=(30, 70), noise=0.05)
    d = road(model, images, maps, seed=4, batch_size=64, percentages=(30, 70), noise=0.05)
    assert np.abs(c.morf - d.morf).max() > 1e-6
    with pytest.raises(InvalidInputError, match="percentages"):
        road(model, images, maps, percentages=(0, 50))


def test_road_morf_of_a_good_map_drops_faster_than_lerf(localisation):
    model, images, labels, masks = localisation
    images, labels, masks = images[:8], labels[:8], masks[:8]
    snapshot = weights_snapshot(model)
    good = masks.astype("float32") + 0.01 * np.random.default_rng(0).uniform(size=masks.shape).astype("float32")
    result = road(model, images, good, labels, percentages=(10, 20, 40))
    assert result.morf_auc.mean() < result.lerf_auc.mean() - 0.3
    assert np.mean(result.morf_auc < result.lerf_auc) >= 0.75
    assert result.combined.mean() > 0.15
    assert_unchanged(model, snapshot)


# ------------------------------------------------------------------------------------------- sanity
def test_guided_backprop_barely_changes_under_cascading_randomization(localisation):
    """Adebayo et al.: Guided Backprop is invariant to the top layers' weights, the gradient is not."""
    model, images, labels, _ = localisation
    images, labels = images[:6], labels[:6]
    kwargs = dict(layers=2, seed=0)
    guided = tfxai.metrics.cascading_randomization(model, lambda m: GuidedBackprop(m), images, labels, **kwargs)
    vanilla = tfxai.metrics.cascading_randomization(
        model, lambda m: tfxai.VanillaGradient(m, output="logit"), images, labels, **kwargs)
    # measured: Guided Backprop 0.65 / 0.64 after the top 1 / 2 layers, Vanilla Gradient 0.29 / 0.36
    guided_rho, vanilla_rho = np.nanmean(guided.spearman, axis=1), np.nanmean(vanilla.spearman, axis=1)
    assert np.all(guided_rho > 0.55)
    assert guided_rho.mean() > vanilla_rho.mean() + 0.2


def test_noise_tunnel_smoothgrad_is_tfxai_smoothgrad(cnn64):
    """Same noise draws (stateless, draw k from (seed, k)), same sigma, same statistic and channel reduction."""
    images, targets = _images(2), np.array([4, 0])
    tunnel = NoiseTunnel(tfxai.VanillaGradient(cnn64), kind="smoothgrad", num_samples=5, noise_scale=0.1, seed=3)
    smooth = tfxai.SmoothGrad(cnn64, num_samples=5, noise_scale=0.1, seed=3)
    np.testing.assert_allclose(tunnel(images, targets), smooth(images, targets), **TIGHT)
    np.testing.assert_allclose(tunnel.attributions(images, targets), smooth.attributions(images, targets), **TIGHT)
