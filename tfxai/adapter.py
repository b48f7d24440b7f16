"""The model adapter: what tfxai knows about a user's model, read once from the model itself.

Every explainer, the decomposition, the metrics and the attacks go through one
:class:`ModelAdapter` per model (``tfxai.adapt(model)``, cached weakly, so it dies
with the model). It knows:

* **the logits**, from the model's *live* variables: a rebuilt graph that
  shares the user's layers and calls the final layer without its activation (a
  view of the same layer object's variables, never a copy of its weights), so
  a model trained or edited after it was first explained is explained with its
  new weights;
* **the output kind**: ``"softmax"`` (fused, ``Softmax`` layer or
  ``Activation("softmax")``, stripped; identity layers and casts after it,
  such as the mixed-precision guide's ``Activation("linear", dtype="float32")``,
  are seen through), ``"binary"`` (one unit: sigmoid or a
  raw logit ``z``; class 1 is explained through ``z``, class 0 through ``-z``,
  probabilities ``sigmoid(+-z)``), ``"sigmoid"`` (several sigmoid units,
  multi-label: each class its own logit) or ``"logits"``. A final layer that
  returns probabilities but cannot be stripped (a ``Lambda``, a custom layer)
  is refused with an error naming it; ``logits_layer=`` points at the layer
  whose output are the logits;
* **the input space**, read from the first layer that changes the input
  (:func:`read_input_range`): ``Rescaling(1/255)`` and
  ``Rescaling(1/127.5, offset=-1)`` take raw pixels in ``[0, 255]``
  (generally: the input interval starting at 0 that the layer maps onto
  ``[0, 1]`` or ``[-1, 1]``, when it ends at 1, 255 or 65535);
  ``Normalization`` hints at the data scale through its mean and variance:
  every mean in ``[0, 1]`` and every standard deviation below 1 means
  ``[0, 1]``, every mean in ``[10, 255]`` means ``[0, 255]``. Integer
  (``uint8``) inputs mean ``[0, 255]``. The user's ``input_range`` always
  wins. A preprocessing layer that does not tell the range with confidence
  (any other scale, a Normalization with mean 0 and variance 1, ``invert=True``)
  is not guessed from: tfxai warns once (:class:`~tfxai.errors.InputRangeWarning`,
  naming the layer and ``input_range=``) and assumes ``(0, 1)``, the default
  for models without preprocessing. Images far outside the range get an
  :class:`~tfxai.errors.InputRangeWarning` naming it. FGSM clipping,
  IG/SmoothGrad baselines, metric substrates and plots take their range from
  here;
* **the input dtype**: integer inputs are explained as float32 images of the
  same values; float16 / mixed-precision models compute in their own dtype and
  tfxai reads their logits and activations in float32.

Example::

    adapter = tfxai.adapt(model, input_range=(-1, 1))   # e.g. MobileNetV2 preprocess_input space
    maps = tfxai.GradCAM(adapter)(images)                # every explainer takes a model or an adapter
"""

from __future__ import annotations

import weakref
import warnings
from typing import Any, Sequence

import keras
import numpy as np
import tensorflow as tf

from tfxai import _runtime, _validation, surgery
from tfxai.errors import InputRangeWarning, InvalidInputError, InvalidTypeError, UnsupportedModelError

KINDS = ("softmax", "binary", "sigmoid", "logits")
RAW_PIXELS = (0.0, 255.0)
ASSUMED_RANGE = (0.0, 1.0)
#: Images more than this fraction of the range outside it are "far outside" (a warning).
RANGE_TOLERANCE = 0.25

_ADAPTERS: "weakref.WeakKeyDictionary[keras.Model, dict]" = weakref.WeakKeyDictionary()
#: Models already warned about an unreadable preprocessing range (once per model, whatever the adapter options).
_RANGE_WARNED: "weakref.WeakSet[keras.Model]" = weakref.WeakSet()


def adapt(
    model: Any,
    *,
    input_range: Sequence[float] | None = None,
    logits_layer: Any = None,
    class_names: Sequence[str] | None = None,
) -> "ModelAdapter":
    """The :class:`ModelAdapter` of `model` (built once per model and options, weakly cached).

    Args:
        model: a Keras image classifier (functional or Sequential, nested
            models allowed), or an adapter (returned as is when no option is given).
        input_range: ``(low, high)``, the valid pixel range in the space the
            model takes; default: read from the model (see the module docstring).
        logits_layer: a layer (name, path or object) whose output are the
            logits, for models whose final probabilities cannot be stripped.
        class_names: names of the classes, so `targets` may be given by name
            (default: the ImageNet names for 1000-class models).
    """
    if isinstance(model, ModelAdapter):
        if input_range is None and logits_layer is None and class_names is None:
            return model
        model = model.model
    model = _validation.check_model(model)
    key = (
        None if input_range is None else _validation.check_range(input_range),
        logits_layer if isinstance(logits_layer, (str, type(None))) else id(logits_layer),
        None if class_names is None else tuple(class_names),
    )
    table = _ADAPTERS.setdefault(model, {})
    if key not in table:
        table[key] = ModelAdapter(model, input_range=key[0], logits_layer=logits_layer, class_names=class_names)
    return table[key]


