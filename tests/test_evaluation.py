"""Evaluation runner, loaders, tables, figures and the MirroredStrategy equivalence."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

import tfxai
from tfxai import evaluation, metrics
from tfxai.errors import InvalidInputError, InvalidTypeError
from tests import models

ROOT = Path(__file__).resolve().parents[1]


def _data(n=6, size=16, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.uniform(0, 1, (n, size, size, 3)).astype("float32")
    labels = rng.integers(0, 5, n).astype("int32")
    return images, labels


def test_streaming_table_equals_direct_metric_calls_and_ignores_batch_size():
    model = models.small_cnn(softmax=True)
    images, labels = _data()
    explainers = {"Vanilla": tfxai.VanillaGradient(model), "IxG": tfxai.InputXGradient(model)}
    dataset = tf.data.Dataset.from_tensor_slices((images, labels))
    kwargs = dict(num_steps=4, progress=False, metric_batch_size=7)
    results = evaluation.evaluate(model, explainers, dataset, batch_size=4, **kwargs)
    again = evaluation.evaluate(model, explainers, dataset, batch_size=6, **kwargs)
    targets = np.argmax(model.predict(images, verbose=0), axis=-1)
    for name, explainer in explainers.items():
        maps = explainer(images, targets)
        ins = metrics.insertion(model, images, maps, targets, num_steps=4)
        dele = metrics.deletion(model, images, maps, targets, num_steps=4)
        change = metrics.confidence_change(model, images, maps, targets)
        row = results.methods[name]
        assert row.num_images == 6
        np.testing.assert_allclose(row.means["insertion"], ins.auc.mean(), rtol=1e-5)
        np.testing.assert_allclose(row.means["deletion"], dele.auc.mean(), rtol=1e-5)
        np.testing.assert_allclose(row.means["ins_del"], (ins.auc - dele.auc).mean(), rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(row.means["average_drop"], change.average_drop, rtol=1e-5)
        np.testing.assert_allclose(row.means["increase_in_confidence"], change.increase_in_confidence)
        np.testing.assert_allclose(row.curves["insertion"], ins.scores.mean(axis=0), rtol=1e-5)
        np.testing.assert_allclose(row.sems["deletion"], dele.auc.std(ddof=1) / np.sqrt(6), rtol=1e-4)
        for key in row.means:
            np.testing.assert_allclose(again.methods[name].means[key], row.means[key], rtol=1e-5, atol=1e-7)
        assert row.ms_per_image > 0
    np.testing.assert_allclose(results.fractions, [0, 0.25, 0.5, 0.75, 1.0])


def test_per_image_values_and_paired_differences(tmp_path):
    model = models.small_cnn(softmax=True)
    images, labels = _data()
    explainers = {"Vanilla": tfxai.VanillaGradient(model), "IxG": tfxai.InputXGradient(model)}
    dataset = tf.data.Dataset.from_tensor_slices((images, labels))
    results = evaluation.evaluate(model, explainers, dataset, num_steps=4, batch_size=4, progress=False, keep_per_image=True)
    targets = np.argmax(model.predict(images, verbose=0), axis=-1)
    auc = {}
    for name, explainer in explainers.items():
        maps = explainer(images, targets)
        ins = metrics.insertion(model, images, maps, targets, num_steps=4)
        dele = metrics.deletion(model, images, maps, targets, num_steps=4)
        row = results.methods[name]
        np.testing.assert_allclose(row.per_image["insertion"], ins.auc, rtol=1e-5)  # dataset order
        np.testing.assert_allclose(np.mean(row.per_image["ins_del"]), row.means["ins_del"], rtol=1e-9, atol=1e-12)
        auc[name] = ins.auc - dele.auc
    diff = auc["Vanilla"] - auc["IxG"]
    paired = results.paired("Vanilla", "IxG")
    assert paired.num_images == 6 and paired.key == "ins_del"
    np.testing.assert_allclose(paired.mean, diff.mean(), rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(paired.sem, diff.std(ddof=1) / np.sqrt(6), rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(paired.first_larger, (diff > 0).mean())
    saved = evaluation.EvaluationResults.from_json(results.to_json())
    assert saved.paired("Vanilla", "IxG") == paired
    plain = evaluation.evaluate(model, explainers, dataset, num_steps=4, progress=False)
    assert plain.methods["IxG"].per_image == {}
    with pytest.raises(InvalidInputError, match="keep_per_image"):
        plain.paired("Vanilla", "IxG")
    with pytest.raises(InvalidInputError, match="no method 'Grad'"):
        results.paired("Grad", "IxG")


def test_labels_as_targets_num_images_and_tables(tmp_path):
    model = models.small_cnn(softmax=True)
    images, labels = _data(5)
    dataset = tf.data.Dataset.from_tensor_slices((images, labels)).batch(2)  # already batched
    results = evaluation.evaluate(
        model, {"Vanilla": tfxai.VanillaGradient(model)}, dataset, targets="label", num_images=3,
        num_steps=2, metrics=("deletion",), progress=False,
    )
    maps = tfxai.VanillaGradient(model)(images[:3], labels[:3])
    dele = metrics.deletion(model, images[:3], maps, labels[:3], num_steps=2)
    row = results.methods["Vanilla"]
    assert row.num_images == 3 and set(row.means) == {"deletion"}
    np.testing.assert_allclose(row.means["deletion"], dele.auc.mean(), rtol=1e-5)
    csv_text = results.to_csv()
    header, line = csv_text.strip().splitlines()
    assert header.startswith("method,num_images,insertion,deletion")
    assert line.startswith("Vanilla,3,")
    markdown = results.to_markdown()
    assert "| Vanilla | 3 |" in markdown and "Deletion AUC" in markdown and "Insertion AUC" not in markdown
    restored = evaluation.EvaluationResults.from_json(results.to_json())
    assert restored.methods["Vanilla"].means == row.means
    out = evaluation.write_report(results, tmp_path / "report")
    for name in ("results.csv", "results.md", "results.json", "curves.png", "speed.png", "README.md"):
        assert (out / name).stat().st_size > 0


def test_runner_errors():
    model = models.small_cnn()
    images, labels = _data(2)
    dataset = tf.data.Dataset.from_tensor_slices((images, labels))
    with pytest.raises(InvalidTypeError, match="explainers"):
        evaluation.evaluate(model, [tfxai.VanillaGradient(model)], dataset)
    with pytest.raises(InvalidTypeError, match="dataset"):
        evaluation.evaluate(model, {"v": tfxai.VanillaGradient(model)}, images)
    with pytest.raises(InvalidInputError, match="metrics"):
        evaluation.evaluate(model, {"v": tfxai.VanillaGradient(model)}, dataset, metrics=("pointing_game",))
    with pytest.raises(InvalidInputError, match="targets"):
        evaluation.evaluate(model, {"v": tfxai.VanillaGradient(model)}, dataset, targets="true")
    with pytest.raises(InvalidInputError, match="element_spec"):
        evaluation.evaluate(model, {"v": tfxai.VanillaGradient(model)}, tf.data.Dataset.from_tensor_slices(images))


def _write_images(folder: Path):
    rng = np.random.default_rng(0)
    colour = rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)
    grey = rng.integers(0, 256, (50, 30, 1), dtype=np.uint8)
    (folder / "a.png").write_bytes(tf.io.encode_png(colour).numpy())
    (folder / "b.jpg").write_bytes(tf.io.encode_jpeg(grey).numpy())
    (folder / "labels.csv").write_text("filename,synset,class_index,class_name\na.png,n0,3,cat\nb.jpg,n1,7,dog\n")
    return colour, grey


def test_image_folder_resizes_crops_and_decodes_greyscale(tmp_path):
    colour, _ = _write_images(tmp_path)
    dataset = evaluation.image_folder(tmp_path, size=16, resize_to=20)
    items = list(dataset)
    assert [int(label) for _, label in items] == [3, 7]
    assert all(image.shape == (16, 16, 3) and image.dtype == tf.float32 for image, _ in items)
    np.testing.assert_allclose(items[0][0], models.center_crop(colour, 16, 20), atol=1e-4)
    grey = items[1][0].numpy()
    np.testing.assert_array_equal(grey[..., 0], grey[..., 2])  # greyscale decoded to 3 equal channels
    assert len(list(evaluation.image_folder(tmp_path, size=16, resize_to=20, num_images=1))) == 1
    with pytest.raises(InvalidInputError, match="labels"):
        evaluation.image_folder(tmp_path, labels_csv="missing.csv")
    (tmp_path / "bad.csv").write_text("name,label\nx,1\n")
    with pytest.raises(InvalidInputError, match="class_index"):
        evaluation.image_folder(tmp_path, labels_csv="bad.csv")
    with pytest.raises(InvalidInputError, match="directory"):
        evaluation.image_folder(tmp_path / "nowhere")


def test_tfds_loader_with_a_fake_builder_and_manual_dir(tmp_path):
    import tensorflow_datasets as tfds
    manual = tmp_path / "manual"
    manual.mkdir()
    colour, grey = _write_images(manual)

    class FakeImages(tfds.core.GeneratorBasedBuilder):
        """Images read from the manual folder, like imagenet2012 from its tars."""

        VERSION = tfds.core.Version("1.0.0")
        MANUAL_DOWNLOAD_INSTRUCTIONS = "put a.png and b.jpg in manual_dir"

        def _info(self):
            return self.dataset_info_from_configs(
                features=tfds.features.FeaturesDict(
                    {"image": tfds.features.Image(shape=(None, None, 3)), "label": tfds.features.ClassLabel(num_classes=10)}
                )
            )

        def _split_generators(self, dl_manager):
            return {"validation": self._generate_examples(Path(dl_manager.manual_dir))}

        def _generate_examples(self, folder):
            images = {"a.png": (tf.io.decode_png((folder / "a.png").read_bytes()).numpy(), 3),
                      "b.jpg": (tf.image.grayscale_to_rgb(tf.io.decode_jpeg((folder / "b.jpg").read_bytes())).numpy(), 7)}
            for key, (image, label) in images.items():
                yield key, {"image": image, "label": label}

    builder = FakeImages(data_dir=str(tmp_path / "data"))
    dataset = evaluation.tfds_dataset("fake_images", manual_dir=str(manual), builder=builder, size=16, resize_to=20)
    items = sorted(((int(label), image.numpy()) for image, label in dataset), key=lambda item: item[0])
    assert [label for label, _ in items] == [3, 7]
    np.testing.assert_allclose(items[0][1], models.center_crop(colour, 16, 20), atol=1e-4)
    assert items[1][1].shape == (16, 16, 3)


def test_figures():
    from tfxai.plot import evaluation as plots

    model = models.small_cnn(softmax=True)
    images, labels = _data(3)
    dataset = tf.data.Dataset.from_tensor_slices((images, labels))
    explainers = {"Vanilla": tfxai.VanillaGradient(model), "IxG": tfxai.InputXGradient(model)}
    results = evaluation.evaluate(model, explainers, dataset, num_steps=3, progress=False)
    figure = plots.plot_curves(results)
    assert [len(ax.lines) for ax in figure.axes] == [2, 2]
    np.testing.assert_allclose(figure.axes[0].lines[0].get_ydata(), results.methods["Vanilla"].curves["insertion"])
    speed = plots.plot_speed(results)
    assert len(speed.axes[0].patches) == 2
    sanity = {
        name: metrics.cascading_randomization(model, factory, images[:2], layers=2, keep_maps=True)
        for name, factory in {"Vanilla": tfxai.VanillaGradient, "IxG": tfxai.InputXGradient}.items()
    }
    grid = plots.plot_sanity_grid(images[0], sanity)
    assert len(grid.axes) == 2 * (2 + 2)


# MirroredStrategy over two logical CPUs: tests/test_scale.py (strategy.run, same table, per-image order).


def test_road_in_the_runner_equals_the_metric():
    import tensorflow as tf

    import tfxai

    model = models.small_cnn((16, 16, 3), num_classes=3, softmax=True, seed=2)
    images = np.random.default_rng(0).uniform(size=(5, 16, 16, 3)).astype("float32")
    dataset = tf.data.Dataset.from_tensor_slices((images, np.zeros(5, np.int64)))
    explainer = tfxai.GradCAM(model)
    results = evaluation.evaluate(model, {"Grad-CAM": explainer}, dataset, metrics=("deletion", "road"), num_steps=4,
                                  batch_size=2, metric_batch_size=7, progress=False)
    predicted = explainer.predict(images)
    direct = tfxai.metrics.road(model, images, explainer(images, predicted), predicted, seed=0)
    row = results.methods["Grad-CAM"]
    np.testing.assert_allclose(row.value("road_morf"), direct.morf_auc.mean(), rtol=1e-4)
    np.testing.assert_allclose(row.value("road_lerf"), direct.lerf_auc.mean(), rtol=1e-4)
    np.testing.assert_allclose(row.value("road"), direct.combined.mean(), rtol=1e-3, atol=1e-6)
    assert "ROAD (LeRF − MoRF)/2" in results.to_markdown()


# ----------------------------------------------------------------------------- one engine (issue 16)
def test_runner_per_image_values_equal_the_metrics_and_the_settings_object():
    """The runner calls the metrics' own in-graph cores: per image, its values are tfxai.metrics' on the same batch."""
    import dataclasses

    model = models.small_cnn(softmax=True)
    images, labels = _data(5)
    explainers = {"IxG": tfxai.InputXGradient(model), "Grad-CAM": tfxai.GradCAM(model)}
    dataset = tf.data.Dataset.from_tensor_slices((images, labels))
    settings = evaluation.EvaluationSettings(num_steps=5, batch_size=3, metric_batch_size=4, progress=False,
                                             keep_per_image=True, substrate="black", confidence_substrate="zero")
    results = evaluation.evaluate(model, explainers, dataset, settings)
    keywords = evaluation.evaluate(model, explainers, dataset, **{f.name: getattr(settings, f.name) for f in dataclasses.fields(settings)})
    targets = np.argmax(model.predict(images, verbose=0), axis=-1)
    for name, explainer in explainers.items():
        maps = explainer(images, targets)
        ins = metrics.insertion(model, images, maps, targets, num_steps=5, substrate="black")
        dele = metrics.deletion(model, images, maps, targets, num_steps=5, substrate="black")
        change = metrics.confidence_change(model, images, maps, targets, substrate="zero")
        per = results.methods[name].per_image
        np.testing.assert_allclose(per["insertion"], ins.auc, rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(per["deletion"], dele.auc, rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(per["average_drop"], 100 * change.drop, rtol=1e-6, atol=1e-9)
        np.testing.assert_array_equal(per["increase_in_confidence"], 100.0 * change.increase)
        np.testing.assert_allclose(results.methods[name].curves["deletion"], dele.scores.mean(axis=0), rtol=1e-6)
        for key, values in per.items():
            np.testing.assert_array_equal(keywords.methods[name].per_image[key], values)
    with pytest.raises(InvalidInputError, match="metric_batch_size"):
        evaluation.EvaluationSettings(metric_batch_size=0)
    with pytest.raises(InvalidTypeError, match="EvaluationSettings"):
        evaluation.evaluate(model, explainers, dataset, {"num_steps": 4})


def test_runtime_step_compiles_once_falls_back_from_xla_and_guards_non_finite_maps():
    from tfxai.errors import NonFiniteResultError

    runtime = tfxai.adapt(models.small_cnn(softmax=True)).runtime(8)
    spec = [tf.TensorSpec([None, 3], tf.float32)]
    step = runtime.step("double", lambda x: 2 * x, spec)
    assert runtime.step("double", lambda x: 3 * x, spec) is step  # one step per name and specs
    np.testing.assert_array_equal(step(tf.ones([2, 3])), 2 * np.ones([2, 3]))
    np.testing.assert_array_equal(step(tf.ones([5, 3])), 2 * np.ones([5, 3]))
    assert step.function.experimental_get_tracing_count() == 1  # the batch axis is unknown: one trace
    logs = runtime.step("log", tf.math.log, spec, guard=lambda y: {"logs": y}, hint="Pass positive values.")
    with pytest.raises(NonFiniteResultError, match=r"logs gave NaN or infinite maps for 1 image\(s\).*positive"):
        logs(tf.constant([[1.0, 1, 1], [-1.0, 1, 1]]))
    strings = runtime.step("strings", lambda x: tf.strings.to_number(tf.strings.as_string(x)), spec, jit=True)
    with pytest.warns(RuntimeWarning, match="XLA cannot compile the step strings.*runs without XLA"):
        np.testing.assert_array_equal(strings(tf.ones([2, 3])), np.ones([2, 3]))
    assert not strings.jit


def test_evaluate_skips_a_non_image_file_of_the_labels_file_with_a_warning(tmp_path):
    from tfxai.streaming import UnreadableImagesWarning

    _write_images(tmp_path)
    (tmp_path / "notes.jpg").write_text("not an image")
    (tmp_path / "labels.csv").write_text("filename,class_index\na.png,3\nnotes.jpg,1\nb.jpg,2\n")
    with pytest.warns(UnreadableImagesWarning, match="notes.jpg"):
        dataset = evaluation.image_folder(tmp_path, size=16, resize_to=16)
    model = models.small_cnn(softmax=True)
    results = evaluation.evaluate(tfxai.adapt(model, input_range=(0, 255)), {"v": tfxai.VanillaGradient(model)}, dataset,
                                  num_steps=2, progress=False)
    assert results.methods["v"].num_images == 2
