"""The layer-to-logits head of a CAM layer: the rest of the network after it, on the user's layers.

Perturbing CAM variants (Ablation-CAM) change a layer's activations and need
the logits they lead to. :class:`LayerHead` is a Keras model cut out of the
adapter's exposed graph (:meth:`tfxai.adapter.ModelAdapter.exposed`, built by
:func:`tfxai.surgery.expose`) from the layer's output to the logits: same
layers, same live variables, no weight copied, the final softmax stripped as
everywhere else. When a branch of the network bypasses the layer (a skip
connection around it), the head also takes the images.
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from tfxai.errors import InvalidInputError


class LayerHead:
    """``head(activations, images=None) -> (R, num_classes)`` class logits from a layer's activations.

    Args:
        adapter: the model's :class:`~tfxai.adapter.ModelAdapter`.
        layer: a layer object of the model (nested models included).

    Attributes:
        needs_images: True when a branch bypasses the layer, so the images must be passed too.

    Built on first use (or by :meth:`build`), once per explainer. Example::

        head = LayerHead(adapter, model.get_layer("pool"))
        logits = head(activations * keep[:, None, None, :], images)   # channels zeroed
    """

    def __init__(self, adapter: Any, layer: keras.layers.Layer):
        self.adapter = adapter
        self.layer = layer
        self.model: keras.Model | None = None
        self.needs_images = False

    def build(self) -> "LayerHead":
        if self.model is None:
            with tf.init_scope():  # build eagerly even when first called inside a traced function
                exposed = self.adapter.exposed([self.layer])
                raw, activations = exposed.outputs
                try:
                    self.model = keras.Model(activations, raw, name=f"{exposed.name}_head")
                except ValueError as error:
                    if "not connected" not in str(error):
                        raise
                    self.model = keras.Model([exposed.inputs[0], activations], raw, name=f"{exposed.name}_head")
                    self.needs_images = True
        return self

    def __repr__(self) -> str:
        return f"LayerHead({self.layer.name!r})"

    def __call__(self, activations: tf.Tensor, images: tf.Tensor | None = None) -> tf.Tensor:
        self.build()
        if self.needs_images:
            if images is None:
                raise InvalidInputError(
                    f"The head after layer {self.layer.name!r} also reads the images (a branch bypasses the layer); "
                    "pass them: head(activations, images)."
                )
            raw = self.model([images, activations], training=False)
        else:
            raw = self.model(activations, training=False)
        return self.adapter.class_logits(raw)
