"""Model surgery: read and rebuild Keras graphs without touching the user's model.

This is the one place where tfxai walks or replays a Keras functional graph.

* :func:`iter_layers` lists the layers in execution order, nested models
  flattened (an application used as a backbone, two levels deep, ...).
* :func:`find_layer` resolves a layer given by name, path, object or ``None``.
* :func:`replay` runs a model's graph on new inputs, calling a hook for every
  leaf layer, so callers can record tensors or substitute layers.
* :func:`logits_model` returns a model that outputs logits (the final layer
  called without its activation, on the same variables).
* :func:`expose` returns a model that outputs the logits and chosen
  intermediate tensors in one forward pass.

Rebuilt models share the user's layers and variables: no weight is ever
copied, so a model trained after it was first explained is explained with its
new weights. A layer whose activation must be removed is called through a
:func:`linear_view` of it (same variables). Nothing on the user's model
changes: weights, configs and activations are left as they were.
"""

from __future__ import annotations

import difflib
from typing import Any, Callable, Iterator, NamedTuple

import keras
import tensorflow as tf

from tfxai.errors import InvalidTypeError, LayerNotFoundError, UnsupportedModelError

CallFn = Callable[..., Any]


class LayerInfo(NamedTuple):
    """A layer of a (possibly nested) model, as met in execution order."""

    layer: keras.layers.Layer
    path: str  # "outer_model/inner_model/layer_name" below the top-level model
    output_shape: tuple


def _graph(model: Any) -> Any:
    """Return the functional graph behind a Sequential/functional model, else None."""
    if isinstance(model, keras.Sequential):
        graph = getattr(model, "_functional", None)
        if graph is None:
            raise UnsupportedModelError(
                f"Sequential model {model.name!r} has no input shape yet. Start it with "
                "`keras.Input(shape=...)` or call `model.build((None, H, W, C))`."
            )
        return graph
    if isinstance(model, keras.Model) and hasattr(model, "_nodes_by_depth") and hasattr(model, "_run_through_graph"):
        return model
    return None


def is_graph_model(model: Any) -> bool:
    """True for models tfxai can rebuild: functional and Sequential models."""
    try:
        return _graph(model) is not None
    except UnsupportedModelError:
        return False


def _nodes_in_order(graph: Any) -> Iterator[Any]:
    for depth in sorted(graph._nodes_by_depth, reverse=True):
        for node in graph._nodes_by_depth[depth]:
            if node.operation is not None and not node.is_input:
                yield node


def iter_layers(model: keras.Model, prefix: str = "") -> Iterator[LayerInfo]:
    """Yield every layer in execution order; a nested model yields its layers, then itself."""
    graph = _graph(model)
    for node in _nodes_in_order(graph):
        op = node.operation
        path = f"{prefix}{op.name}"
        if isinstance(op, keras.Model) and is_graph_model(op):
            yield from iter_layers(op, prefix=path + "/")
        shape = tuple(node.outputs[0].shape) if node.outputs else ()
        yield LayerInfo(op, path, shape)


def find_layer(model: keras.Model, layer: Any = None, rank: int | None = 4) -> LayerInfo:
    """Resolve `layer` in `model` (nested models included).

    Args:
        model: a functional or Sequential model.
        layer: ``None`` (for ``rank=4``, the CAM layer of :func:`default_cam_layer`; otherwise the
            last layer whose output has rank `rank`), a layer name, a path ``"backbone/block5_conv3"``,
            or a ``keras.layers.Layer``.
        rank: the output rank a default layer must have (4 for conv maps).

    Raises:
        LayerNotFoundError: unknown name or object, with the candidates listed.
    """
    infos = list(iter_layers(model))
    if layer is None and rank == 4:
        return default_cam_layer(model, infos)
    if layer is None:
        found = [i for i in infos if len(i.output_shape) == rank and not isinstance(i.layer, keras.layers.InputLayer)]
        if not found:
            raise LayerNotFoundError(
                f"Model {model.name!r} has no layer with a {rank}-D output to explain; "
                "pass `layer=` explicitly."
            )
        return found[-1]
    if isinstance(layer, keras.layers.Layer):
        for info in reversed(infos):
            if info.layer is layer:
                return info
        raise LayerNotFoundError(
            f"Layer {layer.name!r} (a {type(layer).__name__}) is not part of model {model.name!r}. "
            "Pass a layer of this model (e.g. `model.get_layer(name)`) or its name."
        )
    if not isinstance(layer, str):
        raise InvalidTypeError(
            f"`layer` must be None, a layer name or a keras.layers.Layer. Received: layer={layer!r}."
        )
    matches = [i for i in infos if i.path == layer or i.layer.name == layer]
    paths = {i.path for i in matches}
    if len(paths) == 1:
        return matches[-1]
    if len(paths) > 1:
        raise LayerNotFoundError(
            f"Layer name {layer!r} is ambiguous in model {model.name!r}; use a path: {sorted(paths)}."
        )
    candidates = [i.path for i in infos if len(i.output_shape) == (rank or len(i.output_shape))]
    names = {i.layer.name: i.path for i in infos}
    close = [names[n] for n in difflib.get_close_matches(layer, list(names), n=5, cutoff=0.6)]
    shown = candidates[-12:]
    raise LayerNotFoundError(
        f"No layer named {layer!r} in model {model.name!r}."
        + (f" Did you mean {close}?" if close else "")
        + f" Layers with {rank}-D outputs ({len(candidates)}, last ones shown): {shown}."
    )


