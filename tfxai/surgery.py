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
* :func:`read_graph` reads the graph once into a :class:`ModelGraph` (every
  leaf call with its producers and consumers): the adapter's final layer,
  output kind and leading preprocessing come from it.
* :func:`activation_kind` is the one classifier of activations.
* :class:`Rules` runs a rule table during :func:`replay`, first match wins
  (as Zennit's layer maps): the decomposition, guided backprop, the logits
  surgery and channel ablation are tables of ``(layer types or predicate,
  rule)`` entries.

The private Keras calls live in :mod:`tfxai._keras_graph` only.

Rebuilt models share the user's layers and variables: no weight is ever
copied, so a model trained after it was first explained is explained with its
new weights. A layer whose activation must be removed is called through a
:func:`linear_view` of it (same variables). Nothing on the user's model
changes: weights, configs and activations are left as they were.
"""

from __future__ import annotations

import difflib
import warnings
from typing import Any, Callable, Iterator, NamedTuple

import keras
import tensorflow as tf

from tfxai import _keras_graph
from tfxai.errors import InvalidTypeError, LayerNotFoundError, UnsupportedModelError

CallFn = Callable[..., Any]


class LayerInfo(NamedTuple):
    """A layer of a (possibly nested) model, as met in execution order."""

    layer: keras.layers.Layer
    path: str  # "outer_model/inner_model/layer_name" below the top-level model
    output_shape: tuple


def _graph(model: Any) -> Any:
    """Return the functional graph behind a Sequential/functional model, else None."""
    if _keras_graph.is_unbuilt_sequential(model):
        raise UnsupportedModelError(
            f"Sequential model {model.name!r} has no input shape yet. Start it with "
            "`keras.Input(shape=...)` or call `model.build((None, H, W, C))`."
        )
    return _keras_graph.functional_graph(model)


def is_graph_model(model: Any) -> bool:
    """True for models tfxai can rebuild: functional and Sequential models."""
    try:
        return _graph(model) is not None
    except UnsupportedModelError:
        return False


def _nodes_in_order(graph: Any) -> Iterator[Any]:
    return _keras_graph.nodes_in_order(graph)


def iter_layers(model: keras.Model, prefix: str = "") -> Iterator[LayerInfo]:
    """Yield every layer in execution order; a nested model yields its layers, then itself."""
    graph = _graph(model)
    for node in _nodes_in_order(graph):
        op = node.operation
        path = f"{prefix}{op.name}"
        if isinstance(op, keras.Model) and is_graph_model(op):
            yield from iter_layers(op, prefix=path + "/")
        outputs = _keras_graph.node_outputs(node)
        shape = tuple(outputs[0].shape) if outputs else ()
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
    """Run `model`'s graph on `inputs`, calling ``call_fn(layer, *args, _path=..., **kwargs)``.

    Nested functional/Sequential models are entered, so `call_fn` sees every
    leaf layer; it must return the layer's outputs (usually ``layer(*args,
    **kwargs)``), which lets callers record or substitute tensors (a
    :class:`Rules` table is such a `call_fn`). Every layer whose ``call`` takes
    ``training`` gets ``training=False`` (inference: BatchNormalization's moving
    statistics, no dropout), so hooks never set it. With KerasTensors as
    `inputs` this builds a new graph.
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
        if _keras_graph.takes_training(op):
            kwargs["training"] = False
        return call_fn(op, *args, _path=path, **kwargs)

    return _keras_graph.run_through_graph(graph, inputs, dispatch)


def new_input(model: keras.Model, dtype: Any = None) -> keras.KerasTensor:
    """A fresh ``keras.Input`` like `model`'s (shape; `dtype` or the model's), to replay its graph on."""
    ref = model.inputs[0]
    return keras.Input(batch_shape=tuple(ref.shape), dtype=dtype or ref.dtype)


def final_layer(model: keras.Model) -> keras.layers.Layer:
    """The leaf layer that produces the model's output (nested models entered)."""
    return read_graph(model).final().layer


