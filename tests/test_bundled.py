"""The assets shipped inside the package: EfficientNet-Lite0, the ImageNet class index, the sample photos."""

from __future__ import annotations

import configparser
import csv
import fnmatch
import hashlib
import json
from pathlib import Path

import keras
import numpy as np
import pytest

import tfxai
from tfxai import data, io
from tfxai import models as bundled
from tfxai.errors import InvalidInputError
from tests import models

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "tfxai"
#: The folders the bundled assets live in and the most they may weigh together.
ASSET_PACKAGES = ("data", "models")
MAX_BUNDLE_BYTES = 12_000_000


def _bundle_files():
    """Every shipped non-Python file under tfxai/data and tfxai/models, relative to tfxai/."""
    files = []
    for package in ASSET_PACKAGES:
        for path in sorted((PACKAGE / package).rglob("*")):
            if path.is_file() and path.suffix not in (".py", ".pyc"):
                files.append(path.relative_to(PACKAGE))
    return files


@pytest.fixture(scope="module")
def lite0():
    return bundled.efficientnet_lite0()


# --- the model -------------------------------------------------------------------------------


@pytest.mark.slow
def test_bundled_model_top1_matches_the_original_on_the_200_sample_photos(lite0):
    if not models.REAL_MODEL.exists() or not models.SAMPLES.exists():
        pytest.skip(f"needs ../shared/assets (not found at {models.ASSETS})")
    rows = list(csv.DictReader(open(models.SAMPLES / "labels.csv")))
    assert len(rows) == 200
    images = io.load_images([models.SAMPLES / row["filename"] for row in rows])  # shorter side 256, centre crop 224
    labels = np.array([int(row["class_index"]) for row in rows])
    original = models.load_real_model().predict(images, batch_size=50, verbose=0)
    ours = lite0.predict(images, batch_size=50, verbose=0)

    def top(probabilities, k):
        return (np.argsort(-probabilities, axis=1)[:, :k] == labels[:, None]).any(axis=1).mean()

    assert top(original, 1) > 0.8  # the reference itself is a working ImageNet classifier
    assert abs(top(ours, 1) - top(original, 1)) <= 0.005
    assert abs(top(ours, 5) - top(original, 5)) <= 0.005
    np.testing.assert_allclose(ours, original, atol=0.02)


def test_bundled_model_needs_nothing_outside_the_package(tmp_path, monkeypatch):
    monkeypatch.delenv("KERAS_HOME", raising=False)
    monkeypatch.chdir(tmp_path)
    bundled._bundle.cache_clear()  # read the files again, from the new working directory
    data._class_index.cache_clear()
    model = tfxai.models.efficientnet_lite0()
    assert isinstance(model, keras.Model) and model.name == "efficientnet_lite0"
    assert model.input_shape == (None, 224, 224, 3) and model.output_shape == (None, 1000)
    assert model.count_params() == 4_694_024
    assert {w.dtype for w in model.weights} == {"float32"} and all(np.asarray(w).dtype == np.float32 for w in model.weights)
    rescaling = model.layers[1]
    assert isinstance(rescaling, keras.layers.Rescaling)
    np.testing.assert_allclose(rescaling.scale, 1 / 128)
    np.testing.assert_allclose(rescaling.offset, -127 / 128)
    assert model.get_layer("top_relu").output.shape == (None, 7, 7, 1280)
    assert model.get_layer("predictions").activation is keras.activations.softmax
    probabilities = model.predict(data.load_photos(["coffee"]), verbose=0)[0]
    assert probabilities.sum() == pytest.approx(1.0, abs=1e-5)
    assert io.class_names([probabilities.argmax()], 1000) == ["espresso"]
    assert not list(tmp_path.iterdir())  # nothing written or downloaded into the working directory


def test_each_call_returns_a_fresh_model():
    first, second = bundled.efficientnet_lite0(), bundled.efficientnet_lite0()
    assert first is not second
    x = data.load_photos(["chelsea"])
    before = np.asarray(second(x))
    head = first.get_layer("predictions")
    head.kernel.assign(np.zeros(head.kernel.shape, "float32"))
    head.bias.assign(np.zeros(head.bias.shape, "float32"))
    np.testing.assert_allclose(first(x), 1 / 1000, rtol=1e-5)  # the edit took effect
    np.testing.assert_array_equal(second(x), before)
    np.testing.assert_array_equal(bundled.efficientnet_lite0()(x), before)  # the cached arrays are untouched


def test_the_sample_photos_are_classified_sensibly(lite0):
    """Top-5 of each shipped photo contains what it shows (see the README's table)."""
    expected = {
        "camera": {"tripod"},
        "chelsea": {"tabby", "tiger_cat", "Egyptian_cat"},
        "coffee": {"espresso"},
        "grace_hopper": {"military_uniform"},
        "rocket": {"missile", "projectile", "space_shuttle"},
    }
    assert data.photo_names() == sorted(expected)
    probabilities = lite0.predict(data.load_photos(), verbose=0)
    names = data.imagenet_class_names()
    for name, row, wanted in zip(data.photo_names(), probabilities, (expected[n] for n in data.photo_names())):
        top5 = [names[i] for i in np.argsort(-row)[:5]]
        assert wanted & set(top5), f"{name}: top-5 {top5} has none of {wanted}"
    assert names[probabilities[data.photo_names().index("coffee")].argmax()] == "espresso"
    assert names[probabilities[data.photo_names().index("camera")].argmax()] == "tripod"