def _default_call(layer: Any, *args: Any, _path: str = "", **kwargs: Any) -> Any:
    return layer(*args, **kwargs)


def replay(model: keras.Model, inputs: Any, call_fn: CallFn = _default_call, prefix: str = "") -> Any:
    """Run `model`'s graph on `inputs`, calling ``call_fn(layer, *args, path=..., **kwargs)``.

    Nested functional/Sequential models are entered, so `call_fn` sees every
    leaf layer; it must return the layer's outputs (usually ``layer(*args,
    **kwargs)``), which lets callers record or substitute tensors. With
    KerasTensors as `inputs` this builds a new graph.
    """
    graph = _graph(model)

    def dispatch(op: Any, *args: Any, **kwargs: Any) -> Any:
        path = f"{prefix}{op.name}"
        if isinstance(op, keras.Model) and is_graph_model(op):
            kwargs.pop("training", None)
            inner = args[0] if len(args) == 1 else list(args)
            outputs = replay(op, inner, call_fn, prefix=path + "/")
            hook = getattr(call_fn, "after_model", None)
            return hook(op, outputs, path) if hook else outputs
        return call_fn(op, *args, _path=path, **kwargs)

    return graph._run_through_graph(inputs, operation_fn=lambda op: op, call_fn=dispatch)


def new_input(model: keras.Model, dtype: Any = None) -> keras.KerasTensor:
    """A fresh ``keras.Input`` like `model`'s (shape; `dtype` or the model's), to replay its graph on."""
    ref = model.inputs[0]
    return keras.Input(batch_shape=tuple(ref.shape), dtype=dtype or ref.dtype)


def final_layer(model: keras.Model) -> keras.layers.Layer:
    """The leaf layer that produces the model's output (nested models entered)."""
    leaves = [i for i in iter_layers(model) if not is_graph_model(i.layer)]
    return leaves[-1].layer


def linear_view(layer: keras.layers.Layer) -> keras.layers.Layer:
    """`layer` called without its activation, on the **same** variables (no copy of the weights).

    A new object of the layer's class sharing the layer's state (its kernel and
    bias variables included) with a linear activation. The user's layer is not
    modified; training or editing it changes the view too. Used to expose a
    pre-activation (the logits before a fused softmax, ``z`` before a fused
    ReLU6 or swish).
    """
    view = object.__new__(type(layer))
    view.__dict__.update(layer.__dict__)
    object.__setattr__(view, "activation", keras.activations.linear)
    object.__setattr__(view, "_inbound_nodes", [])  # the view's graph nodes are its own
    object.__setattr__(view, "_outbound_nodes", [])
    return view


def _strip_call(layer_to_strip: Any) -> CallFn:
    """A replay hook that calls `layer_to_strip` without its activation (live variables)."""
    view: dict[str, Any] = {}

    def call(layer: Any, *args: Any, _path: str = "", **kwargs: Any) -> Any:
        if layer is not layer_to_strip:
            return layer(*args, **kwargs)
        if isinstance(layer, (keras.layers.Softmax, keras.layers.Activation)):
            return args[0]
        if "layer" not in view:
            view["layer"] = linear_view(layer)
        return view["layer"](*args, **kwargs)

    return call


def _strips(layer: Any) -> bool:
    """Whether `layer` has an activation to remove (anything but linear)."""
    if isinstance(layer, keras.layers.Softmax):
        return True
    if isinstance(layer, keras.layers.Activation):
        return True
    activation = getattr(layer, "activation", None)
    return activation is not None and activation is not keras.activations.linear and getattr(
        activation, "__name__", "") != "linear"


def logits_model(model: keras.Model, final: Any = None, *, logits_layer: Any = None, dtype: Any = None) -> keras.Model:
    """A model ``images -> logits`` sharing `model`'s layers and variables.

    `final` (default: the model's final leaf layer) is called without its
    activation (:func:`linear_view`), what the lecture does with
    ``model.layers[-1].activation = None`` but without touching the user's
    model. With `logits_layer`, that layer's output is returned instead. The
    input takes `dtype` (default: the model's). The rebuilt graph reads the
    live variables, so it follows training; build it once per model
    (:func:`tfxai.adapt` caches it).
    """
    final = final_layer(model) if final is None and logits_layer is None else final
    same_dtype = dtype is None or tf.as_dtype(dtype) == tf.as_dtype(model.inputs[0].dtype)
    if logits_layer is None and not _strips(final) and same_dtype:
        return model
    if logits_layer is not None:
        return expose(model, [], logits_layer=logits_layer, dtype=dtype)
    inputs = new_input(model, dtype)
    outputs = replay(model, inputs, _strip_call(final))
    return keras.Model(inputs, outputs, name=f"{model.name}_logits")


