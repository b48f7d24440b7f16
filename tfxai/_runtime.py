"""The one runtime: validation, targets, the per-shape `tf.function` cache, chunking and seeds.

Used by every explainer, the decomposition and the metrics (one engine). A
:class:`Runtime` belongs to one :class:`~tfxai.adapter.ModelAdapter` and one
`batch_size` (rows per model call after a method's expansion).

* :meth:`Runtime.images` validates images through the adapter (dtype, shape,
  NaN, range warning);
* :meth:`Runtime.targets` parses `targets` (``None`` = predicted, one int or
  class name, ``N`` ints or names) into an int32 ``(N,)`` array with
  :data:`PREDICTED` (``-1``) for "the predicted class";
* :meth:`Runtime.compiled` returns a `tf.function` per name and input shapes
  (the batch axis unknown, so batch sizes share one trace), counting traces;
* :meth:`Runtime.seed` turns ``None`` or an int into a stateless seed pair;
* :meth:`Runtime.step` is the engine of the pipelines (the evaluation runner,
  the folder stream): one compiled step per name and input specs, run on every
  replica of a `tf.distribute` strategy, with the XLA fallback and its
  warning and the in-graph non-finite guard (:class:`Step`).
"""

from __future__ import annotations

import functools
import os
import warnings
import weakref
from typing import Any, Callable

import numpy as np
import tensorflow as tf

from tfxai import _batching, _validation
from tfxai.errors import InvalidInputError, InvalidTypeError, NonFiniteResultError

PREDICTED = -1  # the in-graph marker for "explain the predicted class"
OUTPUTS = ("logit", "probability")

#: Calls per function key run eagerly before it is traced and compiled (see
#: :meth:`Runtime.compiled`); 0 always compiles. Environment: ``TFXAI_EAGER_CALLS``.
EAGER_CALLS = int(os.environ.get("TFXAI_EAGER_CALLS", "1"))