class ModelAdapter:
    """One user model as tfxai reads it: logits, output kind, input range and dtype.

    Build it with :func:`adapt`. It holds the user's model and a rebuilt graph
    that shares the model's layers and variables; nothing on the model changes.

    Attributes:
        model: the user's model.
        kind: one of :data:`KINDS`.
        num_classes: number of explainable classes (2 for a one-unit binary model).
        input_range: ``(low, high)`` valid pixel range in the model's input space.
        range_source: ``"preprocessing layer"``, ``"integer input"``, ``"given"`` or ``"assumed"``.
        dtype: float dtype of images, maps and logits (float32 for integer or float16 inputs).
        class_names: class names, or None.
    """

    def __init__(self, model: keras.Model, *, input_range=None, logits_layer=None, class_names=None):
        if not surgery.is_graph_model(model):
            raise UnsupportedModelError(
                f"Model {model.name!r} is a subclassed {type(model).__name__}: it has no graph of layers tfxai can "
                "read (to find a convolutional layer or strip a softmax). Rebuild it with the functional API, "
                "e.g. `inputs = keras.Input((H, W, C)); x = inputs; for layer in [...]: x = layer(x); "
                "keras.Model(inputs, x)`, with a final layer that outputs logits or a softmax."
            )
        _validation.check_channels_last(model)
        self._model_ref = weakref.ref(model)
        self.name = model.name
        source_dtype = tf.as_dtype(model.inputs[0].dtype)
        self.input_dtype = source_dtype
        self.dtype = source_dtype if source_dtype in (tf.float32, tf.float64) else tf.float32
        self.image_shape = tuple(model.inputs[0].shape[1:])
        #: the model's graph, read once (:class:`tfxai.surgery.ModelGraph`): final layer, leading preprocessing
        self.graph = surgery.read_graph(model)
        self._final = _final_layer(model, self.graph, logits_layer)
        self.kind = _output_kind(model, self._final, logits_layer)
        self._logits_layer = self._final if logits_layer is not None else None
        #: the layer whose output activation is removed to reach the logits (its output, with `logits_layer=`)
        self.final_layer = self._final
        logits_model = surgery.logits_model(
            model, None if self._logits_layer is not None else self._final, logits_layer=self._logits_layer,
            dtype=self.dtype,
        )
        # Hold no strong reference to the model itself (the adapter cache is keyed weakly by it).
        self._logits_model = None if logits_model is model else logits_model
        units = int(logits_model.outputs[0].shape[-1])
        self.num_classes = 2 if self.kind == "binary" else units
        leading = self.graph.leading()
        self.preprocessing = leading.layer if leading is not None and _is_preprocessing(leading.layer) else None
        read = read_input_range(self.preprocessing) if self.preprocessing is not None else None
        if input_range is not None:
            self.input_range, self.range_source = tuple(input_range), "given"
        elif read is not None:
            self.input_range, self.range_source = read, "preprocessing layer"
        elif source_dtype.is_integer:
            self.input_range, self.range_source = RAW_PIXELS, "integer input"
        else:
            self.input_range, self.range_source = ASSUMED_RANGE, "assumed"
            if self.preprocessing is not None and model not in _RANGE_WARNED:
                _RANGE_WARNED.add(model)
                warnings.warn(_unreadable_range_message(model, self.preprocessing), InputRangeWarning, stacklevel=3)
        if class_names is not None:
            class_names = [str(n) for n in class_names]
            if len(class_names) != self.num_classes:
                raise InvalidInputError(
                    f"`class_names` has {len(class_names)} names but model {self.name!r} has {self.num_classes} "
                    "classes; pass one name per class."
                )
        self._class_names = class_names
        self._exposed: dict = {}
        self._runtimes: dict = {}

    # ------------------------------------------------------------------ model access
    @property
    def logits_layer(self) -> Any:
        """The layer given as ``logits_layer=`` (its output are the logits), or None."""
        return self._logits_layer

    @property
    def model(self) -> keras.Model:
        model = self._model_ref()
        if model is None:  # pragma: no cover - the adapter outlived its model
            raise ReferenceError(f"the model {self.name!r} of this adapter no longer exists")
        return model

    def raw_logits(self, images: tf.Tensor) -> tf.Tensor:
        """The final layer's pre-activation output ``(N, units)`` in :attr:`dtype` (inference mode)."""
        model = self.model if self._logits_model is None else self._logits_model
        return tf.cast(model(images, training=False), self.dtype)

    def class_logits(self, raw: tf.Tensor) -> tf.Tensor:
        """``(N, num_classes)`` logits from raw outputs: ``[-z, z]`` for a binary model, else unchanged."""
        raw = tf.cast(raw, self.dtype)
        return tf.concat([-raw, raw], axis=-1) if self.kind == "binary" else raw

    def logits(self, images: tf.Tensor) -> tf.Tensor:
        """``(N, num_classes)`` class logits of `images` (softmax stripped; binary as ``[-z, z]``)."""
        return self.class_logits(self.raw_logits(images))

    def probabilities(self, logits: tf.Tensor) -> tf.Tensor:
        """Probabilities from class logits: softmax, or sigmoid for binary and multi-label models."""
        if self.kind in ("binary", "sigmoid"):
            return tf.math.sigmoid(logits)
        return tf.nn.softmax(logits, axis=-1)

    def scores(self, logits: tf.Tensor, targets: tf.Tensor, output: str = "logit") -> tf.Tensor:
        """``(N,)`` explained score of each row: the target's logit or probability."""
        values = self.probabilities(logits) if output == "probability" else logits
        return tf.gather(values, tf.cast(targets, tf.int32), axis=1, batch_dims=1)

    def exposed(self, layers: list) -> keras.Model:
        """A model ``images -> [raw logits, *outputs of layers]`` sharing the user's layers (cached)."""
        key = tuple(id(layer) for layer in layers)
        if key not in self._exposed:
            self._exposed[key] = surgery.expose(
                self.model, list(layers), final=None if self._logits_layer is not None else self._final,
                logits_layer=self._logits_layer, dtype=self.dtype,
            )
        return self._exposed[key]

    def runtime(self, batch_size: int) -> "_runtime.Runtime":
        """The shared :class:`~tfxai._runtime.Runtime` of this model for `batch_size` (metrics, attacks)."""
        if batch_size not in self._runtimes:
            self._runtimes[batch_size] = _runtime.Runtime(self, batch_size)
        return self._runtimes[batch_size]

    def find_layer(self, layer: Any = None, rank: int | None = 4) -> surgery.LayerInfo:
        """Resolve a layer of the model (see :func:`tfxai.surgery.find_layer`)."""
        return surgery.find_layer(self.model, layer, rank=rank)

    # ------------------------------------------------------------------ inputs
    def as_images(self, images: Any, name: str = "images") -> tf.Tensor:
        """Validate `images` ``(N, H, W, C)`` and convert them to :attr:`dtype`; warn when far outside the range."""
        images = _validation.as_images(images, self.model, name=name, dtype=self.dtype)
        self.check_range(images, name)
        return images

    def check_range(self, images: tf.Tensor, name: str = "images") -> None:
        """Warn (:class:`~tfxai.errors.InputRangeWarning`) when `images` lie far outside :attr:`input_range`."""
        low, high = self.input_range
        lo, hi = float(tf.reduce_min(images)), float(tf.reduce_max(images))
        margin = RANGE_TOLERANCE * (high - low)
        fix = (
            "Pass images in that range, or give the model's real range once: "
            "`tfxai.adapt(model, input_range=(low, high))`."
        )
        if lo < low - margin or hi > high + margin:
            warnings.warn(
                f"`{name}` span [{lo:.4g}, {hi:.4g}], far outside the input range {self.input_range} of model "
                f"{self.name!r} ({self.range_source}). Baselines, noise, clipping and substrates use that range. {fix}",
                InputRangeWarning,
                stacklevel=4,
            )
        elif self.range_source == "preprocessing layer" and high - low >= 100 and hi - lo > 0 and hi <= 0.02 * (high - low) + low and hi - lo < 0.02 * (high - low):
            warnings.warn(
                f"`{name}` span [{lo:.4g}, {hi:.4g}], but model {self.name!r} starts with a preprocessing layer and "
                f"takes raw pixels in {self.input_range}: were the images scaled twice (e.g. divided by 255)? {fix}",
                InputRangeWarning,
                stacklevel=4,
            )

    def class_index(self, name: str) -> int:
        """The index of the class called `name` (case-insensitive; spaces and underscores alike)."""
        names = self.class_names
        if names is None:
            raise InvalidTypeError(
                f"`targets` were given as class names ({name!r}) but model {self.name!r} has no known class names; "
                "pass integer class indices or `tfxai.adapt(model, class_names=[...])`."
            )
        key = _name_key(name)
        for index, candidate in enumerate(names):
            if _name_key(candidate) == key:
                return index
        import difflib

        close = difflib.get_close_matches(name, names, n=5, cutoff=0.6)
        raise InvalidInputError(
            f"Unknown class name {name!r} for model {self.name!r}."
            + (f" Did you mean {close}?" if close else " Pass a class index or one of the model's class names.")
        )

    @property
    def class_names(self) -> list[str] | None:
        """Class names: the ones given to :func:`adapt`, ImageNet's for 1000 classes, else None."""
        if self._class_names is None and self.num_classes == 1000:
            from tfxai import io

            index = io.imagenet_class_index()
            if index is not None:
                self._class_names = [index[str(i)][1] for i in range(1000)]
        return self._class_names

    def __repr__(self) -> str:
        return (
            f"ModelAdapter(model={self.name!r}, kind={self.kind!r}, num_classes={self.num_classes}, "
            f"input_range={self.input_range} ({self.range_source}), dtype={self.dtype.name})"
        )


