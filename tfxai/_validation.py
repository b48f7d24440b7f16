"""Input validation shared by every public entry point (one place for it)."""

from __future__ import annotations

from typing import Any, Sequence

import keras
import numpy as np
import tensorflow as tf

from tfxai.errors import InvalidInputError, InvalidTypeError, UnsupportedModelError


def _describe(value: Any) -> str:
    shape = getattr(value, "shape", None)
    dtype = getattr(value, "dtype", None)
    if shape is not None:
        return f"{type(value).__name__} of shape {tuple(shape)} and dtype {dtype}"
    text = repr(value)
    return text if len(text) < 80 else text[:77] + "..."


def check_model(model: Any) -> keras.Model:
    """Check that `model` is a built, single-input Keras image classifier."""
    if not isinstance(model, keras.Model):
        raise InvalidTypeError(
            "`model` must be a keras.Model (Sequential, functional or a subclass). "
            f"Received: model={_describe(model)}."
        )
    try:
        inputs = model.inputs
    except (AttributeError, ValueError):
        inputs = None
    if not inputs:
        raise UnsupportedModelError(
            f"Model {model.name!r} ({type(model).__name__}) has no symbolic inputs: it is a subclassed model, or a "
            "Sequential model without an input shape. tfxai reads a model's graph of layers, which only functional "
            "and Sequential models have. Start a Sequential model with `keras.Input(shape=(H, W, C))`; rebuild a "
            "subclassed model with the functional API (`inputs = keras.Input((H, W, C))`, call its layers in "
            "order, `keras.Model(inputs, outputs)`)."
        )
    if len(inputs) != 1:
        raise UnsupportedModelError(
            f"tfxai explains single-input image models; model {model.name!r} has "
            f"{len(inputs)} inputs. Wrap it in a model that takes one image tensor."
        )
    if len(inputs[0].shape) != 4:
        raise UnsupportedModelError(
            f"tfxai explains image models with inputs of shape (N, H, W, C); model "
            f"{model.name!r} takes inputs of shape {tuple(inputs[0].shape)}."
        )
    try:
        output = model.output
    except (AttributeError, ValueError):  # a Sequential model exposes `outputs` only
        output = None
    if isinstance(output, dict):
        raise UnsupportedModelError(
            f"Model {model.name!r} returns a dict of outputs {sorted(output)}; tfxai explains one (N, classes) "
            "output. Explain one of them: `keras.Model(model.inputs, model.output[KEY])`."
        )
    if len(model.outputs) != 1 or len(model.outputs[0].shape) != 2:
        shapes = [tuple(o.shape) for o in model.outputs]
        raise UnsupportedModelError(
            f"tfxai explains classifiers with one output of shape (N, num_classes); "
            f"model {model.name!r} has outputs of shapes {shapes}. Explain one: "
            "`keras.Model(model.inputs, model.outputs[i])`."
        )
    if model.outputs[0].shape[-1] is None:
        raise UnsupportedModelError(f"Model {model.name!r} has an unknown number of output classes.")
    return model


