"""The one graph reader: the private Keras calls on the installed Keras, activation_kind, ModelGraph, rule tables.

`tfxai/_keras_graph.py` holds every private Keras call; each is exercised here, so
a Keras release in the range setup.cfg allows that renames one fails this file.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfxai
from tfxai import _keras_graph, surgery
from tests.conftest import assert_unchanged, weights_snapshot

X = np.random.default_rng(0).uniform(size=(3, 8, 8, 3)).astype("float32")


def nested():
    inner_in = keras.Input((8, 8, 4))
    y = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="inner_conv")(inner_in)
    inner = keras.Model(inner_in, keras.layers.BatchNormalization(name="inner_bn")(y), name="inner")
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Rescaling(1 / 255.0, name="scale")(inputs)
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv")(x)
    x = inner(x)
    x = keras.layers.Dropout(0.5, name="drop")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    x = keras.layers.Dense(3, activation="softmax", name="head")(x)
    return keras.Model(inputs, keras.layers.Activation("linear", dtype="float32", name="cast")(x), name="outer")


# ------------------------------------------------------------------ the private calls
def test_functional_graph_of_functional_sequential_and_subclassed_models():
    model = nested()
    assert _keras_graph.functional_graph(model) is model
    seq = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    graph = _keras_graph.functional_graph(seq)
    assert graph is not None and graph is not seq and isinstance(graph, keras.Model)
    unbuilt = keras.Sequential([keras.layers.Dense(2)])
    assert _keras_graph.functional_graph(unbuilt) is None and _keras_graph.is_unbuilt_sequential(unbuilt)

    class Sub(keras.Model):
        def call(self, x):
            return x

    assert _keras_graph.functional_graph(Sub()) is None and not _keras_graph.is_unbuilt_sequential(Sub())


def test_nodes_in_order_inputs_and_outputs_of_nodes():
    model = nested()
    nodes = list(_keras_graph.nodes_in_order(model))
    names = [n.operation.name for n in nodes]
    assert names == ["scale", "conv", "inner", "drop", "gap", "head", "cast"]
    conv = nodes[1]
    (source,) = _keras_graph.node_inputs(conv)
    assert source is _keras_graph.node_outputs(nodes[0])[0]
    assert _keras_graph.node_outputs(nodes[-1])[0] is model.outputs[0]


def test_run_through_graph_calls_every_operation_and_takes_training():
    model = nested()
    seen = []

    def call(op, *args, **kwargs):
        seen.append(op.name)
        return op(*args, **kwargs)

    out = _keras_graph.run_through_graph(model, tf.constant(X), call)
    np.testing.assert_allclose(out.numpy(), model(X).numpy(), rtol=1e-6)
    assert seen == ["scale", "conv", "inner", "drop", "gap", "head", "cast"]
    assert _keras_graph.takes_training(keras.layers.BatchNormalization())
    assert _keras_graph.takes_training(keras.layers.Dropout(0.5))
    assert not _keras_graph.takes_training(keras.layers.Conv2D(2, 3))


def test_replay_sets_training_false_itself():
    """A hook that forgets `training` still gets inference behaviour (BatchNormalization's moving statistics)."""
    inputs = keras.Input((4,))
    bn = keras.layers.BatchNormalization()
    model = keras.Model(inputs, keras.layers.Dropout(0.9)(bn(inputs)))
    bn.moving_mean.assign([1.0, 2.0, 3.0, 4.0])
    received = {}

    def call(layer, *args, _path="", **kwargs):
        received[layer.name] = kwargs.get("training")
        return layer(*args, **kwargs)

    x = tf.constant(np.random.default_rng(1).normal(size=(5, 4)).astype("float32"))
    out = surgery.replay(model, x, call).numpy()
    np.testing.assert_allclose(out, model(x, training=False).numpy(), rtol=1e-6)
    assert set(received.values()) == {False}


# ------------------------------------------------------------------ the activation-free view
VIEW_LAYERS = {
    "dense": (lambda: keras.layers.Dense(4, activation="relu"), (5, 7)),
    "einsum": (lambda: keras.layers.EinsumDense("ab,bc->ac", output_shape=4, bias_axes="c", activation="relu"), (5, 7)),
    "conv1d_causal": (lambda: keras.layers.Conv1D(3, 3, padding="causal", activation="relu"), (2, 8, 4)),
    "conv2d_hard_swish": (lambda: keras.layers.Conv2D(3, 3, activation="hard_swish"), (2, 8, 8, 4)),
    "depthwise_relu6": (lambda: keras.layers.DepthwiseConv2D(3, activation="relu6"), (2, 8, 8, 4)),
    "separable": (lambda: keras.layers.SeparableConv2D(3, 3, activation="relu"), (2, 8, 8, 4)),
    "conv2d_transpose": (lambda: keras.layers.Conv2DTranspose(3, 3, activation="relu"), (2, 8, 8, 4)),
}


@pytest.mark.parametrize("kind", list(VIEW_LAYERS))
def test_linear_view_is_the_pre_activation_on_the_live_variables(kind):
    build, shape = VIEW_LAYERS[kind]
    rng = np.random.default_rng(0)
    layer = build()
    x = rng.normal(size=shape).astype("float32")
    layer(x)
    for weight in layer.weights:
        weight.assign(rng.normal(size=weight.shape))
    activation = layer.activation
    view = surgery.linear_view(layer)
    z = view(x).numpy()
    # independent: the same class built without activation, given the same weights
    config = layer.get_config() | {"activation": "linear", "name": "twin"}
    twin = type(layer).from_config(config)
    twin(x)
    twin.set_weights(layer.get_weights())
    np.testing.assert_allclose(z, twin(x).numpy(), rtol=1e-5, atol=1e-5)
    assert np.any(np.abs(z - layer(x).numpy()) > 1e-3)  # the activation did something
    assert layer.activation is activation  # the layer is untouched
    assert {id(v) for v in view.weights} == {id(v) for v in layer.weights}  # shared, not copied
    for weight in layer.weights:  # training the layer changes the view
        weight.assign(weight * 2.0)
    twin.set_weights(layer.get_weights())
    np.testing.assert_allclose(view(x).numpy(), twin(x).numpy(), rtol=1e-5, atol=1e-5)
    symbolic = keras.Input(shape[1:])
    np.testing.assert_allclose(keras.Model(symbolic, view(symbolic))(x).numpy(), view(x).numpy(), rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------ the one activation classifier
@pytest.mark.parametrize(
    "subject, kind",
    [
        (keras.activations.relu, "relu"),
        (tf.nn.relu, "relu"),
        (keras.activations.hard_swish, "hard_silu"),
        (keras.activations.swish, "silu"),
        (keras.activations.mish, "mish"),
        (tf.nn.softmax, "softmax"),
        (lambda x: x, None),
        (keras.layers.Softmax(), "softmax"),
        (keras.layers.ReLU(), "relu"),
        (keras.layers.ReLU(6.0), "relu6"),
        (keras.layers.ReLU(negative_slope=0.1), "leaky_relu"),
        (keras.layers.ReLU(threshold=0.5), "relu_clipped"),
        (keras.layers.LeakyReLU(), "leaky_relu"),
        (keras.layers.Activation("linear", dtype="float32"), "linear"),
        (keras.layers.Activation("hard_swish"), "hard_silu"),
        (keras.layers.Dense(3), "linear"),
        (keras.layers.Dense(3, activation="softmax"), "softmax"),
        (keras.layers.Conv2D(3, 3, activation="relu6"), "relu6"),
        (keras.layers.Dropout(0.5), "linear"),
        (keras.layers.Flatten(), None),
        (keras.layers.BatchNormalization(), None),
    ],
)
def test_activation_kind(subject, kind):
    assert surgery.activation_kind(subject) == kind


# ------------------------------------------------------------------ one reading of the graph
def test_model_graph_flattens_nested_models_and_links_producers():
    model = nested()
    snapshot = weights_snapshot(model)
    nodes_before = {id(layer): len(layer._inbound_nodes) for layer in model.layers}
    graph = surgery.read_graph(model)
    paths = [c.path for c in graph.calls]
    assert paths == ["scale", "conv", "inner/inner_conv", "inner/inner_bn", "drop", "gap", "head", "cast"]
    by_path = {c.path: c for c in graph.calls}
    assert graph.producer(by_path["inner/inner_conv"].inputs[0]) is by_path["conv"]
    assert graph.producer(by_path["drop"].inputs[0]) is by_path["inner/inner_bn"]
    assert graph.final() is by_path["cast"]
    assert graph.before_identities(graph.final()) is by_path["head"]  # past the float32 cast
    assert graph.leading() is by_path["scale"]
    assert by_path["head"].kind == "softmax" and by_path["cast"].kind == "linear"
    # reading calls nothing: no node is added to any layer, no weight changes
    assert {id(layer): len(layer._inbound_nodes) for layer in model.layers} == nodes_before
    assert_unchanged(model, snapshot)


# ------------------------------------------------------------------ rule tables
def test_first_match_wins_and_matchers():
    dense = keras.layers.Dense(2)
    table = [(surgery.is_layer(dense), "this one"), (keras.layers.Dense, "any dense"), (lambda l: True, "else")]
    assert surgery.first_match(table, dense) == "this one"
    assert surgery.first_match(table, keras.layers.Dense(2)) == "any dense"
    assert surgery.first_match(table, keras.layers.Flatten()) == "else"
    assert surgery.first_match(table[:2], keras.layers.Flatten()) is None
    assert surgery.matches((keras.layers.Conv2D, keras.layers.Dense), dense)


def test_channel_ablation_is_one_table_entry():
    """Zeroing channel k of the pooled features lowers logit c by exactly W[k, c] * feature_k (the head is linear)."""
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inputs)
    pooled = keras.layers.GlobalAveragePooling2D(name="gap")
    head = keras.layers.Dense(3, name="head")
    model = keras.Model(inputs, head(pooled(x)))
    snapshot = weights_snapshot(model)
    mask = tf.constant([1.0, 0.0, 1.0, 1.0])  # ablate channel 1

    def ablate(call):
        return call.run() * mask

    ablated = surgery.replay(model, tf.constant(X), surgery.Rules([(surgery.is_layer(pooled), ablate)])).numpy()
    features = keras.Model(inputs, pooled.output)(X).numpy()
    kernel = head.kernel.numpy()
    expected = model(X).numpy() - features[:, 1:2] * kernel[1][None, :]
    np.testing.assert_allclose(ablated, expected, rtol=1e-5, atol=1e-6)
    assert np.any(np.abs(ablated - model(X).numpy()) > 1e-4)
    assert_unchanged(model, snapshot)


def test_logits_surgery_is_a_table_entry_on_the_adapter_final_layer():
    model = nested()
    adapter = tfxai.adapt(model)
    assert adapter.final_layer is model.get_layer("head") and adapter.kind == "softmax"
    logits = surgery.replay(model, tf.constant(X), surgery.Rules([(surgery.is_layer(adapter.final_layer), surgery.strip_activation)]))
    np.testing.assert_allclose(tf.nn.softmax(logits).numpy(), model(X).numpy(), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(adapter.logits(X).numpy(), logits.numpy(), rtol=1e-5, atol=1e-6)
