"""Slow float64 references of T-Grad (Eq. 8) and FullGrad post-processing, NumPy loops only.

Inputs are the signed terms of the decomposition (input term and bias terms as
(N, h, w, c) arrays); see tests/reference/decomposition.py. Upsampling is a
hand-written bilinear interpolation with half-pixel centres (TF/PyTorch
``align_corners=False``).
"""

from __future__ import annotations

import numpy as np


def bilinear(image, size):
    """Resize a 2-D array to `size` with half-pixel centres, edges clamped."""
    h, w = image.shape
    out = np.zeros(size)
    for i in range(size[0]):
        for j in range(size[1]):
            y = max((i + 0.5) * h / size[0] - 0.5, 0.0)
            x = max((j + 0.5) * w / size[1] - 0.5, 0.0)
            y0, x0 = min(int(np.floor(y)), h - 1), min(int(np.floor(x)), w - 1)
            y1, x1 = min(y0 + 1, h - 1), min(x0 + 1, w - 1)
            dy, dx = y - y0, x - x0
            out[i, j] = (
                image[y0, x0] * (1 - dy) * (1 - dx)
                + image[y0, x1] * (1 - dy) * dx
                + image[y1, x0] * dy * (1 - dx)
                + image[y1, x1] * dy * dx
            )
    return out


def tgrad(input_term, bias_terms, size):
    """T = phi(S_input) * score_input + sum_i phi(S_i) * score_i for each image, (N, H, W)."""
    n = input_term.shape[0]
    result = np.zeros((n, *size))
    for k in range(n):
        for term in [input_term] + list(bias_terms):
            t = term[k]
            s = np.zeros(t.shape[:2])
            for c in range(t.shape[2]):
                s += np.maximum(t[..., c], 0.0)  # ReLU before the channel sum
            score = max(t.sum(), 0.0)
            up = bilinear(s, size)
            result[k] += up / (up.sum() + 1e-16) * score
    return result


def fullgrad_official(input_term, bias_terms, size):
    """Srinivas & Fleuret's post-processing: abs, joint min-max (eps 1e-6), channel sum, upsample, sum."""
    n = input_term.shape[0]
    result = np.zeros((n, *size))
    for k in range(n):
        for term in [input_term] + list(bias_terms):
            t = np.abs(term[k])
            t = t - t.min()
            t = t / (t.max() + 1e-6)
            result[k] += bilinear(t.sum(axis=-1), size)
    return result


def fullgrad_pytorch_grad_cam(input_term, bias_terms, size):
    """pytorch-grad-cam's FullGrad: per-channel min-max (eps 1e-7), upsample, sums, final min-max."""
    n = input_term.shape[0]
    result = np.zeros((n, *size))
    for k in range(n):
        total = np.zeros(size)
        for term in [input_term] + list(bias_terms):
            t = np.abs(term[k])
            for c in range(t.shape[-1]):
                channel = t[..., c] - t[..., c].min()
                total += bilinear(channel / (channel.max() + 1e-7), size)
        total = total - total.min()
        result[k] = total / (total.max() + 1e-7)
    return result
