"""A grid of images x explanation methods (the T-Grad paper's Fig. 1 layout)."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from tfxai.errors import InvalidInputError
from tfxai.plot import _core


def method_grid(
    images: Any,
    maps: Mapping[str, Any],
    *,
    labels: Sequence[str] | None = None,
    alpha: float = 0.5,
    cmap: Any = None,
    signed: Sequence[str] | bool = (),
    clip_percentile: float | None = 99.0,
    cell: float = 2.4,
    colorbar: bool = True,
    max_columns: int = 6,
) -> Figure:
    """For every image: the image, then its map for every method as an overlay.

    With at most `max_columns` panels (the image and its maps) this is one row
    per image, method names as column titles (the T-Grad paper's Fig. 1). With
    more, each image's panels wrap onto several rows of `max_columns`, every
    panel titled with its method, so 17 methods on one photo make a 3 x 6
    block instead of one strip too wide to read.

    Args:
        images: ``(N, H, W, C)`` images (any range :func:`tfxai.plot.overlay` accepts).
        maps: ``{method name: (N, h, w) maps}`` in column order.
        labels: one title per image for the image panel: pass the class names
            (e.g. ``"tabby (91%)"``); default ``"image i"``.
        alpha, cmap, clip_percentile: as in :func:`tfxai.plot.overlay`.
        signed: names of the methods whose maps are signed (or True for all);
            they are drawn on a diverging scale symmetric around 0, over the
            photo in grey, with an opacity growing with ``|map|`` (see
            :func:`tfxai.plot._core.blend`).
        cell: size of one panel in inches.
        colorbar: a colour bar beside every map (the map's own values; the
            two ends and 0 labelled).
        max_columns: panels per row before an image's panels wrap (>= 2).

    Returns:
        A figure with ``N * (1 + len(maps))`` image axes (plus colour bars).

    Example::

        maps = {"Grad-CAM": tfxai.GradCAM(model)(images), "IxG": tfxai.InputXGradient(model)(images).sum(-1)}
        tfxai.plot.method_grid(images, maps, labels=["tabby", "espresso"], signed=["IxG"])
    """
    images = _core.to_numpy(images)
    if images.ndim == 3:
        images = images[None]
    if images.ndim != 4:
        raise InvalidInputError(f"`images` must be (N, H, W, C). Received shape {images.shape}.")
    if not isinstance(maps, Mapping) or not maps:
        raise InvalidInputError(
            f"`maps` must be a non-empty dict {{method name: (N, H, W) maps}}. Received: {type(maps).__name__}."
        )
    if isinstance(max_columns, bool) or not isinstance(max_columns, int) or max_columns < 2:
        raise InvalidInputError(f"`max_columns` must be an integer >= 2. Received: {max_columns!r}.")
    n = images.shape[0]
    arrays = {}
    for name, value in maps.items():
        array = _core.to_numpy(value)
        if array.ndim == 2 and n == 1:
            array = array[None]
        if array.ndim != 3 or array.shape[0] != n:
            raise InvalidInputError(
                f"`maps[{name!r}]` must be (N, H, W) with N = {n} (one map per image). Received shape {array.shape}."
            )
        arrays[name] = array
    if labels is not None:
        _core.check_same_length("labels", labels, "images", images)
    panels = 1 + len(arrays)
    columns = min(panels, max_columns)
    rows_per_image = -(-panels // columns)
    wrapped = rows_per_image > 1
    figure, axes = _core.new_figure(n * rows_per_image, columns, cell=cell)
    for i in range(n):
        block = axes[i * rows_per_image : (i + 1) * rows_per_image].reshape(-1)
        for ax in block[panels:]:
            ax.remove()
        rgb = _core.to_rgb(images[i], "images[i]")
        block[0].imshow(rgb)
        block[0].set_title(labels[i] if labels is not None else f"image {i}", fontsize=9)
        for j, (name, array) in enumerate(arrays.items(), start=1):
            is_signed = signed if isinstance(signed, bool) else name in signed
            blended, norm, used = _core.blend(rgb, _core.to_map(array[i]), alpha=alpha, cmap=cmap,
                                              signed=is_signed, clip_percentile=clip_percentile)
            block[j].imshow(blended)
            if colorbar:
                _core.add_colorbar(figure, block[j], norm, used)
            if i == 0 or wrapped:
                block[j].set_title(name, fontsize=10 if not wrapped else 9)
    return figure


def image_row(images: Sequence[Any], titles: Sequence[str] | None = None, *, cell: float = 2.6) -> Figure:
    """Images side by side with optional titles (any range :func:`tfxai.plot.overlay` accepts)."""
    images = list(images) if not isinstance(images, np.ndarray) else list(images)
    if not images:
        raise InvalidInputError("`images` is empty; pass at least one image.")
    if titles is not None:
        _core.check_same_length("titles", titles, "images", images)
    figure, axes = _core.new_figure(1, len(images), cell=cell)
    for k, image in enumerate(images):
        axes[0, k].imshow(_core.to_rgb(image, f"images[{k}]"))
        if titles is not None:
            axes[0, k].set_title(titles[k], fontsize=10)
    return figure
