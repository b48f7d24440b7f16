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
# # 4. Linear interpolation and Integrated Gradients
#
# Integrated Gradients (Sundararajan, Taly and Yan, 2017) attributes the model's output $F(x)$ to
# the pixels by accumulating the gradient along the straight line from a **baseline** $x'$ (e.g. a
# black image) to the image $x$:
#
# $$\mathrm{IG}_i(x) = (x_i - x'_i) \int_0^1 \frac{\partial F\left(x' + \alpha (x - x')\right)}{\partial x_i}\, d\alpha .$$
#
# The integral is approximated with $m$ steps; the TensorFlow tutorial uses the trapezoidal rule
# over the $m + 1$ points $\alpha_k = k/m$:
#
# $$\mathrm{IG}_i(x) \approx (x_i - x'_i) \cdot \frac{1}{m} \sum_{k=1}^{m} \frac{g_i(\alpha_{k-1}) + g_i(\alpha_k)}{2}, \qquad g(\alpha) = \nabla_x F\left(x' + \alpha (x - x')\right).$$
#
# $F$ is the softmax probability of the target class. This notebook writes the tutorial's four
# functions (`interpolate_images`, `compute_gradients`, `integral_approximation`,
# `integrated_gradients`) out and checks them against `tfxai.integrated_gradients`.

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

image = tf.constant(tfxai.data.load_photo("coffee", size=224))  # (224, 224, 3), pixels in [0, 255]
probabilities = model.predict(image[None], verbose=0)[0]
target_class_idx = int(probabilities.argmax())
name = class_names[target_class_idx]
print(f"prediction: {name} ({probabilities[target_class_idx]:.1%})")

baseline = tf.zeros_like(image)  # a black image: the "absence of signal" for a model of raw pixels

# %% [markdown]
# ## Step 1: linear interpolation
#
# The straight path from the baseline to the image, $x' + \alpha (x - x')$, for a vector of
# $\alpha$ values at once (broadcasting over a new batch axis).

# %%
def interpolate_images(baseline, image, alphas):
    alphas_x = alphas[:, tf.newaxis, tf.newaxis, tf.newaxis]
    baseline_x = tf.expand_dims(baseline, axis=0)
    input_x = tf.expand_dims(image, axis=0)
    delta = input_x - baseline_x
    images = baseline_x + alphas_x * delta
    return images


strip_alphas = tf.linspace(start=0.0, stop=1.0, num=6)  # alpha = 0, 0.2, ..., 1.0: five steps
strip = interpolate_images(baseline, image, strip_alphas)
print("interpolated images:", strip.shape)

# %% [markdown]
# **Figure.** The six images $x' + \alpha (x - x')$ for $\alpha = 0, 0.2, \dots, 1$: from the black
# baseline ($\alpha = 0$) the photo fades in linearly to the original ($\alpha = 1$).

# %%
tfxai.plot.interpolation_strip(strip, strip_alphas)

# %% [markdown]
# ## Step 2: gradients along the path
#
# The tutorial's `compute_gradients`: the gradient of the target probability with respect to each
# interpolated image. (The tutorial's model returns logits and applies `tf.nn.softmax` here; ours
# ends in a softmax, so its output already is the probability.)

# %%
def compute_gradients(images, target_class_idx):
    with tf.GradientTape() as tape:
        tape.watch(images)
        probs = model(images)[:, target_class_idx]
    return tape.gradient(probs, images)


strip_gradients = compute_gradients(strip, target_class_idx)  # one gradient per image of the strip
print("gradients:", strip_gradients.shape)
for alpha, g in zip(strip_alphas.numpy(), strip_gradients):
    print(f"alpha = {alpha:.1f}: mean |gradient| = {float(tf.reduce_mean(tf.abs(g))):.2e}")

# %% [markdown]
# ## Step 3: the integral, with the trapezoidal rule

# %%
def integral_approximation(gradients):
    # riemann_trapezoidal
    grads = (gradients[:-1] + gradients[1:]) / tf.constant(2.0)
    integrated_gradients = tf.math.reduce_mean(grads, axis=0)
    return integrated_gradients


avg_gradients = integral_approximation(strip_gradients)  # the trapezoid over the strip's 5 steps
print("average gradient:", avg_gradients.shape)

