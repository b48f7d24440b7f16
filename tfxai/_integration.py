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
