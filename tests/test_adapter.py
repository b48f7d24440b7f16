"""The model adapter: live weights, output kinds, input range and dtype, for every registered method."""

from __future__ import annotations

import re
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfxai
from tests import models
from tests.conftest import assert_unchanged, weights_snapshot
from tfxai import _registry
from tfxai.errors import InputRangeWarning


def build(name, model):
    """Every registered method with its quick command-line settings (seeded); every channel for Score-CAM."""
    return _registry.build(name, model, quick=True, **({"num_channels": None} if name == "scorecam" else {}))


def small_images(n=4, size=16, seed=1):
    return np.random.default_rng(seed).uniform(size=(n, size, size, 3)).astype("float32")


def logits_twin(model):
    """The same architecture ending in logits, with the model's current weights (a fresh model)."""
    twin = models.small_cnn((16, 16, 3), num_classes=5, softmax=False, seed=99)
    twin.set_weights(model.get_weights())
    return twin


@pytest.fixture(scope="module")
def trained_pair():
    """(explainers built before training, the model after one epoch of training, images)."""
    keras.utils.clear_session()
    model = models.small_cnn((16, 16, 3), num_classes=5, softmax=True, seed=3)
    images = small_images()
    before = {name: build(name, model) for name in _registry.METHODS}
    for explainer in before.values():
        np.asarray(explainer(images, [0, 1, 2, 3]))  # explained once (traced, cached)
    rng = np.random.default_rng(0)
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss="sparse_categorical_crossentropy")
    model.fit(rng.uniform(size=(64, 16, 16, 3)).astype("float32"), rng.integers(0, 5, 64), epochs=1, verbose=0)
    return before, model, images


@pytest.mark.parametrize("name", list(_registry.METHODS))
def test_a_model_trained_after_explaining_is_explained_with_its_new_weights(name, trained_pair):
    before, model, images = trained_pair
    targets = [0, 1, 2, 3]
    fresh = build(name, logits_twin(model))(images, targets).numpy()
    again = before[name](images, targets).numpy()
    np.testing.assert_allclose(again, fresh, rtol=2e-4, atol=1e-6 * np.abs(fresh).max())


def test_set_weights_and_assign_change_the_explanation():
    model = models.small_cnn((16, 16, 3), num_classes=3, softmax=True, seed=5)
    explainer = tfxai.VanillaGradient(model)
    images = small_images(4)
    first = explainer.predict(images)
    head = model.get_layer("head")
    kernel, bias = head.get_weights()
    bias[:] = -100.0
    bias[2] = 100.0
    head.set_weights([kernel, bias])
    np.testing.assert_array_equal(explainer.predict(images), model.predict(images, verbose=0).argmax(-1))
    assert list(explainer.predict(images)) == [2, 2, 2, 2] and list(first) != [2, 2, 2, 2]
    head.bias.assign(np.array([100.0, -100.0, -100.0], "float32"))
    assert list(explainer.predict(images)) == [0, 0, 0, 0]


# --------------------------------------------------------------------------- binary models
def binary_models(seed=0):
    """(sigmoid model, two-logit model [-z, z], two-logit softmax model [-z/2, z/2]) with the same trunk."""
    keras.utils.set_random_seed(seed)

    def trunk():
        inputs = keras.Input((16, 16, 3))
        x = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="conv1")(inputs)
        x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv2")(x)
        return inputs, keras.layers.Flatten()(keras.layers.MaxPooling2D()(x))

    inputs, x = trunk()
    sigmoid = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid", name="head")(x))
    models.randomize_biases_and_bn(sigmoid, seed=seed, scale=0.3)
    twins = []
    for factor, activation in ((1.0, None), (0.5, "softmax")):
        inputs, x = trunk()
        twin = keras.Model(inputs, keras.layers.Dense(2, activation=activation, name="head")(x))
        weights = sigmoid.get_weights()
        kernel, bias = weights[-2], weights[-1]
        twin.set_weights(weights[:-2] + [factor * np.concatenate([-kernel, kernel], 1), factor * np.concatenate([-bias, bias])])
        twins.append(twin)
    return sigmoid, twins[0], twins[1]


@pytest.fixture(scope="module")
def binary():
    return binary_models()