# %% [markdown]
# ## Step 4: all together, in batches of alphas
#
# The tutorial's `integrated_gradients` computes the gradients `batch_size` alphas at a time (a
# compiled `one_batch`), then integrates and scales by $x - x'$.

# %%
@tf.function
def one_batch(baseline, image, alpha_batch, target_class_idx):
    # Generate interpolated inputs between baseline and input.
    interpolated_path_input_batch = interpolate_images(baseline=baseline, image=image, alphas=alpha_batch)
    # Compute gradients between model outputs and interpolated inputs.
    gradient_batch = compute_gradients(images=interpolated_path_input_batch, target_class_idx=target_class_idx)
    return gradient_batch


def integrated_gradients(baseline, image, target_class_idx, m_steps=50, batch_size=32):
    # Generate alphas.
    alphas = tf.linspace(start=0.0, stop=1.0, num=m_steps + 1)
    # Collect gradients.
    gradient_batches = []
    # Iterate alphas range and batch computation for speed, memory efficiency, and scaling to larger m_steps.
    for alpha in tf.range(0, len(alphas), batch_size):
        from_ = alpha
        to = tf.minimum(from_ + batch_size, len(alphas))
        alpha_batch = alphas[from_:to]
        gradient_batch = one_batch(baseline, image, alpha_batch, target_class_idx)
        gradient_batches.append(gradient_batch)
    # Concatenate path gradients together row-wise into single tensor.
    total_gradients = tf.concat(gradient_batches, axis=0)
    # Integral approximation through averaging gradients.
    avg_gradients = integral_approximation(gradients=total_gradients)
    # Scale integrated gradients with respect to input.
    integrated_gradients = (image - baseline) * avg_gradients
    return integrated_gradients


m_steps = 32
attributions = integrated_gradients(baseline, image, target_class_idx, m_steps=m_steps)
print("attributions:", attributions.shape)

# %% [markdown]
# ## Check: the same as `tfxai.integrated_gradients`

# %%
reference = tfxai.integrated_gradients.integrated_gradients(model, baseline, image, target_class_idx, m_steps=m_steps)
difference = float(tf.reduce_max(tf.abs(attributions - reference)))
scale = float(tf.reduce_max(tf.abs(reference)))
print(f"max |notebook - tfxai| = {difference:.2e}   (largest attribution {scale:.2e})")
assert difference <= 1e-2 * scale  # equal up to float32 rounding (the gradients run through different graphs)

# %% [markdown]
# **Figure (the tutorial's summary).** The baseline, the photo, the attribution mask
# $\sum_c |\mathrm{IG}_c|$ (per pixel, summed over the colour channels; the top 1% saturates) and
# the mask with the photo on top.

# %%
tfxai.plot.ig_summary(image, baseline, attributions, title=f"{name} ({probabilities[target_class_idx]:.0%}), m = {m_steps}")

# %% [markdown]
# ## Completeness: do the attributions add up?
#
# IG satisfies **completeness**: the exact integral adds up to the change of the output,
# $\sum_i \mathrm{IG}_i(x) = F(x) - F(x')$. The $m$-step approximation only gets there as $m$
# grows. We compute the path gradients once on a fine grid of 257 points; the trapezoid with $m$
# steps uses the points $\alpha = k/m$, which are every $(256/m)$-th point of that grid.

# %%
fine_steps = 256
fine_alphas = tf.linspace(start=0.0, stop=1.0, num=fine_steps + 1)
fine_gradients = tf.concat(
    [one_batch(baseline, image, fine_alphas[k : k + 32], target_class_idx) for k in range(0, fine_steps + 1, 32)], axis=0
)  # (257, 224, 224, 3)
fine_probabilities = model.predict(interpolate_images(baseline, image, fine_alphas), verbose=0)[:, target_class_idx]
F_baseline, F_x = float(fine_probabilities[0]), float(fine_probabilities[-1])
delta = F_x - F_baseline

