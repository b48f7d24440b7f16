# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 5. SmoothGrad, Input x Gradient, FullGrad and T-Grad (and LRP, DeepLIFT)
#
# Notebook 1 showed that the raw input gradient $\nabla_x y_c$ of a photo is grainy. This notebook
# goes through four ways to do better:
#
# 1. **SmoothGrad** averages the gradient over noisy copies of the image;
# 2. **Input x Gradient** multiplies it by the input, $x \odot \nabla_x y_c$ (a signed map);
# 3. **FullGrad** adds the gradients at every bias of the network;
# 4. **T-Grad** weighs those per-layer terms by how much each layer contributes to the logit.
#
# FullGrad and T-Grad rest on an **exact decomposition** of the logit into an input term and one
# term per bias, which we check numerically. Section 6 sets two other decompositions beside it,
# **LRP** and **DeepLIFT**.

# %%
# %matplotlib inline
import tfxai  # first: it loads TensorFlow without TensorFlow's C++ start-up lines
import tfxai.data
import tfxai.models
import tfxai.plot

import keras
import matplotlib.pyplot as plt
import numpy as np
import tensorflow as tf

keras.utils.set_random_seed(0)
tf.get_logger().setLevel("ERROR")  # hide TensorFlow's notes about re-traced functions
model = tfxai.models.efficientnet_lite0()  # raw RGB pixels in [0, 255] -> softmax over 1000 classes
class_names = tfxai.data.imagenet_class_names()

photos = tfxai.data.load_photos(["chelsea", "coffee"], size=224)  # (2, 224, 224, 3): every explainer runs on both
probabilities = model.predict(photos, verbose=0)
targets = probabilities.argmax(-1)
for k, p in zip(targets, probabilities):
    print(f"prediction: {class_names[k]} ({p[k]:.1%})")
x, c = photos[:1], int(targets[0])  # the cat, for the figures of one photo
name = class_names[c]

# %% [markdown]
# ## 1. SmoothGrad
#
# $$\hat M_c(x) = \frac{1}{n} \sum_{k=1}^{n} \nabla_x y_c\left(x + \varepsilon_k\right), \qquad \varepsilon_k \sim \mathcal{N}(0, \sigma^2),$$
#
# with $\sigma$ = 15% of the input range (here $0.15 \cdot 255$); the map is $|\hat M_c|$, maximum
# over the colour channels. Written out with a tape, then with `tfxai.SmoothGrad` (16 samples to
# stay fast; the paper uses 50).

# %%
n, sigma = 16, 0.15 * 255.0
noise = tf.random.stateless_normal((n, 224, 224, 3), seed=[0, 0], stddev=sigma)
batch = tf.concat([x, x + noise], axis=0)  # the photo itself, then n noisy copies
with tf.GradientTape() as tape:
    tape.watch(batch)
    p_c = model(batch)[:, c]
gradients = tape.gradient(p_c, batch)  # (1 + n, 224, 224, 3)
raw_gradient = tf.reduce_max(tf.abs(gradients[0]), axis=-1)  # |grad| at the photo itself (notebook 1)
smoothgrad_by_hand = tf.reduce_max(tf.abs(tf.reduce_mean(gradients[1:], axis=0)), axis=-1)  # |mean of the noisy grads|

smoothgrad = tfxai.SmoothGrad(model, num_samples=n, noise_scale=0.15, seed=0)(photos, targets)  # (2, 224, 224)
print("SmoothGrad maps:", smoothgrad_by_hand.shape, smoothgrad.shape)

# %% [markdown]
# **Figure.** The raw gradient $|\nabla_x y_c|$, SmoothGrad written out above, and
# `tfxai.SmoothGrad` (its own noise draws), each over the photo with its own colour scale. With
# 16 samples SmoothGrad is still grainy (the paper uses 50), but less scattered than the raw
# gradient: its largest values gather around the nose and the contours of the eyes. The two
# SmoothGrad maps differ in detail because their noise differs.

