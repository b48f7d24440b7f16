"""The explainer contract shared by every method.

An explainer is built once per model, ``explainer = Method(model, ...)``, and
called on batches: ``maps = explainer(images, targets=None)``.

* `model`: a Keras classifier or a :class:`~tfxai.adapter.ModelAdapter`
  (``tfxai.adapt(model, input_range=...)``); method hyperparameters are
  keyword-only after it (and after `layer` for the CAM family).
* `images`: array ``(N, H, W, C)``, channels-last, in the model's input space.
* `targets`: ``None`` (each image's predicted class), one int or class name,
  or ``N`` of them.
* Returns ``(N, H, W)`` maps at input resolution in the adapter's float dtype
  (float32 for ordinary models), unnormalised unless the method's definition
  normalises. NaN or infinite maps are never returned (an error says why);
  a constant or all-zero map gives a :class:`~tfxai.errors.DegenerateMapWarning`
  naming the images and the likely cause (:meth:`Explainer.degenerate_cause`).

A method is one small class: it declares its registry `name`, `title`,
whether its maps are `signed`, and implements :meth:`Explainer.explain_batch`,
the pure-TensorFlow body ``(images, targets, seed) -> maps`` run by the shared
runtime (:mod:`tfxai._runtime`) inside one `tf.function` per input shape.
Defining such a class registers it: the command line, the demo, the
benchmarks and the contract tests pick it up from :mod:`tfxai._registry`.
"""

from __future__ import annotations

import warnings
from typing import Any, Callable, ClassVar

import numpy as np
import tensorflow as tf

from tfxai import _registry, _runtime, _validation
from tfxai.adapter import adapt
from tfxai.errors import DegenerateMapWarning, InvalidInputError

PREDICTED = _runtime.PREDICTED


