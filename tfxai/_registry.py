"""Method names of the command line and the demo, mapped to explainer factories.

A method whose class is not part of this installation (``getattr(tfxai, cls)``
is None) is reported as unavailable instead of failing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import keras

from tfxai.errors import InvalidInputError


@dataclass(frozen=True)
class Method:
    """One method: its display title, the tfxai class name, keyword arguments and whether maps are signed."""

    title: str
    class_name: str
    kwargs: Callable[[tuple[float, float], bool], dict] = field(default=lambda input_range, quick: {})
    signed: bool = False


METHODS: dict[str, Method] = {
    "vanilla": Method("Vanilla Gradient", "VanillaGradient"),
    "inputxgradient": Method("Input x Gradient", "InputXGradient", signed=True),
    "smoothgrad": Method(
        "SmoothGrad", "SmoothGrad", lambda r, quick: {"num_samples": 8 if quick else 25, "seed": 0}
    ),
    "ig": Method(
        "Integrated Gradients",
        "IntegratedGradients",
        lambda r, quick: {"num_steps": 16 if quick else 32, "input_range": r, "seed": 0},
    ),
    "gradcam": Method("Grad-CAM", "GradCAM"),
    "gradcam++": Method("Grad-CAM++", "GradCAMPlusPlus"),
    "xgradcam": Method("XGrad-CAM", "XGradCAM"),
    "scorecam": Method("Score-CAM", "ScoreCAM"),
    "eigencam": Method("Eigen-CAM", "EigenCAM"),
    "fullgrad": Method("FullGrad", "FullGrad"),
    "tgrad": Method("T-Grad", "TGrad"),
}

ALIASES = {
    "vanillagradient": "vanilla",
    "saliency": "vanilla",
    "ixg": "inputxgradient",
    "integratedgradients": "ig",
    "gradcamplusplus": "gradcam++",
    "gradcampp": "gradcam++",
    "t-grad": "tgrad",
    "grad-cam": "gradcam",
}


def available(name: str) -> bool:
    """Whether the method's class exists in this installation of tfxai."""
    import tfxai

    return getattr(tfxai, METHODS[name].class_name, None) is not None


#: Left out of the default selection: one forward pass per channel of the layer (2560 passes for
#: two photos on EfficientNet-Lite0); ask for it by name or with ``all``.
SLOW = ("scorecam",)


def parse(spec: str | list[str] | None) -> list[str]:
    """Turn ``"gradcam,tgrad"`` into canonical names.

    ``"default"``/None: every available method except the slow ones (:data:`SLOW`);
    ``"all"``: every available method.
    """
    if spec is None or spec == "default" or spec == ["default"]:
        return [name for name in METHODS if available(name) and name not in SLOW]
    if spec == "all" or spec == ["all"]:
        return [name for name in METHODS if available(name)]
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    names = []
    for item in items:
        key = item.strip().lower().replace("_", "")
        if not key:
            continue
        key = ALIASES.get(key, key)
        if key not in METHODS:
            raise InvalidInputError(
                f"Unknown method {item.strip()!r} in --methods. Choose from: {', '.join(METHODS)} (or 'all')."
            )
        if not available(key):
            raise InvalidInputError(
                f"Method {item.strip()!r} needs tfxai.{METHODS[key].class_name}, which this installation lacks."
            )
        if key not in names:
            names.append(key)
    if not names:
        raise InvalidInputError(f"--methods is empty. Received: {spec!r}. Choose from: {', '.join(METHODS)}.")
    return names


def build(name: str, model: keras.Model, input_range: tuple[float, float], quick: bool = False) -> Any:
    """The explainer of method `name` for `model`."""
    import tfxai

    method = METHODS[name]
    cls = getattr(tfxai, method.class_name)
    return cls(model, **method.kwargs(tuple(input_range), quick))
