"""A saliency map drawn over its image."""

from __future__ import annotations

from typing import Any

from matplotlib.figure import Figure

from tfxai.plot import _core


def overlay(
    image: Any,
    heatmap: Any,
    *,
    ax: Any = None,
    alpha: float = 0.5,
    cmap: Any = None,
    signed: bool = False,
    clip_percentile: float | None = 99.0,
    title: str | None = None,
    colorbar: bool = False,
) -> Figure:
    """Draw `heatmap` over `image` and return the figure.

    Args:
        image: one image ``(H, W, 3)``, ``(H, W, 1)`` or ``(H, W)``: ``uint8``,
            floats in [0, 1] or floats in [0, 255] (detected from the values).
        heatmap: a 2-D map ``(h, w)``; resized bilinearly to the image if needed.
        ax: an existing matplotlib axes to draw into (its figure is returned);
            None: a new one-panel figure.
        alpha: weight of the colours (0: image only, 1: map only). For signed
            maps each pixel's weight is ``alpha * |map| / v``.
        cmap: colour map (default ``turbo`` unsigned, ``RdBu_r`` signed).
        signed: True for attributions with both signs (Input x Gradient, IG
            attributions summed over channels): the colour scale is symmetric
            around zero, ``[-v, v]``.
        clip_percentile: upper percentile that saturates the colour scale
            (``|map|`` for signed maps); None: the maximum.
        title: axes title.
        colorbar: add a colour bar.

    Returns:
        The :class:`matplotlib.figure.Figure`.
    """
    rgb = _core.to_rgb(image)
    heat = _core.to_map(heatmap)
    figure, ax = _core.panel(ax)
    blended, norm, colormap = _core.blend(rgb, heat, alpha=alpha, cmap=cmap, signed=signed,
                                          clip_percentile=clip_percentile)
    ax.imshow(blended)
    if title is not None:
        ax.set_title(title)
    if colorbar:
        _core.add_colorbar(figure, ax, norm, colormap)
    return figure


def heatmap(
    heatmap: Any,
    *,
    ax: Any = None,
    cmap: Any = None,
    signed: bool = False,
    clip_percentile: float | None = 99.0,
    title: str | None = None,
    colorbar: bool = True,
) -> Figure:
    """Draw a 2-D map alone (no image), with the same colour rules as :func:`overlay`."""
    heat = _core.to_map(heatmap)
    figure, ax = _core.panel(ax)
    cmap = cmap or (_core.SIGNED_CMAP if signed else _core.UNSIGNED_CMAP)
    norm = _core.map_norm(heat, signed, clip_percentile)
    ax.imshow(heat, cmap=cmap, norm=norm)
    if title is not None:
        ax.set_title(title)
    if colorbar:
        _core.add_colorbar(figure, ax, norm, cmap)
    return figure