def _name_key(name: str) -> str:
    return str(name).strip().lower().replace(" ", "_").replace("-", "_")


# ---------------------------------------------------------------------- reading the model
def _final_layer(model: keras.Model, graph: surgery.ModelGraph, logits_layer: Any) -> Any:
    """The layer whose activation is the model's output activation (identity layers and casts after it skipped)."""
    if logits_layer is not None:
        return surgery.find_layer(model, logits_layer, rank=None).layer
    return graph.before_identities(graph.final()).layer


#: Final layers whose output is linear in their (known) activation's input.
_KNOWN_FINAL = (keras.layers.Dense, keras.layers.EinsumDense, keras.layers.Activation, keras.layers.Softmax,
                keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D)


def _output_kind(model: keras.Model, final: Any, logits_layer: Any) -> str:
    units = model.outputs[0].shape[-1] if logits_layer is None else None
    if logits_layer is not None:
        return "logits"
    activation = surgery.activation_kind(final) if isinstance(final, _KNOWN_FINAL) else None
    if activation == "softmax":
        if units == 1:
            raise UnsupportedModelError(
                f"Model {model.name!r} ends in a softmax over one unit (layer {final.name!r}): its output is always 1 "
                "and has no gradient. A binary classifier needs `Dense(1, activation='sigmoid')` or `Dense(2, "
                "activation='softmax')`."
            )
        return "softmax"
    if activation == "sigmoid":
        return "binary" if units == 1 else "sigmoid"
    if activation == "linear":
        return "binary" if units == 1 else "logits"
    # An unknown final layer (Lambda, custom layer, other activation): does it output probabilities?
    if _looks_like_probabilities(model):
        raise UnsupportedModelError(
            f"The final layer {final.name!r} ({type(final).__name__}) of model {model.name!r} outputs what look like "
            "probabilities (non-negative rows summing to 1), and tfxai cannot remove it to reach the logits. "
            "Point at the layer whose output are the logits: `tfxai.adapt(model, logits_layer='name')`, then pass "
            "the adapter to explainers; or end the model with `Dense(K, activation='softmax')`.",
            layers=[final.name],
        )
    raise UnsupportedModelError(
        f"The final layer {final.name!r} ({type(final).__name__}"
        + (f", activation {activation!r}" if activation else "")
        + f") of model {model.name!r} is not one tfxai can read as logits, softmax or sigmoid, so the explained "
        "score would be a guess. Point at the logits: `tfxai.adapt(model, logits_layer='name')`.",
        layers=[final.name],
    )