steps = [4, 8, 16, 32, 64, 128, 256]
gaps = {}
for m in steps:
    total = float(tf.reduce_sum((image - baseline) * integral_approximation(fine_gradients[:: fine_steps // m])))
    gaps[m] = total - delta
    print(f"m = {m:3d}: sum IG = {total:+.4f}   F(x) - F(x') = {delta:+.4f}   gap = {gaps[m]:+.4f} ({abs(gaps[m]) / abs(delta):5.1%})")
rise = fine_alphas.numpy()[np.argmax(fine_probabilities > F_baseline + 0.9 * delta)]
print(f"the probability covers 90% of its rise by alpha = {rise:.2f}")

# %% [markdown]
# **Figure.** Left: the probability of the target class along the path (257 points). Right: the
# mean absolute pixel gradient at each $\alpha$, divided by its maximum. The probability is not a
# smooth ramp: it changes over the first half of the path (90% of its rise is done by the $\alpha$
# printed above) and barely moves afterwards. The gradient is large where the probability changes
# and small near $\alpha = 1$: the gradient at $x$ alone says little, which is why IG accumulates
# gradients along the whole path, and why a coarse grid of $\alpha$ can miss what happens in between.

# %%
tfxai.plot.alpha_curves(fine_alphas, fine_probabilities, fine_gradients, class_name=name)

# %% [markdown]
# **Figure.** The completeness gap $|\sum_i \mathrm{IG}_i - (F(x) - F(x'))|$ against the number of
# steps $m$ (both axes logarithmic); the dotted line is 1% of $F(x) - F(x')$. With few steps the
# gap is large and erratic: a coarse grid may or may not land on the short stretch where the
# probability rises, so it can even be small by luck. From $m = 64$ on it stays below 1%: only
# then do the attributions add up to $F(x) - F(x')$. (Sundararajan et al. suggest raising $m$
# until the gap is within 5%.) The assertions below check these statements.

# %%
assert max(abs(gaps[m]) for m in steps if m >= 64) < 0.01 * abs(delta)  # from m = 64 on: within 1%
assert max(abs(gaps[m]) for m in steps if m <= 16) > 0.05 * abs(delta)  # with few steps: off by more than 5%
np.testing.assert_allclose(float(tf.reduce_sum(attributions)), delta + gaps[m_steps], rtol=1e-3)  # same as the m = 32 map above

fig, ax = plt.subplots(figsize=(5.5, 3.6))
ax.plot(steps, [abs(gaps[m]) for m in steps], "o-")
ax.axhline(0.01 * abs(delta), color="grey", linestyle=":", label="1% of |F(x) - F(x')|")
ax.set(xscale="log", yscale="log", xlabel="number of steps m", ylabel="|sum IG - (F(x) - F(x'))|", title="completeness gap")
ax.set_xticks(steps, [str(m) for m in steps])
ax.minorticks_off()
ax.legend()
plt.show()

# %% [markdown]
# ## Alternative baselines (Sturmfels, Lundberg and Lee, Distill 2020)
#
# The black baseline cannot attribute anything to black pixels: there $x_i - x'_i = 0$. Other
# choices: a white image, uniform noise, the image plus Gaussian noise, a blurred copy, and the
# image farthest from $x$ within the valid range ("max distance": every value moved to the end of
# [0, 255] it is farther from). `tfxai.baselines.make` builds them in the model's input range.
# Each runs with $m = 64$ steps: the completeness figure above shows that fewer steps give erratic
# sums, and a comparison of baselines must not mix the baseline's effect with the grid's error.

# %%
names = ["black", "white", "uniform", "gaussian", "blur", "max_distance"]
input_range = tfxai.adapt(model).input_range  # (0, 255), read from the model
baselines = {b: tfxai.baselines.make(b, image[None], input_range=input_range, seed=0)[0] for b in names}
attributions_by_baseline = {}
for b, base in baselines.items():
    attributions_by_baseline[b] = integrated_gradients(base, image, target_class_idx, m_steps=64)
    F_base = float(model.predict(base[None], verbose=0)[0, target_class_idx])
    total = float(tf.reduce_sum(attributions_by_baseline[b]))
    print(f"{b:<13} F(x') = {F_base:.3f}   sum IG = {total:+.3f}   F(x) - F(x') = {float(F_x) - F_base:+.3f}")

# %% [markdown]
# **Figure.** Top row: the photo and the six baselines. Bottom row: the attribution mask
# $\sum_c |\mathrm{IG}_c|$ from each baseline (64 steps; each mask on its own colour scale). The
# baseline decides what counts as "absence of signal", and the maps differ accordingly; when
# $F(x')$ is already close to $F(x)$ (printed above) there is little to attribute.

# %%
tfxai.plot.baseline_comparison(image, baselines, attributions_by_baseline)