def test_binary_adapter_reads_one_sigmoid_unit_as_two_classes(binary):
    sigmoid, logits, _ = binary
    adapter = tfxai.adapt(sigmoid)
    assert adapter.kind == "binary" and adapter.num_classes == 2
    images = small_images()
    np.testing.assert_allclose(adapter.logits(images).numpy(), logits(images).numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(adapter.probabilities(adapter.logits(images)).numpy()[:, 1],
                               sigmoid(images).numpy()[:, 0], rtol=1e-5)


@pytest.mark.parametrize("name", list(_registry.METHODS))
def test_binary_sigmoid_models_match_a_hand_built_two_logit_model(name, binary):
    sigmoid, logits, halves = binary
    images = small_images()
    explainer = build(name, sigmoid)
    # probability-based methods see softmax([-z/2, z/2]) = sigmoid(+-z); logit-based ones see [-z, z]
    uses_probability = explainer.output == "probability" or name == "scorecam"
    twin = halves if uses_probability else logits
    for targets in ([0, 1, 0, 1], [1, 1, 1, 1]):
        ours = explainer(images, targets).numpy()
        reference = build(name, twin)(images, targets).numpy()
        assert np.ptp(ours) > 0 or name == "eigencam"
        np.testing.assert_allclose(ours, reference, rtol=2e-4, atol=1e-6 * max(np.abs(reference).max(), 1e-12))


def test_binary_metrics_match_the_two_logit_model(binary):
    sigmoid, _, halves = binary
    images = small_images()
    maps = tfxai.GradCAM(sigmoid)(images, [1, 0, 1, 0])
    for metric in (tfxai.metrics.deletion, tfxai.metrics.insertion):
        ours = metric(sigmoid, images, maps, [1, 0, 1, 0], num_steps=8)
        reference = metric(halves, images, maps, [1, 0, 1, 0], num_steps=8)
        np.testing.assert_allclose(ours.scores, reference.scores, rtol=1e-5, atol=1e-7)
        assert not np.allclose(ours.auc, 1.0)  # the old bug: softmax of one unit is always 1
    drop = tfxai.metrics.average_drop(sigmoid, images, maps, [1, 0, 1, 0])
    np.testing.assert_allclose(drop.value, tfxai.metrics.average_drop(halves, images, maps, [1, 0, 1, 0]).value, rtol=1e-5)
    decomposition = tfxai.decompose(sigmoid)(images, [0, 1, 0, 1])
    np.testing.assert_allclose(decomposition.total().numpy(), decomposition.logits.numpy(), rtol=1e-4, atol=1e-5)


# --------------------------------------------------------------------------- input space and dtype
def rescaling_model():
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1)(inputs)
    x = keras.layers.Conv2D(4, 3, activation="relu")(x)
    outputs = keras.layers.Dense(3, activation="softmax")(keras.layers.GlobalAveragePooling2D()(x))
    return keras.Model(inputs, outputs)


def test_a_leading_rescaling_means_raw_pixels_everywhere():
    model = rescaling_model()
    adapter = tfxai.adapt(model)
    assert adapter.input_range == (0.0, 255.0) and adapter.range_source == "preprocessing layer"
    images = np.random.default_rng(0).uniform(0, 255, (2, 16, 16, 3)).astype("float32")
    ig = tfxai.IntegratedGradients(model, baseline="white", num_steps=4)
    white = ig.baselines(tf.constant(images), tf.constant([0, 0]))
    assert float(tf.reduce_min(white)) == 255.0
    adversarial = tfxai.fgsm(model, images, epsilon=300.0).numpy()
    assert adversarial.min() >= 0.0 and adversarial.max() == 255.0 and np.ptp(adversarial) == 255.0
    assert tfxai.fgsm(model, images, epsilon=300.0, clip=None).numpy().max() > 255.0


