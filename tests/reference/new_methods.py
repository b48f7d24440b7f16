"""Slow float64 references for LayerCAM, HiResCAM, Guided Backprop, RISE, Occlusion, the noise wrapper and ROAD.

Written from the papers with NumPy loops; TensorFlow is used only to run the
model (its logits), to read a layer's activations and the gradient of a
logit (through :mod:`tests.reference.cam`), and, for Guided Backprop, for the
vector-Jacobian products of the *linear* stages of a hand-listed chain (the
guided ReLU gates are applied here in NumPy). Nothing from tfxai is used.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from tests.reference.cam import bilinear


def _softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _relu(x):
    return np.maximum(x, 0.0)


# ----------------------------------------------------------------------------------------------- CAMs
def layer_cam(acts, grads):
    """Jiang et al. Eq. 3-4: w_ij^k = ReLU(g_ij^k); M = ReLU(sum_k w^k_ij A^k_ij)."""
    n, h, w, k = acts.shape
    maps = np.zeros((n, h, w))
    for i in range(n):
        for a in range(h):
            for b in range(w):
                maps[i, a, b] = sum(max(grads[i, a, b, c], 0.0) * acts[i, a, b, c] for c in range(k))
    return _relu(maps)


def hires_cam(acts, grads):
    """Draelos & Carin: sum_k dS/dA_k (elementwise) A_k, then the positive part (pytorch-grad-cam's BaseCAM)."""
    n, h, w, k = acts.shape
    maps = np.zeros((n, h, w))
    for i in range(n):
        for a in range(h):
            for b in range(w):
                maps[i, a, b] = sum(grads[i, a, b, c] * acts[i, a, b, c] for c in range(k))
    return _relu(maps)


# ------------------------------------------------------------------------------------ Guided Backprop
def _linear(stage, x):
    kind = stage[0]
    if kind == "conv":
        _, kernel, bias = stage
        return tf.nn.conv2d(x, kernel, 1, "SAME") + bias
    if kind == "dense":
        _, kernel, bias = stage
        return tf.matmul(x, kernel) + bias
    if kind == "flatten":
        return tf.reshape(x, [x.shape[0], -1])
    if kind == "maxpool":
        return tf.nn.max_pool2d(x, 2, 2, "VALID")
    raise ValueError(kind)


def guided_gradient(stages, images, targets, guided=True):
    """Guided Backprop through a chain of stages, by hand.

    `stages`: ``("conv", kernel, bias)``, ``("dense", kernel, bias)``,
    ``("flatten",)``, ``("maxpool",)`` (computed with TF ops from the weights,
    their vector-Jacobian products by a tape on that stage alone), and the
    activations ``("relu",)`` / ``("relu6",)`` whose backward pass is written
    here: ``g_in = 1[0 < u (< 6)] * max(g_out, 0)`` (``guided=False``: the plain
    ``1[...] * g_out``). The last stage's output are the logits; the gradient
    of ``logit[target]`` w.r.t. the images is returned, float64 ``(N, H, W, C)``.
    """
    x = tf.constant(images, tf.float64)
    inputs = []
    for stage in stages:
        inputs.append(x)
        if stage[0] == "relu":
            x = tf.constant(_relu(x.numpy()))
        elif stage[0] == "relu6":
            x = tf.constant(np.clip(x.numpy(), 0.0, 6.0))
        else:
            x = _linear(stage, x)
    logits = x.numpy()
    g = np.zeros_like(logits)
    g[np.arange(len(targets)), targets] = 1.0
    for stage, u in zip(reversed(stages), reversed(inputs)):
        u_np = u.numpy()
        if stage[0] in ("relu", "relu6"):
            passes = (u_np > 0) & ((u_np < 6) if stage[0] == "relu6" else True)
            g = passes * (_relu(g) if guided else g)
        else:
            with tf.GradientTape() as tape:
                tape.watch(u)
                y = _linear(stage, u)
            g = tape.gradient(y, u, output_gradients=tf.constant(g)).numpy()
    return g, logits


# ------------------------------------------------------------------------------------------------ RISE
def rise(logits_fn, images, targets, grids, shifts, p, substrate=0.0, normalization="expectation"):
    """Petsiuk et al. Eq. 6: S = 1/(K p) sum_k P(c | x * M_k) M_k (``"masks"``: / sum_k M_k).

    M_k: the binary grid ``grids[k]`` upsampled bilinearly (half-pixel centres)
    to ``(g + 1) * ceil(H / g)`` pixels and cropped at ``shifts[k]``.
    `substrate`: a number or an array like `images`.
    """
    n, height, width, _ = images.shape
    k_total, gh, gw = grids.shape
    cell = (math.ceil(height / gh), math.ceil(width / gw))
    up = ((gh + 1) * cell[0], (gw + 1) * cell[1])
    substrate = np.broadcast_to(np.asarray(substrate, np.float64), images.shape)
    maps = np.zeros((n, height, width))
    coverage = np.zeros((n, height, width))
    for k in range(k_total):
        big = bilinear(grids[k].astype(np.float64), *up)
        dy, dx = shifts[k]
        mask = big[dy : dy + height, dx : dx + width]
        masked = images * mask[None, :, :, None] + substrate * (1 - mask[None, :, :, None])
        probs = _softmax(np.asarray(logits_fn(masked), np.float64))
        for i in range(n):
            maps[i] += probs[i, targets[i]] * mask
            coverage[i] += mask
    if normalization == "masks":
        return np.where(coverage > 0, maps / np.where(coverage > 0, coverage, 1), 0.0)
    return maps / (k_total * p)


# ------------------------------------------------------------------------------------------ Occlusion
def occlusion(logits_fn, images, targets, patch, stride, substrate=0.0, output="probability"):
    """Zeiler & Fergus: mean over the patches covering a pixel of score(x) - score(x, patch hidden).

    Anchors every `stride` pixels while the patch fits (xplique's anchors).
    """
    n, height, width, _ = images.shape
    substrate = np.broadcast_to(np.asarray(substrate, np.float64), images.shape)

    def score(x):
        z = np.asarray(logits_fn(x), np.float64)
        values = _softmax(z) if output == "probability" else z
        return values[np.arange(n), targets]

    base = score(images)
    total = np.zeros((n, height, width))
    count = np.zeros((height, width))
    y = 0
    while y + patch[0] <= height:
        x = 0
        while x + patch[1] <= width:
            hidden = images.copy()
            hidden[:, y : y + patch[0], x : x + patch[1]] = substrate[:, y : y + patch[0], x : x + patch[1]]
            drop = base - score(hidden)
            total[:, y : y + patch[0], x : x + patch[1]] += drop[:, None, None]
            count[y : y + patch[0], x : x + patch[1]] += 1
            x += stride[1]
        y += stride[0]
    return np.where(count > 0, total / np.where(count > 0, count, 1), 0.0)


# ------------------------------------------------------------------------------------- noise wrapper
def noisy_gradient_statistics(model, images, targets, noise, output="probability"):
    """(mean, mean of squares, unbiased variance) over k of d score / d x at ``x + noise[k]``.

    `noise`: ``(K, H, W, C)`` (the same draw for every image), `model` outputs logits.
    """
    grads = []
    for eps in noise:
        x = tf.constant(images + eps[None])
        with tf.GradientTape() as tape:
            tape.watch(x)
            z = model(x, training=False)
            s = tf.nn.softmax(z) if output == "probability" else z
            total = sum(s[i, int(t)] for i, t in enumerate(targets))
        grads.append(tape.gradient(total, x).numpy())
    grads = np.stack(grads)  # (K, N, H, W, C)
    k = len(noise)
    mean = grads.sum(axis=0) / k
    squares = (grads**2).sum(axis=0) / k
    variance = ((grads - mean) ** 2).sum(axis=0) / (k - 1) if k > 1 else None
    return mean, squares, variance


# ----------------------------------------------------------------------------------------------- ROAD
OFFSETS = [((1, 1), 1 / 12), ((0, 1), 1 / 6), ((-1, 1), 1 / 12), ((1, -1), 1 / 12),
           ((0, -1), 1 / 6), ((-1, -1), 1 / 12), ((1, 0), 1 / 6), ((-1, 0), 1 / 6)]


def road_system(image, removed):
    """The authors' system (road/imputations.py ``setup_sparse_system``) as a dense matrix.

    Unknowns: removed pixels in row-major order. Row i: ``sum_valid w * x_i - sum_{removed nbr} w x_j =
    sum_{kept nbr} w v_j`` (their A, b with both sides negated). Returns (A, b (U, C), indices).
    """
    height, width, channels = image.shape
    indices = [(y, x) for y in range(height) for x in range(width) if removed[y, x]]
    index = {p: i for i, p in enumerate(indices)}
    a = np.zeros((len(indices), len(indices)))
    b = np.zeros((len(indices), channels))
    for i, (y, x) in enumerate(indices):
        for (dy, dx), w in OFFSETS:
            v, u = y + dy, x + dx
            if not (0 <= v < height and 0 <= u < width):
                continue
            a[i, i] += w
            if removed[v, u]:
                a[i, index[(v, u)]] -= w
            else:
                b[i] += w * image[v, u]
    return a, b, indices


def linear_imputation(image, removed):
    """Exact solution of :func:`road_system` (dense solve), filled into a copy of `image`."""
    a, b, indices = road_system(image, removed)
    out = image.copy()
    if indices:
        solution = np.linalg.solve(a, b)
        for i, (y, x) in enumerate(indices):
            out[y, x] = solution[i]
    return out


def removal_masks(saliency, fraction, order):
    """Boolean (H, W) mask of the removed pixels: the round(f H W) most (MoRF) or least (LeRF) salient.

    Ranking: descending saliency, ties in row-major order (a stable sort).
    """
    flat = saliency.reshape(-1)
    order_idx = sorted(range(flat.size), key=lambda j: (-flat[j], j))
    count = int(round(fraction * flat.size))
    chosen = order_idx[:count] if order == "morf" else order_idx[flat.size - count :]
    mask = np.zeros(flat.size, bool)
    mask[chosen] = True
    return mask.reshape(saliency.shape)
