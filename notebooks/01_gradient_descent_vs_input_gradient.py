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
# # 1. Gradient descent versus the input gradient
#
# Training follows the gradient of the **cost with respect to the parameters**; a saliency map
# follows the gradient of a **class score with respect to the input**. Same `tf.GradientTape`, same
# chain rule, a different variable. This notebook
#
# 1. writes plain gradient descent by hand on a model with two parameters and draws its path over
#    the cost surface,
# 2. trains a tiny CNN with the same two lines (no optimizer object),
# 3. turns the derivative around: the gradient of a class score with respect to the pixels,
# 4. and follows that gradient *uphill* on the pixels (gradient ascent), the idea behind FGSM.

# %%
# %matplotlib inline
import tfxai  # first: it loads TensorFlow without TensorFlow's C++ start-up lines
import tfxai.data
import tfxai.models
import tfxai.plot
from tfxai import demo

import keras
import matplotlib.pyplot as plt
import numpy as np
import tensorflow as tf

keras.utils.set_random_seed(0)  # seeds Python, NumPy and TensorFlow: the same numbers on every run

# %% [markdown]
# ## 1. Gradient descent on two parameters
#
# Fit a line $\hat y = w x + b$ to 50 noisy points by minimising the mean squared error
#
# $$C(w, b) = \frac{1}{n} \sum_{i=1}^{n} \left(w x_i + b - y_i\right)^2 .$$
#
# Gradient descent repeats, with learning rate $\alpha$,
#
# $$w \leftarrow w - \alpha \frac{\partial C}{\partial w}, \qquad b \leftarrow b - \alpha \frac{\partial C}{\partial b}.$$
#
# `tf.GradientTape` records the computation of $C$ and returns both partial derivatives.

# %%
rng = np.random.default_rng(0)
x_data = rng.uniform(0.0, 2.0, size=50).astype("float32")
y_data = (2.0 * x_data - 1.0 + rng.normal(0.0, 0.2, size=50)).astype("float32")  # true line: w = 2, b = -1


def cost(w, b):
    return tf.reduce_mean((w * x_data + b - y_data) ** 2)


def gradient_descent(alpha, steps, w0=-1.0, b0=2.5):
    """Plain gradient descent from (w0, b0); returns the visited (w, b) and the cost at each step."""
    w = tf.Variable(w0)
    b = tf.Variable(b0)
    path, costs = [(w0, b0)], []
    for step in range(steps):
        with tf.GradientTape() as tape:
            C = cost(w, b)
        dC_dw, dC_db = tape.gradient(C, [w, b])
        w.assign(w - alpha * dC_dw)  # w <- w - alpha dC/dw
        b.assign(b - alpha * dC_db)  # b <- b - alpha dC/db
        path.append((float(w), float(b)))
        costs.append(float(C))
    return np.array(path), np.array(costs)


path, costs = gradient_descent(alpha=0.2, steps=150)
w_fit, b_fit = path[-1]
w_best, b_best = np.polyfit(x_data, y_data, 1)  # the least-squares solution, for comparison
print(f"after 150 steps: w = {w_fit:.4f}, b = {b_fit:.4f}, C = {costs[-1]:.5f}")
print(f"least squares:   w = {w_best:.4f}, b = {b_best:.4f}")
assert abs(w_fit - w_best) < 1e-2 and abs(b_fit - b_best) < 1e-2
assert np.all(np.diff(costs) < 1e-6)  # with alpha = 0.2 the cost never goes up (up to float32 rounding)

# %% [markdown]
# The tape's derivatives are the ones you would write by hand,
# $\partial C / \partial w = \frac{2}{n}\sum_i (w x_i + b - y_i)\, x_i$ and
# $\partial C / \partial b = \frac{2}{n}\sum_i (w x_i + b - y_i)$:

# %%
w, b = tf.Variable(-1.0), tf.Variable(2.5)
with tf.GradientTape() as tape:
    C = cost(w, b)
dC_dw, dC_db = tape.gradient(C, [w, b])
residual = -1.0 * x_data + 2.5 - y_data
by_hand = (2 * np.mean(residual * x_data), 2 * np.mean(residual))
print(f"tape: ({float(dC_dw):.5f}, {float(dC_db):.5f})   by hand: ({by_hand[0]:.5f}, {by_hand[1]:.5f})")
np.testing.assert_allclose([float(dC_dw), float(dC_db)], by_hand, rtol=1e-5)

