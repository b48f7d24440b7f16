"""Streaming evaluation of several explainers on a `tf.data.Dataset`, on one or many devices and workers.

For every batch of ``(image, label)`` pairs, every explainer explains the
batch (timed), the metrics are computed on its maps, and only per-method
*sums* are kept (metric sums, sums of squares, mean curves), so memory does not
grow with the dataset. Maps never leave the device.

Every step runs through TensorFlow's distribution engine: under a
`tf.distribute` strategy (``MirroredStrategy`` over the local GPUs,
``MultiWorkerMirroredStrategy`` over several machines; the default strategy
otherwise) the batch is split between the replicas, and for each method two
compiled `tf.function`\\ s run ``strategy.run`` on every replica at once:

* the *explain* step: ``explainer.explain_batch(images, targets, seed)`` (the
  explainer's pure-TF body), timed on its own so ``ms / image`` stays the
  explanation time;
* the *score* step: insertion/deletion curves and AUCs, Average Drop and
  Increase in Confidence (:mod:`tfxai.evaluation.steps`), whose per-method sums
  are reduced over replicas and workers with ``strategy.reduce(SUM, ...)``.

Per-image metrics are independent, so the table equals the single-device table
up to float summation order. With several workers, worker ``i`` of ``N``
evaluates elements ``i, i + N, ...`` of the dataset (each exactly once), and
every worker ends with the same global results.
"""

from __future__ import annotations

import time
import warnings
from typing import Any, Iterable

import numpy as np
import tensorflow as tf

from tfxai import _validation, distribute
from tfxai.adapter import adapt
from tfxai.errors import InvalidInputError, InvalidTypeError, NonFiniteResultError
from tfxai.evaluation import steps as S
from tfxai.evaluation.results import EvaluationResults, MethodAccumulator
from tfxai.metrics import perturbation

METRICS = ("insertion", "deletion", "average_drop", "increase_in_confidence", "road")
#: What :func:`evaluate` computes by default (ROAD, 18 linear solves per image, is asked for by name).
DEFAULT_METRICS = METRICS[:4]
#: ROAD's settings in the evaluation: the removed percentages of Rong et al. and both orders.
ROAD_PERCENTAGES = (10, 20, 30, 40, 50, 60, 70, 80, 90)
TARGETS = ("predicted", "label")
SUM = tf.distribute.ReduceOp.SUM