class Explainer:
    """Base class of every method: model adapter, runtime, registry entry.

    Args:
        model: a Keras image classifier (functional, Sequential or nested) or
            a :class:`~tfxai.adapter.ModelAdapter`. It is never modified; the
            logits are read from its live variables.
        output: ``"logit"`` or ``"probability"``: what score of the target is explained.
        batch_size: rows per model call after a method's expansion.
        seed: seed of random methods (None: a fresh seed per call); ignored by
            deterministic ones.

    Class attributes (the registry entry):
        name: command-line name (None: not registered); title: display name;
        signed: maps carry a sign (plotted with a diverging scale); slow: left
        out of the default selection; aliases: other accepted names.
    """

    name: ClassVar[str | None] = None
    title: ClassVar[str] = ""
    signed: ClassVar[bool] = False
    slow: ClassVar[bool] = False
    aliases: ClassVar[tuple[str, ...]] = ()
    takes_layer: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("name"):
            _registry.register(cls)

    @classmethod
    def quick_settings(cls, quick: bool) -> dict:
        """Keyword arguments of the command line and the demo (`quick`: fewer samples/steps)."""
        return {}

    def __init__(self, model: Any, *, output: str = "logit", batch_size: int = 32, seed: int | None = None):
        self.adapter = adapt(model)
        self.model = self.adapter.model
        self.output = _validation.check_choice(output, "output", _runtime.OUTPUTS)
        self.runtime = _runtime.Runtime(self.adapter, batch_size)
        self.batch_size = self.runtime.batch_size
        self.seed = _validation.check_seed(seed)
        self.num_classes = self.adapter.num_classes

    # ----------------------------------------------------------------- public
    def __call__(self, images: Any, targets: Any = None) -> tf.Tensor:
        """Explain `images` for `targets`; returns ``(N, H, W)`` maps."""
        return self._run("explain", self.explain_batch, images, targets)

    def predict(self, images: Any) -> np.ndarray:
        """The predicted class of each image, shape (N,) (what ``targets=None`` explains)."""
        images = self.runtime.images(images)
        fn = self.runtime.compiled("predict", self.runtime.predicted, images, eager=not self.slow)
        return fn(images).numpy()

    @property
    def trace_count(self) -> int:
        """Number of `tf.function` traces so far (one per input shape and entry point)."""
        return self.runtime.trace_count

    def __repr__(self) -> str:
        hidden = ("model", "adapter", "runtime", "num_classes")
        params = {k: v for k, v in vars(self).items() if not k.startswith("_") and k not in hidden}
        args = ", ".join(f"{k}={v!r}" for k, v in params.items())
        return f"{type(self).__name__}(model={self.adapter.name!r}, {args})"

    # ------------------------------------------------------ for subclasses
    def check_inputs(self, images: tf.Tensor) -> None:
        """Method-specific checks of a validated batch, run eagerly before tracing (raise errors here)."""

    def explain_batch(self, images: tf.Tensor, targets: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        """Pure-TF body: ``(N, H, W, C)`` images, ``(N,)`` targets (``-1`` = predicted), seed pair -> maps."""
        raise NotImplementedError

    def logits(self, images: tf.Tensor) -> tf.Tensor:
        """Class logits ``(N, num_classes)`` of the model (softmax stripped), inference mode."""
        return self.adapter.logits(images)

    def scores(self, logits: tf.Tensor, targets: tf.Tensor) -> tf.Tensor:
        """The explained score per row; ``targets == -1`` picks the row's argmax."""
        return self.adapter.scores(logits, _runtime.resolve_predicted(targets, logits), self.output)

    def input_gradients(self, images: tf.Tensor, targets: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Gradient of each row's score w.r.t. its input, and the logits: one pass."""
        with tf.GradientTape() as tape:
            tape.watch(images)
            logits = self.logits(images)
            scores = self.scores(logits, targets)
        return tape.gradient(scores, images), logits

    # --------------------------------------------------------------- plumbing
    def _run(self, name: str, body: Callable, images: Any, targets: Any) -> Any:
        images = self.runtime.images(images)
        self.check_inputs(images)
        parsed = self.runtime.targets(targets, int(images.shape[0]))
        # slow methods loop over many model calls: their compiled loop beats tracing's cost at once
        fn = self.runtime.compiled(name, body, images, tf.constant(parsed), seed=True, eager=not self.slow)
        result = fn(images, tf.constant(parsed), self.runtime.seed(self.seed))
        values = tf.nest.flatten(result)
        for value in values:
            _runtime.check_finite(
                np.asarray(value), f"{type(self).__name__}",
                f"Check the inputs and the settings ({self!r}): an overflowing noise scale, a NaN baseline or "
                "a model that produces NaN on these images.",
            )
        if len(values) == 1 and len(values[0].shape) >= 3:
            self._check_degenerate(np.asarray(values[0]))
        return result

    def degenerate_cause(self, zero: bool) -> str:
        """The likely cause of an all-zero (`zero`) or constant map, for :class:`DegenerateMapWarning`."""
        if zero:
            return (
                "the target's score does not respond to the input here: its gradient is zero (dead ReLUs, a saturated "
                "softmax, random weights) or, for perturbation methods, masking the image does not change it"
            )
        return "every pixel gets the same value; check the model (random weights?) and the method's settings"

    def _check_degenerate(self, maps: np.ndarray) -> None:
        """Warn when the map of an image is constant or all zero (numpy on the fetched result)."""
        flat = maps.reshape(maps.shape[0], -1)
        if flat.shape[1] < 2:
            return
        low, high = flat.min(axis=1), flat.max(axis=1)
        constant = high == low
        if not constant.any():
            return
        title = self.title or type(self).__name__
        for zero, word in ((True, "all-zero"), (False, "constant")):
            bad = np.nonzero(constant & ((high == 0) == zero))[0].tolist()
            if bad:
                shown = f"{bad[:10]}{'...' if len(bad) > 10 else ''}"
                warnings.warn(
                    f"{title} map {word} for images {shown} (of {len(flat)}): {self.degenerate_cause(zero)}.",
                    DegenerateMapWarning, stacklevel=4,
                )


class AttributionExplainer(Explainer):
    """An explainer with per-channel attributions ``(N, H, W, C)`` reduced to a map.

    Subclasses implement :meth:`attribute_batch` and :meth:`reduce_channels`.
    """

    def attributions(self, images: Any, targets: Any = None) -> tf.Tensor:
        """Signed per-channel attributions, shape ``(N, H, W, C)``."""
        return self._run("attributions", self.attribute_batch, images, targets)

    def explain_batch(self, images: tf.Tensor, targets: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        return self.reduce_channels(self.attribute_batch(images, targets, seed))

    def attribute_batch(self, images: tf.Tensor, targets: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        raise NotImplementedError

    def reduce_channels(self, attributions: tf.Tensor) -> tf.Tensor:
        raise NotImplementedError


class BaselineExplainer(AttributionExplainer):
    """An attribution method with a reference image `x'` (Integrated Gradients, DeepLIFT, Guided IG).

    Subclasses set ``self._baseline = tfxai.baselines.Baseline(baseline)`` in ``__init__``; this class
    builds the baselines in-graph, checks array/callable baselines eagerly before tracing, and gives the
    completeness check every such method has: ``sum A - (score(x) - mean score(x'))``.
    """

    #: Baseline draws averaged per image (IG's ``num_baseline_samples``; 1 for the others).
    num_baseline_samples: int = 1

    @property
    def input_range(self) -> tuple[float, float]:
        """The valid pixel range named baselines use (the model adapter's, see :func:`tfxai.adapt`)."""
        return self.adapter.input_range

    def baselines(self, images: tf.Tensor, seed: tf.Tensor, draw: Any = 0) -> tf.Tensor:
        """Baselines ``(N, H, W, C)`` of `images` for draw `draw` (in-graph)."""
        return self._baseline(images, self.input_range, _runtime.row_seed(seed, draw))

    def check_inputs(self, images: tf.Tensor) -> None:
        """Check an array baseline's shape, and a callable baseline's output, eagerly before tracing."""
        self._baseline.check(images)

    def convergence_delta(self, images: Any, attributions: Any, targets: Any = None) -> np.ndarray:
        """``sum A - (score(x) - mean score(x'))`` per image, shape ``(N,)`` (Captum's delta).

        Exact for deterministic baselines; for a random baseline the same `seed` must have
        produced `attributions`.
        """
        if self.seed is None and self._baseline.random:
            raise InvalidInputError(
                f"convergence_delta needs a fixed `seed` for the random baseline {self.baseline!r}: build "
                f"{type(self).__name__} with seed=0 so that the attributions and the delta use the same baselines."
            )
        draws = self.num_baseline_samples

        def body(images: tf.Tensor, targets: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
            targets = self.runtime.resolve(images, targets)
            score_x = self.scores(self.logits(images), targets)
            score_0 = tf.add_n([self.scores(self.logits(self.baselines(images, seed, d)), targets) for d in range(draws)])
            return score_x - score_0 / draws

        difference = self._run("delta", body, images, targets).numpy()
        return np.sum(np.asarray(attributions, dtype=np.float64), axis=(1, 2, 3)) - difference