# %% [markdown]
# **Figure.** Left: the cost after each step, for two learning rates. Right: the contour lines of
# $C(w, b)$ and the path of each run. The bowl is a long narrow valley: with $\alpha = 0.2$ the
# path walks down smoothly, with the larger $\alpha = 0.42$ every step overshoots across the
# valley and the path zig-zags (above $\alpha \approx 0.43$ it would diverge). Both end at the
# least-squares solution (the cross).

# %%
path_big, costs_big = gradient_descent(alpha=0.42, steps=150)
ws, bs = np.meshgrid(np.linspace(-1.5, 3.5, 200), np.linspace(-2.5, 3.0, 200))
surface = np.mean((ws[..., None] * x_data + bs[..., None] - y_data) ** 2, axis=-1)

fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
left.plot(costs, label=r"$\alpha = 0.2$")
left.plot(costs_big, label=r"$\alpha = 0.42$")
left.set(yscale="log", xlabel="step", ylabel="cost C(w, b)", title="cost during gradient descent")
left.legend()
right.contour(ws, bs, surface, levels=np.geomspace(0.03, 30, 15), cmap="viridis", linewidths=0.8)
right.plot(*path.T, ".-", markersize=3, label=r"$\alpha = 0.2$")
right.plot(*path_big[:40].T, ".-", markersize=3, label=r"$\alpha = 0.42$ (first 40 steps)")
right.plot(w_best, b_best, "kx", markersize=10, label="least squares")
right.set(xlabel="w", ylabel="b", title="descent path over the contours of C")
right.legend(loc="upper right", fontsize=8)
plt.show()

# %% [markdown]
# ## 2. The same two lines train a CNN
#
# A network has millions of parameters instead of two, but the update is the same for each of
# them: $\theta \leftarrow \theta - \alpha\, \partial C / \partial \theta$, here on mini-batches of
# 32 images (stochastic gradient descent). The data: 32x32 images of one shape (square, disk or
# triangle; the class is the shape) on a noisy background, generated on the fly.

# %%
images, labels, masks = demo.make_shapes(1500, seed=0)
test_images, test_labels, test_masks = demo.make_shapes(200, seed=1)
tfxai.plot.image_row(images[:6], [demo.CLASS_NAMES[i] for i in labels[:6]])

