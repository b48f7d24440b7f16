"""DeepLIFT (Rescale rule): summation-to-delta, closed forms, float64 references written from the rules.

Shrikumar, Greenside, Kundaje (2017), "Learning Important Features Through
Propagating Activation Differences": multipliers ``m = Delta y / Delta u``
chained as a gradient; ``sum (x - x0) * m = s(x) - s(x0)``.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfxai
from tests import models
from tests.conftest import assert_unchanged, weights_snapshot
from tfxai.errors import UnsupportedModelError

F64 = "float64"
L = keras.layers


def _rng(seed=0):
    return np.random.default_rng(seed)


def piecewise_linear_net(seed=0):
    """Conv, depthwise, dense, ReLU (fused, layer, Activation), ReLU6, max/avg pool, Add, Concatenate, a nested
    model called twice, BatchNormalization with random statistics, random biases; float64."""
    keras.utils.set_random_seed(seed)
    inner_in = keras.Input((8, 8, 6), dtype=F64)
    h = L.Conv2D(6, 3, padding="same", dtype=F64, name="inner_conv")(inner_in)
    h = L.BatchNormalization(dtype=F64, name="inner_bn")(h)
    h = L.ReLU(dtype=F64, name="inner_relu")(h)
    inner = keras.Model(inner_in, h, name="block")

    inputs = keras.Input((16, 16, 3), dtype=F64)
    x = L.Conv2D(6, 3, padding="same", activation="relu", dtype=F64, name="conv1")(inputs)
    x = L.BatchNormalization(dtype=F64, name="bn1")(x)
    x = L.ReLU(6.0, dtype=F64, name="relu6")(x)
    x = L.MaxPooling2D(3, strides=2, padding="same", dtype=F64, name="pool1")(x)  # overlapping windows
    y = L.DepthwiseConv2D(3, padding="same", dtype=F64, name="dw")(x)
    y = L.Activation("relu", dtype=F64, name="act")(y)
    x = L.Add(dtype=F64, name="add")([x, y])
    x = inner(inner(x))  # one shared layer set, two calls
    z = L.AveragePooling2D(2, dtype=F64, name="avg")(x)
    x = L.MaxPooling2D(2, dtype=F64, name="pool2")(x)
    x = L.Concatenate(dtype=F64, name="cat")([x, z])
    x = L.Flatten(dtype=F64)(x)
    x = L.Dense(12, activation="relu", dtype=F64, name="fc")(x)
    outputs = L.Dense(4, activation="softmax", dtype=F64, name="head")(x)
    model = keras.Model(inputs, outputs, name="piecewise")
    return models.randomize_biases_and_bn(model, seed, scale=0.3)


def efficientnet_block(seed=0):
    """Swish, Squeeze-Excitation (swish, sigmoid, Multiply), hard-swish, global max pooling; float64."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((12, 12, 3), dtype=F64)
    x = L.Conv2D(8, 3, padding="same", use_bias=False, dtype=F64, name="stem")(inputs)
    x = L.BatchNormalization(dtype=F64, name="stem_bn")(x)
    x = L.Activation("swish", dtype=F64, name="stem_swish")(x)
    x = L.DepthwiseConv2D(3, padding="same", dtype=F64, name="dw")(x)
    x = L.BatchNormalization(dtype=F64, name="dw_bn")(x)
    x = L.Activation("swish", dtype=F64, name="dw_swish")(x)
    se = L.GlobalAveragePooling2D(keepdims=True, dtype=F64, name="se_squeeze")(x)
    se = L.Conv2D(2, 1, activation="swish", dtype=F64, name="se_reduce")(se)
    se = L.Conv2D(8, 1, activation="sigmoid", dtype=F64, name="se_expand")(se)
    x = L.Multiply(dtype=F64, name="se_excite")([x, se])
    x = L.Conv2D(8, 1, activation="hard_swish", dtype=F64, name="project")(x)
    x = L.Activation("tanh", dtype=F64, name="tanh")(x)
    x = L.GlobalMaxPooling2D(dtype=F64, name="gmp")(x)
    outputs = L.Dense(4, dtype=F64, name="head")(x)
    model = keras.Model(inputs, outputs, name="effnet_block")
    return models.randomize_biases_and_bn(model, seed, scale=0.3)


