"""Adversarial examples: FGSM and its iterative variants (BIM / PGD).

The loss is the cross-entropy computed **from logits** (a model ending in
softmax is attacked through its logits, read from the live weights), so a
saturated softmax does not zero the gradient; a one-unit binary model uses the
logistic loss. `epsilon`, `step_size` and `clip` are in the model's input
space. By default (``clip="auto"``) the result is clipped to the model's input
range read by :func:`tfxai.adapt` (``[0, 255]`` for a model that rescales raw
pixels inside; give ``tfxai.adapt(model, input_range=(-1, 1))`` for
MobileNetV2-preprocessed inputs); ``clip=None`` disables clipping.

References:
    Goodfellow, Shlens, Szegedy (2015), "Explaining and Harnessing Adversarial
    Examples", arXiv:1412.6572; Kurakin, Goodfellow, Bengio (2017), "Adversarial
    examples in the physical world", arXiv:1607.02533 (BIM); Madry et al. (2018),
    "Towards Deep Learning Models Resistant to Adversarial Attacks",
    arXiv:1706.06083 (PGD); TensorFlow tutorial "Adversarial example using FGSM".
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

from tfxai import _validation
from tfxai.adapter import adapt
from tfxai.errors import InvalidInputError


def _prepare(model: Any, images: Any, targets: Any, targeted: bool, clip: Any):
    adapter = adapt(model)
    runtime = adapter.runtime(64)
    images = runtime.images(images)
    parsed = runtime.targets(targets, int(images.shape[0]), fill=False)
    if parsed is None:
        if targeted:
            raise InvalidInputError(
                "A targeted attack needs `targets` (the class to move towards). Received: targets=None."
            )
        parsed = runtime.compiled("predicted", runtime.predicted, images)(images).numpy()
    if isinstance(clip, str):
        _validation.check_choice(clip, "clip", ("auto",))
        bounds = adapter.input_range
    else:
        bounds = None if clip is None else _validation.check_range(clip, "clip")
    return images, tf.constant(parsed, tf.int32), adapter, bounds


def _loss_gradient(adapter: Any, images: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
    with tf.GradientTape() as tape:
        tape.watch(images)
        logits = tf.cast(adapter.logits(images), tf.float32)
        if adapter.kind in ("binary", "sigmoid"):
            # logistic loss of the target class: -log sigmoid(logit_t)
            loss = tf.reduce_sum(tf.nn.softplus(-adapter.scores(logits, labels, "logit")))
        else:
            loss = tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))
    return tape.gradient(loss, images)


def fgsm_perturbation(model: keras.Model, images: Any, targets: Any = None) -> tf.Tensor:
    """``sign(d loss / d x)``: the FGSM direction for each image, shape (N, H, W, C).

    `targets` are the labels of the loss (None: the predicted classes, which
    avoids label leaking).
    """
    images, labels, adapter, _ = _prepare(model, images, targets, False, None)
    return tf.sign(_loss_gradient(adapter, images, labels))


def fgsm(
    model: keras.Model,
    images: Any,
    targets: Any = None,
    *,
    epsilon: float,
    targeted: bool = False,
    clip: Any = "auto",
) -> tf.Tensor:
    """Fast Gradient Sign Method: one signed-gradient step of size `epsilon`.

    Untargeted: ``x + epsilon * sign(grad_x L(f(x), y))`` with ``y`` = `targets`
    (None: the predicted class). Targeted: ``x - epsilon * sign(grad_x L(f(x), t))``,
    moving towards class ``t`` = `targets` (required). The result is clipped to
    `clip`: ``"auto"`` (the model's input range, see :func:`tfxai.adapt`), a
    ``(low, high)`` pair, or None (no clipping).

    Example::

        adversarial = tfxai.fgsm(model, images, epsilon=4.0)                 # raw-pixel model: 4/255 of the range
        towards = tfxai.fgsm(model, images, "gibbon", epsilon=4.0, targeted=True)

    Returns:
        Adversarial images ``(N, H, W, C)`` in the model's dtype.
    """
    epsilon = _validation.check_non_negative_float(epsilon, "epsilon")
    images, labels, adapter, bounds = _prepare(model, images, targets, targeted, clip)
    direction = tf.sign(_loss_gradient(adapter, images, labels))
    adversarial = images + (-epsilon if targeted else epsilon) * direction
    return adversarial if bounds is None else tf.clip_by_value(adversarial, *bounds)


def iterative_fgsm(
    model: keras.Model,
    images: Any,
    targets: Any = None,
    *,
    epsilon: float,
    step_size: float | None = None,
    num_steps: int = 10,
    targeted: bool = False,
    clip: Any = "auto",
    random_start: bool = False,
    seed: int | None = None,
) -> tf.Tensor:
    """Iterative FGSM (BIM) or, with ``random_start=True``, PGD in the L-infinity ball.

    Repeats ``x_{t+1} = Proj_{||x' - x||_inf <= epsilon}(x_t +/- step_size * sign(grad))``
    `num_steps` times, clipping to `clip` after each step. `step_size` defaults
    to ``2.5 * epsilon / num_steps`` (Madry et al.). PGD starts from a uniform
    random point in the ball (seeded).
    """
    epsilon = _validation.check_non_negative_float(epsilon, "epsilon")
    num_steps = _validation.check_positive_int(num_steps, "num_steps")
    step_size = 2.5 * epsilon / num_steps if step_size is None else _validation.check_non_negative_float(step_size, "step_size")
    seed = _validation.check_seed(seed)
    images, labels, adapter, bounds = _prepare(model, images, targets, targeted, clip)
    sign = -1.0 if targeted else 1.0
    adversarial = images
    if random_start:
        rng_seed = tf.constant([0 if seed is None else seed, 1], tf.int32)
        if seed is None:
            rng_seed = tf.constant([int(np.random.default_rng().integers(2**31 - 1)), 1], tf.int32)
        noise = tf.random.stateless_uniform(tf.shape(images), rng_seed, -epsilon, epsilon, dtype=images.dtype)
        adversarial = images + noise
        if bounds is not None:
            adversarial = tf.clip_by_value(adversarial, *bounds)
    for _ in range(num_steps):
        grad = _loss_gradient(adapter, adversarial, labels)
        adversarial = adversarial + sign * step_size * tf.sign(grad)
        adversarial = tf.clip_by_value(adversarial, images - epsilon, images + epsilon)
        if bounds is not None:
            adversarial = tf.clip_by_value(adversarial, *bounds)
    return adversarial


def pgd(model: keras.Model, images: Any, targets: Any = None, **kwargs: Any) -> tf.Tensor:
    """Projected Gradient Descent: :func:`iterative_fgsm` with a random start."""
    return iterative_fgsm(model, images, targets, random_start=True, **kwargs)
