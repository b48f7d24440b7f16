"""Figures for explanations (matplotlib is imported only in this package).

Every function returns a :class:`matplotlib.figure.Figure` built without
``pyplot``, so it works headless (no display, Agg); save it with
``fig.savefig("out.png")`` or show it in a notebook as a cell's last value.
Images may be ``uint8``, floats in [0, 1] or floats in [0, 255] (detected from
the values); preprocessed images with negative values are min-max scaled.

* :func:`overlay`, :func:`heatmap`: one map over its image / alone; signed maps
  get a diverging colour map with a scale symmetric around zero.
* :func:`method_grid`: images x methods (the T-Grad paper's Fig. 1).
* :func:`ig_summary`, :func:`interpolation_strip`, :func:`alpha_curves`,
  :func:`baseline_comparison`: the TensorFlow Integrated Gradients tutorial figures.
* :func:`layer_maps`: per-layer T-Grad maps (the paper's Fig. 2).
* :func:`fgsm_triptych`: image, sign of the gradient, adversarial image.
* :func:`insertion_deletion_curves`: metric curves with their AUCs (from arrays).
* :func:`plot_curves`, :func:`plot_speed`, :func:`plot_sanity_grid`: figures of
  :mod:`tfxai.evaluation` results (curves per method, time per image, sanity check).
"""

from __future__ import annotations

from tfxai.plot.adversarial import fgsm_triptych
from tfxai.plot.curves import insertion_deletion_curves
from tfxai.plot.grid import image_row, method_grid
from tfxai.plot.integrated_gradients import (
    alpha_curves,
    attribution_mask,
    baseline_comparison,
    ig_summary,
    interpolation_strip,
)
from tfxai.plot.layers import layer_maps
from tfxai.plot.overlay import heatmap, overlay

__all__ = [
    "overlay",
    "heatmap",
    "method_grid",
    "image_row",
    "ig_summary",
    "interpolation_strip",
    "alpha_curves",
    "baseline_comparison",
    "attribution_mask",
    "layer_maps",
    "fgsm_triptych",
    "insertion_deletion_curves",
]

from tfxai.plot.evaluation import plot_curves, plot_sanity_grid, plot_speed  # noqa: E402

__all__ += ["plot_curves", "plot_speed", "plot_sanity_grid"]