def evaluate(
    model: Any,
    explainers: dict,
    dataset: tf.data.Dataset,
    *,
    metrics: Iterable[str] = DEFAULT_METRICS,
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
    presharded: bool = False,
    jit_compile: bool = False,
) -> EvaluationResults:
    """Explain every image with every explainer and average the metrics.

    Args:
        model: the classifier the explainers explain, or its adapter (scored with probabilities).
        explainers: ``{name: explainer}``; tfxai explainers (their in-graph
            ``explain_batch`` runs inside the compiled steps).
        dataset: ``(image, label)`` pairs, unbatched or already batched (rebatched
            here by `batch_size`); images in the model's input space.
        metrics: any of ``"insertion"``, ``"deletion"``, ``"average_drop"``,
            ``"increase_in_confidence"`` (insertion - deletion is reported when both run)
            and ``"road"`` (:func:`tfxai.metrics.road`: MoRF and LeRF at 10..90 % removed
            with noisy linear imputation, and their combination ``(LeRF - MoRF) / 2``).
        num_steps, pixels_per_step, substrate, auc: insertion/deletion settings
            (see :func:`tfxai.metrics.insertion`).
        confidence_substrate: the `substrate` of Average Drop / Increase in Confidence.
        targets: ``"predicted"`` (the paper's protocol: each image's predicted class)
            or ``"label"`` (the dataset's label).
        batch_size: images per step, split between all replicas (TensorFlow's
            global batch; each replica explains ``ceil(batch_size / replicas)``).
        metric_batch_size: perturbed images per model call in the metrics.
        num_images: stop after this many images (of the whole dataset).
        strategy: a `tf.distribute.Strategy` (None: the current/default one).
            Under ``MultiWorkerMirroredStrategy`` every worker calls `evaluate`
            with the same arguments and gets the same global results.
        progress: show a tqdm progress bar (this worker's images).
        warmup: explain the first batch once before timing, so ms/image excludes tracing.
        keep_per_image: also keep every image's metric values (a few floats per
            image, gathered from every replica and worker) in dataset order, for
            :meth:`EvaluationResults.paired`; off, memory stays constant.
        presharded: with several workers, `dataset` already holds only this
            worker's share ``full.shard(num_workers, worker_index)`` (e.g.
            ``image_folder(..., shard=(index, count))``, which decodes only its
            own files); default: every worker passes the full dataset and it is
            sharded here.
        jit_compile: compile the replica steps with XLA (faster on GPUs; the
            explainer's body must be XLA-compatible).

    Returns:
        :class:`~tfxai.evaluation.results.EvaluationResults` (one row per method);
        its ``settings`` record the strategy, replicas, workers and this
        worker's image count (``worker_images``).
    """
    model = adapt(model)
    if not isinstance(explainers, dict) or not explainers:
        raise InvalidTypeError(
            f"`explainers` must be a non-empty dict {{name: explainer}}; received {type(explainers).__name__}."
        )
    for name, explainer in explainers.items():
        if not callable(getattr(explainer, "explain_batch", None)):
            raise InvalidTypeError(
                f"explainer {name!r} ({type(explainer).__name__}) has no in-graph `explain_batch(images, targets, seed)`; "
                "pass tfxai explainers (subclasses of tfxai.Explainer)."
            )
    if not isinstance(dataset, tf.data.Dataset):
        raise InvalidTypeError(f"`dataset` must be a tf.data.Dataset of (image, label); received {type(dataset).__name__}.")
    metrics = tuple(metrics)
    for metric in metrics:
        _validation.check_choice(metric, "metrics", METRICS)
    _validation.check_choice(targets, "targets", TARGETS)
    _validation.check_choice(auc, "auc", perturbation.AUC_RULES)
    batch_size = _validation.check_positive_int(batch_size, "batch_size")
    metric_batch_size = _validation.check_positive_int(metric_batch_size, "metric_batch_size")
    if num_images is not None:
        num_images = _validation.check_positive_int(num_images, "num_images")
    strategy = distribute.resolve(strategy)
    spec = dataset.element_spec
    if not (isinstance(spec, tuple) and len(spec) == 2):
        raise InvalidInputError(f"`dataset` must yield (image, label) pairs; its element_spec is {spec}.")
    if spec[0].shape.rank == 4:
        dataset = dataset.unbatch()
    elif spec[0].shape.rank != 3:
        raise InvalidInputError(f"`dataset` images must have shape (H, W, C) or (B, H, W, C); element_spec is {spec}.")
    height, width = (int(d) for d in dataset.element_spec[0].shape[0:2])
    steps, per_step = perturbation.step_schedule(height, width, num_steps, pixels_per_step)
    fractions = np.minimum(np.arange(steps + 1) * per_step, height * width) / (height * width)

    workers, worker = distribute.num_workers(strategy), distribute.worker_index(strategy)
    indexed = _indexed(dataset, num_images, workers, worker, presharded)
    distributed = distribute.distribute(strategy, indexed, batch_size, shard=workers > 1 and not presharded)

    engine = _Engine(
        model, explainers, strategy, metrics=metrics, steps=steps, per_step=per_step, fractions=fractions, auc=auc,
        substrate=substrate, confidence_substrate=confidence_substrate, targets=targets, metric_batch_size=metric_batch_size,
        keep_per_image=keep_per_image, jit_compile=jit_compile, spec=distributed.element_spec,
    )
    accumulators = {name: MethodAccumulator(steps + 1, keep_per_image) for name in explainers}
    bar = _progress(num_images if workers == 1 else None, progress)
    local_count = 0
    checked = False
    for batch in distributed:
        indices, images, labels = batch
        if not checked:
            engine.check(images)
            checked = True
        chosen = engine.targets(images, labels)
        for name in explainers:
            if warmup and not accumulators[name].warm:
                engine.explain(name, images, chosen)
                accumulators[name].warm = True
            start = time.perf_counter()
            maps = engine.explain(name, images, chosen)
            elapsed = time.perf_counter() - start
            reduced = engine.score(name, indices, images, maps, chosen)
            accumulators[name].add_sums(**reduced, seconds=elapsed)
        count = sum(int(tf.shape(x)[0]) for x in distribute.local_results(strategy, indices))
        local_count += count
        if bar is not None:
            bar.update(count)
    if bar is not None:
        bar.close()
    settings = dict(
        metrics=list(metrics), num_steps=steps, pixels_per_step=per_step,
        substrate=str(substrate) if isinstance(substrate, str) else "custom",
        auc=auc, targets=targets, confidence_substrate=str(confidence_substrate), batch_size=batch_size,
        strategy=distribute.strategy_name(strategy), replicas=int(strategy.num_replicas_in_sync), workers=workers,
        worker=worker, worker_images=local_count, jit_compile=bool(jit_compile),
    )
    return EvaluationResults({name: acc.result(name) for name, acc in accumulators.items()}, fractions, settings)


