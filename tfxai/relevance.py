"""Layer-wise relevance propagation (LRP): the rules and composites as rule tables.

LRP (Bach et al. 2015) explains the target logit ``f_t(x)`` by sending a
relevance ``R`` backwards through the network, layer by layer. The output
layer starts with ``R = one_hot(t) * logits``; a linear layer
``z_k = sum_j x_j w_jk + b_k`` hands its output relevance ``R_k`` to its
inputs ``R_j`` by a *rule*; elementwise activations pass it on unchanged.

As in Zennit (Anders et al. 2021), relevance flows **as the gradient**: every
layer is replayed (:func:`tfxai.surgery.replay`, the user's own layers and
variables) through a ``tf.custom_gradient`` op whose forward is the layer's
ordinary output (so the replayed logits equal the model's) and whose backward
maps the incoming ``R_out`` to ``R_in``: one modified backward pass. The
forward is recorded on a tape inside the op, so the backward only runs
vector-Jacobian products (the epsilon rule: one, on the layer's own forward).

Rules (``x`` the layer input, ``z = W x + b`` its output, ``R`` the
relevance at ``z``; ``x+ = max(x, 0)``, ``x- = min(x, 0)``, ``W+``/``W-``
likewise, ``stab(z) = z + s * sign(z)`` with ``sign(0) = +1``, Zennit's
stabiliser, ``s = 1e-6`` unless said; ``W^T v`` is the layer's transposed map)::

    epsilon   R_in = x * W^T (R / stab_eps(z))                     (eps -> 0: LRP-0)
    zplus     R_in = x+ * W+^T g + x- * W-^T g,   g = R / stab(W+ x+ + b+ + W- x-)
    alpha_beta R_in = alpha (x+ * W+^T gp + x- * W-^T gp) - beta (x+ * W-^T gn + x- * W+^T gn),
              gp = R / stab(W+ x+ + b+ + W- x-),  gn = R / stab(W- x+ + b- + W+ x-)
              (alpha - beta = 1; alpha=1, beta=0 is zplus)
    gamma     Wp = W + gamma W+, Wn = W + gamma W-, bp = b + gamma b+, bn = b + gamma b-;
              gp = [z > 0] R / stab(Wp x+ + bp + Wn x-),  gn = [z < 0] R / stab(Wn x+ + bn + Wp x-),
              R_in = x+ * (Wp^T gp + Wn^T gn) + x- * (Wn^T gp + Wp^T gn)
    zbox      R_in = x * W^T g - l * W+^T g - h * W-^T g,   g = R / stab(z - (W+ l + b+) - (W- h + b-))
              (l, h: the lowest and highest values the layer's input can take)
    flat      R_in = 1^T (R / stab(1^T 1))        (every weight 1, no bias: spread uniformly)
    wsquare   R_in = (W^2)^T (R / stab(W^2 1 + b^2))
              (a ZeroPadding2D feeding the convolution is part of it, as PyTorch pads inside the
              convolution: flat and wsquare count and feed only the real inputs)

These are Zennit's ``Epsilon``, ``ZPlus``, ``AlphaBeta``, ``Gamma``, ``ZBox``,
``Flat`` and ``WSquare`` term by term (the biases included or left out of each
denominator as Zennit's parameter modifiers do). The other layers:

* ``Add`` and average pooling (``AveragePooling2D``, ``GlobalAveragePooling2D``)
  get Zennit's ``Norm`` rule, ``R_in = x * J^T (R / stab(y))`` (the epsilon rule
  without parameters, ``s = 1e-6``): each summand gets its share of ``y``.
* ReLU and ReLU6 (``keras.layers.ReLU``, ``Activation("relu"|"relu6")``, a fused
  ``activation="relu"|"relu6"``) pass relevance unchanged (Zennit's ``Pass``).
* Max pooling, padding, flatten, reshape, concatenate, dropout and identity
  layers keep their ordinary gradient, which routes relevance without changing
  its total (max pooling: to the maximum).
* Leading preprocessing (``Rescaling``/``Normalization`` between the input and
  the first layer) passes relevance unchanged: the relevance of a preprocessed
  pixel is reported on the raw input pixel it comes from.
* ``BatchNormalization`` directly after a ``Conv2D``/``DepthwiseConv2D``/
  ``Dense`` without activation (and that layer's only consumer) is merged into
  it for the rule, as Zennit's ``MergeBatchNorm`` canonizer: ``W' = W s``,
  ``b' = (b - mean) s + beta`` with ``s = gamma / sqrt(var + eps)``, computed
  from the BN layer's live variables at every call (no weight copied or
  changed). Any other BatchNormalization is an elementwise affine layer
  (``W = diag(s)``) and gets the rule of the layers around it
  (``rule=``'s rule; the epsilon rule in composites, where Zennit's ``Pass``
  would silently drop the normalisation).
* Every other layer (swish, sigmoid, GELU, leaky ReLU, a Squeeze-Excitation
  ``Multiply``, LayerNormalization, a softmax inside the network, unknown
  layers) is refused with one :class:`~tfxai.errors.UnsupportedModelError`
  listing them all, read from the table and the graph before anything runs.

Conservation (``sum R_in == sum R_out``) holds for LRP-0 on bias-free layers,
zplus/alpha-beta/gamma when the biases are zero (on any inputs), zbox when the
input lies in its box and the biases are whatever (they cancel), flat always,
wsquare with zero biases, Norm and Pass always, up to the stabiliser. A bias
absorbs ``sum_k R_k b_k / z_k`` under epsilon (its share of ``z``).

Composites (Zennit's names, or snake case; Montavon et al. 2019, Sec. 10.2.2):

* ``epsilon_plus_flat`` (``EpsilonPlusFlat``): the first linear layer(s) flat,
  conv zplus, dense epsilon;
* ``epsilon_gamma_box`` (``EpsilonGammaBox``): the first convolution(s) zbox
  with the model's input range (:attr:`tfxai.adapter.ModelAdapter.input_range`,
  carried through the leading preprocessing to the convolution's input, per
  channel), conv gamma (0.25), dense epsilon;
* ``epsilon_alpha2_beta1`` (``EpsilonAlpha2Beta1``): conv alpha=2, beta=1, dense epsilon;
* ``epsilon_plus`` (``EpsilonPlus``): conv zplus, dense epsilon.

"Conv" is ``Conv2D`` and ``DepthwiseConv2D`` (a grouped convolution in
PyTorch); "dense" is ``Dense``. The *first* layers are the linear layers that
read the model's input through leading preprocessing, padding, identity,
flatten and reshape layers only (Zennit takes the first module registered;
the two agree on chains).

References:
    Bach, Binder, Montavon, Klauschen, Müller, Samek (2015), "On Pixel-Wise
    Explanations for Non-Linear Classifier Decisions by Layer-Wise Relevance
    Propagation", PLOS ONE 10(7).
    Montavon, Binder, Lapuschkin, Samek, Müller (2019), "Layer-Wise Relevance
    Propagation: An Overview", in Explainable AI, LNCS 11700.
    Anders, Neumann, Samek, Müller, Lapuschkin (2021), "Software for Dataset-wide
    XAI: From Local Explanations to Global Insights with Zennit, CoRelAy, and
    ViRelAy", arXiv:2106.13200.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import keras
import tensorflow as tf

from tfxai import _keras_graph, surgery
from tfxai.errors import InvalidInputError, InvalidTypeError, UnsupportedModelError

#: Zennit's default stabiliser of every rule but epsilon.
STABILIZER = 1e-6

LINEAR_LAYERS = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.Dense)
CONV_LAYERS = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)
PREPROCESSING = (keras.layers.Rescaling, keras.layers.Normalization)
AVERAGE_POOLING = (keras.layers.AveragePooling2D, keras.layers.GlobalAveragePooling2D)
#: Layers whose ordinary gradient routes relevance without changing its total.
GRADIENT_LAYERS: tuple = tuple(
    getattr(keras.layers, name)
    for name in ("InputLayer", "MaxPooling2D", "GlobalMaxPooling2D", "ZeroPadding2D", "Cropping2D", "Flatten",
                 "Reshape", "Concatenate")
    if hasattr(keras.layers, name)
) + surgery.IDENTITY_LAYERS
#: Layers the first-layer walk passes through (the box bounds are carried through them).
_LEADING = PREPROCESSING + (keras.layers.ZeroPadding2D, keras.layers.Flatten, keras.layers.Reshape)
_RELUS = ("relu", "relu6")


def stabilize(z: tf.Tensor, epsilon: float) -> tf.Tensor:
    """``z + epsilon * sign(z)`` with ``sign(0) = +1`` (Zennit's ``Stabilizer``)."""
    return z + tf.where(z >= 0, tf.constant(epsilon, z.dtype), tf.constant(-epsilon, z.dtype))


# ---------------------------------------------------------------------- affine layers
class Affine:
    """A linear layer (and the BatchNormalization merged into it) as ``y = A(x; W) + b``.

    ``apply(x, W)`` is the layer's linear map with any kernel of its shape;
    :meth:`params` gives the effective ``(W, b)`` read from the live variables
    now (the merged BN folded in). Nothing is copied or assigned.
    """

    def __init__(self, layer: Any, bn: Any = None, padding: Any = None):
        self.layer = layer.source if isinstance(layer, surgery.LinearView) else layer
        self.bn = bn
        self.padding = padding  # a ZeroPadding2D feeding the layer (part of the convolution, as in PyTorch)

    def ones(self, x: tf.Tensor) -> tf.Tensor:
        """Ones at the real inputs of `x`, zeros where a ZeroPadding2D before the layer padded (Zennit's convention:
        PyTorch pads inside the convolution, so the flat and w^2 rules never count padded positions)."""
        if self.padding is None:
            return tf.ones_like(x)
        (top, bottom), (left, right) = self.padding.padding
        shape = tf.shape(x)
        inner = tf.ones([shape[0], shape[1] - top - bottom, shape[2] - left - right, shape[3]], x.dtype)
        return tf.pad(inner, [[0, 0], [top, bottom], [left, right], [0, 0]])

    def apply(self, x: tf.Tensor, kernel: tf.Tensor) -> tf.Tensor:
        layer = self.layer
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            return keras.ops.depthwise_conv(x, kernel, strides=layer.strides, padding=layer.padding,
                                            dilation_rate=layer.dilation_rate, data_format=layer.data_format)
        if isinstance(layer, keras.layers.Conv2D):
            return keras.ops.conv(x, kernel, strides=list(layer.strides), padding=layer.padding,
                                  dilation_rate=layer.dilation_rate, data_format=layer.data_format)
        if isinstance(layer, keras.layers.Dense):
            return keras.ops.matmul(x, kernel)
        return x * kernel  # BatchNormalization: a diagonal map

    def params(self, dtype: tf.DType) -> tuple[tf.Tensor, tf.Tensor]:
        """The effective ``(W, b)`` in `dtype` (BN folded in; ``b = 0`` without a bias)."""
        layer = self.layer
        if isinstance(layer, keras.layers.BatchNormalization):
            return batch_norm_affine(layer, dtype)
        kernel = tf.cast(tf.convert_to_tensor(layer.kernel), dtype)
        bias = getattr(layer, "bias", None)
        channels = kernel.shape[-1] * (kernel.shape[-2] if isinstance(layer, keras.layers.DepthwiseConv2D) else 1)
        bias = tf.zeros([channels], dtype) if bias is None else tf.cast(tf.convert_to_tensor(bias), dtype)
        if self.bn is None:
            return kernel, bias
        scale, shift = batch_norm_affine(self.bn, dtype)
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            kernel = kernel * tf.reshape(scale, kernel.shape[-2:])
        else:
            kernel = kernel * scale
        return kernel, bias * scale + shift

    def forward(self, x: tf.Tensor, kernel: tf.Tensor, bias: tf.Tensor | None) -> tf.Tensor:
        out = self.apply(x, kernel)
        return out if bias is None else out + bias


def batch_norm_affine(layer: Any, dtype: tf.DType) -> tuple[tf.Tensor, tf.Tensor]:
    """``(s, t)`` with ``BN(x) = s x + t`` at inference: ``s = gamma / sqrt(var + eps)``, ``t = beta - mean s``."""
    mean = tf.cast(tf.convert_to_tensor(layer.moving_mean), dtype)
    var = tf.cast(tf.convert_to_tensor(layer.moving_variance), dtype)
    scale = tf.math.rsqrt(var + tf.cast(layer.epsilon, dtype))
    if layer.scale:
        scale = scale * tf.cast(tf.convert_to_tensor(layer.gamma), dtype)
    shift = -mean * scale
    if layer.center:
        shift = shift + tf.cast(tf.convert_to_tensor(layer.beta), dtype)
    return scale, shift


# ---------------------------------------------------------------------- the rules
class LinearRule:
    """An LRP rule for affine layers: ``relevance(affine, x, y, R, bounds) -> R_in``.

    `x` is the layer's input and `y` its ordinary output, both recorded on
    `tape` (the op's own tape: the epsilon rule takes its vector-Jacobian
    product there, the others record their modified forwards in :meth:`prepare`).
    """

    name = ""
    needs_bounds = False

    def prepare(self, affine: Affine, x: tf.Tensor, y: tf.Tensor, bounds: Any, tape: Any = None) -> Any:
        """The modified forwards (recorded on the op's tape, before the backward pass)."""
        return None

    def backward(self, tape: tf.GradientTape, affine: Affine, x: tf.Tensor, y: tf.Tensor, state: Any,
                 relevance: tf.Tensor) -> tf.Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({params})"


class Epsilon(LinearRule):
    """``R_in = x * W^T (R / (z + eps sign(z)))``, one vector-Jacobian product on the layer's own forward."""

    name = "epsilon"

    def __init__(self, epsilon: float = 1e-6):
        self.epsilon = float(epsilon)

    def backward(self, tape, affine, x, y, state, relevance):
        return x * tape.gradient(y, x, output_gradients=relevance / stabilize(y, self.epsilon))


def _signed_parts(x: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    return tf.nn.relu(x), tf.minimum(x, tf.zeros_like(x))


class AlphaBeta(LinearRule):
    """Zennit's ``AlphaBeta``: positive and negative contributions weighted by alpha and beta (alpha - beta = 1)."""

    name = "alpha_beta"

    def __init__(self, alpha: float = 2.0, beta: float = 1.0, stabilizer: float = STABILIZER):
        self.alpha, self.beta, self.stabilizer = float(alpha), float(beta), float(stabilizer)

    def prepare(self, affine, x, y, bounds, tape=None):
        kernel, bias = affine.params(x.dtype)
        xp, xn = _signed_parts(x)
        wp, wn = _signed_parts(kernel)
        bp, bn = _signed_parts(bias)
        outs = [affine.forward(xp, wp, bp), affine.apply(xn, wn)]
        if self.beta != 0:
            outs += [affine.forward(xp, wn, bn), affine.apply(xn, wp)]
        return xp, xn, outs

    def backward(self, tape, affine, x, y, state, relevance):
        xp, xn, outs = state
        gp = self.alpha * relevance / stabilize(outs[0] + outs[1], self.stabilizer)
        grads = [gp, gp]
        if self.beta != 0:
            gn = -self.beta * relevance / stabilize(outs[2] + outs[3], self.stabilizer)
            grads += [gn, gn]
        dp, dn = tape.gradient(outs, [xp, xn], output_gradients=grads)
        return xp * dp + xn * dn


class ZPlus(AlphaBeta):
    """Zennit's ``ZPlus``: alpha=1, beta=0 (positive contributions only; the positive bias in the denominator)."""

    name = "zplus"

    def __init__(self, stabilizer: float = STABILIZER):
        super().__init__(1.0, 0.0, stabilizer)

    def __repr__(self) -> str:
        return f"ZPlus(stabilizer={self.stabilizer!r})"


class Gamma(LinearRule):
    """Zennit's generalised ``Gamma``: positive weights (of the sign of z) amplified by gamma."""

    name = "gamma"

    def __init__(self, gamma: float = 0.25, stabilizer: float = STABILIZER):
        self.gamma, self.stabilizer = float(gamma), float(stabilizer)

    def prepare(self, affine, x, y, bounds, tape=None):
        kernel, bias = affine.params(x.dtype)
        xp, xn = _signed_parts(x)
        wpos, wneg = _signed_parts(kernel)
        bpos, bneg = _signed_parts(bias)
        wp, wn = kernel + self.gamma * wpos, kernel + self.gamma * wneg
        bp, bn = bias + self.gamma * bpos, bias + self.gamma * bneg
        outs = [affine.forward(xp, wp, bp), affine.apply(xn, wn), affine.forward(xp, wn, bn), affine.apply(xn, wp)]
        return xp, xn, outs

    def backward(self, tape, affine, x, y, state, relevance):
        xp, xn, outs = state
        zero = tf.zeros_like(relevance)
        gp = tf.where(y > 0, relevance / stabilize(outs[0] + outs[1], self.stabilizer), zero)
        gn = tf.where(y < 0, relevance / stabilize(outs[2] + outs[3], self.stabilizer), zero)
        dp, dn = tape.gradient(outs, [xp, xn], output_gradients=[gp, gp, gn, gn])
        return xp * dp + xn * dn


class ZBox(LinearRule):
    """Zennit's ``ZBox`` (z^B): for inputs bounded by ``low <= x <= high`` (the first layer)."""

    name = "zbox"
    needs_bounds = True

    def __init__(self, stabilizer: float = STABILIZER):
        self.stabilizer = float(stabilizer)

    def prepare(self, affine, x, y, bounds, tape=None):
        if bounds is None:
            raise UnsupportedModelError("The zbox rule is only defined on the first layer (it needs input bounds).")
        low, high = (tf.broadcast_to(tf.cast(b, x.dtype), tf.shape(x)) for b in bounds)
        kernel, bias = affine.params(x.dtype)
        wp, wn = _signed_parts(kernel)
        bp, bn = _signed_parts(bias)
        return low, high, [affine.forward(low, wp, bp), affine.forward(high, wn, bn)]

    def backward(self, tape, affine, x, y, state, relevance):
        low, high, (out_low, out_high) = state
        g = relevance / stabilize(y - out_low - out_high, self.stabilizer)
        dx, dl, dh = tape.gradient([y, out_low, out_high], [x, low, high], output_gradients=[g, g, g])
        return x * dx - low * dl - high * dh


class Flat(LinearRule):
    """Zennit's ``Flat``: every weight 1, no bias; relevance spread uniformly over the receptive field."""

    name = "flat"

    def __init__(self, stabilizer: float = STABILIZER):
        self.stabilizer = float(stabilizer)

    def _kernel(self, affine: Affine, dtype: tf.DType) -> tf.Tensor:
        kernel, _ = affine.params(dtype)
        return tf.ones_like(kernel)

    def _bias(self, affine: Affine, dtype: tf.DType) -> Any:
        return None

    def prepare(self, affine, x, y, bounds, tape=None):
        ones = affine.ones(x)
        tape.watch(ones)
        return ones, affine.forward(ones, self._kernel(affine, x.dtype), self._bias(affine, x.dtype))

    def backward(self, tape, affine, x, y, state, relevance):
        ones, out = state
        return ones * tape.gradient(out, ones, output_gradients=relevance / stabilize(out, self.stabilizer))


class WSquare(Flat):
    """Zennit's ``WSquare``: weights squared (bias squared too, in the denominator), inputs 1."""

    name = "wsquare"

    def _kernel(self, affine, dtype):
        return tf.square(affine.params(dtype)[0])

    def _bias(self, affine, dtype):
        return tf.square(affine.params(dtype)[1])


# ---------------------------------------------------------------------- the ops
def linear_op(rule: LinearRule, affine: Affine, forward: Callable[[tf.Tensor], tf.Tensor],
              bounds: Callable[[], Any] | None = None) -> Callable[[tf.Tensor], tf.Tensor]:
    """A ``tf.custom_gradient`` op: forward ``forward(x)`` (the layer's own output), backward ``R_out -> R_in``
    by `rule` (vector-Jacobian products on the tape recorded in the forward)."""

    @tf.custom_gradient
    def op(x: tf.Tensor) -> Any:
        box = bounds() if (bounds is not None and rule.needs_bounds) else None
        with tf.GradientTape(persistent=False) as tape:
            tape.watch(x)
            if box is not None:
                box = tuple(tf.broadcast_to(tf.cast(b, x.dtype), tf.shape(x)) for b in box)
                for b in box:
                    tape.watch(b)
            y = forward(x)
            state = rule.prepare(affine, x, y, box, tape)

        def backward(relevance: tf.Tensor, variables: Any = None) -> Any:
            r_in = rule.backward(tape, affine, x, y, state, tf.cast(relevance, y.dtype))
            return tf.cast(r_in, x.dtype), [None] * len(variables or [])

        return tf.identity(y), backward

    return op


def norm_op(forward: Callable[..., tf.Tensor], stabilizer: float = STABILIZER) -> Callable[..., tf.Tensor]:
    """Zennit's ``Norm`` (Add, average pooling): ``R_in = x * J^T (R / stab(y))`` for every input."""

    @tf.custom_gradient
    def op(*xs: tf.Tensor) -> Any:
        with tf.GradientTape() as tape:
            for x in xs:
                tape.watch(x)
            y = forward(*xs)

        def backward(relevance: tf.Tensor, variables: Any = None) -> Any:
            grads = tape.gradient(y, list(xs), output_gradients=relevance / stabilize(y, stabilizer))
            r_in = [x * g for x, g in zip(xs, grads)]
            return (r_in if len(xs) > 1 else r_in[0]), [None] * len(variables or [])

        return tf.identity(y), backward

    return op


def pass_op(forward: Callable[[tf.Tensor], tf.Tensor]) -> Callable[[tf.Tensor], tf.Tensor]:
    """Zennit's ``Pass``: forward as usual, relevance passed on unchanged (same shape)."""

    @tf.custom_gradient
    def op(x: tf.Tensor) -> Any:
        y = forward(x)

        def backward(relevance: tf.Tensor, variables: Any = None) -> Any:
            return tf.cast(relevance, x.dtype), [None] * len(variables or [])

        return tf.identity(y), backward

    return op


# ---------------------------------------------------------------------- the plan: which rule where
class Plan(NamedTuple):
    """Where each rule applies, read from the graph once.

    Attributes:
        rules: ``id(layer) -> LinearRule`` for every linear layer and unmerged BatchNormalization.
        merged: ``id(linear layer) -> BatchNormalization`` merged into it.
        padded: ``id(conv layer) -> ZeroPadding2D`` that alone feeds it (the flat and w^2 rules skip the padding).
        merged_bn: ids of the merged BatchNormalization layers.
        preprocessing: ids of the leading preprocessing layers (relevance passed unchanged).
        first: paths of the first linear layers.
        chain: the layers from the input to the first layers' input (the box bounds go through them).
        assignment: ``[(path, rule name)]`` of the linear layers, for display.
        unreachable: the path of the first layer the box rule would need but whose input bounds are unknown
            (a layer other than preprocessing/padding/flatten/reshape lies before it), else None.
    """

    rules: dict
    merged: dict
    padded: dict
    merged_bn: set
    preprocessing: set
    first: list
    chain: list
    assignment: list
    unreachable: str | None = None


def _fused_kind(layer: Any) -> str | None:
    return surgery.activation_kind(layer)


def merged_batch_norms(graph: surgery.ModelGraph, strip: Any = None) -> dict:
    """``id(linear) -> BN`` for each BatchNormalization right after an activation-free Conv/Depthwise/Dense,
    the sole consumer of its output, both called once (Zennit's ``MergeBatchNorm``)."""
    counts: dict = {}
    for call in graph.calls:
        counts[id(call.layer)] = counts.get(id(call.layer), 0) + 1
    merged = {}
    for call in graph.calls:
        if not isinstance(call.layer, keras.layers.BatchNormalization) or len(call.inputs) != 1:
            continue
        producer = graph.producer(call.inputs[0])
        if producer is None or not isinstance(producer.layer, LINEAR_LAYERS) or producer.layer is strip:
            continue
        if _fused_kind(producer.layer) != "linear" or len(graph.consumers(call.inputs[0])) != 1:
            continue
        if counts[id(producer.layer)] != 1 or counts[id(call.layer)] != 1 or not _bn_channels_last(call.layer):
            continue
        merged[id(producer.layer)] = call.layer
    return merged


def _bn_channels_last(layer: Any) -> bool:
    axis = layer.axis if isinstance(layer.axis, int) else (layer.axis[0] if len(layer.axis) == 1 else None)
    return axis == -1 or (axis is not None and layer.input.shape is not None and axis == len(layer.input.shape) - 1)


def leading(graph: surgery.ModelGraph) -> tuple[list, list, list]:
    """``(preprocessing calls, chain calls, first linear calls)`` read from the input.

    The walk follows the model's input through a single chain of identity,
    ``Rescaling``/``Normalization``, ``ZeroPadding2D``, ``Flatten`` and ``Reshape``
    layers; the first layers are the Conv/Depthwise/Dense layers reading a value
    of that chain. Preprocessing counts only before the first padding/flatten.
    """
    if len(graph.inputs) != 1:
        return [], [], []
    value, chain, first = graph.inputs[0], [], []
    preprocessing = []
    while True:
        consumers = graph.consumers(value)
        first.extend(c for c in consumers if isinstance(c.layer, LINEAR_LAYERS))
        passing = [c for c in consumers if isinstance(c.layer, _LEADING) or surgery.is_identity(c.layer)]
        if len(consumers) != 1 or len(passing) != 1 or len(passing[0].outputs) != 1:
            break
        call = passing[0]
        chain.append(call)
        if isinstance(call.layer, PREPROCESSING) and all(
            isinstance(c.layer, PREPROCESSING) or surgery.is_identity(c.layer) for c in chain
        ):
            preprocessing.append(call)
        value = call.outputs[0]
    return preprocessing, chain, first


# ---------------------------------------------------------------------- rules by name, composites
def _key(text: str) -> str:
    return str(text).strip().lower().replace("_", "").replace("-", "").replace(" ", "")


#: Rule names (``rule=``) and their accepted spellings (case, ``_`` and ``-`` ignored).
RULE_NAMES = {
    "epsilon": ("epsilon", "lrp0", "lrpepsilon", "z"),
    "zplus": ("zplus", "alpha1beta0", "plus"),
    "alpha_beta": ("alphabeta",),
    "gamma": ("gamma",),
    "zbox": ("zbox", "box", "zb"),
    "flat": ("flat",),
    "wsquare": ("wsquare", "w2", "wsquared"),
}
#: Composite names (``composite=``), Zennit's class names accepted.
COMPOSITE_NAMES = {
    "epsilon_plus_flat": ("epsilonplusflat",),
    "epsilon_gamma_box": ("epsilongammabox",),
    "epsilon_alpha2_beta1": ("epsilonalpha2beta1",),
    "epsilon_plus": ("epsilonplus",),
}


def _lookup(text: Any, table: dict, what: str) -> str:
    if not isinstance(text, str):
        raise InvalidTypeError(f"`{what}` must be a string, one of {list(table)}. Received: {what}={text!r}.")
    key = _key(text)
    for name, spellings in table.items():
        if key == _key(name) or key in spellings:
            return name
    raise InvalidInputError(f"Unknown LRP {what} {text!r}. Choose from: {', '.join(table)}.")


def rule_name(text: Any) -> str:
    """The canonical name of a rule (``"ZPlus"``, ``"z_plus"``, ``"alpha1beta0"`` -> ``"zplus"``)."""
    return _lookup(text, RULE_NAMES, "rule")


def composite_name(text: Any) -> str:
    """The canonical name of a composite (``"EpsilonPlusFlat"`` -> ``"epsilon_plus_flat"``)."""
    return _lookup(text, COMPOSITE_NAMES, "composite")


class Settings(NamedTuple):
    """What :func:`plan` assigns: ``first`` (first linear layers), ``conv``, ``dense``, ``other`` (unmerged BN)."""

    first: LinearRule | None
    first_conv_only: bool
    conv: LinearRule
    dense: LinearRule
    other: LinearRule


def settings(rule: str | None, composite: str | None, *, epsilon: float, gamma: float, alpha: float,
             beta: float) -> Settings:
    """The rules of a single `rule` or a named `composite` (names already canonical)."""
    eps = Epsilon(epsilon)
    if composite == "epsilon_plus_flat":
        return Settings(Flat(), False, ZPlus(), eps, eps)
    if composite == "epsilon_gamma_box":
        return Settings(ZBox(), True, Gamma(gamma), eps, eps)
    if composite == "epsilon_alpha2_beta1":
        return Settings(None, False, AlphaBeta(2.0, 1.0), eps, eps)
    if composite == "epsilon_plus":
        return Settings(None, False, ZPlus(), eps, eps)
    one = {
        "epsilon": eps, "zplus": ZPlus(), "alpha_beta": AlphaBeta(alpha, beta), "gamma": Gamma(gamma),
        "flat": Flat(), "wsquare": WSquare(),
    }.get(rule)
    if rule == "zbox":  # the box needs bounds: the first layers only, epsilon elsewhere
        return Settings(ZBox(), False, eps, eps, eps)
    return Settings(None, False, one, one, one)


def plan(graph: surgery.ModelGraph, chosen: Settings, strip: Any = None) -> Plan:
    """Assign a rule to every linear layer of `graph` (first layers, conv, dense, unmerged BN)."""
    merged = merged_batch_norms(graph, strip)
    merged_bn = {id(bn) for bn in merged.values()}
    pre, chain, first_calls = leading(graph)
    if chosen.first_conv_only:
        first_calls = [c for c in first_calls if isinstance(c.layer, CONV_LAYERS)]
    unreachable = None
    if chosen.first is not None and not first_calls:
        # nothing reads the input directly: Zennit's convention, the first such layer in execution order
        kinds = CONV_LAYERS if chosen.first_conv_only else LINEAR_LAYERS
        candidates = [c for c in graph.calls if isinstance(c.layer, kinds) and c.layer is not strip]
        if candidates and chosen.first.needs_bounds:
            unreachable = candidates[0].path  # no bounds there: refused by the explainer
        elif candidates:
            first_calls = candidates[:1]
    first_ids = {id(c.layer) for c in first_calls} if chosen.first is not None else set()
    rules, assignment = {}, []
    for call in graph.calls:
        layer = call.layer
        if id(layer) in rules:
            continue
        if isinstance(layer, LINEAR_LAYERS):
            rule = (chosen.first if id(layer) in first_ids
                    else chosen.conv if isinstance(layer, CONV_LAYERS) else chosen.dense)
        elif isinstance(layer, keras.layers.BatchNormalization) and id(layer) not in merged_bn:
            rule = chosen.other
        else:
            continue
        rules[id(layer)] = rule
        note = f" + {merged[id(layer)].name}" if id(layer) in merged else ""
        assignment.append((call.path + note, repr(rule)))
    padded = {}
    for call in graph.calls:
        if isinstance(call.layer, CONV_LAYERS) and len(call.inputs) == 1:
            producer = graph.producer(call.inputs[0])
            if producer is not None and isinstance(producer.layer, keras.layers.ZeroPadding2D) \
                    and len(graph.consumers(call.inputs[0])) == 1:
                padded[id(call.layer)] = producer.layer
    first = [c.path for c in first_calls if id(c.layer) in first_ids]
    return Plan(rules, merged, padded, merged_bn, {id(c.layer) for c in pre}, first,
                chain, assignment, unreachable)


# ---------------------------------------------------------------------- the table
class Context:
    """What the rules read during one replay: the plan, and the images (for the box bounds)."""

    def __init__(self, plan: Plan, input_range: tuple, images: tf.Tensor | None = None):
        self.plan = plan
        self.input_range = input_range
        self.images = images

    def bounds(self) -> tuple[tf.Tensor, tf.Tensor]:
        """``(low, high)`` at the first layers' input: the input range carried through the leading chain."""
        low, high = self.input_range
        shape = tf.shape(self.images[:1])
        ends = [tf.fill(shape, tf.constant(v, self.images.dtype)) for v in (low, high)]
        for call in self.plan.chain:
            kwargs = {"training": False} if _keras_graph.takes_training(call.layer) else {}
            ends = [tf.cast(call.layer(e, **kwargs), self.images.dtype) for e in ends]
        return tf.minimum(ends[0], ends[1]), tf.maximum(ends[0], ends[1])


def _source(layer: Any) -> Any:
    return layer.source if isinstance(layer, surgery.LinearView) else layer


def _apply_linear(call: surgery.Call) -> Any:
    """A Conv/Depthwise/Dense (or the stripped final layer): its rule on ``z``; a merged BN is part of the op;
    a fused ReLU/ReLU6 passes relevance on."""
    context: Context = call.context
    layer = _source(call.layer)
    rule = context.plan.rules[id(layer)]
    bn = context.plan.merged.get(id(layer))
    stripped = isinstance(call.layer, surgery.LinearView)
    kind = "linear" if stripped else surgery.activation_kind(layer)

    def forward(x: tf.Tensor) -> tf.Tensor:
        z = call.run(x) if kind == "linear" else call.linear(x)
        return bn(z, training=False) if bn is not None else z

    y = linear_op(rule, Affine(layer, bn, context.plan.padded.get(id(layer))), forward, context.bounds)(call.args[0])
    if kind == "linear":
        return y
    return pass_op(layer.activation)(y)


def _apply_batch_norm(call: surgery.Call) -> Any:
    """An unmerged BatchNormalization: an elementwise affine layer with its rule."""
    rule = call.context.plan.rules[id(call.layer)]
    return linear_op(rule, Affine(call.layer), lambda x: call.run(x))(call.args[0])


def _apply_identity(call: surgery.Call) -> Any:
    """A merged BatchNormalization: its input is already the BN's output (the linear layer's op computed it)."""
    return call.args[0]


def _apply_pass(call: surgery.Call) -> Any:
    """ReLU/ReLU6 layers, ``Activation("relu"|"relu6")``, leading preprocessing: relevance unchanged."""
    return pass_op(lambda x: call.run(x))(call.args[0])


def _apply_norm(call: surgery.Call) -> Any:
    """``Add`` and average pooling: Zennit's ``Norm`` rule."""
    if isinstance(call.layer, keras.layers.Add):
        inputs = list(call.args[0])
        return norm_op(lambda *xs: call.layer(list(xs), **call.kwargs), STABILIZER)(*inputs)
    return norm_op(lambda x: call.run(x), STABILIZER)(call.args[0])


def _apply_refused(call: surgery.Call) -> Any:
    raise UnsupportedModelError(f"LRP has no rule for layer {call.path!r} ({type(call.layer).__name__}).",
                                layers=[call.path])


def _is_relu(layer: Any) -> bool:
    if isinstance(layer, keras.layers.ReLU):
        return surgery.activation_kind(layer) in _RELUS
    return isinstance(layer, keras.layers.Activation) and surgery.activation_kind(layer) in _RELUS


def _is_linear(layer: Any) -> bool:
    if isinstance(layer, surgery.LinearView):
        return isinstance(layer.source, LINEAR_LAYERS)
    return isinstance(layer, LINEAR_LAYERS) and surgery.activation_kind(layer) in ("linear", *_RELUS)


def rule_table(plan: Plan) -> list:
    """LRP's rule table for :class:`tfxai.surgery.Rules` (first match wins, as Zennit's layer maps).

    ``call.context`` is a :class:`Context`. The last entry refuses every layer
    the others do not cover (:func:`unsupported_layers` reads the same table).
    """
    return [
        (lambda layer: id(layer) in plan.preprocessing, _apply_pass),
        (lambda layer: id(layer) in plan.merged_bn, _apply_identity),
        (_is_linear, _apply_linear),
        (lambda layer: isinstance(layer, keras.layers.BatchNormalization) and _bn_channels_last(layer),
         _apply_batch_norm),
        ((keras.layers.Add,) + AVERAGE_POOLING, _apply_norm),
        (_is_relu, _apply_pass),
        (GRADIENT_LAYERS, surgery.run_layer),
        (surgery.any_layer, _apply_refused),
    ]


def unsupported_layers(graph: surgery.ModelGraph, plan: Plan, strip: Any = None) -> list[str]:
    """Paths of every layer of `graph` LRP has no rule for (read from the table; nothing is evaluated).

    `strip` is the final layer whose output activation the logits graph removes
    (its softmax/sigmoid is not refused). A fused activation other than
    ReLU/ReLU6 names the layer with ``"/activation"``.
    """
    table = rule_table(plan)
    names = []
    for call in graph.calls:
        layer = call.layer
        if layer is strip:
            if isinstance(layer, (keras.layers.Softmax, keras.layers.Activation)) or isinstance(layer, LINEAR_LAYERS):
                continue
        rule = surgery.first_match(table, layer)
        if rule is _apply_refused:
            if isinstance(layer, LINEAR_LAYERS):
                names.append(call.path + "/activation")
            else:
                names.append(call.path)
    return names


__all__ = [
    "Affine", "AlphaBeta", "Context", "Epsilon", "Flat", "Gamma", "LinearRule", "Plan", "Settings", "WSquare",
    "ZBox", "ZPlus", "composite_name", "linear_op", "norm_op", "pass_op", "plan", "rule_name", "rule_table",
    "settings", "stabilize", "unsupported_layers",
]