def logit(model, images, targets):
    """The target logits (a final softmax stripped) of `images`, float64 NumPy."""
    logits = np.asarray(tfxai.adapt(model).logits(tf.constant(images, model.inputs[0].dtype)))
    return logits[np.arange(len(targets)), targets]


# ---------------------------------------------------------------------------- summation to delta
@pytest.mark.parametrize("build", [piecewise_linear_net, efficientnet_block])
@pytest.mark.parametrize("baseline", ["black", "blur", "per-image"])
def test_sums_to_the_logit_difference(build, baseline):
    model = build()
    shape = model.inputs[0].shape[1:]
    images = _rng(1).uniform(size=(4, *shape))
    x0 = _rng(2).uniform(size=(4, *shape)) if baseline == "per-image" else baseline
    targets = np.array([0, 1, 2, 3])
    dl = tfxai.DeepLIFT(model, baseline=x0, batch_size=3)  # two chunks
    attributions = dl.attributions(images, targets).numpy()
    assert attributions.shape == images.shape and attributions.dtype == np.float64
    reference = images * 0 if baseline == "black" else (
        tfxai.baselines.blur(images).numpy() if baseline == "blur" else x0)
    expected = logit(model, images, targets) - logit(model, reference, targets)
    np.testing.assert_allclose(attributions.sum(axis=(1, 2, 3)), expected, rtol=0, atol=1e-10)
    np.testing.assert_allclose(dl.convergence_delta(images, attributions, targets), 0.0, atol=1e-10)
    assert np.abs(expected).min() > 1e-3  # the identity is not trivially 0 = 0
    maps = dl(images, targets).numpy()
    np.testing.assert_allclose(maps, attributions.sum(-1), atol=1e-12)  # signed channel sum
    assert maps.min() < 0 < maps.max()


def test_raw_ops_hard_swish_as_mobilenetv3_writes_it():
    """``x * ReLU6(x + 3) / 6`` with raw Keras ops: affine ops keep their gradient, ``x * y`` gets the product rule."""
    keras.utils.set_random_seed(9)
    inputs = keras.Input((8, 8, 3), dtype=F64)
    x = L.Conv2D(6, 3, padding="same", dtype=F64, name="conv")(inputs)
    gate = L.ReLU(6.0, dtype=F64, name="relu6")(x + 3.0) * (1.0 / 6.0)
    x = x * gate
    x = L.GlobalAveragePooling2D(dtype=F64)(x - 0.5)
    model = models.randomize_biases_and_bn(keras.Model(inputs, L.Dense(3, dtype=F64, name="head")(x)), 9, 0.3)
    images = _rng(20).uniform(size=(3, 8, 8, 3))
    dl = tfxai.DeepLIFT(model, baseline="white")
    assert sorted(dl.rules.values()) == ["multiply", "rescale"]  # x * gate; not `* (1 / 6)`
    attributions = dl.attributions(images, [0, 1, 2]).numpy()
    expected = logit(model, images, [0, 1, 2]) - logit(model, np.ones_like(images), [0, 1, 2])
    np.testing.assert_allclose(attributions.sum(axis=(1, 2, 3)), expected, atol=1e-10)
    assert np.abs(expected).min() > 1e-3


def test_rules_are_listed():
    assert tfxai.DeepLIFT(piecewise_linear_net()).rules == {
        "conv1": "rescale", "relu6": "rescale", "pool1": "max_pool", "act": "rescale", "block/inner_relu": "rescale",
        "block/inner_relu:1": "rescale", "pool2": "max_pool", "fc": "rescale"}
    rules = tfxai.DeepLIFT(efficientnet_block()).rules
    assert rules["se_excite"] == "multiply" and rules["gmp"] == "max_pool" and rules["stem_swish"] == "rescale"
    assert "head" not in rules and "stem" not in rules


