"""Integrated Gradients step by step, as the TensorFlow tutorial teaches it.

These functions follow the tutorial "Integrated gradients" one to one, so a
lecture can show each step; :class:`tfxai.IntegratedGradients` is the batched
explainer built on the same definitions. Differences from the tutorial: the
model is an argument (the tutorial uses a global), a model ending in softmax is
differentiated through a copy that outputs logits, and `method` selects the
quadrature rule.

Pipeline for one image ``(H, W, C)`` and its baseline::

    alphas = alphas_for(m_steps, method)                      # m + 1 alphas (trapezoid)
    path = interpolate_images(baseline, image, alphas)        # (m + 1, H, W, C)
    grads = compute_gradients(model, path, target_class_idx)  # d softmax_t / d path
    avg_grads = integral_approximation(grads, method)         # (H, W, C)
    attributions = (image - baseline) * avg_grads

The baselines of Sturmfels et al. (Distill, 2020) are re-exported here:
``black``, ``white``, ``uniform``, ``gaussian``, ``blur``, ``max_distance``.
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from tfxai import _integration, _validation
from tfxai.adapter import adapt
from tfxai.errors import InvalidInputError
from tfxai.baselines import black, blur, gaussian, max_distance, uniform, white

__all__ = [
    "alphas_for",
    "interpolate_images",
    "compute_gradients",
    "integral_approximation",
    "integrated_gradients",
    "black",
    "white",
    "uniform",
    "gaussian",
    "blur",
    "max_distance",
]


def alphas_for(m_steps: int = 50, method: str = "trapezoid", dtype: Any = tf.float32) -> tf.Tensor:
    """The interpolation constants: ``tf.linspace(0, 1, m_steps + 1)`` for the trapezoid rule.

    Riemann rules use ``m_steps`` alphas: ``k/m`` (left, ``k < m``), ``k/m``
    (right, ``k >= 1``), ``(k + 1/2)/m`` (middle).
    """
    _validation.check_positive_int(m_steps, "m_steps")
    _validation.check_choice(method, "method", _integration.METHODS)
    return tf.constant(_integration.rule(method, m_steps)[0], dtype)


def interpolate_images(baseline: Any, image: Any, alphas: Any) -> tf.Tensor:
    """Images on the straight line from `baseline` to `image`: ``(len(alphas), H, W, C)``.

    ``baseline + alpha * (image - baseline)`` for every alpha (tutorial step 2).
    """
    image = tf.convert_to_tensor(image)
    alphas = tf.cast(alphas, image.dtype)
    alphas_x = alphas[:, tf.newaxis, tf.newaxis, tf.newaxis]
    baseline_x = tf.expand_dims(tf.cast(baseline, image.dtype), axis=0)
    input_x = tf.expand_dims(image, axis=0)
    delta = input_x - baseline_x
    return baseline_x + alphas_x * delta


def compute_gradients(model: keras.Model, images: Any, target_class_idx: int) -> tf.Tensor:
    """Gradients of the target's softmax probability w.r.t. each image (tutorial step 3).

    Args:
        model: the classifier; a final softmax is stripped on a copy (the
            probability is taken from the logits here, exactly once).
        images: ``(M, H, W, C)``, e.g. the interpolated path.
        target_class_idx: the class whose probability is differentiated.
    """
    adapter = adapt(model)
    images = tf.cast(images, adapter.dtype)
    with tf.GradientTape() as tape:
        tape.watch(images)
        probs = adapter.probabilities(adapter.logits(images))[:, target_class_idx]
    return tape.gradient(probs, images)


def integral_approximation(gradients: Any, method: str = "trapezoid") -> tf.Tensor:
    """Average the path gradients over alphas (tutorial step 4).

    ``trapezoid``: ``mean((g[:-1] + g[1:]) / 2)`` over ``m + 1`` gradients;
    Riemann rules: ``mean(g)`` over the ``m`` gradients taken at that rule's alphas.
    """
    gradients = tf.convert_to_tensor(gradients)
    _validation.check_choice(method, "method", _integration.METHODS)
    if gradients.shape.rank is None or gradients.shape.rank < 1 or gradients.shape[0] == 0:
        raise InvalidInputError(
            f"`gradients` must stack one gradient per alpha on axis 0; received shape {tuple(gradients.shape)}."
        )
    if method == "trapezoid":
        if gradients.shape[0] < 2:
            raise InvalidInputError(
                "The trapezoid rule needs at least 2 gradients (the ends of one interval, m_steps + 1 alphas); "
                f"received {gradients.shape[0]}. Use more alphas, or method='riemann_right' for one gradient."
            )
        grads = (gradients[:-1] + gradients[1:]) / tf.constant(2.0, gradients.dtype)
        return tf.math.reduce_mean(grads, axis=0)
    return tf.math.reduce_mean(gradients, axis=0)


def integrated_gradients(
    model: keras.Model,
    baseline: Any,
    image: Any,
    target_class_idx: int,
    m_steps: int = 50,
    batch_size: int = 32,
    method: str = "trapezoid",
) -> tf.Tensor:
    """Integrated Gradients of one image ``(H, W, C)``: the tutorial's full function.

    Alphas are processed `batch_size` at a time; all path gradients are
    gathered before the integral, so the trapezoid sees every chunk border.
    Returns attributions ``(H, W, C)``: ``(image - baseline) * avg_grads``.
    """
    _validation.check_positive_int(batch_size, "batch_size")
    image = tf.convert_to_tensor(image, tf.float32) if not tf.is_tensor(image) else image
    baseline = tf.cast(baseline, image.dtype)
    alphas = alphas_for(m_steps, method, image.dtype)

    gradient_batches = []
    for from_ in range(0, len(alphas), batch_size):
        to = min(from_ + batch_size, len(alphas))
        alpha_batch = alphas[from_:to]
        interpolated = interpolate_images(baseline, image, alpha_batch)
        gradient_batches.append(compute_gradients(model, interpolated, target_class_idx))

    total_gradients = tf.concat(gradient_batches, axis=0)
    avg_gradients = integral_approximation(total_gradients, method)
    return (image - baseline) * avg_gradients
