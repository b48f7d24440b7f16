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
# # 3. Grad-CAM
#
# Grad-CAM (Selvaraju et al., 2017) explains a class $c$ with the feature maps $A^k$ of the last
# convolutional layer ($k = 1, \dots, K$ channels of $u \times v$ positions). Each channel gets the
# spatial mean of the gradient of the class score $y^c$ as its weight,
#
# $$\alpha_k^c = \frac{1}{Z} \sum_i \sum_j \frac{\partial y^c}{\partial A^k_{ij}} \qquad (Z = u \cdot v),$$
#
# and the map keeps the positive part of the weighted sum of the feature maps, upsampled to the
# image size:
#
# $$L^c_{\text{Grad-CAM}} = \mathrm{ReLU}\left(\sum_k \alpha_k^c A^k\right).$$
#
# $y^c$ is the **logit** (the score before the softmax). Lectures get the logits with the line
# `model.layers[-1].activation = None`, which changes the model it is applied to. Here it is
# applied to a **clone**, and the original model is shown to be untouched.

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

x = tfxai.data.load_photo("chelsea", size=224)[None]  # (1, 224, 224, 3)
probabilities = model.predict(x, verbose=0)[0]
c = int(probabilities.argmax())
print(f"prediction: {class_names[c]} ({probabilities[c]:.1%}), class index {c}")
print("last layer:", model.layers[-1].name, "| activation:", model.layers[-1].activation.__name__)

# %% [markdown]
# ## Step 1: a copy of the model that outputs logits
#
# `keras.models.clone_model` builds a new model with the same architecture (new layers, new
# variables); `set_weights` copies the trained weights into it. The lecture's line is then applied
# to the clone only.

# %%
logits_model = keras.models.clone_model(model)  # same architecture, new layers
logits_model.set_weights(model.get_weights())  # same weights
logits_model.layers[-1].activation = None  # the lecture's line, applied to the clone

logits = logits_model(x)
print("clone:    last activation =", logits_model.layers[-1].activation, "| outputs sum to", round(float(tf.reduce_sum(logits)), 2))
print("original: last activation =", model.layers[-1].activation.__name__, "| outputs sum to", round(float(tf.reduce_sum(model(x))), 4))
assert model.layers[-1].activation.__name__ == "softmax"  # the original model is untouched...
assert abs(float(tf.reduce_sum(model(x))) - 1.0) < 1e-4  # ...and still returns probabilities
np.testing.assert_allclose(tf.nn.softmax(logits), model(x), atol=1e-5)  # softmax(clone) = original
print("softmax(clone(x)) equals model(x): the clone outputs the logits of the same network")

# %% [markdown]
# ## Step 2: the gradient tape on the last convolutional layer
#
# A second model returns both the activations $A$ of the last convolutional block (`top_relu`,
# 7x7 positions x 1280 channels) and the logits. The tape records the forward pass, and
# `tape.gradient` returns $\partial y^c / \partial A$, one number per position and channel.

# %%
grad_model = keras.Model(logits_model.input, [logits_model.get_layer("top_relu").output, logits_model.output])
with tf.GradientTape() as tape:
    A, logits = grad_model(x)  # A: (1, 7, 7, 1280)
    y_c = logits[:, c]  # the logit of class c
dy_dA = tape.gradient(y_c, A)  # (1, 7, 7, 1280)
print("A:", A.shape, " dy_c/dA:", dy_dA.shape)

# %% [markdown]
# ## Step 3: the weights, the weighted sum, the ReLU, the upsampling

# %%
alpha = tf.reduce_mean(dy_dA, axis=(1, 2))  # alpha_k: the spatial mean of the gradient, (1, 1280)
weighted_sum = tf.einsum("nijk,nk->nij", A, alpha)  # sum_k alpha_k A^k, (1, 7, 7)
cam_small = tf.nn.relu(weighted_sum)  # keep what speaks FOR class c
cam_by_hand = tf.image.resize(cam_small[..., None], (224, 224), method="bilinear")[..., 0]  # (1, 224, 224)
print(f"channels with a positive weight: {int(tf.reduce_sum(tf.cast(alpha > 0, tf.int32)))} of {alpha.shape[-1]}")
print(f"positions where the weighted sum is negative: {int(tf.reduce_sum(tf.cast(weighted_sum < 0, tf.int32)))} of 49")

