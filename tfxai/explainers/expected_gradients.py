"""Expected Gradients: Integrated Gradients averaged over baselines drawn from a data distribution."""

from __future__ import annotations

import warnings
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from tfxai import _batching, _validation
from tfxai.errors import InvalidInputError, InvalidTypeError
from tfxai.explainers.base import AttributionExplainer

#: Baseline distributions given by name (no data set needed): fresh noise per sample.
DISTRIBUTIONS = ("uniform",)

#: The largest `num_samples`: the draws are held as two vectors of that length.
MAX_SAMPLES = 2**24


class ExpectedGradients(AttributionExplainer):
    """Expected Gradients: the expectation of IG's integrand over baselines ``x' ~ D`` and ``alpha ~ U(0, 1)``.

    ``EG(x) = E_{x' ~ D, alpha ~ U(0,1)} [ (x - x') * d score / d x (x' + alpha (x - x')) ]``,
    estimated with `num_samples` draws ``(x'_k, alpha_k)``:
    ``EG(x) ~ (1/K) sum_k (x - x'_k) * grad(x'_k + alpha_k (x - x'_k))`` (one gradient pass per
    draw). It is IG averaged over the baselines, with the path integral itself sampled:
    ``E[sum EG] = score(x) - E_{x'}[score(x')]`` (completeness in expectation, see
    :meth:`convergence_delta`). ``D`` is the data: the baselines are images of the training set, so
    no single black image decides what "absent" means.

    The draws come from the stateless `seed` and are the same ``(baseline index, alpha)`` pairs
    for every image of a call (so a map does not depend on the other images of the batch, nor
    on their order, nor on `batch_size`); ``N x num_samples`` rows are evaluated `batch_size` at
    a time. :meth:`draws` returns them.

    Attributions are ``(N, H, W, C)`` and signed; the map is ``sum_c |EG_c|`` (as
    :class:`~tfxai.IntegratedGradients`).

    Baselines on the command line (and in the demo, the zoo, the contract tests), which have no
    data set: ``baselines="uniform"``, a fresh uniform-noise image over the model's input range
    per draw (Sturmfels et al.'s "uniform" distribution). The batch's own photos are not used:
    the map of a photo would then depend on which other photos are explained with it, and a
    single photo would be its own baseline (a zero map). Give training images for the method of
    Erion et al.

    Example::

        train = tf.data.Dataset.from_tensor_slices(x_train).shuffle(10_000, seed=0).batch(64)
        eg = tfxai.ExpectedGradients(model, baselines=train, num_samples=64, seed=0)
        maps = eg(images)                                    # (N, H, W)
        attributions = eg.attributions(images)               # (N, H, W, C), signed
        eg.convergence_delta(images, attributions)           # sum - (score(x) - mean score(drawn x'))

    Args:
        model: the classifier or its adapter.
        baselines: the distribution ``D``: an array ``(B, H, W, C)`` of images in the model's
            input space (integer pixels are converted), a ``tf.data.Dataset`` of images (batched or
            not; ``(image, label)`` elements give their image), read once here, at most
            `max_baselines` images of it, or ``"uniform"`` (noise, see above).
        num_samples: draws ``K`` per image (gradient passes per image).
        max_baselines: images read from a dataset at most (the first ones: shuffle it first);
            arrays are taken whole.
        seed: seed of the draws (None: fresh draws per call).
        output: ``"logit"`` (default) or ``"probability"``.
        batch_size: rows (interpolated images) per gradient pass.

    References:
        Erion, Janizek, Sturmfels, Lundberg, Lee (2021), "Improving performance of deep learning
        models with axiomatic attribution priors and expected gradients", Nature Machine
        Intelligence 3, 620-631 (arXiv:1906.10670); Sturmfels, Lundberg, Lee (2020), "Visualizing
        the Impact of Feature Attribution Baselines", Distill.
    """

    name = "expectedgradients"
    title = "Expected Gradients"
    aliases = ("eg",)

    @classmethod
    def quick_settings(cls, quick: bool) -> dict:
        return {"baselines": "uniform", "num_samples": 16 if quick else 32, "seed": 0}

    def __init__(
        self,
        model: keras.Model,
        *,
        baselines: Any,
        num_samples: int = 32,
        max_baselines: int = 256,
        output: str = "logit",
        seed: int | None = None,
        batch_size: int = 32,
    ):
        super().__init__(model, output=output, batch_size=batch_size, seed=seed)
        self.num_samples = _validation.check_positive_int(num_samples, "num_samples", maximum=MAX_SAMPLES)
        self.max_baselines = _validation.check_positive_int(max_baselines, "max_baselines")
        if isinstance(baselines, str):
            self.distribution = _validation.check_choice(baselines, "baselines", DISTRIBUTIONS)
            self._baselines = None
        else:
            self.distribution = None
            self._baselines = self._read(baselines)

    # ------------------------------------------------------------------ baselines
    @property
    def baselines(self) -> tf.Tensor | str:
        """The baseline images ``(B, H, W, C)`` (the adapter's dtype), or the distribution's name."""
        return self.distribution if self._baselines is None else self._baselines

    @property
    def num_baselines(self) -> int | None:
        """``B``, the number of baseline images (None for a named distribution)."""
        return None if self._baselines is None else int(self._baselines.shape[0])

    def _read(self, baselines: Any) -> tf.Tensor:
        """Check `baselines` (array or dataset) and return them as one tensor in the adapter's dtype."""
        if isinstance(baselines, tf.data.Dataset):
            array = _read_dataset(baselines, self.max_baselines)
        else:
            if baselines is None or isinstance(baselines, (dict, set)) or (
                hasattr(baselines, "__next__") or (hasattr(baselines, "__iter__") and not hasattr(baselines, "__len__"))
            ):
                raise InvalidTypeError(
                    "`baselines` must be an array (B, H, W, C) of images in the model's input space, a tf.data.Dataset "
                    f"of images, or one of {DISTRIBUTIONS}. Received: {_describe(baselines)}."
                )
            array = baselines
        try:
            array = np.asarray(array.numpy() if hasattr(array, "numpy") else array)
        except (TypeError, ValueError) as error:
            raise InvalidTypeError(f"`baselines` could not be read as an array (B, H, W, C): {error}") from None
        if array.dtype.kind not in "iuf":
            raise InvalidTypeError(
                f"`baselines` must hold float or integer pixel values; received dtype {array.dtype}."
            )
        if array.ndim == 3:
            raise InvalidInputError(
                f"`baselines` must be a batch (B, H, W, C) of images; received one image of shape {array.shape}. "
                "Add a batch axis (`baselines[None]`), or use tfxai.IntegratedGradients(model, baseline=image) for "
                "one baseline."
            )
        if array.ndim != 4:
            raise InvalidInputError(f"`baselines` must have shape (B, H, W, C); received shape {array.shape}.")
        if array.shape[0] == 0:
            raise InvalidInputError("`baselines` holds no image (B = 0); pass at least one baseline image.")
        expected = self.adapter.image_shape
        if not all(e is None or e == s for e, s in zip(expected, array.shape[1:])):
            raise InvalidInputError(
                f"`baselines` has shape {array.shape} but model {self.adapter.name!r} takes images "
                f"(N, {', '.join(str(e) for e in expected)}); the baselines must be images the model takes."
            )
        if not np.all(np.isfinite(array)):
            raise InvalidInputError("`baselines` contains NaN or infinite values; clean the baseline images first.")
        tensor = tf.constant(array, self.adapter.dtype)
        self.adapter.check_range(tensor, "baselines")
        return tensor

    def check_inputs(self, images: tf.Tensor) -> None:
        """The baselines must have the images' height, width and channels (models taking any size)."""
        if self._baselines is not None and tuple(self._baselines.shape[1:]) != tuple(images.shape[1:]):
            raise InvalidInputError(
                f"`baselines` of shape {tuple(self._baselines.shape)} do not match images of shape "
                f"{tuple(images.shape)}: each baseline must have the images' (H, W, C)."
            )

    # ------------------------------------------------------------------ draws
    def _draw(self, seed: tf.Tensor, dtype: tf.DType) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """``(indices (K,) int32, alphas (K,), noise seed)`` of one call (in-graph, from the seed pair)."""
        index_seed, alpha_seed, noise_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 3))
        count = 1 if self._baselines is None else self.num_baselines
        indices = tf.random.stateless_uniform([self.num_samples], index_seed, 0, count, dtype=tf.int32)
        alphas = tf.random.stateless_uniform([self.num_samples], alpha_seed, dtype=tf.float64)
        return indices, tf.cast(alphas, dtype), noise_seed

    def draws(self) -> tuple[np.ndarray, np.ndarray]:
        """The ``(baseline indices (K,), alphas (K,))`` a call with this `seed` uses (needs a fixed seed)."""
        if self.seed is None:
            raise InvalidInputError("draws() needs a fixed `seed`: unseeded calls draw afresh each time.")
        indices, alphas, _ = self._draw(self.runtime.seed(self.seed), tf.float64)
        return indices.numpy(), alphas.numpy()

    def _baseline_rows(self, k: tf.Tensor, indices: tf.Tensor, noise_seed: tf.Tensor, like: tf.Tensor) -> tf.Tensor:
        """Baselines of draws `k` ``(R, H, W, C)`` (`like`: an image batch giving the shape and dtype)."""
        if self._baselines is not None:
            return tf.gather(tf.cast(self._baselines, like.dtype), tf.gather(indices, k))
        low, high = self.adapter.input_range
        shape = tf.shape(like)[1:]
        return tf.map_fn(
            lambda kk: tf.random.stateless_uniform(
                shape, tf.random.experimental.stateless_fold_in(noise_seed, kk), low, high, dtype=like.dtype),
            k, fn_output_signature=tf.TensorSpec(like.shape[1:], like.dtype),
        )

    def attribute_batch(self, images: tf.Tensor, targets: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        targets = self.runtime.resolve(images, targets)
        dtype = images.dtype
        indices, alphas, noise_seed = self._draw(seed, dtype)
        weight = tf.constant(1.0 / self.num_samples, dtype)

        def row(image_index: tf.Tensor, k: tf.Tensor) -> tf.Tensor:
            x = tf.gather(images, image_index)
            x0 = self._baseline_rows(k, indices, noise_seed, x)
            alpha = tf.gather(alphas, k)[:, None, None, None]
            grads = self.input_gradients(x0 + alpha * (x - x0), tf.gather(targets, image_index))[0]
            return (x - x0) * grads * weight

        spec = tf.TensorSpec(images.shape[1:], dtype)
        return _batching.accumulate_rows(row, tf.shape(images)[0], self.num_samples, self.batch_size, spec)

    def reduce_channels(self, attributions: tf.Tensor) -> tf.Tensor:
        return tf.reduce_sum(tf.abs(attributions), axis=-1)

    # ------------------------------------------------------------------ completeness
    def convergence_delta(self, images: Any, attributions: Any, targets: Any = None, *, over: str = "draws") -> np.ndarray:
        """``sum EG - (score(x) - mean score(x'))`` per image, shape (N,).

        ``over="draws"``: the mean over the `num_samples` drawn baselines (the same fixed `seed`
        must have produced `attributions`); what is left is the error of sampling one alpha per
        draw. ``over="baselines"``: the mean over every baseline image, ``E_{x'}[score(x')]``: the
        identity Expected Gradients keeps in expectation; the delta shrinks like
        ``1/sqrt(num_samples)``. (A named distribution has only ``"draws"``.)
        """
        _validation.check_choice(over, "over", ("draws", "baselines"))
        if over == "draws" and self.seed is None:
            raise InvalidInputError("convergence_delta(over='draws') needs a fixed `seed`: the draws must be the same.")
        if over == "baselines" and self._baselines is None:
            raise InvalidInputError(
                f"convergence_delta(over='baselines') needs baseline images; the distribution {self.distribution!r} "
                "has no finite set. Use over='draws'."
            )

        def body(images: tf.Tensor, targets: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
            targets = self.runtime.resolve(images, targets)
            score_x = self.scores(self.logits(images), targets)
            if over == "draws":
                indices, _, noise_seed = self._draw(seed, images.dtype)
                count = self.num_samples
                rows = lambda k: self._baseline_rows(k, indices, noise_seed, images)  # noqa: E731
            else:
                count = self.num_baselines
                rows = lambda k: tf.gather(tf.cast(self._baselines, images.dtype), k)  # noqa: E731

            def values(k: tf.Tensor) -> tf.Tensor:
                logits = self.logits(rows(k))
                return self.adapter.probabilities(logits) if self.output == "probability" else logits

            table = _batching.map_images(values, count, self.batch_size, tf.TensorSpec([self.num_classes], images.dtype))
            return score_x - tf.gather(tf.reduce_mean(table, axis=0), targets)

        difference = self._run(("delta", over), body, images, targets).numpy()
        return np.sum(np.asarray(attributions), axis=(1, 2, 3)) - difference


def _describe(value: Any) -> str:
    return f"{type(value).__module__}.{type(value).__name__}" if value is not None else "None"


def _read_dataset(dataset: tf.data.Dataset, cap: int) -> np.ndarray:
    """At most `cap` images of `dataset` (batched or not; ``(image, label)`` elements give the image)."""
    chunks, count, truncated = [], 0, False
    iterator = iter(dataset)
    for element in iterator:
        if isinstance(element, (tuple, list)):
            element = element[0]
        if isinstance(element, dict):
            raise InvalidTypeError(
                f"`baselines` dataset yields dicts (keys {sorted(element)}); map it to images first: "
                "`ds.map(lambda d: d['image'])`."
            )
        array = np.asarray(element)
        if array.ndim == 3:
            array = array[None]
        if array.ndim != 4:
            raise InvalidInputError(
                f"`baselines` dataset yields elements of shape {array.shape}; it must yield images (H, W, C) or "
                "batches (B, H, W, C)."
            )
        take = min(cap - count, array.shape[0])
        truncated = truncated or take < array.shape[0]
        chunks.append(array[:take])
        count += take
        if count >= cap:
            truncated = truncated or next(iterator, None) is not None
            break
    if not chunks:
        raise InvalidInputError("`baselines` dataset is empty; it must yield at least one image.")
    if truncated:
        warnings.warn(
            f"ExpectedGradients read the first {cap} images of the `baselines` dataset (max_baselines={cap}); "
            "shuffle the dataset first so they represent the data, or raise `max_baselines`.",
            UserWarning, stacklevel=4,
        )
    return np.concatenate(chunks)
