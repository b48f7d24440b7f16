"""Elementwise CAMs: LayerCAM and HiResCAM.

Both weight every activation ``A_k[i, j]`` by the gradient of the target
logit at the same position instead of by a per-channel weight, so they
override :meth:`tfxai.explainers.cam.CAM.cam` (a
:class:`~tfxai.explainers.cam.CAMBatch` -> ``(N, h, w)`` map before the final
ReLU); the CAM base does the single forward/backward pass, the ReLU and the
bilinear upsampling.
"""

from __future__ import annotations

import tensorflow as tf

from tfxai.explainers.cam import CAM, CAMBatch


class LayerCAM(CAM):
    """LayerCAM: ``ReLU(sum_k ReLU(dS/dA_k) * A_k)``, elementwise.

    ``S`` is the target's logit. Same as pytorch-grad-cam's ``LayerCAM``
    (``np.maximum(grads, 0) * activations`` summed over channels, then the
    base class ReLU). Meant for shallow layers too (``layer=`` any 4-D layer).

    References:
        Jiang, Zhang, Hou, Cheng, Wei (2021), "LayerCAM: Exploring Hierarchical
        Class Activation Maps for Localization", IEEE TIP 30, 5875-5888.
    """

    name = "layercam"
    title = "LayerCAM"
    signed = False

    def cam(self, batch: CAMBatch) -> tf.Tensor:
        return tf.reduce_sum(tf.nn.relu(batch.gradients) * batch.activations, axis=-1)


class HiResCAM(CAM):
    """HiResCAM: ``ReLU(sum_k dS/dA_k * A_k)``, elementwise, no spatial averaging of the gradients.

    The paper's map is the channel sum of gradient times activation; its
    positive part is shown here, as pytorch-grad-cam does (its ``HiResCAM``
    returns ``(grads * activations).sum(axis=1)`` and ``BaseCAM`` applies
    ``np.maximum(cam, 0)`` to every CAM). For a layer followed only by global
    average pooling and a dense layer, the sum before the ReLU is the exact
    contribution of each position to the logit (it sums to ``logit - bias``),
    and Grad-CAM equals HiResCAM.

    References:
        Draelos & Carin (2020), "Use HiResCAM instead of Grad-CAM for faithful
        explanations of convolutional neural networks", arXiv:2011.08891.
    """

    name = "hirescam"
    title = "HiResCAM"
    signed = False

    def cam(self, batch: CAMBatch) -> tf.Tensor:
        return tf.reduce_sum(batch.gradients * batch.activations, axis=-1)


__all__ = ["LayerCAM", "HiResCAM"]
