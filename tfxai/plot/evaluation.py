"""Figures of evaluation results: mean insertion/deletion curves, speed bars, sanity-check grid.

Every function returns a :class:`matplotlib.figure.Figure` (no pyplot; headless).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from matplotlib.figure import Figure

from tfxai.plot._core import to_numpy, to_rgb


def plot_curves(results: Any, methods: Sequence[str] | None = None) -> Figure:
    """Mean insertion and deletion curves of every method (AUC in the legend).

    Args:
        results: :class:`tfxai.evaluation.EvaluationResults`.
        methods: names to show (default: all, in table order).
    """
    names = list(methods or results.methods)
    fractions = np.asarray(results.fractions)
    figure = Figure(figsize=(11, 4.2))
    axes = figure.subplots(1, 2, sharey=True)
    for ax, key, title in zip(axes, ("insertion", "deletion"), ("Insertion (higher is better)", "Deletion (lower is better)")):
        for index, name in enumerate(names):
            result = results.methods[name]
            if key not in result.curves:
                continue
            ax.plot(fractions, result.curves[key], label=f"{name} ({result.means[key]:.3f})", linewidth=1.4,
                    color=f"C{index % 10}", linestyle=("-", "--", ":")[(index // 10) % 3])
        ax.set_title(title)
        ax.set_xlabel("fraction of pixels " + ("revealed" if key == "insertion" else "removed"))
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=7, loc="best")
    axes[0].set_ylabel("mean softmax probability of the target")
    figure.tight_layout()
    return figure


def plot_speed(results: Any, methods: Sequence[str] | None = None) -> Figure:
    """Horizontal bars of explanation time per image (ms, log scale), fastest on top."""
    names = list(methods or results.methods)
    times = [results.methods[name].ms_per_image for name in names]
    order = np.argsort(times)[::-1]
    figure = Figure(figsize=(6.5, 0.35 * len(names) + 1.2))
    ax = figure.subplots()
    ax.barh([names[i] for i in order], [times[i] for i in order], color="tab:blue")
    for y, i in enumerate(order):
        ax.text(times[i], y, f" {times[i]:.1f}", va="center", fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("explanation time per image (ms, log scale)")
    ax.grid(axis="x", alpha=0.3)
    figure.tight_layout()
    return figure


def plot_sanity_grid(image: Any, randomization: dict, image_index: int = 0, max_columns: int | None = None) -> Figure:
    """Cascading-randomisation grid (the T-Grad paper's Fig. 6): one row per method.

    Args:
        image: the explained image ``(H, W, C)`` (shown in the first column).
        randomization: ``{method: RandomizationResult}`` computed with ``keep_maps=True``.
        image_index: which image of the results to show.
        max_columns: show at most this many randomised layers (evenly spaced).

    Columns: the image, the original map, then the map after randomising each
    layer from the top down (titles give the last randomised layer and the Spearman rank
    correlation with the original map, written out: a small Greek rho reads as "p").
    """
    names = list(randomization)
    first = randomization[names[0]]
    layers = list(first.layers)
    picks = list(range(len(layers)))
    if max_columns is not None and len(picks) > max_columns:
        picks = sorted(set(np.linspace(0, len(layers) - 1, max_columns).round().astype(int).tolist()))
    columns = 2 + len(picks)
    figure = Figure(figsize=(1.6 * columns, 1.7 * len(names) + 0.4))
    axes = np.atleast_2d(figure.subplots(len(names), columns, squeeze=False))
    for row, name in enumerate(names):
        result = randomization[name]
        if result.maps is None:
            raise ValueError(f"randomization[{name!r}] has no maps; run cascading_randomization(..., keep_maps=True).")
        axes[row, 0].imshow(to_rgb(image))
        axes[row, 0].set_ylabel(name, fontsize=8)
        axes[row, 1].imshow(to_numpy(result.original_maps[image_index]), cmap="turbo")
        if row == 0:
            axes[row, 0].set_title("image", fontsize=7)
            axes[row, 1].set_title("original", fontsize=7)
        for col, layer in enumerate(picks, start=2):
            axes[row, col].imshow(to_numpy(result.maps[layer][image_index]), cmap="turbo")
            label = f"{result.layers[layer]}\n" if row == 0 else ""
            axes[row, col].set_title(f"{label}Spearman {result.spearman[layer, image_index]:.2f}", fontsize=6)
        for ax in axes[row]:
            ax.set_xticks([])
            ax.set_yticks([])
    figure.suptitle("Cascading randomisation (top layers first, left to right); Spearman rank correlation "
                    "with the original map", fontsize=9)
    figure.tight_layout()
    return figure
