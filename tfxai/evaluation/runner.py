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
  Increase in Confidence and ROAD, computed by the metrics' own in-graph cores
  (:func:`tfxai.metrics.perturbation.curves_fn`,
  :func:`tfxai.metrics.confidence.confidence_fn`,
  :func:`tfxai.metrics.road.road_scores_fn`), whose per-method sums are
  reduced over replicas and workers with ``strategy.reduce(SUM, ...)``.

The steps are :class:`tfxai._runtime.Step`\ s of the model's one runtime
(:meth:`tfxai._runtime.Runtime.step`: compilation, the XLA fallback, the
non-finite guard); this module is a loop over the dataset calling them.

Per-image metrics are independent, so the table equals the single-device table
up to float summation order. With several workers, worker ``i`` of ``N``
evaluates elements ``i, i + N, ...`` of the dataset (each exactly once), and
every worker ends with the same global results.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import tensorflow as tf

from tfxai import _runtime, _validation, distribute
from tfxai.adapter import adapt
from tfxai.errors import InvalidInputError, InvalidTypeError
from tfxai.evaluation.results import EvaluationResults, MethodAccumulator
from tfxai.metrics import _common, confidence, perturbation

METRICS = ("insertion", "deletion", "average_drop", "increase_in_confidence", "road")
#: What :func:`evaluate` computes by default (ROAD, 18 linear solves per image, is asked for by name).
DEFAULT_METRICS = METRICS[:4]
#: ROAD's settings in the evaluation: the removed percentages of Rong et al. and both orders.
ROAD_PERCENTAGES = (10, 20, 30, 40, 50, 60, 70, 80, 90)
TARGETS = ("predicted", "label")
SUM = tf.distribute.ReduceOp.SUM


@dataclasses.dataclass(frozen=True)
class EvaluationSettings:
    """Every setting of :func:`evaluate` but the model, the explainers and the data (checked when built).

    Attributes:
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

    Example::

        settings = EvaluationSettings(num_steps=16, metrics=("deletion",))
        evaluate(model, explainers, dataset, settings)   # or evaluate(..., num_steps=16, metrics=...)
    """

    metrics: tuple = DEFAULT_METRICS
    num_steps: int = 224
    pixels_per_step: int | None = None
    substrate: Any = "blur"
    auc: str = "trapezoid"
    confidence_substrate: Any = "black"
    targets: str = "predicted"
    batch_size: int = 16
    metric_batch_size: int = 64
    num_images: int | None = None
    strategy: Any = None
    progress: bool = True
    warmup: bool = True
    keep_per_image: bool = False
    presharded: bool = False
    jit_compile: bool = False

    def __post_init__(self) -> None:
        metrics = (self.metrics,) if isinstance(self.metrics, str) else tuple(self.metrics)
        for metric in metrics:
            _validation.check_choice(metric, "metrics", METRICS)
        object.__setattr__(self, "metrics", metrics)
        _validation.check_choice(self.targets, "targets", TARGETS)
        _validation.check_choice(self.auc, "auc", perturbation.AUC_RULES)
        object.__setattr__(self, "batch_size", _validation.check_positive_int(self.batch_size, "batch_size"))
        object.__setattr__(self, "metric_batch_size", _validation.check_positive_int(self.metric_batch_size, "metric_batch_size"))
        if self.num_images is not None:
            object.__setattr__(self, "num_images", _validation.check_positive_int(self.num_images, "num_images"))
        object.__setattr__(self, "jit_compile", bool(self.jit_compile))