# ---------------------------------------------------------------------- activations
#: Layers that are the identity at inference (and casts: ``Activation("linear", dtype=...)``).
IDENTITY_LAYERS: tuple[type, ...] = tuple(
    getattr(keras.layers, name)
    for name in ("Identity", "Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D",
                 "GaussianDropout", "GaussianNoise", "AlphaDropout", "ActivityRegularization")
    if hasattr(keras.layers, name)
)

#: Spellings of one activation (Keras names its functions ``silu``/``hard_silu``).
_ALIASES = {"swish": "silu", "hard_swish": "hard_silu", "identity": "linear"}
_KERAS_ACTIVATIONS = (
    "linear", "relu", "relu6", "leaky_relu", "elu", "selu", "gelu", "silu", "swish", "hard_silu", "hard_swish",
    "mish", "sigmoid", "hard_sigmoid", "tanh", "softmax", "log_softmax", "softplus", "softsign", "exponential",
    "celu", "glu", "hard_tanh", "hard_shrink", "soft_shrink", "tanh_shrink", "squareplus", "sparse_plus",
    "sparsemax", "log_sigmoid", "threshold",
)
_TF_ACTIVATIONS = ("relu", "relu6", "leaky_relu", "elu", "selu", "gelu", "silu", "swish", "sigmoid", "tanh",
                   "softmax", "log_softmax", "softplus", "softsign")


def _known_functions() -> dict:
    known: dict = {}
    for name in _KERAS_ACTIVATIONS:
        fn = getattr(keras.activations, name, None)
        if fn is not None:
            known.setdefault(id(fn), _ALIASES.get(name, name))
    for module in (tf.nn, tf.math):
        for name in _TF_ACTIVATIONS:
            fn = getattr(module, name, None)
            if fn is not None:
                known.setdefault(id(fn), _ALIASES.get(name, name))
    return known


_KNOWN_FUNCTIONS = _known_functions()


def activation_kind(layer_or_fn: Any) -> str | None:
    """The activation a layer applies, or the name of an activation function.

    The one classifier of activations in tfxai (the adapter, the
    decomposition, guided backprop and the logits surgery use it). Names are
    Keras' own (``"relu"``, ``"relu6"``, ``"softmax"``, ``"sigmoid"``, ``"silu"``
    for swish, ``"hard_silu"`` for hard-swish, ``"mish"``, ``"gelu"``,
    ``"linear"``, ...):

    * a function: its name, found by identity (``keras.activations.*``,
      ``tf.nn.*``) or by ``keras.activations.serialize``; None when unknown
      (a lambda, a custom function);
    * ``keras.layers.Softmax``: ``"softmax"``; ``LeakyReLU``: ``"leaky_relu"``;
      identity layers (:data:`IDENTITY_LAYERS`: ``Identity``, dropout and
      noise layers at inference): ``"linear"``;
    * ``keras.layers.ReLU``: ``"relu"`` (plain), ``"leaky_relu"`` (a negative
      slope, no threshold or cap), ``"relu6"`` (``max_value=6``) or
      ``"relu_clipped"`` (any other cap or threshold);
    * ``Activation`` and layers with a fused ``activation`` (Dense, Conv...):
      the kind of that function (``"linear"`` when there is none);
    * any other layer: None.

    Example::

        activation_kind(keras.layers.Dense(3, activation="softmax"))   # "softmax"
        activation_kind(keras.activations.hard_swish)                  # "hard_silu"
    """
    if isinstance(layer_or_fn, keras.layers.Layer):
        layer = layer_or_fn
        if isinstance(layer, keras.layers.Softmax):
            return "softmax"
        if isinstance(layer, keras.layers.ReLU):
            slope, threshold, cap = float(layer.negative_slope), float(layer.threshold), layer.max_value
            if threshold == 0.0 and cap is None:
                return "relu" if slope == 0.0 else "leaky_relu"
            if threshold == 0.0 and slope == 0.0 and float(cap) == 6.0:
                return "relu6"
            return "relu_clipped"
        if isinstance(layer, keras.layers.LeakyReLU):
            return "leaky_relu"
        if isinstance(layer, IDENTITY_LAYERS):
            return "linear"
        if isinstance(layer, keras.Model):
            return None
        if not hasattr(layer, "activation"):
            return None
        activation = layer.activation
        return "linear" if activation is None else activation_kind(activation)
    fn = layer_or_fn
    if fn is None:
        return None
    known = _KNOWN_FUNCTIONS.get(id(fn))
    if known is not None:
        return known
    if getattr(fn, "__name__", "") == "<lambda>":
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            name = keras.activations.serialize(fn)
    except Exception:  # noqa: BLE001 - custom activations are unknown
        return None
    return _ALIASES.get(name, name) if isinstance(name, str) and name in _KERAS_ACTIVATIONS else None


