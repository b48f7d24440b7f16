"""A static copy of the method registry for the command line's ``--help`` (no TensorFlow import).

``python -m tfxai --help`` must answer in well under 2 s, so it cannot import the
explainers (they import TensorFlow). When the registry is loaded (``import tfxai``
happened), the functions below read it instead, so a method a user defines is
offered at once. This table lists what the registry
(:mod:`tfxai._registry`) holds once :mod:`tfxai` is imported; ``tests/test_cli.py``
checks that the two agree and prints the replacement table when a method is
added, renamed or changes its ``slow``/``signed`` flags.

Each row: ``(name, title, slow, signed)``, in registration order.
"""

from __future__ import annotations

METHODS: tuple[tuple[str, str, bool, bool], ...] = (
    ("vanilla", "Vanilla Gradient", False, False),
    ("inputxgradient", "Input x Gradient", False, True),
    ("smoothgrad", "SmoothGrad", False, False),
    ("ig", "Integrated Gradients", False, False),
    ("gradcam", "Grad-CAM", False, False),
    ("gradcam++", "Grad-CAM++", False, False),
    ("xgradcam", "XGrad-CAM", False, False),
    ("eigencam", "Eigen-CAM", False, False),
    ("scorecam", "Score-CAM", True, False),
    ("fullgrad", "FullGrad", False, False),
    ("tgrad", "T-Grad", False, False),
    ("layercam", "LayerCAM", False, False),
    ("hirescam", "HiResCAM", False, False),
    ("ablationcam", "Ablation-CAM", True, False),
    ("guidedbackprop", "Guided Backprop", False, True),
    ("guidedgradcam", "Guided Grad-CAM", False, True),
    ("squaregrad", "SquareGrad", False, False),
    ("vargrad", "VarGrad", False, False),
    ("rise", "RISE", True, False),
    ("occlusion", "Occlusion", True, True),
    ("lrp", "LRP", False, True),
    ("deeplift", "DeepLIFT", False, True),
    ("expectedgradients", "Expected Gradients", False, False),
    ("blurig", "Blur IG", False, False),
    ("guidedig", "Guided IG", True, False),
)


def rows() -> tuple[tuple[str, str, bool, bool], ...]:
    """The live registry when it is loaded in this process (a method defined by a user shows up), else the table."""
    from tfxai import _registry  # light: the registry module imports no TensorFlow

    if _registry.METHODS:
        return tuple((name, cls.title, bool(cls.slow), bool(cls.signed)) for name, cls in _registry.METHODS.items())
    return METHODS


def names() -> list[str]:
    """Every method name, in registration order."""
    return [row[0] for row in rows()]


def slow() -> list[str]:
    """The methods ``default`` leaves out (``slow = True`` on their classes)."""
    return [row[0] for row in rows() if row[2]]


def default_sentence() -> str:
    """The one sentence the README and ``--help`` both use to say what ``default`` and ``all`` select."""
    left_out = slow()
    return (f"'default' runs every method except the slow {', '.join(left_out)}; 'all' runs all {len(rows())} "
            "methods, with the command line's CPU budgets for the slow ones") if left_out else (
        f"'default' and 'all' run all {len(rows())} methods")


def from_registry() -> tuple[tuple[str, str, bool, bool], ...]:
    """The table as the live registry gives it (imports :mod:`tfxai`, hence TensorFlow)."""
    import tfxai  # noqa: F401 - registers every explainer
    from tfxai import _registry

    return tuple((name, cls.title, bool(cls.slow), bool(cls.signed)) for name, cls in _registry.METHODS.items())


def render(rows: tuple[tuple[str, str, bool, bool], ...]) -> str:
    """The ``METHODS = (...)`` source text of `rows` (to paste here when the registry changes)."""
    body = "".join(f"    {row!r},\n" for row in rows)
    return f"METHODS: tuple[tuple[str, str, bool, bool], ...] = (\n{body})\n"
