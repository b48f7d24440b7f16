"""The command line: demo end to end, explain on the real ImageNet model, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests import models
from tfxai import _cli_common, _registry, cli, demo


def test_demo_quick_writes_figure_maps_and_summary(tmp_path, capsys):
    out = tmp_path / "demo"
    assert cli.main(["demo", "--quick", "--out", str(out), "--methods", "vanilla,ig,gradcam"]) == 0
    for name in ("demo_grid.png", "maps.npz", "summary.txt", "summary.json", "photo_grid.png"):
        assert (out / name).stat().st_size > 0
    assert (out / "demo_grid.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["test_accuracy"] > 0.8  # the shapes are learnable in seconds
    assert set(summary["methods"]) == {"vanilla", "ig", "gradcam"}
    # the shape covers ~6% of the image (~12% with the tolerance): chance is far below this
    assert summary["methods"]["gradcam"]["pointing_game"] > 0.5
    maps = np.load(out / "maps.npz")
    assert maps["gradcam"].shape == maps["images"].shape[:3]
    # the recorded hit rate is the pointing game of the saved maps
    hits = demo.pointing_game(maps["ig"], maps["masks"])
    assert hits.mean() == pytest.approx(summary["methods"]["ig"]["pointing_game"])
    printed = capsys.readouterr().out
    assert "[1/4]" in printed and "[4/4]" in printed and "pointing game" in printed
    assert "the shipped photo 'chelsea' with the shipped ImageNet model" in printed
    assert "test accuracy" in (out / "summary.txt").read_text()


def test_make_shapes_masks_match_pixels():
    images, labels, masks = demo.make_shapes(30, seed=3)
    assert images.shape == (30, 32, 32, 3) and images.dtype == np.float32
    assert set(np.unique(labels)) <= {0, 1, 2}
    for image, mask in zip(images, masks):
        assert mask.any()
        assert image[mask].min() >= 0.7 - 1e-6 and image[~mask].max() <= 0.35 + 1e-6
    # squares fill their bounding box, disks and triangles do not
    square = masks[labels == 0][0]
    rows, cols = np.nonzero(square)
    assert square[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1].all()


def test_pointing_game_tolerance():
    maps = np.zeros((2, 8, 8))
    maps[0, 2, 2] = 1.0  # on the object
    maps[1, 5, 5] = 1.0  # two pixels away
    masks = np.zeros((2, 8, 8), bool)
    masks[:, 2:4, 2:4] = True
    np.testing.assert_array_equal(demo.pointing_game(maps, masks, tolerance=0), [True, False])
    np.testing.assert_array_equal(demo.pointing_game(maps, masks, tolerance=2), [True, True])


def test_method_names_parse_and_reject():
    assert _registry.parse("GradCAM, ig,Grad-CAM") == ["gradcam", "ig"]
    assert "scorecam" not in _registry.parse("default")
    assert "scorecam" in _registry.parse("all")
    with pytest.raises(ValueError, match="Unknown method 'bogus'"):
        _registry.parse("gradcam,bogus")


def test_errors_are_one_line_with_exit_code_2(tmp_path, capsys):
    code = cli.main(["explain", str(tmp_path / "missing.jpg"), "--model", "MobileNetV2", "--out", str(tmp_path)])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "missing.jpg" in err[0] and "Traceback" not in err[0]
    assert cli.main(["demo", "--methods", "bogus", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Unknown method 'bogus'" in err[0]
    with pytest.raises(FileNotFoundError):
        cli.main(["--debug", "explain", str(tmp_path / "missing.jpg"), "--model", "MobileNetV2"])
    image = tmp_path / "not_an_image.jpg"
    image.write_text("hello")
    assert cli.main(["explain", str(image), "--model", "NoSuchNet", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "a model file nor a keras.applications name" in err and "bundled model (efficientnet_lite0" in err


def test_input_range_of_preprocessing():
    assert _cli_common.input_range_of(None) == (0.0, 255.0)
    assert _cli_common.input_range_of(_cli_common.preprocess_function("symmetric")) == (-1.0, 1.0)
    low, high = _cli_common.input_range_of(_cli_common.preprocess_function("caffe"))
    assert low == pytest.approx(-123.68) and high == pytest.approx(255 - 103.939)


@pytest.mark.slow
def test_explain_real_model_on_a_photo(tmp_path, monkeypatch):
    if not models.REAL_MODEL.exists() or not models.SAMPLES.exists():
        pytest.skip(f"needs ../shared/assets (not found at {models.ASSETS})")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "empty_keras_home"))  # class names ship with tfxai
    photo = models.SAMPLES / "n01440764_tench.JPEG"
    out = tmp_path / "explain"
    code = cli.main(["explain", str(photo), "--model", str(models.REAL_MODEL), "--methods", "gradcam,vanilla", "--out", str(out)])
    assert code == 0
    assert (out / "grid.png").read_bytes()[:4] == b"\x89PNG"
    maps = np.load(out / "maps.npz")
    assert maps["gradcam"].shape == (1, 224, 224) and maps["vanilla"].shape == (1, 224, 224)
    assert maps["images"].shape == (1, 224, 224, 3)
    assert int(maps["targets"][0]) == 0  # tench is class 0; the model gets it right
    assert "tench" in (out / "predictions.txt").read_text()


def test_command_line_faults_are_one_clear_line(tmp_path, capsys):
    import keras

    import tfxai

    corrupt = tmp_path / "broken.keras"
    corrupt.write_bytes(b"not a zip file")
    photo = tfxai.data.photo_path("chelsea")
    assert cli.main(["explain", str(photo), "--model", str(corrupt), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "cannot load the model file" in err and "not found" not in err
    with pytest.raises(SystemExit):
        cli.main(["explain", str(photo), "--model", str(corrupt), "--size", "0"])
    assert "expected a whole number >= 1; received '0'" in capsys.readouterr().err
    blocker = tmp_path / "file"
    blocker.write_text("x")
    small = models.small_cnn((16, 16, 3), num_classes=3, softmax=True)
    path = tmp_path / "small.keras"
    small.save(path)
    assert cli.main(["explain", str(photo), "--model", str(path), "--out", str(blocker / "sub"), "--methods", "gradcam"]) == 2
    assert "is not a folder" in capsys.readouterr().err
    assert not (blocker.parent / "sub").exists()
    # class names as targets, on the bundled ImageNet model
    model_path = tmp_path / "lite0.keras"
    tfxai.models.efficientnet_lite0().save(model_path)
    out = tmp_path / "named"
    assert cli.main(["explain", str(photo), "--model", str(model_path), "--targets", "tiger_cat", "--methods", "gradcam",
                     "--out", str(out), "--no-progress"]) == 0
    assert int(np.load(out / "maps.npz")["targets"][0]) == 282
    assert cli.main(["explain", str(photo), "--model", str(model_path), "--targets", "tiger_kat", "--methods", "gradcam",
                     "--out", str(out), "--no-progress"]) == 2
    assert "Unknown class name 'tiger_kat' for model 'efficientnet_lite0'. Did you mean ['tiger_cat'" in capsys.readouterr().err
    keras.utils.clear_session()


def test_explain_a_folder_streams_shards(tmp_path):
    import tensorflow as tf

    model = models.small_cnn((16, 16, 3), num_classes=3, softmax=True)
    path = tmp_path / "small.keras"
    model.save(path)
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(5):
        pixels = tf.constant(rng.integers(0, 256, (20, 24, 3)).astype("uint8"))
        tf.io.write_file(str(folder / f"p{i}.png"), tf.io.encode_png(pixels))
    out = tmp_path / "maps"
    assert cli.main(["explain", str(folder), "--model", str(path), "--preprocess", "unit", "--methods", "gradcam,vanilla",
                     "--shard-size", "2", "--out", str(out), "--no-progress"]) == 0
    from tfxai import streaming

    result = streaming.load_all(out)
    assert sorted(Path(f).name for f in result["files"]) == [f"p{i}.png" for i in range(5)]
    assert result["gradcam"].shape == (5, 16, 16) and np.all(np.isfinite(result["vanilla"]))
    assert len(list(out.glob("shard-*.npz"))) == 3


# --------------------------------------------------------------------------- edges (issue 16)
def test_a_folder_with_image_files_says_one_folder_or_image_files(tmp_path, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"\xff\xd8")
    for paths in ([folder, photo], [photo, folder]):
        code = cli.main(["explain", *map(str, paths), "--model", "MobileNetV2", "--out", str(tmp_path / "out")])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1, err
        assert "one folder OR image files" in err[0] and "photos" in err[0] and "not found" not in err[0]  # was: "image file not found"
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", [["explain", "a.jpg", "--model", "M"], ["evaluate", "--images", "a", "--model", "M"]])
@pytest.mark.parametrize("spelling, expected", [
    (["--input-range", "-1,1"], (-1.0, 1.0)),  # was: argparse "expected one argument"
    (["--input-range=-1,1"], (-1.0, 1.0)),
    (["--input-range", "-.5,0.5"], (-0.5, 0.5)),
    (["--input-range", "0,255"], (0.0, 255.0)),
])
def test_input_range_accepts_negative_lows(monkeypatch, command, spelling, expected):
    seen = []
    monkeypatch.setattr(cli, "run", lambda args: seen.append(args) or 0)
    try:
        code = cli.main(command + spelling)
    except SystemExit as stop:  # an argparse failure for this sub-command's other arguments
        pytest.fail(f"argparse refused {spelling}: exit {stop.code}")
    assert code == 0 and seen[0].input_range == expected


def test_input_range_still_rejects_bad_ranges(capsys):
    with pytest.raises(SystemExit):
        cli.main(["explain", "a.jpg", "--model", "M", "--input-range", "1,-1"])
    assert "LOW must be smaller than HIGH" in capsys.readouterr().err
    # an option after --input-range is not swallowed as its value
    assert _cli_common.join_negative_values(["--input-range", "--debug"]) == ["--input-range", "--debug"]
    assert _cli_common.join_negative_values(["x", "--input-range", "-1,1", "-v"]) == ["x", "--input-range=-1,1", "-v"]


# --- issue 18 / 17: the bundled model by name, budgets, Ctrl-C, quiet start, fast help ----------------------

import os  # noqa: E402
import re  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
#: TensorFlow's C++ start-up lines (issue 18, problem 4).
CPP_LINES = ("oneDNN custom operations", "Could not find cuda drivers", "cuInit", "E0000", "absl::InitializeLog",
             "cpu_feature_guard")


def _env(**extra):
    """The environment of a subprocess: this worktree first, TensorFlow's log level left to tfxai, unbuffered."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def test_static_method_table_matches_the_registry():
    from tfxai import _method_table

    live = _method_table.from_registry()
    assert _method_table.rows() == live  # with the registry loaded, help reads it
    assert _method_table.METHODS == live, (
        "tfxai/_method_table.py is out of date with the registry; replace its table with:\n" + _method_table.render(live)
    )
    assert _method_table.slow() == _registry.slow()


