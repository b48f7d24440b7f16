"""Class activation maps: Grad-CAM, Grad-CAM++, XGrad-CAM, Score-CAM, Eigen-CAM.

Every method reads one convolutional layer's activations ``A`` ``(N, h, w, K)``
(default: the last layer with a 4-D output, nested models included), forms a
map ``sum_k w_k A_k`` at the layer's resolution, and upsamples it bilinearly to
the input size (``upsample=False`` keeps ``(N, h, w)``). Gradient methods
differentiate the target's **logit** (a model ending in softmax is explained
through a rebuilt copy without it; the user's model is never touched), and get
the activations and gradients from one forward/backward pass.

The weight formulas live in :mod:`tfxai.explainers.cam_weights` as pure
functions, also reachable as each class's static ``weights`` method.
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from tfxai import _batching, _validation, image_ops
from tfxai.errors import InvalidInputError, InvalidTypeError
from tfxai.explainers import cam_weights
from tfxai._runtime import resolve_predicted
from tfxai.explainers.base import Explainer


class CAM(Explainer):
    """Base class of the CAM family: a layer, its activations and gradients, a weighted sum.

    A CAM variant is one small class: it overrides :meth:`channel_weights`
    ``(activations, gradients) -> (N, K)`` (the map is then
    ``ReLU(sum_k w_k A_k)``), or :meth:`cam` for an elementwise rule.

    Args:
        model: the classifier or its adapter (see :class:`~tfxai.explainers.base.Explainer`).
        layer: ``None`` (the last layer with a 4-D output), a layer name, a path
            such as ``"backbone/block5_conv3"`` for a layer inside a nested model,
            or a ``keras.layers.Layer`` of the model. Its output must be
            ``(N, h, w, K)``.
        upsample: resize the maps bilinearly to the input size (default) or keep
            the layer's ``(h, w)``.
        batch_size: images per forward/backward pass.

    Attributes:
        layer: the path of the explained layer inside the model.
        layer_shape: its output shape ``(None, h, w, K)`` (``None`` for sizes the model leaves open).
    """

    takes_layer = True
    #: Whether the map needs ``d logit / d A`` (False for class-agnostic methods).
    needs_gradients = True

    def __init__(self, model: keras.Model, layer: Any = None, *, upsample: bool = True, batch_size: int = 32,
                 seed: int | None = None):
        super().__init__(model, output="logit", batch_size=batch_size, seed=seed)
        info = self.adapter.find_layer(layer, rank=4)
        if len(info.output_shape) != 4:
            raise InvalidInputError(
                f"`layer` must produce a 4-D (N, h, w, channels) output to be explained by {type(self).__name__}; "
                f"layer {info.path!r} ({type(info.layer).__name__}) outputs shape {info.output_shape}. "
                "Pass a convolutional layer (or None for the last one)."
            )
        if not isinstance(upsample, bool):
            raise InvalidTypeError(f"`upsample` must be True or False. Received: upsample={upsample!r}.")
        self.layer = info.path
        self.layer_shape = tuple(info.output_shape)
        self.upsample = upsample
        self._exposed = self.adapter.exposed([info.layer])

    # ------------------------------------------------------------ model work
    def activations_and_gradients(self, images: tf.Tensor, targets: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """``A``, ``d logit_target / d A`` (both ``(n, h, w, K)``) and the logits, in one pass."""
        with tf.GradientTape() as tape:
            tape.watch(images)
            raw, activations = self._exposed(images, training=False)
            tape.watch(activations)
            logits = self.adapter.class_logits(raw)
            scores = self.scores(logits, targets)
        gradients = tape.gradient(scores, activations)
        dtype = self.adapter.dtype
        return tf.cast(activations, dtype), tf.cast(gradients, dtype), logits

    def activations(self, images: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """``A`` ``(n, h, w, K)`` and the logits, forward only."""
        raw, activations = self._exposed(images, training=False)
        return tf.cast(activations, self.adapter.dtype), self.adapter.class_logits(raw)

    def layer_shape_for(self, image_shape: tuple) -> tuple:
        """``(h, w, K)`` of the layer's output for images of shape ``(H, W, C)``."""
        if None not in self.layer_shape[1:] and tuple(image_shape) == self.adapter.image_shape:
            return tuple(self.layer_shape[1:])
        spec = self._exposed.compute_output_spec(keras.KerasTensor((1, *image_shape), dtype=self.adapter.dtype))
        return tuple(spec[1].shape[1:])

    def layer_maps(self, images: tf.Tensor, targets: tf.Tensor) -> tf.Tensor:
        """Maps at the layer's resolution ``(n, h, w)`` for one chunk of images."""
        if self.needs_gradients:
            activations, gradients, _ = self.activations_and_gradients(images, targets)
        else:
            activations, _ = self.activations(images)
            gradients = None
        return self.cam(activations, gradients)

    def channel_weights(self, activations: tf.Tensor, gradients: tf.Tensor | None) -> tf.Tensor:
        """``(n, K)`` weights of the channels (method-specific)."""
        raise NotImplementedError

    def cam(self, activations: tf.Tensor, gradients: tf.Tensor | None) -> tf.Tensor:
        """``(n, h, w, K)`` activations and gradients -> ``(n, h, w)``: ``ReLU(sum_k w_k A_k)``."""
        return tf.nn.relu(cam_weights.weighted_sum(activations, self.channel_weights(activations, gradients)))

    def explain_batch(self, images: tf.Tensor, targets: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        size = tuple(images.shape[1:3])

        def chunk(index: tf.Tensor) -> tf.Tensor:
            maps = self.layer_maps(tf.gather(images, index), tf.gather(targets, index))
            return image_ops.resize(maps, size) if self.upsample else maps

        spec = tf.TensorSpec(self._map_size(images), images.dtype)
        return _batching.map_images(chunk, tf.shape(images)[0], self.batch_size, spec)

    def _map_size(self, images: tf.Tensor) -> tuple[int, int]:
        return tuple(images.shape[1:3]) if self.upsample else self.layer_shape_for(tuple(images.shape[1:]))[:2]


class GradCAM(CAM):
    """Grad-CAM: ``ReLU(sum_k w_k A_k)`` with ``w_k`` the spatial mean of ``d logit / d A_k``.

    The target's pre-softmax logit is differentiated (the lecture strips the
    softmax with ``model.layers[-1].activation = None``; tfxai calls the last
    layer without its activation on the same weights). Maps ``(N, H, W)`` are
    bilinearly upsampled, not normalised.

    Example::

        maps = tfxai.GradCAM(model, "top_relu")(images, targets=["tabby", "golden_retriever"])

    References:
        Selvaraju et al. (2017), "Grad-CAM: Visual Explanations from Deep Networks
        via Gradient-based Localization", arXiv:1610.02391.
    """

    name = "gradcam"
    title = "Grad-CAM"
    aliases = ("grad-cam",)
    weights = staticmethod(cam_weights.gradcam_weights)

    def channel_weights(self, activations: tf.Tensor, gradients: tf.Tensor) -> tf.Tensor:
        return self.weights(gradients)


class GradCAMPlusPlus(CAM):
    """Grad-CAM++: ``ReLU(sum_k w_k A_k)``, ``w_k = sum_ij alpha_ij ReLU(g_ij)``.

    ``alpha_ij = g^2 / (2 g^2 + (sum_ab A_ab) g^3)`` is the paper's Eq. 19 with
    ``S = exp(logit)`` (the exponential factor cancels, so nothing overflows);
    ``sum_ab A_ab`` is the per-channel sum of the activations; ``alpha = 0``
    where the denominator vanishes.

    Args:
        variant: ``"paper"`` (Eq. 19, as pytorch-grad-cam) or ``"official"``
            (the authors' code and tf-keras-vis: the alphas of each channel are
            also divided by their sum over positions). See
            :func:`~tfxai.explainers.cam_weights.gradcam_plus_plus_alphas`.
        model, layer, upsample, batch_size: see :class:`CAM`.

    References:
        Chattopadhyay et al. (2018), "Grad-CAM++: Improved Visual Explanations for
        Deep Convolutional Networks", arXiv:1710.11063.
    """

    name = "gradcam++"
    title = "Grad-CAM++"
    aliases = ("gradcamplusplus", "gradcampp")
    weights = staticmethod(cam_weights.gradcam_plus_plus_weights)

    def __init__(self, model: keras.Model, layer: Any = None, *, variant: str = "paper", upsample: bool = True,
                 batch_size: int = 32):
        self.variant = _validation.check_choice(variant, "variant", cam_weights.GRADCAM_PLUS_PLUS_VARIANTS)
        super().__init__(model, layer, upsample=upsample, batch_size=batch_size)

    def channel_weights(self, activations: tf.Tensor, gradients: tf.Tensor) -> tf.Tensor:
        return self.weights(activations, gradients, self.variant)


class XGradCAM(CAM):
    """XGrad-CAM: ``ReLU(sum_k w_k A_k)``, ``w_k = sum_ij A_ij / (sum_ab A_ab + 1e-7) g_ij``.

    References:
        Fu et al. (2020), "Axiom-based Grad-CAM: Towards Accurate Visualization and
        Explanation of CNNs", BMVC, arXiv:2008.02312.
    """

    name = "xgradcam"
    title = "XGrad-CAM"
    weights = staticmethod(cam_weights.xgradcam_weights)

    def channel_weights(self, activations: tf.Tensor, gradients: tf.Tensor) -> tf.Tensor:
        return self.weights(activations, gradients)


class EigenCAM(CAM):
    """Eigen-CAM: ``ReLU`` of the activations' projection on their first principal component.

    Class-agnostic (`targets` are accepted and ignored); no gradients. Sign
    rule: the projection is flipped when it correlates negatively with the
    channel-summed activation ``sum_k A_k`` (see
    :func:`~tfxai.explainers.cam_weights.eigen_projection`), then ReLU as in
    pytorch-grad-cam.

    References:
        Muhammad & Yeasin (2020), "Eigen-CAM: Class Activation Map using Principal
        Components", IJCNN, arXiv:2008.00299.
    """

    name = "eigencam"
    title = "Eigen-CAM"
    needs_gradients = False
    projection = staticmethod(cam_weights.eigen_projection)

    def cam(self, activations: tf.Tensor, gradients: tf.Tensor | None) -> tf.Tensor:
        return tf.nn.relu(self.projection(activations))


class ScoreCAM(CAM):
    """Score-CAM: channels weighted by the class probability of the input masked by them.

    For each channel ``k``: upsample ``A_k`` bilinearly to the input size,
    min-max normalise it to ``H_k`` in [0, 1], and score ``s_k = softmax(f(X *
    H_k))_c`` (softmax applied exactly once, to the logits of the softmax-free
    model). The map is ``ReLU(sum_k s_k A_k^up)`` with the upsampled,
    unnormalised activations, as in the official code
    (haofanwang/Score-CAM ``cam/scorecam.py``). Constant channels are skipped
    (weight 0). The paper's later variant (baseline score subtracted, softmax
    over channels) is not implemented.

    Cost: one forward per image and channel. The ``N * K`` masked inputs are
    evaluated ``batch_size`` rows at a time, so memory is bounded by one chunk.

    Args:
        num_channels: ``None`` (all channels) or keep only the ``num_channels``
            channels with the largest spatial standard deviation per image
            (Faster-Score-CAM, tf-keras-vis ``max_N``).
        model, layer, upsample, batch_size: see :class:`CAM`; `batch_size` is
            masked inputs per forward.

    References:
        Wang et al. (2020), "Score-CAM: Score-Weighted Visual Explanations for
        Convolutional Neural Networks", CVPR Workshops, arXiv:1910.01279.
    """

    name = "scorecam"
    title = "Score-CAM"
    slow = True
    needs_gradients = False

    @classmethod
    def quick_settings(cls, quick: bool) -> dict:
        return {"num_channels": 32} if quick else {}

    def __init__(self, model: keras.Model, layer: Any = None, *, num_channels: int | None = None,
                 upsample: bool = True, batch_size: int = 32):
        super().__init__(model, layer, upsample=upsample, batch_size=batch_size)
        channels = self.layer_shape[-1]
        if num_channels is not None:
            _validation.check_positive_int(num_channels, "num_channels")
            if channels is not None and num_channels > channels:
                raise InvalidInputError(
                    f"`num_channels` must be at most the layer's {channels} channels (layer {self.layer!r}). "
                    f"Received: num_channels={num_channels}. Pass None to use every channel."
                )
        self.num_channels = num_channels

    def explain_batch(self, images: tf.Tensor, targets: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        size = tuple(images.shape[1:3])
        num_images = tf.shape(images)[0]
        layer_shape = self.layer_shape_for(tuple(images.shape[1:]))
        channels = int(layer_shape[-1])
        kept = self.num_channels or channels

        def forward(index: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
            activations, logits = self.activations(tf.gather(images, index))
            resolved = resolve_predicted(tf.gather(targets, index), logits)
            if self.num_channels is None:
                order = tf.broadcast_to(tf.range(channels), [tf.shape(index)[0], channels])
            else:
                spread = tf.math.reduce_std(activations, axis=(1, 2))
                order = tf.math.top_k(spread, k=kept).indices
            return activations, resolved, order

        spec = (
            tf.TensorSpec(layer_shape, images.dtype),
            tf.TensorSpec([], tf.int32),
            tf.TensorSpec([kept], tf.int32),
        )
        activations, resolved, order = _batching.map_images(forward, num_images, self.batch_size, spec)

        def row(image_index: tf.Tensor, k: tf.Tensor) -> tf.Tensor:
            channel = tf.gather_nd(order, tf.stack([image_index, k], axis=1))
            layer_maps = tf.gather_nd(tf.transpose(activations, [0, 3, 1, 2]), tf.stack([image_index, channel], axis=1))
            upsampled = image_ops.resize(layer_maps, size)
            masks, valid = cam_weights.channel_masks(upsampled)
            logits = self.logits(tf.gather(images, image_index) * masks[..., None])
            score = self.adapter.scores(logits, tf.gather(resolved, image_index), "probability") * valid
            contribution = upsampled if self.upsample else layer_maps
            return score[:, None, None] * contribution

        out = tf.TensorSpec(self._map_size(images), images.dtype)
        total = _batching.accumulate_rows(row, num_images, kept, self.batch_size, out)
        return tf.nn.relu(total)
