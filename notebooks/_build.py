"""Build the lecture notebooks (``python notebooks/_build.py``) from the cell lists below.

Edit the cells here, not in the .ipynb files: this script rewrites every
notebook, without outputs. ``tests/test_notebooks.py`` executes them.
Cells are Markdown when they start with ``"md:"``; everything else is code.
"""

from __future__ import annotations

from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent

SETUP = '''\
%matplotlib inline
import os
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

import tfxai
import tfxai.plot
from tfxai import io

# The ImageNet model: $TFXAI_IMAGENET_MODEL, else the EfficientNet-Lite0 file of the course assets.
# It takes raw RGB pixels in [0, 255] (its first layer rescales them).
ASSETS = Path(os.environ.get("TFXAI_ASSETS", "../../shared/assets"))
MODEL_PATH = Path(os.environ.get("TFXAI_IMAGENET_MODEL", ASSETS / "models" / "efficientnet_lite0_imagenet.keras"))
PHOTOS = Path(os.environ.get("TFXAI_PHOTOS", ASSETS / "imagenet_samples"))
if (ASSETS / "keras").is_dir():
    os.environ.setdefault("KERAS_HOME", str(ASSETS / "keras"))  # ImageNet class names offline
keras.utils.set_random_seed(0)
model = keras.saving.load_model(MODEL_PATH)
print(model.name, model.input_shape, "->", model.output_shape, "| last activation:", model.layers[-1].activation.__name__)


def photo(name, size=224):
    """A sample photo as float32 pixels in [0, 255], resized (shorter side 256) and centre-cropped."""
    return io.load_image(PHOTOS / name, size)


def top(probabilities, k=1):
    """The k most likely classes as (index, name, probability)."""
    probabilities = np.asarray(probabilities)
    idx = np.argsort(probabilities)[::-1][:k]
    return [(int(i), name, float(probabilities[i])) for i, name in zip(idx, io.class_names(idx, probabilities.shape[-1]))]
'''

NOTEBOOKS: dict[str, list[str]] = {}

