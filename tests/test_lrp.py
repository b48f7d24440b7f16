"""LRP (tfxai.LRP, tfxai.relevance): identities and float64 references written from the rules' formulas.

* LRP-0 (epsilon -> 0) on a bias-free ReLU network equals gradient x input (conv, depthwise, dense,
  max/average pooling, Add, Concatenate, a nested model).
* Every rule and composite equals a float64 NumPy reference (tests/reference/lrp.py) on tiny dense and
  convolutional networks with random biases and BatchNorm statistics, the BatchNorm merged as Zennit's
  canonizer does (and equal to a network where it is folded by hand).
* Conservation where the rule conserves; the epsilon rule's loss is exactly the bias absorption.
* Layers without a rule are refused, all named, before anything runs; the model is never changed.
"""

from __future__ import annotations

import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfxai
from tests import models
from tests.conftest import assert_unchanged, weights_snapshot
from tests.reference import lrp as ref
from tfxai import relevance
from tfxai.errors import UnsupportedModelError

warnings.filterwarnings("ignore", category=tfxai.errors.InputRangeWarning)


# ---------------------------------------------------------------------- models
def branchy_relu_net(bias=False):
    """Conv, depthwise, dense, max/average pooling, Add, Concatenate and a nested model (ReLU, no biases)."""
    keras.utils.set_random_seed(0)
    inp = keras.Input((10, 10, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", use_bias=bias, name="conv")(inp)
    a = keras.layers.ReLU(name="relu_a")(keras.layers.DepthwiseConv2D(3, padding="same", use_bias=bias, name="dw")(x))
    b = keras.layers.Conv2D(4, 1, use_bias=bias, name="conv_b")(x)
    x = keras.layers.MaxPooling2D(name="max")(keras.layers.Add(name="add")([a, b]))
    inner_in = keras.Input((5, 5, 4))
    y = keras.layers.Conv2D(5, 2, use_bias=bias, activation="relu6", name="inner_conv")(inner_in)
    y = keras.layers.AveragePooling2D(2, name="avg")(y)
    x2 = keras.Model(inner_in, y, name="inner")(x)
    x = keras.layers.Concatenate(name="cat")([x2, keras.layers.Activation("relu", name="act")(x2)])
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    out = keras.layers.Dense(3, use_bias=bias, activation="softmax", name="head")(x)
    return keras.Model(inp, out, name="branchy")


def conv_net():
    """Rescaling -> padding -> conv -> BN -> ReLU -> depthwise -> BN -> ReLU -> flatten -> dense (softmax)."""
    keras.utils.set_random_seed(0)
    inp = keras.Input((5, 5, 2))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1.0, name="pre")(inp)
    x = keras.layers.ZeroPadding2D(1, name="pad")(x)
    x = keras.layers.Conv2D(3, 3, name="conv1")(x)
    x = keras.layers.BatchNormalization(name="bn1")(x)
    x = keras.layers.ReLU(name="relu1")(x)
    x = keras.layers.DepthwiseConv2D(3, padding="same", name="dw")(x)
    x = keras.layers.BatchNormalization(name="bn2")(x)
    x = keras.layers.Activation("relu", name="relu2")(x)
    x = keras.layers.Flatten(name="flat")(x)
    out = keras.layers.Dense(3, activation="softmax", name="head")(x)
    model = keras.Model(inp, out, name="conv_net")
    models.randomize_biases_and_bn(model, seed=3, scale=0.5)
    model.get_layer("pre").offset = -1.0  # keep the readable input range (0, 255)
    return model


def dense_net():
    """flatten -> dense -> BN -> ReLU -> dense(relu) -> dense (logits)."""
    keras.utils.set_random_seed(0)
    inp = keras.Input((3, 3, 2))
    x = keras.layers.Flatten(name="flat")(inp)
    x = keras.layers.Dense(6, name="d1")(x)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.ReLU(name="relu")(x)
    x = keras.layers.Dense(5, activation="relu", name="d2")(x)
    out = keras.layers.Dense(3, name="head")(x)
    model = keras.Model(inp, out, name="dense_net")
    models.randomize_biases_and_bn(model, seed=5, scale=0.1)
    return model


def _matrix(fn, in_shape):
    """``(W, b)`` of an affine map ``fn`` on inputs of shape `in_shape` (W: (out, in)), read on the unit basis."""
    size = int(np.prod(in_shape))
    basis = np.eye(size).reshape((size, *in_shape))
    zero = np.asarray(fn(np.zeros((1, *in_shape)))).reshape(-1)
    W = np.asarray(fn(basis)).reshape(size, -1).T - zero[:, None]
    return W, zero


def _bn(layer, positions):
    gamma, beta = np.asarray(layer.gamma), np.asarray(layer.beta)
    mean, var = np.asarray(layer.moving_mean), np.asarray(layer.moving_variance)
    s = gamma / np.sqrt(var + layer.epsilon)
    return np.tile(s, positions), np.tile(beta - mean * s, positions)


def _apply(rule, W, b, x, R, bounds=None, params=None, real=None):
    params = params or {}
    if rule == "zbox":
        return ref.zbox(W, b, x, R, *bounds)
    if rule in ("flat", "wsquare") and real is not None:
        return ref.RULES[rule](W, b, x, R, real=real)
    return ref.RULES[rule](W, b, x, R, **params)


def conv_reference(model, images, targets, rules, params=(None, None, None)):
    """The float64 relevance of conv_net: rules = (first conv, depthwise, dense), BN merged into both convs."""
    conv1, dw, head = (model.get_layer(n) for n in ("conv1", "dw", "head"))
    W1, b1 = _matrix(lambda t: keras.ops.conv(t, conv1.kernel) + conv1.bias, (7, 7, 2))
    s, t = _bn(model.get_layer("bn1"), 25)
    W1, b1 = s[:, None] * W1, s * b1 + t
    W2, b2 = _matrix(lambda v: keras.ops.depthwise_conv(v, dw.kernel, padding="same") + dw.bias, (5, 5, 3))
    s, t = _bn(model.get_layer("bn2"), 25)
    W2, b2 = s[:, None] * W2, s * b2 + t
    W3, b3 = np.asarray(head.kernel).T, np.asarray(head.bias)
    pad = lambda u: np.pad(u.reshape(5, 5, 2), ((1, 1), (1, 1), (0, 0))).reshape(-1)  # noqa: E731
    pre = model.get_layer("pre")  # the input range (0, 255) through the rescaling, zero on the padding
    low, high = (pad(np.asarray(pre(np.full((1, 5, 5, 2), v))).reshape(-1)) for v in (0.0, 255.0))
    out, logits = [], []
    scaled = np.asarray(model.get_layer("pre")(images))  # x / 127.5 - 1 (Keras rounds 1 / 127.5 to float32)
    for x, k in zip(scaled, targets):
        p = pad(x.reshape(-1))
        a1 = np.maximum(W1 @ p + b1, 0)
        a2 = np.maximum(W2 @ a1 + b2, 0)
        z = W3 @ a2 + b3
        R = np.eye(3)[k] * z
        R = _apply(rules[2], W3, b3, a2, R, params=params[2])
        R = _apply(rules[1], W2, b2, a1, R, params=params[1])
        R = _apply(rules[0], W1, b1, p, R, (low, high), params=params[0], real=pad(np.ones(50)))
        out.append(R.reshape(7, 7, 2)[1:-1, 1:-1])
        logits.append(z[k])
    return np.stack(out), np.array(logits)


def dense_reference(model, images, targets, rules, params=(None, None, None)):
    d1, d2, head = (model.get_layer(n) for n in ("d1", "d2", "head"))
    s, t = _bn(model.get_layer("bn"), 1)
    W1, b1 = s[:, None] * np.asarray(d1.kernel).T, s * np.asarray(d1.bias) + t
    W2, b2 = np.asarray(d2.kernel).T, np.asarray(d2.bias)
    W3, b3 = np.asarray(head.kernel).T, np.asarray(head.bias)
    out = []
    for x, k in zip(images, targets):
        x = x.reshape(-1)
        a1 = np.maximum(W1 @ x + b1, 0)
        a2 = np.maximum(W2 @ a1 + b2, 0)
        z = W3 @ a2 + b3
        R = np.eye(3)[k] * z
        R = _apply(rules[2], W3, b3, a2, R, params=params[2])
        R = _apply(rules[1], W2, b2, a1, R, params=params[1])
        R = _apply(rules[0], W1, b1, x, R, (np.zeros(18), np.ones(18)), params=params[0])
        out.append(R.reshape(3, 3, 2))
    return np.stack(out)


RULE_CASES = {
    # rule=...: (tfxai keywords, reference rules (first, middle, last), reference parameters)
    "epsilon": ({"rule": "epsilon"}, ("epsilon",) * 3, ({"eps": 1e-6},) * 3),
    "epsilon-0.1": ({"rule": "epsilon", "epsilon": 0.1}, ("epsilon",) * 3, ({"eps": 0.1},) * 3),
    "zplus": ({"rule": "ZPlus"}, ("zplus",) * 3, (None,) * 3),
    "alpha2beta1": ({"rule": "alpha_beta"}, ("alpha_beta",) * 3, (None,) * 3),
    "alpha3beta2": ({"rule": "alpha_beta", "alpha": 3, "beta": 2}, ("alpha_beta",) * 3, ({"alpha": 3.0, "beta": 2.0},) * 3),
    "gamma": ({"rule": "gamma", "gamma": 0.5}, ("gamma",) * 3, ({"g": 0.5},) * 3),
    "flat": ({"rule": "flat"}, ("flat",) * 3, (None,) * 3),
    "wsquare": ({"rule": "WSquare"}, ("wsquare",) * 3, (None,) * 3),
    "zbox": ({"rule": "zbox"}, ("zbox", "epsilon", "epsilon"), (None, {"eps": 1e-6}, {"eps": 1e-6})),
    "epsilon_plus_flat": ({"composite": "EpsilonPlusFlat"}, ("flat", "zplus", "epsilon"), (None, None, {"eps": 1e-6})),
    "epsilon_gamma_box": ({"composite": "epsilon_gamma_box"}, ("zbox", "gamma", "epsilon"), (None, None, {"eps": 1e-6})),
    "epsilon_alpha2_beta1": ({"composite": "epsilon_alpha2_beta1"}, ("alpha_beta", "alpha_beta", "epsilon"), (None, None, {"eps": 1e-6})),
    "epsilon_plus": ({"composite": "epsilon_plus"}, ("zplus", "zplus", "epsilon"), (None, None, {"eps": 1e-6})),
}


def _close(actual, expected):
    np.testing.assert_allclose(actual, expected, rtol=1e-7, atol=1e-9 * max(np.abs(expected).max(), 1e-30))


# ---------------------------------------------------------------------- identities
def test_lrp0_equals_gradient_times_input_on_a_bias_free_relu_net(float64, monkeypatch):
    monkeypatch.setattr(relevance, "STABILIZER", 1e-15)  # LRP-0: Norm's stabiliser (Add, pooling) -> 0 too
    model = branchy_relu_net()
    x = np.random.default_rng(0).uniform(0, 1, (3, 10, 10, 3))
    targets = [0, 2, 1]
    lrp0 = tfxai.LRP(model, epsilon=1e-12).attributions(x, targets).numpy()
    gxi = tfxai.InputXGradient(model, output="logit").attributions(x, targets).numpy()
    assert np.abs(gxi).max() > 0
    np.testing.assert_allclose(lrp0, gxi, rtol=1e-5, atol=1e-6 * np.abs(gxi).max())
    # (with biases too, LRP-0 is gradient x input on ReLU networks, Ancona et al. 2018), but it no longer
    # conserves: the biases absorb relevance
    biased = branchy_relu_net(bias=True)
    models.randomize_biases_and_bn(biased, seed=1, scale=0.3)
    lrp = tfxai.LRP(biased, epsilon=1e-12)
    np.testing.assert_allclose(lrp.attributions(x, targets).numpy(),
                               tfxai.InputXGradient(biased, output="logit").attributions(x, targets).numpy(),
                               rtol=1e-5, atol=1e-6 * np.abs(gxi).max())
    assert np.abs(lrp.conservation(x, targets).absorbed).min() > 1e-3


@pytest.mark.parametrize("case", sorted(RULE_CASES))
def test_rules_and_composites_equal_the_float64_reference_on_a_conv_net(float64, case):
    kwargs, rules, params = RULE_CASES[case]
    model = conv_net()
    x = np.random.default_rng(1).uniform(0, 255, (3, 5, 5, 2))
    targets = [0, 1, 2]
    expected, logits = conv_reference(model, x, targets, rules, params)
    lrp = tfxai.LRP(model, **kwargs)
    _close(lrp.attributions(x, targets).numpy(), expected)
    np.testing.assert_allclose(lrp.conservation(x, targets).logits, logits, rtol=1e-10)
    first_rule = dict(lrp.assignment)["conv1 + bn1"]
    assert first_rule.startswith({"zbox": "ZBox", "flat": "Flat"}.get(rules[0], first_rule[:3]))


@pytest.mark.parametrize("case", ["epsilon", "zplus", "alpha2beta1", "gamma", "flat", "wsquare", "zbox"])
def test_rules_equal_the_float64_reference_on_a_dense_net(float64, case):
    kwargs, rules, params = RULE_CASES[case]
    model = dense_net()
    x = np.random.default_rng(2).uniform(0, 1, (3, 3, 3, 2))
    targets = [2, 0, 1]
    _close(tfxai.LRP(model, **kwargs).attributions(x, targets).numpy(), dense_reference(model, x, targets, rules, params))


@pytest.mark.parametrize("rule", ["epsilon", "zplus", "gamma", "wsquare"])
def test_merged_batch_norm_equals_the_network_folded_by_hand(float64, rule):
    model = conv_net()
    folded = conv_net()
    for name, bn in (("conv1", "bn1"), ("dw", "bn2")):
        layer, norm = model.get_layer(name), model.get_layer(bn)
        s = np.asarray(norm.gamma) / np.sqrt(np.asarray(norm.moving_variance) + norm.epsilon)
        t = np.asarray(norm.beta) - np.asarray(norm.moving_mean) * s
        kernel = np.asarray(layer.kernel) * (s.reshape(3, 1) if name == "dw" else s)
        folded.get_layer(name).set_weights([kernel, np.asarray(layer.bias) * s + t])
        identity = folded.get_layer(bn)
        identity.set_weights([np.ones(3), np.zeros(3), np.zeros(3), np.ones(3) - identity.epsilon])
    folded.get_layer("head").set_weights(model.get_layer("head").get_weights())
    x = np.random.default_rng(3).uniform(0, 255, (2, 5, 5, 2))
    np.testing.assert_allclose(folded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-9)
    a = tfxai.LRP(model, rule=rule).attributions(x, [0, 1]).numpy()
    b = tfxai.LRP(folded, rule=rule).attributions(x, [0, 1]).numpy()
    np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-10 * np.abs(b).max())