@pytest.mark.parametrize("argv", [["--help"], ["explain", "--help"], ["evaluate", "--help"], ["demo", "--help"]])
def test_help_does_not_import_tensorflow(argv):
    """`python -m tfxai --help` answers without importing TensorFlow or Keras (issue 17: under 2 s)."""
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "tfxai", *argv], capture_output=True, text=True,
                            env=_env(), cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "usage: tfxai" in result.stdout
    imported = {line.split("|")[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")}
    assert "tfxai.cli" in imported  # the import log is really there
    assert not {"tensorflow", "keras"} & imported, sorted(m for m in imported if m.split(".")[0] in ("tensorflow", "keras"))
    for rst in ("``", "::", ":func:", ":mod:"):
        assert rst not in result.stdout, f"raw reST markup {rst!r} in `tfxai {' '.join(argv)}`"


def test_help_and_readme_say_the_same_about_default():
    from tfxai import _method_table

    sentence = _method_table.default_sentence()
    assert "scorecam" in sentence and "rise" in sentence
    assert sentence in " ".join(cli.methods_help().split())
    readme = " ".join((ROOT / "README.md").read_text().split())
    assert sentence in readme, f"the README must say: {sentence}"


def test_bundled_model_by_name_everywhere(capsys):
    from tfxai import models as bundled

    assert "efficientnet_lite0" in bundled.names()
    model, preprocess = _cli_common.load_model("efficientnet_lite0")
    assert model.name == "efficientnet_lite0" and preprocess is None
    assert bundled.load("EfficientNet-Lite0").count_params() == model.count_params()
    with pytest.raises(ValueError, match="efficientnet_lite0"):
        bundled.load("efficientnet_lite1")
    with pytest.raises(ValueError, match="bundled model .*efficientnet_lite0"):
        _cli_common.load_model("NoSuchNet")
    with pytest.raises(FileNotFoundError, match="efficientnet_lite0"):
        _cli_common.load_model("efficientnet_lite0_imagenet.keras")
    # the help names it, and every model evaluate's example names exists
    parser = cli.build_parser()
    assert "efficientnet_lite0" in parser._subparsers._group_actions[0].choices["explain"].format_help()
    from tfxai import cli_evaluate

    examples = re.findall(r"--model (\S+)", cli_evaluate.__doc__)
    assert examples and all(bundled.is_bundled(m) or Path(m).exists() for m in examples), examples


def test_explain_a_shipped_photo_with_budgets_and_estimate(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cli, "ESTIMATE_ABOVE_SECONDS", 0.0)  # print the estimate for this short run too
    out = tmp_path / "out"
    assert cli.main(["explain", "--photo", "chelsea", "--model", "efficientnet_lite0", "--methods", "scorecam,rise",
                     "--scorecam-channels", "8", "--rise-masks", "40", "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "budget: scorecam: 8 channels" in printed and "budget: rise: 40 random masks" in printed
    assert re.search(r"estimated time: about \d+ min", printed)
    maps = np.load(out / "maps.npz")
    assert maps["scorecam"].shape == (1, 224, 224) and maps["rise"].shape == (1, 224, 224)
    assert int(maps["targets"][0]) in (281, 282, 285)  # a cat (tabby, tiger cat, Egyptian cat)
    assert "chelsea.jpg" in (out / "predictions.txt").read_text()
    # the default budget caps Score-CAM at 64 of Lite0's 1280 channels; 'all' is the paper's setting
    args = cli.build_parser().parse_args(["explain", "--photo", "chelsea", "--model", "m", "--methods", "all"])
    overrides, lines = cli._budgets(args, _registry.parse("all"))
    assert overrides["scorecam"] == {"num_channels": 64} and overrides["rise"] == {"num_masks": 1000}
    args = cli.build_parser().parse_args(["explain", "x.jpg", "--model", "m", "--scorecam-channels", "all"])
    assert cli._budgets(args, ["scorecam"])[0] == {"scorecam": {}}
    assert cli.main(["explain", "--model", "efficientnet_lite0", "--out", str(out)]) == 2
    assert "--photo NAME" in capsys.readouterr().err


def test_ctrl_c_stops_within_seconds_and_writes_the_finished_methods(tmp_path):
    """SIGINT while Score-CAM runs over all 1280 channels (about a minute): exit 130 in seconds, two maps written."""
    out = tmp_path / "out"
    command = [sys.executable, "-m", "tfxai", "explain", "--photo", "chelsea", "--model", "efficientnet_lite0",
               "--methods", "gradcam,vanilla,scorecam", "--scorecam-channels", "all", "--no-progress", "--out", str(out)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(), cwd=tmp_path)
    lines = []
    try:
        for line in process.stdout:
            lines.append(line)
            if "Vanilla Gradient" in line:  # the second method is finished; Score-CAM starts
                break
        time.sleep(2.0)
        assert process.poll() is None, "".join(lines)
        sent = time.perf_counter()
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=60)
        waited = time.perf_counter() - sent
    finally:
        if process.poll() is None:
            process.kill()
    stderr = process.stderr.read()
    assert code == 130, stderr[-2000:]
    assert waited < 10.0, f"Ctrl-C took {waited:.1f} s"
    assert "interrupted; wrote the 2 finished method(s) (gradcam, vanilla)" in stderr
    maps = np.load(out / "maps.npz")
    assert {"gradcam", "vanilla"} <= set(maps.files) and "scorecam" not in maps.files
    assert (out / "grid.png").read_bytes()[:4] == b"\x89PNG"
    assert not [line for line in stderr.splitlines() if any(key in line for key in CPP_LINES)], stderr[:2000]


def test_no_tensorflow_start_up_lines_from_the_readme_example(tmp_path):
    """The README's 60-second example, run as a script (TF_CPP_MIN_LOG_LEVEL unset), prints no C++ start-up line."""
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## The 60-second example"):]
    code = section[section.index("```python\n") + len("```python\n"):section.index("```\n", section.index("```python"))]
    assert "import tfxai" in code.splitlines()[0]
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env(), cwd=tmp_path,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "maps.png").read_bytes()[:4] == b"\x89PNG"
    assert not [line for line in result.stderr.splitlines() if any(key in line for key in CPP_LINES)], result.stderr[:2000]
    # the user's explicit setting wins: the lines come back (they are TensorFlow's, not ours)
    loud = subprocess.run([sys.executable, "-c", "import tfxai"], capture_output=True, text=True,
                          env=_env(TF_CPP_MIN_LOG_LEVEL="0"), cwd=ROOT, timeout=300)
    assert any(key in loud.stderr for key in CPP_LINES), loud.stderr[:1000]