# %%
tfxai.plot.method_grid(
    x,
    {"raw gradient": raw_gradient[None], "SmoothGrad (by hand)": smoothgrad_by_hand[None], "tfxai.SmoothGrad": smoothgrad[:1]},
    labels=[f"{name} {probabilities[0, c]:.0%}"],
)

# %% [markdown]
# ## 2. Input x Gradient
#
# $$\mathrm{IxG}_c(x) = \sum_{\text{channels}} x \odot \nabla_x y_c .$$
#
# Unlike the maps above it keeps its **sign**: red pixels raise the score, blue ones lower it; it
# is drawn with a diverging colour map centred on zero. Here $y_c$ is the **logit** (the score
# before the softmax), for the link with the decomposition below.

# %%
image = tf.constant(x)
with tf.GradientTape() as tape:
    tape.watch(image)
    logit = tfxai.adapt(model).logits(image)[:, c]  # tfxai's view of the model without its softmax
input_x_gradient_by_hand = tf.reduce_sum(image * tape.gradient(logit, image), axis=-1)

input_x_gradients = tfxai.InputXGradient(model, output="logit")(photos, targets)  # (2, 224, 224)
input_x_gradient = input_x_gradients[:1]
difference = float(tf.reduce_max(tf.abs(input_x_gradient - input_x_gradient_by_hand)))
print(f"max |tfxai - by hand| = {difference:.2e}")
print(f"positive part {float(tf.reduce_sum(tf.nn.relu(input_x_gradient))):.2f}, "
      f"negative part {float(tf.reduce_sum(tf.nn.relu(-input_x_gradient))):.2f}")
assert difference <= 1e-2 * float(tf.reduce_max(tf.abs(input_x_gradient)))  # equal up to float32 rounding

# %% [markdown]
# **Figure.** The photo and its Input x Gradient map of the logit (diverging colour map, scale
# symmetric around 0 and saturated at the 99th percentile of $|\mathrm{IxG}|$: red raises the
# logit, blue lowers it). Strong positive and negative pixels lie side by side; their totals
# (printed above) almost cancel.

# %%
fig = plt.figure(figsize=(8, 3.6), layout="constrained")
left, right = fig.subplots(1, 2)
left.imshow(x[0] / 255.0)
left.set_title(f"{name} {probabilities[0, c]:.0%}")
left.axis("off")
tfxai.plot.heatmap(input_x_gradient[0], ax=right, signed=True, title="Input x Gradient (logit)")
right.axis("off")
plt.show()

# %% [markdown]
# ## 3. The exact decomposition of the logit
#
# For a network built from ReLU-like activations, BatchNorm, pooling and additions, the logit is
# piecewise linear in the input and splits **exactly** into an input term and one term per bias
# (T-Grad paper, Eq. 6):
#
# $$y_c = \sum x \odot \nabla_x y_c + \sum_i \sum \nabla_{z_i} y_c \odot b_i ,$$
#
# where $b_i$ is the bias added to the pre-activation $z_i$ of layer $i$ (conv and dense biases,
# BatchNorm's effective bias $\beta - \gamma \mu / \sqrt{\sigma^2 + \epsilon}$, the Rescaling
# offset, and the constant 6 where a ReLU6 saturates). The first term is Input x Gradient. Checked
# on our photo:

# %%
decomposition = tfxai.decompose(model)
result = decomposition(photos, targets)  # both photos
input_totals = tf.reduce_sum(result.input_term, axis=[1, 2, 3])
bias_totals = sum(tf.reduce_sum(term.value, axis=list(range(1, len(term.value.shape)))) for term in result.terms)
for k in range(len(photos)):
    logit, input_total, bias_total = float(result.logits[k]), float(input_totals[k]), float(bias_totals[k])
    gap = abs(logit - (input_total + bias_total))
    print(f"{class_names[targets[k]]}: logit {logit:.4f} = input term {input_total:.4f} + {len(result.terms)} bias terms "
          f"{bias_total:.4f} (sum {input_total + bias_total:.4f}, gap {gap:.1e})")
    assert gap < 1e-3 * max(1.0, abs(logit))  # completeness: the terms add up to the logit