def test_images_far_outside_the_range_warn_and_name_it():
    model = rescaling_model()
    with pytest.warns(InputRangeWarning, match=r"scaled twice"):
        tfxai.GradCAM(model)(np.random.default_rng(0).uniform(0, 1, (2, 16, 16, 3)))
    plain = models.small_cnn((16, 16, 3), num_classes=3)
    with pytest.warns(InputRangeWarning, match=r"\(0\.0, 1\.0\).*tfxai.adapt"):
        tfxai.GradCAM(plain)(np.full((1, 16, 16, 3), 200.0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tfxai.GradCAM(tfxai.adapt(plain, input_range=(0, 255)))(np.full((1, 16, 16, 3), 200.0))


def test_uint8_inputs_work_and_equal_float_inputs():
    layers = [keras.layers.Rescaling(1 / 255.0), keras.layers.Conv2D(4, 3, activation="relu", name="conv"),
              keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3, activation="softmax")]

    def chain(inputs):
        x = inputs
        for layer in layers:
            x = layer(x)
        return keras.Model(inputs, x)

    model = chain(keras.Input((16, 16, 3), dtype="uint8"))
    twin = chain(keras.Input((16, 16, 3), dtype="float32"))  # the same layers (same weights), float32 input
    models.randomize_biases_and_bn(model, seed=4)
    images = np.random.default_rng(0).integers(0, 256, (2, 16, 16, 3)).astype("uint8")
    adapter = tfxai.adapt(model)
    assert adapter.dtype == tf.float32 and adapter.input_range == (0.0, 255.0)
    # The randomised Rescaling offset makes the float twin's range unreadable: give it, as a user would.
    twin_adapter = tfxai.adapt(twin, input_range=(0, 255))
    for name in _registry.METHODS:
        maps = build(name, model)(images, [0, 1]).numpy()
        reference = build(name, twin_adapter)(images.astype("float32"), [0, 1]).numpy()
        assert maps.shape == (2, 16, 16) and maps.dtype == np.float32, name
        assert np.abs(reference).max() > 0, name
        np.testing.assert_allclose(maps, reference, rtol=1e-4, atol=1e-5 * np.abs(reference).max(), err_msg=name)


def test_mixed_float16_models_are_explained_in_float32():
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        model = models.small_cnn((16, 16, 3), num_classes=3, softmax=True, seed=2)
    finally:
        keras.config.set_dtype_policy(previous)
    reference_model = models.small_cnn((16, 16, 3), num_classes=3, softmax=True, seed=2)  # float32 twin
    reference_model.set_weights(model.get_weights())
    images = small_images(2)
    for name in _registry.METHODS:
        maps = build(name, model)(images, [0, 1]).numpy()
        reference = build(name, reference_model)(images, [0, 1]).numpy()
        assert maps.dtype == np.float32 and np.all(np.isfinite(maps)), name
        # float16 arithmetic (3 significant digits, ReLU masks flip near 0): the float32 model's maps up to
        # its rounding; measured relative L2 errors: <= 0.003 for CAMs, RISE and Occlusion, <= 0.12 for pixel
        # gradients; explaining another class is off by 0.55 (Vanilla), 0.6 (IG), 1.0 (Grad-CAM).
        norm = np.linalg.norm(reference.reshape(2, -1), axis=1)
        assert np.all(norm > 0), name
        error = np.linalg.norm((maps - reference).reshape(2, -1), axis=1) / norm
        assert error.max() < 0.2, (name, error)


def test_dynamic_size_models_work_with_score_cam_and_layer_resolution_maps():
    inputs = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv")(inputs)
    x = keras.layers.MaxPooling2D()(x)
    outputs = keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(x))
    model = keras.Model(inputs, outputs)
    for size in (16, 24):
        images = np.random.default_rng(0).uniform(size=(2, size, size, 3)).astype("float32")
        assert tfxai.ScoreCAM(model)(images).shape == (2, size, size)
        assert tfxai.GradCAM(model, upsample=False)(images).shape == (2, size // 2, size // 2)


def test_logits_layer_points_at_the_logits_of_a_lambda_softmax():
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inputs)
    logits = keras.layers.Dense(3, name="logits")(keras.layers.GlobalAveragePooling2D()(x))
    outputs = keras.layers.Lambda(lambda t: keras.ops.softmax(t), name="probabilities")(logits)
    model = keras.Model(inputs, outputs)
    with pytest.raises(ValueError, match="'probabilities'.*logits_layer"):
        tfxai.GradCAM(model)
    adapter = tfxai.adapt(model, logits_layer="logits")
    reference = keras.Model(inputs, logits)
    images = small_images(2)
    np.testing.assert_allclose(tfxai.GradCAM(adapter)(images, [0, 1]), tfxai.GradCAM(reference)(images, [0, 1]), rtol=1e-5)


def test_targets_by_class_name():
    model = models.small_cnn((16, 16, 3), num_classes=3)
    adapter = tfxai.adapt(model, class_names=["cat", "dog", "tiger cat"])
    images = small_images(2)
    np.testing.assert_allclose(tfxai.GradCAM(adapter)(images, ["dog", "tiger_cat"]), tfxai.GradCAM(model)(images, [1, 2]))
    np.testing.assert_allclose(tfxai.GradCAM(adapter)(images, "cat"), tfxai.GradCAM(model)(images, 0))


