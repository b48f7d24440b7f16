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
# # 7. Assignment: gradients, Integrated Gradients, Grad-CAM and FGSM from scratch
#
# Five exercises, one per lecture topic. In each exercise, write your code in the function where
# it says `# YOUR CODE HERE` and remove the line `raise NotImplementedError()`. The cell after each
# exercise checks properties of your answer (do not change it); it prints `Exercise k passed` when
# they hold. Grading also compares your answer with tfxai's reference in hidden tests, which this copy
# does not contain. Run the cells from top to bottom. Use TensorFlow (`tf.GradientTape`), not tfxai.
#
# The model is the ImageNet classifier bundled with tfxai (EfficientNet-Lite0: raw RGB pixels in
# [0, 255] at 224x224, softmax over 1000 classes); it runs offline.

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "schema_version": 3, "solution": false, "task": false}
# %matplotlib inline
import tfxai  # first: it loads TensorFlow without TensorFlow's C++ start-up lines
import tfxai.data
import tfxai.models
import tfxai.plot

import keras
import numpy as np
import tensorflow as tf

keras.utils.set_random_seed(0)
tf.get_logger().setLevel("ERROR")
model = tfxai.models.efficientnet_lite0()
class_names = tfxai.data.imagenet_class_names()
image = tf.constant(tfxai.data.load_photo("coffee", size=224))  # (224, 224, 3), pixels in [0, 255]
probabilities = model(image[None])[0].numpy()
target = int(probabilities.argmax())
print(f"prediction: {class_names[target]} ({probabilities[target]:.1%})")

# %% [markdown]
# ## Exercise 1: one step of gradient descent (2 points)
#
# For the line $\hat y = w x + b$ and the cost $C(w, b) = \frac{1}{n}\sum_i (w x_i + b - y_i)^2$,
# return the parameters after one step of gradient descent,
# $w \leftarrow w - \alpha\, \partial C / \partial w$ and $b \leftarrow b - \alpha\, \partial C / \partial b$.
# Compute the derivatives with `tf.GradientTape` (no optimizer object). `w` and `b` are floats;
# return two floats.

# %% nbgrader={"grade": false, "grade_id": "gradient_descent_step", "locked": false, "schema_version": 3, "solution": true, "task": false}
def gradient_descent_step(w, b, x, y, alpha):
    ### BEGIN SOLUTION
    w = tf.Variable(w, dtype=tf.float32)
    b = tf.Variable(b, dtype=tf.float32)
    with tf.GradientTape() as tape:
        cost = tf.reduce_mean((w * x + b - y) ** 2)
    dC_dw, dC_db = tape.gradient(cost, [w, b])
    return float(w - alpha * dC_dw), float(b - alpha * dC_db)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "check_gradient_descent_step", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
rng = np.random.default_rng(1)
x_data = rng.uniform(0.0, 2.0, size=40).astype("float32")
y_data = (3.0 * x_data - 2.0 + rng.normal(0.0, 0.1, size=40)).astype("float32")
w1, b1 = gradient_descent_step(1.0, 1.0, x_data, y_data, 0.1)
assert isinstance(w1, float) and isinstance(b1, float), (type(w1), type(b1))
### BEGIN HIDDEN TESTS
residual = 1.0 * x_data + 1.0 - y_data
np.testing.assert_allclose([w1, b1], [1.0 - 0.1 * 2 * np.mean(residual * x_data), 1.0 - 0.1 * 2 * np.mean(residual)], rtol=1e-4)
### END HIDDEN TESTS
w, b = 0.0, 0.0
for step in range(300):
    w, b = gradient_descent_step(w, b, x_data, y_data, 0.2)
np.testing.assert_allclose([w, b], np.polyfit(x_data, y_data, 1), atol=1e-3)  # converges to least squares
gd_result = (w, b)
print(f"after 300 steps: w = {w:.3f}, b = {b:.3f}")
print("Exercise 1 passed")

# %% [markdown]
# ## Exercise 2: linear interpolation (2 points)
#
# Return the images $x' + \alpha (x - x')$ for every $\alpha$ in `alphas`, as one tensor of shape
# `(len(alphas), H, W, C)` (`baseline` and `image` have shape `(H, W, C)`).

