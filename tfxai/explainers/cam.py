"""Class activation maps: Grad-CAM, Grad-CAM++, XGrad-CAM, Score-CAM, Eigen-CAM.

Every method reads one convolutional layer's activations ``A`` ``(N, h, w, K)``
(default: the last layer with spatial extent before the global pooling that
feeds the head, nested models included; see
:func:`tfxai.surgery.default_cam_layer`), forms a map ``sum_k w_k A_k`` at the
layer's resolution, and upsamples it bilinearly to the input size
(``upsample=False`` keeps ``(N, h, w)``). Gradient methods differentiate the
target's **logit** (a model ending in softmax is explained through a rebuilt
copy without it; the user's model is never touched), and get the activations
and gradients from one forward/backward pass.

A variant is one class overriding one hook, :meth:`CAM.channel_weights`, which
receives the whole context as a :class:`CAMBatch` (images, resolved targets,
logits, activations, gradients and the layer-to-logits head). Perturbing
variants (Score-CAM, Ablation-CAM) score each ``(image, channel)`` pair through
:meth:`CAM.per_channel`. The weight formulas live in
:mod:`tfxai.explainers.cam_weights` as pure functions.
"""

from __future__ import annotations

from typing import Any, Callable, ClassVar, NamedTuple

import keras
import tensorflow as tf

from tfxai import _batching, _validation, image_ops, surgery
from tfxai.errors import InvalidInputError, InvalidTypeError, UnsupportedModelError
from tfxai.explainers import cam_weights
from tfxai._runtime import resolve_predicted
from tfxai.explainers._head import LayerHead
from tfxai.explainers.base import Explainer


class CAMBatch(NamedTuple):
    """What a CAM hook sees for one chunk of ``n`` images (every field a tensor, in-graph).

    Attributes:
        images: ``(n, H, W, C)`` the images.
        targets: ``(n,)`` int32 explained classes, resolved (no ``-1``).
        logits: ``(n, num_classes)`` class logits of the images (softmax stripped).
        activations: ``(n, h, w, K)`` the CAM layer's output.
        gradients: ``(n, h, w, K)`` ``d logit_target / d A``, or None for variants with
            ``needs_gradients = False``.
        head: :class:`~tfxai.explainers._head.LayerHead`, ``head(activations, images) -> logits``:
            the network after the layer, on the user's layers and live weights.
    """

    images: tf.Tensor
    targets: tf.Tensor
    logits: tf.Tensor
    activations: tf.Tensor
    gradients: tf.Tensor | None
    head: LayerHead


class CAMRows(NamedTuple):
    """``R`` rows ``(image, channel)`` handed to a :meth:`CAM.per_channel` scoring function.

    Attributes:
        images: ``(R, H, W, C)``; targets: ``(R,)`` resolved; logits: ``(R, num_classes)``;
        activations: ``(R, h, w, K)`` the row's image's activations; channels: ``(R,)`` int32
        channel index; channel_maps: ``(R, h, w)`` that channel's activation map.
    """

    images: tf.Tensor
    targets: tf.Tensor
    logits: tf.Tensor
    activations: tf.Tensor
    channels: tf.Tensor
    channel_maps: tf.Tensor


