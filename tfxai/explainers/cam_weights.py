"""Pure weight functions of the CAM family (no model; testable on hand-written arrays).

Shapes: activations ``A`` and gradients ``g = d logit / d A`` are ``(N, h, w, K)``
(channels-last layer outputs); channel weights are ``(N, K)``; maps are ``(N, h, w)``.
"""

from __future__ import annotations

import tensorflow as tf

#: Grad-CAM++ variants: ``"paper"`` (Eq. 19) and ``"official"`` (the authors' code, tf-keras-vis).
GRADCAM_PLUS_PLUS_VARIANTS = ("paper", "official")

#: XGrad-CAM's epsilon in ``A / (sum A + eps)`` (as pytorch-grad-cam).
XGRADCAM_EPS = 1e-7


def weighted_sum(activations: tf.Tensor, weights: tf.Tensor) -> tf.Tensor:
    """``sum_k w_k A_k``: ``(N, h, w, K)`` activations and ``(N, K)`` weights -> ``(N, h, w)``."""
    return tf.einsum("nhwk,nk->nhw", activations, tf.cast(weights, activations.dtype))


def gradcam_weights(gradients: tf.Tensor) -> tf.Tensor:
    """Grad-CAM channel weights ``w_k = mean_ij g_ij`` (global-average-pooled gradients), ``(N, K)``.

    Reference: Selvaraju et al. (2017), "Grad-CAM", arXiv:1610.02391, Eq. 1.
    """
    return tf.reduce_mean(gradients, axis=(1, 2))


def gradcam_plus_plus_alphas(activations: tf.Tensor, gradients: tf.Tensor, variant: str = "paper") -> tf.Tensor:
    """Grad-CAM++ pixel coefficients ``alpha_ij`` of every channel, ``(N, h, w, K)``.

    With the exponential output ``S = exp(Y)`` of the paper, Eq. 19 reduces to
    ``alpha_ij = g_ij^2 / (2 g_ij^2 + (sum_ab A_ab) g_ij^3)`` (the ``exp(S)``
    factor cancels, so no overflow): ``sum_ab A_ab`` is the per-channel **sum of
    the activations over all positions**, multiplied by ``g_ij^3`` afterwards
    (not ``sum_ab A_ab g_ab^3``, a common bug). Where the denominator is 0,
    ``alpha = 0``.

    * ``variant="paper"``: the above (as pytorch-grad-cam).
    * ``variant="official"``: the authors' code (adityac94/Grad_CAM_plus_plus,
      copied by tf-keras-vis) additionally divides the alphas of each channel by
      their sum over all positions (``alpha`` is already 0 where ``g == 0``); a
      channel whose alphas sum to 0 keeps alphas 0.

    Reference: Chattopadhyay et al. (2018), "Grad-CAM++", arXiv:1710.11063, Eq. 19.
    """
    if variant not in GRADCAM_PLUS_PLUS_VARIANTS:
        raise ValueError(f"variant must be one of {GRADCAM_PLUS_PLUS_VARIANTS}, got {variant!r}")
    g2 = tf.square(gradients)
    channel_sum = tf.reduce_sum(activations, axis=(1, 2), keepdims=True)
    # 2 g^2 + S g^3 as g^2 (2 + S g): no product chain for the graph optimizer to reorder, so the
    # eager first call and the compiled calls round alike
    alphas = tf.math.divide_no_nan(g2, g2 * (2.0 + channel_sum * gradients))
    if variant == "official":
        alphas = tf.math.divide_no_nan(alphas, tf.reduce_sum(alphas, axis=(1, 2), keepdims=True))
    return alphas


def gradcam_plus_plus_weights(activations: tf.Tensor, gradients: tf.Tensor, variant: str = "paper") -> tf.Tensor:
    """Grad-CAM++ channel weights ``w_k = sum_ij alpha_ij ReLU(g_ij)``, ``(N, K)``.

    See :func:`gradcam_plus_plus_alphas` for ``alpha`` and the two variants.
    """
    alphas = gradcam_plus_plus_alphas(activations, gradients, variant)
    return tf.reduce_sum(alphas * tf.nn.relu(gradients), axis=(1, 2))