def test_huge_num_steps_builds_nothing_eagerly():
    model = models.small_cnn((16, 16, 3), num_classes=3)
    ig = tfxai.IntegratedGradients(model, num_steps=10**9)
    assert ig.num_steps == 10**9  # no step tables: construction is instant and allocates nothing


def test_adapter_is_cached_per_model_and_dies_with_it():
    import gc
    import weakref

    model = models.small_cnn((16, 16, 3), num_classes=3, softmax=True)
    assert tfxai.adapt(model) is tfxai.adapt(model)
    tfxai.metrics.deletion(model, small_images(2), np.ones((2, 16, 16)), num_steps=4)
    ref = weakref.ref(model)
    snapshot = weights_snapshot(model)
    assert_unchanged(model, snapshot)
    del model
    gc.collect()
    assert ref() is None


# ------------------------------------------------------------------ graph (issue 16): reading the model
def _features_model(head_layers, dtype_policy=None):
    """Conv -> GAP -> Dense(3) features, then `head_layers` applied in order; returns (model, dense, features)."""
    previous = keras.config.dtype_policy()
    if dtype_policy:
        keras.config.set_dtype_policy(dtype_policy)
    try:
        inputs = keras.Input((16, 16, 3))
        x = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inputs)
        features = keras.layers.GlobalAveragePooling2D(name="gap")(x)
        layers = [layer() for layer in head_layers]
        x = features
        for layer in layers:
            x = layer(x)
    finally:
        keras.config.set_dtype_policy(previous)
    model = keras.Model(inputs, x)
    models.randomize_biases_and_bn(model, seed=4, scale=1.0)
    return model, layers[0], keras.Model(inputs, features)


SOFTMAX_THEN_CAST = {
    "fused-softmax-then-linear-float32": [
        lambda: keras.layers.Dense(3, activation="softmax", name="dense"),
        lambda: keras.layers.Activation("linear", dtype="float32", name="cast"),
    ],
    "activation-softmax-then-linear-float32": [
        lambda: keras.layers.Dense(3, name="dense"),
        lambda: keras.layers.Activation("softmax", name="softmax"),
        lambda: keras.layers.Activation("linear", dtype="float32", name="cast"),
    ],
    "softmax-then-identity-and-dropout": [
        lambda: keras.layers.Dense(3, activation="softmax", name="dense"),
        lambda: keras.layers.Identity(name="identity"),
        lambda: keras.layers.Dropout(0.3, name="drop"),
    ],
}


@pytest.mark.parametrize("policy", [None, "mixed_float16"])
@pytest.mark.parametrize("pattern", list(SOFTMAX_THEN_CAST))
def test_a_softmax_followed_by_a_linear_cast_is_stripped(pattern, policy):
    """was: read as logits, the probabilities explained as if they were logits (the mixed-precision guide's pattern)."""
    model, dense, features = _features_model(SOFTMAX_THEN_CAST[pattern], policy)
    snapshot = weights_snapshot(model)
    images = small_images(4)
    adapter = tfxai.adapt(model)
    assert adapter.kind == "softmax" and adapter.num_classes == 3
    # independent: the Dense layer's pre-activation from its kernel and bias, in float64
    expected = features(images).numpy().astype(np.float64) @ dense.kernel.numpy().astype(np.float64) + dense.bias.numpy()
    logits = adapter.logits(images).numpy()
    tolerance = 1e-2 if policy else 1e-5
    np.testing.assert_allclose(logits, expected, rtol=tolerance, atol=tolerance)
    assert not np.allclose(logits.sum(-1), 1.0, atol=1e-2)  # not the probabilities
    np.testing.assert_allclose(adapter.probabilities(logits), model(images).numpy(), rtol=tolerance, atol=tolerance)
    assert_unchanged(model, snapshot)


def _preprocessed(layer):
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(layer(inputs))
    return keras.Model(inputs, keras.layers.Dense(3, name="head")(keras.layers.GlobalAveragePooling2D()(x)))


