"""Data shipped with tfxai: the ImageNet class names and a few freely licensed photos.

Everything here is read from files inside the installed package, so it works
offline and without ``KERAS_HOME``::

    from tfxai import data
    data.photo_names()                        # ['camera', 'chelsea', 'coffee', 'grace_hopper', 'rocket']
    images = data.load_photos()               # (5, 224, 224, 3) float32, pixels in [0, 255]
    data.imagenet_class_names()[282]          # 'tiger_cat'

The photos' sources and licences (public domain or CC0) are in
``tfxai/data/photos/SOURCES.md``; the class index is the Keras
``imagenet_class_index.json``.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from tfxai.errors import InvalidInputError
from tfxai.io import load_image

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

__all__ = ["imagenet_class_index", "imagenet_class_names", "photo_names", "photo_path", "load_photo", "load_photos"]

_PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png")


@functools.lru_cache(maxsize=None)
def _class_index() -> tuple[tuple[str, str], ...]:
    """((wnid, name) for classes 0..999), parsed once from the shipped JSON."""
    raw = json.loads(resources.files(__name__).joinpath("imagenet_class_index.json").read_text(encoding="utf-8"))
    return tuple((raw[str(i)][0], raw[str(i)][1]) for i in range(len(raw)))


def imagenet_class_index() -> dict[str, list[str]]:
    """The Keras ImageNet class index, as in ``imagenet_class_index.json``.

    Returns:
        A new dict ``{"0": ["n01440764", "tench"], ..., "999": [wnid, name]}``
        (1000 entries, string keys, WordNet id and readable name), the format
        ``keras.applications.imagenet_utils.decode_predictions`` uses.

    Example::

        tfxai.data.imagenet_class_index()["282"]   # ['n02123159', 'tiger_cat']
    """
    return {str(i): [wnid, name] for i, (wnid, name) in enumerate(_class_index())}


def imagenet_class_names() -> list[str]:
    """The 1000 readable ImageNet class names in Keras class order (the order of the models' outputs).

    Returns:
        A new list of 1000 strings, e.g. index 281 is ``"tabby"``, 282 ``"tiger_cat"``.

    Example::

        names = tfxai.data.imagenet_class_names()
        names[int(probabilities.argmax())]          # e.g. 'espresso'
    """
    return [name for _, name in _class_index()]


def _photos() -> dict[str, Traversable]:
    folder = resources.files(__name__).joinpath("photos")
    return {Path(entry.name).stem: entry for entry in folder.iterdir() if entry.name.lower().endswith(_PHOTO_SUFFIXES)}


def photo_names() -> list[str]:
    """The names of the bundled photos, sorted, without file extension.

    Returns:
        A list such as ``['camera', 'chelsea', 'coffee', 'grace_hopper', 'rocket']``;
        sources and licences are in ``tfxai/data/photos/SOURCES.md``.
    """
    return sorted(_photos())


def photo_path(name: str) -> Path:
    """The file of the bundled photo `name` (a name from :func:`photo_names`).

    Returns:
        A :class:`pathlib.Path` to the JPEG file inside the installed package.

    Raises:
        InvalidInputError: `name` is not a bundled photo (the message lists them).

    Example::

        tfxai.data.photo_path("coffee")   # .../tfxai/data/photos/coffee.jpg
    """
    photos = _photos()
    if not isinstance(name, str) or name not in photos:
        raise InvalidInputError(
            f"no bundled photo named {name!r}; available photos: {', '.join(sorted(photos))} "
            "(see tfxai.data.photo_names()). For your own files use tfxai.io.load_image(path)."
        )
    return Path(str(photos[name]))


def load_photo(name: str, size: int = 224) -> np.ndarray:
    """The bundled photo `name` as model input: float32 RGB pixels in [0, 255], shape ``(size, size, 3)``.

    Uses :func:`tfxai.io.load_image`: the shorter side is resized (antialiased)
    to ``size / 0.875`` (256 for 224) and the centre ``size x size`` square is
    cropped; the greyscale ``camera`` photo is expanded to three channels.

    Raises:
        InvalidInputError: `name` is not a bundled photo (the message lists them).

    Example::

        x = tfxai.data.load_photo("chelsea")              # (224, 224, 3)
        model = tfxai.models.efficientnet_lite0()
        probabilities = model.predict(x[None], verbose=0)  # (1, 1000)
    """
    return load_image(photo_path(name), size)


def load_photos(names: Sequence[str] | None = None, size: int = 224) -> np.ndarray:
    """Several bundled photos stacked as a batch, shape ``(N, size, size, 3)``, float32 in [0, 255].

    Args:
        names: photo names (see :func:`photo_names`); None loads all of them,
            in the order of :func:`photo_names`.
        size: side of the square crop, as in :func:`load_photo`.

    Raises:
        InvalidInputError: a name is not a bundled photo, or `names` is a single string or empty.

    Example::

        images = tfxai.data.load_photos(["coffee", "rocket"])   # (2, 224, 224, 3)
    """
    if isinstance(names, str):
        raise InvalidInputError(f"names must be a list of photo names, got the string {names!r}; use load_photos([{names!r}]) or load_photo({names!r}).")
    names = photo_names() if names is None else list(names)
    if not names:
        raise InvalidInputError(f"names is empty; pass None for every photo or some of {photo_names()}.")
    return np.stack([load_photo(name, size) for name in names])