# %% nbgrader={"grade": false, "grade_id": "interpolate", "locked": false, "schema_version": 3, "solution": true, "task": false}
def interpolate(baseline, image, alphas):
    ### BEGIN SOLUTION
    alphas = tf.reshape(tf.cast(alphas, tf.float32), (-1, 1, 1, 1))
    baseline = tf.cast(baseline, tf.float32)[None]
    image = tf.cast(image, tf.float32)[None]
    return baseline + alphas * (image - baseline)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "check_interpolate", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
black = tf.zeros_like(image)
path = interpolate(black, image, tf.linspace(0.0, 1.0, 6))
assert tuple(path.shape) == (6, 224, 224, 3), path.shape
np.testing.assert_allclose(path[0], black, atol=1e-4)
np.testing.assert_allclose(path[-1], image, atol=1e-4)
### BEGIN HIDDEN TESTS
np.testing.assert_allclose(path[2], 0.4 * image, atol=1e-3)
np.testing.assert_allclose(interpolate(image, black, [0.25])[0], 0.75 * image, atol=1e-3)
### END HIDDEN TESTS
print("Exercise 2 passed")

# %% [markdown]
# ## Exercise 3: Integrated Gradients (4 points)
#
# Integrated Gradients of the **softmax probability** of class `target` (the model's output) for
# one image, with the trapezoidal rule over `m_steps` intervals:
#
# $$\mathrm{IG}(x) = (x - x') \odot \frac{1}{m} \sum_{k=1}^{m} \frac{g_{k-1} + g_k}{2}, \qquad g_k = \nabla_x F\left(x' + \tfrac{k}{m} (x - x')\right).$$
#
# Use your `interpolate`. The $m + 1$ images do not fit into memory at once for large $m$:
# compute the gradients `batch_size` images at a time. Return a tensor of shape `(H, W, C)`.

# %% nbgrader={"grade": false, "grade_id": "integrated_gradients", "locked": false, "schema_version": 3, "solution": true, "task": false}
def integrated_gradients(model, baseline, image, target, m_steps=64, batch_size=32):
    ### BEGIN SOLUTION
    alphas = tf.linspace(0.0, 1.0, m_steps + 1)
    gradients = []
    for start in range(0, m_steps + 1, batch_size):
        path = interpolate(baseline, image, alphas[start : start + batch_size])
        with tf.GradientTape() as tape:
            tape.watch(path)
            probability = model(path)[:, target]
        gradients.append(tape.gradient(probability, path))
    gradients = tf.concat(gradients, axis=0)
    average = tf.reduce_mean((gradients[:-1] + gradients[1:]) / 2.0, axis=0)
    return (tf.cast(image, tf.float32) - tf.cast(baseline, tf.float32)) * average
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "check_integrated_gradients", "locked": true, "points": 4, "schema_version": 3, "solution": false, "task": false}
student_ig = np.asarray(integrated_gradients(model, black, image, target, m_steps=64))
assert student_ig.shape == (224, 224, 3), student_ig.shape
### BEGIN HIDDEN TESTS
# the same rule on a coarser grid (16 steps) keeps this cell well inside nbgrader's 30 s cell timeout
student_ig16 = np.asarray(integrated_gradients(model, black, image, target, m_steps=16))
reference_ig = np.asarray(tfxai.integrated_gradients.integrated_gradients(model, black, image, target, m_steps=16))
ig_max_error = float(np.abs(student_ig16 - reference_ig).max())
np.testing.assert_allclose(student_ig16, reference_ig, atol=1e-2 * np.abs(reference_ig).max())
### END HIDDEN TESTS
# Completeness: with 64 steps the attributions add up to F(x) - F(x') within 5% for this photo.
F_x, F_black = model(tf.stack([image, black])).numpy()[:, target]
completeness_gap = float(student_ig.sum() - (F_x - F_black))
print(f"sum IG = {student_ig.sum():.4f}, F(x) - F(x') = {F_x - F_black:.4f}, gap = {completeness_gap:+.4f}")
assert abs(completeness_gap) < 0.05 * abs(F_x - F_black)
print("Exercise 3 passed")

# %% [markdown]
# ## Exercise 4: Grad-CAM (4 points)
#
# The cell below builds a copy of the model that outputs logits (the lecture's
# `model.layers[-1].activation = None`, applied to a clone) and computes, for class `target`, the
# activations `A` of the last convolutional block `top_relu`, shape `(1, 7, 7, 1280)`, and the
# gradients `dA` of the target logit with respect to them. Return the Grad-CAM map
# $\mathrm{ReLU}\left(\sum_k \alpha_k A^k\right)$, $\alpha_k = \frac{1}{Z} \sum_{ij} \partial y^c / \partial A^k_{ij}$,
# at the layer's resolution, shape `(7, 7)`.

