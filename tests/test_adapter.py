"""The model adapter: live weights, output kinds, input range and dtype, for every registered method."""

from __future__ import annotations

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
    assert tfxai.adapt(twin).input_range == (0.0, 255.0)  # the same range from the Rescaling layer
    for name in _registry.METHODS:
        maps = build(name, model)(images, [0, 1]).numpy()
        reference = build(name, twin)(images.astype("float32"), [0, 1]).numpy()
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
