"""DeepLIFT with the Rescale rule, as one modified gradient pass.

DeepLIFT explains the difference of the target logit between an image ``x``
and a reference (baseline) ``x0``, ``Delta s = s(x) - s(x0)``, by propagating
*multipliers* ``m = Delta y / Delta u`` backward instead of gradients
(Shrikumar, Greenside, Kundaje 2017). Linear layers keep their gradient
(``Delta y = W Delta u`` exactly), and each nonlinearity is given a multiplier:

* an elementwise activation ``y = f(u)`` (ReLU in every Keras form, ReLU6,
  LeakyReLU, ELU, PReLU, sigmoid, tanh, swish, hard-swish, gelu, mish...), the
  Rescale rule: ``m = (f(u) - f(u0)) / (u - u0)``; for smooth ``f``, ``f'(u)``
  where ``u - u0`` is within the float precision (see :func:`rescale`);
* max pooling (layers ``MaxPooling*`` and ``GlobalMaxPooling*``), Captum's rule:
  per window, ``Delta y = (max(y, y0) - y0) + (y - max(y, y0))``; the first part
  goes to the argmax of ``u``'s window, the second to the argmax of ``u0``'s,
  and each input's multiplier is its share divided by ``u - u0`` (always in
  ``[0, 1]``, so exact and bounded);
* the product of two tensors ``y = a * b`` (``keras.layers.Multiply``, the
  Squeeze-Excitation gate, or a raw ``a * b`` on KerasTensors as MobileNetV3's
  hard-swish; raw ``+``, ``-`` and products or quotients by a constant are affine):
  ``Delta y = Delta a (b + b0) / 2 + Delta b (a + a0) / 2`` exactly, so
  ``m_a = (b + b0) / 2`` and ``m_b = (a + a0) / 2``.

Chaining the multipliers is the chain rule of a gradient pass in which every
nonlinearity's local derivative is replaced by its multiplier (Ancona, Ceolini,
Oztireli, Gross 2018, "DeepLIFT as modified gradient"); each of the rules
above satisfies ``m Delta u = Delta y`` exactly, so the attributions

    A(x) = (x - x0) * ds/dx|_modified            (N, H, W, C)

sum to ``s(x) - s(x0)`` (summation-to-delta), up to floating-point rounding
(exactly so on piecewise-linear networks; smooth activations add the error of
the ``f'(u)`` fallback, of the order of the rounding of ``f``). The map is the
signed channel sum ``sum_c A_c``.

Cost: the reference activations ``u0`` are recorded by one forward pass of the
baseline (one image when every image shares it: ``black``, ``white``,
``uniform``, a number or one image), then ``x`` runs forward and backward once
with the rules reading ``u0`` (Captum doubles the batch instead). Measured on
MobileNetV2, 16 images at 224 px, CPU: 1.4x one gradient pass with a shared
baseline; 1.8x with one baseline per image (its forward pass is extra).

Any other nonlinear layer (a softmax or LayerNormalization in the middle of the
network, ``Maximum``, an activation tfxai does not know, a raw Keras op other
than the arithmetic above, a ``Lambda`` or custom layer) has no rule: the
model is refused, before anything is evaluated, with one :class:`~tfxai.errors.UnsupportedModelError` naming every
such layer. It is never silently given the plain gradient.

References:
    Shrikumar, Greenside, Kundaje (2017), "Learning Important Features Through
    Propagating Activation Differences", ICML, arXiv:1704.02685.
    Ancona, Ceolini, Oztireli, Gross (2018), "Towards better understanding of
    gradient-based attribution methods for deep neural networks", ICLR,
    arXiv:1711.06104.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import keras
import numpy as np
import tensorflow as tf

from tfxai import _batching, baselines, surgery
from tfxai.errors import InvalidInputError, UnsupportedModelError
from tfxai.explainers.base import BaselineExplainer

#: Below this ``|u - u0|`` the max-pooling rule falls back to the gradient (Captum's ``eps``).
EPS = 1e-10
#: Activation kinds (:func:`tfxai.surgery.activation_kind`) that are piecewise linear: the Rescale quotient is exact.
PIECEWISE_LINEAR = ("relu", "relu6", "leaky_relu", "relu_clipped", "hard_sigmoid", "hard_tanh", "linear")


def _layers(*names: str) -> tuple:
    return tuple(getattr(keras.layers, n) for n in names if hasattr(keras.layers, n))


#: Layers that are linear (affine) maps at inference: their multiplier is their gradient.
LINEAR_LAYERS: tuple[type, ...] = _layers(
    "InputLayer", "ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D", "Cropping1D", "Cropping2D", "Cropping3D",
    "AveragePooling1D", "AveragePooling2D", "AveragePooling3D", "GlobalAveragePooling1D", "GlobalAveragePooling2D",
    "GlobalAveragePooling3D", "Add", "Subtract", "Average", "Concatenate", "Flatten", "Reshape", "Permute",
    "RepeatVector", "UpSampling1D", "UpSampling2D", "UpSampling3D", "BatchNormalization", "Rescaling",
    "Normalization", "Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "GaussianDropout",
    "GaussianNoise", "AlphaDropout", "Identity", "ActivityRegularization",
)

#: Layers that are linear up to a fused ``activation``: the linear part keeps its gradient, the activation
#: gets the Rescale rule (called through :func:`tfxai.surgery.linear_view`, live variables).
FUSED_LAYERS: tuple[type, ...] = _layers(
    "Conv1D", "Conv2D", "Conv3D", "Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose", "DepthwiseConv1D",
    "DepthwiseConv2D", "SeparableConv1D", "SeparableConv2D", "Dense", "EinsumDense",
)

#: Elementwise nonlinear layers (other than ``Activation``): the Rescale rule on the layer itself.
ELEMENTWISE_LAYERS: tuple[type, ...] = _layers("ReLU", "LeakyReLU", "ELU", "PReLU")

#: Max-pooling layers: Captum's max-pooling rule.
MAX_POOLING: tuple[type, ...] = _layers(
    "MaxPooling1D", "MaxPooling2D", "MaxPooling3D", "GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalMaxPooling3D"
)

#: Activation kinds (:func:`tfxai.surgery.activation_kind`) that are not elementwise: refused in the middle.
NOT_ELEMENTWISE = ("softmax", "log_softmax", "glu", "sparsemax")


def is_elementwise(kind: str | None) -> bool:
    """Whether an activation kind is a known elementwise function (``None``: unknown, so not)."""
    return kind is not None and kind not in NOT_ELEMENTWISE


# --------------------------------------------------------------------------- the multiplier ops
def _backward_with_variables(grads: Any, variables: Any) -> Any:
    """The ``grad_fn`` return value of :func:`tf.custom_gradient` (no gradient for a layer's own variables)."""
    return (grads, [None] * len(variables)) if variables else grads


def rescale(fn: Any, u0: tf.Tensor, y0: tf.Tensor, piecewise_linear: bool = False) -> Any:
    """``y = fn(u)`` whose backward pass multiplies by the Rescale multiplier against the reference ``(u0, y0)``.

    ``dy -> dy * m`` with ``m = (fn(u) - y0) / (u - u0)``; `u0` and ``y0 = fn(u0)``
    broadcast against ``u`` (one reference image for a whole batch).

    * `piecewise_linear` (ReLU, ReLU6, LeakyReLU, PReLU, hard sigmoid...): the
      quotient is exact in floating point (``y - y0 == u - u0`` where both are
      on one linear piece) and lies between the slopes, so it is used down to
      ``u == u0``, where ``m = 0`` (a neuron with ``u == u0`` passes no
      difference on: ``u - u0 = 0`` exactly happens where every input of the
      neuron equals its reference, and those inputs carry no attribution).
      Four elementwise operations in the backward pass.
    * smooth ``fn`` (sigmoid, tanh, swish, gelu...): ``f(u) - f(u0)`` loses
      digits when ``u`` is close to ``u0``, so ``m = f'(u)`` where
      ``|u - u0| <= sqrt(machine eps) (1 + |u0|)`` (~3e-4 in float32, 1.5e-8
      in float64): the error of either choice is then of the order of the
      rounding of ``f`` itself. (Captum: ``f'(u)`` below ``|u - u0| = 1e-10``.)
    """

    @tf.custom_gradient
    def op(u: tf.Tensor) -> Any:
        if piecewise_linear:
            y = fn(u)

            def backward(dy: tf.Tensor, variables: Any = None) -> Any:
                du = u - tf.cast(u0, u.dtype)
                return _backward_with_variables(tf.math.divide_no_nan(dy * (y - tf.cast(y0, y.dtype)), du), variables)

            return tf.identity(y), backward

        with tf.GradientTape() as tape:
            tape.watch(u)
            y = fn(u)

        def backward(dy: tf.Tensor, variables: Any = None) -> Any:
            reference = tf.cast(u0, u.dtype)
            du = u - reference
            tolerance = np.sqrt(np.finfo(u.dtype.as_numpy_dtype).eps) * (1 + tf.abs(reference))
            small = tf.abs(du) <= tolerance
            slope = tape.gradient(y, u, output_gradients=dy)
            ratio = (y - tf.cast(y0, y.dtype)) / tf.where(small, tf.ones_like(du), du)
            return _backward_with_variables(tf.where(small, slope, dy * ratio), variables)

        return tf.identity(y), backward

    return op


def max_pool_rule(pool: Any, u0: tf.Tensor, eps: float = EPS) -> Any:
    """``y = pool(u)`` (a max pooling) with Captum's DeepLIFT rule in its backward pass.

    Per pooling window, with ``t = max(y, y0)``: ``dy * (t - y0)`` is routed to
    the argmax of ``u`` and ``dy * (y - t)`` to the argmax of ``u0`` (the max
    pooling's own gradient does the routing), summed per input position and
    divided by ``u - u0``; the plain gradient where ``|u - u0| <= eps``. Each
    window's share is in ``[0, 1] * (u - u0)``, and the shares sum to ``y - y0``.
    """

    @tf.custom_gradient
    def op(u: tf.Tensor) -> Any:
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(u)
            y = pool(u)

        def backward(dy: tf.Tensor, variables: Any = None) -> Any:
            reference = tf.broadcast_to(tf.cast(u0, u.dtype), tf.shape(u))
            with tf.GradientTape() as tape0:
                tape0.watch(reference)
                y0 = pool(reference)
            top = tf.maximum(y, y0)
            share = tape.gradient(y, u, output_gradients=dy * (top - y0))
            share += tape0.gradient(y0, reference, output_gradients=dy * (y - top))
            plain = tape.gradient(y, u, output_gradients=dy)
            du = u - reference
            small = tf.abs(du) <= tf.cast(eps, u.dtype)
            return _backward_with_variables(tf.where(small, plain, share / tf.where(small, tf.ones_like(du), du)),
                                            variables)

        return tf.identity(y), backward

    return op


def multiply_rule(multiply: Any, a0: tf.Tensor, b0: tf.Tensor) -> Any:
    """``y = a * b`` with the exact split ``m_a = (b + b0) / 2``, ``m_b = (a + a0) / 2`` in its backward pass.

    ``a b - a0 b0 = (a - a0)(b + b0)/2 + (b - b0)(a + a0)/2``; broadcast axes
    (the Squeeze-Excitation gate ``(N, 1, 1, C)``) are summed as a gradient sums them.
    """

    @tf.custom_gradient
    def op(a: tf.Tensor, b: tf.Tensor) -> Any:
        y = multiply(a, b)

        def backward(dy: tf.Tensor, variables: Any = None) -> Any:
            mean_a = tf.stop_gradient((a + tf.cast(a0, a.dtype)) / 2)
            mean_b = tf.stop_gradient((b + tf.cast(b0, b.dtype)) / 2)
            with tf.GradientTape() as tape:
                tape.watch([a, b])
                z = a * mean_b + mean_a * b
            return _backward_with_variables(tape.gradient(z, [a, b], output_gradients=tf.cast(dy, z.dtype)), variables)

        return tf.identity(y), backward

    return op


# --------------------------------------------------------------------------- the rule table
class _Pass:
    """The context of one replay: ``record`` (the baseline: store each nonlinearity's inputs) or apply (read them)."""

    def __init__(self, refs: dict | None = None, eps: float = EPS):
        self.recording = refs is None
        self.refs: dict = {} if refs is None else refs
        self.eps = eps
        self._counts: dict = {}

    def key(self, path: str) -> str:
        """``path`` for a layer's first call, ``path:k`` for its (k+1)-th (a shared layer)."""
        count = self._counts.get(path, 0)
        self._counts[path] = count + 1
        return path if count == 0 else f"{path}:{count}"


class Rule(NamedTuple):
    """A DeepLIFT rule: how a layer runs, and which of its parts have no rule.

    Attributes:
        apply: ``apply(call) -> outputs`` (:class:`tfxai.surgery.Call`; ``call.context`` is the pass).
        unsupported: ``unsupported(layer, num_inputs) -> [name suffixes]`` refused before anything runs
            (``[""]``: the layer itself, ``["/activation"]``: its fused activation).
    """

    apply: Any
    unsupported: Any

    def __call__(self, call: surgery.Call) -> Any:
        return self.apply(call)


def _elementwise(call: surgery.Call, fn: Any, u: tf.Tensor) -> tf.Tensor:
    layer = call.layer
    piecewise_linear = isinstance(layer, keras.layers.PReLU) or surgery.activation_kind(layer) in PIECEWISE_LINEAR
    context = call.context
    key = context.key(call.path)
    if context.recording:
        y = fn(u)
        context.refs[key] = (u, y)
        return y
    u0, y0 = context.refs[key]
    return rescale(fn, u0, y0, piecewise_linear)(u)


def _apply_linear(call: surgery.Call) -> Any:
    return call.run()


def _apply_fused(call: surgery.Call) -> Any:
    if surgery.activation_kind(call.layer) == "linear":
        return call.run()
    return _elementwise(call, call.layer.activation, call.linear())


def _apply_layer(call: surgery.Call) -> Any:
    """An elementwise layer (``ReLU``, ``LeakyReLU``, ``ELU``, ``PReLU``) or ``Activation``: Rescale on itself."""
    if isinstance(call.layer, keras.layers.Activation) and surgery.activation_kind(call.layer) == "linear":
        return call.run()
    return _elementwise(call, lambda u: call.layer(u, **call.kwargs), call.args[0])


def _apply_max_pool(call: surgery.Call) -> Any:
    context = call.context
    key = context.key(call.path)
    u = call.args[0]
    if context.recording:
        context.refs[key] = u
        return call.run()
    return max_pool_rule(lambda v: call.layer(v, **call.kwargs), context.refs[key], context.eps)(u)


def _apply_multiply(call: surgery.Call) -> Any:
    context = call.context
    key = context.key(call.path)
    a, b = call.args[0]
    if context.recording:
        context.refs[key] = (a, b)
        return call.run()
    a0, b0 = context.refs[key]
    return multiply_rule(lambda p, q: call.layer([p, q], **call.kwargs), a0, b0)(a, b)


#: Raw Keras ops (``x + 3.0``, ``x * y`` on KerasTensors, as MobileNetV3 writes its hard sigmoid) that are affine in
#: each tensor operand; ``Multiply`` of two tensors gets the product rule.
ARITHMETIC_OPS = ("Add", "Subtract", "Multiply", "Divide", "TrueDivide", "Negative")


def _is_arithmetic_op(layer: Any) -> bool:
    return not isinstance(layer, keras.layers.Layer) and type(layer).__name__ in ARITHMETIC_OPS


def _arithmetic_unsupported(layer: Any, num_inputs: int) -> list:
    kind = type(layer).__name__
    return [] if num_inputs <= 1 or kind in ("Add", "Subtract", "Multiply") else [""]


def _apply_arithmetic(call: surgery.Call) -> Any:
    """A raw op: affine in one tensor (constant operand), ``a + b``, ``a - b`` (gradient); ``a * b``: product rule."""
    tensors = [a for a in call.args if tf.is_tensor(a) or keras.backend.is_keras_tensor(a)]
    if type(call.layer).__name__ != "Multiply" or len(tensors) != 2 or len(call.args) != 2:
        return call.run()
    context = call.context
    key = context.key(call.path)
    a, b = call.args
    if context.recording:
        context.refs[key] = (a, b)
        return call.run()
    a0, b0 = context.refs[key]
    return multiply_rule(lambda p, q: call.layer(p, q, **call.kwargs), a0, b0)(a, b)


def _none(layer: Any, num_inputs: int) -> list:
    return []


def _whole(layer: Any, num_inputs: int) -> list:
    return [""]


def _fused_unsupported(layer: Any, num_inputs: int) -> list:
    return [] if is_elementwise(surgery.activation_kind(layer)) else ["/activation"]


def _layer_unsupported(layer: Any, num_inputs: int) -> list:
    if isinstance(layer, ELEMENTWISE_LAYERS):
        return []
    return [] if is_elementwise(surgery.activation_kind(layer)) else [""]


def _multiply_unsupported(layer: Any, num_inputs: int) -> list:
    return [] if num_inputs == 2 else [""]


def _is_linear_view(layer: Any) -> bool:
    return isinstance(layer, surgery.LinearView)


def _view_unsupported(layer: Any, num_inputs: int) -> list:
    return [] if isinstance(layer.source, FUSED_LAYERS + LINEAR_LAYERS) else [""]


#: DeepLIFT's rule table (:class:`tfxai.surgery.Rules`, first match wins); the last entry refuses the rest.
RULES: list = [
    (_is_linear_view, Rule(_apply_linear, _view_unsupported)),  # the final layer without its softmax
    (LINEAR_LAYERS, Rule(_apply_linear, _none)),
    (FUSED_LAYERS, Rule(_apply_fused, _fused_unsupported)),
    (ELEMENTWISE_LAYERS + (keras.layers.Activation,), Rule(_apply_layer, _layer_unsupported)),
    (MAX_POOLING, Rule(_apply_max_pool, _none)),
    (keras.layers.Multiply, Rule(_apply_multiply, _multiply_unsupported)),
    (_is_arithmetic_op, Rule(_apply_arithmetic, _arithmetic_unsupported)),
    (surgery.any_layer, Rule(_apply_linear, _whole)),
]


def rule_name(layer: Any, num_inputs: int = 1) -> str:
    """The rule `layer` (called on `num_inputs` tensors) gets: ``"gradient"`` (linear), ``"rescale"``,
    ``"max_pool"`` or ``"multiply"``."""
    apply = surgery.first_match(RULES, layer).apply
    if apply is _apply_max_pool:
        return "max_pool"
    if apply is _apply_multiply or (
        apply is _apply_arithmetic and type(layer).__name__ == "Multiply" and num_inputs == 2
    ):
        return "multiply"
    if apply in (_apply_fused, _apply_layer) and not (
        surgery.activation_kind(layer) == "linear" and not isinstance(layer, ELEMENTWISE_LAYERS)
    ):
        return "rescale"
    return "gradient"


def call_names(graph: surgery.ModelGraph, names: dict | None = None) -> list[tuple]:
    """``(call, name)`` for every call of `graph`, named as the user's model names it.

    `names` maps ``id(layer)`` to the layer's paths in the user's model, one per
    call (``adapter.graph``); the k-th call of a shared layer whose path repeats
    gets ``":k"``; the final layer's activation-free view is named as the layer;
    raw ops say so (``"add (raw op Add)"``).
    """
    names = names or {}
    counts: dict = {}
    named = []
    for call in graph.calls:
        layer = call.layer.source if _is_linear_view(call.layer) else call.layer
        count = counts.get(id(layer), 0)
        counts[id(layer)] = count + 1
        paths = names.get(id(layer), [])
        name = paths[count] if count < len(paths) else call.path
        if count and (name in paths[:count] or count >= len(paths)):
            name = f"{name}:{count}"
        if not isinstance(call.layer, keras.layers.Layer):  # keras.ops on KerasTensors: `x + 1`, `x * y`
            name += f" (raw op {type(call.layer).__name__})"
        named.append((call, name))
    return named


def unsupported_layers(graph: surgery.ModelGraph, names: dict | None = None) -> list[str]:
    """Every part of `graph` DeepLIFT has no rule for, read from :data:`RULES` alone (nothing runs).

    `names`: see :func:`call_names`.
    """
    found = []
    for call, name in call_names(graph, names):
        rule = surgery.first_match(RULES, call.layer)
        found.extend(name + suffix for suffix in rule.unsupported(call.layer, len(call.inputs)))
    return found


# --------------------------------------------------------------------------- the explainer
class DeepLIFT(BaselineExplainer):
    """DeepLIFT (Rescale rule): attributions that sum to ``logit(x) - logit(x0)`` (see the module docstring).

    ``A(x) = (x - x0) * ds/dx`` with every nonlinearity's derivative replaced by
    its DeepLIFT multiplier; ``(N, H, W, C)``, signed; the map is ``sum_c A_c``.
    On a network without biases, with ReLUs only and a zero baseline, it equals
    gradient x input; on any network it sums to ``s(x) - s(x0)``
    (:meth:`convergence_delta` checks it).

    Example::

        dl = tfxai.DeepLIFT(model, baseline="black")
        attributions = dl.attributions(images, targets=[281, 207])     # (N, H, W, C)
        maps = dl(images, targets=[281, 207])                          # (N, H, W), signed
        dl.convergence_delta(images, attributions, [281, 207])         # ~0: sum A - (s(x) - s(x0))

    Args:
        model: the classifier or its adapter (never modified; a final softmax
            is skipped, the logits are explained).
        baseline: the reference ``x0``: a name from ``tfxai.baselines.NAMES``
            (``black``, ``white``, ``uniform``, ``gaussian``, ``blur``,
            ``max_distance``, in the model's input range), a number or an array
            broadcastable to the images, or a callable ``images -> baselines``.
        output: ``"logit"`` only: the summation holds for the logit; the final
            softmax couples every class (Shrikumar et al. explain the logits).
        batch_size: images per pass.
        seed: seed of a random baseline (None: a fresh one per call).

    Attributes:
        rules: ``{layer path: rule name}`` of every layer whose multiplier is not its gradient.

    Raises:
        UnsupportedModelError: a layer has no DeepLIFT rule (all of them are named, attribute ``layers``).

    References:
        Shrikumar, Greenside, Kundaje (2017), "Learning Important Features
        Through Propagating Activation Differences", ICML, arXiv:1704.02685;
        Ancona et al. (2018), ICLR, arXiv:1711.06104 (DeepLIFT as a modified gradient).
    """

    name = "deeplift"
    title = "DeepLIFT"
    signed = True

    def __init__(self, model: Any, *, baseline: Any = "black", output: str = "logit", batch_size: int = 32,
                 seed: int | None = None):
        if output == "probability":
            raise InvalidInputError(
                    "DeepLIFT explains the target's logit (output='logit'): its attributions sum to "
                    "logit(x) - logit(x0), and the softmax, which couples every class, has no DeepLIFT multiplier "
                    "(Shrikumar et al. 2017 explain the logits). Received: output='probability'."
                )
        super().__init__(model, output=output, batch_size=batch_size, seed=seed)
        self._baseline = baselines.Baseline(baseline)
        self.baseline = self._baseline.value
        self._graph = self.adapter.exposed([])  # images -> raw logits on the user's live layers
        self._views: dict = {}
        names: dict = {}
        for call in self.adapter.graph.calls:
            names.setdefault(id(call.layer), []).append(call.path)
        graph = surgery.read_graph(self._graph)
        offending = unsupported_layers(graph, names)
        if offending:
            raise UnsupportedModelError(
                f"DeepLIFT has no rule for {len(offending)} part(s) of model {self.adapter.name!r}: {offending}. "
                "It propagates multipliers through linear layers (Conv, Dense, BatchNormalization, pooling, Add, "
                "Concatenate, reshaping), elementwise activations, max pooling and the product of two tensors "
                "(Multiply, raw a * b) and raw arithmetic; a softmax or normalisation in the middle, "
                "Maximum/Minimum, other raw ops, Lambda and unknown layers or activations would get a plausible but "
                "wrong map. Use IntegratedGradients, "
                "which needs only gradients.",
                layers=offending,
            )
        self._rules = {}
        for call, name in call_names(graph, names):
            label = rule_name(call.layer, len(call.inputs))
            if label != "gradient":
                self._rules[name] = label

    @property
    def rules(self) -> dict:
        """``{layer path: rule}`` of every layer call whose multiplier is not its gradient (``rescale``,
        ``max_pool``, ``multiply``); a shared layer's second call is ``path:1``."""
        return dict(self._rules)

    # -- the two passes
    def record(self, references: tf.Tensor) -> dict:
        """Forward pass of the references: ``{call key: inputs (and outputs) of each nonlinearity}``."""
        context = _Pass(None)
        raw = surgery.replay(self._graph, references, surgery.Rules(RULES, context=context, views=self._views))
        del raw  # the references' logits are not needed: only the inputs of each nonlinearity
        return {key: tf.nest.map_structure(tf.stop_gradient, value) for key, value in context.refs.items()}

    def deeplift_logits(self, images: tf.Tensor, refs: dict) -> tf.Tensor:
        """Class logits of `images` (their usual values) whose gradient is DeepLIFT's modified gradient."""
        context = _Pass(refs)
        raw = surgery.replay(self._graph, images, surgery.Rules(RULES, context=context, views=self._views))
        return self.adapter.class_logits(raw)

    def attribute_batch(self, images: tf.Tensor, targets: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        shared = self._baseline.shared
        if shared:  # one reference image for the whole batch: its forward pass once
            reference = self.baselines(images[:1], seed)
            refs = self.record(reference)
        else:
            references = self.baselines(images, seed)

        def chunk(index: tf.Tensor) -> tf.Tensor:
            x = tf.gather(images, index)
            if shared:
                x0, chunk_refs = reference, refs
            else:
                x0 = tf.gather(references, index)
                chunk_refs = self.record(x0)
            with tf.GradientTape() as tape:
                tape.watch(x)
                scores = self.scores(self.deeplift_logits(x, chunk_refs), tf.gather(targets, index))
            return (x - x0) * tape.gradient(scores, x)

        spec = tf.TensorSpec(images.shape[1:], images.dtype)
        return _batching.map_images(chunk, tf.shape(images)[0], self.batch_size, spec)

    def reduce_channels(self, attributions: tf.Tensor) -> tf.Tensor:
        return tf.reduce_sum(attributions, axis=-1)


__all__ = [
    "DeepLIFT", "RULES", "call_names", "max_pool_rule", "multiply_rule", "rescale", "rule_name", "unsupported_layers",
]
