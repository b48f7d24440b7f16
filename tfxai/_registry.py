"""The method registry: every explainer class with a `name` registers itself here.

The command line, the demo, the benchmarks and the contract tests iterate
:data:`METHODS`; adding a method is defining its class (see
:class:`tfxai.explainers.base.Explainer`), nothing else.
"""

from __future__ import annotations

from typing import Any

from tfxai.errors import InvalidInputError

#: ``{name: explainer class}`` in registration (import) order.
METHODS: dict[str, type] = {}


def register(cls: type) -> type:
    """Add an explainer class under ``cls.name`` (a later class with the same name replaces it)."""
    METHODS[cls.name] = cls
    return cls


def _key(text: str) -> str:
    return text.strip().lower().replace("_", "").replace("-", "").replace(" ", "")


def lookup(text: str) -> str:
    """The canonical name of a method given by name, alias or title (case, ``-`` and ``_`` ignored)."""
    key = _key(text)
    for name, cls in METHODS.items():
        if key in {_key(name), _key(cls.title), *(_key(a) for a in cls.aliases)}:
            return name
    raise InvalidInputError(f"Unknown method {text.strip()!r}. Choose from: {', '.join(METHODS)} (or 'all', 'default').")


def parse(spec: str | list[str] | None) -> list[str]:
    """Turn ``"gradcam,tgrad"`` into canonical names.

    ``"default"``/None: every method except the slow ones; ``"all"``: every method.
    """
    if spec is None or spec in ("default", ["default"]):
        return [name for name, cls in METHODS.items() if not cls.slow]
    if spec in ("all", ["all"]):
        return list(METHODS)
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    names: list[str] = []
    for item in items:
        if item.strip():
            name = lookup(item)
            if name not in names:
                names.append(name)
    if not names:
        raise InvalidInputError(f"--methods is empty. Received: {spec!r}. Choose from: {', '.join(METHODS)}.")
    return names


def slow() -> list[str]:
    """Names of the methods left out of the default selection."""
    return [name for name, cls in METHODS.items() if cls.slow]


def build(name: str, model: Any, *, quick: bool = False, layer: Any = None, **overrides: Any) -> Any:
    """The explainer of method `name` for `model` with its command-line settings.

    `layer` is passed to methods that take one (the CAM family); `overrides`
    replace settings (e.g. ``num_channels=`` for Score-CAM).
    """
    cls = METHODS[lookup(name)]
    kwargs = {**cls.quick_settings(quick), **overrides}
    if cls.takes_layer and layer is not None:
        return cls(model, layer, **kwargs)
    return cls(model, **kwargs)
