"""Insertion / deletion curves (Petsiuk et al., RISE; the T-Grad paper's protocol)."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
from matplotlib.figure import Figure

from tfxai.errors import InvalidInputError
from tfxai.plot import _core


def _auc(curve: np.ndarray) -> float:
    x = np.linspace(0.0, 1.0, curve.shape[0])
    return float(np.sum((curve[1:] + curve[:-1]) / 2.0 * np.diff(x)))


def insertion_deletion_curves(
    insertion: Mapping[str, Any] | Any = None,
    deletion: Mapping[str, Any] | Any = None,
) -> Figure:
    """Probability of the target against the fraction of pixels inserted / deleted.

    Args:
        insertion: ``{method: curve}`` (or one curve); each curve is ``(steps + 1,)``
            or ``(N, steps + 1)`` (averaged over images, with the spread
            shaded). The x axis runs from 0 to 1.
        deletion: the same for deletion.

    Returns:
        A figure with one panel per given kind (``Insertion`` / ``Deletion``),
        legend entries ``method (AUC 0.123)`` with the trapezoid AUC of the mean curve.
    """
    kinds = [(name, value) for name, value in (("Insertion", insertion), ("Deletion", deletion)) if value is not None]
    if not kinds:
        raise InvalidInputError("Pass `insertion` and/or `deletion` curves; both are None.")
    figure = Figure(figsize=(4.8 * len(kinds), 3.6), layout="constrained")
    axes = figure.subplots(1, len(kinds), squeeze=False)[0]
    for ax, (kind, curves) in zip(axes, kinds):
        if not isinstance(curves, Mapping):
            curves = {"": curves}
        for method, values in curves.items():
            array = _core.to_numpy(values).astype(np.float64)
            if array.ndim == 1:
                array = array[None]
            if array.ndim != 2 or array.shape[1] < 2:
                raise InvalidInputError(
                    f"{kind.lower()} curve {method!r} must be (steps + 1,) or (N, steps + 1). Received shape {array.shape}."
                )
            mean = array.mean(axis=0)
            x = np.linspace(0.0, 1.0, mean.shape[0])
            label = f"{method} (AUC {_auc(mean):.3f})" if method else f"AUC {_auc(mean):.3f}"
            (line,) = ax.plot(x, mean, label=label)
            if array.shape[0] > 1:
                ax.fill_between(x, array.min(axis=0), array.max(axis=0), color=line.get_color(), alpha=0.12)
        ax.set_title(kind)
        ax.set_xlabel(f"fraction of pixels {'inserted' if kind == 'Insertion' else 'deleted'}")
        ax.set_ylabel("probability of the target class")
        ax.set_xlim(0.0, 1.0)
        ax.legend(fontsize=8)
    return figure
