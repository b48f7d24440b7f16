"""The `evaluate` sub-command, called through argparse directly and through `python -m tfxai`'s main()."""

from __future__ import annotations

import argparse
import csv

import numpy as np
import pytest
import tensorflow as tf

import tfxai
from tfxai import cli_evaluate, evaluation
from tfxai.errors import InvalidInputError
from tests import models


@pytest.fixture
def setup(tmp_path):
    model = models.small_cnn(softmax=True)
    path = tmp_path / "model.keras"
    model.save(path)
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    rows = ["filename,synset,class_index,class_name"]
    for i in range(3):
        image = rng.integers(0, 256, (20 + i, 24, 3), dtype=np.uint8)
        (folder / f"im{i}.png").write_bytes(tf.io.encode_png(image).numpy())
        rows.append(f"im{i}.png,n{i},{i},c{i}")
    (folder / "labels.csv").write_text("\n".join(rows) + "\n")
    return model, path, folder


def parse(argv):
    parser = argparse.ArgumentParser(prog="tfxai")
    cli_evaluate.register(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def test_evaluate_command_writes_the_table(setup, tmp_path, capsys):
    model, path, folder = setup
    out = tmp_path / "out"
    args = parse(["evaluate", "--model", str(path), "--images", str(folder), "--methods", "vanilla,inputxgradient",
                  "--num-images", "2", "--num-steps", "4", "--auc", "mean_of_steps", "--out", str(out), "--no-progress"])
    assert cli_evaluate.run(args) == 0
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert [r["method"] for r in rows] == ["Vanilla Gradient", "Input x Gradient"]
    assert all(r["num_images"] == "2" for r in rows)
    # the same numbers as the library on the same data (images resized to 256, cropped to the model's 16 px)
    dataset = evaluation.image_folder(folder, size=16, resize_to=256, num_images=2)
    direct = evaluation.evaluate(model, {"v": tfxai.VanillaGradient(model)}, dataset, num_steps=4, auc="mean_of_steps", progress=False)
    np.testing.assert_allclose(float(rows[0]["deletion"]), direct.methods["v"].means["deletion"], rtol=1e-5)
    np.testing.assert_allclose(float(rows[0]["average_drop"]), direct.methods["v"].means["average_drop"], rtol=1e-5)
    assert "| Vanilla Gradient | 2 |" in capsys.readouterr().out
    for name in ("results.md", "README.md", "curves.png", "speed.png"):
        assert (out / name).exists()


def test_main_dispatch_and_errors(setup, tmp_path, capsys):
    from tfxai import cli

    _, path, folder = setup
    common = ["evaluate", "--model", str(path), "--images", str(folder), "--num-images", "1", "--num-steps", "2",
              "--methods", "vanilla", "--no-progress"]
    assert cli.main(common + ["--out", str(tmp_path / "a")]) == 0
    assert (tmp_path / "a" / "results.csv").exists()
    with pytest.raises(InvalidInputError, match="--substrate"):
        cli_evaluate.run(parse(common + ["--substrate", "grey"]))
    assert cli.main(common + ["--methods", "nonsense"]) == 2
    assert "Unknown method" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse(["evaluate", "--model", str(path)])  # neither --images nor --tfds


def test_strategy_options_give_the_same_table(setup, tmp_path, capsys):
    """--strategy mirrored (the local devices: here one CPU) writes the table of --strategy none."""
    _, path, folder = setup
    common = ["evaluate", "--model", str(path), "--images", str(folder), "--methods", "vanilla", "--num-steps", "4",
              "--batch-size", "2", "--no-progress"]
    assert cli_evaluate.run(parse(common + ["--out", str(tmp_path / "none")])) == 0
    assert cli_evaluate.run(parse(common + ["--strategy", "mirrored", "--jit-compile", "--out", str(tmp_path / "m")])) == 0
    out = capsys.readouterr().out
    assert out.count("worker 0 of 1: 3 images") == 2
    a, b = (list(csv.DictReader(open(tmp_path / name / "results.csv")))[0] for name in ("none", "m"))
    for key in ("insertion", "deletion", "average_drop", "increase_in_confidence"):
        np.testing.assert_allclose(float(b[key]), float(a[key]), rtol=1e-4)
    with pytest.raises(SystemExit):
        parse(common + ["--strategy", "tpu"])


def test_evaluate_command_skips_a_non_image_file_with_a_warning(setup, tmp_path):
    """A labels file naming a non-image file: skipped with a warning naming it, as `explain FOLDER` does (was: a raw
    InvalidArgumentError from the tf.data iterator)."""
    from tfxai.streaming import UnreadableImagesWarning

    _, path, folder = setup
    (folder / "readme.png").write_text("a text file with an image's extension")
    with open(folder / "labels.csv", "a") as handle:
        handle.write("readme.png,n9,1,c9\n")
    out = tmp_path / "out"
    args = parse(["evaluate", "--model", str(path), "--images", str(folder), "--methods", "vanilla", "--num-steps", "2",
                  "--out", str(out), "--no-progress"])
    with pytest.warns(UnreadableImagesWarning, match="readme.png"):
        assert cli_evaluate.run(args) == 0
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert rows[0]["num_images"] == "3"