# %% [markdown]
# The ReLU matters for classes that are *not* in the photo. The same three lines for the class
# "espresso" on the cat photo:

# %%
def weighted_sum_for(images, target):
    """sum_k alpha_k A^k for class `target`: steps 2 and 3 above, before the ReLU."""
    with tf.GradientTape() as tape:
        A, logits = grad_model(images)
        y = logits[:, target]
    alpha = tf.reduce_mean(tape.gradient(y, A), axis=(1, 2))
    return tf.einsum("nijk,nk->nij", A, alpha)


other = 967  # espresso
other_sum = weighted_sum_for(x, other)
negative = {k: int(tf.reduce_sum(tf.cast(s < 0, tf.int32))) for k, s in [(c, weighted_sum), (other, other_sum)]}
for k in (c, other):
    print(f"{class_names[k]:<13} negative at {negative[k]:2d} of 49 positions")
np.testing.assert_allclose(weighted_sum_for(x, c), weighted_sum, rtol=1e-5, atol=1e-6)
assert negative[c] < negative[other]

# %% [markdown]
# **Figure.** One row per class: the weighted sum $\sum_k \alpha_k^c A^k$ at the layer's 7x7
# resolution (red positive, blue negative, symmetric scale), after the ReLU, and the ReLU map
# upsampled bilinearly to 224x224 over the photo. For the predicted class the sum is positive at
# almost every position (the count is printed above), so the ReLU changes little; for "espresso"
# it is negative in many places and the ReLU keeps only the few positions that speak for it.

# %%
fig = plt.figure(figsize=(10, 6.4), layout="constrained")
for row, (k, s) in enumerate([(c, weighted_sum), (other, other_sum)]):
    axes = fig.add_subplot(2, 3, 3 * row + 1), fig.add_subplot(2, 3, 3 * row + 2), fig.add_subplot(2, 3, 3 * row + 3)
    limit = float(tf.reduce_max(tf.abs(s)))
    image = axes[0].imshow(s[0], cmap="RdBu_r", vmin=-limit, vmax=limit)
    fig.colorbar(image, ax=axes[0], shrink=0.8)
    axes[0].set_title(f"{class_names[k]}: sum_k alpha_k A^k (7x7)", fontsize=9)
    axes[1].imshow(tf.nn.relu(s)[0], cmap="jet", vmin=0)
    axes[1].set_title("ReLU (7x7)", fontsize=9)
    axes[2].imshow(x[0] / 255.0)
    axes[2].imshow(tf.image.resize(tf.nn.relu(s)[..., None], (224, 224))[0, ..., 0], cmap="jet", alpha=0.5)
    axes[2].set_title("upsampled to 224x224", fontsize=9)
    for ax in axes:
        ax.axis("off")
plt.show()

# %% [markdown]
# ## The same with `tfxai.GradCAM`
#
# `tfxai.GradCAM(model, layer=...)` does all of the above in one compiled call, on the model as it
# is: it reads the logits without changing the model (`upsample=False` would return the 7x7 map).

# %%
explainer = tfxai.GradCAM(model, layer="top_relu")
cam = explainer(x, targets=c)  # (1, 224, 224)
difference = float(tf.reduce_max(tf.abs(cam - cam_by_hand)))
print(f"max |tfxai - by hand| = {difference:.2e} (map maximum {float(tf.reduce_max(cam)):.3f})")
assert difference < 1e-4 * float(tf.reduce_max(cam))
assert model.layers[-1].activation.__name__ == "softmax"  # tfxai did not touch the model either

# %% [markdown]
# **Figure.** `tfxai.GradCAM`'s map over the photo, with its colour scale: the same map as the
# last panel above.