NOTEBOOKS["01_gradient_descent_vs_input_gradient.ipynb"] = [
    "md:# 1. Gradient descent versus the input gradient\n\n"
    "Training follows the gradient of the **loss with respect to the weights**; saliency follows the gradient of a "
    "**class score with respect to the input**. Same tape, same chain rule, different variable. We train a tiny CNN on "
    "generated shapes by plain gradient descent, then turn the derivative around.",
    SETUP.replace("model = keras.saving.load_model(MODEL_PATH)\nprint(", "imagenet = keras.saving.load_model(MODEL_PATH)\nmodel = imagenet\nprint("),
    "md:## Data: one shape (square, disk, triangle) on a noisy 32x32 background",
    "from tfxai import demo\n\n"
    "images, labels, masks = demo.make_shapes(1500, seed=0)\n"
    "test_images, test_labels, test_masks = demo.make_shapes(200, seed=1)\n"
    "tfxai.plot.image_row(images[:6], [demo.CLASS_NAMES[i] for i in labels[:6]])",
    "md:## Gradient descent on the weights\n\n"
    "$w \\leftarrow w - \\eta \\, \\partial L / \\partial w$, written out with `tf.GradientTape` (no `model.fit`).",
    "net = demo.build_model()\n"
    "loss_fn = keras.losses.SparseCategoricalCrossentropy()\n"
    "optimizer = keras.optimizers.Adam(3e-3)  # plain SGD works too, just slower\n"
    "dataset = tf.data.Dataset.from_tensor_slices((images, labels)).shuffle(1500, seed=0).batch(64)\n\n"
    "@tf.function  # compiled: one step of gradient descent\n"
    "def train_step(x, y):\n"
    "    with tf.GradientTape() as tape:\n"
    "        loss = loss_fn(y, net(x, training=True))\n"
    "    grads = tape.gradient(loss, net.trainable_variables)      # d loss / d weights\n"
    "    optimizer.apply_gradients(zip(grads, net.trainable_variables))\n"
    "    return loss\n\n"
    "for epoch in range(6):\n"
    "    losses = [float(train_step(x, y)) for x, y in dataset]\n"
    "    print(f'epoch {epoch}: loss {np.mean(losses):.3f}')\n"
    "accuracy = float(np.mean(net.predict(test_images, verbose=0).argmax(1) == test_labels))\n"
    "print(f'test accuracy: {accuracy:.1%}')",
    "md:## The input gradient\n\n"
    "Now the weights are fixed and we differentiate the class score with respect to the **pixels**: "
    "$\\partial y_c / \\partial x$. Its magnitude says which pixels would change the score most.",
    "x = tf.constant(test_images[:4])\n"
    "with tf.GradientTape() as tape:\n"
    "    tape.watch(x)                                  # x is not a variable: watch it\n"
    "    probabilities = net(x)\n"
    "    score = tf.reduce_sum(tf.gather(probabilities, test_labels[:4], batch_dims=1))\n"
    "input_gradient = tape.gradient(score, x)            # d score / d pixels, shape (4, 32, 32, 3)\n"
    "saliency_by_hand = tf.reduce_max(tf.abs(input_gradient), axis=-1)\n"
    "saliency = tfxai.VanillaGradient(net)(x, targets=test_labels[:4])  # the same thing, batched and compiled\n"
    "print('max difference to tfxai.VanillaGradient:', float(tf.reduce_max(tf.abs(saliency - saliency_by_hand))))\n"
    "hits = demo.pointing_game(saliency.numpy(), test_masks[:4])\n"
    "print('pointing game (saliency maximum on the shape):', hits)\n"
    "tfxai.plot.method_grid(x, {'|d score / d x|': saliency}, labels=[demo.CLASS_NAMES[i] for i in test_labels[:4]])",
    "md:## Gradient *ascent* on the input\n\n"
    "Following the input gradient instead of the weight gradient changes the image, not the model: a few steps of "
    "$x \\leftarrow x + \\eta \\, \\mathrm{sign}(\\partial y_t / \\partial x)$ turn a square into a 'disk' for the network. "
    "This is the idea behind FGSM (notebook 2).",
    "square = tf.constant(test_images[test_labels == 0][:1])\n"
    "target = 1  # disk\n"
    "x_adv = tf.Variable(square)\n"
    "for step in range(10):\n"
    "    with tf.GradientTape() as tape:\n"
    "        p = net(x_adv)[0, target]\n"
    "    x_adv.assign(tf.clip_by_value(x_adv + 0.01 * tf.sign(tape.gradient(p, x_adv)), 0.0, 1.0))\n"
    "before, after = net(square).numpy()[0], net(x_adv).numpy()[0]\n"
    "print('P(disk) before:', round(float(before[target]), 3), ' after:', round(float(after[target]), 3))\n"
    "tfxai.plot.image_row([square[0], x_adv[0].numpy()], [f'{demo.CLASS_NAMES[before.argmax()]} {before.max():.0%}', f'{demo.CLASS_NAMES[after.argmax()]} {after.max():.0%}'])",
    "md:## The same on an ImageNet photo",
    "tench = photo('n01440764_tench.JPEG')[None]\n"
    "print(top(model.predict(tench, verbose=0)[0], 3))\n"
    "tfxai.plot.overlay(tench[0], tfxai.VanillaGradient(model)(tench)[0], title='|d P(tench) / d x|')",
]

