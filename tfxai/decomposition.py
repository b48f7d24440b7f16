"""Exact decomposition of a logit into input and bias terms (FullGrad, T-Grad).

Every operation of a network is written as ``y = J_f(u) u + r`` with ``r`` the
part of ``y`` that is not linear in the op's input ``u``: the bias of a
convolution or dense layer, BatchNormalization's effective bias
``beta - gamma * mean / sqrt(var + eps)``, a Rescaling offset, a Normalization's
``-mean / sqrt(var)``, and the constant pieces of piecewise-linear activations
(``6`` where a ReLU6 saturates, ``-negative_slope * threshold`` below a ReLU
threshold). Chaining the ops gives, for the target logit ``s``,

    s = sum(x * ds/dx) + sum over ops of sum(ds/dy * r)            (completeness)

which is Eq. 6 of the T-Grad paper and the full-gradient decomposition of
Srinivas & Fleuret (2019). For ReLU, LeakyReLU, pooling, padding, Add,
Concatenate, Flatten, Reshape and Dropout at inference ``r = 0``, so they add
no term. One forward and one backward pass give every term: the gradients of
``s`` with respect to every op output ``y`` come from the same tape.

Fused activations: for ``Conv2D(activation="relu")`` the post-ReLU output ``a``
carries the bias term as ``(a > 0) * b * ds/da``, which equals ``b * ds/dz``
(exact only because of the mask). Other fused activations are split: the layer
is called through :func:`tfxai.surgery.linear_view` (same variables, no
activation) and the activation applied after it, so training the model
changes the decomposition too.

Other nonlinearities (swish, hard-swish, mish, sigmoid, gelu,
Squeeze-Excitation ``Multiply``, LayerNormalization, a softmax in the middle,
unknown layers and raw ops) are refused in ``mode="exact"`` with one
:class:`~tfxai.errors.UnsupportedModelError` listing every offending layer,
read from the rule table before anything is evaluated. ``mode="linearize"`` keeps completeness by
adding the linearisation residual ``r = f(u) - J_f(u) u`` of each such op as one
more term; ``J_f(u) u`` comes from forward-mode autodiff
(``tf.autodiff.ForwardAccumulator`` with ``u`` itself, all inputs for
multi-input ops, as the tangent).

Each layer is run by the first matching entry of the rule table
:data:`RULES` (``[(layer types or predicate, Rule), ...]``, replayed by
:class:`tfxai.surgery.Rules`): a :class:`Rule` says how the layer runs and
which term it records, and which of its parts exact mode refuses.

References:
    Srinivas, Fleuret (2019), "Full-Gradient Representation for Neural Network
    Visualization", NeurIPS, arXiv:1905.00780.
    Tran, Mai, Le, Le, "T-Grad: A Trustworthy Gradient Explanation for
    Convolutional Neural Networks".
"""

from __future__ import annotations

from typing import Any, NamedTuple

import keras
import numpy as np
import tensorflow as tf

from tfxai import _batching, _runtime, _validation, surgery
from tfxai.adapter import adapt
from tfxai.errors import UnsupportedModelError

MODES = ("exact", "linearize")

#: Layers that are linear maps without offset (r = 0 always).
LINEAR_LAYERS: tuple[type, ...] = tuple(
    getattr(keras.layers, name)
    for name in (
        "InputLayer", "ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D", "Cropping1D", "Cropping2D",
        "Cropping3D", "MaxPooling1D", "MaxPooling2D", "MaxPooling3D", "AveragePooling1D",
        "AveragePooling2D", "AveragePooling3D", "GlobalMaxPooling1D", "GlobalMaxPooling2D",
        "GlobalMaxPooling3D", "GlobalAveragePooling1D", "GlobalAveragePooling2D",
        "GlobalAveragePooling3D", "Add", "Subtract", "Average", "Maximum", "Minimum", "Concatenate",
        "Flatten", "Reshape", "Permute", "Dropout", "SpatialDropout1D", "SpatialDropout2D",
        "SpatialDropout3D", "GaussianDropout", "GaussianNoise", "AlphaDropout", "Identity",
        "UpSampling1D", "UpSampling2D", "UpSampling3D", "LeakyReLU", "PReLU", "ActivityRegularization",
    )
    if hasattr(keras.layers, name)
)

#: Layers whose bias is added to their (pre-activation) output.
BIASED_LAYERS: tuple[type, ...] = (
    keras.layers.Conv1D,
    keras.layers.Conv2D,
    keras.layers.Conv3D,
    keras.layers.Conv2DTranspose,
    keras.layers.DepthwiseConv2D,
    keras.layers.SeparableConv2D,
    keras.layers.Dense,
)

#: Activations (:func:`tfxai.surgery.activation_kind`) with r = 0 everywhere (positively homogeneous, piecewise linear).
HOMOGENEOUS = ("linear", "relu", "leaky_relu")
#: Activations that are piecewise linear with constant pieces (r != 0 somewhere).
PIECEWISE_CONSTANT = ("relu6",)


