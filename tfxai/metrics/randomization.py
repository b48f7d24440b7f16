"""Cascading model-parameter randomisation (Adebayo et al., "Sanity Checks for Saliency Maps").

A *copy* of the model (``keras.models.clone_model`` + ``set_weights``; the
user's model is never touched) is re-initialised layer by layer from the output
down; after each layer the explainer is rebuilt on the randomised copy and its
maps are compared with the maps of the trained model. A method that depends on
the learned weights gives maps that decorrelate quickly.

Re-initialisation (seeded, NumPy generator):

* kernels: ``U(-1/sqrt(fan_in), +1/sqrt(fan_in))`` (PyTorch's
  ``reset_parameters`` bound), ``fan_in`` = receptive field x input channels
  (receptive field only for depthwise kernels);
* biases: drawn from the same uniform distribution, *not* zeros. Keras
  initialisers set biases to zero, which would silence the bias terms of
  FullGrad and T-Grad and make a different (weaker) sanity check;
* BatchNormalization: ``gamma ~ U(0.5, 1.5)``, ``beta ~ U(-0.5, 0.5)``, moving
  mean 0 and variance 1;
* any other weight: ``U(-0.5, 0.5)``.

Similarity: Spearman rank correlation (ordinal ranks from argsort of argsort,
ties broken by position; no SciPy) and SSIM (``tf.image.ssim`` on min-max
normalised maps, max value 1), per image and layer.

Reference:
    Adebayo, Gilmer, Muelly, Goodfellow, Hardt, Kim (2018), "Sanity Checks for
    Saliency Maps", NeurIPS.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Sequence

import keras
import numpy as np
import tensorflow as tf

from tfxai import _validation, image_ops, surgery
from tfxai.errors import InvalidInputError, InvalidTypeError


class RandomizationResult(NamedTuple):
    """Similarity of maps after each cumulative randomisation step.

    Attributes:
        layers: ``L`` layer names, in the order they were randomised (top first);
            row ``l`` is the model with every chosen layer down to ``layers[l]``
            randomised (with ``every > 1`` the layers in between are
            randomised too, without a row of their own).
        spearman: ``(L, N)`` Spearman rank correlation with the original maps.
        ssim: ``(L, N)`` SSIM with the original maps (min-max normalised).
        original_maps: ``(N, H, W)`` maps of the trained model.
        maps: ``(L, N, H, W)`` maps after each step, or None unless ``keep_maps=True``.
    """

    layers: list
    spearman: np.ndarray
    ssim: np.ndarray
    original_maps: np.ndarray
    maps: np.ndarray | None


def spearman(a: Any, b: Any) -> tf.Tensor:
    """Spearman rank correlation of each pair of maps ``(N, ...)`` -> ``(N,)`` (ordinal ranks).

    NaN when either map is constant (e.g. a CAM that a randomised layer turned to all zeros).
    """
    a = tf.reshape(tf.cast(a, tf.float64), [tf.shape(a)[0], -1])
    b = tf.reshape(tf.cast(b, tf.float64), [tf.shape(b)[0], -1])

    def ranks(x):
        return tf.cast(tf.argsort(tf.argsort(x, axis=-1, stable=True), axis=-1, stable=True), tf.float64)

    ra, rb = ranks(a), ranks(b)
    ra -= tf.reduce_mean(ra, axis=-1, keepdims=True)
    rb -= tf.reduce_mean(rb, axis=-1, keepdims=True)
    rho = tf.reduce_sum(ra * rb, -1) / tf.sqrt(tf.reduce_sum(ra * ra, -1) * tf.reduce_sum(rb * rb, -1))
    # a constant map has no ranking (ordinal ranks would only encode pixel positions): undefined
    constant = (tf.reduce_max(a, -1) == tf.reduce_min(a, -1)) | (tf.reduce_max(b, -1) == tf.reduce_min(b, -1))
    return tf.where(constant, tf.constant(np.nan, tf.float64), rho)


def ssim(a: Any, b: Any) -> tf.Tensor:
    """SSIM of each pair of ``(N, H, W)`` maps after per-map min-max normalisation -> ``(N,)``."""
    a = image_ops.minmax_normalize(tf.cast(a, tf.float32))[..., None]
    b = image_ops.minmax_normalize(tf.cast(b, tf.float32))[..., None]
    size = int(min(11, a.shape[1], a.shape[2]))
    return tf.image.ssim(a, b, max_val=1.0, filter_size=size)


def _fan_in(layer: Any, kernel_shape: tuple) -> int:
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        return int(np.prod(kernel_shape[:-2]))
    return int(np.prod(kernel_shape[:-1])) if len(kernel_shape) > 1 else int(kernel_shape[0])


def reinitialize_layer(layer: Any, rng: np.random.Generator) -> None:
    """Draw new values for every weight of `layer` (in place; see the module docstring)."""
    weights = list(layer.weights)
    if isinstance(layer, keras.layers.BatchNormalization):
        values = {
            "gamma": lambda s: rng.uniform(0.5, 1.5, s),
            "beta": lambda s: rng.uniform(-0.5, 0.5, s),
            "moving_mean": lambda s: np.zeros(s),
            "moving_variance": lambda s: np.ones(s),
        }
        for var in weights:
            name = var.path.split("/")[-1]
            draw = values.get(name, lambda s: rng.uniform(-0.5, 0.5, s))
            var.assign(draw(tuple(var.shape)).astype(var.dtype))
        return
    kernels = [w for w in weights if len(w.shape) > 1]
    bound = 1.0 / np.sqrt(_fan_in(layer, tuple(kernels[0].shape))) if kernels else 0.5
    for var in weights:
        var.assign(rng.uniform(-bound, bound, tuple(var.shape)).astype(var.dtype))


def randomizable_layers(model: keras.Model) -> list:
    """Layers that own weights, from the output down (nested models flattened)."""
    layers = [info.layer for info in surgery.iter_layers(model)]
    own = [layer for layer in layers if not isinstance(layer, keras.Model) and layer.weights]
    return own[::-1]


def _copy(model: keras.Model) -> keras.Model:
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    return clone


def cascading_randomization(
    model: Any,
    explainer_factory: Callable[[keras.Model], Callable],
    images: Any,
    targets: Any = None,
    *,
    layers: int | Sequence[str] | None = None,
    seed: int = 0,
    keep_maps: bool = False,
    every: int = 1,
) -> RandomizationResult:
    """Re-initialise a copy of `model` top-down, layer by layer, and compare maps with the original.

    Args:
        model: the trained classifier (never modified).
        explainer_factory: ``f(model) -> explainer``; called on the original model
            and on a fresh randomised copy after every step, e.g.
            ``lambda m: tfxai.GradCAM(m, layer="top_relu")``.
        images: ``(N, H, W, C)``; keep N small (every step explains them again).
        targets: classes to explain; None = the trained model's predicted
            classes, kept fixed for every randomised copy.
        layers: None (every layer with weights), an int k (the top k such layers),
            or layer names (randomised top-down in model order).
        seed: seed of the re-initialisation.
        keep_maps: also return the maps after every step (for figures).
        every: explain after every `every`-th randomised layer (and after the
            last), to follow a deep cascade (all ~150 layers of an ImageNet
            model) at a few checkpoints; the randomisation itself stays
            cumulative over every chosen layer.

    Returns:
        :class:`RandomizationResult`.
    """
    model = _validation.check_model(model)
    if not callable(explainer_factory):
        raise InvalidTypeError(
            f"`explainer_factory` must be a callable model -> explainer, e.g. `lambda m: tfxai.GradCAM(m)`; "
            f"received {type(explainer_factory).__name__}."
        )
    seed = _validation.check_seed(seed) or 0
    every = _validation.check_positive_int(every, "every")
    images = _validation.as_images(images, model)
    candidates = randomizable_layers(model)
    if layers is None:
        chosen = [layer.name for layer in candidates]
    elif isinstance(layers, (int, np.integer)) and not isinstance(layers, bool):
        count = _validation.check_positive_int(int(layers), "layers")
        chosen = [layer.name for layer in candidates[:count]]
    else:
        if isinstance(layers, str):
            layers = [layers]
        names = [layer.name for layer in candidates]
        unknown = [name for name in layers if name not in names]
        if unknown:
            raise InvalidInputError(
                f"`layers` names layers without weights or not in the model: {unknown}. "
                f"Layers with weights (top first): {names[:12]}{'...' if len(names) > 12 else ''}."
            )
        chosen = [name for name in names if name in set(layers)]
    explainer = explainer_factory(model)
    if targets is None:
        targets = explainer.predict(images) if hasattr(explainer, "predict") else None
    original = np.asarray(explainer(images, targets))
    working = _copy(model)
    # Explainers read the live variables of the model, so one explainer of the working copy follows every step.
    working_explainer = explainer_factory(working)
    by_name = {layer.name: layer for layer in randomizable_layers(working)}
    rng = np.random.default_rng(seed)
    rho, structural, kept, reported = [], [], [], []
    for step, name in enumerate(chosen, start=1):
        reinitialize_layer(by_name[name], rng)
        if step % every and step != len(chosen):
            continue
        reported.append(name)
        maps = np.asarray(working_explainer(images, targets))
        rho.append(spearman(original, maps).numpy())
        structural.append(ssim(original, maps).numpy())
        if keep_maps:
            kept.append(maps)
    count = len(reported)
    n = images.shape[0]
    return RandomizationResult(
        reported,
        np.asarray(rho, np.float64).reshape(count, n),
        np.asarray(structural, np.float64).reshape(count, n),
        original,
        np.asarray(kept) if keep_maps else None,
    )