NOTEBOOKS["02_fgsm.ipynb"] = [
    "md:# 2. The Fast Gradient Sign Method\n\n"
    "Goodfellow et al. (2015) turned a panda into a gibbon with one step along the sign of the loss gradient: "
    "$x' = x + \\epsilon\\,\\mathrm{sign}(\\nabla_x J(\\theta, x, y))$. Our model takes pixels in [0, 255], so "
    "$\\epsilon$ is in pixel units and the result is clipped to [0, 255].",
    SETUP,
    "x = photo('n02509815_lesser_panda.JPEG')[None]\n"
    "probabilities = model.predict(x, verbose=0)[0]\n"
    "label, name, confidence = top(probabilities)[0]\n"
    "print('prediction:', name, round(confidence, 3))",
    "md:## One untargeted step\n\n`tfxai.fgsm` differentiates the cross-entropy **from the logits** (a copy of the model "
    "without the final softmax), so a confident prediction still has a gradient.",
    "epsilon = 4.0  # pixels: 0.016 of the range (the paper used 0.007 on GoogLeNet)\n"
    "perturbation = tfxai.fgsm_perturbation(model, x)                 # sign(d loss / d x)\n"
    "x_adv = tfxai.fgsm(model, x, epsilon=epsilon, clip=(0.0, 255.0))\n"
    "adv_probabilities = model.predict(x_adv, verbose=0)[0]\n"
    "adv_label, adv_name, adv_confidence = top(adv_probabilities)[0]\n"
    "print(f'{name} ({confidence:.1%}) -> {adv_name} ({adv_confidence:.1%}); '\n"
    "      f'P({name}) is now {adv_probabilities[label]:.1%}; max pixel change {float(tf.reduce_max(tf.abs(x_adv - x))):.1f}')\n"
    "tfxai.plot.fgsm_triptych(x[0], perturbation[0], x_adv[0], labels=(name, adv_name), confidences=(confidence, adv_confidence), epsilon=epsilon)",
    "md:## How large must epsilon be?",
    "for eps in [0.5, 1.0, 2.0, 4.0, 8.0]:\n"
    "    p = model.predict(tfxai.fgsm(model, x, epsilon=eps, clip=(0.0, 255.0)), verbose=0)[0]\n"
    "    print(f'epsilon {eps:4.1f}: {top(p)[0][1]:<20} P({name}) = {p[label]:.3f}')",
    "md:## Targeted: panda to gibbon\n\n"
    "A targeted step goes *down* the loss of the target class: $x' = x - \\epsilon\\,\\mathrm{sign}(\\nabla_x J(x, t))$. "
    "One step rarely suffices; the iterative version (BIM) takes small steps and stays within $\\epsilon$ of $x$.",
    "gibbon = 368\n"
    "x_target = tfxai.iterative_fgsm(model, x, targets=gibbon, epsilon=4.0, num_steps=10, targeted=True, clip=(0.0, 255.0))\n"
    "p = model.predict(x_target, verbose=0)[0]\n"
    "target_label, target_name, target_confidence = top(p)[0]\n"
    "print(f'after 10 targeted steps: {target_name} ({target_confidence:.1%}); P(gibbon) = {p[gibbon]:.1%}')\n"
    "tfxai.plot.fgsm_triptych(x[0], np.sign(x_target[0] - x[0]), x_target[0], labels=(name, target_name), confidences=(confidence, target_confidence), epsilon=4.0, targeted=True)",
]