def is_identity(layer: Any) -> bool:
    """True for layers that pass their input on unchanged at inference (a dtype cast at most)."""
    if isinstance(layer, IDENTITY_LAYERS):
        return True
    return isinstance(layer, keras.layers.Activation) and activation_kind(layer) == "linear"


def has_activation(layer: Any) -> bool:
    """Whether `layer` applies an activation that a logits view must remove (anything but linear)."""
    if isinstance(layer, (keras.layers.Softmax, keras.layers.Activation)):
        return True
    if isinstance(layer, keras.Model) or getattr(layer, "activation", None) is None:
        return False
    return activation_kind(layer) != "linear"


# ---------------------------------------------------------------------- one reading of the graph
class LayerCall(NamedTuple):
    """One call of a leaf layer in a model's graph (nested models flattened).

    Attributes:
        layer: the layer.
        path: ``"outer/inner/name"`` below the top-level model.
        inputs: ids of the values it consumes (the model's inputs are values too).
        outputs: ids of the values it produces.
        output_shape: shape of its first output (batch axis included).
        kind: :func:`activation_kind` of the layer.
    """

    layer: Any
    path: str
    inputs: tuple
    outputs: tuple
    output_shape: tuple
    kind: str | None


class ModelGraph:
    """A model's graph read once: every leaf call with its producers and consumers.

    Built by :func:`read_graph` from the Keras nodes (no layer is called, the
    model is not touched); nested functional/Sequential models are flattened,
    so a value flows from the outer model into the inner one unchanged.

    Attributes:
        calls: the :class:`LayerCall` of every leaf, in execution order.
        inputs: value ids of the model's inputs; outputs: of its outputs.
    """

    def __init__(self, model: keras.Model):
        self.name = model.name
        self.calls: list[LayerCall] = []
        self._counter = 0
        env = {id(t): self._value() for t in tree_flatten(model.inputs)}
        self.inputs = tuple(env[id(t)] for t in tree_flatten(model.inputs))
        self._walk(model, "", env)
        self.outputs = tuple(env[id(t)] for t in tree_flatten(model.outputs))
        self._producer = {v: c for c in self.calls for v in c.outputs}
        self._consumers: dict = {}
        for call in self.calls:
            for v in call.inputs:
                self._consumers.setdefault(v, []).append(call)

    def _value(self) -> int:
        self._counter += 1
        return self._counter

    def _walk(self, model: Any, prefix: str, env: dict) -> None:
        graph = _graph(model)
        for node in _keras_graph.nodes_in_order(graph):
            op = node.operation
            path = f"{prefix}{op.name}"
            inputs = tuple(env[id(t)] for t in _keras_graph.node_inputs(node) if id(t) in env)
            outputs = _keras_graph.node_outputs(node)
            if isinstance(op, keras.Model) and is_graph_model(op):
                inner = {id(t): v for t, v in zip(tree_flatten(op.inputs), inputs)}
                self._walk(op, path + "/", inner)
                for outer, inner_tensor in zip(outputs, tree_flatten(op.outputs)):
                    env[id(outer)] = inner.get(id(inner_tensor), self._value())
                continue
            values = tuple(self._value() for _ in outputs)
            env.update({id(t): v for t, v in zip(outputs, values)})
            shape = tuple(outputs[0].shape) if outputs else ()
            self.calls.append(LayerCall(op, path, inputs, values, shape, activation_kind(op)))

    def producer(self, value: int) -> LayerCall | None:
        """The call that produces `value` (None for a model input)."""
        return self._producer.get(value)

    def consumers(self, value: int) -> list[LayerCall]:
        """The calls that consume `value`."""
        return list(self._consumers.get(value, []))

    def final(self) -> LayerCall:
        """The call that produces the model's (first) output."""
        call = self.producer(self.outputs[0])
        if call is None:
            raise UnsupportedModelError(f"Model {self.name!r} returns its input unchanged: it has no layers.")
        return call

    def before_identities(self, call: LayerCall) -> LayerCall:
        """Walk back from `call` through identity layers and casts (:func:`is_identity`) to the layer that computes.

        ``Dense(n, activation="softmax")`` then ``Activation("linear",
        dtype="float32")`` (the mixed-precision guide's last layers) gives the
        Dense layer.
        """
        while is_identity(call.layer) and len(call.inputs) == 1:
            previous = self.producer(call.inputs[0])
            if previous is None or len(self.consumers(call.inputs[0])) != 1:
                break
            call = previous
        return call

    def leading(self) -> LayerCall | None:
        """The first layer that changes the model's input, past identity layers (None: several or none)."""
        if len(self.inputs) != 1:
            return None
        value = self.inputs[0]
        while True:
            consumers = self.consumers(value)
            if len(consumers) != 1:
                return None
            call = consumers[0]
            if not is_identity(call.layer) or len(call.outputs) != 1:
                return call
            value = call.outputs[0]

    def layers(self, predicate: Callable[[Any], bool] | None = None) -> list[LayerCall]:
        """The calls whose layer satisfies `predicate` (every call without one)."""
        return [c for c in self.calls if predicate is None or predicate(c.layer)]