def _looks_like_probabilities(model: keras.Model) -> bool:
    shape = [2] + [s if s is not None else 64 for s in model.inputs[0].shape[1:]]
    dtype = tf.as_dtype(model.inputs[0].dtype)
    probe = tf.cast(tf.random.stateless_uniform(shape, [1, 2], 0, 255 if dtype.is_integer else 1), dtype)
    try:
        out = np.asarray(model(probe, training=False), np.float64)
    except Exception:  # noqa: BLE001 - cannot probe: treat as unknown
        return False
    return bool(out.shape[-1] > 1 and np.all(out >= -1e-6) and np.allclose(out.sum(-1), 1.0, atol=1e-3))


def _is_preprocessing(layer: Any) -> bool:
    return isinstance(layer, (keras.layers.Rescaling, keras.layers.Normalization))


#: Input ranges a Rescaling may be read as: pixels scaled by 1, 255 (8 bits) or 65535 (16 bits).
_PIXEL_SCALES = (1.0, 255.0, 65535.0)
#: How far (a fraction of the scale) the interval's ends may be from 0 and the scale: one 8-bit level,
#: so ``Rescaling(1/128, offset=-127/128)`` (0 -> -127/128, 255 -> 1) reads as ``[0, 255]``.
_RANGE_SLACK = 0.005