# %%
tfxai.plot.overlay(x[0], cam[0], title=f"tfxai.GradCAM: {class_names[c]}", colorbar=True)

# %% [markdown]
# ## Why the logit and not the probability?
#
# The gradient of the probability $p_c = \mathrm{softmax}(y)_c$ is
# $\nabla p_c = p_c \left(\nabla y_c - \sum_j p_j \nabla y_j\right)$: it mixes in the gradients of
# all other classes, and it vanishes when the model is confident ($p_c \to 1$).

# %%
with tf.GradientTape() as tape:
    A, logits = grad_model(x)
    p_c = tf.nn.softmax(logits)[:, c]
dp_dA = tape.gradient(p_c, A)
print(f"p_c = {float(p_c[0]):.3f}")
print(f"mean |dy_c/dA| = {float(tf.reduce_mean(tf.abs(dy_dA))):.2e}   mean |dp_c/dA| = {float(tf.reduce_mean(tf.abs(dp_dA))):.2e}")

# %% [markdown]
# ## The CAM family side by side
#
# Every CAM method reads the same activations $A^k$ and differs in how it weighs them:
#
# | method | map |
# |---|---|
# | Grad-CAM | $\mathrm{ReLU}(\sum_k \alpha_k A^k)$, $\alpha_k = \frac{1}{Z}\sum_{ij} \partial y^c / \partial A^k_{ij}$ |
# | Grad-CAM++ | as Grad-CAM, with the positive gradients weighted by second- and third-order terms |
# | XGrad-CAM | $\alpha_k = \sum_{ij} \frac{A^k_{ij}}{\sum_{ab} A^k_{ab}} \frac{\partial y^c}{\partial A^k_{ij}}$ |
# | HiResCAM | $\mathrm{ReLU}(\sum_k \frac{\partial y^c}{\partial A^k} \odot A^k)$: gradient times activation at each position, no averaging |
# | LayerCAM | $\mathrm{ReLU}(\sum_k \mathrm{ReLU}(\frac{\partial y^c}{\partial A^k}) \odot A^k)$ |
# | Score-CAM | no gradient: the class probability of the image masked by each (upsampled, normalised) channel |
# | Eigen-CAM | no gradient, no class: the first principal component of the activations |
# | Ablation-CAM | no gradient: $\alpha_k = (y^c - y^c_k) / y^c$, the relative drop of the logit when channel $k$ is set to zero |
#
# The list in the code is not typed by hand: it is every method in tfxai's registry derived from
# the CAM base class, so a CAM variant added to the library shows up here. Score-CAM needs one
# forward pass per channel; `num_channels=32` keeps the 32 channels with the largest spatial
# spread (Faster-Score-CAM). Ablation-CAM runs only the layers after `top_relu` once per channel.

# %%
from tfxai import _registry  # every registered method, in registration order
from tfxai.explainers.cam import CAM  # the base class of the CAM family

cam_classes = [cls for cls in _registry.METHODS.values() if issubclass(cls, CAM)]
print("CAM methods in tfxai:", [cls.__name__ for cls in cam_classes])
settings = {"ScoreCAM": {"num_channels": 32}, "AblationCAM": {"batch_size": 128}}

photos = tfxai.data.load_photos(["chelsea", "coffee"], size=224)
targets = model.predict(photos, verbose=0).argmax(-1)
maps = {
    cls.title or cls.__name__: cls(model, layer="top_relu", **settings.get(cls.__name__, {}))(photos, targets)
    for cls in cam_classes
}
assert {"GradCAM", "GradCAMPlusPlus", "XGradCAM", "ScoreCAM", "EigenCAM"} <= {cls.__name__ for cls in cam_classes}
np.testing.assert_allclose(maps[tfxai.GradCAM.title or "GradCAM"][:1], cam, rtol=1e-5, atol=1e-6)

# %% [markdown]
# **Figure.** Two photos (rows, titled with the predicted class) and one column per CAM method,
# each map over its photo with its own colour scale (each map's top 1% saturates).

# %%
tfxai.plot.method_grid(photos, maps, labels=[class_names[k] for k in targets])