class Runtime:
    """Validation, targets, compilation and chunking for one adapted model and `batch_size`."""

    def __init__(self, adapter: Any, batch_size: int = 32):
        self.adapter = adapter
        self.batch_size = _validation.check_positive_int(batch_size, "batch_size")
        self._functions: dict = {}
        self._steps: weakref.WeakValueDictionary = weakref.WeakValueDictionary()  # a step lives as long as its pipeline
        self._eager_left: dict = {}  # key -> eager calls left before compiling
        self.trace_count = 0

    # ------------------------------------------------------------------ eager side
    def images(self, images: Any, name: str = "images") -> tf.Tensor:
        """`images` validated and converted to the adapter's dtype, ``(N, H, W, C)``."""
        return self.adapter.as_images(images, name=name)

    def targets(self, targets: Any, num_images: int, fill: bool = True) -> np.ndarray | None:
        """``(N,)`` int32 class indices (``-1`` = predicted when `fill`, else None for "predicted")."""
        parsed = parse_targets(targets, num_images, self.adapter.num_classes, self.adapter)
        if parsed is None and fill:
            return np.full((num_images,), PREDICTED, np.int32)
        return parsed

    def seed(self, seed: int | None) -> tf.Tensor:
        """A stateless seed pair; a fresh random one when `seed` is None."""
        value = seed if seed is not None else int(np.random.default_rng().integers(2**31 - 1))
        return tf.constant([value % (2**31 - 1), 0], tf.int32)

    def compiled(self, name: Any, body: Callable, *examples: tf.Tensor, seed: bool = False, eager: bool = True) -> Callable:
        """``body(*tensors)``, run eagerly at first and as a `tf.function` once the call comes back.

        The `tf.function` is cached per `name` and the examples' shapes and
        dtypes (every example has a batch axis, left unknown in the signature,
        so batch sizes share one trace); with `seed`, a last argument, the
        ``(2,)`` int32 seed pair, is added.

        The first :data:`EAGER_CALLS` calls of a key run ``body`` eagerly (no
        tracing: a student's first map costs about as much as the eager
        lecture code); the next call traces and compiles, and every later call
        runs the compiled graph. ``TFXAI_EAGER_CALLS=0`` (or
        ``tfxai._runtime.EAGER_CALLS = 0``) always compiles. The bodies are
        pure TensorFlow (``tf.while_loop``, ``tf.cond``, ``tf.TensorArray``),
        so both paths compute the same maps. ``eager=False`` compiles on the
        first call: for bodies that loop over many chunks of model calls (RISE,
        Score-CAM), where the compiled loop saves more than tracing costs.
        """
        key = (name, tuple((tuple(e.shape[1:]), e.dtype.name) for e in examples), seed)
        if key not in self._functions:
            signature = [tf.TensorSpec((None, *e.shape[1:]), e.dtype) for e in examples]
            if seed:
                signature.append(tf.TensorSpec([2], tf.int32))

            def traced(*args: tf.Tensor) -> Any:
                self.trace_count += 1
                return body(*args)

            self._functions[key] = tf.function(traced, input_signature=signature)
            self._eager_left[key] = EAGER_CALLS if eager else 0
        if self._eager_left.get(key, 0) > 0 and tf.executing_eagerly():
            return functools.partial(self._eager, key, body)
        return self._functions[key]

    def step(
        self,
        name: Any,
        body: Callable,
        specs: Any,
        *,
        strategy: tf.distribute.Strategy | None = None,
        jit: bool = False,
        guard: Callable[[Any], dict] | None = None,
        reduce: Callable[[tf.distribute.Strategy, Any], Any] | None = None,
        prepare: Callable | None = None,
        hint: str = "",
    ) -> "Step":
        """The compiled pipeline step `name` (see :class:`Step`), one per name, input specs, strategy and `jit`.

        `name` must identify `body` (the runner and the stream put a token of
        their run in it, ``object()``): while the step is alive (held by
        its pipeline), a second call with the same key returns the same step,
        traced once; the runtime keeps no step its pipeline has dropped.
        """
        strategy = strategy if strategy is not None else tf.distribute.get_strategy()
        flat = tuple(tf.nest.flatten(specs, expand_composites=False))
        try:
            hash(flat)
        except TypeError:
            flat = repr(flat)
        key = (name, flat, strategy, bool(jit))
        step = self._steps.get(key)
        if step is None:
            step = Step(body, specs, strategy=strategy, jit=jit, guard=guard, reduce=reduce, prepare=prepare, hint=hint,
                        what=name)
            self._steps[key] = step
        return step

    def _eager(self, key: Any, body: Callable, *args: Any) -> Any:
        """One eager call of `body` (counted against the key's eager calls)."""
        self._eager_left[key] -= 1
        return body(*(tf.convert_to_tensor(a) for a in args))

    # ------------------------------------------------------------------ in-graph helpers
    def predicted(self, images: tf.Tensor, fixed: bool = False) -> tf.Tensor:
        """``(N,)`` argmax classes of `images`, chunked by `batch_size` (in-graph; `fixed`: static chunks for XLA)."""
        return _batching.map_images(
            lambda index: tf.argmax(self.adapter.logits(tf.gather(images, index)), axis=-1, output_type=tf.int32),
            tf.shape(images)[0],
            self.batch_size,
            tf.TensorSpec([], tf.int32),
            fixed=fixed,
        )

    def resolve(self, images: tf.Tensor, targets: tf.Tensor, fixed: bool = False) -> tf.Tensor:
        """`targets` with ``-1`` replaced by the predicted classes (one forward pass only if needed)."""
        targets = tf.cast(targets, tf.int32)
        return tf.cond(
            tf.reduce_any(targets < 0),
            lambda: tf.where(targets < 0, self.predicted(images, fixed), targets),
            lambda: targets,
        )