def _values(x: Any) -> np.ndarray:
    return np.atleast_1d(np.asarray(keras.ops.convert_to_numpy(x), np.float64)).reshape(-1)


def read_input_range(layer: Any) -> tuple | None:
    """The pixel range ``(low, high)`` a leading ``Rescaling``/``Normalization`` layer expects, or None.

    * ``Rescaling(scale, offset)`` (``y = scale * x + offset``): the input
      interval starting at 0 that the layer maps onto ``[0, 1]`` (offset 0) or
      ``[-1, 1]`` (offset -1), read when it is ``[0, p]`` for ``p`` = 1, 255
      or 65535 (ends within half a percent of ``p``) and the same for every
      channel: ``Rescaling(1/255)``, ``Rescaling(1/127.5, offset=-1)`` and
      ``Rescaling(1/128, offset=-127/128)`` give ``(0, 255)``,
      ``Rescaling(2, offset=-1)`` gives ``(0, 1)``.
    * ``Normalization(mean, variance)``: its statistics hint at the data
      scale: every mean in ``[0, 1]`` with every standard deviation below 1
      gives ``(0, 1)``; every mean in ``[10, 255]`` gives ``(0, 255)``.
    * anything else (other scales, a mean of 0 and variance 1, mixed
      channels, ``invert=True``): None, not a guess.

    Example::

        read_input_range(keras.layers.Normalization(mean=0.5, variance=0.25))   # (0.0, 1.0)
    """
    if isinstance(layer, keras.layers.Rescaling):
        scale, offset = _values(layer.scale), _values(layer.offset)
        scale, offset = np.broadcast_arrays(scale, offset)
        if np.any(scale <= 0) or not np.all(np.isfinite(scale)) or not np.all(np.isfinite(offset)):
            return None
        highs = set()
        for s, o in zip(scale, offset):
            candidates = [(-o / s, (1 - o) / s), ((-1 - o) / s, (1 - o) / s)]  # onto [0, 1], onto [-1, 1]
            pixel = {p for low, high in candidates for p in _PIXEL_SCALES
                     if abs(low) <= _RANGE_SLACK * p and abs(high - p) <= _RANGE_SLACK * p}
            if len(pixel) != 1:
                return None
            highs.add(pixel.pop())
        return (0.0, highs.pop()) if len(highs) == 1 else None
    if isinstance(layer, keras.layers.Normalization):
        if getattr(layer, "invert", False) or getattr(layer, "mean", None) is None:
            return None
        mean, variance = _values(layer.mean), _values(layer.variance)
        if not np.all(np.isfinite(mean)) or not np.all(np.isfinite(variance)) or np.any(variance <= 0):
            return None
        std = np.sqrt(variance)
        if np.all((mean >= 0) & (mean <= 1)) and np.all(std < 1):
            return (0.0, 1.0)
        if np.all((mean >= 10) & (mean <= 255)):
            return RAW_PIXELS
    return None


def _unreadable_range_message(model: keras.Model, layer: Any) -> str:
    if isinstance(layer, keras.layers.Rescaling):
        detail = f"scale={layer.scale!r}, offset={layer.offset!r}"
    else:
        detail = (
            f"mean={np.round(_values(layer.mean), 4).tolist() if getattr(layer, 'mean', None) is not None else None}, "
            f"variance={np.round(_values(layer.variance), 4).tolist() if getattr(layer, 'variance', None) is not None else None}"
        )
    return (
        f"Model {model.name!r} starts with {type(layer).__name__} layer {layer.name!r} ({detail}), which does not tell "
        f"the range of the pixels it expects. tfxai assumes {ASSUMED_RANGE} (baselines, noise, clipping and "
        "substrates use it). Give the real range once: `tfxai.adapt(model, input_range=(0, 255))` (or (0, 1), ...), "
        "then pass the adapter to explainers and metrics."
    )
