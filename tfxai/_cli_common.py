"""Helpers shared by the sub-commands of the command line (models, preprocessing, argument types)."""

from __future__ import annotations

import argparse
import importlib
import os
from pathlib import Path
from typing import Callable

import numpy as np

from tfxai.errors import InvalidInputError

PREPROCESS_MODES = ("none", "unit", "symmetric", "caffe", "torch", "tf")


def quiet_tensorflow() -> None:
    """Keep TensorFlow's start-up logs and retracing warnings out of the user's terminal."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    try:
        import absl.logging

        absl.logging.set_verbosity(absl.logging.ERROR)
    except ImportError:  # pragma: no cover - absl ships with TensorFlow
        pass


# --------------------------------------------------------------------------- models
def load_model(spec: str, weights: str = "imagenet"):
    """Load `spec`: a bundled model name (``efficientnet_lite0``), a ``.keras``/``.h5`` path or a ``keras.applications`` name.

    Returns ``(model, preprocess or None)`` where ``preprocess`` is the
    application's ``preprocess_input`` for application names (bundled models
    take raw pixels in [0, 255]: None).
    """
    import keras

    from tfxai import models as bundled

    path = Path(spec)
    if bundled.is_bundled(spec) and not path.exists():
        return bundled.load(spec), None
    if path.suffix in (".keras", ".h5") or path.exists():
        if not path.is_file():
            raise FileNotFoundError(
                f"model file not found: {spec!r}; or name a bundled model (offline, ImageNet): {', '.join(bundled.names())}"
            )
        import zipfile

        if path.suffix == ".keras" and not zipfile.is_zipfile(path):
            raise InvalidInputError(
                f"cannot load the model file {spec!r}: it exists but is not a .keras archive (a zip file); it may be "
                "corrupted or truncated. Save the model again with `model.save('model.keras')`."
            )
        try:
            return keras.saving.load_model(str(path)), None
        except Exception as error:  # noqa: BLE001 - corrupt zips, unknown layers, wrong formats
            reason = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
            raise InvalidInputError(
                f"cannot load the model file {spec!r}: it is not a readable Keras model ({type(error).__name__}: "
                f"{reason}). Save it with `model.save('model.keras')`."
            ) from None
    factory = getattr(keras.applications, spec, None)
    if factory is None or not callable(factory):
        names = sorted(n for n in dir(keras.applications) if n[:1].isupper())
        raise InvalidInputError(
            f"--model {spec!r} is neither a bundled model ({', '.join(bundled.names())}), a model file nor a "
            f"keras.applications name (e.g. {', '.join(names[:6])}...)."
        )
    module = importlib.import_module(factory.__module__)
    preprocess = getattr(module, "preprocess_input", None)
    weights_arg = None if weights == "none" else weights
    try:
        model = factory(weights=weights_arg)
    except Exception as error:  # noqa: BLE001 - download failures come in many types
        raise OSError(
            f"could not build {spec} with weights={weights!r} ({type(error).__name__}: {str(error).splitlines()[0][:200]}); "
            "offline, pass --weights none (random weights) or --weights PATH, or a saved .keras model"
        ) from None
    return model, preprocess


def preprocess_function(mode: str) -> Callable | None:
    """The pixel transform of ``--preprocess`` (None for ``none``)."""
    if mode == "none":
        return None
    if mode == "unit":
        return lambda x: x / 255.0
    if mode == "symmetric":
        return lambda x: x / 127.5 - 1.0
    from keras.applications import imagenet_utils

    return lambda x: imagenet_utils.preprocess_input(np.array(x, copy=True), mode=mode)


def input_range_of(preprocess: Callable | None) -> tuple[float, float]:
    """The valid input range after `preprocess`: the images of all-0 and all-255 pixels."""
    if preprocess is None:
        return 0.0, 255.0
    low = np.asarray(preprocess(np.zeros((1, 2, 2, 3), np.float32)), np.float64)
    high = np.asarray(preprocess(np.full((1, 2, 2, 3), 255.0, np.float32)), np.float64)
    values = np.concatenate([low.ravel(), high.ravel()])
    return float(values.min()), float(values.max())


def parse_range(text: str) -> tuple[float, float]:
    """argparse type ``LOW,HIGH`` with LOW < HIGH, both finite.

    A negative LOW works as ``--input-range -1,1`` (the command line's ``main``
    joins it to ``--input-range=-1,1`` with :func:`join_negative_values` first).
    """
    try:
        low, high = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LOW,HIGH (e.g. 0,255); received {text!r}") from None
    if not (np.isfinite(low) and np.isfinite(high) and low < high):
        raise argparse.ArgumentTypeError(f"LOW must be smaller than HIGH, both finite; received {text!r}")
    return low, high


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1; received {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1; received {text!r}")
    return value


def writable_folder(path: str | os.PathLike) -> Path:
    """Check, before any work, that folder `path` can be created and written; leaves nothing behind.

    Raises:
        OSError: with the folder named, when it cannot be written.
    """
    folder = Path(path)
    existing = next((p for p in [folder, *folder.parents] if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise NotADirectoryError(f"--out {str(folder)!r}: {str(existing)!r} exists and is not a folder")
    if existing is not None and not os.access(existing, os.W_OK | os.X_OK):
        raise PermissionError(f"--out {str(folder)!r}: the folder {str(existing)!r} is not writable; choose another --out")
    return folder




#: Options whose value may start with "-" (a negative number: ``--input-range -1,1``).
NEGATIVE_VALUE_OPTIONS = ("--input-range",)


def join_negative_values(argv: list[str], options: tuple[str, ...] = NEGATIVE_VALUE_OPTIONS) -> list[str]:
    """Rewrite ``--input-range -1,1`` as ``--input-range=-1,1`` so argparse does not read ``-1,1`` as an option.

    argparse takes a value starting with ``-`` for an option unless it is a
    single negative number; ``-1,1`` is not, so ``--input-range -1,1`` would
    fail with "expected one argument". ``--input-range=-1,1`` always works.

    Example::

        join_negative_values(["explain", "a.jpg", "--input-range", "-1,1"])
        # ['explain', 'a.jpg', '--input-range=-1,1']
    """
    argv = list(argv)
    joined: list[str] = []
    i = 0
    while i < len(argv):
        item = argv[i]
        value = argv[i + 1] if i + 1 < len(argv) else ""
        if item in options and value[:1] == "-" and (value[1:2].isdigit() or value[1:2] == "."):
            joined.append(f"{item}={value}")
            i += 2
            continue
        joined.append(item)
        i += 1
    return joined


def image_files(paths: list[str]) -> list[str]:
    """Check the ``IMAGE...`` arguments of ``explain``: image files, or one folder alone.

    Raises:
        InvalidInputError: a folder given together with other paths.
        FileNotFoundError: an image file that does not exist.
    """
    folders = [str(p) for p in paths if Path(p).is_dir()]
    if folders and len(paths) > 1:
        raise InvalidInputError(
            f"give one folder OR image files; received the folder {folders[0]!r} together with {len(paths) - 1} other "
            f"path(s). Explain the folder alone (`explain {folders[0]} --model ...`) or list image files only."
        )
    missing = [str(p) for p in paths if not Path(p).is_file()]
    if missing:
        raise FileNotFoundError(f"image file not found: {missing[0]!r}" + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
    return [str(p) for p in paths]