class Step:
    """One compiled step of a pipeline, run on every replica of a `tf.distribute` strategy.

    ``body(*args)`` is the per-replica computation (pure TensorFlow: an
    explainer's ``explain_batch``, the metrics' in-graph cores); `specs` the
    input signature (the distributed dataset's element specs, batch axis
    unknown, so every batch size shares one trace). The step owns:

    * compilation: one `tf.function` of ``strategy.run(body, args)``
      (:attr:`function`); with `jit` the body is compiled with XLA;
    * the XLA fallback: when XLA cannot compile the body (data-dependent
      shapes), one ``RuntimeWarning`` and the step runs without XLA from then on;
    * the non-finite guard: `guard(outputs) -> {label: tensor}` selects maps
      whose rows holding NaN or infinities are counted in-graph, summed over
      replicas and workers, and raised as
      :class:`~tfxai.errors.NonFiniteResultError` naming the label;
    * the cross-replica part: ``reduce(strategy, outputs)`` runs after
      ``strategy.run`` (sums, gathers); without it the per-replica values are
      returned (read them with :func:`tfxai.distribute.local_results`);
    * ``prepare(*args) -> args`` runs on each replica before the (XLA) body,
      for ops XLA must not compile (the stable sort of the pixel ranks).

    Example::

        step = adapter.runtime(64).step("double", lambda x: 2 * x, [tf.TensorSpec([None, 3])])
        step(tf.ones([5, 3]))
    """

    def __init__(self, body: Callable, specs: Any, *, strategy: tf.distribute.Strategy, jit: bool = False,
                 guard: Callable | None = None, reduce: Callable | None = None, prepare: Callable | None = None,
                 hint: str = "", what: Any = "step"):
        self.body, self.specs, self.strategy = body, list(specs), strategy
        self.guard, self.reduce, self.prepare, self.hint, self.what = guard, reduce, prepare, hint, what
        self.jit = bool(jit)
        self.function = self._build(self.jit)

    def _build(self, jit: bool) -> Any:
        body, guard, prepare, strategy, reduce = self.body, self.guard, self.prepare, self.strategy, self.reduce
        compiled = tf.function(body, jit_compile=True) if jit else body

        def replica(*args: Any) -> tuple:
            if prepare is not None:
                args = prepare(*args)
            out = compiled(*args)
            bad = {label: count_non_finite(value) for label, value in guard(out).items()} if guard else {}
            return out, bad

        def run(*args: Any) -> tuple:
            out, bad = strategy.run(replica, args=args)
            bad = {label: strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None) for label, v in bad.items()}
            return (reduce(strategy, out) if reduce is not None else out), bad

        return tf.function(run, input_signature=self.specs)

    def __call__(self, *args: Any) -> Any:
        try:
            out, bad = self.function(*args)
        except (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError) as error:
            if not self.jit:
                raise
            # XLA needs static shapes; a body with data-dependent loop sizes runs as an ordinary graph instead
            self.jit = False
            self.function = self._build(False)
            lines = [line.strip() for line in str(error).splitlines() if line.strip()]
            line = next((x for x in lines if "compile-time" in x or "XLA" in x), lines[0] if lines else type(error).__name__)
            warnings.warn(
                f"jit_compile: XLA cannot compile the step {_label(self.what)} ({line[:200]}); it runs without XLA.",
                RuntimeWarning,
                stacklevel=3,
            )
            out, bad = self.function(*args)
        counts = {label: int(value) for label, value in bad.items()}  # blocks until every replica is done
        if any(counts.values()):
            raise NonFiniteResultError(
                "; ".join(f"{label} gave NaN or infinite maps for {n} image(s) of this batch" for label, n in counts.items() if n)
                + (f". {self.hint}" if self.hint else ".")
            )
        return out


def _label(what: Any) -> str:
    """The words of a step's name (its strings, nested tuples flattened): ``"evaluate explain Grad-CAM"``."""
    if isinstance(what, str):
        return what
    if isinstance(what, tuple):
        return " ".join(word for word in (_label(w) for w in what) if word)
    return ""


def count_non_finite(maps: tf.Tensor) -> tf.Tensor:
    """Number of rows of `maps` holding NaN or infinite values (int32 scalar, in-graph)."""
    flat = tf.reshape(maps, [tf.shape(maps)[0], -1])
    return tf.reduce_sum(tf.cast(tf.reduce_any(~tf.math.is_finite(flat), axis=1), tf.int32))


def explainer_seed(explainer: Any) -> tf.Tensor:
    """The seed pair of one call of `explainer` (its runtime's :meth:`Runtime.seed` of its `seed`; fresh when None)."""
    runtime = getattr(explainer, "runtime", None)
    if runtime is not None and hasattr(runtime, "seed"):
        return runtime.seed(getattr(explainer, "seed", None))
    return tf.constant([0, 0], tf.int32)


