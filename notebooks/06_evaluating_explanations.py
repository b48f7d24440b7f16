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
# # 6. Evaluating explanations
#
# A saliency map looks convincing or not, but is it **faithful** to the model? Three standard
# tests, each run here on a few photos with few steps (the T-Grad paper uses 224 steps of 224
# pixels on thousands of images; the code is the same, only slower):
#
# 1. **Deletion and insertion** (Petsiuk et al., 2018): remove (or reveal) pixels in the order of
#    the map and watch the probability of the class.
# 2. **Average Drop and Increase in Confidence** (Chattopadhyay et al., 2018, Grad-CAM++): keep
#    only what the map highlights and compare the probability.
# 3. **The sanity check** (Adebayo et al., 2018): randomise the model's weights; a map that does
#    not change does not explain the model.
#
# As a control, every test also scores a **random map**: a method should beat it.

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

photo_names = ["chelsea", "coffee", "camera"]
images = tfxai.data.load_photos(photo_names, size=224)  # (3, 224, 224, 3)
probabilities = model.predict(images, verbose=0)
targets = probabilities.argmax(-1)  # explain the predicted classes
for photo, k, p in zip(photo_names, targets, probabilities):
    print(f"{photo:<8} {class_names[k]} ({p[k]:.1%})")

maps = {
    "Grad-CAM": tfxai.GradCAM(model)(images, targets),
    "T-Grad": tfxai.TGrad(model)(images, targets),
    "random": tf.random.stateless_uniform((len(images), 224, 224), seed=[0, 0]),  # the control
}

# %% [markdown]
# ## 1. Deletion and insertion
#
# Rank the pixels by the map, most salient first. **Deletion** replaces the top fraction $f$ of
# pixels by a blurred copy of the image and records $p_c$, the probability of the class; a good map
# makes it fall fast. **Insertion** starts from the blurred image and reveals the top pixels; a good
# map makes it rise fast. Each curve is summarised by its area,
#
# $$\mathrm{AUC} = \int_0^1 p_c\left(x_{(f)}\right) df \quad \text{(trapezoidal rule over the steps)},$$
#
# lower is better for deletion, higher for insertion. First by hand, for Grad-CAM on the cat:

# %%
num_steps = 16  # 16 steps of 224 * 224 / 16 = 3136 pixels
x, saliency = images[:1], maps["Grad-CAM"][:1]
blurred = tfxai.image_ops.gaussian_blur(tf.constant(x), 5.0, 11)  # the substrate: Gaussian blur, sigma 5, kernel 11
order = np.argsort(-saliency.numpy().reshape(-1), kind="stable")  # pixel indices, most salient first
pixels_per_step = 224 * 224 // num_steps
deleted = []
for step in range(num_steps + 1):
    removed = np.zeros(224 * 224, bool)
    removed[order[: step * pixels_per_step]] = True
    deleted.append(np.where(removed.reshape(224, 224, 1), blurred[0], x[0]))
deleted = np.stack(deleted)  # (17, 224, 224, 3): 0%, 6.25%, ..., 100% of the pixels blurred
curve_by_hand = model.predict(deleted, verbose=0)[:, targets[0]]
fractions = np.linspace(0.0, 1.0, num_steps + 1)
auc_by_hand = float(np.sum((curve_by_hand[1:] + curve_by_hand[:-1]) / 2 * np.diff(fractions)))
print("p_c after each step:", np.round(curve_by_hand, 3))
print(f"deletion AUC by hand: {auc_by_hand:.4f}")

# %% [markdown]
# **Figure.** Deletion for Grad-CAM on the cat, by hand: the image after 0, 2, 4, 6 and 8 of the
# 16 steps (0% to 50% of the pixels, most salient first, replaced by the blurred copy), titled with
# the probability of the class. On this photo the probability hardly falls (the values are printed
# above): the face fills the whole crop, and a blurred cat's face still looks like a cat to the
# model. One photo says little; the means over three photos below are more telling.
#
# **Why does the probability go up and down** (0.40, then 0.48, then 0.38 in the figure)? A deletion
# curve does not have to fall monotonically. $p_c$ is a softmax: a share of the probability among
# 1000 classes, not a count of evidence. The cat is an *Egyptian cat* at only 40 %, with *tiger cat*
# close behind (35 %); blurring a region can remove evidence for the competitor faster than for the
# target (the stripes, say), and the target's share rises. The blurred patches are also new
# inputs the model never saw in training (sharp edges between blurred and sharp regions), which it
# may read as evidence for any class. The AUC averages these wiggles out; the mean over many photos
# is what a method is judged on.

# %%
fig = plt.figure(figsize=(12, 2.8), layout="constrained")
for ax, step in zip(fig.subplots(1, 5), [0, 2, 4, 6, 8]):
    ax.imshow(deleted[step] / 255.0)
    ax.set_title(f"{fractions[step]:.0%} deleted: p_c = {curve_by_hand[step]:.2f}", fontsize=9)
    ax.axis("off")
plt.show()

# %% [markdown]
# `tfxai.metrics.deletion` and `tfxai.metrics.insertion` compute the same curves for every image
# in one compiled loop (maps are passed positionally, the blurred substrate is the default):

# %%
insertion, deletion = {}, {}
for method, saliency_maps in maps.items():
    insertion[method] = tfxai.metrics.insertion(model, images, saliency_maps, targets, num_steps=num_steps)
    deletion[method] = tfxai.metrics.deletion(model, images, saliency_maps, targets, num_steps=num_steps)

difference = float(np.max(np.abs(deletion["Grad-CAM"].scores[0] - curve_by_hand)))
print(f"max |tfxai - by hand| on the cat's Grad-CAM deletion curve: {difference:.1e}")
assert difference < 1e-3

