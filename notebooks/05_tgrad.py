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
# # 5. SmoothGrad, Input x Gradient, FullGrad and T-Grad
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
# term per bias, which we check numerically.

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