class Site(NamedTuple):
    """A place where a term enters the logit.

    Attributes:
        name: the layer path (``"backbone/conv1"``); ``":1"``... appended when
            a shared layer is called again.
        kind: ``"conv_bias"``, ``"dense_bias"``, ``"depthwise_bias"``,
            ``"separable_bias"``, ``"batch_norm"``, ``"rescaling"``,
            ``"normalization"``, ``"activation"`` (constants of a piecewise-linear
            activation) or ``"linearized"`` (residual of a nonlinearity in
            ``mode="linearize"``).
        shape: the term's shape without the batch axis (``(h, w, c)``, or
            ``(c,)`` for dense layers).
    """

    name: str
    kind: str
    shape: tuple


class Term(NamedTuple):
    """One signed term ``ds/dy * r`` of the decomposition; ``value`` has shape ``(N, *site.shape)``."""

    name: str
    kind: str
    value: tf.Tensor


class DecompositionResult(NamedTuple):
    """The output of a :class:`Decomposition` on a batch.

    Attributes:
        logits: ``(N,)`` the target logits ``s``.
        targets: ``(N,)`` int32 explained classes.
        input_term: ``(N, H, W, C)`` ``x * ds/dx``.
        terms: one :class:`Term` per site, in execution order.
    """

    logits: tf.Tensor
    targets: tf.Tensor
    input_term: tf.Tensor
    terms: list

    def total(self) -> tf.Tensor:
        """``(N,)`` sum of the input term and every site term (equals `logits`)."""
        return sum_terms(self.input_term, [t.value for t in self.terms])


class SiteGradient(NamedTuple):
    """A site in one backward pass: its term is ``gradient * residual``.

    Attributes:
        site: the :class:`Site`.
        gradient: ``ds/dy``, shape ``(N, *site.shape)``.
        output: ``y``, the site's tensor.
        residual: ``r``, broadcastable to ``y`` (left out of the graph when unused).
        saturation: ``c`` when ``r == c * (y >= c)`` (a ReLU capped at ``c``), else None.
        masked_bias: ``b`` when ``r == (y > 0) * b`` (a bias under a fused ReLU), else None.
    """

    site: Site
    gradient: tf.Tensor
    output: tf.Tensor
    residual: tf.Tensor
    saturation: float | None = None
    masked_bias: tf.Tensor | None = None


#: Reductions of a term ``t`` (N, ..., C) that :func:`site_statistics` computes.
#: Per position (channel axis reduced, shape (N, ...)): ``relu_sum`` = sum_c ReLU(t),
#: ``abs_sum`` = sum_c |t|. Per image (shape (N,)): ``total`` = sum(t),
#: ``abs_min`` = min |t|, ``abs_max`` = max |t|.
STATISTICS = ("relu_sum", "abs_sum", "total", "abs_min", "abs_max")


def term_statistics(term: tf.Tensor, wanted: tuple = STATISTICS) -> dict:
    """The `wanted` :data:`STATISTICS` of a materialised term ``(N, ..., C)``."""
    axes = list(range(1, term.shape.rank))
    out = {}
    if "relu_sum" in wanted:
        out["relu_sum"] = tf.reduce_sum(tf.nn.relu(term), axis=-1)
    if "total" in wanted:
        out["total"] = tf.reduce_sum(term, axis=axes)
    if {"abs_sum", "abs_min", "abs_max"} & set(wanted):
        magnitude = tf.abs(term)
        if "abs_sum" in wanted:
            out["abs_sum"] = tf.reduce_sum(magnitude, axis=-1)
        if "abs_min" in wanted:
            out["abs_min"] = tf.reduce_min(magnitude, axis=axes)
        if "abs_max" in wanted:
            out["abs_max"] = tf.reduce_max(magnitude, axis=axes)
    return out