# %%
net = keras.Sequential(
    [
        keras.Input((32, 32, 3)),
        keras.layers.Conv2D(16, 3, padding="same", activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
        keras.layers.GlobalMaxPooling2D(),  # the strongest response anywhere: the shape can be anywhere
        keras.layers.Dense(3, activation="softmax"),
    ],
    name="tiny_cnn",
)
loss_fn = keras.losses.SparseCategoricalCrossentropy()
alpha = 0.1
dataset = tf.data.Dataset.from_tensor_slices((images, labels)).shuffle(1500, seed=0).batch(32)


@tf.function  # compiled: one step of gradient descent on every parameter
def train_step(x, y):
    with tf.GradientTape() as tape:
        C = loss_fn(y, net(x, training=True))
    gradients = tape.gradient(C, net.trainable_variables)  # dC/dtheta for every weight and bias
    for theta, dC_dtheta in zip(net.trainable_variables, gradients):
        theta.assign(theta - alpha * dC_dtheta)  # theta <- theta - alpha dC/dtheta
    return C


for epoch in range(6):
    epoch_cost = np.mean([float(train_step(x, y)) for x, y in dataset])
    print(f"epoch {epoch}: cost {epoch_cost:.3f}")
accuracy = float(np.mean(net.predict(test_images, verbose=0).argmax(1) == test_labels))
print(f"accuracy on 200 new images: {accuracy:.1%}")
assert accuracy > 0.9

# %% [markdown]
# ## 3. Turn the derivative around: the gradient with respect to the input
#
# Now the weights stay fixed and we differentiate the probability $y_c$ of the true class with
# respect to the **pixels**, $\partial y_c / \partial x$. Its magnitude (the maximum over the
# colour channels) says which pixels would change the score most: the *saliency map*
# (Simonyan et al., 2014). `x` is a constant, not a variable, so the tape must be told to
# `watch` it.

# %%
x = tf.constant(test_images[:4])
with tf.GradientTape() as tape:
    tape.watch(x)
    probabilities = net(x)
    score = tf.reduce_sum(tf.gather(probabilities, test_labels[:4], batch_dims=1))
input_gradient = tape.gradient(score, x)  # dy_c/dx, shape (4, 32, 32, 3): one number per pixel and channel
saliency_by_hand = tf.reduce_max(tf.abs(input_gradient), axis=-1)

saliency = tfxai.VanillaGradient(net)(x, targets=test_labels[:4])  # the same, batched and compiled
difference = float(tf.reduce_max(tf.abs(saliency - saliency_by_hand)))
print(f"max |tfxai.VanillaGradient - by hand| = {difference:.2e}")
assert difference < 1e-6
hits = demo.pointing_game(saliency.numpy(), test_masks[:4])
print("the saliency maximum lies on the shape:", hits)

# %% [markdown]
# **Figure.** Four test images (titled with their true class) and $|\partial y_c / \partial x|$
# over them. The gradient is largest on and around the shape: those pixels decide the class.

# %%
tfxai.plot.method_grid(x, {"|dy_c / dx|": saliency}, labels=[demo.CLASS_NAMES[i] for i in test_labels[:4]])

# %% [markdown]
# |  | gradient descent (training) | input gradient (saliency) |
# |---|---|---|
# | differentiate | the cost $C$ | a class score $y_c$ |
# | with respect to | the parameters $w, b$ | the input pixels $x$ |
# | what changes | the model | nothing (we only look), or the image (next section) |
#
# ## 4. Gradient *ascent* on the pixels
#
# Following the input gradient uphill changes the image, not the model. A few steps of
#
# $$x \leftarrow \mathrm{clip}_{[0, 1]}\left(x + \eta\, \mathrm{sign}\left(\frac{\partial y_t}{\partial x}\right)\right)$$
#
# with target $t$ = disk turn a square into a "disk" for the network, while a person still sees a
# square. One such step on the loss is the Fast Gradient Sign Method (notebook 2).

# %%
square = tf.constant(test_images[test_labels == 0][:1])
target = demo.CLASS_NAMES.index("disk")
eta = 0.01
x_adv = tf.Variable(square)
for step in range(10):
    with tf.GradientTape() as tape:
        p_target = net(x_adv)[0, target]
    x_adv.assign(tf.clip_by_value(x_adv + eta * tf.sign(tape.gradient(p_target, x_adv)), 0.0, 1.0))
before, after = net(square).numpy()[0], net(x_adv).numpy()[0]
print(f"P(disk) before: {before[target]:.3f}   after 10 steps: {after[target]:.3f}")
print(f"largest pixel change: {float(tf.reduce_max(tf.abs(x_adv - square))):.2f} (pixels are in [0, 1])")
assert after.argmax() == target  # the network now sees a disk

# %% [markdown]
# **Figure.** The square before and after 10 ascent steps, titled with the network's prediction.
# Every pixel moved by at most $10\,\eta = 0.1$.

# %%
tfxai.plot.image_row(
    [square[0], x_adv[0].numpy()],
    [f"{demo.CLASS_NAMES[before.argmax()]} {before.max():.0%}", f"{demo.CLASS_NAMES[after.argmax()]} {after.max():.0%}"],
)

# %% [markdown]
# ## 5. The same on a photo
#
# The package ships an ImageNet classifier (EfficientNet-Lite0: raw RGB pixels in [0, 255] at
# 224x224, softmax over 1000 classes) and a few photos, so this runs offline.

# %%
model = tfxai.models.efficientnet_lite0()
class_names = tfxai.data.imagenet_class_names()
photo = tfxai.data.load_photo("chelsea", size=224)[None]  # (1, 224, 224, 3), pixels in [0, 255]
probabilities = model.predict(photo, verbose=0)[0]
label = int(probabilities.argmax())
print(f"prediction: {class_names[label]} ({probabilities[label]:.1%})")

# %% [markdown]
# **Figure.** $|\partial y_c / \partial x|$ of the predicted class over the photo (the crop shows
# the cat's face). On a real photo the raw input gradient is grainy and spread over the whole face,
# with no clean outline of the object: the reason why later notebooks average it over noisy copies
# (SmoothGrad), integrate it along a path (Integrated Gradients) or look at feature maps instead of
# pixels (Grad-CAM).

# %%
photo_saliency = tfxai.VanillaGradient(model)(photo, targets=label)
tfxai.plot.overlay(photo[0], photo_saliency[0], title=f"|dy / dx| for {class_names[label]}")
