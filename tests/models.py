"""Model and data factories for the tests (not shipped with the package)."""

from __future__ import annotations

import os
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

ASSETS = Path(__file__).resolve().parents[1].parent / "shared" / "assets"
REAL_MODEL = ASSETS / "models" / "efficientnet_lite0_imagenet.keras"
SAMPLES = ASSETS / "imagenet_samples"


def linear_model(num_features_shape=(4, 4, 3), num_classes=1, seed=0, dtype="float64"):
    """f(x) = W . flatten(x) + b with random W, b (float64 by default). Returns (model, W, b)."""
    rng = np.random.default_rng(seed)
    inputs = keras.Input(num_features_shape, dtype=dtype)
    dense = keras.layers.Dense(num_classes, dtype=dtype)
    outputs = dense(keras.layers.Flatten(dtype=dtype)(inputs))
    model = keras.Model(inputs, outputs)
    size = int(np.prod(num_features_shape))
    w = rng.normal(size=(size, num_classes))
    b = rng.normal(size=(num_classes,))
    dense.set_weights([w, b])
    return model, w, b


def small_cnn(input_shape=(16, 16, 3), num_classes=5, softmax=False, seed=0, dtype=None):
    """A small functional ReLU CNN with random (non-zero) biases."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input(input_shape, dtype=dtype)
    x = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="conv1", dtype=dtype)(inputs)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv2", dtype=dtype)(x)
    x = keras.layers.MaxPooling2D(name="pool", dtype=dtype)(x)
    x = keras.layers.Flatten(dtype=dtype)(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax" if softmax else None, name="head", dtype=dtype)(x)
    model = keras.Model(inputs, outputs, name="small_cnn")
    randomize_biases_and_bn(model, seed)
    return model


def randomize_biases_and_bn(model, seed=0, scale=0.1):
    """Give every bias, BN statistic and Rescaling offset a random non-trivial value (in place).

    Keras initialises biases to zero and BatchNormalization to the identity,
    which would hide every bias term; tests call this on their own models.
    """
    rng = np.random.default_rng(seed)
    for layer in _all_layers(model):
        if isinstance(layer, keras.layers.BatchNormalization):
            for name in ("gamma", "beta", "moving_mean"):
                var = getattr(layer, name, None)
                if var is not None:
                    base = 1.0 if name == "gamma" else 0.0
                    var.assign((base + scale * rng.normal(size=var.shape)).astype(var.dtype))
            layer.moving_variance.assign(rng.uniform(0.5, 1.5, size=layer.moving_variance.shape).astype(layer.moving_variance.dtype))
        else:
            bias = getattr(layer, "bias", None)
            if bias is not None and hasattr(bias, "assign"):
                bias.assign((scale * rng.normal(size=bias.shape)).astype(bias.dtype))
        if isinstance(layer, keras.layers.Rescaling):
            layer.offset = float(scale * rng.normal())
    return model


def _all_layers(model):
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)
        yield layer


def localisation_data(num_images=2000, size=32, square=8, seed=0):
    """Noisy images with one bright square; the class is the quadrant the square is in.

    Returns (images (N, size, size, 3) float32 in [0, 1], labels (N,), masks (N, size, size) bool).
    """
    rng = np.random.default_rng(seed)
    images = rng.uniform(0.0, 0.3, size=(num_images, size, size, 3)).astype("float32")
    masks = np.zeros((num_images, size, size), bool)
    labels = np.zeros(num_images, np.int64)
    half = size // 2
    for i in range(num_images):
        quadrant = rng.integers(4)
        row0 = (quadrant // 2) * half + rng.integers(0, half - square + 1)
        col0 = (quadrant % 2) * half + rng.integers(0, half - square + 1)
        colour = rng.uniform(0.7, 1.0, size=3)
        images[i, row0 : row0 + square, col0 : col0 + square] = colour
        masks[i, row0 : row0 + square, col0 : col0 + square] = True
        labels[i] = quadrant
    return images, labels, masks


def trained_localisation_cnn(seed=0, epochs=6):
    """A small ReLU CNN trained (seconds on CPU) on :func:`localisation_data`; ends in softmax."""
    keras.utils.set_random_seed(seed)
    images, labels, _ = localisation_data(3000, seed=seed)
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="conv1")(inputs)
    x = keras.layers.MaxPooling2D(name="pool1")(x)
    x = keras.layers.Conv2D(32, 3, padding="same", activation="relu", name="conv2")(x)
    x = keras.layers.MaxPooling2D(name="pool2")(x)
    x = keras.layers.Conv2D(32, 3, padding="same", activation="relu", name="conv3")(x)
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(4, activation="softmax", name="predictions")(x)
    model = keras.Model(inputs, outputs, name="localisation_cnn")
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(images, labels, epochs=epochs, batch_size=64, verbose=0)
    return model


def load_real_model():
    """The EfficientNet-Lite0 ImageNet model from ../shared/assets (raw pixels in [0, 255])."""
    return keras.saving.load_model(REAL_MODEL)


def load_samples(num_images=8, size=224):
    """The first `num_images` ImageNet sample photos, resized (shorter side 256, centre crop `size`).

    Returns (images float32 (N, size, size, 3) in [0, 255], labels (N,) int, names).
    """
    import csv

    rows = list(csv.DictReader(open(SAMPLES / "labels.csv")))[:num_images]
    images = []
    for row in rows:
        data = tf.io.decode_jpeg(tf.io.read_file(str(SAMPLES / row["filename"])), channels=3)
        images.append(center_crop(data, size))
    return np.stack(images), np.array([int(r["class_index"]) for r in rows]), [r["class_name"] for r in rows]


def center_crop(image, size=224, resize_to=256):
    image = tf.cast(image, tf.float32)
    h, w = image.shape[0], image.shape[1]
    scale = resize_to / min(h, w)
    image = tf.image.resize(image, (round(h * scale), round(w * scale)), antialias=True)
    top = (image.shape[0] - size) // 2
    left = (image.shape[1] - size) // 2
    return image[top : top + size, left : left + size].numpy()


def keras_home_env():
    return os.environ.get("KERAS_HOME")
