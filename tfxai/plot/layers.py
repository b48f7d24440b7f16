"""Per-layer maps of a decomposition (the T-Grad paper's Fig. 2)."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from matplotlib.figure import Figure

from tfxai.errors import InvalidInputError
from tfxai.plot import _core


def layer_maps(
    maps: Any,
    *,
    names: Sequence[str] | None = None,
    scores: Sequence[float] | None = None,
    image: Any = None,
    combined: Any = None,
    cols: int = 6,
    cmap: Any = None,
    clip_percentile: float | None = 99.0,
    cell: float = 2.0,
) -> Figure:
    """One panel per layer map, titled with the layer name and its score.

    For T-Grad the maps are the per-layer ``S_i`` (input term first, then
    one per bias site), the scores ``score_i = ReLU(sum grad * b)`` are how much
    each layer contributes to the final map (paper Eq. 8).

    Args:
        maps: a sequence (or ``{name: map}`` dict) of 2-D maps, any sizes
            (low-resolution layers are shown at their own resolution).
        names: one name per map (taken from the dict keys if `maps` is a dict).
        scores: optional one score per map, shown in the titles.
        image: optional image shown first.
        combined: optional combined map shown (over the image, if given) after it.
        cols: panels per row.
        cmap: colour map (default ``turbo``).
        clip_percentile: upper percentile saturating each panel's colours.
        cell: panel size in inches.

    Returns:
        A figure with ``ceil(panels / cols) x min(cols, panels)`` axes (unused ones hidden).
    """
    if isinstance(maps, dict):
        names = list(maps) if names is None else list(names)
        maps = list(maps.values())
    maps = [_core.to_map(m, f"maps[{k}]") for k, m in enumerate(maps)]
    if not maps:
        raise InvalidInputError("`maps` is empty; pass at least one per-layer map.")
    names = [f"layer {k}" for k in range(len(maps))] if names is None else list(names)
    _core.check_same_length("names", names, "maps", maps)
    if scores is not None:
        scores = [float(s) for s in _core.to_numpy(scores).reshape(-1)]
        _core.check_same_length("scores", scores, "maps", maps)
    panels: list[tuple[str, Any]] = []
    rgb = None if image is None else _core.to_rgb(image)
    if rgb is not None:
        panels.append(("image", None))
    if combined is not None:
        panels.append(("combined", _core.to_map(combined, "combined")))
    panels.extend((f"layer:{k}", m) for k, m in enumerate(maps))
    cols = max(1, min(int(cols), len(panels)))
    rows = int(np.ceil(len(panels) / cols))
    figure, axes = _core.new_figure(rows, cols, cell=cell)
    cmap = cmap or _core.UNSIGNED_CMAP
    for ax in axes.flat[len(panels):]:
        ax.set_axis_off()
    for ax, (kind, value) in zip(axes.flat, panels):
        if kind == "image":
            ax.imshow(rgb)
            ax.set_title("image", fontsize=8)
        elif kind == "combined":
            if rgb is not None:
                blended, _, _ = _core.blend(rgb, value, alpha=0.5, cmap=cmap, signed=False,
                                            clip_percentile=clip_percentile)
                ax.imshow(blended)
            else:
                ax.imshow(value, cmap=cmap, norm=_core.map_norm(value, False, clip_percentile))
            ax.set_title("combined map", fontsize=8)
        else:
            k = int(kind.split(":")[1])
            ax.imshow(value, cmap=cmap, norm=_core.map_norm(value, False, clip_percentile))
            title = names[k] if scores is None else f"{names[k]}\nscore {scores[k]:.3g}"
            ax.set_title(title, fontsize=7)
    return figure
