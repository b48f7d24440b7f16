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
# # 2. The Fast Gradient Sign Method (FGSM)
#
# Goodfellow, Shlens and Szegedy (2015) turned a panda into a gibbon with **one step** along the
# sign of the gradient of the loss with respect to the input:
#
# $$x' = \mathrm{clip}\left(x + \epsilon \cdot \mathrm{sign}\left(\nabla_x J(\theta, x, y)\right)\right),$$
#
# where $J$ is the cross-entropy of the model with parameters $\theta$ on image $x$ with label $y$.
# Training moves $\theta$ *down* the gradient of $J$; FGSM moves $x$ *up* it, by exactly
# $\epsilon$ per pixel and channel.
#
# Our model is the bundled ImageNet classifier (EfficientNet-Lite0). It takes raw RGB pixels in
# [0, 255], so $\epsilon$ is in pixel levels and $x'$ is clipped to [0, 255]: $\epsilon = 1$ changes
# every value by one level out of 255, the smallest change an 8-bit image can show.

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
model = tfxai.models.efficientnet_lite0()  # raw RGB pixels in [0, 255] -> softmax over 1000 classes
class_names = tfxai.data.imagenet_class_names()
PIXELS = tfxai.adapt(model).input_range  # (0, 255), read from the model (its first layer is Rescaling)


def predict(images):
    """Predicted class, its name and its probability for each image."""
    probabilities = model.predict(images, verbose=0)
    labels = probabilities.argmax(-1)
    return [(int(k), class_names[k], float(p[k])) for k, p in zip(labels, probabilities)]


x = tfxai.data.load_photo("coffee", size=224)[None]  # (1, 224, 224, 3) float32 in [0, 255]
label, name, confidence = predict(x)[0]
print(f"prediction: {name} ({confidence:.1%}); input range {PIXELS}")

# %% [markdown]
# ## One step, by hand
#
# The gradient of the cross-entropy $J = -\log p_y$ with respect to the pixels, its sign, and one
# step of size $\epsilon$. `tfxai.fgsm` does the same (it differentiates $J$ computed from the
# logits, which is numerically safer when $p_y$ is close to 1).

# %%
epsilon = 1.0  # pixel levels out of 255

image = tf.constant(x)
with tf.GradientTape() as tape:
    tape.watch(image)
    J = keras.losses.sparse_categorical_crossentropy(tf.constant([label]), model(image))  # -log p_y
gradient = tape.gradient(J, image)  # dJ/dx, shape (1, 224, 224, 3)
x_adv_by_hand = tf.clip_by_value(image + epsilon * tf.sign(gradient), *PIXELS)

perturbation = tfxai.fgsm_perturbation(model, x)  # sign(dJ/dx), labels = the predicted classes
x_adv = tfxai.fgsm(model, x, epsilon=epsilon)  # clips to the model's input range
same_sign = float(tf.reduce_mean(tf.cast(tf.sign(gradient) == perturbation, tf.float32)))
print(f"the signs agree on {same_sign:.2%} of the values")
print(f"max |tfxai.fgsm - by hand| = {float(tf.reduce_max(tf.abs(x_adv - x_adv_by_hand))):.1f} pixel levels")
assert same_sign > 0.99

p_after = model.predict(x_adv, verbose=0)[0]
print(f"epsilon = {epsilon:g}: P({name}) went from {confidence:.1%} to {p_after[label]:.1%}")
print(f"largest change of a pixel value: {float(tf.reduce_max(tf.abs(x_adv - x))):.1f} of 255")
assert p_after[label] < confidence

# %% [markdown]
# ## How large must $\epsilon$ be?
#
# The gradient is taken at $x$ once, so every $\epsilon$ moves along the same direction:
# $x'(\epsilon) = \mathrm{clip}(x + \epsilon\, \mathrm{sign}(\nabla_x J))$.

# %%
epsilons = np.array([0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0])  # whole pixel levels: an 8-bit image can store them
attacked = np.stack([np.clip(x[0] + e * perturbation[0].numpy(), *PIXELS) for e in epsilons])
p_attacked = model.predict(attacked, verbose=0)
print(f"{'epsilon':>8}  {'P(' + name + ')':>16}  prediction")
for e, p in zip(epsilons, p_attacked):
    print(f"{e:8.2f}  {p[label]:16.3f}  {class_names[p.argmax()]} ({p.max():.1%})")
flip = int(np.argmax(p_attacked.argmax(-1) != label))  # the first epsilon that changes the class
print(f"smallest epsilon in the list that changes the class: {epsilons[flip]:g} pixel levels")
assert p_attacked[flip].argmax() != label and epsilons[flip] <= 4

# %% [markdown]
# **Figure.** Left: the probability of the original class and of the most likely *other* class
# against $\epsilon$ (log scale; $\epsilon = 0$ is drawn at the left edge). Right: the attacked
# image at the smallest $\epsilon$ that changes the class and at the two largest. The class flips
# at a few pixel levels, long before the change becomes visible; at $\epsilon = 16$ and $32$ the
# noise is plain to see.

