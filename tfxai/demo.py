"""The offline demo: a toy data set, a small ReLU CNN, every method, a figure and a score.

``python -m tfxai demo`` runs :func:`run`: it generates images of one shape
(square, disk or triangle; the class is the shape) at a random position on a
noisy background, trains a small ReLU CNN for a few seconds (seeded), explains
held-out images with every available method, and measures the pointing game:
a map "hits" when its maximum lies on the shape (within `tolerance` pixels).
Everything is generated, so it needs no download.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable

import keras
import numpy as np
import tensorflow as tf

import tfxai
from tfxai import _registry

CLASS_NAMES = ("square", "disk", "triangle")


def make_shapes(num_images: int, size: int = 32, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Noisy images with one bright shape; the class is the shape.

    Returns:
        ``(images, labels, masks)``: float32 ``(N, size, size, 3)`` in [0, 1],
        int labels ``(N,)`` indexing :data:`CLASS_NAMES`, and bool ``(N, size, size)``
        masks of the shape's pixels.
    """
    rng = np.random.default_rng(seed)
    images = rng.uniform(0.0, 0.35, size=(num_images, size, size, 3)).astype("float32")
    masks = np.zeros((num_images, size, size), bool)
    labels = rng.integers(0, len(CLASS_NAMES), size=num_images)
    rows, cols = np.mgrid[0:size, 0:size]
    extent = max(6, size // 4)  # shape width in pixels
    for i in range(num_images):
        top, left = rng.integers(0, size - extent + 1, size=2)
        r, c = rows - top, cols - left
        inside = (r >= 0) & (r < extent) & (c >= 0) & (c < extent)
        if labels[i] == 0:
            mask = inside
        elif labels[i] == 1:
            centre = (extent - 1) / 2.0
            mask = (r - centre) ** 2 + (c - centre) ** 2 <= (extent / 2.0) ** 2
        else:  # triangle pointing up: the width grows with the row
            half = (r + 1) / 2.0
            centre = (extent - 1) / 2.0
            mask = inside & (np.abs(c - centre) <= half)
        images[i][mask] = rng.uniform(0.7, 1.0, size=3)
        masks[i] = mask
    return images, labels.astype(np.int64), masks


def build_model(size: int = 32, num_classes: int = len(CLASS_NAMES)) -> keras.Model:
    """A small ReLU CNN ending in softmax (conv-pool-conv-pool-conv, global average pooling)."""
    inputs = keras.Input((size, size, 3), name="image")
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="conv1")(inputs)
    x = keras.layers.MaxPooling2D(name="pool1")(x)
    x = keras.layers.Conv2D(32, 3, padding="same", activation="relu", name="conv2")(x)
    x = keras.layers.MaxPooling2D(name="pool2")(x)
    x = keras.layers.Conv2D(48, 3, padding="same", activation="relu", name="conv3")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name="shapes_cnn")


def train(images: np.ndarray, labels: np.ndarray, *, epochs: int = 8, seed: int = 0) -> keras.Model:
    """Train :func:`build_model` on the images (seeded, Adam, a few epochs)."""
    keras.utils.set_random_seed(seed)
    model = build_model(images.shape[1])
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(images, labels, epochs=epochs, batch_size=64, verbose=0)
    return model


def pointing_game(maps: np.ndarray, masks: np.ndarray, tolerance: int = 1) -> np.ndarray:
    """Per image, whether the map's maximum lies on the object (mask dilated by `tolerance` pixels)."""
    maps = np.asarray(maps)
    masks = tf.constant(np.asarray(masks)[..., None], tf.float32)
    if tolerance > 0:
        window = 2 * tolerance + 1
        masks = tf.nn.max_pool2d(masks, window, 1, "SAME")
    masks = masks.numpy()[..., 0] > 0
    flat = maps.reshape(maps.shape[0], -1).argmax(axis=1)
    return masks.reshape(masks.shape[0], -1)[np.arange(maps.shape[0]), flat]