def resolve_predicted(targets: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    """``targets`` with every ``-1`` replaced by the argmax of the row's logits."""
    predicted = tf.argmax(logits, axis=-1, output_type=tf.int32)
    return tf.where(targets < 0, predicted, tf.cast(targets, tf.int32))


def row_seed(seed: tf.Tensor, index: tf.Tensor) -> tf.Tensor:
    """A stateless seed for draw `index` derived from a call's seed pair."""
    return tf.stack([seed[0], seed[1] + tf.cast(index, tf.int32)])


def check_finite(values: Any, what: str, hint: str) -> None:
    """Raise :class:`NonFiniteResultError` when `values` hold NaN or infinities (never return them)."""
    array = np.asarray(values)
    if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
        bad = np.unique(np.nonzero(~np.isfinite(array.reshape(array.shape[0], -1)))[0]).tolist()
        raise NonFiniteResultError(
            f"{what} gave NaN or infinite values (images {bad[:10]}{'...' if len(bad) > 10 else ''}). {hint}"
        )


def parse_targets(targets: Any, num_images: int, num_classes: int, adapter: Any = None) -> np.ndarray | None:
    """Check `targets` and return an int32 array of shape (N,), or None for "predicted".

    Accepted: None, one int, N ints, and (when the model's class names are
    known) one class name or N names.

    Raises:
        InvalidTypeError: for floats, booleans, unknown strings or mixed types.
        InvalidInputError: for a wrong number of targets, out-of-range classes,
            an empty list or a 2-D array.
    """
    if targets is None:
        return None
    if isinstance(targets, (bool, np.bool_)):
        raise InvalidTypeError(f"`targets` must be None, an int or N ints. Received: targets={targets!r}.")
    if isinstance(targets, str):
        targets = [targets] * num_images
    if isinstance(targets, (list, tuple)) and any(isinstance(t, str) for t in targets):
        if not all(isinstance(t, str) for t in targets):  # indices and names mixed: each read as what it is
            if adapter is None:
                raise InvalidTypeError(f"`targets` must be class indices; received names in {list(targets)[:5]}.")
            targets = [adapter.class_index(t) if isinstance(t, str) else t for t in targets]
    if isinstance(targets, (int, np.integer)):
        array = np.full((num_images,), int(targets), dtype=np.int64)
    else:
        try:
            array = np.asarray(targets.numpy() if hasattr(targets, "numpy") else targets)
        except Exception:  # noqa: BLE001 - ragged and other unconvertible inputs
            raise InvalidTypeError(
                f"`targets` must be None, an int or a sequence of N ints. Received: {targets!r}."
            ) from None
        if array.size == 0:
            raise InvalidInputError(
                f"`targets` is empty (received {targets!r}); pass None for the predicted classes, one class index "
                f"for every image, or {num_images} class indices."
            )
        if array.dtype.kind in "US":
            if adapter is None:
                raise InvalidTypeError(f"`targets` must be class indices; received names {array[:5].tolist()}.")
            array = np.asarray([adapter.class_index(str(n)) for n in array.reshape(-1)]).reshape(array.shape)
        if array.ndim == 2:
            if array.shape[1] == 1:
                raise InvalidInputError(
                    f"`targets` must be a flat vector of shape (N,); received shape {array.shape} (a column). "
                    "Flatten it: `np.ravel(targets)`."
                )
            raise InvalidInputError(
                f"`targets` must be class indices of shape (N,); received shape {array.shape}, "
                "which looks one-hot. Pass `np.argmax(targets, axis=-1)` instead."
            )
        if array.dtype.kind not in "iu":
            if array.dtype.kind == "f" and array.size and np.all(array == np.round(array)) and array.ndim == 1:
                raise InvalidTypeError(
                    "`targets` must be integer class indices; received floats "
                    f"{array[:8].tolist()}. Cast them: `np.asarray(targets, dtype=int)`."
                )
            raise InvalidTypeError(
                f"`targets` must be integer class indices; received an array of dtype {array.dtype}: "
                f"{array.reshape(-1)[:8].tolist()}."
            )
        if array.ndim == 0:
            array = np.full((num_images,), int(array), dtype=np.int64)
        elif array.ndim != 1:
            raise InvalidInputError(f"`targets` must have shape (N,); received shape {array.shape}.")
    if array.shape[0] != num_images:
        raise InvalidInputError(
            f"`targets` has {array.shape[0]} entries but `images` has {num_images} images. "
            "Pass one class index per image, a single int, or None for the predicted class. "
            f"Received: targets={array[:10].tolist()}{'...' if array.shape[0] > 10 else ''}."
        )
    bad = (array < 0) | (array >= num_classes)
    if bad.any():
        raise InvalidInputError(
            f"`targets` must be class indices in [0, {num_classes - 1}] for a model with "
            f"{num_classes} classes. Received out-of-range values: {sorted(set(array[bad].tolist()))[:10]}."
        )
    return array.astype(np.int32)


def targets_from_text(text: str, num_images: int, adapter: Any) -> np.ndarray:
    """The command line's ``--targets``: ``"3"``, ``"tabby"`` or ``"3,tabby,..."`` (one for all images, or one each).

    Digits are class indices, anything else a class name; checked by :func:`parse_targets`.
    """
    items = [t.strip() for t in str(text).split(",") if t.strip()]
    values = [int(t) if t.lstrip("-").isdigit() else t for t in items]
    if not values:
        raise InvalidInputError(f"--targets is empty (received {text!r}); pass a class index or name.")
    return parse_targets(values[0] if len(values) == 1 else values, num_images, adapter.num_classes, adapter)
