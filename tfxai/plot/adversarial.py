"""The FGSM figure: image, sign of the gradient, adversarial image."""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.figure import Figure

from tfxai.plot import _core


def fgsm_triptych(
    image: Any,
    perturbation: Any,
    adversarial: Any,
    *,
    labels: tuple[str, str] = ("", ""),
    confidences: tuple[float, float] | None = None,
    epsilon: float | None = None,
    targeted: bool = False,
    cell: float = 3.2,
) -> Figure:
    """Three panels as in Goodfellow et al.'s panda figure: ``x``, ``sign(grad)``, ``x + eps sign(grad)``.

    Args:
        image: the original image (any displayable range).
        perturbation: the direction of the step ``(H, W, C)``, values in {-1, 0, 1}
            (shown mapped to [0, 1]): ``sign(d J(x, y) / d x)``, or for a
            targeted attack ``-sign(d J(x, t) / d x)``.
        adversarial: the adversarial image, same range as `image`.
        labels: predicted class names of the original and adversarial images.
        confidences: their probabilities (shown as percentages).
        epsilon: the step size, shown in the middle title.
        targeted: titles of a targeted attack (a step down the loss of the
            target class ``t``) instead of an untargeted one.
    """
    rgb = _core.to_rgb(image)
    adv = _core.to_rgb(adversarial, "adversarial")
    # Show image and adversarial on the same scale (to_rgb rescales each by its own range only
    # for negative-valued inputs; for [0, 255] / [0, 1] inputs the scaling is fixed).
    sign = _core.to_numpy(perturbation).astype(np.float64)
    if sign.ndim == 4 and sign.shape[0] == 1:
        sign = sign[0]
    sign_rgb = np.clip(sign * 0.5 + 0.5, 0.0, 1.0)
    if sign_rgb.ndim == 2:
        sign_rgb = np.repeat(sign_rgb[..., None], 3, axis=-1)
    elif sign_rgb.shape[-1] == 1:
        sign_rgb = np.repeat(sign_rgb, 3, axis=-1)
    figure, axes = _core.new_figure(1, 3, cell=cell)

    def caption(k: int) -> str:
        text = labels[k] or ""
        if confidences is not None:
            text = f"{text}\n{100.0 * float(confidences[k]):.1f}% confidence"
        return text

    axes[0, 0].imshow(rgb)
    axes[0, 0].set_title(f"x\n{caption(0)}", fontsize=10)
    axes[0, 1].imshow(sign_rgb)
    middle, right = ("-sign(grad_x J(x, t))", "x - eps sign(grad)") if targeted else ("sign(grad_x J(x, y))", "x + eps sign(grad)")
    axes[0, 1].set_title(middle if epsilon is None else f"{middle}\nx {epsilon:g}", fontsize=10)
    axes[0, 2].imshow(adv)
    axes[0, 2].set_title(f"{right}\n{caption(1)}", fontsize=10)
    return figure