def site_statistics(site: SiteGradient, wanted: tuple = STATISTICS, dtype: Any = None) -> dict:
    """The `wanted` :data:`STATISTICS` of a site's term ``g * r``, without building it where possible.

    Equal to ``term_statistics(g * r)`` up to the order of floating-point sums:

    * per-channel ``r`` (BatchNormalization, Rescaling, conv/dense biases without
      a fused ReLU): ``sum_c |g r| = |g| @ |r|`` and ``sum_c g r = g @ r`` are
      matrix-vector products, ``sum_c ReLU(g r) = (|g| @ |r| + g @ r) / 2``, and
      ``min/max |g r| = min/max_c |r_c| min/max_positions |g_c|`` (exact, as
      multiplying by ``|r_c| >= 0`` keeps the order). One elementwise pass
      (``|g|``) instead of materialising ``g * r`` and its ReLU/abs.
    * a bias under a fused ReLU (``r = (y > 0) * b``): ``g`` is masked by
      ``ReluGrad(g, y)`` and ``b`` is treated per channel as above.
    * a saturating ReLU (``r = c * (y >= c)``): one max over ``y`` first; when
      nothing saturates (often: saturation is rare) the statistics are zeros
      and no term is built.
    * anything else: ``term_statistics(g * r)``.

    Args:
        site: a :class:`SiteGradient` of :meth:`Decomposition.gradients`.
        wanted: names from :data:`STATISTICS`.
        dtype: the dtype of the results (default: the gradient's).
    """
    g, r = site.gradient, site.residual
    dtype = tf.as_dtype(dtype or g.dtype)
    if g.dtype != dtype:
        g = tf.cast(g, dtype)
    if site.saturation is not None and g.shape.rank >= 2:
        return _saturation_statistics(g, site.output, site.saturation, wanted)
    if site.masked_bias is not None and _is_per_channel(site.masked_bias, g):
        # g * (y > 0) * b: the ReLU's own gradient op masks g in one pass
        masked = tf.raw_ops.ReluGrad(gradients=g, features=tf.cast(site.output, dtype))
        return _channel_statistics(masked, tf.cast(site.masked_bias, dtype), wanted)
    if _is_per_channel(r, g):
        return _channel_statistics(g, tf.cast(r, dtype), wanted)
    return term_statistics(g * tf.cast(r, dtype), wanted)


def _is_per_channel(r: tf.Tensor, g: tf.Tensor) -> bool:
    """True when `r` only varies along the last axis of `g` (shape (1, ..., 1, C), (C,), ())."""
    shape = r.shape
    if g.shape.rank < 2 or shape.rank is None or shape.rank > g.shape.rank or None in shape.as_list():
        return False
    dims = shape.as_list()
    return all(d == 1 for d in dims[:-1]) and (not dims or dims[-1] in (1, g.shape[-1]))


def _channel_statistics(g: tf.Tensor, r: tf.Tensor, wanted: tuple) -> dict:
    channels = g.shape[-1]
    rows = tf.reshape(g, [-1, channels])
    r = tf.broadcast_to(tf.reshape(r, [-1]), [channels])
    position_shape = tf.shape(g)[:-1]
    spatial = list(range(1, g.shape.rank - 1))
    out = {}

    def dot(matrix: tf.Tensor, vector: tf.Tensor) -> tf.Tensor:
        return tf.reshape(tf.matmul(matrix, vector[:, None]), position_shape)

    signed = dot(rows, r) if {"relu_sum", "total"} & set(wanted) else None
    if {"relu_sum", "abs_sum", "abs_min", "abs_max"} & set(wanted):
        magnitude = tf.abs(g)
        if {"relu_sum", "abs_sum"} & set(wanted):
            absolute = dot(tf.reshape(magnitude, [-1, channels]), tf.abs(r))
            if "abs_sum" in wanted:
                out["abs_sum"] = absolute
            if "relu_sum" in wanted:  # ReLU(x) = (|x| + x) / 2, clipped against rounding
                out["relu_sum"] = tf.nn.relu((absolute + signed) * tf.constant(0.5, g.dtype))
        if "abs_min" in wanted:
            low = tf.reduce_min(magnitude, axis=spatial) if spatial else magnitude
            out["abs_min"] = tf.reduce_min(low * tf.abs(r), axis=-1)
        if "abs_max" in wanted:
            out["abs_max"] = tf.reduce_max(_channel_max(magnitude) * tf.abs(r), axis=-1)
    if "total" in wanted:
        out["total"] = tf.reduce_sum(signed, axis=spatial) if spatial else signed
    return out


def _channel_max(x: tf.Tensor) -> tf.Tensor:
    """``(N, C)`` max over the positions of ``(N, ..., C)``; a global max-pooling for 2-D maps (faster)."""
    if x.shape.rank == 4 and None not in x.shape[1:3]:
        return tf.reshape(tf.nn.max_pool2d(x, x.shape[1:3], 1, "VALID"), [-1, x.shape[-1]])
    return tf.reduce_max(x, axis=list(range(1, x.shape.rank - 1))) if x.shape.rank > 2 else x


