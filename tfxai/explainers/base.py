"""The explainer contract shared by every method.

An explainer is built once per model, ``explainer = Method(model, ...)``, and
called on batches: ``maps = explainer(images, targets=None)``.

* `images`: float array ``(N, H, W, C)``, channels-last, in the model's input
  space (whatever its first layer expects).
* `targets`: ``None`` (each image's predicted class), one int, or ``N`` ints.
* Returns ``(N, H, W)`` maps at input resolution in the model's float dtype
  (float32 for ordinary models), unnormalised unless the method's definition
  normalises.

All model work runs in a `tf.function` owned by the instance, traced once per
input shape (the batch axis is left unknown, so batch sizes share one trace).
`batch_size` always means rows per model call after a method's expansion
(images x steps x samples x masks).
"""

from __future__ import annotations

from typing import Any, Callable

import keras
import numpy as np
import tensorflow as tf

from tfxai import _batching, _targets, _validation, surgery

PREDICTED = -1  # the in-graph marker for "explain the predicted class"


class Explainer:
    """Base class: validation, targets, compilation and batching for a method.

    Subclasses implement :meth:`explain_batch` in pure TensorFlow.

    Args:
        model: a Keras image classifier (functional, Sequential or nested). It
            is never modified; a model ending in softmax is explained through
            a rebuilt copy that outputs logits.
        output: ``"logit"`` or ``"probability"``: what score of the target
            class is explained.
        batch_size: rows per model call after expansion.
    """

    #: Whether the method draws random numbers (then it takes a `seed`).
    stochastic = False

    def __init__(self, model: keras.Model, *, output: str = "logit", batch_size: int = 32):
        self.model = _validation.check_model(model)
        self.output = _validation.check_choice(output, "output", _targets.OUTPUTS)
        self.batch_size = _validation.check_positive_int(batch_size, "batch_size")
        self.num_classes = surgery.num_classes(model)
        self._logits_model = surgery.logits_model(model)
        self._functions: dict[Any, Callable] = {}
        self.trace_count = 0  # number of tf.function traces (one per input shape)
        self.seed: int | None = None

    # ----------------------------------------------------------------- public
    def __call__(self, images: Any, targets: Any = None) -> tf.Tensor:
        """Explain `images` for `targets`; returns ``(N, H, W)`` maps."""
        return self._run("explain", self.explain_batch, images, targets)

    def predict(self, images: Any) -> np.ndarray:
        """The predicted class of each image, shape (N,) (what ``targets=None`` explains)."""
        images = _validation.as_images(images, self.model)
        fn = self._compiled("predict", lambda x, t, s: self.predicted_classes(x), images)
        return fn(images, tf.zeros([0], tf.int32), tf.zeros([2], tf.int32)).numpy()

    def __repr__(self) -> str:
        params = {k: v for k, v in vars(self).items() if not k.startswith("_") and k not in ("model", "trace_count")}
        args = ", ".join(f"{k}={v!r}" for k, v in params.items())
        return f"{type(self).__name__}(model={self.model.name!r}, {args})"

    # ------------------------------------------------------ for subclasses
    def check_inputs(self, images: tf.Tensor) -> None:
        """Method-specific checks of a validated batch, run eagerly before tracing (raise errors here)."""
    def explain_batch(self, images: tf.Tensor, targets: tf.Tensor) -> tf.Tensor:
        """Pure-TF body: ``(N, H, W, C)`` images and ``(N,)`` targets (``-1`` = predicted) -> maps."""
        raise NotImplementedError

    def logits(self, images: tf.Tensor) -> tf.Tensor:
        """Logits of the model (softmax stripped), inference mode."""
        return self._logits_model(images, training=False)

    def scores(self, logits: tf.Tensor, targets: tf.Tensor) -> tf.Tensor:
        """The explained score per row; ``targets == -1`` picks the row's argmax."""
        targets = resolve_predicted(targets, logits)
        return _targets.select_scores(logits, targets, self.output)

    def predicted_classes(self, images: tf.Tensor) -> tf.Tensor:
        """Argmax of the logits, chunked by `batch_size` (in-graph)."""
        spec = tf.TensorSpec([], tf.int32)
        return _batching.map_images(
            lambda index: tf.argmax(self.logits(tf.gather(images, index)), axis=-1, output_type=tf.int32),
            tf.shape(images)[0],
            self.batch_size,
            spec,
        )

    def resolve_targets(self, images: tf.Tensor, targets: tf.Tensor) -> tf.Tensor:
        """Replace ``-1`` targets by predicted classes (one extra forward pass if needed)."""
        return tf.cond(
            tf.reduce_any(targets < 0),
            lambda: tf.where(targets < 0, self.predicted_classes(images), targets),
            lambda: targets,
        )

    def input_gradients(self, images: tf.Tensor, targets: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Gradient of each row's score w.r.t. its input, and the logits: one pass."""
        with tf.GradientTape() as tape:
            tape.watch(images)
            logits = self.logits(images)
            scores = self.scores(logits, targets)
        return tape.gradient(scores, images), logits

    def row_seed(self, seed: tf.Tensor, index: tf.Tensor) -> tf.Tensor:
        """A stateless seed for draw `index` derived from the call's seed."""
        return tf.stack([seed[0], seed[1] + tf.cast(index, tf.int32)])

    # --------------------------------------------------------------- plumbing
    def _run(self, name: str, body: Callable, images: Any, targets: Any) -> tf.Tensor:
        images = _validation.as_images(images, self.model)
        self.check_inputs(images)
        parsed = _targets.parse_targets(targets, int(images.shape[0]), self.num_classes)
        if parsed is None:
            parsed = np.full((int(images.shape[0]),), PREDICTED, np.int32)
        fn = self._compiled(name, lambda x, t, s: body(x, t) if not self.stochastic else body(x, t, s), images)
        return fn(images, tf.constant(parsed, tf.int32), self._call_seed())

    def _call_seed(self) -> tf.Tensor:
        seed = self.seed if self.seed is not None else int(np.random.default_rng().integers(2**31 - 1))
        return tf.constant([seed % (2**31 - 1), 0], tf.int32)

    def _compiled(self, name: str, body: Callable, images: tf.Tensor) -> Callable:
        key = (name, tuple(images.shape[1:]), images.dtype.name)
        if key not in self._functions:
            signature = [
                tf.TensorSpec((None, *images.shape[1:]), images.dtype),
                tf.TensorSpec((None,), tf.int32),
                tf.TensorSpec((2,), tf.int32),
            ]

            def traced(images: tf.Tensor, targets: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
                self.trace_count += 1
                return body(images, targets, seed)

            self._functions[key] = tf.function(traced, input_signature=signature)
        return self._functions[key]


def resolve_predicted(targets: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    """``targets`` with every ``-1`` replaced by the argmax of the row's logits."""
    predicted = tf.argmax(logits, axis=-1, output_type=tf.int32)
    return tf.where(targets < 0, predicted, tf.cast(targets, tf.int32))


class AttributionExplainer(Explainer):
    """An explainer with per-channel attributions ``(N, H, W, C)`` reduced to a map.

    Subclasses implement :meth:`attribute_batch` and :meth:`reduce_channels`.
    """

    def attributions(self, images: Any, targets: Any = None) -> tf.Tensor:
        """Signed per-channel attributions, shape ``(N, H, W, C)``."""
        return self._run("attributions", self.attribute_batch, images, targets)

    def explain_batch(self, images: tf.Tensor, targets: tf.Tensor, seed: tf.Tensor | None = None) -> tf.Tensor:
        args = (images, targets) if seed is None else (images, targets, seed)
        return self.reduce_channels(self.attribute_batch(*args))

    def attribute_batch(self, images: tf.Tensor, targets: tf.Tensor, seed: tf.Tensor | None = None) -> tf.Tensor:
        raise NotImplementedError

    def reduce_channels(self, attributions: tf.Tensor) -> tf.Tensor:
        raise NotImplementedError