# --- class names -----------------------------------------------------------------------------


def test_imagenet_class_names_follow_the_shipped_keras_index(tmp_path, monkeypatch):
    shipped = PACKAGE / "data" / "imagenet_class_index.json"
    assert hashlib.md5(shipped.read_bytes()).hexdigest() == "c2c37ea517e94d9795004a39431a14cb"  # the file Keras checks
    raw = json.loads(shipped.read_text())
    names = data.imagenet_class_names()
    assert len(names) == 1000 and len(set(names)) > 990
    assert names == [raw[str(i)][1] for i in range(1000)]
    assert (names[281], names[282], names[207]) == ("tabby", "tiger_cat", "golden_retriever")
    assert data.imagenet_class_index() == raw
    data.imagenet_class_index()["282"][1] = "changed"
    data.imagenet_class_names()[282] = "changed"
    assert data.imagenet_class_names()[282] == "tiger_cat"  # callers get copies

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "no_keras_cache"))
    assert io.class_names(np.array([[281], [282]]), num_classes=1000) == ["tabby", "tiger_cat"]
    assert io.imagenet_class_index()["207"] == ["n02099601", "golden_retriever"]
    assert io.class_names([3], num_classes=10) == ["class 3"]
    with pytest.raises(InvalidInputError, match=r"\[0, 999\]; got \[1000\]"):
        io.class_names([1000], num_classes=1000)


# --- photos ----------------------------------------------------------------------------------


def test_every_photo_has_a_source_and_licence_entry():
    sources = (PACKAGE / "data" / "photos" / "SOURCES.md").read_text()
    entries = {section.split("\n", 1)[0].strip(): section for section in sources.split("\n## ")[1:]}
    files = sorted(p.name for p in (PACKAGE / "data" / "photos").glob("*.jpg"))
    assert len(files) >= 4 and sorted(entries) == files
    assert [Path(f).stem for f in files] == data.photo_names()
    for name, entry in entries.items():
        assert "- Source:" in entry, name
        licence = entry.split("- Licence:", 1)[1]
        assert "CC0" in licence or "public domain" in licence, name


def test_load_photo_shapes_and_range():
    for name in data.photo_names():
        path = data.photo_path(name)
        assert path.is_file() and path.parent == PACKAGE / "data" / "photos"
        image = data.load_photo(name)
        assert image.shape == (224, 224, 3) and image.dtype == np.float32
        assert 0.0 <= image.min() and image.max() <= 255.0 and image.std() > 10
        np.testing.assert_array_equal(image, io.load_image(path))
    assert data.load_photo("coffee", size=96).shape == (96, 96, 3)
    camera = data.load_photo("camera")  # a greyscale JPEG, expanded to RGB
    np.testing.assert_array_equal(camera[..., 0], camera[..., 2])
    batch = data.load_photos()
    assert batch.shape == (len(data.photo_names()), 224, 224, 3) and batch.dtype == np.float32
    np.testing.assert_array_equal(data.load_photos(["rocket", "coffee"], size=64)[1], data.load_photo("coffee", 64))


def test_unknown_photo_names_are_errors_that_list_the_photos():
    for call in (lambda: data.load_photo("dog"), lambda: data.photo_path("Coffee"), lambda: data.load_photos(["coffee", "dog"])):
        with pytest.raises(InvalidInputError) as info:
            call()
        assert isinstance(info.value, ValueError)
        message = str(info.value)
        assert "no bundled photo named" in message and all(name in message for name in data.photo_names())
    with pytest.raises(InvalidInputError, match="list of photo names"):
        data.load_photos("coffee")
    with pytest.raises(InvalidInputError, match="empty"):
        data.load_photos([])


# --- packaging -------------------------------------------------------------------------------


def test_bundled_files_fit_the_size_budget():
    sizes = {str(path): (PACKAGE / path).stat().st_size for path in _bundle_files()}
    assert "models/efficientnet_lite0/weights.npz" in sizes and "data/imagenet_class_index.json" in sizes
    assert sum(sizes.values()) <= MAX_BUNDLE_BYTES, sizes


def test_every_bundled_file_is_declared_as_package_data():
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    declared = {package: [p.strip() for p in patterns.split(",")] for package, patterns in config["options.package_data"].items()}
    for path in _bundle_files():
        package, relative = f"tfxai.{path.parts[0]}", "/".join(path.parts[1:])
        assert any(fnmatch.fnmatch(relative, pattern) for pattern in declared.get(package, [])), f"{path} is not in setup.cfg's package_data"
    for package in ("tfxai.models", "tfxai.data"):
        for pattern in declared[package]:
            assert list((PACKAGE / package.split(".")[1]).glob(pattern)), f"{package}: {pattern} matches no file"