NOTEBOOKS["03_gradcam.ipynb"] = [
    "md:# 3. Grad-CAM, with the softmax removed\n\n"
    "Grad-CAM weights the feature maps $A^k$ of the last convolutional layer by the spatial mean of "
    "$\\partial y^c / \\partial A^k$, where $y^c$ is the **logit** (the score before softmax), and keeps the positive "
    "part of the weighted sum. Lectures often write `model.layers[-1].activation = None` to get logits: that "
    "modifies *your* model. tfxai explains a rebuilt copy instead.",
    SETUP,
    "x = photo('n02099601_golden_retriever.JPEG')[None]\n"
    "probabilities = model.predict(x, verbose=0)[0]\n"
    "label, name, confidence = top(probabilities)[0]\n"
    "print(name, round(confidence, 3), '| last layer:', model.layers[-1].name, model.layers[-1].activation.__name__)",
    "md:## Grad-CAM by hand (the Keras tutorial's recipe) on a copy without the softmax",
    "copy = keras.models.clone_model(model)          # the lecture's trick, but on a copy\n"
    "copy.set_weights(model.get_weights())\n"
    "copy.layers[-1].activation = None               # now copy(x) returns logits\n"
    "print('copy ends in', copy.layers[-1].activation, '| the model still ends in', model.layers[-1].activation.__name__)\n"
    "grad_model = keras.Model(copy.inputs, [copy.get_layer('top_relu').output, copy.output])\n"
    "with tf.GradientTape() as tape:\n"
    "    activations, logits = grad_model(x)\n"
    "    class_score = logits[:, label]\n"
    "grads = tape.gradient(class_score, activations)                 # (1, 7, 7, 1280)\n"
    "weights = tf.reduce_mean(grads, axis=(1, 2))                     # alpha_k: global-average-pooled gradients\n"
    "cam_by_hand = tf.nn.relu(tf.einsum('nhwk,nk->nhw', activations, weights))\n"
    "print('CAM at the layer resolution:', cam_by_hand.shape)",
    "md:## The same with tfxai.GradCAM\n\n`layer=None` picks the last layer with a 4-D output (`top_relu` here); the map is "
    "upsampled bilinearly to 224x224.",
    "explainer = tfxai.GradCAM(model, layer='top_relu')\n"
    "cam = explainer(x)\n"
    "low_res = tfxai.GradCAM(model, layer='top_relu', upsample=False)(x)\n"
    "print('max |tfxai - by hand| at 7x7:', float(tf.reduce_max(tf.abs(low_res - cam_by_hand))))\n"
    "assert model.layers[-1].activation.__name__ == 'softmax'  # the user's model is untouched\n"
    "tfxai.plot.overlay(x[0], cam[0], title=f'Grad-CAM: {name}', colorbar=True)",
    "md:## Why remove the softmax?\n\nThe gradient of the probability $p_c = \\mathrm{softmax}(y)_c$ is "
    "$p_c(\\nabla y_c - \\sum_j p_j \\nabla y_j)$: for a confident prediction it is tiny and mixes in the other classes.",
    "with tf.GradientTape() as tape:\n"
    "    activations, logits = grad_model(x)\n"
    "    probability = tf.nn.softmax(logits)[:, label]\n"
    "prob_grads = tape.gradient(probability, activations)\n"
    "print(f'P = {float(probability[0]):.3f}; mean |grad| of the logit: {float(tf.reduce_mean(tf.abs(grads))):.2e}, '\n"
    "      f'of the probability: {float(tf.reduce_mean(tf.abs(prob_grads))):.2e}')",
    "md:## The CAM family side by side",
    "methods = {'Grad-CAM++': tfxai.GradCAMPlusPlus, 'Eigen-CAM': tfxai.EigenCAM}  # also: XGradCAM, ScoreCAM\n"
    "maps = {'Grad-CAM': cam, **{title: cls(model, layer='top_relu')(x) for title, cls in methods.items()}}\n"
    "tfxai.plot.method_grid(x, maps, labels=[f'{name} {confidence:.0%}'])",
]

