"""Model surgery: layer lookup, softmax stripping and exposing layers, never touching the user's model."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfxai
from tfxai import surgery
from tfxai.errors import InvalidTypeError, LayerNotFoundError
from tests import models
from tests.conftest import assert_unchanged, weights_snapshot

X = np.random.default_rng(0).uniform(size=(3, 16, 16, 3)).astype("float32")


def backbone(name="backbone"):
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv_a")(inputs)
    x = keras.layers.Conv2D(6, 3, padding="same", name="conv_b")(x)
    x = keras.layers.ReLU(name="relu_b")(x)
    return keras.Model(inputs, x, name=name)


def two_level_nested(head_activation="softmax"):
    """outer(middle(backbone)) with a new head: an application used as a backbone, two levels deep."""
    inner = backbone()
    mid_in = keras.Input((16, 16, 3))
    middle = keras.Model(mid_in, keras.layers.MaxPooling2D(name="mid_pool")(inner(mid_in)), name="middle")
    out_in = keras.Input((16, 16, 3))
    x = keras.layers.GlobalAveragePooling2D()(middle(out_in))
    outputs = keras.layers.Dense(4, activation=head_activation, name="head")(x)
    model = keras.Model(out_in, outputs, name="outer")
    models.randomize_biases_and_bn(model, seed=3, scale=0.5)
    return model


def softmax_variants():
    inputs = keras.Input((16, 16, 3))
    features = keras.layers.Flatten()(keras.layers.Conv2D(3, 3, name="conv")(inputs))
    dense = keras.layers.Dense(5, name="dense")
    fused = keras.Model(inputs, keras.layers.Dense(5, activation="softmax", name="fused")(features))
    logits = dense(features)
    separate = keras.Model(inputs, keras.layers.Activation("softmax")(logits))
    layer = keras.Model(inputs, keras.layers.Softmax()(logits))
    sequential = keras.Sequential(
        [keras.Input((16, 16, 3)), keras.layers.Conv2D(3, 3), keras.layers.Flatten(), keras.layers.Dense(5, activation="softmax")]
    )
    return {"fused": fused, "activation": separate, "softmax_layer": layer, "sequential": sequential, "nested": two_level_nested()}


@pytest.mark.parametrize("kind", ["fused", "activation", "softmax_layer", "sequential", "nested"])
def test_logits_model_strips_the_final_softmax_on_the_live_weights(kind):
    model = softmax_variants()[kind]
    models.randomize_biases_and_bn(model, seed=1, scale=0.5)
    snapshot = weights_snapshot(model)
    probabilities = model(X).numpy()
    assert tfxai.adapt(model).kind == "softmax"
    stripped = surgery.logits_model(model)
    assert stripped is not model
    assert {id(v) for v in stripped.weights} == {id(v) for v in model.weights}  # shared variables, no copies
    logits = stripped(X).numpy()
    assert not np.allclose(logits.sum(-1), 1.0)
    np.testing.assert_allclose(tf.nn.softmax(logits).numpy(), probabilities, rtol=1e-5, atol=1e-7)
    # the user's model still ends in softmax and is unchanged
    assert_unchanged(model, snapshot)
    np.testing.assert_array_equal(model(X).numpy(), probabilities)
    # training the model changes the rebuilt graph: it reads the same variables
    last = [v for v in model.weights if v.path.endswith("bias")][-1]
    last.assign(last + 1.0)
    np.testing.assert_allclose(tf.nn.softmax(stripped(X)).numpy(), model(X).numpy(), rtol=1e-5, atol=1e-7)


def test_logits_model_returns_models_without_softmax_as_they_are():
    model = models.small_cnn((16, 16, 3))
    assert tfxai.adapt(model).kind == "logits"
    assert surgery.logits_model(model) is model


def test_find_layer_default_and_by_name_path_object():
    model = two_level_nested()
    default = surgery.find_layer(model)
    assert default.path == "middle"  # the last 4-D output: the nested model's pooled output
    assert surgery.find_layer(model, "relu_b").path == "middle/backbone/relu_b"
    assert surgery.find_layer(model, "middle/backbone/conv_a").layer.name == "conv_a"
    conv = model.get_layer("middle").get_layer("backbone").get_layer("conv_b")
    assert surgery.find_layer(model, conv).layer is conv
    sequential = softmax_variants()["sequential"]
    assert isinstance(surgery.find_layer(sequential).layer, keras.layers.Conv2D)


def test_find_layer_errors():
    model = two_level_nested()
    with pytest.raises(LayerNotFoundError, match=r"No layer named 'conv_c'.*Did you mean.*conv_a.*4-D outputs"):
        surgery.find_layer(model, "conv_c")
    with pytest.raises(LayerNotFoundError, match="not part of model"):
        surgery.find_layer(model, keras.layers.Conv2D(2, 3))
    with pytest.raises(InvalidTypeError, match="layer name or a keras.layers.Layer"):
        surgery.find_layer(model, 3)
    flat = keras.Sequential([keras.Input((8,)), keras.layers.Dense(2)])
    with pytest.raises(LayerNotFoundError, match="no layer with a 4-D output"):
        surgery.find_layer(flat)
    twins = keras.Input((16, 16, 3))
    a, b = backbone("left"), backbone("right")
    ambiguous = keras.Model(twins, keras.layers.Add()([a(twins), b(twins)]))
    with pytest.raises(LayerNotFoundError, match="ambiguous"):
        surgery.find_layer(ambiguous, "conv_a")


def test_expose_gives_layer_outputs_and_logits_in_one_pass():
    model = two_level_nested()
    snapshot = weights_snapshot(model)
    conv = surgery.find_layer(model, "conv_b").layer
    middle = model.get_layer("middle")
    exposed = surgery.expose(model, [conv, middle], final=surgery.final_layer(model))
    logits, conv_out, middle_out = exposed(X)
    inner = model.get_layer("middle").get_layer("backbone")
    reference = keras.Model(inner.inputs, inner.get_layer("conv_b").output)(X)
    np.testing.assert_allclose(conv_out, reference, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(middle_out, middle(X), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(tf.nn.softmax(logits), model(X), rtol=1e-5, atol=1e-7)
    assert_unchanged(model, snapshot)
    with tf.GradientTape() as tape:  # the exposed tensor is on the path to the logits
        logits, conv_out, _ = exposed(X)
        score = tf.reduce_sum(logits[:, 0])
    gradient = tape.gradient(score, conv_out).numpy()
    # closed form: conv_b -> ReLU -> 2x2 max pool -> mean over 8x8 -> head (logit 0, summed over images)
    u = conv_out.numpy()
    r = np.maximum(u, 0.0)
    window_max = r.reshape(len(u), 8, 2, 8, 2, 6).max(axis=(2, 4))
    winner = (r == np.repeat(np.repeat(window_max, 2, axis=1), 2, axis=2)) & (u > 0)
    expected = winner * model.get_layer("head").kernel.numpy()[:, 0] / 64.0
    assert winner.any()
    np.testing.assert_allclose(gradient, expected, rtol=1e-5, atol=1e-8)


def test_iter_layers_is_in_execution_order():
    names = [info.path for info in surgery.iter_layers(two_level_nested())]
    assert names.index("middle/backbone/conv_a") < names.index("middle/backbone/conv_b") < names.index("middle/mid_pool")
    assert names.index("middle") < names.index("head")
