"""Streaming evaluation of several explainers on a `tf.data.Dataset`.

For every batch of ``(image, label)`` pairs, every explainer explains the
batch (timed), the metrics are computed on its maps, and only per-method
*sums* are kept (metric sums, sums of squares, mean curves), so memory does not
grow with the dataset. Maps are discarded after each batch.

Under a `tf.distribute` strategy the dataset is distributed with
``strategy.experimental_distribute_dataset`` and each replica's shard is
explained and scored on that replica's device; per-image metrics are
independent, so the table equals the single-device table (up to float
summation order).
"""

from __future__ import annotations

import time
from typing import Any, Callable, Iterable

import numpy as np
import tensorflow as tf

from tfxai import _validation
from tfxai.adapter import adapt
from tfxai.errors import InvalidInputError, InvalidTypeError
from tfxai.evaluation.results import EvaluationResults, MethodAccumulator
from tfxai.metrics import confidence, perturbation

METRICS = ("insertion", "deletion", "average_drop", "increase_in_confidence")
TARGETS = ("predicted", "label")


def evaluate(
    model: Any,
    explainers: dict,
    dataset: tf.data.Dataset,
    *,
    metrics: Iterable[str] = METRICS,
    num_steps: int = 224,
    pixels_per_step: int | None = None,
    substrate: Any = "blur",
    auc: str = "trapezoid",
    confidence_substrate: Any = "black",
    targets: str = "predicted",
    batch_size: int = 16,
    metric_batch_size: int = 64,
    num_images: int | None = None,
    strategy: tf.distribute.Strategy | None = None,
    progress: bool = True,
    warmup: bool = True,
    keep_per_image: bool = False,
) -> EvaluationResults:
    """Explain every image with every explainer and average the metrics.

    Args:
        model: the classifier the explainers explain (scored with softmax probabilities).
        explainers: ``{name: explainer}``; each is called as ``explainer(images, targets)``.
        dataset: ``(image, label)`` pairs, unbatched (batched here by `batch_size`)
            or already batched; images in the model's input space.
        metrics: any of ``"insertion"``, ``"deletion"``, ``"average_drop"``,
            ``"increase_in_confidence"`` (insertion - deletion is reported when both run).
        num_steps, pixels_per_step, substrate, auc: insertion/deletion settings
            (see :func:`tfxai.metrics.insertion`).
        confidence_substrate: the `substrate` of Average Drop / Increase in Confidence.
        targets: ``"predicted"`` (the paper's protocol: each image's predicted class)
            or ``"label"`` (the dataset's label).
        batch_size: images per explained batch (if the dataset is unbatched).
        metric_batch_size: perturbed images per model call in the metrics.
        num_images: stop after this many images.
        strategy: an optional `tf.distribute.Strategy`.
        progress: show a tqdm progress bar.
        warmup: explain one image before timing, so ms/image excludes tracing.
        keep_per_image: also keep every image's metric values (a few floats per
            image) for paired comparisons (:meth:`EvaluationResults.paired`);
            off, memory stays constant however many images stream through.

    Returns:
        :class:`~tfxai.evaluation.results.EvaluationResults` (one row per method).
    """
    model = _validation.check_model(model)
    if not isinstance(explainers, dict) or not explainers:
        raise InvalidTypeError(
            f"`explainers` must be a non-empty dict {{name: explainer}}; received {type(explainers).__name__}."
        )
    if not isinstance(dataset, tf.data.Dataset):
        raise InvalidTypeError(f"`dataset` must be a tf.data.Dataset of (image, label); received {type(dataset).__name__}.")
    metrics = tuple(metrics)
    for metric in metrics:
        _validation.check_choice(metric, "metrics", METRICS)
    _validation.check_choice(targets, "targets", TARGETS)
    _validation.check_choice(auc, "auc", perturbation.AUC_RULES)
    batch_size = _validation.check_positive_int(batch_size, "batch_size")
    if num_images is not None:
        num_images = _validation.check_positive_int(num_images, "num_images")
    spec = dataset.element_spec
    if not (isinstance(spec, tuple) and len(spec) == 2):
        raise InvalidInputError(f"`dataset` must yield (image, label) pairs; its element_spec is {spec}.")
    if spec[0].shape.rank == 3:
        dataset = dataset.batch(batch_size)
    elif spec[0].shape.rank != 4:
        raise InvalidInputError(f"`dataset` images must have shape (H, W, C) or (B, H, W, C); element_spec is {spec}.")
    if num_images is not None:
        dataset = dataset.unbatch().take(num_images).batch(batch_size)
    height, width = (int(d) for d in dataset.element_spec[0].shape[1:3])
    steps, per_step = perturbation.step_schedule(height, width, num_steps, pixels_per_step)
    accumulators = {name: MethodAccumulator(steps + 1, keep_per_image) for name in explainers}
    settings = dict(
        metrics=list(metrics), num_steps=steps, pixels_per_step=per_step, substrate=str(substrate) if isinstance(substrate, str) else "custom",
        auc=auc, targets=targets, confidence_substrate=str(confidence_substrate), batch_size=batch_size,
    )
    runtime = adapt(model).runtime(metric_batch_size)
    curve_kwargs = dict(
        substrate=substrate, num_steps=num_steps, pixels_per_step=pixels_per_step, auc=auc, batch_size=metric_batch_size
    )

    def process(images: tf.Tensor, labels: tf.Tensor) -> None:
        images = runtime.images(images)
        if targets == "label":
            chosen = tf.cast(labels, tf.int32)
        else:
            chosen = runtime.compiled("predicted", runtime.predicted, images)(images)
        chosen = chosen.numpy()
        for name, explainer in explainers.items():
            if warmup and not accumulators[name].warm:
                np.asarray(explainer(images[:1], chosen[:1]))
                accumulators[name].warm = True
            start = time.perf_counter()
            maps = np.asarray(explainer(images, chosen))
            elapsed = time.perf_counter() - start
            values: dict[str, np.ndarray] = {}
            curves: dict[str, np.ndarray] = {}
            if "insertion" in metrics:
                result = perturbation.insertion(model, images, maps, chosen, **curve_kwargs)
                values["insertion"], curves["insertion"] = result.auc, result.scores
            if "deletion" in metrics:
                result = perturbation.deletion(model, images, maps, chosen, **curve_kwargs)
                values["deletion"], curves["deletion"] = result.auc, result.scores
            if "insertion" in values and "deletion" in values:
                values["ins_del"] = values["insertion"] - values["deletion"]
            if "average_drop" in metrics or "increase_in_confidence" in metrics:
                change = confidence.confidence_change(
                    model, images, maps, chosen, substrate=confidence_substrate, batch_size=metric_batch_size
                )
                if "average_drop" in metrics:
                    values["average_drop"] = 100 * change.drop
                if "increase_in_confidence" in metrics:
                    values["increase_in_confidence"] = 100 * change.increase.astype(np.float64)
            accumulators[name].add(len(chosen), elapsed, values, curves)

    bar = _progress(num_images, progress)
    for images, labels in _shards(dataset, strategy):
        for device, shard_images, shard_labels in images_on_devices(images, labels, strategy):
            with tf.device(device) if device else _null():
                process(shard_images, shard_labels)
            if bar is not None:
                bar.update(int(shard_images.shape[0]))
    if bar is not None:
        bar.close()
    fractions = np.minimum(np.arange(steps + 1) * per_step, height * width) / (height * width)
    return EvaluationResults(
        {name: acc.result(name) for name, acc in accumulators.items()}, fractions, settings
    )


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *args):
        return False


def _shards(dataset: tf.data.Dataset, strategy: Any) -> Iterable:
    if strategy is None:
        return iter(dataset)
    return iter(strategy.experimental_distribute_dataset(dataset))


def images_on_devices(images: Any, labels: Any, strategy: Any) -> list:
    """``[(device or None, images, labels)]``: one entry per replica holding data."""
    if strategy is None:
        return [(None, images, labels)]
    devices = strategy.extended.worker_devices
    local_images = strategy.experimental_local_results(images)
    local_labels = strategy.experimental_local_results(labels)
    return [
        (device, x, y)
        for device, x, y in zip(devices, local_images, local_labels)
        if int(x.shape[0]) > 0
    ]


def _progress(num_images: int | None, enabled: bool) -> Any:
    if not enabled:
        return None
    from tqdm.auto import tqdm

    # the image count of a dataset is unknown without a pass over it: show a total only when given
    return tqdm(total=num_images, unit="img", desc="evaluate")