def as_images(images: Any, model: keras.Model | None = None, name: str = "images", dtype: Any = None) -> tf.Tensor:
    """Convert `images` to a float tensor of shape (N, H, W, C) and check it.

    The dtype is `dtype`, else the model's input dtype (float32 for most
    models, float64 for models built under `keras.config.set_floatx("float64")`).
    Integer pixels (e.g. uint8) are converted; booleans, strings, datasets and generators
    are refused (with how to take a batch from them). NaN and
    infinite values, a missing batch axis, an empty batch, a channels-first
    layout and spatial sizes the model cannot take raise `InvalidInputError`.
    """
    if dtype is None:
        dtype = model.inputs[0].dtype if model is not None else "float32"
    dtype = tf.as_dtype(dtype)
    not_an_array = _not_an_array(images, name)
    if not_an_array is not None:
        raise InvalidTypeError(not_an_array)
    if isinstance(images, (tf.Tensor, tf.Variable)):
        source_dtype = images.dtype
    else:
        try:
            array = np.asarray(images)
        except Exception as exc:  # ragged lists and the like
            raise InvalidTypeError(
                f"`{name}` must be an array of shape (N, H, W, C). Could not convert "
                f"{_describe(images)}: {exc}"
            ) from None
        source_dtype = tf.as_dtype(array.dtype) if array.dtype.kind in "biufc" else None
        if source_dtype is None:
            raise InvalidTypeError(
                f"`{name}` must hold numbers; received an array of dtype {array.dtype}. "
                "Pass float pixel values in the model's input space."
            )
        images = array
    if source_dtype == tf.bool or source_dtype.is_complex or not (
        source_dtype.is_floating or source_dtype.is_integer
    ):
        raise InvalidTypeError(
            f"`{name}` must be a float or integer array; received dtype {source_dtype.name}. "
            "Convert it, e.g. `images.astype('float32')`."
        )
    images = tf.cast(tf.convert_to_tensor(images), dtype)
    shape = tuple(images.shape)
    if len(shape) == 3:
        raise InvalidInputError(
            f"`{name}` must be a batch of shape (N, H, W, C); received one image of shape "
            f"{shape}. Add a batch axis: `images[None]` or `np.expand_dims(image, 0)`."
        )
    if len(shape) != 4:
        raise InvalidInputError(
            f"`{name}` must have shape (N, H, W, C); received shape {shape}."
        )
    if shape[0] == 0:
        raise InvalidInputError(f"`{name}` is an empty batch (shape {shape}); pass at least one image.")
    if model is not None:
        expected = tuple(model.inputs[0].shape[1:])
        if not all(e is None or e == s for e, s in zip(expected, shape[1:])):
            hint = ""
            if expected[-1] is not None and shape[1] == expected[-1] and shape[-1] != expected[-1]:
                hint = (
                    " It looks channels-first; tfxai uses channels-last: "
                    "`np.transpose(images, (0, 2, 3, 1))`."
                )
            else:
                hint = " Resize the images to the model's input size."
            raise InvalidInputError(
                f"`{name}` has shape {shape} but model {model.name!r} expects "
                f"(N, {', '.join(str(e) for e in expected)}).{hint}"
            )
    if not bool(tf.reduce_all(tf.math.is_finite(images))):
        raise InvalidInputError(
            f"`{name}` contains NaN or infinite values; clean the input before explaining it."
        )
    return images


#: The largest count (steps, samples, masks, batch sizes): row indices inside the graph are int32.
MAX_COUNT = 2**31 - 1


def check_positive_int(value: Any, name: str, minimum: int = 1, maximum: int | None = MAX_COUNT) -> int:
    """Return `value` as an int if it is an integer >= `minimum` (and <= `maximum`, 2**31 - 1 by default)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise InvalidTypeError(f"`{name}` must be an integer >= {minimum}. Received: {name}={value!r}.")
    if value < minimum:
        raise InvalidInputError(f"`{name}` must be an integer >= {minimum}. Received: {name}={value!r}.")
    if maximum is not None and value > maximum:
        raise InvalidInputError(
            f"`{name}` is {int(value):,}, above the limit of {maximum:,} (2**31 - 1): counts index rows with 32-bit "
            f"integers, and a job that size would run for hours. Use a smaller {name}."
        )
    return int(value)


def check_non_negative_float(value: Any, name: str) -> float:
    """Return `value` as a float if it is a finite number >= 0."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
        raise InvalidTypeError(f"`{name}` must be a number >= 0. Received: {name}={value!r}.")
    if not np.isfinite(value) or value < 0:
        raise InvalidInputError(f"`{name}` must be a finite number >= 0. Received: {name}={value!r}.")
    return float(value)


def check_choice(value: Any, name: str, choices: Sequence[str]) -> str:
    """Return `value` if it is one of `choices` (strings)."""
    if value not in choices:
        raise InvalidInputError(
            f"`{name}` must be one of {', '.join(repr(c) for c in choices)}. Received: {name}={value!r}."
        )
    return value


def check_seed(seed: Any) -> int | None:
    """Accept None or a non-negative integer seed."""
    if seed is None:
        return None
    return check_positive_int(seed, "seed", minimum=0, maximum=None)