def _one_layer_net(bias):
    """Conv (no activation) -> global average pooling: one linear layer, Norm on the pooling."""
    keras.utils.set_random_seed(0)
    inp = keras.Input((6, 6, 2))
    x = keras.layers.Conv2D(3, 3, name="conv", use_bias=True)(inp)
    model = keras.Model(inp, keras.layers.GlobalAveragePooling2D(name="gap")(x))
    if bias:
        models.randomize_biases_and_bn(model, seed=7, scale=0.5)
    return tfxai.adapt(model, logits_layer="gap", input_range=(-1, 1))


@pytest.mark.parametrize("kwargs", [{"epsilon": 1e-12}, {"rule": "zplus"}, {"rule": "alpha_beta"}, {"rule": "gamma"},
                                    {"rule": "flat"}, {"rule": "wsquare"}],
                         ids=["lrp0", "zplus", "alpha2beta1", "gamma", "flat", "wsquare"])
def test_conserving_rules_conserve_without_biases(float64, kwargs):
    model = _one_layer_net(bias=False)
    x = np.random.default_rng(4).uniform(-1, 1, (4, 6, 6, 2))  # negative inputs too
    check = tfxai.LRP(model, **kwargs).conservation(x, [0, 1, 2, 0])
    assert np.abs(check.logits).min() > 1e-3
    # up to the stabilisers (1e-6 added to each denominator): |absorbed| ~ 1e-6 per unit of relevance
    np.testing.assert_allclose(check.input, check.logits, rtol=0, atol=1e-5)


