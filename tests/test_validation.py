"""Every bad input gets a clear error naming the argument, what was received and the fix."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfxai
from tfxai import _validation
from tfxai.errors import InvalidInputError, InvalidTypeError, TfxaiError, UnsupportedModelError
from tests import models


@pytest.fixture(scope="module")
def model():
    return models.small_cnn((16, 16, 3), num_classes=5)


GOOD = np.random.default_rng(0).uniform(size=(2, 16, 16, 3)).astype("float32")


@pytest.mark.parametrize(
    "images, error, pattern",
    [
        (GOOD[0], InvalidInputError, r"one image of shape \(16, 16, 3\).*images\[None\]"),
        (GOOD[:, :, :, :, None], InvalidInputError, r"shape \(N, H, W, C\)"),
        (GOOD[:0], InvalidInputError, "empty batch"),
        (np.transpose(GOOD, (0, 3, 1, 2)), InvalidInputError, "channels-first"),
        (GOOD[:, :8], InvalidInputError, "Resize"),
        (np.where(np.arange(16)[None, :, None, None] == 3, np.nan, GOOD), InvalidInputError, "NaN or infinite"),
        (np.full((1, 16, 16, 3), np.inf), InvalidInputError, "NaN or infinite"),
        (GOOD > 0.5, InvalidTypeError, "bool"),
        (np.array([["a"]]), InvalidTypeError, "numbers"),
        ([[1, 2], [3]], InvalidTypeError, "Could not convert"),
    ],
)
def test_bad_images(model, images, error, pattern):
    with pytest.raises(error, match=pattern):
        tfxai.VanillaGradient(model)(images)


def test_integer_images_are_accepted(model):
    pixels = (GOOD * 255).astype("uint8")
    maps = tfxai.VanillaGradient(model)(pixels)
    np.testing.assert_allclose(maps, tfxai.VanillaGradient(model)(pixels.astype("float32")))


@pytest.mark.parametrize(
    "targets, error, pattern",
    [
        ([1, 2, 3], InvalidInputError, "3 entries but `images` has 2"),
        ([0, 5], InvalidInputError, r"\[0, 4\].*\[5\]"),
        (-1, InvalidInputError, "out-of-range"),
        ([1.0, 2.0], InvalidTypeError, "integer class indices"),
        (True, InvalidTypeError, "None, an int"),
        (np.eye(5)[[1, 2]], InvalidInputError, "one-hot"),
        ("cat", InvalidTypeError, "integer"),
    ],
)
def test_bad_targets(model, targets, error, pattern):
    with pytest.raises(error, match=pattern):
        tfxai.InputXGradient(model)(GOOD, targets)


@pytest.mark.parametrize("targets", [3, [3, 3], np.array([3, 3]), tf.constant([3, 3]), np.int64(3)])
def test_target_forms_agree(model, targets):
    expected = tfxai.VanillaGradient(model)(GOOD, [3, 3])
    np.testing.assert_array_equal(tfxai.VanillaGradient(model)(GOOD, targets), expected)


def test_none_targets_explain_the_predicted_class(model):
    explainer = tfxai.VanillaGradient(model)
    predicted = explainer.predict(GOOD)
    np.testing.assert_array_equal(predicted, np.argmax(model(GOOD), -1))
    np.testing.assert_array_equal(explainer(GOOD), explainer(GOOD, predicted))


def test_select_scores(model):
    adapter = tfxai.adapt(model)
    logits = tf.constant([[1.0, 2.0, 0.0], [0.5, 0.0, 3.0]])
    np.testing.assert_allclose(adapter.scores(logits, tf.constant([1, 0])), [2.0, 0.5])
    probs = adapter.scores(logits, tf.constant([1, 2]), "probability").numpy()
    np.testing.assert_allclose(probs, [np.exp(2) / (np.exp(1) + np.exp(2) + 1), np.exp(3) / (np.exp(0.5) + 1 + np.exp(3))], rtol=1e-6)


def test_bad_models_and_arguments(model):
    with pytest.raises(InvalidTypeError, match="keras.Model"):
        tfxai.VanillaGradient("model.keras")
    a, b = keras.Input((4, 4, 1)), keras.Input((4, 4, 1))
    two_inputs = keras.Model([a, b], keras.layers.Dense(2)(keras.layers.Flatten()(keras.layers.Add()([a, b]))))
    with pytest.raises(UnsupportedModelError, match="2 inputs"):
        tfxai.VanillaGradient(two_inputs)
    vector = keras.Sequential([keras.Input((8,)), keras.layers.Dense(2)])
    with pytest.raises(UnsupportedModelError, match=r"\(N, H, W, C\)"):
        tfxai.VanillaGradient(vector)
    unbuilt = keras.Sequential([keras.layers.Conv2D(2, 3), keras.layers.Flatten(), keras.layers.Dense(2)])
    with pytest.raises(UnsupportedModelError, match="no symbolic inputs.*keras.Input"):
        tfxai.VanillaGradient(unbuilt)
    with pytest.raises(InvalidInputError, match="output"):
        tfxai.VanillaGradient(model, output="logits")
    with pytest.raises(InvalidInputError, match="batch_size"):
        tfxai.VanillaGradient(model, batch_size=0)
    with pytest.raises(InvalidTypeError, match="batch_size"):
        tfxai.VanillaGradient(model, batch_size=2.5)
    with pytest.raises(InvalidInputError, match="num_samples"):
        tfxai.SmoothGrad(model, num_samples=0)
    with pytest.raises(InvalidInputError, match="noise_scale"):
        tfxai.SmoothGrad(model, noise_scale=-1)
    with pytest.raises(InvalidInputError, match="seed"):
        tfxai.SmoothGrad(model, seed=-3)


def test_errors_are_builtin_subclasses():
    assert issubclass(InvalidInputError, ValueError) and issubclass(InvalidInputError, TfxaiError)
    assert issubclass(InvalidTypeError, TypeError)
    with pytest.raises(ValueError):
        _validation.check_range((2, 1))
    with pytest.raises(TypeError):
        _validation.check_range("ab")


def test_fgsm_errors(model):
    with pytest.raises(InvalidInputError, match="targeted attack needs `targets`"):
        tfxai.fgsm(model, GOOD, epsilon=0.1, targeted=True)
    with pytest.raises(InvalidInputError, match="epsilon"):
        tfxai.fgsm(model, GOOD, epsilon=-0.1)
    with pytest.raises(InvalidInputError, match="clip"):
        tfxai.fgsm(model, GOOD, epsilon=0.1, clip=(1, 0))
    with pytest.raises(InvalidInputError, match="num_steps"):
        tfxai.iterative_fgsm(model, GOOD, epsilon=0.1, num_steps=0)


# --------------------------------------------------------------------------- edges (issue 16)
def test_channels_first_is_read_from_the_layers_not_the_input_shape():
    # channels-last with a small first axis (3 rows of 32 columns, 4 channels): accepted
    inputs = keras.Input((3, 32, 4))
    x = keras.layers.Conv2D(2, 3, padding="same", name="conv")(inputs)
    x = keras.layers.Flatten(data_format="channels_first")(x)  # a Flatten ordering is not an image layout
    wide = keras.Model(inputs, keras.layers.Dense(2)(x))
    assert _validation.check_channels_last(wide) is wide
    assert tfxai.VanillaGradient(wide)(np.ones((1, 3, 32, 4), "float32")).shape == (1, 3, 32)
    # the global setting makes every layer channels-first: refused, layers named, the fix given
    previous = keras.config.image_data_format()
    keras.config.set_image_data_format("channels_first")
    try:
        inputs = keras.Input((3, 16, 16))
        x = keras.layers.GlobalAveragePooling2D(name="gap")(keras.layers.Conv2D(4, 3, name="c1")(inputs))
        model = keras.Model(inputs, keras.layers.Dense(2)(x))
    finally:
        keras.config.set_image_data_format(previous)
    with pytest.raises(UnsupportedModelError, match=r"channels-first.*'c1', 'gap'.*set_image_data_format") as info:
        tfxai.adapt(model)
    assert info.value.layers == ["c1", "gap"]


def test_channels_last_rebuild_of_a_channels_first_model_gives_the_same_logits():
    """The fix the error gives: rebuild channels-last, copy the weights, transpose the images."""
    def build(data_format, shape):
        inputs = keras.Input(shape)
        x = keras.layers.Conv2D(4, 3, activation="relu", data_format=data_format, name="conv")(inputs)
        x = keras.layers.GlobalAveragePooling2D(data_format=data_format)(x)
        return keras.Model(inputs, keras.layers.Dense(3)(x))

    first = models.randomize_biases_and_bn(build("channels_first", (3, 16, 16)), seed=5)
    last = build("channels_last", (16, 16, 3))
    last.set_weights(first.get_weights())
    images = GOOD.transpose(0, 3, 1, 2)
    np.testing.assert_allclose(last(GOOD), first(images), rtol=1e-5, atol=1e-6)
    assert tfxai.GradCAM(last)(GOOD).shape == (2, 16, 16)


def test_datasets_and_generators_are_named_with_the_fix(model):
    dataset = tf.data.Dataset.from_tensor_slices((GOOD, np.arange(2))).batch(2)
    with pytest.raises(InvalidTypeError, match=r"received a tf.data.Dataset.*next\(iter\(ds\)\)"):
        _validation.as_images(dataset, model)
    with pytest.raises(InvalidTypeError, match=r"received a generator"):
        _validation.as_images((image for image in GOOD), model)
    with pytest.raises(InvalidTypeError, match=r"received an iterator \(map\)"):
        _validation.as_images(map(np.asarray, GOOD), model)
    # the batch the message suggests is accepted
    images, _ = next(iter(dataset))
    np.testing.assert_array_equal(_validation.as_images(images, model).numpy(), GOOD)
    # lists and tuples of images stay accepted
    assert _validation.as_images(list(GOOD), model).shape == (2, 16, 16, 3)