def _indexed(dataset: tf.data.Dataset, num_images: int | None, workers: int, worker: int, presharded: bool) -> tf.data.Dataset:
    """``(global index, image, label)`` elements (this worker's share when `presharded`)."""
    if presharded and workers > 1:
        data = dataset.enumerate().map(lambda i, item: (i * workers + worker, item[0], tf.cast(item[1], tf.int32)))
        if num_images is not None:
            data = data.take_while(lambda i, image, label: i < num_images)
        return data
    data = dataset.enumerate().map(lambda i, item: (i, item[0], tf.cast(item[1], tf.int32)))
    return data.take(num_images) if num_images is not None else data


class _Engine:
    """The compiled, distributed steps of one evaluation."""

    def __init__(self, model, explainers, strategy, *, metrics, steps, per_step, fractions, auc, substrate,
                 confidence_substrate, targets, metric_batch_size, keep_per_image, jit_compile, spec):
        self.model = model
        self.explainers = explainers
        self.strategy = strategy
        self.metrics = metrics
        self.steps, self.per_step, self.fractions, self.auc = steps, per_step, fractions, auc
        self.substrate_spec, self.confidence_substrate_spec = substrate, confidence_substrate
        self.target_mode = targets
        self.metric_batch_size = metric_batch_size
        self.keep_per_image = keep_per_image
        self.jit_compile = bool(jit_compile)
        self.probabilities = S.probability_fn(model)
        self.functions: dict = {}
        self.no_xla: set = set()
        # one trace per function: the distributed dataset's specs (batch axis unknown) as input signatures
        self.index_spec, self.image_spec, self.label_spec = spec
        self.target_spec = _like(self.label_spec, lambda c: c)  # the targets step's output
        self.seeds = {name: _seed(explainer) for name, explainer in explainers.items()}
        self.substrate = S.substrate_fn(model, substrate)
        self.confidence_substrate = S.substrate_fn(model, confidence_substrate)
        if "road" in metrics:
            from tfxai.metrics.road import ORDERS, road_scores_fn

            height, width = (int(d) for d in tf.nest.flatten(spec[1], expand_composites=True)[0].shape[1:3])
            _, self.road = road_scores_fn(
                model, (height, width), percentages=ROAD_PERCENTAGES, orders=ORDERS, noise=0.0025,
                tolerance=1e-5, max_iterations=None, output="probability", batch_size=metric_batch_size,
            )

    # ------------------------------------------------------------------ eager checks (once)
    def check(self, images: Any) -> None:
        """Eager checks on one local batch: baselines and every explainer's method-specific checks."""
        sample = next((x for x in distribute.local_results(self.strategy, images) if int(tf.shape(x)[0]) > 0), None)
        if sample is None:
            return
        sample = tf.cast(sample, S.probability_dtype(self.model))
        self.model.check_range(sample)  # the range warning of the explainers' eager path
        sample = sample[:1]
        self.substrate = S.substrate_fn(self.model, self.substrate_spec, sample)
        self.confidence_substrate = S.substrate_fn(self.model, self.confidence_substrate_spec, sample, "confidence_substrate")
        for explainer in self.explainers.values():
            check = getattr(explainer, "check_inputs", None)
            if check is not None:
                check(tf.cast(sample, explainer.adapter.dtype))

    def _compile(self, fn, jit: bool | None = None):
        jit = self.jit_compile if jit is None else jit
        return tf.function(fn, jit_compile=True) if jit else fn

    # ------------------------------------------------------------------ steps
    def targets(self, images: Any, labels: Any) -> Any:
        """Per-replica int32 targets: each image's predicted class, or its label."""
        if "targets" not in self.functions:
            if self.target_mode == "label":
                replica = lambda images, labels: tf.cast(labels, tf.int32)  # noqa: E731
            else:
                dtype = S.probability_dtype(self.model)
                replica = self._compile(
                    lambda images, labels: S.predicted_classes(self.probabilities, tf.cast(images, dtype), self.metric_batch_size, self.jit_compile)
                )
            self.functions["targets"] = tf.function(
                lambda images, labels: self.strategy.run(replica, args=(images, labels)),
                input_signature=[self.image_spec, self.label_spec],
            )
        return self.functions["targets"](images, labels)

    def explain_function(self, name: str):
        """The compiled explain step of method `name`: per-replica maps and the global count of bad maps."""
        key = ("explain", name)
        jit = self.jit_compile and name not in self.no_xla
        if key not in self.functions:
            explainer = self.explainers[name]
            dtype = explainer.adapter.dtype

            def replica(images, targets, seed):
                images = tf.cast(images, dtype)
                # a replica may get an empty batch at the end of the data: skip the body (some ops reject 0 rows)
                maps = tf.cond(
                    tf.shape(images)[0] > 0,
                    lambda: tf.cast(explainer.explain_batch(images, tf.cast(targets, tf.int32), seed), dtype),
                    lambda: tf.zeros(tf.shape(images)[:3], dtype),
                )
                return maps, S.count_non_finite(maps)

            replica = self._compile(replica, jit)

            def step(images, targets, seed):
                maps, bad = self.strategy.run(replica, args=(images, targets, seed))
                return maps, self.strategy.reduce(SUM, bad, axis=None)

            self.functions[key] = tf.function(
                step, input_signature=[self.image_spec, self.target_spec, tf.TensorSpec([2], tf.int32)]
            )
        return self.functions[key]

    def explain(self, name: str, images: Any, targets: Any) -> Any:
        try:
            maps, bad = self.explain_function(name)(images, targets, self.seeds[name]())
        except (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError) as error:
            if not self.jit_compile or name in self.no_xla:
                raise
            # XLA needs static shapes; a body with data-dependent loop sizes runs as an ordinary graph instead
            self.no_xla.add(name)
            self.functions.pop(("explain", name), None)
            warnings.warn(
                f"jit_compile: XLA cannot compile the explanation step of {name} ({_first_line(error)}); "
                "it runs without XLA (the metric steps stay compiled).",
                RuntimeWarning,
                stacklevel=3,
            )
            maps, bad = self.explain_function(name)(images, targets, self.seeds[name]())
        if int(bad):  # blocks until every replica is done: the timed section ends here
            raise NonFiniteResultError(
                f"{name} gave NaN or infinite maps for {int(bad)} image(s) of this batch; check the inputs and the "
                f"explainer's settings ({self.explainers[name]!r})."
            )
        return maps

    def score_function(self, name: str):
        """The compiled score step of method `name`: metric sums reduced over replicas and workers."""
        key = ("score", name)
        if key not in self.functions:
            dtype = S.probability_dtype(self.model)
            metrics = self.metrics

            curves_needed = "insertion" in metrics or "deletion" in metrics

            def core(indices, images, maps, ranks, targets):
                values, curves = {}, {}
                if curves_needed:
                    substrate = S.non_empty(self.substrate, images)
                    for mode in ("insertion", "deletion"):
                        if mode in metrics:
                            scores = S.curve_scores(
                                self.probabilities, images, substrate, ranks, targets, self.steps, self.per_step,
                                mode == "deletion", self.metric_batch_size, self.jit_compile,
                            )
                            values[mode] = S.curve_auc(scores, self.fractions, self.auc)
                            curves[mode] = tf.reduce_sum(tf.cast(scores, tf.float64), axis=0)
                if "insertion" in values and "deletion" in values:
                    values["ins_del"] = values["insertion"] - values["deletion"]
                if "road" in metrics:
                    scores, _ = self.road(images, maps, targets, tf.constant([0, 0], tf.int32))
                    scores = tf.reshape(tf.cast(scores, tf.float64), [-1, 2, len(ROAD_PERCENTAGES)])
                    values["road_morf"] = tf.reduce_mean(scores[:, 0], axis=1)
                    values["road_lerf"] = tf.reduce_mean(scores[:, 1], axis=1)
                    values["road"] = (values["road_lerf"] - values["road_morf"]) / 2
                if "average_drop" in metrics or "increase_in_confidence" in metrics:
                    drop, increase = S.confidence_terms(
                        self.probabilities, images, maps, targets, S.non_empty(self.confidence_substrate, images), self.metric_batch_size,
                        self.jit_compile,
                    )
                    if "average_drop" in metrics:
                        values["average_drop"] = 100.0 * drop
                    if "increase_in_confidence" in metrics:
                        values["increase_in_confidence"] = 100.0 * increase
                out = {
                    "count": tf.shape(images)[0],
                    "sums": {k: tf.reduce_sum(v) for k, v in values.items()},
                    "squares": {k: tf.reduce_sum(tf.square(v)) for k, v in values.items()},
                    "curves": curves,
                }
                per_image = {"index": tf.cast(indices, tf.int64), **values} if self.keep_per_image else None
                return out, per_image

            core = self._compile(core)

            def replica(indices, images, maps, targets):
                images = tf.cast(images, dtype)
                maps = tf.cast(maps, dtype)
                # the stable ranking stays outside XLA, whose sort does not keep tied pixels in row-major order
                ranks = perturbation.pixel_ranks(maps) if curves_needed else tf.zeros([0, 0], tf.int32)
                return core(indices, images, maps, ranks, targets)

            def step(indices, images, maps, targets):
                out, per_image = self.strategy.run(replica, args=(indices, images, maps, targets))
                reduced = tf.nest.map_structure(lambda v: self.strategy.reduce(SUM, v, axis=None), out)
                if per_image is not None:
                    per_image = tf.nest.map_structure(lambda v: self.strategy.gather(v, axis=0), per_image)
                return reduced, per_image

            maps_spec = _like(self.image_spec, lambda spec: tf.TensorSpec(spec.shape[:3], self.explainers[name].adapter.dtype))
            self.functions[key] = tf.function(
                step, input_signature=[self.index_spec, self.image_spec, maps_spec, self.target_spec]
            )
        return self.functions[key]

    def score(self, name: str, indices: Any, images: Any, maps: Any, targets: Any) -> dict:
        reduced, per_image = self.score_function(name)(indices, images, maps, targets)
        reduced = tf.nest.map_structure(lambda v: v.numpy(), reduced)
        if per_image is not None:
            per_image = {k: v.numpy() for k, v in per_image.items()}
        return dict(
            count=int(reduced["count"]), sums=reduced["sums"], squares=reduced["squares"],
            curves=reduced["curves"], per_image=per_image,
        )


def _first_line(error: Exception) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return next((line for line in lines if "compile-time" in line or "XLA" in line), lines[0] if lines else "")[:200]


def _like(spec: Any, fn: Any) -> Any:
    """The spec of a step's per-replica output shaped like `spec` (each component replaced by ``fn(component)``).

    ``strategy.run`` returns plain tensors when there is one local replica, so
    a one-component per-replica spec becomes a TensorSpec.
    """
    components = [fn(c) for c in tf.nest.flatten(spec, expand_composites=True)]
    return components[0] if len(components) == 1 else type(spec)(*components)


def _seed(explainer: Any):
    """A function returning the explainer's seed pair for one call (a fresh one per call when its seed is None)."""
    runtime = getattr(explainer, "runtime", None)
    if runtime is not None and hasattr(runtime, "seed"):
        return lambda: runtime.seed(getattr(explainer, "seed", None))
    return lambda: tf.constant([0, 0], tf.int32)


def _progress(num_images: int | None, enabled: bool) -> Any:
    if not enabled:
        return None
    from tqdm.auto import tqdm

    # the image count of a dataset is unknown without a pass over it: show a total only when given
    return tqdm(total=num_images, unit="img", desc="evaluate")
