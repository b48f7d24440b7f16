"""Slow float64 references for the CAM family, written from the papers.

Plain NumPy loops plus one `tf.GradientTape` to read a layer's activations and
the gradient of the target logit; nothing from tfxai is used. Upsampling is a
hand-written bilinear interpolation with half-pixel centres (as
``torch.nn.functional.interpolate(mode="bilinear", align_corners=False)``).
"""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf


def activations_and_gradients(model, layer_name, images, targets):
    """A (N, h, w, K), d logit_t / d A (N, h, w, K) and logits (N, classes), float64 NumPy.

    `model` must output logits and `layer_name` be a top-level layer of it.
    """
    probe = keras.Model(model.inputs, [model.get_layer(layer_name).output, model.outputs[0]])
    x = tf.constant(images)
    with tf.GradientTape() as tape:
        tape.watch(x)
        acts, logits = probe(x, training=False)
        total = 0.0
        for i, t in enumerate(targets):
            total = total + logits[i, int(t)]  # images are independent: one tape for all
    grads = tape.gradient(total, acts)
    return np.asarray(acts, np.float64), np.asarray(grads, np.float64), np.asarray(logits, np.float64)


def bilinear(m, height, width):
    """Resize a 2-D array with bilinear interpolation, half-pixel centres, edge clamping."""
    h, w = m.shape
    out = np.zeros((height, width))
    for i in range(height):
        y = min(max((i + 0.5) * h / height - 0.5, 0.0), h - 1)
        y0 = int(math.floor(y))
        y1 = min(y0 + 1, h - 1)
        fy = y - y0
        for j in range(width):
            x = min(max((j + 0.5) * w / width - 0.5, 0.0), w - 1)
            x0 = int(math.floor(x))
            x1 = min(x0 + 1, w - 1)
            fx = x - x0
            top = m[y0, x0] * (1 - fx) + m[y0, x1] * fx
            bottom = m[y1, x0] * (1 - fx) + m[y1, x1] * fx
            out[i, j] = top * (1 - fy) + bottom * fy
    return out


def _upsample_all(maps, size):
    return np.stack([bilinear(m, *size) for m in maps])


def _relu(x):
    return np.maximum(x, 0.0)


def grad_cam(acts, grads):
    """Selvaraju et al. Eq. 1-2: alpha_k = (1/Z) sum_ij dy/dA_ij; ReLU(sum_k alpha_k A_k)."""
    n, h, w, k = acts.shape
    maps = np.zeros((n, h, w))
    for i in range(n):
        for c in range(k):
            alpha = sum(grads[i, a, b, c] for a in range(h) for b in range(w)) / (h * w)
            maps[i] += alpha * acts[i, :, :, c]
    return _relu(maps)


def grad_cam_plus_plus(acts, grads, official=False):
    """Chattopadhyay et al. Eq. 19 with S = exp(Y): alpha = g^2 / (2 g^2 + sum_ab A_ab g^3).

    ``official=True`` divides each channel's alphas by their sum (authors' code).
    A zero denominator gives alpha = 0.
    """
    n, h, w, k = acts.shape
    maps = np.zeros((n, h, w))
    for i in range(n):
        for c in range(k):
            total_a = sum(acts[i, a, b, c] for a in range(h) for b in range(w))
            alpha = np.zeros((h, w))
            for a in range(h):
                for b in range(w):
                    g = grads[i, a, b, c]
                    denominator = 2 * g**2 + total_a * g**3
                    alpha[a, b] = g**2 / denominator if denominator != 0 else 0.0
            if official and alpha.sum() != 0:
                alpha = alpha / alpha.sum()
            weight = sum(alpha[a, b] * max(grads[i, a, b, c], 0.0) for a in range(h) for b in range(w))
            maps[i] += weight * acts[i, :, :, c]
    return _relu(maps)


def xgrad_cam(acts, grads, eps=1e-7):
    """Fu et al. Eq. 11: w_k = sum_ij A_ij / (sum_ab A_ab) * g_ij (eps as pytorch-grad-cam)."""
    n, h, w, k = acts.shape
    maps = np.zeros((n, h, w))
    for i in range(n):
        for c in range(k):
            total_a = acts[i, :, :, c].sum()
            weight = sum(acts[i, a, b, c] / (total_a + eps) * grads[i, a, b, c] for a in range(h) for b in range(w))
            maps[i] += weight * acts[i, :, :, c]
    return _relu(maps)


def eigen_cam(acts):
    """Muhammad & Yeasin: project centred (hw, K) activations on the first right-singular vector.

    The sign is chosen so the projection correlates positively with sum_k A_k; then ReLU.
    """
    n, h, w, k = acts.shape
    maps = np.zeros((n, h, w))
    for i in range(n):
        flat = acts[i].reshape(h * w, k)
        centred = flat - flat.mean(axis=0)
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        projection = centred @ vt[0]
        total = flat.sum(axis=1)
        if np.dot(projection, total - total.mean()) < 0:
            projection = -projection
        maps[i] = projection.reshape(h, w)
    return _relu(maps)


def score_cam(model, layer_name, images, targets, upsample=True):
    """Wang et al. / official code: s_k = softmax(f(X * norm(up(A_k))))_c; ReLU(sum s_k up(A_k)).

    `model` outputs logits. Constant channels are skipped.
    """
    acts, _, _ = activations_and_gradients(model, layer_name, images, targets)
    n, height, width, _ = images.shape
    k = acts.shape[-1]
    size = (height, width) if upsample else acts.shape[1:3]
    maps = np.zeros((n, *size))
    for i in range(n):
        for c in range(k):
            up = bilinear(acts[i, :, :, c], height, width)
            if up.max() == up.min():
                continue
            mask = (up - up.min()) / (up.max() - up.min())
            logits = np.asarray(model(images[i : i + 1] * mask[None, :, :, None], training=False), np.float64)[0]
            p = np.exp(logits - logits.max())
            p = p / p.sum()
            maps[i] += p[int(targets[i])] * (up if upsample else acts[i, :, :, c])
    return _relu(maps)


def upsample(maps, size):
    """Bilinear upsampling of (N, h, w) maps to `size`."""
    return _upsample_all(maps, size)


def ablation_cam(acts, logits, targets, head):
    """Desai & Ramaswamy: w_k = (y_c - y_c^k) / y_c, y_c^k the logit with channel k of A set to 0.

    `head(a)` maps one image's (h, w, K) activations to its logits (written by hand for the
    model under test). A zero y_c gives weight 0. ReLU(sum_k w_k A_k).
    """
    n, h, w, k = acts.shape
    maps = np.zeros((n, h, w))
    for i in range(n):
        t = int(targets[i])
        y = logits[i, t]
        for c in range(k):
            ablated = acts[i].copy()
            ablated[:, :, c] = 0.0
            y_k = head(ablated)[t]
            weight = (y - y_k) / y if y != 0 else 0.0
            maps[i] += weight * acts[i, :, :, c]
    return _relu(maps)
