"""Shared helpers of the plotting functions: images to RGB, maps to colours, figures.

Figures are built with :class:`matplotlib.figure.Figure` directly (not through
``pyplot``), so they work on a headless machine (no display, no backend
selection) and do not accumulate in pyplot's global figure list. In Jupyter a
returned figure shows when it is the last expression of a cell; save it with
``fig.savefig(path)``.
"""

from __future__ import annotations

from typing import Any, Sequence

import matplotlib
import matplotlib.colors as mcolors
import numpy as np
from matplotlib.figure import Figure

from tfxai.errors import InvalidInputError

#: Default colour maps: a rainbow for non-negative saliency, a diverging map for signed attributions.
UNSIGNED_CMAP = "turbo"
SIGNED_CMAP = "RdBu_r"


def to_numpy(value: Any) -> np.ndarray:
    """A NumPy copy of an array, tensor or nested list."""
    if hasattr(value, "numpy"):
        value = value.numpy()
    return np.asarray(value)


def to_rgb(image: Any, name: str = "image") -> np.ndarray:
    """Convert an image to float RGB in [0, 1] for display, shape ``(H, W, 3)``.

    Accepted: ``(H, W)``, ``(H, W, 1)`` or ``(H, W, 3)``; ``uint8``/integer
    values in [0, 255]; floats in [0, 1]; floats in [0, 255] (any value above
    1); preprocessed floats with negative values (e.g. [-1, 1]) are min-max
    scaled to [0, 1]. A leading batch axis of size 1 is dropped.
    """
    array = to_numpy(image)
    if array.ndim == 4 and array.shape[0] == 1:
        array = array[0]
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=-1)
    if array.ndim != 3 or array.shape[-1] not in (3, 4):
        raise InvalidInputError(
            f"`{name}` must be one image (H, W), (H, W, 1) or (H, W, 3). Received shape {array.shape}; "
            "pass images[i] to plot the i-th image of a batch."
        )
    array = array[..., :3]
    if np.issubdtype(array.dtype, np.integer) or array.dtype == bool:
        return np.clip(array.astype(np.float64) / (1.0 if array.dtype == bool else 255.0), 0.0, 1.0)
    array = array.astype(np.float64)
    if not np.all(np.isfinite(array)):
        raise InvalidInputError(f"`{name}` contains NaN or infinite values; cannot display it.")
    low, high = float(array.min()), float(array.max())
    if low < 0.0:  # preprocessed (e.g. [-1, 1] or mean-subtracted): show the full range
        return (array - low) / (high - low) if high > low else np.zeros_like(array)
    if high > 1.0 + 1e-6:  # raw pixels in [0, 255]
        return np.clip(array / 255.0, 0.0, 1.0)
    return np.clip(array, 0.0, 1.0)


def to_map(heatmap: Any, name: str = "heatmap") -> np.ndarray:
    """A single 2-D map ``(h, w)`` as float64 (drops a leading batch axis of 1 and a trailing channel of 1)."""
    array = to_numpy(heatmap).astype(np.float64)
    if array.ndim == 3 and array.shape[0] == 1:
        array = array[0]
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim != 2:
        raise InvalidInputError(
            f"`{name}` must be one 2-D map (H, W). Received shape {array.shape}; "
            "reduce the channels first (e.g. attributions.sum(-1)) and pass maps[i] for one image of a batch."
        )
    if not np.all(np.isfinite(array)):
        raise InvalidInputError(f"`{name}` contains NaN or infinite values.")
    return array


