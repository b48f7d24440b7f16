"""Layer-wise relevance propagation (LRP) as an attribution explainer.

The rules, the composites and the table that replays the model live in
:mod:`tfxai.relevance`; this module runs them: one forward pass through the
user's layers (each wrapped in its rule's ``tf.custom_gradient`` op) and one
modified backward pass that carries the relevance from the target logit to the
input pixels.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import keras
import numpy as np
import tensorflow as tf

from tfxai import _batching, _runtime, relevance, surgery
from tfxai.errors import InvalidInputError, InvalidTypeError, UnsupportedModelError
from tfxai.explainers.base import AttributionExplainer


class Conservation(NamedTuple):
    """Relevance totals of a batch, to check conservation in the open (all ``(N,)`` NumPy arrays).

    Attributes:
        logits: the target logit ``f_t(x)``, the relevance put in at the output.
        input: ``sum R`` over the input pixels and channels (what the map sums to).
        layers: ``[(layer name, totals)]``: the relevance total at every layer's output, in execution
            order (nested models flattened; the final layer without its softmax is ``"<name>_linear"``).
            Between a layer and the layers it feeds, the drop is what they absorbed (biases, the
            stabiliser, a non-conserving rule); a branching output sums its consumers' shares.
    """

    logits: np.ndarray
    input: np.ndarray
    layers: list

    @property
    def absorbed(self) -> np.ndarray:
        """``logits - input``: relevance absorbed on the way (biases, stabilisers); 0 for conserving rules."""
        return self.logits - self.input


class LRP(AttributionExplainer):
    """Layer-wise relevance propagation of the target logit (Bach et al. 2015; Zennit's rules).

    The target logit is the initial relevance, ``R = one_hot(t) * logits``
    (the softmax stripped), so relevance totals are in logit units like
    T-Grad's terms. Each layer sends it on by its rule (see
    :mod:`tfxai.relevance` for the formulas), in one modified backward pass;
    the attributions are the relevance at the input pixels, ``(N, H, W, C)``,
    signed, and the map is their channel sum. LRP-0 (``rule="epsilon"``,
    ``epsilon -> 0``) on a bias-free ReLU network is gradient x input.

    Conservation: ``sum R_input == logit`` for the conserving rules (LRP-0 on
    bias-free layers; zplus, alpha-beta, gamma and wsquare with zero biases;
    flat; zbox with inputs in the box); biases and the stabiliser absorb the
    rest. :meth:`conservation` reports the totals, layer by layer.

    Example::

        lrp = tfxai.LRP(model, composite="epsilon_gamma_box")
        relevance = lrp.attributions(images, targets=[281])    # (N, H, W, C), sums ~ the logit
        maps = lrp(images, targets=[281])                      # (N, H, W), channel sum
        check = lrp.conservation(images, targets=[281])
        check.logits, check.input, check.absorbed             # (N,) each

    Args:
        model: the classifier or its adapter (its input range gives the zbox bounds:
            ``tfxai.adapt(model, input_range=(low, high))``).
        rule: one rule for every linear layer (default ``"epsilon"``): ``"epsilon"``,
            ``"zplus"`` (= ``alpha1beta0``), ``"alpha_beta"``, ``"gamma"``, ``"flat"``,
            ``"wsquare"``, or ``"zbox"`` (the box rule on the first layers, epsilon
            elsewhere). Zennit's class names are accepted (``"ZPlus"``, ``"WSquare"``).
        epsilon: the epsilon rule's stabiliser (default 1e-6; also the dense layers'
            epsilon in composites). Must be >= 0.
        composite: a named composite instead of `rule`: ``"epsilon_plus_flat"``,
            ``"epsilon_gamma_box"``, ``"epsilon_alpha2_beta1"``, ``"epsilon_plus"``
            (or ``"EpsilonPlusFlat"``...).
        gamma: the gamma rule's parameter (default 0.25), for ``rule="gamma"`` and
            ``composite="epsilon_gamma_box"``.
        alpha, beta: the alpha-beta rule's weights (default 2 and 1, ``alpha - beta = 1``).
        batch_size: images per pass.

    Attributes:
        assignment: ``[(layer path, rule)]``: the rule each linear layer gets.
        first_layers: paths of the layers given the composite's first-layer rule.

    Raises:
        UnsupportedModelError: a layer without an LRP rule (swish, sigmoid, SE
            ``Multiply``, LayerNormalization, ...), all listed (attribute ``layers``).

    References:
        Bach, Binder, Montavon, Klauschen, Müller, Samek (2015), "On Pixel-Wise Explanations for
        Non-Linear Classifier Decisions by Layer-Wise Relevance Propagation", PLOS ONE 10(7).
        Montavon, Binder, Lapuschkin, Samek, Müller (2019), "Layer-Wise Relevance Propagation:
        An Overview", Explainable AI, LNCS 11700. Anders et al. (2021), "Software for Dataset-wide
        XAI: From Local Explanations to Global Insights with Zennit, CoRelAy, and ViRelAy",
        arXiv:2106.13200.
    """

    name = "lrp"
    title = "LRP"
    signed = True
    aliases = ("layerwiserelevancepropagation",)

    def __init__(self, model: Any, *, rule: str | None = None, epsilon: float | None = None,
                 composite: str | None = None, gamma: float | None = None, alpha: float | None = None,
                 beta: float | None = None, batch_size: int = 32):
        super().__init__(model, output="logit", batch_size=batch_size)
        if rule is not None and composite is not None:
            raise InvalidInputError(
                f"Give either `rule` (one rule for every layer) or `composite` (a rule per layer type), not both. "
                f"Received: rule={rule!r}, composite={composite!r}."
            )
        self.composite = relevance.composite_name(composite) if composite is not None else None
        self.rule = None if self.composite else relevance.rule_name("epsilon" if rule is None else rule)
        what = f"composite={self.composite!r}" if self.composite else f"rule={self.rule!r}"
        uses = {
            "epsilon": self.composite is not None or self.rule in ("epsilon", "zbox"),
            "gamma": self.rule == "gamma" or self.composite == "epsilon_gamma_box",
            "alpha": self.rule == "alpha_beta",
            "beta": self.rule == "alpha_beta",
        }
        given = {"epsilon": epsilon, "gamma": gamma, "alpha": alpha, "beta": beta}
        for key, value in given.items():
            if value is not None and not uses[key]:
                raise InvalidInputError(
                    f"`{key}` does not apply to {what}. Received: {key}={value!r}. "
                    + ("Use rule='alpha_beta' for alpha and beta." if key in ("alpha", "beta")
                       else "Use rule='gamma' or composite='epsilon_gamma_box'." if key == "gamma"
                       else "It is the epsilon rule's stabiliser (rule='epsilon', or the dense layers of a composite).")
                )
        self.epsilon = _non_negative(1e-6 if epsilon is None else epsilon, "epsilon")
        self.gamma = _non_negative(0.25 if gamma is None else gamma, "gamma")
        self.alpha = _non_negative(2.0 if alpha is None else alpha, "alpha")
        self.beta = _non_negative(1.0 if beta is None else beta, "beta")
        if self.rule == "alpha_beta" and abs(self.alpha - self.beta - 1.0) > 1e-12:
            raise InvalidInputError(
                f"The alpha-beta rule needs alpha - beta = 1 (it then conserves relevance). "
                f"Received: alpha={self.alpha}, beta={self.beta}. "
                "Common choices: alpha=1, beta=0 (zplus) or alpha=2, beta=1."
            )
        self._strip = self.adapter.final_layer if self.adapter.kind != "logits" else None
        chosen = relevance.settings(self.rule, self.composite, epsilon=self.epsilon, gamma=self.gamma,
                                    alpha=self.alpha, beta=self.beta)
        graph = self.adapter.graph
        self._plan = relevance.plan(graph, chosen, self._strip)
        offending = relevance.unsupported_layers(graph, self._plan, self._strip)
        if offending:
            raise UnsupportedModelError(
                f"LRP has no rule for {len(offending)} layer(s) of model {self.model.name!r}: {offending}. "
                "LRP here covers Conv2D, DepthwiseConv2D, Dense (with ReLU/ReLU6 or no activation), "
                "BatchNormalization, pooling, Add, Concatenate, ReLU/ReLU6, padding, flatten, reshape, dropout and "
                "leading Rescaling/Normalization. Use T-Grad's decomposition (mode='linearize') or a gradient "
                "method for models with smooth activations or multiplicative gates.",
                layers=offending,
            )
        if self._plan.unreachable is not None:
            self._check_box(self._plan.unreachable)
        self.first_layers = list(self._plan.first)
        self.assignment = list(self._plan.assignment)
        self._graph = self.adapter.exposed([])  # images -> raw logits on the user's layers (softmax stripped)
        self._views: dict = {}

    @classmethod
    def quick_settings(cls, quick: bool) -> dict:
        return {}

    def _check_box(self, path: str) -> None:
        raise UnsupportedModelError(
            f"The zbox rule needs a first Conv/Dense layer that reads the input of model {self.model.name!r} "
            "through preprocessing, padding, flatten or reshape layers only (its bounds come from the input "
            f"range); the first one, {path!r}, reads something else. Use composite='epsilon_plus_flat' or another "
            "rule.",
            layers=[path],
        )

    # ------------------------------------------------------------------ the pass
    def _replay(self, images: tf.Tensor, observe: Any = None) -> tf.Tensor:
        context = relevance.Context(self._plan, self.adapter.input_range, images)
        hook = surgery.Rules(relevance.rule_table(self._plan), context=context, views=self._views, observe=observe)
        raw = surgery.replay(self._graph, images, hook)
        return raw

    def _seed(self, raw: tf.Tensor, targets: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """``(class logits, resolved targets, initial relevance at the raw logits)``."""
        logits = self.adapter.class_logits(raw)
        targets = _runtime.resolve_predicted(targets, logits)
        score = tf.gather(logits, targets, axis=1, batch_dims=1)
        if self.adapter.kind == "binary":  # class 0 is -z: relevance -z at z (the rules are linear in R)
            seed = score[:, None]
        else:
            seed = tf.one_hot(targets, tf.shape(raw)[-1], dtype=raw.dtype) * tf.cast(score, raw.dtype)[:, None]
        return logits, score, tf.stop_gradient(tf.cast(seed, raw.dtype))

    def relevance_pass(self, images: tf.Tensor, targets: tf.Tensor, layers: bool = False) -> Any:
        """One forward and one modified backward pass (in-graph).

        Returns ``(input relevance (N, H, W, C), target logits (N,))``, plus with
        `layers` the list ``[(path, relevance at the layer's output)]``.
        """
        recorded: list = []

        def observe(layer: Any, outputs: Any) -> None:
            if layers and tf.is_tensor(outputs) and not isinstance(layer, keras.Model):
                recorded.append((getattr(layer, "name", ""), outputs))

        with tf.GradientTape() as tape:
            tape.watch(images)
            raw = self._replay(images, observe if layers else None)
        _, score, seed = self._seed(raw, targets)
        sources = [images] + [t for _, t in recorded]
        grads = tape.gradient(raw, sources, output_gradients=seed,
                              unconnected_gradients=tf.UnconnectedGradients.ZERO)
        r_input = tf.cast(grads[0], images.dtype)
        if not layers:
            return r_input, score
        return r_input, score, [(name, g) for (name, _), g in zip(recorded, grads[1:])]

    def attribute_batch(self, images: tf.Tensor, targets: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        # predicted targets (-1) are resolved from the logits of the relevance pass itself: no extra forward pass
        def chunk(index: tf.Tensor) -> tf.Tensor:
            return self.relevance_pass(tf.gather(images, index), tf.gather(targets, index))[0]

        spec = tf.TensorSpec(images.shape[1:], images.dtype)
        return _batching.map_images(chunk, tf.shape(images)[0], self.batch_size, spec)

    def reduce_channels(self, attributions: tf.Tensor) -> tf.Tensor:
        return tf.reduce_sum(attributions, axis=-1)

    def degenerate_cause(self, zero: bool) -> str:
        if zero:
            return ("no relevance reaches the input: the target logit is 0, or the rules drop it (dead ReLUs, zplus on "
                    "units with only negative contributions, biases absorbing it); see `conservation()`")
        return "every pixel gets the same relevance (the flat rule on a dense first layer spreads it uniformly)"

    # ------------------------------------------------------------------ conservation in the open
    def conservation(self, images: Any, targets: Any = None) -> Conservation:
        """The relevance totals of `images`: the target logit, the input total and every layer's total.

        Eager (one pass per call, not batched): for checks and teaching, not for
        large batches. ``result.absorbed = logits - input`` is what biases and
        stabilisers took; it is ~0 for the conserving rules.
        """
        images = self.runtime.images(images)
        parsed = tf.constant(self.runtime.targets(targets, int(images.shape[0])))
        r_input, score, per_layer = self.relevance_pass(images, parsed, layers=True)
        axes = lambda t: list(range(1, t.shape.rank))  # noqa: E731
        total = lambda t: tf.reduce_sum(tf.cast(t, tf.float64), axis=axes(t)).numpy()  # noqa: E731
        return Conservation(
            np.asarray(score, np.float64), total(r_input), [(name, total(t)) for name, t in per_layer],
        )

    def __repr__(self) -> str:
        setting = f"composite={self.composite!r}" if self.composite else f"rule={self.rule!r}"
        return f"LRP(model={self.adapter.name!r}, {setting}, epsilon={self.epsilon}, batch_size={self.batch_size})"


def _non_negative(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InvalidTypeError(f"`{name}` must be a number. Received: {name}={value!r}.")
    value = float(value)
    if not np.isfinite(value) or value < 0:
        raise InvalidInputError(f"`{name}` must be a finite number >= 0. Received: {name}={value!r}.")
    return value


__all__ = ["LRP", "Conservation"]