class _Recorder:
    """A replay hook that records the outputs of chosen layers (by object)."""

    def __init__(self, wanted: list[Any], strip: Any | None):
        self.wanted = wanted
        self.recorded: dict[int, Any] = {}
        self._call = _strip_call(strip) if strip is not None else _default_call

    def _record(self, layer: Any, outputs: Any) -> Any:
        if any(layer is w for w in self.wanted):
            self.recorded[id(layer)] = outputs
        return outputs

    def __call__(self, layer: Any, *args: Any, _path: str = "", **kwargs: Any) -> Any:
        return self._record(layer, self._call(layer, *args, **kwargs))

    def after_model(self, model: Any, outputs: Any, path: str) -> Any:
        return self._record(model, outputs)


def expose(model: keras.Model, layers: list[Any], *, final: Any = None, logits_layer: Any = None,
           dtype: Any = None) -> keras.Model:
    """A model mapping images to ``[logits, *outputs of layers]`` in one forward pass.

    `layers` are layer objects of `model` (nested ones included, see
    :func:`find_layer`). The logits are the model's output with `final` (if
    given) called without its activation, or the output of `logits_layer`.
    Layers and variables are shared with `model`; the input takes `dtype`.
    """
    strip = final if final is not None and _strips(final) else None
    wanted = list(layers) + ([logits_layer] if logits_layer is not None else [])
    recorder = _Recorder(wanted, strip)
    inputs = new_input(model, dtype)
    outputs = replay(model, inputs, recorder)
    missing = [layer.name for layer in wanted if id(layer) not in recorder.recorded]
    if missing:
        raise LayerNotFoundError(f"Layers {missing} are not reached from the input of model {model.name!r}.")
    if logits_layer is not None:
        outputs = recorder.recorded[id(logits_layer)]
    exposed = [recorder.recorded[id(layer)] for layer in layers]
    if not exposed:
        return keras.Model(inputs, outputs, name=f"{model.name}_logits")
    return keras.Model(inputs, [outputs, *exposed], name=f"{model.name}_exposed")


def num_classes(model: keras.Model) -> int:
    """Number of classes: the size of the model's output axis."""
    size = model.outputs[0].shape[-1]
    if size is None:
        raise UnsupportedModelError(f"Model {model.name!r} has an unknown number of output classes.")
    return int(size)


def default_cam_layer(model: keras.Model, infos: list[LayerInfo] | None = None) -> LayerInfo:
    """The automatic CAM layer: the last layer with spatial extent before the global pooling that feeds the head.

    The head starts at the first global reduction (``GlobalAveragePooling2D``/``GlobalMaxPooling2D``,
    with or without ``keepdims``, ``Flatten``, or any layer turning a 4-D output into another rank)
    after which no layer has a spatial output (``h * w > 1``, or sizes left open). Layers after the
    head are never chosen, so MobileNet's 1x1 classifier convolution after its pooling is skipped
    (``conv_pw_13_relu`` is chosen). Walking back from the head, 1x1 pooling layers and the
    shape-preserving layers after them (dropout, batch normalisation, activations) are passed over:
    ``AveragePooling2D(7) -> Flatten`` picks the layer before the pooling. Any other layer whose
    output is 1x1 is returned as it is (InceptionV3's ``mixed10`` below ~150 px), and the CAM
    explainers refuse it with a message naming the layer and the input size.

    Example: ``default_cam_layer(keras.applications.MobileNet(weights=None)).path == "conv_pw_13_relu"``.

    Raises:
        LayerNotFoundError: no layer before the head has a 4-D output.
    """
    layers = [i for i in (iter_layers(model) if infos is None else infos)
              if not isinstance(i.layer, keras.layers.InputLayer)]

    def spatial(info: LayerInfo) -> bool:
        shape = info.output_shape
        return len(shape) == 4 and not (shape[1] == 1 and shape[2] == 1)

    reducers = (keras.layers.GlobalAveragePooling2D, keras.layers.GlobalMaxPooling2D, keras.layers.Flatten)
    passed = (keras.layers.AveragePooling2D, keras.layers.MaxPooling2D, *reducers[:2], keras.layers.Dropout,
              keras.layers.BatchNormalization, keras.layers.Activation, keras.layers.ReLU)
    head = len(layers)
    for index in range(len(layers) - 1, -1, -1):
        info = layers[index]
        if spatial(info):
            break
        before = layers[index - 1].output_shape if index else ()
        if isinstance(info.layer, reducers) or (len(before) == 4 and len(info.output_shape) != 4):
            head = index
    body = [i for i in layers[:head] if len(i.output_shape) == 4]
    if not body:
        raise LayerNotFoundError(
            f"Model {model.name!r} has no layer with a 4-D output before its head to explain; pass `layer=` explicitly."
        )
    for info in reversed(body):
        if spatial(info):
            return info
        if not isinstance(info.layer, passed):
            break
    return body[-1]