def _saturation_statistics(g: tf.Tensor, y: tf.Tensor, cap: float, wanted: tuple) -> dict:
    """Statistics of ``t = g * cap * (y >= cap)``; zeros without building ``t`` when nothing saturates.

    One max over ``y`` decides; saturation is rare, and when it happens the
    term is built as the decomposition builds it (measured faster on
    EfficientNet-Lite0 than gathering only the saturated rows).
    """
    dtype = g.dtype
    wanted = tuple(wanted)
    cap_y = tf.constant(cap, y.dtype)

    def saturated() -> list:
        r = tf.where(y >= cap_y, tf.constant(cap, dtype), tf.constant(0, dtype))
        statistics = term_statistics(g * r, wanted)
        return [statistics[name] for name in wanted]

    def none() -> list:
        position_shape, num_images = tf.shape(g)[:-1], tf.shape(g)[:1]
        return [tf.zeros(position_shape if name in ("relu_sum", "abs_sum") else num_images, dtype) for name in wanted]

    peak = tf.reduce_max(_channel_max(y)) if y.shape.rank > 2 else tf.reduce_max(y)
    values = tf.cond(peak >= cap_y, saturated, none)
    for name, value in zip(wanted, values):
        value.set_shape(g.shape[:-1] if name in ("relu_sum", "abs_sum") else g.shape[:1])
    return dict(zip(wanted, values))


def sum_terms(input_term: tf.Tensor, values: list) -> tf.Tensor:
    """Per-image sum of all terms, accumulated in the terms' dtype."""
    total = tf.reduce_sum(input_term, axis=tf.range(1, tf.rank(input_term)))
    for value in values:
        total = total + tf.reduce_sum(tf.reshape(value, [tf.shape(value)[0], -1]), axis=1)
    return total


# --------------------------------------------------------------------------- layer rules
def _relu_is_homogeneous(layer: keras.layers.ReLU) -> bool:
    return layer.max_value is None and float(layer.threshold) == 0.0


def relu_residual(u: tf.Tensor, max_value: float | None = None, negative_slope: float = 0.0, threshold: float = 0.0) -> tf.Tensor:
    """``r = f(u) - f'(u) u`` of Keras' ``relu(u, negative_slope, max_value, threshold)``.

    ``f(u) = u`` between `threshold` and `max_value` (``r = 0``); ``f = max_value``
    where saturated (``r = max_value``); ``f(u) = negative_slope * (u - threshold)``
    at or below the threshold (``r = -negative_slope * threshold``). ReLU6 gives
    ``6`` where saturated, as TensorFlow's gradient has slope 0 at ``u = 6``.
    """
    r = tf.zeros_like(u)
    if max_value is not None:
        r = tf.where((u >= max_value) & (u > threshold), tf.constant(max_value, u.dtype), r)
    if negative_slope != 0.0 and threshold != 0.0:
        r = tf.where(u <= threshold, tf.constant(-negative_slope * threshold, u.dtype), r)
    return r


def _saturation(y: tf.Tensor, max_value: float) -> tf.Tensor:
    """``r`` of ``clip(u, 0, max_value)`` from its output: ``max_value`` where ``y == max_value``."""
    return tf.where(y >= max_value, tf.constant(max_value, y.dtype), tf.constant(0, y.dtype))


class _Saturation:
    """The residual of a saturating ReLU as a zero-argument function, tagged with its constant.

    Calling it gives the dense ``r`` (:func:`_saturation`); the tag lets
    :func:`site_statistics` skip the term when ``y`` never reaches the cap.
    """

    def __init__(self, y: tf.Tensor, max_value: float):
        self.y, self.max_value = y, max_value

    def __call__(self) -> tf.Tensor:
        return _saturation(self.y, self.max_value)


class _MaskedBias:
    """The residual ``(y > 0) * b`` of a layer with a fused ReLU, tagged with ``b`` (a function).

    :func:`site_statistics` masks the gradient with ``ReluGrad(g, y)`` (one
    pass) and treats ``b`` per channel, so the full-size ``r`` is never built.
    """

    def __init__(self, y: tf.Tensor, bias: Any):
        self.y, self.bias = y, bias

    def __call__(self) -> tf.Tensor:
        return tf.cast(self.y > 0, self.y.dtype) * self.bias()


def _zeros_like_channels(layer: Any, u: tf.Tensor) -> tf.Tensor:
    """Zeros of shape ``(1, 1, ..., C)`` (or ``u[:1]``'s shape for other axes), for ``r = f(0)``."""
    axis = getattr(layer, "axis", -1)
    rank = u.shape.rank
    if isinstance(axis, int) and axis in (-1, rank - 1):
        return tf.zeros([1] * (rank - 1) + [u.shape[-1]], u.dtype)
    return tf.zeros_like(u[:1])


def linearization_residual(fn: Any, inputs: list) -> tf.Tensor:
    """``r = f(u) - J_f(u) u`` with ``J_f(u) u`` from forward-mode autodiff (tangent = u).

    `fn` maps the list `inputs` to one tensor; the residual is a constant for
    the backward pass (``stop_gradient``). For an affine map it is the offset,
    for a positively homogeneous map (ReLU) it is zero.
    """
    primals = [tf.stop_gradient(u) for u in inputs]
    with tf.autodiff.ForwardAccumulator(primals, primals) as accumulator:
        outputs = fn(primals)
    jvp = accumulator.jvp(outputs, unconnected_gradients=tf.UnconnectedGradients.ZERO)
    return tf.stop_gradient(outputs - jvp)