def xgradcam_weights(activations: tf.Tensor, gradients: tf.Tensor, eps: float = XGRADCAM_EPS) -> tf.Tensor:
    """XGrad-CAM channel weights ``w_k = sum_ij A_ij / (sum_ab A_ab + eps) * g_ij``, ``(N, K)``.

    Reference: Fu et al. (2020), "Axiom-based Grad-CAM", arXiv:2008.02312, Eq. 11
    (eps = 1e-7 as pytorch-grad-cam).
    """
    channel_sum = tf.reduce_sum(activations, axis=(1, 2), keepdims=True)
    return tf.reduce_sum(activations / (channel_sum + eps) * gradients, axis=(1, 2))


def channel_masks(maps: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Score-CAM masks: each ``(R, H, W)`` map min-max normalised to [0, 1].

    Returns ``(masks, valid)``: constant maps (max == min) give an all-zero mask
    and ``valid = 0`` so that their channel is skipped (weight 0, no NaN).
    """
    low = tf.reduce_min(maps, axis=(1, 2), keepdims=True)
    high = tf.reduce_max(maps, axis=(1, 2), keepdims=True)
    valid = tf.cast(high > low, maps.dtype)
    masks = tf.math.divide_no_nan(maps - low, (high - low) * valid)
    return masks, valid[:, 0, 0]


def eigen_projection(activations: tf.Tensor) -> tf.Tensor:
    """Eigen-CAM projection on the first principal component, signed, ``(N, h, w)`` (before ReLU).

    Each image's activations are reshaped to ``(h*w, K)`` and centred per
    channel; the map is their projection on the first right-singular vector
    ``V[:, 0]`` of the centred matrix (``tf.linalg.svd``).

    Sign rule: a singular vector is defined up to sign, so the projection is
    flipped when it correlates negatively with the channel-summed activation
    ``sum_k A_k`` (ties, i.e. zero covariance, keep the SVD's sign). The map
    then highlights where the layer is most active, as Eigen-CAM intends.

    Reference: Muhammad & Yeasin (2020), "Eigen-CAM", arXiv:2008.00299.
    """
    shape = tf.shape(activations)
    flat = tf.reshape(activations, [shape[0], shape[1] * shape[2], shape[3]])
    centred = flat - tf.reduce_mean(flat, axis=1, keepdims=True)
    _, _, v = tf.linalg.svd(centred, full_matrices=False)
    projection = tf.einsum("npk,nk->np", centred, v[:, :, 0])
    total = tf.reduce_sum(flat, axis=2)
    covariance = tf.reduce_sum(projection * (total - tf.reduce_mean(total, axis=1, keepdims=True)), axis=1)
    sign = tf.where(covariance < 0, -1.0, 1.0)
    projection = projection * tf.cast(sign, projection.dtype)[:, None]
    return tf.reshape(projection, shape[:3])


def ablation_weights(scores: tf.Tensor, ablated_scores: tf.Tensor) -> tf.Tensor:
    """Ablation-CAM channel weights ``w_k = (y_c - y_c^k) / y_c``.

    `scores` ``y_c`` are the target's logits of the images ``(N,)`` (or ``(N, 1)``),
    `ablated_scores` ``y_c^k`` the logits with channel ``k`` of the layer set to
    zero (same shape, or ``(N, K)``): the relative drop of the score when the
    channel is removed. Where ``y_c == 0`` the weight is 0 (no NaN). As in the
    paper and pytorch-grad-cam the drop is divided by ``y_c`` itself, so a
    negative ``y_c`` flips every weight of its image.

    Reference: Desai & Ramaswamy (2020), "Ablation-CAM: Visual Explanations for Deep
    Convolutional Network via Gradient-free Localization", WACV, Eq. 2.
    """
    return tf.math.divide_no_nan(scores - ablated_scores, scores)