np.testing.assert_allclose(
    tf.reduce_sum(result.input_term, axis=-1), input_x_gradients, atol=1e-2 * float(tf.reduce_max(tf.abs(input_x_gradients)))
)  # the input term is Input x Gradient of the logit

by_kind = {}
for term in result.terms:
    by_kind[term.kind] = by_kind.get(term.kind, 0.0) + float(tf.reduce_sum(term.value[0]))
print(f"{name}: contribution by kind of bias:", {kind: round(value, 3) for kind, value in by_kind.items()})

# %% [markdown]
# The input term alone is far from the logit: most of the logit comes from the biases. Maps that
# only look at $x \odot \nabla_x y_c$ miss that part; FullGrad and T-Grad use every term.
#
# ## 4. FullGrad
#
# FullGrad (Srinivas and Fleuret, 2019) post-processes every spatial term with
# $\psi$ = absolute value, normalisation and bilinear upsampling, and adds them up:
#
# $$\mathrm{FullGrad}(x) = \psi\left(x \odot \nabla_x y_c\right) + \sum_i \sum_{\text{channels}} \psi\left(\nabla_{z_i} y_c \odot b_i\right).$$

# %%
fullgrad = tfxai.FullGrad(model)(photos, targets)
print("FullGrad maps:", fullgrad.shape)

# %% [markdown]
# ## 5. T-Grad
#
# T-Grad (Tran, Mai, Le and Le) keeps only the positive evidence of each term and weighs it by the
# term's total contribution to the logit (Eq. 8):
#
# $$S_i = \sum_{\text{channels}} \mathrm{ReLU}\left(\nabla_{z_i} y_c \odot b_i\right), \qquad \mathrm{score}_i = \mathrm{ReLU}\left(\sum \nabla_{z_i} y_c \odot b_i\right),$$
#
# $$T(x) = \phi(S_{\text{input}})\, \mathrm{score}_{\text{input}} + \sum_i \phi(S_i)\, \mathrm{score}_i ,$$
#
# with $\phi$ = bilinear upsampling to the image size, divided by the map's sum. Layers whose
# terms push the logit down get weight 0. `TGrad(...).layer_maps` returns every
# $(\text{name}, \phi(S_i), \mathrm{score}_i)$, the input first.

# %%
tgrad = tfxai.TGrad(model)
tgrad_maps = tgrad(photos, targets)  # (2, 224, 224)
layers = tgrad.layer_maps(photos, targets)  # [(name, phi(S_i) (2, 224, 224), score_i (2,)), ...]
recombined = sum(layer_map * score[:, None, None] for _, layer_map, score in layers)  # Eq. 8
difference = float(tf.reduce_max(tf.abs(recombined - tgrad_maps)))
print(f"{len(layers)} per-layer maps; max |sum of score_i phi(S_i) - TGrad map| = {difference:.1e}")
assert difference <= 1e-4 * float(tf.reduce_max(tgrad_maps))

ranked = sorted(layers, key=lambda layer: -float(layer[2][0]))
weighted = sum(float(score[0]) > 0 for _, _, score in layers)
print(f"{name}: layers with a positive score: {weighted} of {len(layers)}; the five largest:")
for layer_name, _, score in ranked[:5]:
    print(f"  {layer_name:<26} score {float(score[0]):8.3f}")

# %% [markdown]
# **Figure (the paper's Fig. 2).** The photo, the T-Grad map over it, then the normalised maps
# $\phi(S_i)$ of the ten layers with the largest scores (titles: layer and score). Early blocks
# (`block1` to `block3`, 28x28 to 56x56) give fine, speckled maps, late blocks coarse blobs at
# 7x7 resolution; T-Grad is their score-weighted sum.

