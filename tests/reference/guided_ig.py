"""Guided IG in float64 NumPy, one image at a time, written line by line from the algorithm.

Kapishnikov et al. (2021), "Guided Integrated Gradients: An Adaptive Path Method for
Removing Noise", CVPR, Algorithm 1 with the bounded deviation ``max_dist`` of the
authors' release: at each of ``steps`` steps the point ``x`` must close ``1/steps`` of
the L1 distance to the input; features lagging more than ``max_dist`` (in alpha) behind
the straight line are pulled up first, then the ``fraction`` of features with the
smallest ``|gradient|`` move toward the leading bound ``x_max``, repeatedly until the
step's L1 target is met. The attribution is ``sum (x_new - x_old) * grad(x_old)``.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np


def guided_ig(x_input: np.ndarray, x_baseline: np.ndarray, grad_fn: Callable[[np.ndarray], np.ndarray],
              steps: int, fraction: float, max_dist: float, eps: float = 1e-9) -> np.ndarray:
    """Attributions of one input (any shape); `grad_fn(x) -> d score / dx` of the same shape."""
    x_input = np.asarray(x_input, np.float64).ravel()
    x_baseline = np.asarray(x_baseline, np.float64).ravel()
    shape = np.shape(x_input)
    d = x_input - x_baseline
    size = d.size
    l1_total = np.sum(np.abs(d))
    x = x_baseline.copy()
    attr = np.zeros(size)
    for step in range(steps):
        g = np.asarray(grad_fn(x), np.float64).ravel()
        alpha = (step + 1.0) / steps
        a_min, a_max = max(alpha - max_dist, 0.0), min(alpha + max_dist, 1.0)
        x_min, x_max = x_baseline + d * a_min, x_baseline + d * a_max
        target = l1_total * (1 - alpha)
        x_start = x.copy()
        while True:
            # how far along the line each feature is; a feature with d == 0 is never "behind"
            with np.errstate(divide="ignore", invalid="ignore"):
                x_alpha = np.where(d != 0, (x - x_baseline) / d, a_max)
            behind = x_alpha < a_min
            x[behind] = x_min[behind]
            current = np.sum(np.abs(x - x_input))
            if math.isclose(current, target, rel_tol=eps, abs_tol=eps) or current < target:
                break
            # rank |g|; features already at the leading bound cannot move: rank them +inf
            ranked = np.abs(g)
            ranked[x == x_max] = np.inf
            k = int(math.floor((size - 1) * fraction))
            threshold = np.sort(ranked)[k]
            chosen = (ranked <= threshold) & np.isfinite(ranked)
            room = np.sum(np.abs(x - x_max)[chosen])
            if room <= 0:
                break
            gamma = (current - target) / room
            if gamma > 1:
                x[chosen] = x_max[chosen]          # not enough: move them all the way, choose again
            else:
                x[chosen] = x[chosen] + gamma * (x_max[chosen] - x[chosen])
                break
        attr += (x - x_start) * g
    return attr.reshape(shape)