def resize_map(heatmap: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of a 2-D map to ``size`` (through TensorFlow, no SciPy)."""
    if tuple(heatmap.shape) == tuple(size):
        return heatmap
    import tensorflow as tf

    resized = tf.image.resize(tf.constant(heatmap[None, ..., None], tf.float32), size, method="bilinear")
    return resized.numpy()[0, ..., 0].astype(np.float64)


def map_norm(heatmap: np.ndarray, signed: bool, clip_percentile: float | None) -> mcolors.Normalize:
    """The colour normalisation of a map.

    Unsigned: from the map's minimum to its `clip_percentile`-th percentile
    (values above saturate; None: the maximum). Signed: symmetric around zero,
    ``[-v, v]`` with ``v`` the `clip_percentile`-th percentile of ``|map|``,
    so zero always sits at the centre of a diverging colour map.
    """
    if clip_percentile is not None and not 0.0 < float(clip_percentile) <= 100.0:
        raise InvalidInputError(
            f"`clip_percentile` must be in (0, 100] or None. Received: {clip_percentile!r}."
        )
    q = 100.0 if clip_percentile is None else float(clip_percentile)
    if signed:
        v = float(np.percentile(np.abs(heatmap), q))
        v = v if v > 0 else 1.0
        return mcolors.Normalize(vmin=-v, vmax=v)
    low = float(heatmap.min())
    high = float(np.percentile(heatmap, q))
    if high <= low:
        high = low + 1.0
    return mcolors.Normalize(vmin=low, vmax=high)


def colorize(heatmap: np.ndarray, norm: mcolors.Normalize, cmap: str | mcolors.Colormap) -> np.ndarray:
    """RGB colours ``(H, W, 3)`` of a map under `norm` and `cmap`."""
    colormap = matplotlib.colormaps[cmap] if isinstance(cmap, str) else cmap
    return colormap(np.clip(norm(heatmap), 0.0, 1.0))[..., :3]


#: Signed maps: the opacity of an attribution at the clip value is ``SIGNED_GAIN * alpha`` (at most 1).
SIGNED_GAIN = 2.0


def blend(image: np.ndarray, heatmap: np.ndarray, *, alpha: float, cmap: Any, signed: bool,
          clip_percentile: float | None) -> tuple[np.ndarray, mcolors.Normalize, Any]:
    """The overlay of a map on an RGB image: ``(1 - a) * background + a * colours``.

    Unsigned maps: ``a = alpha`` everywhere, over the photo.

    Signed maps (Input x Gradient, Guided Backprop...) are mostly near zero with
    a few large values, so a uniform opacity hides them and a linear one makes
    them invisible. They are drawn over the photo in grey (so red and blue
    cannot be confused with the photo's own colours) with
    ``a = min(1, SIGNED_GAIN * alpha) * sqrt(|map| / v)``, ``v`` the
    `clip_percentile`-th percentile of ``|map|`` (the colour scale is ``[-v, v]``):
    zero attributions leave the grey photo, an attribution of a quarter of
    ``v`` is half as opaque as one at ``v``.

    Returns the blended RGB image, the norm and the colour map used.
    """
    if not 0.0 <= float(alpha) <= 1.0:
        raise InvalidInputError(f"`alpha` must be in [0, 1]. Received: {alpha!r}.")
    cmap = cmap or (SIGNED_CMAP if signed else UNSIGNED_CMAP)
    heatmap = resize_map(heatmap, image.shape[:2])
    norm = map_norm(heatmap, signed, clip_percentile)
    colours = colorize(heatmap, norm, cmap)
    if signed:
        grey = image @ np.array([0.299, 0.587, 0.114])
        image = np.repeat(grey[..., None], 3, axis=-1)
        strength = np.sqrt(np.clip(np.abs(heatmap) / norm.vmax, 0.0, 1.0))
        weight = min(1.0, SIGNED_GAIN * float(alpha)) * strength[..., None]
    else:
        weight = float(alpha)
    return (1.0 - weight) * image + weight * colours, norm, cmap


def new_figure(rows: int, cols: int, cell: float = 2.6, extra_height: float = 0.0):
    """A Figure with a ``rows x cols`` array of axes (always 2-D), ticks off."""
    figure = Figure(figsize=(cell * cols, cell * rows + extra_height), layout="constrained")
    axes = np.atleast_2d(figure.subplots(rows, cols, squeeze=False))
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    return figure, axes


def panel(ax: Any = None, cell: float = 4.0):
    """``(figure, ax)``: `ax` and its figure with ticks off, or a new one-panel figure when `ax` is None."""
    if ax is None:
        figure, axes = new_figure(1, 1, cell=cell)
        return figure, axes[0, 0]
    ax.set_xticks([])
    ax.set_yticks([])
    return ax.figure, ax


def short_number(value: float) -> str:
    """A compact tick label: ``0``, ``0.25``, ``12``, ``3.4e-05``, ``1.2e+03`` (at most 2 significant digits)."""
    if value == 0:
        return "0"
    if 1e-2 <= abs(value) < 1e3:
        return f"{value:.2g}"
    mantissa, exponent = f"{value:.1e}".split("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"


def add_colorbar(figure: Figure, ax: Any, norm: mcolors.Normalize, cmap: Any, label: str | None = None) -> None:
    """A colour bar for `norm` and `cmap` next to `ax`, with 2-3 compact tick labels.

    Ticks: the two ends (and 0 for a scale symmetric around it), labelled by
    :func:`short_number`, so a map of magnitude 1e-10 reads ``-1.2e-10, 0,
    1.2e-10`` on the bar itself instead of a ``1e-10`` multiplier above it that
    overlaps the next panel's title.
    """
    import matplotlib.cm as cm

    mappable = cm.ScalarMappable(norm=norm, cmap=cmap)
    bar = figure.colorbar(mappable, ax=ax, fraction=0.046, pad=0.02)
    low, high = float(norm.vmin), float(norm.vmax)
    ticks = [low, 0.0, high] if low < 0.0 < high and abs(low + high) <= 1e-9 * max(abs(low), abs(high)) else [low, high]
    bar.set_ticks(ticks)
    bar.set_ticklabels([short_number(t) for t in ticks])
    bar.ax.tick_params(labelsize=7, length=2, pad=1)
    if label:
        bar.set_label(label)


def check_same_length(name_a: str, a: Sequence, name_b: str, b: Sequence) -> None:
    if len(a) != len(b):
        raise InvalidInputError(
            f"`{name_a}` and `{name_b}` must have the same length. Received {len(a)} and {len(b)}."
        )