NOTEBOOKS["04_integrated_gradients.ipynb"] = [
    "md:# 4. Linear interpolation and Integrated Gradients\n\n"
    "Step by step as in the TensorFlow tutorial, with the functions of `tfxai.integrated_gradients`. "
    "$\\mathrm{IG}_i(x) = (x_i - x'_i)\\int_0^1 \\frac{\\partial F(x' + \\alpha(x - x'))}{\\partial x_i}\\,d\\alpha$, "
    "where $F$ is the softmax probability of the target class and $x'$ a baseline.",
    SETUP,
    "from tfxai import integrated_gradients as ig\n\n"
    "image = photo('n03344393_fireboat.JPEG')\n"
    "probabilities = model.predict(image[None], verbose=0)[0]\n"
    "target, name, confidence = top(probabilities)[0]\n"
    "print(top(probabilities, 3))\n"
    "baseline = ig.black(image, input_range=(0.0, 255.0))  # a black image in the model's input space",
    "md:## Step 1-2: interpolate between the baseline and the image",
    "m_steps = 16  # the tutorial uses 50; 16 trapezoid steps are enough for the figures\n"
    "alphas = ig.alphas_for(m_steps)                 # tf.linspace(0, 1, m_steps + 1)\n"
    "strip_alphas = tf.constant([0.0, 0.2, 0.4, 0.6, 0.8, 1.0])\n"
    "tfxai.plot.interpolation_strip(ig.interpolate_images(baseline, image, strip_alphas), strip_alphas)",
    "md:## Step 3: gradients along the path\n\nThe probability saturates early, so most of the path has small gradients: "
    "that is why IG accumulates them instead of using the gradient at $x$ alone.",
    "path = ig.interpolate_images(baseline, image, alphas)\n"
    "path_gradients = ig.compute_gradients(model, path, target)\n"
    "path_probabilities = tf.nn.softmax(tfxai.surgery.logits_model(model)(path), axis=-1)[:, target]\n"
    "tfxai.plot.alpha_curves(alphas, path_probabilities, path_gradients, class_name=name)",
    "md:## Step 4: accumulate (trapezoid rule), step 5: scale by $x - x'$",
    "avg_gradients = ig.integral_approximation(path_gradients)\n"
    "attributions = (image - baseline) * avg_gradients\n"
    "same = ig.integrated_gradients(model, baseline, image, target, m_steps=m_steps)  # the tutorial's one-call version\n"
    "print('max difference, by steps vs one call:', float(tf.reduce_max(tf.abs(same - attributions))))\n"
    "# Completeness: the attributions add up to F(x) - F(x')\n"
    "gap = float(tf.reduce_sum(attributions)) - float(path_probabilities[-1] - path_probabilities[0])\n"
    "print(f'sum IG = {float(tf.reduce_sum(attributions)):.4f}, F(x) - F(baseline) = {float(path_probabilities[-1] - path_probabilities[0]):.4f}, gap = {gap:+.4f}')\n"
    "tfxai.plot.ig_summary(image, baseline, attributions, title=f'{name} ({confidence:.0%})')",
    "md:## Alternative baselines (Sturmfels et al., Distill 2020)\n\n"
    "A black baseline cannot attribute anything to black pixels. The alternatives: white, uniform noise, the image plus "
    "Gaussian noise, a blurred image, and the farthest valid image (max distance).",
    "names = ['black', 'white', 'uniform', 'gaussian', 'blur', 'max_distance']\n"
    "baselines = {n: tfxai.baselines.make(n, image[None], input_range=(0.0, 255.0), seed=0)[0] for n in names}\n"
    "attributions_by_baseline = {n: ig.integrated_gradients(model, b, image, target, m_steps=8) for n, b in baselines.items()}\n"
    "for n in names:\n"
    "    print(f'{n:<13} sum IG = {float(tf.reduce_sum(attributions_by_baseline[n])):+.3f}')\n"
    "tfxai.plot.baseline_comparison(image, baselines, attributions_by_baseline)",
    "md:## The batched explainer\n\n`tfxai.IntegratedGradients` computes the same attributions for a batch, chunking the "
    "`N x (m + 1)` interpolated images by `batch_size`.",
    "explainer = tfxai.IntegratedGradients(model, baseline='black', num_steps=m_steps)  # the model's range, read from its Rescaling layer\n"
    "batched = explainer.attributions(image[None], targets=target)[0]\n"
    "print('max difference to the step-by-step result:', float(tf.reduce_max(tf.abs(batched - attributions))))",
]