# %%
top = ranked[:10]
tfxai.plot.layer_maps(
    [layer_map[0] for _, layer_map, _ in top],
    names=[layer_name for layer_name, _, _ in top],
    scores=[float(score[0]) for _, _, score in top],
    image=x[0],
    combined=tgrad_maps[0],
    cols=6,
)

# %% [markdown]
# ## 6. Two other decompositions: LRP and DeepLIFT
#
# T-Grad splits the logit into an input term and one term per bias. Two older methods also hand
# the logit back to the pixels, with other rules:
#
# * **LRP** (layer-wise relevance propagation, Bach et al. 2015) puts the relevance $R = y_c$ on the
#   logit and sends it backwards layer by layer. For a layer $z_j = \sum_i a_i w_{ij} + b_j$ the
#   $\varepsilon$ rule gives input $i$ the share
#   $$R_i = \sum_j \frac{a_i w_{ij}}{z_j + \varepsilon \,\mathrm{sign}(z_j)}\, R_j ;$$
#   ReLUs, pooling and additions pass it on. The share of the bias $b_j$ stays behind: relevance
#   is **absorbed** on the way, $\sum_{\text{pixels}} R = y_c - \text{absorbed}$. A *composite*
#   picks a rule per layer: `epsilon_plus_flat` (Zennit's EpsilonPlusFlat) uses the flat rule at
#   the first layer, $z^+$ (positive contributions only) in the other convolutions and
#   $\varepsilon$ in the dense layer.
# * **DeepLIFT** (Shrikumar et al. 2017) explains the *difference* to a reference image $x'$ (here
#   black): every activation's derivative is replaced by its slope between the two images,
#   $\frac{f(u) - f(u')}{u - u'}$ (the Rescale rule), and then
#   $$\sum (x - x') \odot \tilde\nabla_x y_c = y_c(x) - y_c(x') \quad \text{exactly (summation-to-delta).}$$
#
# Both cost one modified backward pass. First the bookkeeping on a tiny network without biases,
# where all three decompositions must give the same thing: nothing is absorbed, the black image
# has logit 0, so LRP, DeepLIFT and Input x Gradient all sum to the logit.

# %%
tiny = keras.Sequential([
    keras.Input((8, 8, 3)),
    keras.layers.Conv2D(4, 3, activation="relu", use_bias=False),
    keras.layers.MaxPooling2D(),
    keras.layers.Flatten(),
    keras.layers.Dense(3, use_bias=False),
])
tiny_x = np.random.default_rng(0).uniform(0, 1, (1, 8, 8, 3)).astype("float32")
tiny_logit = float(tiny(tiny_x)[0, 0])
tiny_maps = {
    "Input x Gradient": tfxai.InputXGradient(tiny, output="logit").attributions(tiny_x, 0),
    "LRP (epsilon)": tfxai.LRP(tiny, epsilon=1e-9).attributions(tiny_x, 0),
    "DeepLIFT (black)": tfxai.DeepLIFT(tiny).attributions(tiny_x, 0),
}
for method, attributions in tiny_maps.items():
    total = float(tf.reduce_sum(attributions))
    print(f"{method:<17} sums to {total:.6f}   (logit {tiny_logit:.6f})")
    assert abs(total - tiny_logit) < 1e-4 * max(1.0, abs(tiny_logit))  # conservation
np.testing.assert_allclose(tiny_maps["LRP (epsilon)"], tiny_maps["Input x Gradient"], atol=1e-5)
np.testing.assert_allclose(tiny_maps["DeepLIFT (black)"], tiny_maps["Input x Gradient"], atol=1e-5)

# %% [markdown]
# On the real network (biases, BatchNorm, ReLU6) the three split the logit differently. T-Grad
# keeps every bias term (they add up to the logit exactly); LRP reports what the biases absorbed;
# DeepLIFT explains the difference to the black image, and its sum hits that difference exactly:

# %%
lrp = tfxai.LRP(model)  # the epsilon rule in every layer, BatchNorm merged into the convolution before it
deeplift = tfxai.DeepLIFT(model, baseline="black")

