"""Guided Backpropagation and Guided Grad-CAM.

Guided Backpropagation (Springenberg et al. 2015) is the input gradient with
every ReLU's backward pass changed: the gradient passes only where the ReLU's
input is positive (its ordinary derivative) *and* the incoming gradient is
positive::

    forward:   y = relu(u)                       (unchanged)
    backward:  du = relu'(u) * max(dy, 0)        (plain backprop: relu'(u) * dy)

For a ReLU6 / ``ReLU(max_value=m)`` the ordinary derivative is ``0 < u < m``,
so the guided gradient passes where ``0 < u < m`` and ``dy > 0``. In general
the guided backward of a ReLU-family activation ``f`` is ``f'(u) * max(dy, 0)``
with ``f'`` TensorFlow's own derivative of the layer.

tfxai replays the model's graph (:func:`tfxai.surgery.replay`) on the
adapter's logits graph with every ReLU replaced by such a guided op
(`tf.custom_gradient`), calling the user's own layers: no weight is copied and
the user's model is untouched. ReLUs are found in every form: a fused
``activation="relu"``/``"relu6"`` in a Conv/Dense layer (called through
:func:`tfxai.surgery.linear_view`, then the guided activation),
``keras.layers.ReLU`` (any ``max_value``, ``threshold``, ``negative_slope``)
and ``keras.layers.Activation("relu" | "relu6")``. Other activations (swish,
GELU, ...) keep their ordinary gradient, as in xplique and Captum.

The replacement is the three-entry rule table :data:`RULES` (first match
wins, :class:`tfxai.surgery.Rules`), Zennit's one-entry guided-backprop layer
map written for the three Keras forms of a ReLU.

The attributions ``(N, H, W, C)`` are the guided gradients, signed; the map is
their mean over channels (xplique's default ``reducer="mean"``). Captum's
``GuidedBackprop`` returns the same attributions (no reduction).
"""

from __future__ import annotations

import warnings
from typing import Any, Callable

import keras
import tensorflow as tf

from tfxai import _batching, surgery
from tfxai.explainers.base import AttributionExplainer

_RELUS = ("relu", "relu6")


def guided(fn: Callable[[tf.Tensor], tf.Tensor]) -> Callable[[tf.Tensor], tf.Tensor]:
    """The elementwise activation `fn` with the guided backward ``fn'(u) * max(dy, 0)``."""

    @tf.custom_gradient
    def op(u: tf.Tensor) -> Any:
        with tf.GradientTape() as tape:
            tape.watch(u)
            y = fn(u)

        def backward(dy: tf.Tensor) -> tf.Tensor:
            return tape.gradient(y, u, output_gradients=tf.nn.relu(dy))

        return tf.identity(y), backward

    return op


def relu_form(layer: Any) -> str | None:
    """How `layer` applies a ReLU: ``"layer"`` (keras ReLU), ``"activation"``, ``"fused"`` or None."""
    if isinstance(layer, keras.layers.ReLU):
        return "layer"
    if isinstance(layer, keras.Model):
        return None
    if surgery.activation_kind(layer) not in _RELUS:
        return None
    return "activation" if isinstance(layer, keras.layers.Activation) else "fused"


def _is_relu_activation(layer: Any) -> bool:
    return relu_form(layer) == "activation"


def _has_fused_relu(layer: Any) -> bool:
    return relu_form(layer) == "fused"


def _guided_relu_layer(call: surgery.Call) -> tf.Tensor:
    layer = call.layer
    relu = lambda u: keras.activations.relu(  # noqa: E731 - the layer's own function
        u, negative_slope=layer.negative_slope, max_value=layer.max_value, threshold=layer.threshold
    )
    return guided(relu)(call.args[0])


def _guided_activation(call: surgery.Call) -> tf.Tensor:
    return guided(call.layer.activation)(call.args[0])


def _guided_fused(call: surgery.Call) -> tf.Tensor:
    return guided(call.layer.activation)(call.linear())


#: Guided backprop's rule table (:class:`tfxai.surgery.Rules`, first match wins): every ReLU form gets
#: the guided backward pass; every other layer runs as usual.
RULES: list = [
    (keras.layers.ReLU, _guided_relu_layer),
    (_is_relu_activation, _guided_activation),
    (_has_fused_relu, _guided_fused),
]


class GuidedHook(surgery.Rules):
    """A :func:`tfxai.surgery.replay` hook that runs every ReLU with the guided backward pass (:data:`RULES`)."""

    def __init__(self, views: dict):
        super().__init__(RULES, views=views)  # id(layer) -> linear view, shared between calls