def evaluate(model: Any, explainers: dict, dataset: tf.data.Dataset, settings: EvaluationSettings | None = None,
             **options: Any) -> EvaluationResults:
    """Explain every image with every explainer and average the metrics.

    Args:
        model: the classifier the explainers explain, or its adapter (scored with probabilities).
        explainers: ``{name: explainer}``; tfxai explainers (their in-graph
            ``explain_batch`` runs inside the compiled steps).
        dataset: ``(image, label)`` pairs, unbatched or already batched (rebatched
            here by `batch_size`); images in the model's input space.
        settings: an :class:`EvaluationSettings` (default: its defaults).
        **options: any field of :class:`EvaluationSettings` as a keyword
            (``metrics=``, ``num_steps=``, ``batch_size=``, ``strategy=``, ...),
            replacing the value of `settings`.

    Returns:
        :class:`~tfxai.evaluation.results.EvaluationResults` (one row per method);
        its ``settings`` record the strategy, replicas, workers and this
        worker's image count (``worker_images``).

    Example::

        results = evaluate(model, {"Grad-CAM": tfxai.GradCAM(model)}, dataset, num_steps=16)
    """
    settings = _settings(EvaluationSettings, settings, options, "evaluate")
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
    strategy = distribute.resolve(settings.strategy)
    spec = dataset.element_spec
    if not (isinstance(spec, tuple) and len(spec) == 2):
        raise InvalidInputError(f"`dataset` must yield (image, label) pairs; its element_spec is {spec}.")
    if spec[0].shape.rank == 4:
        dataset = dataset.unbatch()
    elif spec[0].shape.rank != 3:
        raise InvalidInputError(f"`dataset` images must have shape (H, W, C) or (B, H, W, C); element_spec is {spec}.")
    height, width = (int(d) for d in dataset.element_spec[0].shape[0:2])
    steps, per_step = perturbation.step_schedule(height, width, settings.num_steps, settings.pixels_per_step)
    fractions = perturbation.curve_fractions(height, width, steps, per_step)

    workers, worker = distribute.num_workers(strategy), distribute.worker_index(strategy)
    indexed = _indexed(dataset, settings.num_images, workers, worker, settings.presharded)
    distributed = distribute.distribute(strategy, indexed, settings.batch_size, shard=workers > 1 and not settings.presharded)

    engine = _Engine(model, explainers, strategy, settings, steps=steps, per_step=per_step, fractions=fractions,
                     spec=distributed.element_spec)
    accumulators = {name: MethodAccumulator(steps + 1, settings.keep_per_image) for name in explainers}
    bar = _progress(settings.num_images if workers == 1 else None, settings.progress)
    local_count = 0
    checked = False
    for indices, images, labels in distributed:
        if not checked:
            engine.check(images)
            checked = True
        chosen = engine.targets(images, labels)
        for name in explainers:
            if settings.warmup and not accumulators[name].warm:
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
    substrate = settings.substrate
    results = dict(
        metrics=list(settings.metrics), num_steps=steps, pixels_per_step=per_step,
        substrate=str(substrate) if isinstance(substrate, str) else "custom",
        auc=settings.auc, targets=settings.targets, confidence_substrate=str(settings.confidence_substrate),
        batch_size=settings.batch_size, strategy=distribute.strategy_name(strategy),
        replicas=int(strategy.num_replicas_in_sync), workers=workers, worker=worker, worker_images=local_count,
        jit_compile=settings.jit_compile,
    )
    return EvaluationResults({name: acc.result(name) for name, acc in accumulators.items()}, fractions, results)