print(f"\n{'method':<10} {'insertion AUC':>14} {'deletion AUC':>13} {'difference':>11}   (means over {len(images)} photos)")
for method in maps:
    ins, dele = insertion[method].auc.mean(), deletion[method].auc.mean()
    print(f"{method:<10} {ins:14.3f} {dele:13.3f} {ins - dele:+11.3f}")
for method in ("Grad-CAM", "T-Grad"):  # both beat the random control on these photos
    assert deletion[method].auc.mean() < deletion["random"].auc.mean()
    assert insertion[method].auc.mean() > insertion["random"].auc.mean()

# %% [markdown]
# **Figure.** Mean insertion (left) and deletion (right) curves over the three photos, with the
# range over the photos shaded; the legend gives the AUC of each mean curve. Both methods rise
# faster than the random map under insertion and fall faster under deletion (the asserts above
# check the AUCs).

# %%
tfxai.plot.insertion_deletion_curves(
    insertion={method: result.scores for method, result in insertion.items()},
    deletion={method: result.scores for method, result in deletion.items()},
)

# %% [markdown]
# ## 2. Average Drop and Increase in Confidence
#
# Multiply the image by the map, min-max normalised to $[0, 1]$: $x \odot L$. With $Y_i$ the
# probability of the class on image $i$ and $O_i$ on $x_i \odot L_i$,
#
# $$\text{Average Drop} = \frac{100}{N} \sum_i \frac{\max(0, Y_i - O_i)}{Y_i} \quad (\text{lower is better}), \qquad
# \text{Increase in Confidence} = \frac{100}{N} \sum_i \mathbb{1}[O_i > Y_i] \quad (\text{higher is better}).$$
#
# By hand for the cat, then `tfxai.metrics` for every method:

# %%
L = maps["Grad-CAM"][0]
L = (L - tf.reduce_min(L)) / (tf.reduce_max(L) - tf.reduce_min(L))  # min-max to [0, 1]
Y = probabilities[0, targets[0]]
O = model.predict(images[:1] * L[None, :, :, None], verbose=0)[0, targets[0]]
print(f"cat, Grad-CAM: Y = {Y:.3f}, O = {O:.3f}, drop = {100 * max(0.0, Y - O) / Y:.1f}%")

drops = {}
for method, saliency_maps in maps.items():
    drop = drops[method] = tfxai.metrics.average_drop(model, images, saliency_maps, targets)
    increase = tfxai.metrics.increase_in_confidence(model, images, saliency_maps, targets)
    print(f"{method:<9} Average Drop {drop.value:5.1f}%   Increase in Confidence {increase.value:5.1f}%   "
          f"(drop per photo: {np.round(drop.per_image, 1)})")
    if method == "Grad-CAM":
        assert abs(drop.per_image[0] - 100 * max(0.0, Y - O) / Y) < 0.5  # the same as by hand
assert drops["Grad-CAM"].value < drops["T-Grad"].value < drops["random"].value

# %% [markdown]
# The metrics do not have to agree: Grad-CAM's Average Drop is far lower than T-Grad's, although
# their insertion and deletion AUCs are close. Multiplying by a map keeps the image only where the
# map is high; Grad-CAM's smooth blob covers the object, while T-Grad's sparser map (see
# notebook 5) dims most of it. Which metric you report shapes which method "wins".

# %% [markdown]
# ## 3. The sanity check: cascading randomisation
#
# Re-initialise the weights of a copy of the model layer by layer, **from the output down**, and
# compare each new map with the original one (Spearman rank correlation $\rho$; 1 = same ranking
# of the pixels). A map that depends on what the model learned must change; a map that stays the
# same explains the image, not the model.
#
# Two methods on the cat: Grad-CAM, and an **edge detector** (the gradient magnitude of the image
# itself, Sobel filter) that ignores the model entirely, yet looks like a plausible saliency map.
# We randomise every layer with weights, and look at the maps after every 20th layer.

# %%
def edge_detector(images, targets=None):
    """A "saliency map" that ignores the model: the Sobel gradient magnitude of the grey image."""
    grey = tf.reduce_mean(tf.convert_to_tensor(images, tf.float32), axis=-1, keepdims=True)
    edges = tf.image.sobel_edges(grey)[..., 0, :]  # (N, H, W, 2): vertical and horizontal
    return tf.norm(edges, axis=-1)


randomization = {
    "Grad-CAM": tfxai.metrics.cascading_randomization(
        model, lambda m: tfxai.GradCAM(m, layer="top_relu"), images[:1], targets[:1], every=20, keep_maps=True
    ),
    "edge detector": tfxai.metrics.cascading_randomization(
        model, lambda m: edge_detector, images[:1], targets[:1], every=20, keep_maps=True
    ),
}
print(f"{'randomised down to':<24} {'Grad-CAM rho':>13} {'edges rho':>10}")
for k, layer in enumerate(randomization["Grad-CAM"].layers):
    print(f"{layer:<24} {randomization['Grad-CAM'].spearman[k, 0]:13.2f} {randomization['edge detector'].spearman[k, 0]:10.2f}")
assert np.all(randomization["edge detector"].spearman > 0.999)  # never changes: fails the sanity check
assert randomization["Grad-CAM"].spearman[-1, 0] < 0.5  # changes once the model is random: passes

# %% [markdown]
# **Figure.** Rows: Grad-CAM and the edge detector. Columns: the photo, the map of the trained
# model, then the map after randomising the layers down to the one named above each column (with
# the Spearman rank correlation to the original map, "Spearman 0.42"). The Grad-CAM map changes as the weights are destroyed; the edge
# map stays identical ($\rho = 1$): it would "explain" a random network just as well.

# %%
tfxai.plot.plot_sanity_grid(images[0], randomization)