def tree_flatten(structure: Any) -> list:
    """Flatten a KerasTensor structure (list, tuple, dict) into a list."""
    return list(tf.nest.flatten(structure))


def read_graph(model: keras.Model) -> ModelGraph:
    """The :class:`ModelGraph` of `model` (read from its nodes; nothing is called)."""
    return ModelGraph(model)


# ---------------------------------------------------------------------- rules, first match wins
class Call(NamedTuple):
    """One call of a leaf layer during a :func:`replay`, as a rule sees it.

    Attributes:
        layer: the layer.
        args, kwargs: its arguments (``training=False`` already set where it applies).
        path: its path (``"backbone/conv1"``).
        context: the object the rule table was made for (a recorder, a cache...).
        views: ``id(layer) -> linear_view(layer)``, shared by the calls of one table.
    """

    layer: Any
    args: tuple
    kwargs: dict
    path: str
    context: Any
    views: dict

    def run(self, *args: Any) -> Any:
        """The layer's own output (on `args` if given, else on the call's arguments)."""
        return self.layer(*(args or self.args), **self.kwargs)

    def linear(self, *args: Any) -> Any:
        """The layer's output without its activation, on the same variables (:func:`linear_view`)."""
        if id(self.layer) not in self.views:
            self.views[id(self.layer)] = linear_view(self.layer)
        return self.views[id(self.layer)](*(args or self.args), **self.kwargs)


#: A rule: ``rule(call: Call) -> outputs`` of the layer (``Call.run()`` for the ordinary ones).
Rule = Callable[[Call], Any]


def matches(matcher: Any, layer: Any) -> bool:
    """Whether `layer` matches `matcher`: a layer class, a tuple of classes, or a predicate ``layer -> bool``."""
    if isinstance(matcher, type) or (isinstance(matcher, tuple) and all(isinstance(m, type) for m in matcher)):
        return isinstance(layer, matcher)
    return bool(matcher(layer))


