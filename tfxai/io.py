"""Reading photos and naming ImageNet classes (for the command line, the notebooks and the demo).

Images are decoded and resized with TensorFlow (no OpenCV/PIL needed).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import tensorflow as tf

from tfxai import image_ops
from tfxai.errors import InvalidInputError

#: ImageNet convention: resize the shorter side to size / 0.875 (256 for 224), then centre-crop.
CROP_FRACTION = 0.875


def load_image(path: str | os.PathLike, size: int | tuple[int, int] = 224, crop_fraction: float = CROP_FRACTION) -> np.ndarray:
    """Read a JPEG/PNG/BMP/GIF file as float32 RGB pixels in [0, 255], shape ``(size, size, 3)``.

    The shorter side is resized (bilinear, antialiased) to ``size / crop_fraction``
    and the centre ``size x size`` square is cropped (the usual ImageNet
    evaluation transform). Greyscale files are expanded to three channels.

    Raises:
        OSError: the file does not exist or cannot be read (``IsADirectoryError`` for a folder).
        InvalidInputError: the file is not a decodable image.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(
            f"{str(path)!r} is a folder, not an image file; read its images with "
            "`tfxai.streaming.list_images(folder)` and `load_images(...)`, or stream it with `tfxai.streaming.explain_folder`."
        )
    if not path.is_file():
        raise FileNotFoundError(f"image file not found: {str(path)!r}")
    try:
        image = tf.io.decode_image(tf.io.read_file(str(path)), channels=3, expand_animations=False)
    except (tf.errors.InvalidArgumentError, tf.errors.UnknownError) as error:
        raise InvalidInputError(f"cannot decode {str(path)!r} as an image (JPEG, PNG, BMP or GIF): {error.message.splitlines()[0]}") from None
    height, width = (size, size) if isinstance(size, int) else tuple(size)
    image = image_ops.center_crop(image, (height, width), resize_to=max(height, width) / crop_fraction)
    return np.clip(image.numpy(), 0.0, 255.0)


def load_images(paths: Sequence[str | os.PathLike], size: int | tuple[int, int] = 224) -> np.ndarray:
    """:func:`load_image` for several files, stacked to ``(N, size, size, 3)``."""
    return np.stack([load_image(p, size) for p in paths])


def imagenet_class_index() -> dict[str, list[str]]:
    """The Keras ImageNet class index ``{"0": [wnid, name], ...}``, shipped with tfxai.

    Same as :func:`tfxai.data.imagenet_class_index` (kept here for backward
    compatibility); works offline, without ``KERAS_HOME``.
    """
    from tfxai import data  # tfxai.data imports this module

    return data.imagenet_class_index()


def class_names(indices: Any, num_classes: int) -> list[str]:
    """Human-readable names of class `indices`: ImageNet names for 1000-class models, else ``class 7``.

    The ImageNet names come from the class index shipped with tfxai
    (:func:`tfxai.data.imagenet_class_names`), so no download and no
    ``KERAS_HOME`` are needed.

    Returns:
        One string per index, e.g. ``class_names([282, 3], 1000) == ["tiger_cat", "tiger_shark"]``
        and ``class_names([3], 10) == ["class 3"]``.
    """
    indices = [int(i) for i in np.asarray(indices).reshape(-1)]
    if num_classes != 1000:
        return [f"class {i}" for i in indices]
    from tfxai import data  # tfxai.data imports this module

    names = data.imagenet_class_names()
    wrong = [i for i in indices if not 0 <= i < len(names)]
    if wrong:
        raise InvalidInputError(f"ImageNet class indices must be in [0, {len(names) - 1}]; got {wrong[:5]}.")
    return [names[i] for i in indices]