check = lrp.conservation(photos, targets)  # (N,) totals: check.logits, check.input, check.absorbed
deeplift_attributions = deeplift.attributions(photos, targets)  # (2, 224, 224, 3)
deeplift_delta = deeplift.convergence_delta(photos, deeplift_attributions, targets)  # sum - (y(x) - y(black))
for k in range(len(photos)):
    deeplift_total = float(tf.reduce_sum(deeplift_attributions[k]))
    print(f"{class_names[targets[k]]}:")
    print(f"  T-Grad:   logit {float(result.logits[k]):7.3f} = input term {float(input_totals[k]):7.3f} "
          f"+ bias terms {float(bias_totals[k]):7.3f}")
    print(f"  LRP:      logit {check.logits[k]:7.3f} = pixels {check.input[k]:7.3f} + absorbed {check.absorbed[k]:7.3f}")
    print(f"  DeepLIFT: logit(x) - logit(black) {deeplift_total - deeplift_delta[k]:7.3f} = pixels "
          f"{deeplift_total:7.3f} (off by {abs(deeplift_delta[k]):.1e})")
    assert abs(deeplift_delta[k]) < 1e-3 * max(1.0, abs(deeplift_total))  # summation-to-delta

# %% [markdown]
# **Figure.** The photo, Input x Gradient, LRP with the $\varepsilon$ rule and with the
# EpsilonPlusFlat composite, DeepLIFT (signed maps: red raises the logit, blue lowers it, over the
# photo in grey; each on its own scale) and T-Grad.
#
# * LRP-$\varepsilon$ looks like Input x Gradient: on a ReLU network the two are equal (the tiny
#   network above). Here they differ where a ReLU6 saturates, and because LRP measures relevance at
#   the model's rescaled input ($x/128 - 127/128$, in $[-1, 1]$) while Input x Gradient multiplies
#   the raw pixels.
# * The composite's $z^+$ rule keeps only positive contributions and the flat rule spreads them
#   over the first layer's receptive fields (the fine grid): a smoother map on the eyes, the nose
#   and the rim of the cup. Its values are tiny (note the scale): with $z^+$ the merged BatchNorm
#   biases absorb almost all of the logit (printed above the figure). The *ranking* of the
#   pixels, not the total, is what such a map shows.
# * DeepLIFT against black resembles Input x Gradient ($x - x' = x$ here) with slopes instead of
#   derivatives, and its total is exactly the logit's difference to the black image.

# %%
lrp_plus_flat = tfxai.LRP(model, composite="epsilon_plus_flat")
plus_flat = lrp_plus_flat.conservation(photos, targets)
print("EpsilonPlusFlat: relevance left at the pixels", np.round(plus_flat.input, 4), "of the logits",
      np.round(plus_flat.logits, 3), "(the rest absorbed by biases)")
decompositions = {
    "Input x Gradient": input_x_gradients,
    "LRP (epsilon)": lrp(photos, targets),
    "LRP (EpsilonPlusFlat)": lrp_plus_flat(photos, targets),
    "DeepLIFT": tf.reduce_sum(deeplift_attributions, axis=-1),
    "T-Grad": tgrad_maps,
}
tfxai.plot.method_grid(
    photos, decompositions, labels=[class_names[k] for k in targets],
    signed=["Input x Gradient", "LRP (epsilon)", "LRP (EpsilonPlusFlat)", "DeepLIFT"],
)

# %% [markdown]
# ## Side by side
#
# **Figure.** Two photos (rows, titled with the predicted class) and the non-negative maps of this
# notebook, plus Grad-CAM (notebook 3) for comparison, each over its photo on its own colour scale.
# (Input x Gradient, signed and concentrated in few pixels, is shown on its own above.)

# %%
maps = {
    "SmoothGrad": smoothgrad,
    "FullGrad": fullgrad,
    "T-Grad": tgrad_maps,
    "Grad-CAM": tfxai.GradCAM(model)(photos, targets),
}
tfxai.plot.method_grid(photos, maps, labels=[class_names[k] for k in targets])