def first_match(layer_map: list, layer: Any) -> Any:
    """The rule of the first ``(matcher, rule)`` entry of `layer_map` that matches `layer`, else None."""
    for matcher, rule in layer_map:
        if matches(matcher, layer):
            return rule
    return None


def run_layer(call: Call) -> Any:
    """The ordinary rule: the layer's own output."""
    return call.run()


def strip_activation(call: Call) -> Any:
    """The rule that removes a layer's activation: a ``Softmax``/``Activation`` passes its input on,
    any other layer is called without its activation (:func:`linear_view`, live variables)."""
    if isinstance(call.layer, (keras.layers.Softmax, keras.layers.Activation)):
        return call.args[0]
    return call.linear()


def any_layer(layer: Any) -> bool:
    """The matcher every layer matches (the last entry of a complete table)."""
    return True


def is_layer(layer: Any) -> Callable[[Any], bool]:
    """A matcher for one layer object (by identity): ``[(is_layer(final), strip_activation), ...]``."""
    return lambda candidate: candidate is layer


class Rules:
    """A :func:`replay` hook applying a rule table to every leaf layer, first match wins.

    As Zennit's ``LayerMapComposite``: `layer_map` is ``[(matcher, rule),
    ...]``, a matcher a layer class, a tuple of classes or a predicate; a layer
    no entry matches runs as usual. The decomposition
    (:data:`tfxai.decomposition.RULES`), guided backprop
    (:data:`tfxai.explainers.guided.RULES`) and the logits surgery
    (:func:`strip_activation`) are such tables; channel ablation is one entry::

        def ablate(call):                          # zero channel k of one layer's output
            return call.run() * mask
        replay(model, images, Rules([(is_layer(layer), ablate)]))

    Args:
        layer_map: the table.
        context: handed to every rule as ``call.context`` (e.g. a recorder).
        views: a dict of :func:`linear_view` s to reuse across passes.
        observe: ``observe(layer, outputs)`` called after every leaf and nested model.
    """

    def __init__(self, layer_map: list, context: Any = None, views: dict | None = None,
                 observe: Callable[[Any, Any], None] | None = None):
        self.layer_map = list(layer_map)
        self.context = context
        self.views = {} if views is None else views
        self.observe = observe

    def __call__(self, layer: Any, *args: Any, _path: str = "", **kwargs: Any) -> Any:
        rule = first_match(self.layer_map, layer) or run_layer
        outputs = rule(Call(layer, args, kwargs, _path or layer.name, self.context, self.views))
        if self.observe is not None:
            self.observe(layer, outputs)
        return outputs

    def after_model(self, model: Any, outputs: Any, path: str) -> Any:
        if self.observe is not None:
            self.observe(model, outputs)
        return outputs


# ---------------------------------------------------------------------- the activation-free view
class _WithoutActivation:
    """A stand-in for a layer inside its class's ``call``: every attribute is the layer's, except ``activation``.

    ``__class__`` is the layer's class, so ``super()`` inside ``call`` works.
    Nothing is copied and nothing is set on the layer.
    """

    __slots__ = ("_layer",)

    def __init__(self, layer: Any):
        object.__setattr__(self, "_layer", layer)

    @property
    def __class__(self) -> type:  # type: ignore[override]
        return type(object.__getattribute__(self, "_layer"))

    @property
    def activation(self) -> Any:
        return keras.activations.linear

    def __getattr__(self, name: str) -> Any:
        return getattr(object.__getattribute__(self, "_layer"), name)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"tfxai's activation-free view of a layer is read-only (tried to set {name!r})")