class _Hook(surgery.Rules):
    """A :func:`surgery.replay` hook that records ``(site, y, r)`` for every term: the :data:`RULES` table.

    Used twice: symbolically at construction (to list sites and build the
    activation-free views; ``r`` is not computed) and with real tensors inside
    the tape of every decomposition. The rules write into this object
    (``call.context``).
    """

    def __init__(self, mode: str, strip: Any | None, copies: dict, symbolic: bool):
        super().__init__(rule_table(strip), context=self, views=copies)
        self.mode = mode
        self.strip = strip
        self.copies = copies  # id(layer) -> linear view, shared between passes
        self.symbolic = symbolic
        self.records: list = []  # (Site, y, r)
        self.saturation: dict[int, float] = {}  # record index -> c, where r == c * (y >= c)
        self.masked_bias: dict[int, Any] = {}  # record index -> b (a function), where r == (y > 0) * b
        self.unsupported: list[str] = []
        self._calls: dict[str, int] = {}

    # -- helpers
    def _name(self, path: str) -> str:
        count = self._calls.get(path, 0)
        self._calls[path] = count + 1
        return path if count == 0 else f"{path}:{count}"

    def _site(self, name: str, kind: str, y: Any, residual: Any) -> None:
        """Record a site; `residual` is a zero-argument function giving r (broadcastable to y)."""
        r = None if self.symbolic else tf.stop_gradient(tf.cast(residual(), y.dtype))
        if isinstance(residual, _Saturation):
            self.saturation[len(self.records)] = residual.max_value
        if isinstance(residual, _MaskedBias) and not self.symbolic:
            self.masked_bias[len(self.records)] = tf.stop_gradient(tf.cast(residual.bias(), y.dtype))
        self.records.append((Site(name, kind, tuple(y.shape[1:])), y, r))

    def _nonlinear(self, name: str, y: Any, fn: Any, inputs: list) -> Any:
        """A nonlinearity with output `y` = fn(inputs): a residual term in linearize mode.

        Exact mode never gets here: the model is refused before any replay
        (:meth:`Decomposition.__init__`); the name is kept as a safeguard.
        """
        if self.mode == "exact":
            self.unsupported.append(name)
        elif inputs:
            self._site(name, "linearized", y, lambda: linearization_residual(fn, inputs))
        return y

    def _activation(self, call: surgery.Call, name: str, activation: Any, z: Any) -> Any:
        """Apply a fused `activation` to the pre-activation `z` of `call`'s layer (as a Keras layer)."""
        kind = surgery.activation_kind(activation)
        act = _activation_layer(call, activation)
        y = act(z)
        if kind in HOMOGENEOUS:
            return y
        if kind in PIECEWISE_CONSTANT:  # relu6
            self._site(name, "activation", y, _Saturation(y, 6.0))
            return y
        return self._nonlinear(name, y, lambda u: act(u[0]), [z])


def _activation_layer(call: surgery.Call, activation: Any) -> Any:
    """``keras.layers.Activation(activation)`` in the layer's dtype, one per layer (callable on KerasTensors:
    hard-swish and mish cannot be called bare on them)."""
    key = ("activation", id(call.layer))
    if key not in call.views:
        call.views[key] = keras.layers.Activation(activation, dtype=call.layer.dtype_policy,
                                                  name=f"{call.layer.name}_activation")
    return call.views[key]


# --------------------------------------------------------------------------- the rule table
class Rule(NamedTuple):
    """A decomposition rule: how a layer is run and what term it records.

    Attributes:
        apply: ``apply(call) -> outputs`` (:class:`tfxai.surgery.Call`; ``call.context`` is the recorder).
        nonlinear: ``nonlinear(layer) -> [name suffixes]`` of its parts that are not piecewise linear
            (``[""]``: the layer itself, ``["/activation"]``: its fused activation), which
            ``mode="exact"`` refuses before anything is evaluated.
    """

    apply: Any
    nonlinear: Any

    def __call__(self, call: surgery.Call) -> Any:
        return self.apply(call)


def _none(layer: Any) -> list:
    return []


def _fused_nonlinear(layer: Any) -> list:
    kind = surgery.activation_kind(layer)
    return [] if kind in HOMOGENEOUS or kind in PIECEWISE_CONSTANT else ["/activation"]


def _apply_linear(call: surgery.Call) -> Any:
    call.context._name(call.path)
    return call.run()


def _bias_kind(layer: Any) -> str:
    return (
        "dense_bias" if isinstance(layer, keras.layers.Dense)
        else "separable_bias" if isinstance(layer, keras.layers.SeparableConv2D)
        else "depthwise_bias" if isinstance(layer, keras.layers.DepthwiseConv2D)
        else "conv_bias"
    )