class GuidedBackprop(AttributionExplainer):
    """Guided Backpropagation: the input gradient through guided ReLUs (see the module docstring).

    Args:
        model: the classifier (see :class:`~tfxai.explainers.base.Explainer`).
        output: ``"logit"`` (default: the target's pre-softmax logit, as
            xplique recommends and pytorch-grad-cam does) or ``"probability"``.
        batch_size: images per gradient pass.

    Attributes:
        guided_layers: paths of the layers whose ReLU is guided.

    References:
        Springenberg, Dosovitskiy, Brox, Riedmiller (2015), "Striving for
        Simplicity: The All Convolutional Net", ICLR workshop, arXiv:1412.6806.
    """

    name = "guidedbackprop"
    title = "Guided Backprop"
    signed = True
    aliases = ("guided_backpropagation", "guided_backprop", "gbp")

    def __init__(self, model: Any, *, output: str = "logit", batch_size: int = 32, seed: int | None = None):
        super().__init__(model, output=output, batch_size=batch_size, seed=seed)
        self._graph = self.adapter.exposed([])  # images -> raw logits, the user's layers
        self._views: dict = {}
        # paths as the user's model names them; only layers on the way to the logits (a stripped final layer
        # runs as its LinearView, the layers after a `logits_layer=` not at all)
        used = {id(c.layer) for c in surgery.read_graph(self._graph).calls}
        self.guided_layers = [c.path for c in self.adapter.graph.calls if relu_form(c.layer) and id(c.layer) in used]
        if not self.guided_layers:
            warnings.warn(
                f"Model {self.adapter.name!r} has no ReLU (fused, ReLU layer or Activation('relu'/'relu6')): "
                "Guided Backprop equals the plain input gradient on it.",
                UserWarning,
                stacklevel=2,
            )

    def guided_logits(self, images: tf.Tensor) -> tf.Tensor:
        """Class logits through the guided graph (same values as :meth:`logits`, guided gradients)."""
        raw = surgery.replay(self._graph, images, GuidedHook(self._views))
        return self.adapter.class_logits(raw)

    def attribute_batch(self, images: tf.Tensor, targets: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        def chunk(index: tf.Tensor) -> tf.Tensor:
            x = tf.gather(images, index)
            with tf.GradientTape() as tape:
                tape.watch(x)
                scores = self.scores(self.guided_logits(x), tf.gather(targets, index))
            return tape.gradient(scores, x)

        spec = tf.TensorSpec(images.shape[1:], images.dtype)
        return _batching.map_images(chunk, tf.shape(images)[0], self.batch_size, spec)

    def reduce_channels(self, attributions: tf.Tensor) -> tf.Tensor:
        return tf.reduce_mean(attributions, axis=-1)


class GuidedGradCAM(AttributionExplainer):
    """Guided Grad-CAM: Guided Backprop attributions times the upsampled Grad-CAM map.

    ``a = GB(x) * GradCAM(x)[..., None]`` per channel (Selvaraju et al.,
    Sec. 3: "pointwise multiplication" of the guided backpropagation with the
    bilinearly upsampled, unnormalised Grad-CAM); the map is the channel mean,
    ``GradCAM * mean_c GB``. pytorch-grad-cam multiplies by the min-max
    normalised CAM instead (a per-image scale, same ranking).

    Args:
        model: the classifier.
        layer: the Grad-CAM layer (see :class:`~tfxai.explainers.cam.CAM`; default the last 4-D layer).
        batch_size: images per pass.

    References:
        Selvaraju et al. (2017), "Grad-CAM: Visual Explanations from Deep Networks
        via Gradient-based Localization", ICCV, arXiv:1610.02391.
    """

    name = "guidedgradcam"
    title = "Guided Grad-CAM"
    signed = True
    takes_layer = True
    aliases = ("guided_grad_cam",)

    def __init__(self, model: Any, layer: Any = None, *, batch_size: int = 32, seed: int | None = None):
        from tfxai.explainers.cam import GradCAM

        super().__init__(model, output="logit", batch_size=batch_size, seed=seed)
        self.guided_backprop = GuidedBackprop(self.adapter, batch_size=batch_size)
        self.gradcam = GradCAM(self.adapter, layer, batch_size=batch_size)
        self.layer = self.gradcam.layer

    def attribute_batch(self, images: tf.Tensor, targets: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        targets = self.runtime.resolve(images, targets)
        cam = self.gradcam.explain_batch(images, targets, seed)
        return self.guided_backprop.attribute_batch(images, targets, seed) * cam[..., None]

    def reduce_channels(self, attributions: tf.Tensor) -> tf.Tensor:
        return tf.reduce_mean(attributions, axis=-1)

    def __repr__(self) -> str:
        return f"GuidedGradCAM(model={self.adapter.name!r}, layer={self.layer!r}, batch_size={self.batch_size})"


__all__ = ["GuidedBackprop", "GuidedGradCAM", "GuidedHook", "guided", "relu_form"]
