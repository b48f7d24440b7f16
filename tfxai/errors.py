"""The exceptions tfxai raises.

Every error subclasses both :class:`TfxaiError` and the built-in exception a
Python user would expect (``ValueError`` or ``TypeError``), so ``except
ValueError`` keeps working. Messages say what was received, what was expected
and how to fix it.
"""

from __future__ import annotations


class TfxaiError(Exception):
    """Base class of every error raised by tfxai."""


class InvalidInputError(TfxaiError, ValueError):
    """An argument has the right type but an unusable value (shape, range, NaN...)."""


class InvalidTypeError(TfxaiError, TypeError):
    """An argument has a type tfxai cannot use."""


class LayerNotFoundError(TfxaiError, ValueError):
    """A layer given by name or object is not part of the model."""


class UnsupportedModelError(TfxaiError, ValueError):
    """The model cannot be explained by a method.

    Attributes:
        layers: names of the offending layers, when the problem is layer-specific.
    """

    def __init__(self, message: str, layers: list[str] | tuple[str, ...] = ()):
        super().__init__(message)
        self.layers = list(layers)


class NonFiniteResultError(TfxaiError, ValueError):
    """A computation gave NaN or infinite values (an overflowing noise scale, a NaN baseline...)."""


class InputRangeWarning(UserWarning):
    """Images lie far outside the input range tfxai assumes for the model (legal, but suspicious)."""


class DegenerateMapWarning(UserWarning):
    """A method returned a constant or all-zero map for some images (legal, but it shows nothing).

    The message names the method, the images and the likely cause (a 1x1 CAM
    layer, a zero gradient from dead ReLUs, a saturated softmax or random weights).
    """