def test_zbox_conserves_with_biases_inside_its_box(float64):
    model = _one_layer_net(bias=True)
    x = np.random.default_rng(5).uniform(-1, 1, (4, 6, 6, 2))
    check = tfxai.LRP(model, rule="zbox").conservation(x, [0, 1, 2, 1])
    np.testing.assert_allclose(check.input, check.logits, rtol=0, atol=1e-5)
    epsilon = tfxai.LRP(model, rule="epsilon").conservation(x, [0, 1, 2, 1])  # the same biases absorb under epsilon
    assert np.abs(epsilon.absorbed).max() > 1e-2


def test_epsilon_loses_exactly_the_bias_absorption(float64):
    model = _one_layer_net(bias=True)
    x = np.random.default_rng(6).uniform(-1, 1, (3, 6, 6, 2))
    targets = [0, 1, 2]
    lrp = tfxai.LRP(model, epsilon=1e-9)
    check = lrp.conservation(x, targets)
    conv = model.model.get_layer("conv")
    z = np.asarray(conv(x))  # (N, 4, 4, 3)
    bias = np.asarray(conv.bias)
    # R at the conv output (Norm on the pooling): z / 16 * y / stab(y); absorbed = what Norm's stabiliser took
    # plus the biases' share, sum_k R_k b_k / z_k
    R = np.zeros_like(z)
    for i, k in enumerate(targets):
        y = z[i, ..., k].mean()
        R[i, ..., k] = z[i, ..., k] / 16.0 * y / ref.stab(y)
    logits = z.mean(axis=(1, 2))[np.arange(3), targets]
    absorbed = logits - R.sum(axis=(1, 2, 3)) + np.sum(R * bias / ref.stab(z, 1e-9), axis=(1, 2, 3))
    assert np.abs(absorbed).max() > 1e-2
    np.testing.assert_allclose(check.absorbed, absorbed, rtol=1e-6, atol=1e-9)
    totals = dict(check.layers)
    np.testing.assert_allclose(totals["conv"], check.logits, atol=1e-5)  # Norm on the pooling conserves