def _apply_biased(call: surgery.Call, keep_activation: bool = True) -> Any:
    """A biased layer: ``r = b``; a fused ReLU keeps ``(a > 0) * b``, other activations are split off."""
    hook, layer = call.context, call.layer
    name = hook._name(call.path)
    kind = _bias_kind(layer)
    has_bias = getattr(layer, "use_bias", False)
    act = surgery.activation_kind(layer)
    if act == "linear" or (act == "relu" and keep_activation):
        y = call.run()
        if has_bias:
            if act == "relu":  # (a > 0) * b * ds/da == b * ds/dz: exact because of the mask
                hook._site(name, kind, y, _MaskedBias(y, lambda: _bias(layer, y)))
            else:
                hook._site(name, kind, y, lambda: _bias(layer, y))
        return y
    z = call.linear()
    if has_bias:
        hook._site(name, kind, z, lambda: _bias(layer, z))
    if not keep_activation:
        return z
    return hook._activation(call, name + "/activation", layer.activation, z)


def _apply_strip(call: surgery.Call) -> Any:
    """The final layer without its softmax/sigmoid: the logits."""
    if isinstance(call.layer, (keras.layers.Softmax, keras.layers.Activation)):
        call.context._name(call.path)
        return call.args[0]
    return _apply_biased(call, keep_activation=False)


def _affine(kind: str) -> Any:
    def apply(call: surgery.Call) -> Any:
        # y = a * u + r elementwise: r is the layer applied to zeros.
        name = call.context._name(call.path)
        y = call.run()
        call.context._site(name, kind, y, lambda: call.layer(_zeros_like_channels(call.layer, call.args[0]), **call.kwargs))
        return y

    return apply


def _apply_relu(call: surgery.Call) -> Any:
    hook, layer = call.context, call.layer
    name = hook._name(call.path)
    y = call.run()
    if not _relu_is_homogeneous(layer):
        slope, threshold = float(layer.negative_slope), float(layer.threshold)
        if slope == 0.0 and threshold == 0.0:  # ReLU(max_value): cheap test on the output
            hook._site(name, "activation", y, _Saturation(y, float(layer.max_value)))
        else:
            hook._site(name, "activation", y, lambda: relu_residual(call.args[0], layer.max_value, slope, threshold))
    return y


def _apply_activation(call: surgery.Call) -> Any:
    """An ``Activation`` layer: the user's own layer (so it runs on KerasTensors too)."""
    hook = call.context
    name = hook._name(call.path)
    kind = surgery.activation_kind(call.layer)
    y = call.run()
    if kind in HOMOGENEOUS:
        return y
    if kind in PIECEWISE_CONSTANT:  # relu6
        hook._site(name, "activation", y, _Saturation(y, 6.0))
        return y
    return hook._nonlinear(name, y, lambda u: call.layer(u[0], **call.kwargs), [call.args[0]])


def _apply_nonlinear(call: surgery.Call) -> Any:
    """Any other layer or raw op: refused in exact mode, linearised otherwise."""
    name = call.context._name(call.path)
    flat = tf.nest.flatten(call.args)
    y = call.run()
    return call.context._nonlinear(
        name, y,
        lambda u: call.layer(*tf.nest.pack_sequence_as(call.args, _repack(flat, u)), **call.kwargs),
        [a for a in flat if _is_float_tensor(a)],
    )


def _whole_layer(layer: Any) -> list:
    return [""]


def _activation_nonlinear(layer: Any) -> list:
    kind = surgery.activation_kind(layer)
    return [] if kind in HOMOGENEOUS or kind in PIECEWISE_CONSTANT else [""]


#: The decomposition's rules, first match wins (:class:`tfxai.surgery.Rules`). The final
#: layer's softmax/sigmoid is stripped by an entry put in front (:func:`rule_table`).
RULES: list = [
    (LINEAR_LAYERS, Rule(_apply_linear, _none)),
    (BIASED_LAYERS, Rule(_apply_biased, _fused_nonlinear)),
    (keras.layers.BatchNormalization, Rule(_affine("batch_norm"), _none)),
    (keras.layers.Rescaling, Rule(_affine("rescaling"), _none)),
    (keras.layers.Normalization, Rule(_affine("normalization"), _none)),
    (keras.layers.ReLU, Rule(_apply_relu, _none)),
    (keras.layers.Activation, Rule(_apply_activation, _activation_nonlinear)),
    (surgery.any_layer, Rule(_apply_nonlinear, _whole_layer)),
]

_STRIP = Rule(_apply_strip, _none)


def rule_table(strip: Any | None) -> list:
    """:data:`RULES` with, first, the entry that strips the final layer's activation (when `strip` is given)."""
    return ([(surgery.is_layer(strip), _STRIP)] if strip is not None else []) + RULES


