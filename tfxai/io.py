"""Reading photos and naming ImageNet classes (for the command line, the notebooks and the demo).

Images are decoded and resized with TensorFlow (no OpenCV/PIL needed).
"""

from __future__ import annotations

import os
import socket
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
        OSError: the file does not exist or cannot be read.
        InvalidInputError: the file is not a decodable image.
    """
    path = Path(path)
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


_CLASS_INDEX: dict[str, Any] | None = None


def imagenet_class_index() -> dict[str, Any] | None:
    """The Keras ImageNet class index ``{"0": [wnid, name], ...}``, or None when unavailable.

    Looked up in Keras' cache (``$KERAS_HOME/models`` or ``~/.keras/models``),
    then downloaded by Keras (10 s timeout); offline without a cached copy it
    returns None instead of raising.
    """
    global _CLASS_INDEX
    if _CLASS_INDEX is not None:
        return _CLASS_INDEX
    import json

    home = os.environ.get("KERAS_HOME", os.path.join(os.path.expanduser("~"), ".keras"))
    cached = Path(home) / "models" / "imagenet_class_index.json"
    try:
        if cached.is_file():
            _CLASS_INDEX = json.loads(cached.read_text())
        else:
            from keras.applications import imagenet_utils

            previous = socket.getdefaulttimeout()
            socket.setdefaulttimeout(10)
            try:
                imagenet_utils.decode_predictions(np.zeros((1, 1000)), top=1)
            finally:
                socket.setdefaulttimeout(previous)
            _CLASS_INDEX = imagenet_utils.CLASS_INDEX
    except Exception:  # noqa: BLE001 - offline, corrupt cache...: names are optional
        return None
    return _CLASS_INDEX


def class_names(indices: Any, num_classes: int) -> list[str]:
    """Human-readable names of class `indices`: ImageNet names for 1000-class models, else ``class 7``."""
    indices = [int(i) for i in np.asarray(indices).reshape(-1)]
    index = imagenet_class_index() if num_classes == 1000 else None
    if index is None:
        return [f"class {i}" for i in indices]
    return [index[str(i)][1] for i in indices]