# %% nbgrader={"grade": false, "grade_id": "gradcam_inputs", "locked": true, "schema_version": 3, "solution": false, "task": false}
logits_model = keras.models.clone_model(model)
logits_model.set_weights(model.get_weights())
logits_model.layers[-1].activation = None
grad_model = keras.Model(logits_model.input, [logits_model.get_layer("top_relu").output, logits_model.output])
with tf.GradientTape() as tape:
    A, logits = grad_model(image[None])
    y_c = logits[:, target]
dA = tape.gradient(y_c, A)
print("A:", A.shape, "dA:", dA.shape)

# %% nbgrader={"grade": false, "grade_id": "grad_cam", "locked": false, "schema_version": 3, "solution": true, "task": false}
def grad_cam(A, dA):
    ### BEGIN SOLUTION
    alpha = tf.reduce_mean(dA, axis=(1, 2))  # (1, K)
    return tf.nn.relu(tf.einsum("nijk,nk->nij", A, alpha))[0]
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "check_grad_cam", "locked": true, "points": 4, "schema_version": 3, "solution": false, "task": false}
student_cam = np.asarray(grad_cam(A, dA))
assert student_cam.shape == (7, 7), student_cam.shape
assert student_cam.min() >= 0.0 and student_cam.max() > 0.0, "a Grad-CAM map is non-negative and not all zero"
### BEGIN HIDDEN TESTS
reference_cam = tfxai.GradCAM(model, layer="top_relu", upsample=False)(image[None], targets=target)[0].numpy()
cam_max_error = float(np.abs(student_cam - reference_cam).max())
np.testing.assert_allclose(student_cam, reference_cam, atol=1e-4 * np.abs(reference_cam).max())
### END HIDDEN TESTS
print("Exercise 4 passed")

# %% [markdown]
# ## Exercise 5: FGSM (3 points)
#
# Return the adversarial image $x' = \mathrm{clip}_{[0, 255]}\left(x + \epsilon\, \mathrm{sign}(\nabla_x J)\right)$
# for one image `(H, W, C)`, where $J$ is the cross-entropy of the model's output for class
# `label` (hint: `keras.losses.sparse_categorical_crossentropy`).

# %% nbgrader={"grade": false, "grade_id": "fgsm", "locked": false, "schema_version": 3, "solution": true, "task": false}
def fgsm(model, image, label, epsilon):
    ### BEGIN SOLUTION
    x = tf.constant(image, tf.float32)[None]
    with tf.GradientTape() as tape:
        tape.watch(x)
        J = keras.losses.sparse_categorical_crossentropy(tf.constant([label]), model(x))
    gradient = tape.gradient(J, x)
    return tf.clip_by_value(x + epsilon * tf.sign(gradient), 0.0, 255.0)[0]
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "check_fgsm", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
student_adversarial = np.asarray(fgsm(model, image, target, 1.0))
assert student_adversarial.shape == (224, 224, 3), student_adversarial.shape
assert np.abs(student_adversarial - image.numpy()).max() <= 1.0 + 1e-3
assert student_adversarial.min() >= 0.0 and student_adversarial.max() <= 255.0
### BEGIN HIDDEN TESTS
reference_adversarial = tfxai.fgsm(model, image[None], target, epsilon=1.0)[0].numpy()
fgsm_agreement = float(np.mean(np.abs(student_adversarial - reference_adversarial) < 1e-3))
assert fgsm_agreement > 0.99, fgsm_agreement  # the same step on (almost) every pixel value
### END HIDDEN TESTS
adversarial_class = int(np.argmax(model(student_adversarial[None])[0]))
print(f"{class_names[target]} -> {class_names[adversarial_class]} with epsilon = 1")
assert adversarial_class != target
print("Exercise 5 passed")

# %% [markdown]
# ## Your maps
#
# **Figure.** The photo, your Integrated Gradients ($\sum_c |\mathrm{IG}_c|$) and your Grad-CAM
# (upsampled from 7x7 for display), each over the photo.

# %%
tfxai.plot.method_grid(
    image[None],
    {"your IG": np.abs(student_ig).sum(-1)[None], "your Grad-CAM": student_cam[None]},
    labels=[class_names[target]],
)