def nonlinear_layers(graph: surgery.ModelGraph, strip: Any | None) -> list[str]:
    """Names of every part of `graph` that is not piecewise linear (what ``mode="exact"`` refuses).

    Read from the rule table alone: nothing is called or evaluated.
    """
    table = rule_table(strip)
    counts: dict[str, int] = {}
    names = []
    for call in graph.calls:
        count = counts.get(call.path, 0)
        counts[call.path] = count + 1
        name = call.path if count == 0 else f"{call.path}:{count}"
        rule = surgery.first_match(table, call.layer)
        names.extend(name + suffix for suffix in rule.nonlinear(call.layer))
    return names


def _is_float_tensor(value: Any) -> bool:
    return (tf.is_tensor(value) or keras.backend.is_keras_tensor(value)) and tf.as_dtype(value.dtype).is_floating


def _repack(flat: list, tensors: list) -> list:
    """Replace the floating tensors of `flat` by `tensors`, in order."""
    it = iter(tensors)
    return [next(it) if _is_float_tensor(a) else a for a in flat]


def _bias(layer: Any, y: tf.Tensor) -> tf.Tensor:
    """The layer's bias, shaped to broadcast against its output `y`."""
    bias = tf.cast(tf.convert_to_tensor(layer.bias), y.dtype)
    if getattr(layer, "data_format", "channels_last") == "channels_first":
        bias = tf.reshape(bias, [-1] + [1] * (y.shape.rank - 2))
    return bias


