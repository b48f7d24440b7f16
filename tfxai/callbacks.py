"""Keras callbacks: watch explanations form while a model trains (TensorBoard image summaries).

:class:`TensorBoardExplanations` explains a few fixed images at the end of
every `every_n_epochs`-th epoch with the model being trained and writes each
map, drawn over its image, as a TensorBoard image summary::

    callback = tfxai.callbacks.TensorBoardExplanations("logs", images[:4], methods=("gradcam", "ig"))
    model.fit(x, y, epochs=10, callbacks=[callback, keras.callbacks.TensorBoard("logs")])
    # tensorboard --logdir logs   -> IMAGES tab, run "explanations": tags explanations/gradcam, explanations/ig

The explainers are built once, on the model being trained; they read its
variables when called, so each epoch shows the explanation of the current
weights (nothing is copied, the model is not changed). This is the idea of
tf-explain's callbacks (Keras 2, unmaintained), for Keras 3 and every method of
the registry.
"""

from __future__ import annotations

import os
from typing import Any, Sequence

import keras
import numpy as np
import tensorflow as tf

from tfxai import _registry
from tfxai.errors import InvalidInputError

__all__ = ["TensorBoardExplanations"]


class TensorBoardExplanations(keras.callbacks.Callback):
    """Log the maps of fixed images as TensorBoard image summaries while a model trains.

    At the end of epoch ``e`` (0-based) with ``(e + 1) % every_n_epochs == 0``,
    every method in `methods` explains `images` for `targets` with the model's
    current weights; each map is resized to its image, drawn over it (the
    colours of :func:`tfxai.plot.overlay`: a rainbow for non-negative maps, a
    red-blue scale symmetric around 0 over the grey photo for signed ones, each
    map scaled to its own 99th percentile) and written with
    :func:`write_image_summary` (the record ``tf.summary.image`` writes) under the tag ``explanations/<method>`` at step ``e``,
    one image per input, into ``<log_dir>/explanations`` (a run of its own next
    to the ``train``/``validation`` runs of ``keras.callbacks.TensorBoard``).

    Args:
        log_dir: the TensorBoard log folder (created).
        images: ``(N, H, W, C)`` images in the model's input space (or one
            ``(H, W, C)`` image); N up to a few, they are explained every time.
        methods: method names of the registry (e.g. ``("gradcam", "ig")``; see
            ``tfxai._registry.METHODS``); slow methods run with the quick settings.
        targets: the classes explained: None (the class the model predicts at
            that epoch), one class index or name for every image, or one per image.
        every_n_epochs: explain at the end of every n-th epoch.
        alpha: opacity of the maps over the images.
        input_range: the model's valid input range (for baselines and noise),
            as in :func:`tfxai.adapt`; default: read from the model.

    Example::

        model.fit(x, y, epochs=5, callbacks=[tfxai.callbacks.TensorBoardExplanations("logs", x[:3])])
    """

    def __init__(self, log_dir: str | os.PathLike, images: Any, methods: Sequence[str] | str = ("gradcam",),
                 targets: Any = None, every_n_epochs: int = 1, *, alpha: float = 0.5,
                 input_range: Sequence[float] | None = None):
        super().__init__()
        if isinstance(every_n_epochs, bool) or not isinstance(every_n_epochs, (int, np.integer)) or every_n_epochs < 1:
            raise InvalidInputError(f"`every_n_epochs` must be a whole number >= 1. Received: {every_n_epochs!r}.")
        if not 0.0 <= float(alpha) <= 1.0:
            raise InvalidInputError(f"`alpha` must be in [0, 1]. Received: {alpha!r}.")
        array = np.asarray(images.numpy() if hasattr(images, "numpy") else images)
        if array.ndim == 3:
            array = array[None]
        if array.ndim != 4 or array.shape[0] == 0:
            raise InvalidInputError(
                f"`images` must be (N, H, W, C) images (or one (H, W, C) image). Received shape {array.shape}."
            )
        if not np.issubdtype(array.dtype, np.number) or not np.all(np.isfinite(array)):
            raise InvalidInputError("`images` must be finite numbers (no NaN or infinity).")
        self.log_dir = os.fspath(log_dir)
        self.images = array.astype(np.float32)
        self.methods = _registry.parse(list(methods) if not isinstance(methods, str) else methods)
        self.targets = targets
        self.every_n_epochs = int(every_n_epochs)
        self.alpha = float(alpha)
        self.input_range = input_range
        self._explainers: dict[str, Any] = {}
        self._writer = None

    def _setup(self) -> None:
        import tfxai

        adapter = tfxai.adapt(self.model, input_range=self.input_range) if self.input_range is not None else tfxai.adapt(self.model)
        self._explainers = {name: _registry.build(name, adapter, quick=True) for name in self.methods}
        self._writer = tf.summary.create_file_writer(os.path.join(self.log_dir, "explanations"))

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._setup()

    def overlays(self) -> dict[str, np.ndarray]:
        """``{method: (N, H, W, 3) float32 overlays in [0, 1]}`` of the images with the model's current weights."""
        from tfxai.plot import _core

        if not self._explainers:
            self._setup()
        result = {}
        for name, explainer in self._explainers.items():
            maps = np.asarray(explainer(self.images, targets=self.targets), np.float64)
            if maps.ndim == 4:  # attributions per channel: the plot convention, summed over channels
                maps = maps.sum(axis=-1)
            signed = bool(_registry.METHODS[name].signed)
            panels = []
            for image, heat in zip(self.images, maps):
                rgb = _core.to_rgb(image, "images[i]")
                blended, _, _ = _core.blend(rgb, heat, alpha=self.alpha, cmap=None, signed=signed, clip_percentile=99.0)
                panels.append(blended)
            result[name] = np.clip(np.stack(panels), 0.0, 1.0).astype(np.float32)
        return result

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if (epoch + 1) % self.every_n_epochs:
            return
        overlays = self.overlays()
        with self._writer.as_default():
            for name, panels in overlays.items():
                write_image_summary(f"explanations/{name}", panels, step=epoch,
                                    description=f"{_registry.METHODS[name].title} over the fixed images")
        self._writer.flush()

    def on_train_end(self, logs: dict | None = None) -> None:
        if self._writer is not None:
            self._writer.flush()


def write_image_summary(tag: str, images: np.ndarray, step: int, description: str = "") -> None:
    """Write `images` ``(N, H, W, 3)`` floats in [0, 1] as one TensorBoard image summary to the default writer.

    The record is the one ``tf.summary.image`` writes (a string tensor ``[width,
    height, png_1, ..., png_N]`` tagged for TensorBoard's ``images`` plugin), built
    with ``tf.summary.write``, which ships with TensorFlow: ``tf.summary.image``
    itself needs the ``tensorboard`` package, which TensorFlow 2.21 does not
    install. Read the logs with ``tensorboard --logdir LOG_DIR`` (IMAGES tab).
    """
    pixels = tf.image.convert_image_dtype(tf.constant(np.asarray(images, np.float32)), tf.uint8, saturate=True)
    encoded = [tf.io.encode_png(image) for image in tf.unstack(pixels)]
    height, width = int(pixels.shape[1]), int(pixels.shape[2])
    tensor = tf.stack([tf.as_string(width), tf.as_string(height), *encoded])
    metadata = tf.compat.v1.SummaryMetadata(display_name=tag, summary_description=description)
    metadata.plugin_data.plugin_name = "images"
    tf.summary.write(tag, tensor, step=step, metadata=metadata)
