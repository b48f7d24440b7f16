"""Quadrature rules for path integrals over alpha in [0, 1] (pure, no model access).

Each rule is a pair ``(alphas, weights)`` with ``sum_k weights[k] * g(alphas[k])``
approximating ``integral_0^1 g(alpha) d alpha``:

* ``trapezoid``: ``m + 1`` points ``k / m``; weights ``1/(2m)`` at both ends, ``1/m`` inside
  (the TF Integrated Gradients tutorial).
* ``riemann_left``: ``k / m`` for ``k = 0..m-1``; ``riemann_right``: ``k / m`` for
  ``k = 1..m`` (the lecture's formula); ``riemann_middle``: ``(k + 1/2) / m``.
  All with weights ``1/m``.
"""

from __future__ import annotations

import numpy as np

METHODS = ("trapezoid", "riemann_left", "riemann_right", "riemann_middle")


def rule(method: str, num_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Return float64 ``(alphas, weights)`` for `method` with `num_steps` intervals."""
    m = num_steps
    if method == "trapezoid":
        alphas = np.linspace(0.0, 1.0, m + 1)
        weights = np.full(m + 1, 1.0 / m)
        weights[[0, -1]] = 0.5 / m
        return alphas, weights
    offsets = {"riemann_left": 0.0, "riemann_right": 1.0, "riemann_middle": 0.5}
    if method not in offsets:
        raise ValueError(f"unknown rule {method!r}; expected one of {METHODS}")
    return (np.arange(m) + offsets[method]) / m, np.full(m, 1.0 / m)


def num_points(method: str, num_steps: int) -> int:
    """Number of alphas of `method` with `num_steps` intervals (``m + 1`` for the trapezoid, else ``m``)."""
    return num_steps + 1 if method == "trapezoid" else num_steps


def points(method: str, num_steps: int, k, dtype):
    """In-graph ``(alpha_k, weight_k)`` for integer tensor `k` (no table: any `num_steps` fits in memory).

    The same values as :func:`rule`, computed from the index.
    """
    import tensorflow as tf

    m = tf.cast(num_steps, dtype)
    k = tf.cast(k, dtype)
    if method == "trapezoid":
        end = tf.logical_or(tf.equal(k, 0), tf.equal(k, m))
        return k / m, tf.where(end, 0.5 / m, 1.0 / m)
    offsets = {"riemann_left": 0.0, "riemann_right": 1.0, "riemann_middle": 0.5}
    if method not in offsets:
        raise ValueError(f"unknown rule {method!r}; expected one of {METHODS}")
    return (k + offsets[method]) / m, tf.ones_like(k) / m