class LinearView(keras.layers.Layer):
    """`layer` without its activation: its class's own ``call`` on the layer's live variables.

    The pre-activation ``z`` of ``Dense``/``Conv*``/``DepthwiseConv2D``/
    ``SeparableConv2D``/``EinsumDense``/... (``kernel`` and ``bias`` read at
    every call, so training the model changes the view). The wrapped layer is a
    tracked sub-layer (its variables are the view's weights, shared, not
    copied) and is never modified.
    """

    def __init__(self, layer: keras.layers.Layer):
        super().__init__(name=f"{layer.name}_linear", dtype=layer.dtype_policy)
        self.source = layer
        self._takes_training = _keras_graph.takes_training(layer)
        self.built = True

    def call(self, inputs: Any, training: Any = None) -> Any:
        kwargs = {"training": training} if self._takes_training else {}
        return type(self.source).call(_WithoutActivation(self.source), inputs, **kwargs)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return self.source.compute_output_shape(input_shape)


def linear_view(layer: keras.layers.Layer) -> keras.layers.Layer:
    """`layer` called without its activation, on the **same** variables (no copy of the weights).

    A :class:`LinearView`: the layer class's own ``call`` with a linear
    activation, reading the layer's kernel and bias. The user's layer is not
    modified; training or editing it changes the view too. Used to expose a
    pre-activation (the logits before a fused softmax, ``z`` before a fused
    ReLU6 or swish).
    """
    return LinearView(layer)


def check_unique_names(model: keras.Model) -> None:
    """Refuse a model two of whose leaf layers share a name (an outer layer and one inside a nested model).

    The rebuilt models (:func:`logits_model`, :func:`expose`) hold the leaf
    layers of every nested model side by side, and Keras needs the names in one
    model to be unique; without this check Keras' own error ("The name ... is
    used 2 times") comes from deep inside a rebuild.

    Raises:
        UnsupportedModelError: naming every clash with the layers' paths.
    """
    paths: dict = {}
    for call in read_graph(model).calls:
        layers = paths.setdefault(call.layer.name, {})
        layers.setdefault(id(call.layer), call.path)
    clashes = {name: sorted(found.values()) for name, found in paths.items() if len(found) > 1}
    if clashes:
        shown = "; ".join(f"{name!r}: {where}" for name, where in list(clashes.items())[:5])
        raise UnsupportedModelError(
            f"Model {model.name!r} has different layers with the same name ({shown}). tfxai rebuilds the model from "
            "its own layers (logits without the softmax, CAM layers, T-Grad, LRP, DeepLIFT...), and Keras needs "
            "unique layer names in one model. Give the layers distinct `name=`s when building the model (for a "
            "trained model: rebuild it with new names and copy the weights with `set_weights`)."
        )


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
    if logits_layer is None and not has_activation(final) and same_dtype:
        return model
    if logits_layer is not None:
        return expose(model, [], logits_layer=logits_layer, dtype=dtype)
    check_unique_names(model)
    inputs = new_input(model, dtype)
    outputs = replay(model, inputs, Rules([(is_layer(final), strip_activation)]))
    return keras.Model(inputs, outputs, name=f"{model.name}_logits")


def expose(model: keras.Model, layers: list[Any], *, final: Any = None, logits_layer: Any = None,
           dtype: Any = None) -> keras.Model:
    """A model mapping images to ``[logits, *outputs of layers]`` in one forward pass.

    `layers` are layer objects of `model` (nested ones included, see
    :func:`find_layer`). The logits are the model's output with `final` (if
    given) called without its activation, or the output of `logits_layer`.
    Layers and variables are shared with `model`; the input takes `dtype`.
    """
    check_unique_names(model)
    wanted = list(layers) + ([logits_layer] if logits_layer is not None else [])
    recorded: dict[int, Any] = {}

    def observe(layer: Any, outputs: Any) -> None:
        if any(layer is w for w in wanted):
            recorded[id(layer)] = outputs

    table = [(is_layer(final), strip_activation)] if final is not None and has_activation(final) else []
    inputs = new_input(model, dtype)
    outputs = replay(model, inputs, Rules(table, observe=observe))
    missing = [layer.name for layer in wanted if id(layer) not in recorded]
    if missing:
        raise LayerNotFoundError(f"Layers {missing} are not reached from the input of model {model.name!r}.")
    if logits_layer is not None:
        outputs = recorded[id(logits_layer)]
    exposed = [recorded[id(layer)] for layer in layers]
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