READABLE_RANGES = {
    "rescaling-1/255": (lambda: keras.layers.Rescaling(1 / 255.0), (0.0, 255.0)),
    "rescaling-1/127.5-offset-1": (lambda: keras.layers.Rescaling(1 / 127.5, offset=-1.0), (0.0, 255.0)),
    "rescaling-1/128-offset-127/128": (lambda: keras.layers.Rescaling(1 / 128, offset=-127 / 128), (0.0, 255.0)),
    "rescaling-2-offset-1": (lambda: keras.layers.Rescaling(2.0, offset=-1.0), (0.0, 1.0)),
    "normalization-unit-data": (lambda: keras.layers.Normalization(mean=0.5, variance=0.25), (0.0, 1.0)),
    "normalization-imagenet-unit": (
        lambda: keras.layers.Normalization(mean=[0.485, 0.456, 0.406], variance=[0.229**2, 0.224**2, 0.225**2]),
        (0.0, 1.0),
    ),
    "normalization-imagenet-pixels": (
        lambda: keras.layers.Normalization(mean=[123.7, 116.3, 103.5], variance=[58.4**2, 57.1**2, 57.4**2]),
        (0.0, 255.0),
    ),
}


@pytest.mark.parametrize("name", list(READABLE_RANGES))
def test_the_input_range_is_read_from_the_preprocessing_layer(name):
    """was: every leading Rescaling/Normalization read as raw pixels in [0, 255]."""
    build, expected = READABLE_RANGES[name]
    model = _preprocessed(build())
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # readable: no warning, and none on images in the range
        adapter = tfxai.adapt(model)
        assert adapter.input_range == expected and adapter.range_source == "preprocessing layer"
        images = np.random.default_rng(0).uniform(*expected, (2, 16, 16, 3)).astype("float32")
        tfxai.GradCAM(model)(images)
        ig = tfxai.IntegratedGradients(model, baseline="white", num_steps=4)
        white = ig.baselines(tf.constant(images), tf.constant([0, 0])).numpy()
    assert np.all(white == expected[1])


def test_a_unit_range_normalization_model_gets_no_false_scaled_twice_warning():
    """was: Normalization(mean=0.5, variance=0.25) fed [0, 1] images: range 255, white baseline 255, 'scaled twice?'."""
    model = _preprocessed(keras.layers.Normalization(mean=0.5, variance=0.25))
    images = np.random.default_rng(1).uniform(0, 1, (2, 16, 16, 3)).astype("float32")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tfxai.SmoothGrad(model, num_samples=2)(images)
    assert tfxai.adapt(model).input_range == (0.0, 1.0)


@pytest.mark.parametrize(
    "layer, detail",
    [
        (lambda: keras.layers.Rescaling(0.5), r"scale=0\.5"),
        (lambda: keras.layers.Normalization(mean=0.0, variance=1.0), r"mean=\[0\.0.*variance=\[1\.0"),
        (lambda: keras.layers.Normalization(mean=4.0, variance=9.0), r"mean=\[4\.0"),
    ],
)
def test_an_unreadable_preprocessing_layer_warns_once_and_input_range_silences_it(layer, detail):
    model = _preprocessed(layer())
    images = np.random.default_rng(2).uniform(0, 1, (2, 16, 16, 3)).astype("float32")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        adapter = tfxai.adapt(model)
        tfxai.GradCAM(model)(images)
        tfxai.VanillaGradient(model)(images)
        tfxai.adapt(model, class_names=["a", "b", "c"])  # another adapter of the same model: no second warning
    messages = [str(w.message) for w in caught if issubclass(w.category, InputRangeWarning)]
    assert len(messages) == 1, messages
    assert re.search(rf"{layer().__class__.__name__} layer .*{detail}.*input_range=", messages[0])
    assert adapter.input_range == (0.0, 1.0) and adapter.range_source == "assumed"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        given = tfxai.adapt(model, input_range=(0, 1))
        tfxai.GradCAM(given)(images)
    assert given.range_source == "given"


def test_the_bundled_model_reads_raw_pixels():
    """EfficientNet-Lite0 starts with Rescaling(1/128, offset=-127/128): pixels in [0, 255]."""
    adapter = tfxai.adapt(tfxai.models.efficientnet_lite0())
    assert adapter.input_range == (0.0, 255.0) and adapter.range_source == "preprocessing layer"


def test_the_leading_layer_is_found_inside_a_nested_backbone():
    inner_in = keras.Input((16, 16, 3))
    inner = keras.Model(inner_in, keras.layers.Conv2D(4, 3)(keras.layers.Rescaling(1 / 127.5, offset=-1)(inner_in)))
    inputs = keras.Input((16, 16, 3))
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(inner(inputs))))
    assert tfxai.adapt(model).input_range == (0.0, 255.0)