# %%
others = p_attacked.copy()
others[:, label] = 0.0
shown = np.where(epsilons == 0, 0.5, epsilons)
fig = plt.figure(figsize=(12, 3.4), layout="constrained")
left, *panels = fig.subplots(1, 4, width_ratios=[1.6, 1, 1, 1])
left.plot(shown, p_attacked[:, label], "o-", label=f"P({name})")
left.plot(shown, others.max(-1), "s-", label="largest other class")
left.axvline(shown[flip], color="grey", linestyle=":", label="class changes")
left.set(xscale="log", xlabel="epsilon (pixel levels)", ylabel="probability", title="FGSM against epsilon")
left.set_xticks(shown, [f"{e:g}" for e in epsilons])
left.minorticks_off()
left.legend(fontsize=8)
for ax, k in zip(panels, [flip, len(epsilons) - 2, len(epsilons) - 1]):
    ax.imshow(attacked[k] / 255.0)
    ax.set_title(f"epsilon {epsilons[k]:g}: {class_names[p_attacked[k].argmax()]}\n{p_attacked[k].max():.0%}", fontsize=9)
    ax.axis("off")
plt.show()

# %% [markdown]
# **Figure (the lecture's triptych)** at the smallest $\epsilon$ that changes the class. Left:
# the photo with the model's prediction. Middle: the direction $\mathrm{sign}(\nabla_x J)$, one
# value in $\{-1, +1\}$ per pixel and colour channel, drawn as that channel off ($-1$) or at full
# intensity ($+1$), hence the coloured noise. Right: $x + \epsilon\,\mathrm{sign}(\nabla_x J)$:
# to us the same photo, to the model another class.

# %%
epsilon = float(epsilons[flip])
x_adv = tfxai.fgsm(model, x, epsilon=epsilon)  # clips to the model's input range
adv_label, adv_name, adv_confidence = predict(x_adv)[0]
print(f"{name} ({confidence:.1%}) -> {adv_name} ({adv_confidence:.1%}) with epsilon = {epsilon:g}")
assert adv_label != label
tfxai.plot.fgsm_triptych(
    x[0], perturbation[0], x_adv[0], labels=(name, adv_name), confidences=(confidence, adv_confidence), epsilon=epsilon
)

# %% [markdown]
# ## Targeted: towards a class of our choice
#
# A targeted step goes *down* the loss of a target class $t$:
# $x' = \mathrm{clip}(x - \epsilon\, \mathrm{sign}(\nabla_x J(\theta, x, t)))$. One step rarely
# reaches the target. The iterative version (basic iterative method, Kurakin et al. 2017) takes
# $K$ small steps of size $\eta$ and projects back into the box $\|x' - x\|_\infty \le \epsilon$
# after each:
#
# $$x'_{k+1} = \mathrm{clip}_{[x - \epsilon,\, x + \epsilon]}\left(x'_k - \eta\, \mathrm{sign}\left(\nabla_x J(\theta, x'_k, t)\right)\right).$$
#
# PGD (Madry et al. 2018) is the same loop started from a random point in the box.

# %%
target = 368  # "gibbon", as in the paper's panda figure
print("target:", class_names[target])

one_step = tfxai.fgsm(model, x, target, epsilon=4.0, targeted=True)
iterative = tfxai.iterative_fgsm(model, x, target, epsilon=4.0, num_steps=10, targeted=True)
random_start = tfxai.pgd(model, x, target, epsilon=4.0, num_steps=10, targeted=True, seed=0)
results = {}
for title, images in [("one targeted step", one_step), ("10 iterative steps", iterative), ("PGD, 10 steps", random_start)]:
    p = model.predict(images, verbose=0)[0]
    results[title] = p
    print(f"{title:<20} P({class_names[target]}) = {p[target]:.3f}   prediction: {class_names[p.argmax()]} ({p.max():.1%})")
print(f"max |x' - x| of the iterative attack: {float(tf.reduce_max(tf.abs(iterative - x))):.1f} (epsilon = 4)")
assert results["one targeted step"].argmax() != target  # one step does not reach the target...
assert results["10 iterative steps"].argmax() == target  # ...the iterative attacks do
assert results["PGD, 10 steps"].argmax() == target
assert float(tf.reduce_max(tf.abs(iterative - x))) <= 4.0 + 1e-3

# %% [markdown]
# **Figure.** The targeted attacks with $\epsilon = 4$. From the left: the photo; the total change
# $(x' - x)/\epsilon$ of the iterative attack (grey is 0; after ten steps the values are no longer
# only $\pm 1$); and the three adversarial images, titled with the model's prediction. Only the
# iterative attacks reach the target.

# %%
fig = plt.figure(figsize=(13, 3.2), layout="constrained")
axes = fig.subplots(1, 5)
axes[0].imshow(x[0] / 255.0)
axes[0].set_title(f"photo\n{name} {confidence:.0%}", fontsize=9)
axes[1].imshow(np.clip(0.5 + (iterative[0] - x[0]).numpy() / 8.0, 0.0, 1.0))
axes[1].set_title("(x' - x) / epsilon\n(iterative, 10 steps)", fontsize=9)
for ax, (title, images) in zip(axes[2:], [("one targeted step", one_step), ("10 iterative steps", iterative), ("PGD, 10 steps", random_start)]):
    p = results[title]
    ax.imshow(np.asarray(images[0]) / 255.0)
    ax.set_title(f"{title}\n{class_names[p.argmax()]} {p.max():.0%}", fontsize=9)
for ax in axes:
    ax.axis("off")
plt.show()