def _settings(cls: type, settings: Any, options: dict, function: str) -> Any:
    """`settings` (or the defaults of `cls`) with the keyword `options` replacing its fields."""
    if settings is None:
        settings = cls()
    elif not isinstance(settings, cls):
        raise InvalidTypeError(f"`settings` of {function}() must be a {cls.__name__}; received {type(settings).__name__}.")
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(options) - fields)
    if unknown:
        raise InvalidTypeError(f"{function}() got unexpected keyword arguments {unknown}; the settings are {sorted(fields)}.")
    return dataclasses.replace(settings, **options) if options else settings


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
    """The steps of one evaluation: :class:`tfxai._runtime.Step`\\ s of the model's runtime, called per batch."""

    def __init__(self, model, explainers, strategy, settings, *, steps, per_step, fractions, spec):
        self.model = model
        self.explainers = explainers
        self.strategy = strategy
        self.settings = settings
        self.metrics = settings.metrics
        self.steps, self.per_step, self.fractions = steps, per_step, fractions
        self.runtime = model.runtime(settings.metric_batch_size)
        self.scores = _common.score_fn(model, "probability")
        self.jit = settings.jit_compile
        self.used: dict = {}  # this evaluation's steps, by key (the runtime holds them only while the engine does)
        self.token = object()  # names this run's steps in the runtime (its settings and explainers are in the bodies)
        # one trace per step: the distributed dataset's specs (batch axis unknown) as input signatures
        self.index_spec, self.image_spec, self.label_spec = spec
        self.target_spec = _like(self.label_spec, lambda c: c)  # the targets step's output
        self.substrate = self.confidence_substrate = None
        if "road" in self.metrics:
            from tfxai.metrics.road import ORDERS, road_scores_fn

            height, width = (int(d) for d in tf.nest.flatten(spec[1], expand_composites=True)[0].shape[1:3])
            _, self.road = road_scores_fn(
                model, (height, width), percentages=ROAD_PERCENTAGES, orders=ORDERS, noise=0.0025,
                tolerance=1e-5, max_iterations=None, output="probability", batch_size=settings.metric_batch_size,
            )

    @property
    def functions(self) -> dict:
        """This evaluation's compiled `tf.function`\\ s by key (``"targets"``, ``("explain", name)``, ``("score", name)``)."""
        return {key: step.function for key, step in self.used.items()}

    def _step(self, key: Any, body: Any, specs: list, **kwargs: Any) -> Any:
        if key not in self.used:
            self.used[key] = self.runtime.step(("evaluate", key, self.token), body, specs, strategy=self.strategy, **kwargs)
        return self.used[key]

    # ------------------------------------------------------------------ eager checks (once)
    def check(self, images: Any) -> None:
        """Eager checks on one local batch: substrates and every explainer's method-specific checks."""
        sample = next((x for x in distribute.local_results(self.strategy, images) if int(tf.shape(x)[0]) > 0), None)
        if sample is None:
            return
        sample = tf.cast(sample, self.model.dtype)
        self.model.check_range(sample)  # the range warning of the explainers' eager path
        sample = sample[:1]
        # the metrics' own substrate checks and messages (a bad substrate fails here, not inside the step)
        _common.make_substrate(self.settings.substrate, sample, self.model.input_range)
        _common.make_substrate(self.settings.confidence_substrate, sample, self.model.input_range, "confidence_substrate")
        for explainer in self.explainers.values():
            check = getattr(explainer, "check_inputs", None)
            if check is not None:
                check(tf.cast(sample, explainer.adapter.dtype))

    def _substrate(self, spec: Any, images: tf.Tensor, name: str) -> tf.Tensor:
        """The metrics' substrate of `images` in-graph (skipped for an empty batch: reflect padding rejects 0 rows)."""
        return tf.cond(
            tf.shape(images)[0] > 0,
            lambda: tf.cast(_common.make_substrate(spec, images, self.model.input_range, name), images.dtype),
            lambda: images,
        )

    # ------------------------------------------------------------------ steps
    def targets(self, images: Any, labels: Any) -> Any:
        """Per-replica int32 targets: each image's predicted class, or its label."""
        label = self.settings.targets == "label"
        dtype = self.model.dtype

        def replica(images, labels):
            if label:
                return tf.cast(labels, tf.int32)
            images = tf.cast(images, dtype)
            return self.runtime.resolve(images, tf.fill([tf.shape(images)[0]], _runtime.PREDICTED), fixed=self.jit)

        step = self._step("targets", replica, [self.image_spec, self.label_spec], jit=self.jit and not label)
        return step(images, labels)

    def explain(self, name: str, images: Any, targets: Any) -> Any:
        """Per-replica maps of method `name` (NaN or infinite maps raise)."""
        explainer = self.explainers[name]
        dtype = explainer.adapter.dtype

        def replica(images, targets, seed):
            images = tf.cast(images, dtype)
            # a replica may get an empty batch at the end of the data: skip the body (some ops reject 0 rows)
            return tf.cond(
                tf.shape(images)[0] > 0,
                lambda: tf.cast(explainer.explain_batch(images, tf.cast(targets, tf.int32), seed), dtype),
                lambda: tf.zeros(tf.shape(images)[:3], dtype),
            )

        step = self._step(
            ("explain", name), replica, [self.image_spec, self.target_spec, tf.TensorSpec([2], tf.int32)],
            jit=self.jit, guard=lambda maps: {name: maps},
            hint=f"Check the inputs and the explainer's settings ({explainer!r}).",
        )
        return step(images, targets, _runtime.explainer_seed(explainer))

    def score(self, name: str, indices: Any, images: Any, maps: Any, targets: Any) -> dict:
        """Metric sums of method `name`, reduced over replicas and workers (and per-image values when kept)."""
        step = self.used.get(("score", name)) or self._score_step(name)
        reduced, per_image = step(indices, images, maps, targets)
        reduced = tf.nest.map_structure(lambda v: v.numpy(), reduced)
        if per_image is not None:
            per_image = {k: v.numpy() for k, v in per_image.items()}
        return dict(
            count=int(reduced["count"]), sums=reduced["sums"], squares=reduced["squares"],
            curves=reduced["curves"], per_image=per_image,
        )

    def _score_step(self, name: str) -> Any:
        """The score step of method `name`: the metrics' in-graph cores on its maps."""
        dtype = self.model.dtype
        metrics, settings, batch = self.metrics, self.settings, self.settings.metric_batch_size
        curves_needed = "insertion" in metrics or "deletion" in metrics
        height, width = (int(d) for d in tf.nest.flatten(self.image_spec, expand_composites=True)[0].shape[1:3])
        curves = {
            mode: perturbation.curves_fn(self.scores, (height, width), self.steps, self.per_step, mode == "deletion",
                                         batch, fixed=self.jit)
            for mode in ("insertion", "deletion") if mode in metrics
        }
        change = confidence.confidence_fn(self.scores, batch, fixed=self.jit)

        def prepare(indices, images, maps, targets):
            images, maps = tf.cast(images, dtype), tf.cast(maps, dtype)
            # the stable ranking stays outside XLA, whose sort does not keep tied pixels in row-major order
            ranks = perturbation.pixel_ranks(maps) if curves_needed else tf.zeros([0, 0], tf.int32)
            return indices, images, maps, ranks, targets

        def replica(indices, images, maps, ranks, targets):
            values, sums = {}, {}
            if curves_needed:
                substrate = self._substrate(settings.substrate, images, "substrate")
                for mode, run in curves.items():
                    scores = run(images, substrate, ranks, targets)
                    values[mode] = perturbation.curve_auc(scores, self.fractions, settings.auc)
                    sums[mode] = tf.reduce_sum(tf.cast(scores, tf.float64), axis=0)
            if "insertion" in values and "deletion" in values:
                values["ins_del"] = values["insertion"] - values["deletion"]
            if "road" in metrics:
                scores, _ = self.road(images, maps, targets, tf.constant([0, 0], tf.int32))
                scores = tf.reshape(tf.cast(scores, tf.float64), [-1, 2, len(ROAD_PERCENTAGES)])
                values["road_morf"] = tf.reduce_mean(scores[:, 0], axis=1)
                values["road_lerf"] = tf.reduce_mean(scores[:, 1], axis=1)
                values["road"] = (values["road_lerf"] - values["road_morf"]) / 2
            if "average_drop" in metrics or "increase_in_confidence" in metrics:
                substrate = self._substrate(settings.confidence_substrate, images, "confidence_substrate")
                _, _, drop, increase = change(images, maps, substrate, targets)
                if "average_drop" in metrics:
                    values["average_drop"] = 100.0 * drop
                if "increase_in_confidence" in metrics:
                    values["increase_in_confidence"] = 100.0 * increase
            out = {
                "count": tf.shape(images)[0],
                "sums": {k: tf.reduce_sum(v) for k, v in values.items()},
                "squares": {k: tf.reduce_sum(tf.square(v)) for k, v in values.items()},
                "curves": sums,
            }
            per_image = {"index": tf.cast(indices, tf.int64), **values} if settings.keep_per_image else None
            return out, per_image

        def reduce(strategy, outputs):
            out, per_image = outputs
            reduced = tf.nest.map_structure(lambda v: strategy.reduce(SUM, v, axis=None), out)
            if per_image is not None:
                per_image = tf.nest.map_structure(lambda v: strategy.gather(v, axis=0), per_image)
            return reduced, per_image

        maps_spec = _like(self.image_spec, lambda spec: tf.TensorSpec(spec.shape[:3], self.explainers[name].adapter.dtype))
        return self._step(("score", name), replica, [self.index_spec, self.image_spec, maps_spec, self.target_spec],
                          jit=self.jit, reduce=reduce, prepare=prepare)


def _like(spec: Any, fn: Any) -> Any:
    """The spec of a step's per-replica output shaped like `spec` (each component replaced by ``fn(component)``).

    ``strategy.run`` returns plain tensors when there is one local replica, so
    a one-component per-replica spec becomes a TensorSpec.
    """
    components = [fn(c) for c in tf.nest.flatten(spec, expand_composites=True)]
    return components[0] if len(components) == 1 else type(spec)(*components)


def _progress(num_images: int | None, enabled: bool) -> Any:
    if not enabled:
        return None
    from tqdm.auto import tqdm

    # the image count of a dataset is unknown without a pass over it: show a total only when given
    return tqdm(total=num_images, unit="img", desc="evaluate")