class CAM(Explainer):
    """Base class of the CAM family: a layer, its activations and gradients, a weighted sum.

    A CAM variant is one small class overriding one hook:

    * :meth:`channel_weights` ``(batch: CAMBatch) -> (n, K)``: the map is then
      ``ReLU(sum_k w_k A_k)``. Gradient variants read ``batch.gradients``;
      perturbing ones score each channel with :meth:`per_channel`, which owns
      the ``(image, channel)`` row loop (``batch_size`` rows per model call).
    * or :meth:`cam` ``(batch) -> (n, h, w)`` for an elementwise rule (LayerCAM,
      HiResCAM, Eigen-CAM), returning the map before the final ReLU.

    Example (a test-only variant: mean positive gradient times mean activation)::

        class MyCAM(CAM):
            name, title = "mycam", "My-CAM"

            def channel_weights(self, batch):
                return tf.reduce_mean(tf.nn.relu(batch.gradients), axis=(1, 2)) * tf.reduce_mean(
                    batch.activations, axis=(1, 2))

    Args:
        model: the classifier or its adapter (see :class:`~tfxai.explainers.base.Explainer`).
        layer: ``None`` (the last layer with spatial extent before the global pooling that feeds the
            head, see :func:`tfxai.surgery.default_cam_layer`), a layer name, a path such as
            ``"backbone/block5_conv3"`` for a layer inside a nested model, or a ``keras.layers.Layer``
            of the model. Its output must be ``(N, h, w, K)`` with ``h * w > 1``.
        upsample: resize the maps bilinearly to the input size (default) or keep
            the layer's ``(h, w)``.
        batch_size: images per forward/backward pass (and rows per model call in :meth:`per_channel`).

    Raises:
        UnsupportedModelError: the layer's output is 1x1 at the model's input size (every map
            would be constant); :class:`~tfxai.errors.InvalidInputError` when that happens only
            for the images of a call (models with open input sizes).

    Attributes:
        layer: the path of the explained layer inside the model.
        layer_shape: its output shape ``(None, h, w, K)`` (``None`` for sizes the model leaves open).
        head: the :class:`~tfxai.explainers._head.LayerHead` of the layer (built on first use).
    """

    takes_layer = True
    #: Whether the map needs ``d logit / d A`` (False for class-agnostic and perturbing methods).
    needs_gradients: ClassVar[bool] = True
    #: Whether the head is built with the explainer (perturbing variants that call it).
    needs_head: ClassVar[bool] = False
    #: ``ReLU(upsample(map))`` (Score-CAM's official code) instead of ``upsample(ReLU(map))``.
    relu_after_upsampling: ClassVar[bool] = False

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
        if tuple(self.layer_shape[1:3]) == (1, 1):
            raise UnsupportedModelError(self._one_by_one(self.adapter.image_shape), layers=[info.path])
        self._exposed = self.adapter.exposed([info.layer])
        self.head = LayerHead(self.adapter, info.layer)
        if self.needs_head:
            self.head.build()
        self._checked_shapes: set = set()

    def _one_by_one(self, image_shape: tuple) -> str:
        """Why a 1x1 layer cannot be explained, and what to do (the layer, the input size, a spatial layer)."""
        size = "x".join(str(s) for s in image_shape[:2])
        infos = list(surgery.iter_layers(self.model))
        refused = next(i.layer for i in infos if i.path == self.layer)
        spatial = [i for i in infos if len(i.output_shape) == 4 and None not in i.output_shape[1:3]
                   and i.output_shape[1] * i.output_shape[2] > 1 and not isinstance(i.layer, keras.layers.InputLayer)]
        alike = [i for i in spatial if type(i.layer) is type(refused)] or spatial  # e.g. the last Concatenate block
        hint = ""
        if alike:
            shape = alike[-1].output_shape
            hint = f", e.g. {alike[-1].path!r} ({shape[1]}x{shape[2]} at this size)"
        return (
            f"{type(self).__name__} cannot explain layer {self.layer!r}: its output is 1x1 for {size} inputs, so every "
            f"map would be constant. Use larger inputs or pass `layer=` a layer with spatial extent{hint}."
        )

    def check_inputs(self, images: tf.Tensor) -> None:
        shape = tuple(images.shape[1:])
        if None in self.layer_shape[1:3] and shape not in self._checked_shapes:
            if tuple(self.layer_shape_for(shape)[:2]) == (1, 1):
                raise InvalidInputError(self._one_by_one(shape))
            self._checked_shapes.add(shape)

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

    def batch(self, images: tf.Tensor, targets: tf.Tensor) -> CAMBatch:
        """The :class:`CAMBatch` of one chunk of images (one forward pass, and backward if needed)."""
        if self.needs_gradients:
            activations, gradients, logits = self.activations_and_gradients(images, targets)
        else:
            (activations, logits), gradients = self.activations(images), None
        return CAMBatch(images, resolve_predicted(targets, logits), logits, activations, gradients, self.head)

    def layer_maps(self, images: tf.Tensor, targets: tf.Tensor) -> tf.Tensor:
        """Maps at the layer's resolution ``(n, h, w)`` for one chunk of images, before the final ReLU."""
        return self.cam(self.batch(images, targets))

    # ------------------------------------------------------------ the hooks
    def channel_weights(self, batch: CAMBatch) -> tf.Tensor:
        """``(n, K)`` weights of the channels (method-specific): the one hook of a CAM variant."""
        raise NotImplementedError

    def cam(self, batch: CAMBatch) -> tf.Tensor:
        """``(n, h, w)`` map before the final ReLU: ``sum_k w_k A_k`` (override for elementwise rules)."""
        return cam_weights.weighted_sum(batch.activations, self.channel_weights(batch))

    def per_channel(self, batch: CAMBatch, score: Callable[[CAMRows], tf.Tensor],
                    channels: tf.Tensor | None = None) -> tf.Tensor:
        """``(n, K)`` channel weights from one score per ``(image, channel)`` row.

        Args:
            batch: the chunk's :class:`CAMBatch`.
            score: ``score(rows: CAMRows) -> (R,)``, called on ``batch_size`` rows at a time
                (one model call per chunk of rows).
            channels: ``None`` (every channel) or ``(n, k)`` int32 indices of the channels to
                score per image; the others get weight 0.
        """
        num_channels = int(batch.activations.shape[-1])
        kept = num_channels if channels is None else int(channels.shape[-1])
        by_channel = tf.transpose(batch.activations, [0, 3, 1, 2])

        def row(image_index: tf.Tensor, k: tf.Tensor) -> tf.Tensor:
            channel = k if channels is None else tf.gather_nd(channels, tf.stack([image_index, k], axis=1))
            rows = CAMRows(
                tf.gather(batch.images, image_index), tf.gather(batch.targets, image_index),
                tf.gather(batch.logits, image_index), tf.gather(batch.activations, image_index), channel,
                tf.gather_nd(by_channel, tf.stack([image_index, channel], axis=1)),
            )
            values = score(rows)
            return tf.one_hot(channel, num_channels, dtype=values.dtype) * values[:, None]

        spec = tf.TensorSpec([num_channels], batch.activations.dtype)
        return _batching.accumulate_rows(row, tf.shape(batch.activations)[0], kept, self.batch_size, spec)

    # ------------------------------------------------------------ plumbing
    def explain_batch(self, images: tf.Tensor, targets: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        size = tuple(images.shape[1:3])

        def chunk(index: tf.Tensor) -> tf.Tensor:
            maps = self.layer_maps(tf.gather(images, index), tf.gather(targets, index))
            if not self.upsample:
                return tf.nn.relu(maps)
            if self.relu_after_upsampling:
                return tf.nn.relu(image_ops.resize(maps, size))
            return image_ops.resize(tf.nn.relu(maps), size)

        spec = tf.TensorSpec(self._map_size(images), images.dtype)
        return _batching.map_images(chunk, tf.shape(images)[0], self.batch_size, spec)

    def _map_size(self, images: tf.Tensor) -> tuple[int, int]:
        return tuple(images.shape[1:3]) if self.upsample else self.layer_shape_for(tuple(images.shape[1:]))[:2]

    def degenerate_cause(self, zero: bool) -> str:
        if zero:
            return (
                f"every position of sum_k w_k A_k at layer {self.layer!r} is <= 0 (the ReLU removes it) or the "
                "target's gradient there is zero (dead ReLUs, a saturated softmax, random weights); try another "
                "`layer=`, another target, or HiResCAM/LayerCAM"
            )
        return f"the weighted sum at layer {self.layer!r} {tuple(self.layer_shape[1:3])} is the same at every position"


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

    def channel_weights(self, batch: CAMBatch) -> tf.Tensor:
        return cam_weights.gradcam_weights(batch.gradients)


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

    def __init__(self, model: keras.Model, layer: Any = None, *, variant: str = "paper", upsample: bool = True,
                 batch_size: int = 32):
        self.variant = _validation.check_choice(variant, "variant", cam_weights.GRADCAM_PLUS_PLUS_VARIANTS)
        super().__init__(model, layer, upsample=upsample, batch_size=batch_size)

    def channel_weights(self, batch: CAMBatch) -> tf.Tensor:
        return cam_weights.gradcam_plus_plus_weights(batch.activations, batch.gradients, self.variant)


class XGradCAM(CAM):
    """XGrad-CAM: ``ReLU(sum_k w_k A_k)``, ``w_k = sum_ij A_ij / (sum_ab A_ab + 1e-7) g_ij``.

    References:
        Fu et al. (2020), "Axiom-based Grad-CAM: Towards Accurate Visualization and
        Explanation of CNNs", BMVC, arXiv:2008.02312.
    """

    name = "xgradcam"
    title = "XGrad-CAM"

    def channel_weights(self, batch: CAMBatch) -> tf.Tensor:
        return cam_weights.xgradcam_weights(batch.activations, batch.gradients)


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

    def cam(self, batch: CAMBatch) -> tf.Tensor:
        return cam_weights.eigen_projection(batch.activations)


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
    relu_after_upsampling = True

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

    def channel_weights(self, batch: CAMBatch) -> tf.Tensor:
        size = tuple(batch.images.shape[1:3])
        channels = None
        if self.num_channels is not None:
            channels = tf.math.top_k(tf.math.reduce_std(batch.activations, axis=(1, 2)), k=self.num_channels).indices

        def score(rows: CAMRows) -> tf.Tensor:
            masks, valid = cam_weights.channel_masks(image_ops.resize(rows.channel_maps, size))
            logits = self.logits(rows.images * masks[..., None])
            return self.adapter.scores(logits, rows.targets, "probability") * valid

        return self.per_channel(batch, score, channels)
