"""The figures of the TensorFlow "Integrated gradients" tutorial.

* :func:`ig_summary`: baseline, original, attribution mask, overlay (2 x 2).
* :func:`interpolation_strip`: the images on the path for a few alphas.
* :func:`alpha_curves`: the target probability (and the mean gradient size) against alpha.
* :func:`baseline_comparison`: several baselines and their attribution masks side by side
  (Sturmfels et al., Distill 2020).

Attribution masks are ``sum over channels of |IG|``, as in the tutorial.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from tfxai.errors import InvalidInputError
from tfxai.plot import _core


def attribution_mask(attributions: Any) -> np.ndarray:
    """``sum_c |attributions|``: ``(H, W, C)`` -> ``(H, W)`` (a 2-D input is returned as ``|input|``)."""
    array = _core.to_numpy(attributions).astype(np.float64)
    if array.ndim == 4 and array.shape[0] == 1:
        array = array[0]
    if array.ndim == 3:
        return np.abs(array).sum(axis=-1)
    if array.ndim == 2:
        return np.abs(array)
    raise InvalidInputError(
        f"`attributions` must be (H, W, C) for one image. Received shape {array.shape}."
    )


def ig_summary(
    image: Any,
    baseline: Any,
    attributions: Any,
    *,
    cmap: Any = "inferno",
    overlay_alpha: float = 0.4,
    clip_percentile: float | None = 99.0,
    title: str | None = None,
) -> Figure:
    """The tutorial's ``plot_img_attributions``: a 2 x 2 figure.

    Panels: the baseline, the original image, the attribution mask
    (``sum_c |IG|``), and the mask with the image on top at `overlay_alpha`.

    Args:
        image, baseline: ``(H, W, C)`` images in any displayable range.
        attributions: ``(H, W, C)`` Integrated Gradients of the image.
        cmap: colour map of the mask.
        overlay_alpha: opacity of the image over the mask in the last panel.
        clip_percentile: upper percentile saturating the mask's colours.
        title: figure title (e.g. the class and probability).
    """
    rgb = _core.to_rgb(image)
    base = _core.to_rgb(baseline, "baseline")
    mask = attribution_mask(attributions)
    norm = _core.map_norm(mask, False, clip_percentile)
    figure, axes = _core.new_figure(2, 2, cell=3.2, extra_height=0.4 if title else 0.0)
    axes[0, 0].imshow(base)
    axes[0, 0].set_title("Baseline image")
    axes[0, 1].imshow(rgb)
    axes[0, 1].set_title("Original image")
    axes[1, 0].imshow(mask, cmap=cmap, norm=norm)
    axes[1, 0].set_title("Attribution mask")
    axes[1, 1].imshow(_core.colorize(_core.resize_map(mask, rgb.shape[:2]), norm, cmap))
    axes[1, 1].imshow(rgb, alpha=overlay_alpha)
    axes[1, 1].set_title("Overlay")
    if title:
        figure.suptitle(title)
    return figure


def interpolation_strip(
    path_images: Any, alphas: Sequence[float], *, cell: float = 2.0
) -> Figure:
    """The interpolated images ``x' + alpha (x - x')``, one panel per alpha, titled ``alpha: 0.2``.

    Args:
        path_images: ``(M, H, W, C)`` images, e.g. from
            :func:`tfxai.integrated_gradients.interpolate_images`.
        alphas: the M alphas.
    """
    path = _core.to_numpy(path_images)
    alphas = [float(a) for a in _core.to_numpy(alphas).reshape(-1)]
    if path.ndim != 4:
        raise InvalidInputError(f"`path_images` must be (M, H, W, C). Received shape {path.shape}.")
    _core.check_same_length("alphas", alphas, "path_images", path)
    # One display range for the whole strip, so darkening along the path stays visible.
    if np.issubdtype(path.dtype, np.integer) or path.max() > 1.0 + 1e-6 and path.min() >= 0:
        scaled = path.astype(np.float64) / 255.0
    elif path.min() < 0:
        scaled = (path - path.min()) / max(float(path.max() - path.min()), 1e-12)
    else:
        scaled = path.astype(np.float64)
    figure, axes = _core.new_figure(1, len(alphas), cell=cell)
    for k, alpha in enumerate(alphas):
        axes[0, k].imshow(np.clip(scaled[k], 0.0, 1.0))
        axes[0, k].set_title(f"alpha: {alpha:.1f}")
    return figure


def alpha_curves(
    alphas: Sequence[float],
    probabilities: Sequence[float],
    gradients: Any = None,
    *,
    class_name: str | None = None,
) -> Figure:
    """Target probability against alpha, and (optional) the mean gradient size against alpha.

    The tutorial's "why accumulate gradients" figure: the probability
    saturates early along the path, so the gradients there are small.

    Args:
        alphas: ``(M,)`` interpolation constants.
        probabilities: ``(M,)`` target-class probability on each interpolated image.
        gradients: optional ``(M, H, W, C)`` path gradients; the right panel
            shows ``mean |gradient|`` per alpha, divided by its maximum.
        class_name: used in the y-axis label.
    """
    alphas = _core.to_numpy(alphas).reshape(-1).astype(np.float64)
    probabilities = _core.to_numpy(probabilities).reshape(-1).astype(np.float64)
    _core.check_same_length("probabilities", probabilities, "alphas", alphas)
    cols = 1 if gradients is None else 2
    figure = Figure(figsize=(5.0 * cols, 3.6), layout="constrained")
    axes = figure.subplots(1, cols, squeeze=False)[0]
    axes[0].plot(alphas, probabilities, marker="o", markersize=3)
    axes[0].set_title("Target class predicted probability over alpha")
    axes[0].set_xlabel("alpha")
    axes[0].set_ylabel(f"P({class_name})" if class_name else "model probability")
    axes[0].set_ylim(-0.05, 1.05)
    if gradients is not None:
        grads = _core.to_numpy(gradients).astype(np.float64)
        if grads.shape[0] != alphas.shape[0]:
            raise InvalidInputError(
                f"`gradients` must have one row per alpha ({alphas.shape[0]}). Received shape {grads.shape}."
            )
        size = np.abs(grads).reshape(grads.shape[0], -1).mean(axis=1)
        size = size / size.max() if size.max() > 0 else size
        axes[1].plot(alphas, size, marker="o", markersize=3, color="tab:orange")
        axes[1].set_title("Average pixel gradients (normalised) over alpha")
        axes[1].set_xlabel("alpha")
        axes[1].set_ylabel("mean |gradient| / max")
        axes[1].set_ylim(-0.05, 1.05)
    return figure


def baseline_comparison(
    image: Any,
    baselines: Mapping[str, Any],
    attributions: Mapping[str, Any],
    *,
    cmap: Any = "inferno",
    clip_percentile: float | None = 99.0,
    cell: float = 2.2,
) -> Figure:
    """Alternative baselines side by side: top row the baselines, bottom row their IG masks.

    Args:
        image: the explained image (shown in the first column).
        baselines: ``{name: (H, W, C) baseline}``.
        attributions: ``{name: (H, W, C) IG attributions}`` with the same names.
    """
    if not baselines or set(baselines) != set(attributions):
        raise InvalidInputError(
            "`baselines` and `attributions` must be non-empty dicts with the same names. "
            f"Received {sorted(baselines)} and {sorted(attributions)}."
        )
    names = list(baselines)
    figure, axes = _core.new_figure(2, 1 + len(names), cell=cell)
    axes[0, 0].imshow(_core.to_rgb(image))
    axes[0, 0].set_title("image")
    axes[1, 0].set_axis_off()
    for k, name in enumerate(names, start=1):
        axes[0, k].imshow(_core.to_rgb(baselines[name], f"baselines[{name!r}]"))
        axes[0, k].set_title(f"{name} baseline", fontsize=9)
        mask = attribution_mask(attributions[name])
        axes[1, k].imshow(mask, cmap=cmap, norm=_core.map_norm(mask, False, clip_percentile))
        axes[1, k].set_title(f"IG ({name})", fontsize=9)
    return figure
