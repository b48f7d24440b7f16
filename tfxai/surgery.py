"""Model surgery: read and rebuild Keras graphs without touching the user's model.

This is the one place where tfxai walks or replays a Keras functional graph.

* :func:`iter_layers` lists the layers in execution order, nested models
  flattened (an application used as a backbone, two levels deep, ...).
* :func:`find_layer` resolves a layer given by name, path, object or ``None``.
* :func:`replay` runs a model's graph on new inputs, calling a hook for every
  leaf layer, so callers can record tensors or substitute layers.
* :func:`logits_model` returns a model that outputs logits (a rebuilt copy
  when the model ends in a softmax).
* :func:`expose` returns a model that outputs the logits and chosen
  intermediate tensors in one forward pass.

Rebuilt models share the user's layers (and so their weights); the only copies
made are of a final layer whose fused activation is a softmax, which is
snapshot with the activation removed. Nothing on the user's model changes:
weights, configs and activations are left as they were.
"""

from __future__ import annotations

import difflib
import weakref
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
        layer: ``None`` (the last layer whose output has rank `rank`), a layer
            name, a path ``"backbone/block5_conv3"``, or a ``keras.layers.Layer``.
        rank: the output rank a default layer must have (4 for conv maps).

    Raises:
        LayerNotFoundError: unknown name or object, with the candidates listed.
    """
    infos = list(iter_layers(model))
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


def _new_input(model: keras.Model) -> keras.KerasTensor:
    ref = model.inputs[0]
    return keras.Input(batch_shape=tuple(ref.shape), dtype=ref.dtype, name=ref.name if hasattr(ref, "name") else None)


def final_layer(model: keras.Model) -> keras.layers.Layer:
    """The leaf layer that produces the model's output (nested models entered)."""
    last = list(iter_layers(model))
    leaves = [i for i in last if not is_graph_model(i.layer)]
    return leaves[-1].layer


def _activation_name(layer: Any) -> str | None:
    if isinstance(layer, keras.layers.Softmax):
        return "softmax"
    activation = getattr(layer, "activation", None)
    if activation is None:
        return None
    try:
        return keras.activations.serialize(activation)
    except Exception:
        return getattr(activation, "__name__", None)


def ends_in_softmax(model: keras.Model) -> bool:
    """True when the model's last layer applies a softmax (fused or standalone)."""
    if not is_graph_model(model):
        return False
    return _activation_name(final_layer(model)) == "softmax"


def _without_activation(layer: keras.layers.Layer, input_shape: tuple) -> keras.layers.Layer:
    """A snapshot copy of `layer` with a linear activation (the user's layer is untouched)."""
    config = dict(layer.get_config())
    config["activation"] = "linear"
    config["name"] = layer.name + "_logits"
    copy = type(layer).from_config(config)
    copy.build(input_shape)
    copy.set_weights(layer.get_weights())
    return copy


def split_activation(layer: keras.layers.Layer, input_shape: tuple) -> keras.layers.Layer:
    """A snapshot copy of `layer` with a linear activation, to expose its pre-activation.

    Apply ``layer.activation`` to the copy's output to get the layer's output
    back. The copy holds copies of the weights taken now (the user's layer is
    untouched); rebuild after training.
    """
    copy = _without_activation(layer, input_shape)
    return copy


def new_input(model: keras.Model) -> keras.KerasTensor:
    """A fresh ``keras.Input`` like `model`'s (shape and dtype), to replay its graph on."""
    return _new_input(model)


def _strip_call(layer_to_strip: Any) -> CallFn:
    cache: dict[str, Any] = {}

    def call(layer: Any, *args: Any, _path: str = "", **kwargs: Any) -> Any:
        if layer is not layer_to_strip:
            return layer(*args, **kwargs)
        if isinstance(layer, (keras.layers.Softmax, keras.layers.Activation)):
            return args[0]
        if "copy" not in cache:
            cache["copy"] = _without_activation(layer, tuple(args[0].shape))
        return cache["copy"](*args, **kwargs)

    return call


_LOGIT_MODELS: "weakref.WeakKeyDictionary[keras.Model, keras.Model]" = weakref.WeakKeyDictionary()


def logits_model(model: keras.Model) -> keras.Model:
    """Return a model computing logits: `model` itself, or a copy without its final softmax.

    The copy is cached per model (weakly, so it dies with the model); it
    snapshots the final layer's weights, so rebuild explainers after training.

    This is what the lecture does with ``model.layers[-1].activation = None``,
    done on a rebuilt copy so the user's model keeps its softmax.
    """
    if not ends_in_softmax(model):
        return model
    cached = _LOGIT_MODELS.get(model)
    if cached is None:
        inputs = _new_input(model)
        outputs = replay(model, inputs, _strip_call(final_layer(model)))
        cached = _LOGIT_MODELS[model] = keras.Model(inputs, outputs, name=f"{model.name}_logits")
    return cached


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


def expose(model: keras.Model, layers: list[Any], strip_softmax: bool = True) -> keras.Model:
    """A model mapping images to ``[logits, *outputs of layers]`` in one forward pass.

    `layers` are layer objects of `model` (nested ones included, see
    :func:`find_layer`). With `strip_softmax` the first output is the logits
    even if `model` ends in a softmax.
    """
    strip = final_layer(model) if strip_softmax and ends_in_softmax(model) else None
    recorder = _Recorder(list(layers), strip)
    inputs = _new_input(model)
    outputs = replay(model, inputs, recorder)
    missing = [layer.name for layer in layers if id(layer) not in recorder.recorded]
    if missing:
        raise LayerNotFoundError(f"Layers {missing} are not reached from the input of model {model.name!r}.")
    exposed = [recorder.recorded[id(layer)] for layer in layers]
    return keras.Model(inputs, [outputs, *exposed], name=f"{model.name}_exposed")


def num_classes(model: keras.Model) -> int:
    """Number of classes: the size of the model's output axis."""
    size = model.outputs[0].shape[-1]
    if size is None:
        raise UnsupportedModelError(f"Model {model.name!r} has an unknown number of output classes.")
    return int(size)


def as_tensor_fn(model: keras.Model) -> Callable[[tf.Tensor], tf.Tensor]:
    """Call `model` in inference mode (dropout off, BatchNormalization on moving stats)."""
    return lambda images: model(images, training=False)