def test_gradient_times_input_on_a_bias_free_relu_net_with_a_zero_baseline():
    keras.utils.set_random_seed(3)
    inputs = keras.Input((10, 10, 3), dtype=F64)
    x = L.Conv2D(5, 3, activation="relu", use_bias=False, dtype=F64)(inputs)
    x = L.MaxPooling2D(2, dtype=F64)(x)
    x = L.Conv2D(5, 3, use_bias=False, dtype=F64)(x)
    x = L.ReLU(dtype=F64)(x)
    x = L.Flatten(dtype=F64)(x)
    x = L.Dense(6, activation="relu", use_bias=False, dtype=F64)(x)
    model = keras.Model(inputs, L.Dense(3, use_bias=False, dtype=F64)(x))
    images = _rng(4).uniform(size=(3, 10, 10, 3))
    targets = [0, 1, 2]
    deeplift = tfxai.DeepLIFT(model, baseline=0.0).attributions(images, targets).numpy()
    input_x_gradient = tfxai.InputXGradient(model, output="logit").attributions(images, targets).numpy()
    np.testing.assert_allclose(deeplift, input_x_gradient, rtol=1e-9, atol=1e-12)
    # with a nonzero baseline they differ (so the test can fail)
    other = tfxai.DeepLIFT(model, baseline=0.5).attributions(images, targets).numpy()
    assert np.abs(other - input_x_gradient).max() > 1e-3


# ---------------------------------------------------------------------------- float64 references from the rules
def test_rescale_rule_equals_a_numpy_reference():
    """Input (4,) -> Dense(5, sigmoid) -> Dense(5) -> ReLU -> Dense(2): multipliers written from the Rescale rule."""
    keras.utils.set_random_seed(5)
    inputs = keras.Input((2, 2, 1), dtype=F64)
    x = L.Flatten(dtype=F64)(inputs)
    x = L.Dense(5, activation="sigmoid", dtype=F64, name="d1")(x)
    x = L.Dense(5, dtype=F64, name="d2")(x)
    x = L.ReLU(dtype=F64)(x)
    model = keras.Model(inputs, L.Dense(2, dtype=F64, name="d3")(x))
    models.randomize_biases_and_bn(model, 5, scale=0.5)
    (w1, b1), (w2, b2), (w3, b3) = (model.get_layer(n).get_weights() for n in ("d1", "d2", "d3"))
    images = _rng(6).uniform(size=(3, 2, 2, 1))
    x0 = _rng(7).uniform(size=(2, 2, 1))

    def sigmoid(u):
        return 1 / (1 + np.exp(-u))

    expected = []
    for image, target in zip(images, [0, 1, 1]):
        x, r = image.reshape(-1), x0.reshape(-1)
        u1, r1 = x @ w1 + b1, r @ w1 + b1
        m1 = (sigmoid(u1) - sigmoid(r1)) / (u1 - r1)
        u2, r2 = sigmoid(u1) @ w2 + b2, sigmoid(r1) @ w2 + b2
        m2 = (np.maximum(u2, 0) - np.maximum(r2, 0)) / (u2 - r2)
        multiplier = w1 @ (m1 * (w2 @ (m2 * w3[:, target])))
        expected.append(((x - r) * multiplier).reshape(2, 2, 1))
    got = tfxai.DeepLIFT(model, baseline=x0).attributions(images, [0, 1, 1]).numpy()
    np.testing.assert_allclose(got, np.stack(expected), rtol=1e-10, atol=1e-13)


