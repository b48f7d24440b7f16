"""Image operations (bilinear resizing, centre crop) and reading photos."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from tfxai import image_ops, io
from tfxai.errors import InvalidInputError
from tests import models
from tests.reference.cam import bilinear


def _write_png(path, height, width, channels=3, seed=0):
    data = np.random.default_rng(seed).integers(0, 256, (height, width, channels), dtype=np.uint8)
    path.write_bytes(tf.io.encode_png(data).numpy())
    return data


def test_load_image_resizes_the_shorter_side_and_crops_the_centre(tmp_path):
    data = _write_png(tmp_path / "wide.png", 30, 50)
    image = io.load_image(tmp_path / "wide.png", size=14, crop_fraction=14 / 20)
    assert image.shape == (14, 14, 3) and image.dtype == np.float32
    np.testing.assert_allclose(image, models.center_crop(data, 14, 20), atol=1e-4)
    stacked = io.load_images([tmp_path / "wide.png"] * 2, size=14)
    assert stacked.shape == (2, 14, 14, 3)


def test_load_image_rectangular_size_and_greyscale(tmp_path):
    _write_png(tmp_path / "grey.png", 40, 40, channels=1)
    image = io.load_image(tmp_path / "grey.png", size=(12, 20))
    assert image.shape == (12, 20, 3)
    np.testing.assert_array_equal(image[..., 0], image[..., 2])
    assert 0.0 <= image.min() and image.max() <= 255.0


def test_center_crop_in_a_graph_matches_eager():
    image = np.random.default_rng(1).uniform(0, 255, (23, 31, 3)).astype(np.float32)
    graph = tf.function(lambda x: image_ops.center_crop(x, 16, 18), input_signature=[tf.TensorSpec([None, None, 3])])
    np.testing.assert_allclose(graph(image), image_ops.center_crop(image, 16, 18), atol=1e-5)
    np.testing.assert_allclose(graph(image), models.center_crop(image, 16, 18), atol=1e-4)


def test_load_image_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        io.load_image(tmp_path / "missing.jpg")
    (tmp_path / "text.jpg").write_text("not an image")
    with pytest.raises(InvalidInputError, match="cannot decode"):
        io.load_image(tmp_path / "text.jpg")
    with pytest.raises(IsADirectoryError, match=r"is a folder, not an image file.*explain_folder"):  # was: "not found"
        io.load_image(tmp_path)
    with pytest.raises(IsADirectoryError, match="is a folder"):
        io.load_images([tmp_path / "text.jpg", tmp_path][::-1])


def test_class_names_fall_back_to_indices_for_other_models():
    assert io.class_names([3, 7], num_classes=10) == ["class 3", "class 7"]


@pytest.mark.parametrize("shape,size", [((7, 7), (224, 224)), ((3, 5), (16, 9)), ((16, 16), (16, 8)), ((5, 1), (12, 3))])
def test_float64_resize_is_exact_bilinear_and_agrees_with_tf_image_resize(shape, size):
    maps = np.random.default_rng(0).normal(size=(2, *shape))
    resized = image_ops.resize(maps, size)
    assert resized.dtype == tf.float64 and resized.shape == (2, *size)
    np.testing.assert_allclose(resized, np.stack([bilinear(m, *size) for m in maps]), rtol=1e-13, atol=1e-13)
    single = tf.image.resize(maps[..., None].astype("float32"), size)[..., 0]
    np.testing.assert_allclose(resized, single, rtol=1e-5, atol=1e-6)
    channels = image_ops.resize(np.stack([maps, -maps], axis=-1), size)  # (N, h, w, C) too
    np.testing.assert_allclose(channels[..., 1], -resized, rtol=1e-13, atol=1e-13)
    assert image_ops.resize(maps.astype("float32"), size).dtype == tf.float32