# --------------------------------------------------------------------------- public object
class Decomposition:
    """A reusable exact decomposition of a classifier's logits.

    ``d = tfxai.decompose(model); out = d(images, targets=None)`` gives the
    target logit ``s``, the input term ``x * ds/dx`` and one signed term
    ``ds/dy * r`` per site with ``s == out.total()`` (see the module docstring).

    Args:
        model: a functional or Sequential Keras classifier (nested models are
            entered), or its adapter. It is never modified; a final softmax or
            sigmoid is skipped, so the logits are decomposed (class 0 of a
            one-unit binary model through ``-z``).
        mode: ``"exact"`` (piecewise-linear networks only; other layers are
            refused) or ``"linearize"`` (each nonlinearity's residual
            ``f(u) - J_f(u) u`` is one more term).
        batch_size: images per forward/backward pass.

    Raises:
        UnsupportedModelError: in exact mode, listing every layer that is not
            piecewise linear (attribute ``layers``).
    """

    def __init__(self, model: keras.Model, *, mode: str = "exact", batch_size: int = 32):
        self.adapter = adapt(model)
        self.model = self.adapter.model
        self.mode = _validation.check_choice(mode, "mode", MODES)
        self.runtime = _runtime.Runtime(self.adapter, batch_size)
        self.batch_size = self.runtime.batch_size
        if self.adapter.logits_layer is not None:
            raise UnsupportedModelError(
                f"The decomposition of model {self.model.name!r} needs the model's own final layer as the logits; "
                "an adapter built with `logits_layer=` is not supported. End the model with its logits layer."
            )
        self.num_classes = self.adapter.num_classes
        self._strip = self.adapter.final_layer if self.adapter.kind != "logits" else None
        self._copies: dict = {}
        # exact mode refuses from the rule table alone, before anything is called or evaluated
        offending = nonlinear_layers(self.adapter.graph, self._strip) if self.mode == "exact" else []
        if offending:
            raise UnsupportedModelError(
                f"Model {self.model.name!r} is not piecewise linear, so its logits have no exact "
                f"input + bias decomposition. Offending layers ({len(offending)}): "
                f"{offending}. Use mode='linearize' to add each nonlinearity's "
                "linearisation residual f(u) - J_f(u) u as one more term.",
                layers=offending,
            )
        hook = self._hook(symbolic=True)
        surgery.replay(self.model, surgery.new_input(self.model, self.adapter.dtype), hook)
        self.sites: list[Site] = [site for site, _, _ in hook.records]

    def __repr__(self) -> str:
        return f"Decomposition(model={self.model.name!r}, mode={self.mode!r}, sites={len(self.sites)})"

    def _hook(self, symbolic: bool = False) -> _Hook:
        return _Hook(self.mode, self._strip, self._copies, symbolic)

    # -- in-graph core, shared with FullGrad and T-Grad
    def forward(self, images: tf.Tensor) -> tuple[tf.Tensor, list]:
        """Class logits and ``[(Site, y, r), ...]`` with real tensors (call inside a tape)."""
        logits, hook = self._replay(images)
        return logits, hook.records

    def _replay(self, images: tf.Tensor) -> tuple[tf.Tensor, _Hook]:
        hook = self._hook()
        raw = surgery.replay(self.model, images, hook)
        return self.adapter.class_logits(raw), hook

    def gradients(self, images: tf.Tensor, targets: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, list]:
        """One forward and one backward pass: ``(logits s (N,), targets, input term, [SiteGradient])``.

        Every site comes with ``ds/dy`` and its residual; the term is
        ``gradient * residual`` (:meth:`terms`), and :func:`site_statistics`
        reduces it without building it. ``targets == -1`` explains the
        predicted class of the row.
        """
        with tf.GradientTape() as tape:
            tape.watch(images)
            logits, hook = self._replay(images)
            targets = _runtime.resolve_predicted(targets, logits)
            scores = self.adapter.scores(logits, targets, "logit")
        records = hook.records
        sources = [images] + [y for _, y, _ in records]
        grads = tape.gradient(scores, sources, unconnected_gradients=tf.UnconnectedGradients.ZERO)
        dtype = images.dtype  # terms in the input dtype, whatever the layers compute in
        sites = [
            SiteGradient(site, g, y, r, hook.saturation.get(i), hook.masked_bias.get(i))
            for i, (g, (site, y, r)) in enumerate(zip(grads[1:], records))
        ]
        return tf.cast(scores, dtype), targets, images * tf.cast(grads[0], dtype), sites

    def terms(self, images: tf.Tensor, targets: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, list]:
        """One forward and one backward pass: ``(logits s (N,), targets, input term, [term values])``.

        ``targets == -1`` explains the predicted class of the row.
        """
        scores, targets, input_term, sites = self.gradients(images, targets)
        dtype = input_term.dtype
        values = [tf.cast(s.gradient * s.residual, dtype) for s in sites]
        return scores, targets, input_term, values

    def spatial_sites(self, images: tf.Tensor, targets: tf.Tensor) -> tuple[tf.Tensor, list]:
        """One pass: ``(input term (N, H, W, C), [SiteGradient of every (N, h, w, c) site])``.

        The sites with a spatial extent, what FullGrad and T-Grad map (dense
        terms have none); reduce them with :func:`site_statistics`.
        """
        _, _, input_term, sites = self.gradients(images, targets)
        return input_term, [s for s in sites if s.gradient.shape.rank == 4]

    def spatial_terms(self, images: tf.Tensor, targets: tf.Tensor) -> list:
        """``[input term, every (N, h, w, c) site term]``: the terms with a spatial extent (in-graph)."""
        input_term, sites = self.spatial_sites(images, targets)
        return [input_term] + [tf.cast(s.gradient * s.residual, input_term.dtype) for s in sites]

    # -- public
    def __call__(self, images: Any, targets: Any = None) -> DecompositionResult:
        """Decompose the target logits of `images` (N, H, W, C); see :class:`DecompositionResult`."""
        images = self.runtime.images(images)
        parsed = tf.constant(self.runtime.targets(targets, int(images.shape[0])))
        fn = self.runtime.compiled("terms", self._batched(tuple(images.shape[1:]), images.dtype), images, parsed)
        scores, targets_out, input_term, values = fn(images, parsed)
        terms = [Term(site.name, site.kind, value) for site, value in zip(self.sites, values)]
        return DecompositionResult(scores, targets_out, input_term, terms)

    def completeness_gap(self, images: Any, targets: Any = None) -> np.ndarray:
        """``(N,)`` relative gap ``|s - sum of all terms| / max(|s|, 1)`` (0 up to rounding)."""
        out = self(images, targets)
        logits = out.logits.numpy().astype(np.float64)
        return np.abs(logits - out.total().numpy()) / np.maximum(np.abs(logits), 1.0)

    def _batched(self, image_shape: tuple, dtype: tf.DType) -> Any:
        shapes = self._site_shapes(image_shape)
        spec = (
            tf.TensorSpec([], dtype),
            tf.TensorSpec([], tf.int32),
            tf.TensorSpec(image_shape, dtype),
            [tf.TensorSpec(s, dtype) for s in shapes],
        )

        def run(images: tf.Tensor, targets: tf.Tensor) -> Any:
            def chunk(index: tf.Tensor) -> Any:
                return self.terms(tf.gather(images, index), tf.gather(targets, index))

            return _batching.map_images(chunk, tf.shape(images)[0], self.batch_size, spec)

        return run

    def _site_shapes(self, image_shape: tuple) -> list[tuple]:
        if all(None not in site.shape for site in self.sites) and tuple(self.model.inputs[0].shape[1:]) == image_shape:
            return [site.shape for site in self.sites]
        hook = self._hook(symbolic=True)
        surgery.replay(self.model, keras.Input(image_shape, dtype=self.adapter.dtype), hook)
        return [site.shape for site, _, _ in hook.records]


def decompose(model: keras.Model, *, mode: str = "exact", batch_size: int = 32) -> Decomposition:
    """Build a reusable :class:`Decomposition` of `model`'s logits (see the module docstring).

    Example::

        d = tfxai.decompose(model)
        out = d(images)                       # targets=None: predicted classes
        out.logits, out.input_term, out.terms  # out.total() == out.logits
    """
    return Decomposition(model, mode=mode, batch_size=batch_size)