def run(
    out: str | Path = "tfxai-demo",
    *,
    quick: bool = False,
    methods: str | None = None,
    seed: int = 0,
    progress: Callable[[str], None] = print,
    photo: bool = True,
    photo_model: str = "efficientnet_lite0",
) -> dict:
    """Run the demo and write ``demo_grid.png``, ``maps.npz``, ``summary.txt`` and ``summary.json`` to `out`.

    With `photo`, then explain a photo shipped with tfxai (``chelsea``, CC0)
    with the shipped ImageNet model (EfficientNet-Lite0) and write ``photo_grid.png``.

    Args:
        out: output folder (created).
        quick: fewer training images, epochs and explained images (for tests).
        methods: comma-separated method names (None: every available method).
        seed: seed of the data, the training and the random methods.
        progress: called with one line per step.
        photo: also explain the shipped photo with the shipped ImageNet model (offline).
        photo_model: the bundled model of that step (a name of :func:`tfxai.models.names`).

    Returns:
        The summary: test accuracy, and per method the pointing-game hit rate
        and seconds per image.
    """
    from tfxai import plot

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    num_train, epochs, num_test, num_shown = (1200, 5, 48, 4) if quick else (3000, 8, 200, 6)
    names = _registry.parse(methods)
    progress(f"[1/4] generating {num_train} training images of {', '.join(CLASS_NAMES)} (32x32)")
    images, labels, _ = make_shapes(num_train, seed=seed)
    test_images, test_labels, test_masks = make_shapes(num_test, seed=seed + 1)
    progress(f"[2/4] training a small ReLU CNN for {epochs} epochs")
    model = train(images, labels, epochs=epochs, seed=seed)
    probabilities = model.predict(test_images, verbose=0, batch_size=128)
    predicted = probabilities.argmax(axis=1)
    accuracy = float(np.mean(predicted == test_labels))
    progress(f"      test accuracy {accuracy:.1%} on {num_test} new images")
    progress(f"[3/4] explaining {num_test} images with {len(names)} methods: {', '.join(names)}")
    maps, results = {}, {}
    for name in names:
        explainer = _registry.build(name, tfxai.adapt(model, input_range=(0.0, 1.0)), quick=quick)
        t0 = time.perf_counter()
        result = np.asarray(explainer(test_images, targets=test_labels))
        seconds = (time.perf_counter() - t0) / num_test
        score_map = np.abs(result) if _registry.METHODS[name].signed else result
        hits = pointing_game(score_map, test_masks)
        maps[name] = result
        results[name] = {"pointing_game": float(hits.mean()), "seconds_per_image": seconds}
        progress(f"      {_registry.METHODS[name].title:<22} pointing game {hits.mean():6.1%}   {1000 * seconds:7.2f} ms/image")
    progress(f"[4/4] writing the figure, maps and summary to {out}/")
    shown = slice(0, num_shown)
    labels_text = [
        f"{CLASS_NAMES[p]} {probabilities[i, p]:.0%}" + ("" if p == test_labels[i] else f" (is {CLASS_NAMES[test_labels[i]]})")
        for i, p in enumerate(predicted[shown])
    ]
    figure = plot.method_grid(
        test_images[shown],
        {_registry.METHODS[n].title: maps[n][shown] for n in names},
        labels=labels_text,
        signed=[_registry.METHODS[n].title for n in names if _registry.METHODS[n].signed],
        cell=1.6,
    )
    figure.savefig(out / "demo_grid.png", dpi=110)
    np.savez_compressed(
        out / "maps.npz", images=test_images, labels=test_labels, masks=test_masks, predicted=predicted,
        **{name: value for name, value in maps.items()},
    )
    summary = {
        "task": "classify the shape (square, disk, triangle) on a noisy 32x32 background",
        "test_accuracy": accuracy,
        "num_test_images": num_test,
        "methods": results,
        "seconds": time.perf_counter() - start,
    }
    lines = [
        "tfxai demo",
        f"task: {summary['task']}",
        f"test accuracy: {accuracy:.1%} ({num_test} images)",
        "pointing game (map maximum on the shape, 1-pixel tolerance):",
        *[f"  {_registry.METHODS[n].title:<22} {r['pointing_game']:6.1%}   {1000 * r['seconds_per_image']:7.2f} ms/image"
          for n, r in results.items()],
        f"total time: {summary['seconds']:.1f} s",
    ]
    (out / "summary.txt").write_text("\n".join(lines) + "\n")
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    written = [out / "demo_grid.png", out / "maps.npz", out / "summary.txt"]
    if photo:
        written.append(explain_photo(out, names, progress, model_name=photo_model))
        summary["seconds"] = time.perf_counter() - start
        (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    progress(f"done in {time.perf_counter() - start:.1f} s: {', '.join(str(p) for p in written)}")
    return summary


def explain_photo(out: Path, names: list[str], progress: Callable[[str], None], photo: str = "chelsea",
                  model_name: str = "efficientnet_lite0") -> Path:
    """Explain a shipped photo with a bundled model (quick settings); writes ``photo_grid.png``."""
    from tfxai import data, models, plot

    chosen = [n for n in names if not _registry.METHODS[n].slow]
    progress(f"[+] the real thing: the shipped photo {photo!r} with the shipped ImageNet model ({model_name}), "
             f"{len(chosen)} methods")
    model = models.load(model_name)
    image = data.load_photo(photo)[None]
    adapter = tfxai.adapt(model)
    probabilities = adapter.probabilities(adapter.logits(tf.constant(image))).numpy()[0]
    target = int(probabilities.argmax())
    label = f"{data.imagenet_class_names()[target]} ({probabilities[target]:.0%})"
    maps = {}
    for name in chosen:
        t0 = time.perf_counter()
        maps[_registry.METHODS[name].title] = np.asarray(_registry.build(name, adapter, quick=True)(image, [target]))
        progress(f"      {_registry.METHODS[name].title:<22} {time.perf_counter() - t0:6.2f} s")
    figure = plot.method_grid(image, maps, labels=[label],
                              signed=[_registry.METHODS[n].title for n in chosen if _registry.METHODS[n].signed])
    path = out / "photo_grid.png"
    figure.savefig(path, dpi=90)
    return path