NOTEBOOKS["05_tgrad.ipynb"] = [
    "md:# 5. T-Grad and the layer-wise decomposition\n\n"
    "For a piecewise-linear network (ReLU, ReLU6, BatchNorm, pooling, residual adds) the target logit splits exactly "
    "into an input term and one term per bias site (paper Eq. 6):\n\n"
    "$$y = \\sum x \\odot \\nabla_x y + \\sum_i \\sum \\nabla_{z_i} y \\odot b_i.$$\n\n"
    "T-Grad (Eq. 8) turns each term into a map $S_i = \\sum_c \\mathrm{ReLU}(\\cdot)$, upsamples and normalises it "
    "($\\phi$) and weights it by its score $\\mathrm{ReLU}(\\sum \\cdot)$.",
    SETUP,
    "x = photo('n02099601_golden_retriever.JPEG')[None]\n"
    "label, name, confidence = top(model.predict(x, verbose=0)[0])[0]\n"
    "print(name, round(confidence, 3))",
    "md:## Completeness: the terms add up to the logit",
    "decomposition = tfxai.decompose(model)\n"
    "result = decomposition(x, targets=label)\n"
    "input_total = float(tf.reduce_sum(result.input_term))\n"
    "bias_total = sum(float(tf.reduce_sum(t.value)) for t in result.terms)\n"
    "logit = float(result.logits[0])\n"
    "print(f'logit {logit:.4f} = input term {input_total:.4f} + {len(result.terms)} bias terms {bias_total:.4f} '\n"
    "      f'(sum {input_total + bias_total:.4f}, gap {abs(logit - input_total - bias_total):.2e})')\n"
    "kinds = {}\n"
    "for t in result.terms:\n"
    "    kinds[t.kind] = kinds.get(t.kind, 0.0) + float(tf.reduce_sum(t.value))\n"
    "print('contribution by kind of site:', {k: round(v, 3) for k, v in kinds.items()})",
    "md:## Per-layer maps (paper Fig. 2)",
    "tgrad = tfxai.TGrad(model)\n"
    "layers = tgrad.layer_maps(x, targets=label)                 # [(name, phi(S_i), score_i)], input first\n"
    "tgrad_map = sum(m * s[:, None, None] for _, m, s in layers)  # Eq. 8\n"
    "ranked = sorted(layers, key=lambda t: -float(t[2][0]))[:11]\n"
    "for layer_name, _, score in ranked[:5]:\n"
    "    print(f'{layer_name:<22} score {float(score[0]):.3f}')\n"
    "tfxai.plot.layer_maps([m[0] for _, m, _ in ranked], names=[n for n, _, _ in ranked],\n"
    "                      scores=[float(s[0]) for _, _, s in ranked], image=x[0], combined=tgrad_map[0], cols=5)",
    "md:## T-Grad next to the input term alone (Input x Gradient of the logit)",
    "input_only = layers[0][1]\n"
    "tfxai.plot.method_grid(x, {'T-Grad': tgrad_map, 'input term only': input_only}, labels=[f'{name} {confidence:.0%}'])",
]

NOTEBOOKS["06_evaluating_explanations.ipynb"] = [
    "md:# 6. Evaluating explanations\n\n"
    "* **Deletion**: remove the most salient pixels first (replace them by a blurred copy); a good map makes the "
    "probability fall fast (low AUC). **Insertion**: start from the blurred image and reveal the most salient pixels "
    "first; the probability should rise fast (high AUC).\n"
    "* **Sanity check** (Adebayo et al.): randomise the model from the top layer down; a map that does not change "
    "does not explain the model.\n\n"
    "Eight steps keep this notebook fast; the paper uses 224 steps of 224 pixels.",
    SETUP,
    "files = ['n01440764_tench.JPEG', 'n03344393_fireboat.JPEG']\n"
    "x = np.stack([photo(f) for f in files])\n"
    "targets = model.predict(x, verbose=0).argmax(-1)\n"
    "print([top(p)[0][1] for p in model.predict(x, verbose=0)])\n"
    "maps = {\n"
    "    'Grad-CAM': tfxai.GradCAM(model)(x, targets),\n"
    "}\n"
    "rng = np.random.default_rng(0)\n"
    "maps['random'] = rng.uniform(size=(len(x), 224, 224)).astype('float32')",
    "md:## Insertion and deletion",
    "insertion, deletion = {}, {}\n"
    "for method, saliency in maps.items():\n"
    "    ins = tfxai.metrics.insertion(model, x, saliency, targets, num_steps=8)\n"
    "    dele = tfxai.metrics.deletion(model, x, saliency, targets, num_steps=8)\n"
    "    insertion[method], deletion[method] = ins.scores, dele.scores\n"
    "    print(f'{method:<17} insertion AUC {ins.auc.mean():.3f}   deletion AUC {dele.auc.mean():.3f}   difference {ins.auc.mean() - dele.auc.mean():+.3f}')\n"
    "tfxai.plot.insertion_deletion_curves(insertion=insertion, deletion=deletion)",
    "md:## Average Drop and Increase in Confidence (Grad-CAM++)\n\n"
    "The image is multiplied by the min-max normalised map; how much does the probability drop?",
    "for method, saliency in maps.items():\n"
    "    drop = tfxai.metrics.average_drop(model, x, saliency, targets)\n"
    "    increase = tfxai.metrics.increase_in_confidence(model, x, saliency, targets)\n"
    "    print(f'{method:<17} Average Drop {drop.value:6.2f}%   Increase in Confidence {increase.value:6.2f}%')",
    "md:## Sanity check: cascading randomisation of the top layers",
    "sanity = tfxai.metrics.cascading_randomization(model, lambda m: tfxai.GradCAM(m, layer='top_relu'), x[:1], targets[:1], layers=2, keep_maps=True)\n"
    "for layer_name, rho in zip(sanity.layers, sanity.spearman[:, 0]):\n"
    "    print(f'randomised down to {layer_name:<22} Spearman with the original map: {rho:+.3f}')\n"
    "tfxai.plot.image_row([x[0]] + [tfxai.plot.overlay(x[0], m[0]).axes[0].images[0].get_array() for m in [sanity.original_maps] + list(sanity.maps)],\n"
    "                     ['photo', 'trained'] + [f'random to {n}' for n in sanity.layers])",
]

