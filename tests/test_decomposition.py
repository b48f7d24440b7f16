"""tfxai.decompose: completeness, residuals against Jacobians, refusal and linearize mode."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfxai
from tests import models
from tests.conftest import assert_unchanged, weights_snapshot
from tests.reference import decomposition as reference
from tfxai.errors import InvalidInputError, InvalidTypeError, UnsupportedModelError

APPS = {
    "VGG16": (keras.applications.VGG16, 32),
    "ResNet50": (keras.applications.ResNet50, 32),
    "ResNet50V2": (keras.applications.ResNet50V2, 32),
    "MobileNetV2": (keras.applications.MobileNetV2, 32),
    "DenseNet121": (keras.applications.DenseNet121, 32),
    "InceptionV3": (keras.applications.InceptionV3, 75),
}


def _app(name, seed=0):
    build, size = APPS[name]
    model = build(weights=None, input_shape=(size, size, 3), classes=10, classifier_activation=None)
    models.randomize_biases_and_bn(model, seed)
    images = np.random.default_rng(seed).uniform(-1.0, 1.0, size=(2, size, size, 3))
    return model, images.astype(keras.config.floatx())


def _eager_terms(d, images, targets=(-1, -1)):
    """The decomposition's one-pass core run eagerly (avoids a long graph trace in tests)."""
    s, t, input_term, values = d.terms(tf.constant(images), tf.constant(targets, tf.int32))
    total = tfxai.decomposition.sum_terms(input_term, values)
    return s.numpy(), total.numpy()


def _relative_error(s, total):
    return np.max(np.abs(s - total) / np.maximum(np.abs(s), 1.0))


# ------------------------------------------------------------------ completeness on applications
@pytest.mark.slow
@pytest.mark.parametrize("name", list(APPS))
def test_completeness_applications_float64(float64, name):
    model, images = _app(name)
    d = tfxai.decompose(model)
    kinds = {site.kind for site in d.sites}
    assert "dense_bias" in kinds and ("conv_bias" in kinds or "batch_norm" in kinds)
    if name == "MobileNetV2":
        assert "activation" in kinds  # ReLU6 saturation constants
    s, total = _eager_terms(d, images)
    assert _relative_error(s, total) < 1e-9
    # the site terms matter: without them the input term alone is far off
    _, _, input_term, _ = d.terms(tf.constant(images), tf.constant([-1, -1]))
    assert _relative_error(s, input_term.numpy().sum(axis=(1, 2, 3))) > 1e-4