def test_max_pool_rule_equals_a_numpy_reference():
    """Captum's rule: per window, max(y, y0) - y0 to the argmax of x, y - max(y, y0) to the argmax of x0."""
    keras.utils.set_random_seed(6)
    inputs = keras.Input((4, 4, 1), dtype=F64)
    x = L.MaxPooling2D(2, dtype=F64)(inputs)
    model = keras.Model(inputs, L.Dense(2, dtype=F64, name="d")(L.Flatten(dtype=F64)(x)))
    w, _ = model.get_layer("d").get_weights()
    images = _rng(8).uniform(size=(3, 4, 4, 1))
    x0 = _rng(9).uniform(size=(4, 4, 1))
    targets = [0, 1, 0]
    expected = np.zeros_like(images)
    for n, (image, target) in enumerate(zip(images, targets)):
        for k, (i, j) in enumerate([(i, j) for i in (0, 2) for j in (0, 2)]):
            window, ref = image[i:i + 2, j:j + 2, 0], x0[i:i + 2, j:j + 2, 0]
            y, y0 = window.max(), ref.max()
            top, g = max(y, y0), w[k, target]
            ax, ar = np.unravel_index(window.argmax(), (2, 2)), np.unravel_index(ref.argmax(), (2, 2))
            expected[n, i + ax[0], j + ax[1], 0] += g * (top - y0)
            expected[n, i + ar[0], j + ar[1], 0] += g * (y - top)
    got = tfxai.DeepLIFT(model, baseline=x0).attributions(images, targets).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-13)


def test_multiply_rule_equals_a_numpy_reference():
    """y = a * b with b broadcast (the SE gate): m_a = (b + b0) / 2, m_b = (a + a0) / 2."""
    keras.utils.set_random_seed(7)
    inputs = keras.Input((2, 2, 3), dtype=F64)
    gate = L.Conv2D(3, 1, name="gate", dtype=F64)(L.GlobalAveragePooling2D(keepdims=True, dtype=F64)(inputs))
    feats = L.Conv2D(3, 1, name="feats", dtype=F64)(inputs)
    x = L.Multiply(dtype=F64)([feats, gate])
    model = keras.Model(inputs, L.Dense(2, name="d", dtype=F64)(L.Flatten(dtype=F64)(x)))
    models.randomize_biases_and_bn(model, 7, scale=0.5)
    (wg, bg), (wf, bf), (wd, _) = (model.get_layer(n).get_weights() for n in ("gate", "feats", "d"))
    wg, wf = wg[0, 0], wf[0, 0]
    images = _rng(10).uniform(size=(2, 2, 2, 3))
    x0 = _rng(11).uniform(size=(2, 2, 3))
    expected = []
    for image, target in zip(images, [0, 1]):
        g_y = wd[:, target].reshape(2, 2, 3)  # d s / d y
        a, a0 = image @ wf + bf, x0 @ wf + bf
        b, b0 = image.mean((0, 1)) @ wg + bg, x0.mean((0, 1)) @ wg + bg
        m_a, m_b = g_y * (b + b0) / 2, (g_y * (a + a0) / 2).sum((0, 1))
        multiplier = m_a @ wf.T + np.broadcast_to(m_b @ wg.T / 4, (2, 2, 3))
        expected.append((image - x0) * multiplier)
    got = tfxai.DeepLIFT(model, baseline=x0).attributions(images, [0, 1]).numpy()
    np.testing.assert_allclose(got, np.stack(expected), rtol=1e-10, atol=1e-13)


# ---------------------------------------------------------------------------- baselines
def test_baseline_forms_give_the_right_reference():
    model = piecewise_linear_net(1)
    images = _rng(12).uniform(size=(3, 16, 16, 3))
    targets = np.array([2, 0, 1])
    one = _rng(13).uniform(size=(16, 16, 3))
    per_image = _rng(14).uniform(size=(3, 16, 16, 3))
    cases = {
        "white": np.ones_like(images),  # the adapter's assumed range (0, 1)
        0.25: np.full_like(images, 0.25),
        "one-image": np.broadcast_to(one, images.shape),
        "per-image": per_image,
        "callable": images[::-1] * 0.5,
    }
    arguments = {"one-image": one, "per-image": per_image, "callable": lambda x: x[::-1] * 0.5}
    results = {}
    for key, reference in cases.items():
        dl = tfxai.DeepLIFT(model, baseline=arguments.get(key, key))
        attributions = dl.attributions(images, targets).numpy()
        expected = logit(model, images, targets) - logit(model, reference, targets)
        np.testing.assert_allclose(attributions.sum(axis=(1, 2, 3)), expected, atol=1e-10, err_msg=str(key))
        results[key] = attributions
    # one shared image (one reference pass) equals the same image repeated per image (a pass per chunk)
    repeated = tfxai.DeepLIFT(model, baseline=np.repeat(one[None], 3, axis=0))
    np.testing.assert_allclose(repeated.attributions(images, targets), results["one-image"], atol=1e-12)


