"""A table of bad inputs and faults: each gives a clear ValueError/TypeError subclass or a warning.

Every row names what is called and the message it must give (what was received,
how to fix it). Rows that used to fail silently (a plausible, wrong map) or with
a raw TensorFlow error are marked "was: ...".
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfxai
import tfxai.integrated_gradients as tut
from tests import models
from tfxai import _registry, _runtime, metrics
from tfxai.errors import InputRangeWarning, TfxaiError

X = np.random.default_rng(0).uniform(size=(2, 16, 16, 3)).astype("float32")


class Subclassed(keras.Model):
    def __init__(self):
        super().__init__()
        self.conv = keras.layers.Conv2D(2, 3)
        self.head = keras.layers.Dense(3, activation="softmax")

    def call(self, x):
        return self.head(keras.ops.mean(self.conv(x), axis=(1, 2)))


def cnn():
    return models.small_cnn((16, 16, 3), num_classes=3, softmax=True, seed=1)


def functional(head):
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, head(x))


def dict_model():
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(inputs))
    return keras.Model(inputs, {"a": keras.layers.Dense(3)(x), "b": keras.layers.Dense(2)(x)})


def two_outputs():
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(inputs))
    return keras.Model(inputs, [keras.layers.Dense(3)(x), keras.layers.Dense(2)(x)])


def two_inputs():
    a, b = keras.Input((16, 16, 3)), keras.Input((16, 16, 3))
    return keras.Model([a, b], keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(keras.layers.Add()([a, b]))))


def swish_model():
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, activation="swish", name="swishy")(inputs)
    return keras.Model(inputs, keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(x)))


def raw_pixel_model():
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Rescaling(1 / 255.0)(inputs)
    x = keras.layers.Conv2D(4, 3, activation="relu")(x)
    return keras.Model(inputs, keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(x)))


def smooth_model(activation):
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, activation=activation, name="smooth")(inputs)
    return keras.Model(inputs, keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(x)))


def same_names():
    """An outer Conv2D named 'c' and one named 'c' inside a nested model (both 16x16x3 -> 16x16x3 convs)."""
    inner_in = keras.Input((16, 16, 3))
    inner = keras.Model(inner_in, keras.layers.Conv2D(3, 3, padding="same", name="c")(inner_in), name="inner")
    inputs = keras.Input((16, 16, 3))
    x = inner(keras.layers.Conv2D(3, 3, padding="same", activation="relu", name="c")(inputs))
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(keras.layers.GlobalAveragePooling2D()(x)))


def pooled_first():
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu")(keras.layers.MaxPooling2D()(inputs))
    return keras.Model(inputs, keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(x)))


def softmax_in_the_middle():
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, activation="softmax", name="mid")(inputs)
    x = keras.layers.LayerNormalization(name="norm")(x)
    return keras.Model(inputs, keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(x)))


def preprocessed(layer):
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu")(layer(inputs))
    return keras.Model(inputs, keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(x)))


def channels_first(pooling_only=False):
    inputs = keras.Input((3, 16, 16))
    x = inputs
    if not pooling_only:
        x = keras.layers.Conv2D(4, 3, data_format="channels_first", activation="relu", name="conv_cf")(x)
    x = keras.layers.MaxPooling2D(data_format="channels_first", name="pool_cf")(x)
    x = keras.layers.Flatten()(x)
    return keras.Model(inputs, keras.layers.Dense(3)(x))


def channels_first_behind_permute():
    """A channels-last input turned channels-first: gradients would be right, CAM activations read as (h, w, c) not."""
    inner = channels_first()
    inputs = keras.Input((16, 16, 3))
    return keras.Model(inputs, inner(keras.layers.Permute((3, 1, 2))(inputs)))


def named():
    return tfxai.adapt(cnn(), class_names=["cat", "dog", "fish"])


def nan_baseline(images):
    return images * np.nan


E = ValueError  # every error below is also a TfxaiError subclass
T = TypeError

CASES = [
    # ---- models
    ("model-not-a-model", lambda: tfxai.GradCAM("model.keras"), T, r"keras.Model.*model.keras"),
    ("model-none", lambda: tfxai.VanillaGradient(None), T, r"keras.Model.*None"),
    ("subclassed-model (was: 'build it', which does not help)", lambda: tfxai.GradCAM(Subclassed()), E, r"subclassed.*functional API"),
    ("sequential-without-input", lambda: tfxai.GradCAM(keras.Sequential([keras.layers.Conv2D(2, 3)])), E, r"keras.Input\(shape"),
    ("dict-outputs (was: raw autograph error)", lambda: tfxai.GradCAM(dict_model()), E, r"dict of outputs \['a', 'b'\].*model.output\[KEY\]"),
    ("two-outputs", lambda: tfxai.GradCAM(two_outputs()), E, r"outputs of shapes.*model.outputs\[i\]"),
    ("two-inputs", lambda: tfxai.GradCAM(two_inputs()), E, r"2 inputs"),
    ("vector-input", lambda: tfxai.VanillaGradient(keras.Sequential([keras.Input((8,)), keras.layers.Dense(2)])), E, r"\(N, H, W, C\)"),
    ("lambda-softmax (was: explained as logits)", lambda: tfxai.GradCAM(functional(lambda x: keras.layers.Lambda(keras.ops.softmax, name="probs")(keras.layers.Dense(3)(x)))), E, r"'probs'.*probabilities.*logits_layer"),
    ("unknown-final-layer", lambda: tfxai.VanillaGradient(functional(lambda x: keras.layers.Lambda(lambda t: t * 2, name="double")(keras.layers.Dense(3)(x)))), E, r"'double'.*logits_layer"),
    ("softmax-over-one-unit", lambda: tfxai.VanillaGradient(functional(keras.layers.Dense(1, activation="softmax", name="one"))), E, r"softmax over one unit.*sigmoid"),
    ("logits-layer-unknown", lambda: tfxai.adapt(cnn(), logits_layer="nope"), E, r"No layer named 'nope'"),
    ("class-names-wrong-count", lambda: tfxai.adapt(cnn(), class_names=["a"]), E, r"1 names.*3 classes"),
    ("input-range-reversed", lambda: tfxai.adapt(cnn(), input_range=(1, 0)), E, r"input_range.*low < high"),
    ("input-range-not-a-pair", lambda: tfxai.adapt(cnn(), input_range="0-255"), T, r"input_range.*pair"),
    ("decomposition-of-swish", lambda: tfxai.TGrad(swish_model()), E, r"not piecewise linear.*swishy.*linearize"),
    ("decomposition-bad-mode", lambda: tfxai.decompose(cnn(), mode="fast"), E, r"mode.*'exact', 'linearize'"),
    # ---- images
    ("images-one-image", lambda: tfxai.GradCAM(cnn())(X[0]), E, r"batch axis.*images\[None\]"),
    ("images-5d", lambda: tfxai.GradCAM(cnn())(X[None]), E, r"shape \(N, H, W, C\)"),
    ("images-empty", lambda: tfxai.GradCAM(cnn())(X[:0]), E, r"empty batch"),
    ("images-nan", lambda: tfxai.GradCAM(cnn())(np.where(X > 0.5, np.nan, X)), E, r"NaN or infinite"),
    ("images-inf", lambda: tfxai.VanillaGradient(cnn())(np.where(X > 0.5, np.inf, X)), E, r"NaN or infinite"),
    ("images-channels-first", lambda: tfxai.GradCAM(cnn())(np.transpose(X, (0, 3, 1, 2))), E, r"channels-first.*np.transpose"),
    ("images-wrong-size", lambda: tfxai.GradCAM(cnn())(np.zeros((1, 8, 8, 3))), E, r"Resize"),
    ("images-strings", lambda: tfxai.GradCAM(cnn())(np.array([["a"]])), T, r"numbers"),
    ("images-bool", lambda: tfxai.GradCAM(cnn())(X > 0.5), T, r"dtype bool"),
    ("images-complex", lambda: tfxai.GradCAM(cnn())(X.astype(np.complex64)), T, r"complex"),
    ("images-ragged", lambda: tfxai.GradCAM(cnn())([X[0], X[0, :3]]), T, r"shape \(N, H, W, C\)"),
    # ---- targets
    ("targets-float", lambda: tfxai.GradCAM(cnn())(X, [0.0, 1.0]), T, r"integer class indices.*np.asarray"),
    ("targets-bool", lambda: tfxai.GradCAM(cnn())(X, True), T, r"targets"),
    ("targets-count", lambda: tfxai.GradCAM(cnn())(X, [0, 1, 2]), E, r"3 entries.*2 images"),
    ("targets-out-of-range", lambda: tfxai.GradCAM(cnn())(X, [0, 3]), E, r"\[0, 2\].*\[3\]"),
    ("targets-negative", lambda: tfxai.GradCAM(cnn())(X, -1), E, r"out-of-range values: \[-1\]"),
    ("targets-one-hot", lambda: tfxai.GradCAM(cnn())(X, np.eye(3)[:2]), E, r"one-hot.*np.argmax"),
    ("targets-column (was: called one-hot)", lambda: tfxai.GradCAM(cnn())(X, np.array([[0], [1]])), E, r"column.*np.ravel"),
    ("targets-empty (was: misleading)", lambda: tfxai.GradCAM(cnn())(X, []), E, r"empty.*None"),
    ("targets-unknown-name", lambda: tfxai.GradCAM(named())(X, ["cat", "cow"]), E, r"Unknown class name 'cow'"),
    ("targets-name-without-names", lambda: tfxai.GradCAM(cnn())(X, "cat"), T, r"no known class names.*class_names"),
    ("targets-dict", lambda: tfxai.GradCAM(cnn())(X, {"a": 1}), T, r"integer class indices"),
    # ---- hyperparameters
    ("batch-size-zero", lambda: tfxai.GradCAM(cnn(), batch_size=0), E, r"batch_size.*>= 1"),
    ("batch-size-float", lambda: tfxai.VanillaGradient(cnn(), batch_size=1.5), T, r"batch_size"),
    ("batch-size-bool", lambda: tfxai.VanillaGradient(cnn(), batch_size=True), T, r"batch_size"),
    ("output-typo", lambda: tfxai.VanillaGradient(cnn(), output="prob"), E, r"output.*'logit', 'probability'"),
    ("positional-hyperparameter", lambda: tfxai.SmoothGrad(cnn(), 10), T, r"positional"),
    ("smoothgrad-zero-samples", lambda: tfxai.SmoothGrad(cnn(), num_samples=0), E, r"num_samples"),
    ("smoothgrad-negative-noise", lambda: tfxai.SmoothGrad(cnn(), noise_scale=-1.0), E, r"noise_scale"),
    ("smoothgrad-nan-noise", lambda: tfxai.SmoothGrad(cnn(), noise_scale=float("nan")), E, r"noise_scale"),
    ("smoothgrad-huge-noise (was: all-NaN maps)", lambda: tfxai.SmoothGrad(cnn(), noise_scale=1e38), E, r"noise_scale.*0\.1-0\.2"),
    ("seed-negative", lambda: tfxai.SmoothGrad(cnn(), seed=-1), E, r"seed"),
    ("ig-zero-steps", lambda: tfxai.IntegratedGradients(cnn(), num_steps=0), E, r"num_steps"),
    ("ig-unknown-rule", lambda: tfxai.IntegratedGradients(cnn(), method="simpson"), E, r"method.*trapezoid"),
    ("ig-unknown-baseline", lambda: tfxai.IntegratedGradients(cnn(), baseline="grey"), E, r"baseline.*'black'"),
    ("ig-baseline-object", lambda: tfxai.IntegratedGradients(cnn(), baseline=object()), T, r"baseline"),
    ("ig-baseline-nan", lambda: tfxai.IntegratedGradients(cnn(), baseline=np.nan), E, r"baseline.*NaN"),
    ("ig-baseline-shape", lambda: tfxai.IntegratedGradients(cnn(), baseline=np.zeros((5, 5, 3)))(X), E, r"broadcast"),
    ("ig-callable-baseline-nan (was: all-NaN maps)", lambda: tfxai.IntegratedGradients(cnn(), baseline=nan_baseline)(X), E, r"callable returned NaN"),
    ("ig-callable-baseline-shape", lambda: tfxai.IntegratedGradients(cnn(), baseline=lambda x: x[:, :4])(X), E, r"callable returned shape"),
    ("ig-samples-deterministic", lambda: tfxai.IntegratedGradients(cnn(), num_baseline_samples=2), E, r"random baselines"),
    ("ig-delta-unseeded-random", lambda: tfxai.IntegratedGradients(cnn(), baseline="uniform", seed=None).convergence_delta(X, np.zeros_like(X)), E, r"seed"),
    ("cam-unknown-layer", lambda: tfxai.GradCAM(cnn(), "conv3"), E, r"No layer named 'conv3'.*Did you mean"),
    ("cam-dense-layer", lambda: tfxai.GradCAM(cnn(), "head"), E, r"4-D.*'head'"),
    ("cam-layer-int", lambda: tfxai.GradCAM(cnn(), 3), T, r"layer name or a keras.layers.Layer"),
    ("cam-foreign-layer", lambda: tfxai.GradCAM(cnn(), keras.layers.Conv2D(2, 3)), E, r"not part of model"),
    ("cam-upsample-string", lambda: tfxai.GradCAM(cnn(), upsample="yes"), T, r"upsample"),
    ("gradcam++-variant", lambda: tfxai.GradCAMPlusPlus(cnn(), variant="v2"), E, r"variant"),
    ("scorecam-zero-channels", lambda: tfxai.ScoreCAM(cnn(), num_channels=0), E, r"num_channels"),
    ("fullgrad-variant", lambda: tfxai.FullGrad(cnn(), variant="captum"), E, r"variant.*official"),
    # ---- metrics
    ("maps-rank", lambda: metrics.deletion(cnn(), X, X, num_steps=4), E, r"maps.*\(N, H, W\)"),
    ("maps-count", lambda: metrics.deletion(cnn(), X, X[:1, ..., 0], num_steps=4), E, r"1 maps.*2 images"),
    ("maps-nan", lambda: metrics.insertion(cnn(), X, np.full((2, 16, 16), np.nan), num_steps=4), E, r"maps.*NaN"),
    ("maps-larger", lambda: metrics.deletion(cnn(), X, np.ones((2, 32, 32)), num_steps=4), E, r"larger than the images"),
    ("maps-strings", lambda: metrics.deletion(cnn(), X, "gradcam", num_steps=4), T, r"maps"),
    ("substrate-unknown", lambda: metrics.deletion(cnn(), X, X[..., 0], substrate="grey"), E, r"substrate.*'blur'"),
    ("substrate-shape", lambda: metrics.deletion(cnn(), X, X[..., 0], substrate=np.zeros((5, 5))), E, r"substrate.*broadcast"),
    ("substrate-bool", lambda: metrics.average_drop(cnn(), X, X[..., 0], substrate=True), T, r"substrate"),
    ("auc-rule", lambda: metrics.deletion(cnn(), X, X[..., 0], auc="simpson"), E, r"auc"),
    ("metric-steps-zero", lambda: metrics.deletion(cnn(), X, X[..., 0], num_steps=0), E, r"num_steps"),
    ("metric-old-keyword", lambda: metrics.insertion(cnn(), X, X[..., 0], baseline="blur"), T, r"baseline"),
    ("randomization-factory", lambda: metrics.cascading_randomization(cnn(), "GradCAM", X), T, r"explainer_factory"),
    # ---- attacks and the tutorial functions
    ("fgsm-targeted-without-targets", lambda: tfxai.fgsm(cnn(), X, epsilon=0.1, targeted=True), E, r"targeted attack needs `targets`"),
    ("fgsm-negative-epsilon", lambda: tfxai.fgsm(cnn(), X, epsilon=-0.1), E, r"epsilon"),
    ("fgsm-clip-reversed", lambda: tfxai.fgsm(cnn(), X, epsilon=0.1, clip=(1, 0)), E, r"clip"),
    ("fgsm-clip-word", lambda: tfxai.fgsm(cnn(), X, epsilon=0.1, clip="model"), E, r"clip.*'auto'"),
    ("pgd-zero-steps", lambda: tfxai.pgd(cnn(), X, epsilon=0.1, num_steps=0), E, r"num_steps"),
    ("integral-of-one-gradient (was: NaN)", lambda: tut.integral_approximation(np.ones((1, 4, 4, 3))), E, r"at least 2 gradients"),
    ("alphas-zero-steps", lambda: tut.alphas_for(0), E, r"m_steps"),
    ("alphas-unknown-rule", lambda: tut.alphas_for(4, "simpson"), E, r"method"),
    # engine (issue 16)
    ("ig-steps-2**31 (was: all-zero maps)", lambda: tfxai.IntegratedGradients(cnn(), num_steps=2**31), E, r"num_steps.*2,147,483,647"),
    ("smoothgrad-samples-2**31 (was: all-zero maps)", lambda: tfxai.SmoothGrad(cnn(), num_samples=2**31), E, r"num_samples.*2\*\*31"),
    ("rise-masks-2**31 (was: all-zero maps)", lambda: tfxai.RISE(cnn(), num_masks=2**31), E, r"num_masks.*limit"),
    ("batch-size-2**31 (was: raw TF error)", lambda: tfxai.GradCAM(cnn(), batch_size=2**31)(X), E, r"batch_size.*limit"),
    ("metric-batch-size-2**31", lambda: metrics.deletion(cnn(), X, X[..., 0], num_steps=2, batch_size=2**31), E, r"batch_size.*limit"),
    ("rows-per-image-2**31", lambda: _rows(2**31), E, r"rows per image.*2,147,483,648"),
    ("mixed-targets-quote-the-name (was: '0' as a name)", lambda: tfxai.GradCAM(named())(X, [0, "kat"]), E, r"Unknown class name 'kat'"),
    ("cli-targets-two-for-one-image (was: 'needs 1 or 1')", lambda: _runtime.targets_from_text("1,2", 1, tfxai.adapt(named())), E, r"2 entries but `images` has 1"),
    ("folder-targets-float (was: explains class 1)", lambda: _folder(targets=1.7), T, r"integer class indices"),
    ("folder-targets-unknown-name (was: raw ValueError)", lambda: _folder(targets="cat"), T, r"no known class names"),
    ("folder-targets-list", lambda: _folder(targets=[1, 2]), T, r"one class"),
    ("evaluate-unknown-keyword", lambda: _evaluate(num_step=4), T, r"num_step"),
    # graph (issue 16)
    ("decompose-hard-swish-exact (was: raw KerasTensor error)", lambda: tfxai.decompose(smooth_model("hard_swish")), E, r"Offending layers \(1\): \['smooth/activation'\].*mode='linearize'"),
    ("tgrad-mish-exact (was: raw KerasTensor error)", lambda: tfxai.TGrad(smooth_model("mish")), E, r"\['smooth/activation'\].*mode='linearize'"),
    ("fullgrad-hard-swish-exact (was: raw KerasTensor error)", lambda: tfxai.FullGrad(smooth_model("hard_swish")), E, r"\['smooth/activation'\].*mode='linearize'"),
    # edges (issue 16)
    ("channels-first-model (was: (N, 3, 16) maps)", lambda: tfxai.GradCAM(channels_first()), E, r"channels-first.*'conv_cf'.*set_image_data_format\('channels_last'\).*set_weights"),
    ("channels-first-model-vanilla (was: (N, 3, 16) maps)", lambda: tfxai.VanillaGradient(channels_first())(np.transpose(X, (0, 3, 1, 2))), E, r"channels-first.*\(None, 3, 16, 16\)"),
    ("channels-first-pooling-only", lambda: tfxai.Occlusion(channels_first(pooling_only=True)), E, r"channels-first.*'pool_cf'"),
    ("channels-first-behind-permute", lambda: tfxai.GradCAM(channels_first_behind_permute()), E, r"channels-first.*'conv_cf'"),
    ("channels-first-decompose", lambda: tfxai.decompose(channels_first()), E, r"channels-first"),
    ("channels-first-metric", lambda: metrics.deletion(channels_first(), np.transpose(X, (0, 3, 1, 2)), X[..., 0]), E, r"channels-first"),
    ("images-dataset (was: 'dtype object')", lambda: tfxai.GradCAM(cnn())(tf.data.Dataset.from_tensor_slices(X).batch(2)), T, r"received a tf.data.Dataset.*next\(iter\(ds\)\).*evaluation.evaluate.*explain_folder"),
    ("images-dataset-iterator (was: 'dtype object')", lambda: tfxai.IntegratedGradients(cnn())(iter(tf.data.Dataset.from_tensor_slices(X).batch(2))), T, r"received an iterator"),
    ("images-generator (was: 'dtype object')", lambda: tfxai.VanillaGradient(cnn())(image for image in X), T, r"received a generator.*np.stack"),
    ("metric-images-dataset (was: 'dtype object')", lambda: metrics.deletion(cnn(), tf.data.Dataset.from_tensor_slices(X), X[..., 0]), T, r"tf.data.Dataset"),
    # LRP (issue 19)
    ("lrp-unknown-rule", lambda: tfxai.LRP(cnn(), rule="z_minus"), E, r"Unknown LRP rule 'z_minus'.*epsilon, zplus"),
    ("lrp-unknown-composite", lambda: tfxai.LRP(cnn(), composite="epsilon_flat"), E, r"Unknown LRP composite 'epsilon_flat'.*epsilon_plus_flat"),
    ("lrp-rule-not-a-string", lambda: tfxai.LRP(cnn(), rule=1), T, r"`rule` must be a string"),
    ("lrp-rule-and-composite", lambda: tfxai.LRP(cnn(), rule="epsilon", composite="epsilon_plus"), E, r"either `rule`.*or `composite`"),
    ("lrp-negative-epsilon", lambda: tfxai.LRP(cnn(), epsilon=-1e-3), E, r"epsilon.*>= 0.*-0.001"),
    ("lrp-epsilon-string", lambda: tfxai.LRP(cnn(), epsilon="small"), T, r"epsilon.*number"),
    ("lrp-alpha-minus-beta-not-1", lambda: tfxai.LRP(cnn(), rule="alpha_beta", alpha=2, beta=2), E, r"alpha - beta = 1.*alpha=2.0, beta=2.0"),
    ("lrp-gamma-for-epsilon", lambda: tfxai.LRP(cnn(), rule="epsilon", gamma=0.5), E, r"`gamma` does not apply to rule='epsilon'"),
    ("lrp-alpha-for-composite", lambda: tfxai.LRP(cnn(), composite="epsilon_alpha2_beta1", alpha=3), E, r"`alpha` does not apply to composite='epsilon_alpha2_beta1'"),
    ("lrp-epsilon-for-zplus", lambda: tfxai.LRP(cnn(), rule="zplus", epsilon=0.1), E, r"`epsilon` does not apply to rule='zplus'"),
    ("lrp-swish (was: no LRP)", lambda: tfxai.LRP(swish_model()), E, r"LRP has no rule for 1 layer.*'swishy/activation'"),
    ("lrp-zbox-without-a-first-layer", lambda: tfxai.LRP(pooled_first(), composite="epsilon_gamma_box"), E, r"zbox rule needs a first Conv/Dense layer"),
    ("same-layer-names (was: Keras' 'The name \"c\" is used 2 times')", lambda: tfxai.GradCAM(same_names())(X), E, r"different layers with the same name.*'c': \['c', 'inner/c'\].*set_weights"),
    # DeepLIFT (issue 19)
    ("deeplift-probability", lambda: tfxai.DeepLIFT(cnn(), output="probability"), E, r"logit\(x\) - logit\(x0\).*Received: output='probability'"),
    ("deeplift-output-typo", lambda: tfxai.DeepLIFT(cnn(), output="logits"), E, r"output.*'logit'"),
    ("deeplift-unknown-baseline", lambda: tfxai.DeepLIFT(cnn(), baseline="grey"), E, r"baseline.*'black'"),
    ("deeplift-baseline-object", lambda: tfxai.DeepLIFT(cnn(), baseline=object()), T, r"baseline"),
    ("deeplift-baseline-shape", lambda: tfxai.DeepLIFT(cnn(), baseline=np.zeros((5, 5, 3)))(X), E, r"broadcast"),
    ("deeplift-callable-baseline-nan", lambda: tfxai.DeepLIFT(cnn(), baseline=nan_baseline)(X), E, r"callable returned NaN"),
    ("deeplift-delta-unseeded-random", lambda: tfxai.DeepLIFT(cnn(), baseline="uniform").convergence_delta(X, np.zeros_like(X)), E, r"seed=0"),
    ("deeplift-softmax-in-the-middle (was: the plain gradient through it)", lambda: tfxai.DeepLIFT(softmax_in_the_middle()), E, r"no rule for 2 part\(s\).*\['mid/activation', 'norm'\].*IntegratedGradients"),
    # Expected Gradients and Blur IG (issue 19)
    ("eg-missing-baselines", lambda: tfxai.ExpectedGradients(cnn()), T, r"baselines"),
    ("eg-baselines-none", lambda: tfxai.ExpectedGradients(cnn(), baselines=None), T, r"array \(B, H, W, C\).*Dataset.*uniform"),
    ("eg-baselines-unknown-name", lambda: tfxai.ExpectedGradients(cnn(), baselines="black"), E, r"baselines.*'uniform'"),
    ("eg-baselines-one-image", lambda: tfxai.ExpectedGradients(cnn(), baselines=X[0]), E, r"one image.*baselines\[None\].*IntegratedGradients"),
    ("eg-baselines-wrong-size", lambda: tfxai.ExpectedGradients(cnn(), baselines=np.zeros((2, 8, 8, 3))), E, r"\(2, 8, 8, 3\).*\(N, 16, 16, 3\)"),
    ("eg-baselines-2d", lambda: tfxai.ExpectedGradients(cnn(), baselines=np.zeros((16, 16))), E, r"\(B, H, W, C\).*\(16, 16\)"),
    ("eg-baselines-empty", lambda: tfxai.ExpectedGradients(cnn(), baselines=X[:0]), E, r"no image"),
    ("eg-baselines-nan", lambda: tfxai.ExpectedGradients(cnn(), baselines=np.where(X > 0.5, np.nan, X)), E, r"baselines.*NaN"),
    ("eg-baselines-strings", lambda: tfxai.ExpectedGradients(cnn(), baselines=np.full((1, 16, 16, 3), "a")), T, r"baselines.*dtype"),
    ("eg-baselines-generator", lambda: tfxai.ExpectedGradients(cnn(), baselines=(x for x in X)), T, r"baselines.*generator"),
    ("eg-baselines-empty-dataset", lambda: tfxai.ExpectedGradients(cnn(), baselines=tf.data.Dataset.from_tensor_slices(X[:0])), E, r"dataset is empty"),
    ("eg-baselines-dataset-of-dicts", lambda: tfxai.ExpectedGradients(cnn(), baselines=tf.data.Dataset.from_tensor_slices({"image": X})), T, r"dicts.*\['image'\].*ds.map"),
    ("eg-baselines-dataset-of-vectors", lambda: tfxai.ExpectedGradients(cnn(), baselines=tf.data.Dataset.from_tensor_slices(np.zeros((4, 5)))), E, r"elements of shape \(5,\)"),
    ("eg-zero-samples", lambda: tfxai.ExpectedGradients(cnn(), baselines=X, num_samples=0), E, r"num_samples.*>= 1"),
    ("eg-samples-2**31", lambda: tfxai.ExpectedGradients(cnn(), baselines=X, num_samples=2**31), E, r"num_samples.*limit"),
    ("eg-zero-max-baselines", lambda: tfxai.ExpectedGradients(cnn(), baselines=X, max_baselines=0), E, r"max_baselines"),
    ("eg-delta-unseeded", lambda: tfxai.ExpectedGradients(cnn(), baselines=X).convergence_delta(X, np.zeros_like(X)), E, r"seed"),
    ("eg-delta-over-uniform", lambda: tfxai.ExpectedGradients(cnn(), baselines="uniform", seed=0).convergence_delta(X, np.zeros_like(X), over="baselines"), E, r"no finite set.*over='draws'"),
    ("eg-delta-over-typo", lambda: tfxai.ExpectedGradients(cnn(), baselines=X, seed=0).convergence_delta(X, np.zeros_like(X), over="all"), E, r"over.*'draws', 'baselines'"),
    ("blurig-zero-sigma", lambda: tfxai.BlurIG(cnn(), max_sigma=0), E, r"max_sigma.*> 0"),
    ("blurig-negative-sigma", lambda: tfxai.BlurIG(cnn(), max_sigma=-5.0), E, r"max_sigma.*> 0"),
    ("blurig-nan-sigma", lambda: tfxai.BlurIG(cnn(), max_sigma=float("nan")), E, r"max_sigma.*finite"),
    ("blurig-huge-sigma", lambda: tfxai.BlurIG(cnn(), max_sigma=1e9), E, r"max_sigma.*limit"),
    ("blurig-sigma-string", lambda: tfxai.BlurIG(cnn(), max_sigma="50"), T, r"max_sigma.*number"),
    ("blurig-zero-steps", lambda: tfxai.BlurIG(cnn(), num_steps=0), E, r"num_steps"),
    ("blurig-zero-grad-step", lambda: tfxai.BlurIG(cnn(), grad_step=0.0), E, r"grad_step.*> 0"),
    ("blurig-sqrt-string", lambda: tfxai.BlurIG(cnn(), sqrt="yes"), T, r"sqrt.*True or False"),
    ("blurig-zero-truncate", lambda: tfxai.BlurIG(cnn(), truncate=0), E, r"truncate.*> 0"),
    # ---- Guided IG (issue 19)
    ("guidedig-zero-steps", lambda: tfxai.GuidedIG(cnn(), num_steps=0), E, r"num_steps.*>= 1"),
    ("guidedig-fraction-zero", lambda: tfxai.GuidedIG(cnn(), fraction=0.0), E, r"fraction.*\(0, 1\].*0\.0"),
    ("guidedig-fraction-above-one", lambda: tfxai.GuidedIG(cnn(), fraction=1.5), E, r"fraction.*\(0, 1\].*1\.5"),
    ("guidedig-fraction-nan", lambda: tfxai.GuidedIG(cnn(), fraction=float("nan")), E, r"fraction"),
    ("guidedig-fraction-string", lambda: tfxai.GuidedIG(cnn(), fraction="25%"), T, r"fraction.*number"),
    ("guidedig-negative-max-dist", lambda: tfxai.GuidedIG(cnn(), max_dist=-0.1), E, r"max_dist.*>= 0"),
    ("guidedig-unknown-baseline", lambda: tfxai.GuidedIG(cnn(), baseline="grey"), E, r"baseline.*'black'"),
    ("guidedig-baseline-nan", lambda: tfxai.GuidedIG(cnn(), baseline=np.nan), E, r"baseline.*NaN"),
    ("guidedig-baseline-shape", lambda: tfxai.GuidedIG(cnn(), baseline=np.zeros((5, 5, 3)))(X), E, r"broadcast"),
    ("guidedig-callable-baseline-shape", lambda: tfxai.GuidedIG(cnn(), baseline=lambda x: x[:, :4])(X), E, r"callable returned shape"),
    ("guidedig-delta-unseeded-random", lambda: tfxai.GuidedIG(cnn(), baseline="uniform").convergence_delta(X, np.zeros_like(X)), E, r"seed"),
]


def _evaluate(**options):
    from tfxai import evaluation

    return evaluation.evaluate(cnn(), {}, None, **options)


def _rows(rows_per_image):
    import tensorflow as tf

    from tfxai import _batching

    return _batching.accumulate_rows(lambda i, k: tf.ones([tf.shape(i)[0]]), 1, rows_per_image, 4, tf.TensorSpec([]))


def _folder(**options):
    import tempfile
    from pathlib import Path

    import tfxai.streaming

    folder = Path(tempfile.mkdtemp())
    keras.utils.save_img(folder / "a.png", X[0] * 255, scale=False)
    return tfxai.streaming.explain_folder(cnn(), folder, folder / "out", methods="gradcam", progress=False, **options)


@pytest.mark.parametrize("call, error, message", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_gives_a_clear_error(call, error, message):
    with pytest.raises(error, match=message) as info:
        call()
    if "old-keyword" not in message and error in (E, T) and not isinstance(info.value, TfxaiError):
        assert "positional" in str(info.value) or "baseline" in str(info.value)  # Python's own signature errors


@pytest.mark.parametrize("name", list(_registry.METHODS))
def test_every_registered_method_refuses_bad_images_with_the_shared_messages(name):
    """The table above calls one method per row; every registered method validates its images the same way."""
    overrides = {"num_channels": None} if name == "scorecam" else {}  # the small CNN has 8 channels
    explainer = _registry.build(name, cnn(), quick=True, **overrides)
    bad = [
        (tf.data.Dataset.from_tensor_slices(X).batch(2), T, r"received a tf.data.Dataset"),
        ((image for image in X), T, r"received a generator"),
        (X[0], E, r"batch axis"),
        (np.transpose(X, (0, 3, 1, 2)), E, r"channels-first"),
        (np.where(X > 0.5, np.nan, X), E, r"NaN or infinite"),
    ]
    for images, error, message in bad:
        with pytest.raises(error, match=message):
            explainer(images)
    with pytest.raises(E, match=r"channels-first.*'conv_cf'"):
        _registry.build(name, channels_first(), quick=True, **overrides)


WARNING_CASES = [
    ("raw-pixel-model-given-unit-images", lambda: tfxai.GradCAM(raw_pixel_model())(X), r"scaled twice"),
    ("unit-model-given-raw-pixels", lambda: tfxai.GradCAM(cnn())(X * 255), r"far outside the input range \(0\.0, 1\.0\)"),
    ("preprocessed-images-on-an-assumed-range", lambda: tfxai.VanillaGradient(cnn())(X * 2 - 1), r"\[-?\d.*tfxai.adapt\(model, input_range"),
    ("raw-pixel-model-given-huge-values", lambda: tfxai.GradCAM(raw_pixel_model())(X * 1e5), r"far outside.*\(0\.0, 255\.0\)"),
    ("metric-images-outside", lambda: metrics.deletion(cnn(), X * 255, X[..., 0], num_steps=2), r"far outside"),
    ("attack-images-outside", lambda: tfxai.fgsm(cnn(), X * 255, epsilon=1.0), r"far outside"),
    # graph (issue 16)
    ("unreadable-normalization-range (was: read as [0, 255])", lambda: tfxai.GradCAM(preprocessed(keras.layers.Normalization(mean=0.0, variance=1.0)))(X), r"Normalization layer 'normalization'.*input_range="),
    ("unreadable-rescaling-range (was: read as [0, 255])", lambda: tfxai.GradCAM(preprocessed(keras.layers.Rescaling(3.0)))(X), r"Rescaling layer 'rescaling'.*input_range="),
    ("eg-baselines-outside-the-range", lambda: tfxai.ExpectedGradients(cnn(), baselines=X * 255), r"`baselines` span.*far outside"),
]


@pytest.mark.parametrize("call, message", [c[1:] for c in WARNING_CASES], ids=[c[0] for c in WARNING_CASES])
def test_suspicious_input_warns(call, message):
    with pytest.warns(InputRangeWarning, match=message):
        call()
