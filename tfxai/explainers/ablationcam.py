"""Ablation-CAM: each channel weighted by the relative drop of the target's logit when it is zeroed."""

from __future__ import annotations

import tensorflow as tf

from tfxai.explainers import cam_weights
from tfxai.explainers.cam import CAM, CAMBatch, CAMRows


class AblationCAM(CAM):
    """Ablation-CAM: ``ReLU(sum_k w_k A_k)``, ``w_k = (y_c - y_c^k) / y_c``.

    ``y_c`` is the target's logit and ``y_c^k`` the logit when channel ``k`` of
    the layer is set to zero everywhere (the rest of the network after the
    layer is run on the ablated activations, on the user's layers and weights;
    see :class:`~tfxai.explainers._head.LayerHead`). No gradient: it works
    where gradients saturate. As in the paper and pytorch-grad-cam the drop is
    divided by ``y_c``; a negative ``y_c`` flips the weights, and ``y_c = 0``
    gives weight 0 (see :func:`~tfxai.explainers.cam_weights.ablation_weights`).
    Unlike pytorch-grad-cam, the channel is always zeroed, even on layers whose
    activations can be negative (the paper's definition).

    Cost: one call of the head per image and channel, ``batch_size`` rows at a
    time (the network before the layer runs once per image).

    Example::

        maps = tfxai.AblationCAM(model, "top_relu", batch_size=64)(images)

    References:
        Desai & Ramaswamy (2020), "Ablation-CAM: Visual Explanations for Deep
        Convolutional Network via Gradient-free Localization", WACV.
    """

    name = "ablationcam"
    title = "Ablation-CAM"
    aliases = ("ablation-cam", "ablation_cam")
    slow = True
    needs_gradients = False
    needs_head = True

    def channel_weights(self, batch: CAMBatch) -> tf.Tensor:
        channels = int(batch.activations.shape[-1])

        def drop(rows: CAMRows) -> tf.Tensor:
            keep = 1.0 - tf.one_hot(rows.channels, channels, dtype=rows.activations.dtype)
            ablated = batch.head(rows.activations * keep[:, None, None, :], rows.images)
            return cam_weights.ablation_weights(
                self.adapter.scores(rows.logits, rows.targets), self.adapter.scores(ablated, rows.targets))

        return self.per_channel(batch, drop)


__all__ = ["AblationCAM"]