# ---------------------------------------------------------------------- composites and first layers
def test_composites_give_each_layer_its_rule_and_find_the_first_layer_behind_preprocessing():
    model = conv_net()
    assignment = dict(tfxai.LRP(model, composite="epsilon_gamma_box").assignment)
    assert assignment == {"conv1 + bn1": "ZBox(stabilizer=1e-06)", "dw + bn2": "Gamma(gamma=0.25, stabilizer=1e-06)",
                          "head": "Epsilon(epsilon=1e-06)"}
    lrp = tfxai.LRP(model, composite="epsilon_plus_flat")
    assert lrp.first_layers == ["conv1"]
    assert dict(lrp.assignment)["dw + bn2"].startswith("ZPlus")
    # a dense first layer is Flat's (any linear layer) but not ZBox's (convolutions only, as Zennit)
    dense = dense_net()
    assert tfxai.LRP(dense, composite="epsilon_plus_flat").first_layers == ["d1"]
    box = tfxai.LRP(dense, composite="epsilon_gamma_box")
    assert box.first_layers == [] and dict(box.assignment)["d1 + bn"].startswith("Epsilon")


def test_unmerged_batch_norm_is_an_affine_layer_with_the_rule(float64):
    """BN before the first conv (not after a linear layer): W = diag(s), b = t, epsilon rule."""
    keras.utils.set_random_seed(0)
    inp = keras.Input((4, 4, 2))
    x = keras.layers.BatchNormalization(name="bn")(inp)
    x = keras.layers.Conv2D(2, 3, name="conv")(x)
    model = keras.Model(inp, keras.layers.Dense(2, name="head")(keras.layers.Flatten()(x)))
    models.randomize_biases_and_bn(model, seed=8, scale=0.5)
    x = np.random.default_rng(7).uniform(-1, 1, (2, 4, 4, 2))
    lrp = tfxai.LRP(model, epsilon=1e-3)
    assert dict(lrp.assignment)["bn"] == "Epsilon(epsilon=0.001)"
    s, t = _bn(model.get_layer("bn"), 16)
    conv, head = model.get_layer("conv"), model.get_layer("head")
    W2, b2 = _matrix(lambda v: keras.ops.conv(v, conv.kernel) + conv.bias, (4, 4, 2))
    W3, b3 = np.asarray(head.kernel).T, np.asarray(head.bias)
    expected = []
    for v, k in zip(x, [0, 1]):
        u = s * v.reshape(-1) + t
        z2 = W2 @ u + b2
        R = np.eye(2)[k] * (W3 @ z2 + b3)
        R = ref.epsilon(W3, b3, z2, R, 1e-3)
        R = ref.epsilon(W2, b2, u, R, 1e-3)
        expected.append(ref.epsilon(np.diag(s), t, v.reshape(-1), R, 1e-3).reshape(4, 4, 2))
    _close(lrp.attributions(x, [0, 1]).numpy(), np.stack(expected))