def check_range(value_range: Any, name: str = "input_range") -> tuple[float, float]:
    """Check a (low, high) pair of finite numbers with low < high."""
    try:
        low, high = (float(v) for v in value_range)
    except (TypeError, ValueError):
        raise InvalidTypeError(
            f"`{name}` must be a pair (low, high) of numbers. Received: {name}={value_range!r}."
        ) from None
    if not (np.isfinite(low) and np.isfinite(high) and low < high):
        raise InvalidInputError(
            f"`{name}` must satisfy low < high, both finite. Received: {name}={value_range!r}."
        )
    return low, high


# --------------------------------------------------------------------------- edges (issue 16)
def _layers_of(model: Any) -> list:
    """Every layer of `model`, nested models entered (their layers, then the model itself)."""
    found = []
    for layer in getattr(model, "layers", []):
        if isinstance(layer, keras.Model):
            found.extend(_layers_of(layer))
        found.append(layer)
    return found


def check_channels_last(model: keras.Model) -> keras.Model:
    """Refuse a model with channels-first image layers (``data_format="channels_first"``).

    tfxai reads images, maps and convolutional activations as ``(N, H, W, C)``.
    A channels-first model takes ``(N, C, H, W)``: its maps would come out with
    the channels as rows (e.g. ``(N, 3, 32)`` for a ``(3, 32, 32)`` input) and
    its CAM activations with the channels as rows too, plausible but wrong. The
    decision is read from the layers' own ``data_format`` (convolution,
    pooling, padding, cropping, up-sampling), never guessed from the input shape.

    Example::

        keras.config.set_image_data_format("channels_last")   # before building the model
        model = build_model()                                  # a (H, W, C) input
        model.set_weights(channels_first_model.get_weights())  # conv kernels have the same layout

    Raises:
        UnsupportedModelError: naming the channels-first layers (attribute ``layers``).
    """
    offending = [
        layer.name for layer in _layers_of(model)
        if getattr(layer, "data_format", None) == "channels_first" and not isinstance(layer, keras.layers.Flatten)
    ]
    if offending:
        shown = ", ".join(repr(n) for n in offending[:5]) + (f" and {len(offending) - 5} more" if len(offending) > 5 else "")
        raise UnsupportedModelError(
            f"Model {model.name!r} is channels-first (input {tuple(model.inputs[0].shape)}; layers with "
            f"data_format='channels_first': {shown}); tfxai explains channels-last models, whose images, maps and "
            "activations are (N, H, W, C). Rebuild it channels-last: call "
            "`keras.config.set_image_data_format('channels_last')` (or pass data_format='channels_last' to each "
            "layer) before building the same architecture with a (H, W, C) input, then "
            "`new_model.set_weights(model.get_weights())` (convolution kernels have the same layout in both "
            "formats; a Dense layer after Flatten needs its rows permuted), and pass images as "
            "`np.transpose(images, (0, 2, 3, 1))`.",
            layers=offending,
        )
    return model


def _not_an_array(images: Any, name: str) -> str | None:
    """What `images` is when it is a dataset, a generator or an iterator (not an array), else None."""
    import collections.abc
    import types

    if isinstance(images, tf.data.Dataset):
        kind = "a tf.data.Dataset"
    elif isinstance(images, types.GeneratorType):
        kind = "a generator"
    elif isinstance(images, getattr(keras.utils, "PyDataset", ())) or isinstance(images, getattr(keras.utils, "Sequence", ())):
        kind = f"a keras.utils.PyDataset ({type(images).__name__})"
    elif isinstance(images, collections.abc.Iterator) and not hasattr(images, "shape"):
        kind = f"an iterator ({type(images).__name__})"
    else:
        return None
    return (
        f"`{name}` must be an array of shape (N, H, W, C); received {kind}. Take one batch with "
        "`batch = next(iter(ds))` (its images, if it yields (images, labels) pairs), or `np.stack(list(generator))` "
        "for a generator of images; to go through a "
        "whole dataset or folder, use `tfxai.evaluation.evaluate` or `tfxai.streaming.explain_folder`."
    )