NOTEBOOKS["07_assignment.ipynb"] = [
    "md:# 7. Assignment: Integrated Gradients and Grad-CAM from scratch\n\n"
    "Fill in the cells marked `# YOUR CODE HERE`. The cells after each exercise check your answer. "
    "**This copy contains reference answers** between `### BEGIN SOLUTION` and `### END SOLUTION`; "
    "the course's student copy has them removed. The test suite executes this notebook and checks the variables "
    "`student_ig`, `completeness_gap` and `student_cam`.",
    "%matplotlib inline\n"
    "import numpy as np\n"
    "import tensorflow as tf\n"
    "import keras\n\n"
    "import tfxai\n"
    "import tfxai.plot\n"
    "from tfxai import demo\n\n"
    "# A small ReLU CNN on generated shapes (trains in seconds, no download).\n"
    "images, labels, masks = demo.make_shapes(1500, seed=0)\n"
    "model = demo.train(images, labels, epochs=5, seed=0)\n"
    "test_images, test_labels, test_masks = demo.make_shapes(20, seed=7)\n"
    "image, target = test_images[0], int(test_labels[0])\n"
    "print('accuracy on 20 new images:', float(np.mean(model.predict(test_images, verbose=0).argmax(1) == test_labels)))",
    "md:## Exercise 1: the interpolated path\n\nReturn the `len(alphas)` images $x' + \\alpha (x - x')$ as a tensor "
    "`(M, H, W, C)`.",
    "def my_interpolate(baseline, image, alphas):\n"
    "    # YOUR CODE HERE\n"
    "    ### BEGIN SOLUTION\n"
    "    alphas = tf.reshape(tf.cast(alphas, tf.float32), (-1, 1, 1, 1))\n"
    "    return baseline[None] + alphas * (image[None] - baseline[None])\n"
    "    ### END SOLUTION",
    "alphas = tf.linspace(0.0, 1.0, 5)\n"
    "path = my_interpolate(np.zeros_like(image), image, alphas)\n"
    "assert path.shape == (5, 32, 32, 3), path.shape\n"
    "np.testing.assert_allclose(path[-1], image, atol=1e-6)\n"
    "np.testing.assert_allclose(path[2], 0.5 * image, atol=1e-6)\n"
    "print('Exercise 1 passed')",
    "md:## Exercise 2: Integrated Gradients\n\n"
    "Implement IG of the **softmax probability** of `target` with the trapezoid rule over `m_steps` intervals "
    "(`m_steps + 1` alphas). Hint: the model ends in softmax, so `model(x)[:, target]` is the probability.",
    "def my_integrated_gradients(model, baseline, image, target, m_steps=64):\n"
    "    # YOUR CODE HERE\n"
    "    ### BEGIN SOLUTION\n"
    "    alphas = tf.linspace(0.0, 1.0, m_steps + 1)\n"
    "    path = my_interpolate(baseline, image, alphas)\n"
    "    with tf.GradientTape() as tape:\n"
    "        tape.watch(path)\n"
    "        probability = model(path)[:, target]\n"
    "    grads = tape.gradient(probability, path)\n"
    "    avg_grads = tf.reduce_mean((grads[:-1] + grads[1:]) / 2.0, axis=0)\n"
    "    return (image - baseline) * avg_grads\n"
    "    ### END SOLUTION",
    "baseline = np.zeros_like(image)\n"
    "student_ig = np.asarray(my_integrated_gradients(model, baseline, image, target, m_steps=64))\n"
    "f_x, f_baseline = (float(model(v[None])[0, target]) for v in (image, baseline))\n"
    "completeness_gap = abs(float(student_ig.sum()) - (f_x - f_baseline))\n"
    "print(f'sum IG = {student_ig.sum():.4f}, F(x) - F(baseline) = {f_x - f_baseline:.4f}, gap = {completeness_gap:.2e}')\n"
    "reference_ig = np.asarray(tfxai.integrated_gradients.integrated_gradients(model, baseline, image, target, m_steps=64))\n"
    "np.testing.assert_allclose(student_ig, reference_ig, rtol=1e-3, atol=1e-6)\n"
    "print('Exercise 2 passed')",
    "md:## Exercise 3: Grad-CAM\n\nWith the activations `A` of layer `conv3` `(1, h, w, K)` and the gradients of the "
    "target **logit** with respect to them, return the `(h, w)` Grad-CAM map $\\mathrm{ReLU}(\\sum_k w_k A^k)$, "
    "$w_k$ = spatial mean of the gradients.",
    "copy = keras.models.clone_model(model)  # a copy without the final softmax\n"
    "copy.set_weights(model.get_weights())\n"
    "copy.layers[-1].activation = None\n"
    "grad_model = keras.Model(copy.inputs, [copy.get_layer('conv3').output, copy.output])\n"
    "with tf.GradientTape() as tape:\n"
    "    A, logits = grad_model(image[None])\n"
    "    score = logits[:, target]\n"
    "dA = tape.gradient(score, A)\n\n"
    "def my_gradcam(A, dA):\n"
    "    # YOUR CODE HERE\n"
    "    ### BEGIN SOLUTION\n"
    "    weights = tf.reduce_mean(dA, axis=(1, 2))\n"
    "    return tf.nn.relu(tf.einsum('nhwk,nk->nhw', A, weights))[0]\n"
    "    ### END SOLUTION",
    "student_cam = np.asarray(my_gradcam(A, dA))\n"
    "reference_cam = tfxai.GradCAM(model, layer='conv3', upsample=False)(image[None], targets=target)[0].numpy()\n"
    "np.testing.assert_allclose(student_cam, reference_cam, rtol=1e-4, atol=1e-6)\n"
    "print('Exercise 3 passed')\n"
    "tfxai.plot.method_grid(image[None], {'your IG': np.abs(student_ig).sum(-1)[None], 'your Grad-CAM': student_cam[None]},\n"
    "                       labels=[demo.CLASS_NAMES[target]])",
]


def build() -> list[Path]:
    written = []
    for filename, cells in NOTEBOOKS.items():
        notebook = nbformat.v4.new_notebook()
        notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        notebook.metadata["language_info"] = {"name": "python"}
        for index, text in enumerate(cells):
            if text.startswith("md:"):
                cell = nbformat.v4.new_markdown_cell(text[3:])
            else:
                cell = nbformat.v4.new_code_cell(text)
            cell["id"] = f"cell-{index:02d}"
            notebook.cells.append(cell)
        nbformat.validate(notebook)
        path = HERE / filename
        nbformat.write(notebook, path)
        written.append(path)
    return written


if __name__ == "__main__":
    for path in build():
        print("wrote", path.relative_to(HERE.parent))