def test_binary_model_class_zero_is_the_negated_map():
    keras.utils.set_random_seed(0)
    inp = keras.Input((6, 6, 1))
    x = keras.layers.Conv2D(2, 3, activation="relu")(inp)
    model = keras.Model(inp, keras.layers.Dense(1, activation="sigmoid")(keras.layers.Flatten()(x)))
    models.randomize_biases_and_bn(model, seed=2)
    x = np.random.default_rng(8).uniform(0, 1, (2, 6, 6, 1)).astype("float32")
    lrp = tfxai.LRP(model)
    np.testing.assert_allclose(lrp.attributions(x, 0), -lrp.attributions(x, 1), rtol=1e-6)
    check = lrp.conservation(x, 0)
    np.testing.assert_allclose(check.logits, -np.asarray(tfxai.adapt(model).raw_logits(x))[:, 0], rtol=1e-5)


# ---------------------------------------------------------------------- refusal, purity
def test_unsupported_layers_are_refused_all_named_before_anything_runs():
    inp = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, activation="swish", name="swishy")(inp)
    se = keras.layers.GlobalAveragePooling2D(keepdims=True, name="squeeze")(x)
    se = keras.layers.Conv2D(4, 1, activation="sigmoid", name="excite")(se)
    x = keras.layers.Multiply(name="scale")([x, se])
    x = keras.layers.LayerNormalization(name="ln")(x)
    x = keras.layers.Activation("gelu", name="gelu")(x)
    out = keras.layers.Dense(3, activation="softmax")(keras.layers.GlobalAveragePooling2D()(x))
    model = keras.Model(inp, out)
    with pytest.raises(UnsupportedModelError, match=r"5 layer\(s\)") as info:
        tfxai.LRP(model)
    assert info.value.layers == ["swishy/activation", "excite/activation", "scale", "ln", "gelu"]


