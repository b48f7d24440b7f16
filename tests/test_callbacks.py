"""tfxai.callbacks.TensorBoardExplanations: maps of fixed images logged to TensorBoard while a model trains."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests import models
from tfxai.callbacks import TensorBoardExplanations
from tfxai.errors import InvalidInputError


def read_images(log_dir):
    """``{(tag, step): [decoded uint8 images]}`` from the event files under `log_dir`/explanations."""
    found = {}
    for path in sorted((log_dir / "explanations").glob("events.out.tfevents.*")):
        for record in tf.data.TFRecordDataset(str(path)):
            event = tf.compat.v1.Event.FromString(record.numpy())
            for value in event.summary.value:
                strings = tf.make_ndarray(value.tensor)  # [width, height, png, png, ...]
                found[(value.tag, event.step)] = [tf.io.decode_png(s).numpy() for s in strings[2:]]
    return found


def test_training_logs_a_changing_explanation_per_epoch(tmp_path):
    model = models.small_cnn((16, 16, 3), num_classes=3, softmax=True, seed=1)
    weights = [w.copy() for w in model.get_weights()]
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (64, 16, 16, 3)).astype("float32")
    y = (x[:, :8].mean(axis=(1, 2, 3)) > x[:, 8:].mean(axis=(1, 2, 3))).astype("int64")  # top half brighter
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="sparse_categorical_crossentropy")
    callback = TensorBoardExplanations(tmp_path, x[:3], methods=("gradcam", "inputxgradient"))
    model.fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=[callback])
    assert not all(np.array_equal(a, b) for a, b in zip(weights, model.get_weights()))  # the weights changed
    logged = read_images(tmp_path)
    assert set(logged) == {(f"explanations/{m}", e) for m in ("gradcam", "inputxgradient") for e in (0, 1)}
    for images in logged.values():
        assert len(images) == 3 and all(im.shape == (16, 16, 3) and im.dtype == np.uint8 for im in images)
    for method in ("gradcam", "inputxgradient"):
        first, second = np.stack(logged[(f"explanations/{method}", 0)]), np.stack(logged[(f"explanations/{method}", 1)])
        assert np.abs(first.astype(int) - second.astype(int)).max() > 10, method  # the live weights are explained
    # the logged overlay is the overlay of the current model's map (epoch 2 = now)
    now = callback.overlays()["gradcam"]
    np.testing.assert_allclose(np.stack(logged[("explanations/gradcam", 1)]) / 255.0, now, atol=1.5 / 255)


def test_every_n_epochs_and_bad_arguments(tmp_path):
    model = models.small_cnn((16, 16, 3), num_classes=3, softmax=True)
    x = np.random.default_rng(1).uniform(0, 1, (8, 16, 16, 3)).astype("float32")
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    callback = TensorBoardExplanations(tmp_path, x[0], every_n_epochs=2)
    model.fit(x, np.zeros(8, "int64"), epochs=3, verbose=0, callbacks=[callback])
    assert sorted(read_images(tmp_path)) == [("explanations/gradcam", 1)]
    with pytest.raises(InvalidInputError, match="every_n_epochs"):
        TensorBoardExplanations(tmp_path, x, every_n_epochs=0)
    with pytest.raises(InvalidInputError, match="images"):
        TensorBoardExplanations(tmp_path, x[0, 0, 0])
    with pytest.raises(InvalidInputError, match="Unknown method 'gradkam'"):
        TensorBoardExplanations(tmp_path, x, methods=("gradkam",))