@pytest.mark.slow
@pytest.mark.parametrize("name", ["MobileNetV2"])
def test_completeness_applications_float32(name):
    model, images = _app(name, seed=1)
    d = tfxai.decompose(model)
    s, total = _eager_terms(d, images, targets=(3, 7))
    assert _relative_error(s, total) < 1e-3
    np.testing.assert_allclose(s, model(images, training=False).numpy()[[0, 1], [3, 7]], rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_completeness_real_model_float32(real_model, real_samples):
    images = real_samples[0][:2]
    snapshot = weights_snapshot(real_model)
    d = tfxai.decompose(real_model)
    out = d(images)  # the compiled path, softmax stripped
    assert {"rescaling", "batch_norm", "activation", "dense_bias"} <= {t.kind for t in out.terms}
    logits = tfxai.surgery.logits_model(real_model)(images, training=False).numpy()
    np.testing.assert_allclose(out.logits.numpy(), logits.max(axis=1), rtol=1e-5)
    assert np.max(d.completeness_gap(images)) < 1e-3
    assert_unchanged(real_model, snapshot)


@pytest.mark.slow
def test_efficientnet_refused_then_linearized(float64):
    model = keras.applications.EfficientNetB0(
        weights=None, input_shape=(32, 32, 3), classes=10, classifier_activation=None
    )
    models.randomize_biases_and_bn(model)
    with pytest.raises(UnsupportedModelError, match="mode='linearize'") as info:
        tfxai.decompose(model)
    swish = [l.name for l in model.layers if isinstance(l, keras.layers.Activation)
             and keras.activations.serialize(l.activation) in ("swish", "silu")]
    assert len(swish) > 10 and set(swish) <= set(info.value.layers)
    assert "block1a_se_excite" in info.value.layers  # the Squeeze-Excitation Multiply
    d = tfxai.decompose(model, mode="linearize")
    assert "linearized" in {site.kind for site in d.sites}
    images = np.random.default_rng(0).uniform(0, 255, size=(2, 32, 32, 3))
    s, total = _eager_terms(d, images)
    assert _relative_error(s, total) < 1e-9


# ------------------------------------------------------------------ a zoo of every site kind
def _zoo(softmax=True):
    """A nested float64 model with every site kind and every linear piece."""
    rng = np.random.default_rng(3)
    d = "float64"
    inner_in = keras.Input((8, 8, 6), dtype=d)
    y = keras.layers.DepthwiseConv2D(3, padding="same", name="dw", dtype=d)(inner_in)
    y = keras.layers.BatchNormalization(scale=False, name="bn_noscale", dtype=d)(y)
    y = keras.layers.ReLU(threshold=0.1, negative_slope=0.2, name="relu_thr", dtype=d)(y)
    y = keras.layers.SeparableConv2D(6, 3, padding="same", activation="relu6", name="sep", dtype=d)(y)
    y = keras.layers.Add(dtype=d)([y, inner_in])
    y = keras.layers.BatchNormalization(center=False, scale=False, name="bn_plain", dtype=d)(y)
    inner = keras.Model(inner_in, y, name="inner")

    inputs = keras.Input((16, 16, 3), dtype=d)
    x = keras.layers.Rescaling([0.5, 1.0, 2.0], offset=[0.1, -0.2, 0.3], name="rescale", dtype=d)(inputs)
    norm = keras.layers.Normalization(mean=[0.1, 0.2, 0.3], variance=[1.5, 0.5, 2.0], name="norm", dtype=d)
    x = norm(x)
    x = keras.layers.ZeroPadding2D(1, dtype=d)(x)
    x = keras.layers.Conv2D(6, 3, activation="relu", name="conv_relu", dtype=d)(x)
    x = keras.layers.BatchNormalization(name="bn", dtype=d)(x)
    x = keras.layers.LeakyReLU(0.1, dtype=d)(x)
    x = keras.layers.AveragePooling2D(2, dtype=d)(x)
    x = inner(x)
    x2 = keras.layers.Conv2D(4, 1, name="conv_linear", dtype=d)(x)
    x = keras.layers.Concatenate(dtype=d)([x, x2])
    x = keras.layers.ReLU(max_value=6.0, name="relu6", dtype=d)(x)
    x = keras.layers.MaxPooling2D(2, dtype=d)(x)
    x = keras.layers.Dropout(0.5, dtype=d)(x)
    x = keras.layers.GlobalAveragePooling2D(dtype=d)(x)
    x = keras.layers.Dense(7, activation="relu", name="fc", dtype=d)(x)
    outputs = keras.layers.Dense(4, activation="softmax" if softmax else None, name="head", dtype=d)(x)
    model = keras.Model(inputs, outputs, name="zoo")
    for layer in [*model.layers, *inner.layers]:
        for weight in layer.weights:
            if "variance" in weight.path:
                weight.assign(rng.uniform(0.3, 1.5, weight.shape))
            elif "count" not in weight.path and not isinstance(layer, keras.layers.Normalization):
                weight.assign(rng.normal(0, 1.5, weight.shape))
    return model


def test_zoo_completeness_logits_and_unchanged(float64):
    model = _zoo()
    snapshot = weights_snapshot(model)
    d = tfxai.decompose(model, batch_size=2)
    kinds = {site.kind for site in d.sites}
    assert kinds == {"rescaling", "normalization", "conv_bias", "batch_norm", "depthwise_bias",
                     "separable_bias", "activation", "dense_bias"}
    images = np.random.default_rng(0).uniform(-3, 3, size=(5, 16, 16, 3))
    out = d(images, targets=[0, 1, 2, 3, 0])
    # the probe's logits are the model's (softmax stripped), to float64 rounding
    probs = model(images, training=False).numpy()
    logits = out.logits.numpy()
    predicted = tfxai.surgery.logits_model(model)(images, training=False).numpy()
    np.testing.assert_allclose(logits, predicted[np.arange(5), [0, 1, 2, 3, 0]], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(tf.nn.softmax(predicted).numpy(), probs, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(out.total().numpy(), logits, rtol=1e-10, atol=1e-10)
    assert np.max(d.completeness_gap(images, [0, 1, 2, 3, 0])) < 1e-10
    for term, site in zip(out.terms, d.sites):
        assert term.value.shape == (5, *site.shape)
        assert np.any(term.value.numpy() != 0), site  # every site contributes on this input
    assert_unchanged(model, snapshot)
    assert keras.activations.serialize(model.get_layer("head").activation) == "softmax"


def test_predicted_targets(float64):
    model = _zoo(softmax=False)
    d = tfxai.decompose(model)
    images = np.random.default_rng(1).uniform(-3, 3, size=(3, 16, 16, 3))
    out = d(images)
    np.testing.assert_array_equal(out.targets.numpy(), model(images).numpy().argmax(axis=1))
    np.testing.assert_allclose(out.logits.numpy(), model(images).numpy().max(axis=1), rtol=1e-12)
    one = d(images, targets=2)
    np.testing.assert_allclose(one.logits.numpy(), model(images).numpy()[:, 2], rtol=1e-12)


def test_terms_match_reference(float64):
    model = reference.small_bn_cnn()
    images = np.random.default_rng(0).normal(0, 1, size=(3, 12, 12, 3))
    targets = np.array([0, 2, 1])
    logits, input_term, terms = reference.decomposition(model, images, targets)
    assert np.any(terms["relu6"] != 0) and np.any(terms["relu6"] == 0)  # saturation is exercised
    out = tfxai.decompose(model)(images, targets)
    np.testing.assert_allclose(out.logits.numpy(), logits, rtol=1e-12)
    np.testing.assert_allclose(out.input_term.numpy(), input_term, rtol=1e-9, atol=1e-12)
    assert [t.name for t in out.terms] == list(terms)
    for term in out.terms:
        np.testing.assert_allclose(term.value.numpy(), terms[term.name], rtol=1e-9, atol=1e-12, err_msg=term.name)


# ------------------------------------------------------------------ residuals against Jacobians
SINGLE_SITE_LAYERS = {
    "conv": lambda: keras.layers.Conv2D(3, 3, padding="same"),
    "conv_relu": lambda: keras.layers.Conv2D(3, 3, padding="valid", activation="relu"),
    "dense": lambda: keras.layers.Dense(3),
    "depthwise": lambda: keras.layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same"),
    "separable": lambda: keras.layers.SeparableConv2D(3, 3, padding="same"),
    "bn": lambda: keras.layers.BatchNormalization(),
    "bn_no_center": lambda: keras.layers.BatchNormalization(center=False),
    "bn_no_scale": lambda: keras.layers.BatchNormalization(scale=False),
    "bn_plain": lambda: keras.layers.BatchNormalization(center=False, scale=False, epsilon=0.1),
    "rescaling": lambda: keras.layers.Rescaling([0.5, 2.0], offset=[0.3, -1.0]),
    "normalization": lambda: keras.layers.Normalization(mean=[0.4, -0.2], variance=[2.0, 0.3]),
    "relu6": lambda: keras.layers.ReLU(6.0),
    "relu_threshold": lambda: keras.layers.ReLU(threshold=0.5, negative_slope=0.3),
    "relu_all": lambda: keras.layers.ReLU(max_value=2.0, threshold=0.5, negative_slope=0.2),
    "activation_relu6": lambda: keras.layers.Activation("relu6"),
}


@pytest.mark.parametrize("kind", list(SINGLE_SITE_LAYERS))
def test_site_residual_is_f_minus_jacobian_times_input(float64, kind):
    rng = np.random.default_rng(0)
    layer = SINGLE_SITE_LAYERS[kind]()
    inputs = keras.Input((5, 5, 2), dtype="float64")
    flat = kind == "dense"
    u_in = keras.layers.Flatten(dtype="float64")(inputs) if flat else inputs
    head = keras.layers.Dense(2, name="head", dtype="float64")(keras.layers.Flatten(dtype="float64")(layer(u_in)))
    model = keras.Model(inputs, head)
    for weight in layer.weights:
        if "variance" in weight.path:
            weight.assign(rng.uniform(0.3, 1.5, weight.shape))
        elif not isinstance(layer, keras.layers.Normalization):
            weight.assign(rng.normal(0, 1, weight.shape))
    x = tf.constant(rng.normal(0, 3, size=(2, 5, 5, 2)))
    _, records = tfxai.decompose(model).forward(x)
    assert [site.name for site, _, _ in records][-1] == "head"
    site, y, r = records[0]
    assert site.name == layer.name
    u = tf.reshape(x, [2, -1]) if flat else x
    with tf.GradientTape() as tape:
        tape.watch(u)
        f = layer(u, training=False)
    jacobian = tape.batch_jacobian(f, u).numpy().reshape(2, -1, u.shape[1:].num_elements())
    ju = np.einsum("noi,ni->no", jacobian, u.numpy().reshape(2, -1)).reshape(f.shape)
    expected = f.numpy() - ju
    out_axes = f.shape.rank - 1
    np.testing.assert_allclose(y.numpy(), f.numpy(), rtol=1e-12)
    np.testing.assert_allclose(np.broadcast_to(r.numpy(), f.shape), expected, rtol=1e-9, atol=1e-12)
    assert out_axes >= 1 and np.any(expected != 0)


# ------------------------------------------------------------------ refusal, linearize, errors
def _gated_model():
    d = "float64"
    inputs = keras.Input((8, 8, 3), dtype=d)
    x = keras.layers.Conv2D(4, 3, activation="swish", name="conv_swish", dtype=d)(inputs)
    gate = keras.layers.GlobalAveragePooling2D(keepdims=True, dtype=d)(x)
    gate = keras.layers.Conv2D(4, 1, activation="sigmoid", name="gate", dtype=d)(gate)
    x = keras.layers.Multiply(name="excite", dtype=d)([x, gate])
    x = keras.layers.LayerNormalization(name="ln", dtype=d)(x)
    x = keras.layers.Activation("gelu", name="gelu", dtype=d)(x)
    x = keras.layers.Flatten(dtype=d)(x)
    x = keras.layers.Dense(3, activation="tanh", name="hidden", dtype=d)(x)
    outputs = keras.layers.Dense(3, name="head", dtype=d)(x)
    return models.randomize_biases_and_bn(keras.Model(inputs, outputs), scale=0.5)


def test_unsupported_layers_are_all_listed(float64):
    with pytest.raises(UnsupportedModelError, match="Offending layers \\(6\\)") as info:
        tfxai.decompose(_gated_model())
    assert info.value.layers == ["conv_swish/activation", "gate/activation", "excite", "ln", "gelu", "hidden/activation"]


def test_linearize_mode_is_complete(float64):
    model = _gated_model()
    snapshot = weights_snapshot(model)
    d = tfxai.decompose(model, mode="linearize")
    linearized = [s.name for s in d.sites if s.kind == "linearized"]
    assert linearized == ["conv_swish/activation", "gate/activation", "excite", "ln", "gelu", "hidden/activation"]
    images = np.random.default_rng(0).normal(0, 1, size=(4, 8, 8, 3))
    out = d(images)
    np.testing.assert_allclose(out.total().numpy(), out.logits.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(out.logits.numpy(), model(images).numpy().max(axis=1), rtol=1e-12)
    # Multiply(u1, u2): J (u1, u2) = 2 u1 u2, so r = -u1 u2 != 0
    assert np.any(out.terms[[t.name for t in out.terms].index("excite")].value.numpy() != 0)
    assert_unchanged(model, snapshot)


def test_linearize_residual_of_multiply_is_minus_product(float64):
    u = [tf.constant([[1.0, -2.0, 3.0]], tf.float64), tf.constant([[0.5, 4.0, -1.0]], tf.float64)]
    r = tfxai.decomposition.linearization_residual(lambda t: keras.layers.Multiply()(t), u)
    np.testing.assert_allclose(r.numpy(), -(u[0] * u[1]).numpy(), rtol=1e-12)


def test_errors():
    model = models.small_cnn()
    with pytest.raises(InvalidInputError, match="mode"):
        tfxai.decompose(model, mode="approximate")
    with pytest.raises(InvalidTypeError, match="model"):
        tfxai.decompose("not a model")
    with pytest.raises(InvalidInputError, match="batch_size"):
        tfxai.decompose(model, batch_size=0)

    class Sub(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(2)

        def call(self, x):
            return self.dense(keras.layers.Flatten()(x))

    sub = Sub()
    sub(np.zeros((1, 4, 4, 3), "float32"))
    with pytest.raises((UnsupportedModelError, InvalidTypeError), match="functional|Sequential|inputs"):
        tfxai.decompose(sub)
    d = tfxai.decompose(model)
    with pytest.raises(InvalidInputError):
        d(np.zeros((2, 16, 16, 3), "float32"), targets=[0, 9])
    with pytest.raises(InvalidInputError):
        d(np.zeros((16, 16, 3), "float32"))


def test_sequential_model_and_repr():
    model = keras.Sequential([
        keras.Input((8, 8, 1)),
        keras.layers.Conv2D(2, 3, activation="relu"),
        keras.layers.Flatten(),
        keras.layers.Dense(2),
    ])
    models.randomize_biases_and_bn(model)
    d = tfxai.decompose(model)
    assert "sites=2" in repr(d)
    images = np.random.default_rng(0).normal(size=(3, 8, 8, 1)).astype("float32")
    assert np.max(d.completeness_gap(images)) < 1e-5


# ------------------------------------------------------------------ graph (issue 16): smooth activations, refusal first
def _smooth_model():
    """hard-swish and mish in every form: fused, Activation layer, after a linear view."""
    d = "float64"
    inputs = keras.Input((8, 8, 3), dtype=d)
    x = keras.layers.Conv2D(4, 3, activation="hard_swish", name="conv_hs", dtype=d)(inputs)
    x = keras.layers.BatchNormalization(name="bn", dtype=d)(x)
    x = keras.layers.Activation("mish", name="mish", dtype=d)(x)
    x = keras.layers.DepthwiseConv2D(3, activation="mish", name="dw_mish", dtype=d)(x)
    x = keras.layers.Activation("hard_swish", name="hs", dtype=d)(x)
    x = keras.layers.GlobalAveragePooling2D(dtype=d)(x)
    outputs = keras.layers.Dense(3, activation="softmax", name="head", dtype=d)(x)
    return models.randomize_biases_and_bn(keras.Model(inputs, outputs), seed=5, scale=0.5)


SMOOTH = ["conv_hs/activation", "mish", "dw_mish/activation", "hs"]


def test_hard_swish_and_mish_are_refused_by_name_in_exact_mode(float64):
    """was: the bare activation called on a KerasTensor, a raw ValueError."""
    with pytest.raises(UnsupportedModelError, match=r"Offending layers \(4\).*mode='linearize'") as info:
        tfxai.decompose(_smooth_model())
    assert info.value.layers == SMOOTH


def test_hard_swish_and_mish_linearized_are_complete(float64):
    model = _smooth_model()
    snapshot = weights_snapshot(model)
    d = tfxai.decompose(model, mode="linearize")
    assert [s.name for s in d.sites if s.kind == "linearized"] == SMOOTH
    images = np.random.default_rng(0).normal(0, 1, size=(3, 8, 8, 3))
    out = d(images)
    # independent: the logits from the Dense layer's own kernel and bias on the pooled features
    head = model.get_layer("head")
    features = keras.Model(model.inputs, head.input)(images).numpy()
    logits = features @ head.kernel.numpy() + head.bias.numpy()
    np.testing.assert_allclose(out.logits.numpy(), logits.max(axis=1), rtol=1e-12)
    np.testing.assert_allclose(out.total().numpy(), out.logits.numpy(), rtol=1e-12, atol=1e-13)
    for name in SMOOTH:  # every smooth activation's residual matters
        assert np.any(out.terms[[t.name for t in out.terms].index(name)].value.numpy() != 0), name
    for method in (tfxai.TGrad(model, mode="linearize"), tfxai.FullGrad(model, mode="linearize")):
        maps = method(images).numpy()
        assert np.all(np.isfinite(maps)) and np.all(np.ptp(maps.reshape(3, -1), axis=1) > 0)
    assert_unchanged(model, snapshot)


class _Counting(keras.layers.Layer):
    """A custom (unknown, so nonlinear) layer that counts how often it is evaluated, symbolically or not."""

    evaluations = 0

    def call(self, x):
        type(self).evaluations += 1
        return x * x

    def compute_output_spec(self, x):
        type(self).evaluations += 1
        return keras.KerasTensor(x.shape, x.dtype)


def test_exact_mode_refuses_before_evaluating_anything(float64):
    """was: the offending layers were called on KerasTensors first, then refused."""
    inputs = keras.Input((6, 6, 2), dtype="float64")
    x = _Counting(name="square", dtype="float64")(keras.layers.Conv2D(2, 3, name="conv", dtype="float64")(inputs))
    model = keras.Model(inputs, keras.layers.Dense(2, dtype="float64")(keras.layers.Flatten(dtype="float64")(x)))
    _Counting.evaluations = 0
    with pytest.raises(UnsupportedModelError, match=r"\['square'\]"):
        tfxai.decompose(model)
    assert _Counting.evaluations == 0


@pytest.mark.slow
def test_mobilenet_v3_small_linearized_is_complete():
    """MobileNetV3Small (hard-swish, hard-sigmoid as raw ops, Squeeze-Excitation): refused by name, then linearized."""
    model = keras.applications.MobileNetV3Small(
        weights=None, input_shape=(96, 96, 3), minimalistic=False, classes=10, classifier_activation="softmax"
    )
    models.randomize_biases_and_bn(model, seed=2)
    with pytest.raises(UnsupportedModelError, match="mode='linearize'") as info:
        tfxai.decompose(model)
    hard_swish = [l.name for l in model.layers if isinstance(l, keras.layers.Activation)
                  and tfxai.surgery.activation_kind(l) == "hard_silu"]
    assert len(hard_swish) > 5 and set(hard_swish) <= set(info.value.layers)
    d = tfxai.decompose(model, mode="linearize", batch_size=2)
    images = np.random.default_rng(0).uniform(0, 255, size=(2, 96, 96, 3)).astype("float32")
    s, total = _eager_terms(d, images)
    assert _relative_error(s, total) < 1e-3
    logits = tfxai.surgery.logits_model(model)(images).numpy()
    np.testing.assert_allclose(s, logits.max(axis=1), rtol=1e-4, atol=1e-4)
    adapter = tfxai.adapt(model, input_range=(0, 255))
    # was: a raw KerasTensor error. FullGrad: a non-constant map.
    fullgrad = tfxai.FullGrad(adapter, mode="linearize", batch_size=2)(images).numpy()
    assert np.all(np.isfinite(fullgrad)) and np.all(np.ptp(fullgrad.reshape(2, -1), axis=1) > 0)
    # T-Grad: each phi sums to 1, so the map sums to the sum of the weights ReLU(sum(term)) of the spatial terms
    tgrad = tfxai.TGrad(adapter, mode="linearize", batch_size=2)(images).numpy()
    out = tfxai.decompose(adapter, mode="linearize", batch_size=2)(images)
    spatial = [out.input_term.numpy()] + [t.value.numpy() for t in out.terms if t.value.shape.rank == 4]
    weights = sum(np.maximum(v.astype(np.float64).sum(axis=(1, 2, 3)), 0) for v in spatial)
    assert np.all(np.isfinite(tgrad)) and np.all(tgrad >= 0)
    np.testing.assert_allclose(tgrad.sum(axis=(1, 2)), weights, rtol=1e-3, atol=1e-9)