def test_model_unchanged_and_training_changes_the_map():
    model = models.small_cnn((12, 12, 3), num_classes=3, softmax=True, seed=2)
    snapshot = weights_snapshot(model)
    lrp = tfxai.LRP(model, composite="epsilon_plus_flat")
    x = np.random.default_rng(9).uniform(0, 1, (4, 12, 12, 3)).astype("float32")
    before = lrp(x, [0, 1, 2, 0]).numpy()
    assert_unchanged(model, snapshot)
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="sparse_categorical_crossentropy")
    model.fit(x, np.array([1, 2, 0, 1]), epochs=2, verbose=0)
    after = lrp(x, [0, 1, 2, 0]).numpy()
    assert not np.allclose(before, after, rtol=1e-3)
    fresh = tfxai.LRP(model, composite="epsilon_plus_flat")(x, [0, 1, 2, 0]).numpy()
    np.testing.assert_allclose(after, fresh, rtol=1e-5, atol=1e-7 * np.abs(fresh).max())


def test_replayed_logits_equal_the_model(float64):
    model = conv_net()
    x = np.random.default_rng(10).uniform(0, 255, (2, 5, 5, 2))
    check = tfxai.LRP(model, composite="epsilon_gamma_box").conservation(x, [0, 1])
    logits = np.asarray(tfxai.adapt(model).logits(tf.constant(x)))
    np.testing.assert_allclose(check.logits, logits[[0, 1], [0, 1]], rtol=1e-12)


def test_flat_conserves_behind_a_zero_padding_layer(float64):
    """PyTorch pads inside the convolution, so Zennit's flat rule never counts padded positions; tfxai treats a
    ZeroPadding2D feeding a convolution the same way, and flat (biases ignored) conserves through conv_net."""
    model = conv_net()
    x = np.random.default_rng(11).uniform(0, 255, (3, 5, 5, 2))
    check = tfxai.LRP(model, rule="flat").conservation(x, [0, 1, 2])
    np.testing.assert_allclose(check.input, check.logits, rtol=1e-5)