def test_random_baseline_is_seeded_and_its_delta_needs_the_seed():
    model = piecewise_linear_net(2)
    images = _rng(15).uniform(size=(2, 16, 16, 3))
    dl = tfxai.DeepLIFT(model, baseline="uniform", seed=4)
    attributions = dl.attributions(images, [0, 1])
    np.testing.assert_allclose(dl.attributions(images, [0, 1]), attributions)
    np.testing.assert_allclose(dl.convergence_delta(images, attributions, [0, 1]), 0.0, atol=1e-10)


# ---------------------------------------------------------------------------- refusal, model safety
def test_unsupported_layers_are_refused_by_name_before_anything_runs():
    inner_in = keras.Input((6, 6, 4))
    inner = keras.Model(inner_in, L.Softmax(name="inner_softmax")(inner_in), name="inner")
    inputs = keras.Input((8, 8, 3))
    x = L.Conv2D(4, 3, name="conv")(inputs)
    x = L.LayerNormalization(name="ln")(x)
    x = inner(inner(x))  # one layer, two calls
    x = L.Conv2D(4, 1, activation="softmax", name="fused_softmax")(x)
    x = L.Maximum(name="max")([x, x])
    x = L.Multiply(name="triple")([x, x, x])
    x = L.Activation(lambda t: t * keras.ops.sigmoid(t), name="custom")(x)
    x = keras.ops.abs(x) + 1.0  # a raw op without a rule, then an affine one (fine)
    x = L.Conv2D(4, 1, activation="relu", name="fine")(x)
    outputs = L.Dense(3, activation="softmax", name="head")(L.Flatten()(x))
    model = keras.Model(inputs, outputs, name="mixed")
    with pytest.raises(UnsupportedModelError) as info:
        tfxai.DeepLIFT(model)
    assert info.value.layers == ["ln", "inner/inner_softmax", "inner/inner_softmax:1", "fused_softmax/activation",
                                 "max", "triple", "custom",
                                 "absolute (raw op Absolute)"]
    assert "IntegratedGradients" in str(info.value)


def test_the_model_is_untouched_and_training_after_construction_is_followed():
    model = models.small_cnn((12, 12, 3), num_classes=3, softmax=True, seed=8)
    images = _rng(16).uniform(size=(4, 12, 12, 3)).astype("float32")
    snapshot = weights_snapshot(model)
    dl = tfxai.DeepLIFT(model)
    before = dl.attributions(images, [0, 1, 2, 0]).numpy()
    assert_unchanged(model, snapshot)
    np.testing.assert_allclose(dl.convergence_delta(images, before, [0, 1, 2, 0]), 0.0, atol=2e-4)
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss="sparse_categorical_crossentropy")
    model.fit(images, np.array([2, 2, 2, 2]), epochs=2, verbose=0)
    after = dl.attributions(images, [0, 1, 2, 0]).numpy()
    assert np.abs(after - before).max() > 1e-3
    np.testing.assert_allclose(dl.convergence_delta(images, after, [0, 1, 2, 0]), 0.0, atol=2e-4)
    np.testing.assert_allclose(after, tfxai.DeepLIFT(model).attributions(images, [0, 1, 2, 0]), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("baseline", ["blur", "uniform"])
def test_contract_with_per_image_and_random_baselines(softmax_cnn, baseline):
    """The registry's contract test runs the shared black baseline; a per-image (blur) and a seeded random one here."""
    from tests.test_contract import check_contract

    images = _rng(1).uniform(size=(5, 16, 16, 3)).astype("float32")
    check_contract(lambda m, bs: tfxai.DeepLIFT(m, baseline=baseline, seed=2, batch_size=bs), softmax_cnn, images)
