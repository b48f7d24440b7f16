"""Scale (issue 12): strategy.run steps, multi-worker evaluation, streaming folder explanation, GPU readiness.

Multi-device and multi-worker runs happen in subprocesses: logical CPU devices
must be configured before TensorFlow initialises, and each worker is its own
process talking to the others over loopback ports.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

import tfxai
from tfxai import cli_evaluate, distribute, evaluation
from tfxai.errors import InvalidInputError
from tests import models

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}


# ----------------------------------------------------------------------------- helpers
def free_ports(count: int) -> list[int]:
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def run_processes(commands: list, timeout: float, envs: list, cwd: Path = ROOT) -> list:
    """Start every command at once; wait for all (killing every one on timeout or failure)."""
    procs = [
        subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        for cmd, env in zip(commands, envs)
    ]
    deadline = time.monotonic() + timeout
    outputs = [None] * len(procs)
    try:
        while any(o is None for o in outputs):
            for i, proc in enumerate(procs):
                if outputs[i] is None and proc.poll() is not None:
                    outputs[i] = (proc.returncode, *proc.communicate())
                    if proc.returncode != 0:
                        raise AssertionError(f"process {i} failed ({proc.returncode}):\n{outputs[i][2][-4000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"processes still running after {timeout} s")
            time.sleep(0.2)
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    return outputs


def write_folder(folder: Path, count: int, size: int = 32, seed: int = 0, labels: bool = True) -> list[str]:
    """`count` random PNG/JPEG images (and a labels CSV); returns the file names."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    names = []
    for i in range(count):
        image = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        name = f"im{i:05d}.{'png' if i % 2 == 0 else 'jpg'}"
        data = tf.io.encode_png(image) if i % 2 == 0 else tf.io.encode_jpeg(image)
        (folder / name).write_bytes(data.numpy())
        names.append(name)
    if labels:
        rows = ["filename,class_index"] + [f"{n},{i % 5}" for i, n in enumerate(names)]
        (folder / "labels.csv").write_text("\n".join(rows) + "\n")
    return names


def parse_evaluate(argv):
    parser = argparse.ArgumentParser(prog="tfxai")
    cli_evaluate.register(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def read_csv(path: Path) -> dict:
    return {row["method"]: row for row in csv.DictReader(open(path))}


# ----------------------------------------------------------------------------- TF_CONFIG and sharding
def test_tf_config_parsing_and_errors():
    config = {"cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"]}, "task": {"type": "worker", "index": 2}}
    parsed = distribute.read_tf_config({"TF_CONFIG": json.dumps(config)})
    assert distribute.tf_config_worker(parsed) == (2, 3)
    chief = {"cluster": {"chief": ["a:1"], "worker": ["b:1"]}, "task": {"type": "worker", "index": 0}}
    assert distribute.tf_config_worker(distribute.read_tf_config({"TF_CONFIG": json.dumps(chief)})) == (1, 2)
    with pytest.raises(InvalidInputError, match="TF_CONFIG environment variable"):
        distribute.read_tf_config({})
    with pytest.raises(InvalidInputError, match="not valid JSON"):
        distribute.read_tf_config({"TF_CONFIG": "{cluster"})
    bad = {**config, "task": {"type": "worker", "index": 3}}
    with pytest.raises(InvalidInputError, match="not in its cluster"):
        distribute.read_tf_config({"TF_CONFIG": json.dumps(bad)})
    with pytest.raises(InvalidInputError, match="Unknown strategy"):
        distribute.strategy_from_name("tpu")
    assert distribute.strategy_from_name("none") is tf.distribute.get_strategy()


def test_image_folder_shards_cover_every_image_once(tmp_path):
    write_folder(tmp_path, 7, size=8)
    full = [int(label) for _, label in evaluation.image_folder(tmp_path, size=8, resize_to=8)]
    shards = [[int(l) for _, l in evaluation.image_folder(tmp_path, size=8, resize_to=8, shard=(i, 3))] for i in range(3)]
    assert [len(s) for s in shards] == [3, 2, 2]
    assert sorted(sum(shards, [])) == sorted(full)
    assert shards[1] == full[1::3]
    assert len(list(evaluation.image_folder(tmp_path, size=8, resize_to=8, shard=(7, 9)))) == 0


# ----------------------------------------------------------------------------- multi-worker evaluation
@pytest.fixture(scope="module")
def saved_setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("scale")
    model = models.small_cnn(softmax=True)
    model.save(root / "model.keras")
    write_folder(root / "images", 5, size=24)
    return root


# two TensorFlow processes (~20 s); the sharding is checked fast by test_image_folder_shards_cover_every_image_once
@pytest.mark.slow
def test_multi_worker_evaluate_on_two_local_workers_equals_one_process(saved_setup, tmp_path):
    root = saved_setup
    common = ["evaluate", "--model", str(root / "model.keras"), "--images", str(root / "images"),
              "--methods", "vanilla,gradcam", "--num-steps", "4", "--batch-size", "2", "--no-progress"]
    ports = free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    envs = [{**ENV, "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})} for i in range(2)]
    commands = [[sys.executable, "-m", "tfxai", *common, "--strategy", "multi-worker", "--out", str(tmp_path / "multi")]] * 2
    outputs = run_processes(commands, timeout=240, envs=envs)
    lines = [[l for l in out[1].splitlines() if l.startswith("worker ")] for out in outputs]
    assert lines == [["worker 0 of 2: 3 images"], ["worker 1 of 2: 2 images"]]  # 5 images: 3 + 2, each once
    assert "| Vanilla Gradient | 5 |" in outputs[0][1] and "| Vanilla Gradient" not in outputs[1][1]

    assert cli_evaluate.run(parse_evaluate(common + ["--out", str(tmp_path / "single")])) == 0
    single, multi = read_csv(tmp_path / "single" / "results.csv"), read_csv(tmp_path / "multi" / "results.csv")
    assert list(single) == list(multi) == ["Vanilla Gradient", "Grad-CAM"]
    for method, row in single.items():
        for key, value in row.items():
            if key in ("method", "ms_per_image") or value == "":
                continue
            np.testing.assert_allclose(float(multi[method][key]), float(value), rtol=1e-4, atol=1e-9, err_msg=f"{method} {key}")
    settings = json.loads((tmp_path / "multi" / "results.json").read_text())["settings"]
    assert settings["workers"] == 2 and settings["strategy"] == "multi-worker"


# ----------------------------------------------------------------------------- streaming folders
@pytest.fixture(scope="module")
def big_folder(tmp_path_factory):
    """500 small PNG/JPEG images plus two unreadable files."""
    folder = tmp_path_factory.mktemp("folder")
    write_folder(folder, 500, size=32, labels=False)
    (folder / "sub").mkdir()
    (folder / "sub" / "broken.png").write_bytes(b"not an image at all")
    good = (folder / "im00001.jpg").read_bytes()
    (folder / "sub" / "truncated.jpg").write_bytes(good[:40])
    return folder


def folder_model():
    """``(keras model, adapter)``: a small CNN for 32x32 raw [0, 255] pixels (as the folder reader gives them).

    The adapter holds its model weakly: callers keep the Keras model alive.
    """
    keras_model = models.small_cnn(input_shape=(32, 32, 3), num_classes=5, softmax=True)
    return keras_model, tfxai.adapt(keras_model, input_range=(0, 255))


def test_explain_folder_streams_shards_and_resumes_after_an_interruption(big_folder, tmp_path, monkeypatch):
    from tfxai import streaming

    keras_model, model = folder_model()
    explainers = {"vanilla": tfxai.VanillaGradient(model), "gradcam": tfxai.GradCAM(model)}
    kwargs = dict(explainers=explainers, batch_size=32, shard_size=64, progress=False)
    with pytest.warns(streaming.UnreadableImagesWarning, match="broken.png"):
        reference = streaming.explain_folder(model, big_folder, tmp_path / "ref", **kwargs)
    assert reference.num_files == 502 and reference.num_shards == 8 and reference.written == list(range(8))
    assert reference.images == 500 and sorted(reference.skipped_files) == ["sub/broken.png", "sub/truncated.jpg"]
    full = streaming.load_all(tmp_path / "ref")
    assert full["vanilla"].shape == (500, 32, 32) and full["gradcam"].shape == (500, 32, 32)
    assert len(set(full["files"].tolist())) == 500 and "sub/broken.png" not in full["files"]
    manifest = json.loads((tmp_path / "ref" / "manifest.json").read_text())
    assert manifest["complete"] and sorted(manifest["skipped"]) == ["sub/broken.png", "sub/truncated.jpg"]
    # the maps are the explainers' own, and the targets the predicted classes
    images = np.stack([models.center_crop(tf.io.decode_image((big_folder / n).read_bytes(), channels=3), 32, 32 / 0.875)
                       for n in full["files"][:6]])
    np.testing.assert_allclose(full["vanilla"][:6], explainers["vanilla"](images, full["targets"][:6]), rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(full["targets"][:6], np.argmax(keras_model.predict(images, verbose=0), -1))

    # an interruption after 3 shards (a stray temporary file left behind), then the same call again
    original, calls = streaming._ShardBuffer._write, []

    def interrupted(self, shard, end):
        if len(calls) == 3:
            (self.out / ".shard-00003.npz.999.tmp").write_bytes(b"partial")
            raise KeyboardInterrupt
        calls.append(shard)
        return original(self, shard, end)

    monkeypatch.setattr(streaming._ShardBuffer, "_write", interrupted)
    with pytest.raises(KeyboardInterrupt):
        streaming.explain_folder(model, big_folder, tmp_path / "resumed", **kwargs)
    monkeypatch.setattr(streaming._ShardBuffer, "_write", original)
    assert sorted(p.name for p in (tmp_path / "resumed").glob("shard-*.npz")) == [f"shard-0000{k}.npz" for k in range(3)]
    with pytest.warns(streaming.UnreadableImagesWarning):
        resumed = streaming.explain_folder(model, big_folder, tmp_path / "resumed", **kwargs)
    assert resumed.already_done == [0, 1, 2] and resumed.written == [3, 4, 5, 6, 7]
    assert resumed.images == 500 - 3 * 64
    again = streaming.load_all(tmp_path / "resumed")
    assert again["files"].tolist() == full["files"].tolist()
    np.testing.assert_array_equal(again["targets"], full["targets"])
    for method in explainers:
        np.testing.assert_allclose(again[method], full[method], rtol=1e-5, atol=1e-7)
    # nothing left to do; other settings in the same folder are refused; unreadable files can stop the run
    assert streaming.explain_folder(model, big_folder, tmp_path / "resumed", **kwargs).written == []
    with pytest.raises(InvalidInputError, match="shard_size"):
        streaming.explain_folder(model, big_folder, tmp_path / "resumed", **{**kwargs, "shard_size": 100})
    with pytest.raises(InvalidInputError, match="broken.png"):
        streaming.explain_folder(model, big_folder, tmp_path / "strict", **kwargs, on_error="raise")


def test_explain_folder_command_line_entry(big_folder, tmp_path, capsys):
    """run_folder(args) with the `explain` parser's arguments (cli.py dispatches a folder argument here)."""
    from tfxai import cli, streaming

    model = models.small_cnn(input_shape=(32, 32, 3), num_classes=5, softmax=True)
    model.save(tmp_path / "m.keras")
    small = tmp_path / "few"
    write_folder(small, 5, size=32, labels=False)
    args = cli.build_parser().parse_args(["explain", str(small), "--model", str(tmp_path / "m.keras"), "--methods",
                                          "vanilla,gradcam", "--out", str(tmp_path / "maps"), "--no-progress"])
    args.shard_size = 2
    assert streaming.run_folder(args) == 0
    assert "worker 0 of 1: 5 images, 3 shard(s) written" in capsys.readouterr().out
    data = streaming.load_all(tmp_path / "maps")
    assert data["files"].tolist() == sorted(p.name for p in small.iterdir())
    assert data["gradcam"].shape == (5, 32, 32) and data["probabilities"].min() > 0


# ----------------------------------------------------------------------------- GPU readiness
def _record_engines(monkeypatch):
    from tfxai.evaluation import runner

    engines = []

    class Recorded(runner._Engine):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            engines.append(self)

    monkeypatch.setattr(runner, "_Engine", Recorded)
    return engines


def test_compiled_steps_have_no_host_round_trips_and_jit_switch(monkeypatch, recwarn):
    keras_model = models.small_cnn(softmax=True)
    model = tfxai.adapt(keras_model, input_range=(0, 1))
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 1, (5, 16, 16, 3)).astype("float32")
    dataset = tf.data.Dataset.from_tensor_slices((images, np.arange(5, dtype=np.int32) % 5))
    explainers = {"Vanilla": tfxai.VanillaGradient(model), "T-Grad": tfxai.TGrad(model)}
    engines = _record_engines(monkeypatch)
    kwargs = dict(num_steps=4, batch_size=4, progress=False, keep_per_image=True)
    plain = evaluation.evaluate(model, explainers, dataset, **kwargs)
    (engine,) = engines
    assert set(engine.functions) == {"targets", ("explain", "Vanilla"), ("score", "Vanilla"), ("explain", "T-Grad"), ("score", "T-Grad")}
    for key, function in engine.functions.items():
        concrete = function.get_concrete_function()
        ops = distribute.graph_ops(concrete)
        bodies = {fn for fn, _, _ in ops if fn != "<main>"}
        assert bodies, f"{key}: the replica function and its loop bodies live in the function library"
        assert distribute.host_round_trips(concrete) == [], key
        assert function.experimental_get_tracing_count() == 1, key  # one trace for batches of 4 and 1
    score_ops = {op for _, op, _ in distribute.graph_ops(engine.functions[("score", "Vanilla")].get_concrete_function())}
    assert {"While", "Conv2D"} <= score_ops or {"StatelessWhile", "Conv2D"} <= score_ops  # model calls inside loop bodies

    @tf.function
    def leaky(x):  # the check finds a Python callback inside a while-loop body
        def body(i, y):
            return i + 1, tf.ensure_shape(tf.py_function(lambda v: v * 2, [y], tf.float32), [])

        return tf.while_loop(lambda i, y: i < 2, body, (0, x))

    assert [op for _, op, _ in distribute.host_round_trips(leaky.get_concrete_function(tf.TensorSpec([], tf.float32)))] == ["EagerPyFunc"]

    jit = evaluation.evaluate(model, explainers, dataset, jit_compile=True, **kwargs)
    assert jit.settings["jit_compile"] is True
    for name in explainers:
        for key, value in plain.methods[name].means.items():
            np.testing.assert_allclose(jit.methods[name].means[key], value, rtol=1e-4, atol=1e-6, err_msg=f"{name} {key}")
        np.testing.assert_allclose(jit.methods[name].per_image["deletion"], plain.methods[name].per_image["deletion"], rtol=1e-4, atol=1e-6)
    for _, function in engines[-1].functions.items():
        assert distribute.host_round_trips(function.get_concrete_function()) == []


# ----------------------------------------------------------------------------- two logical devices
MIRRORED = textwrap.dedent(
    """
    import json, sys, tempfile, warnings
    from pathlib import Path
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import numpy as np, tfxai
    from tfxai import distribute, evaluation, streaming
    from tfxai.evaluation import runner
    from tests import models
    from tests.test_scale import write_folder

    keras_model = models.small_cnn(softmax=True)
    model = tfxai.adapt(keras_model, input_range=(0, 1))
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 1, (7, 16, 16, 3)).astype("float32")
    labels = rng.integers(0, 5, 7).astype("int32")
    dataset = tf.data.Dataset.from_tensor_slices((images, labels))

    class Counting(tfxai.GradCAM):
        replicas = []
        def explain_batch(self, images, targets, seed):
            context = tf.distribute.get_replica_context()
            rid = None if context is None else context.replica_id_in_sync_group
            Counting.replicas.append(int(tf.get_static_value(rid)) if tf.is_tensor(rid) else rid)
            return super().explain_batch(images, targets, seed)

    engines = []
    class Recorded(runner._Engine):
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            engines.append(self)
    runner._Engine = Recorded

    explainers = {"Grad-CAM": Counting(model), "IxG": tfxai.InputXGradient(model)}
    kwargs = dict(num_steps=4, batch_size=4, progress=False, keep_per_image=True)
    single = evaluation.evaluate(model, explainers, dataset, **kwargs)
    traced_single = list(Counting.replicas)
    Counting.replicas.clear()
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    mirrored = evaluation.evaluate(model, explainers, dataset, strategy=strategy, **kwargs)
    explain = engines[-1].functions[("explain", "Grad-CAM")].get_concrete_function()
    devices = sorted({node.device for node in explain.graph.as_graph_def().node if node.op == "StatefulPartitionedCall" or "replica" in node.name})

    folder = Path(tempfile.mkdtemp())
    write_folder(folder / "images", 30, size=16, labels=False)
    fex = {"gradcam": tfxai.GradCAM(model), "vanilla": tfxai.VanillaGradient(model)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        streaming.explain_folder(model, folder / "images", folder / "one", explainers=fex, batch_size=4, shard_size=8, progress=False)
        streaming.explain_folder(model, folder / "images", folder / "two", explainers=fex, batch_size=4, shard_size=8, progress=False, strategy=strategy)
    one, two = streaming.load_all(folder / "one"), streaming.load_all(folder / "two")
    print("RESULT" + json.dumps({
        "replicas": strategy.num_replicas_in_sync,
        "traced_single": traced_single, "traced_mirrored": sorted(Counting.replicas),
        "devices": devices,
        "single": {k: v.means for k, v in single.methods.items()},
        "mirrored": {k: v.means for k, v in mirrored.methods.items()},
        "per_image": [single.methods["IxG"].per_image["deletion"], mirrored.methods["IxG"].per_image["deletion"]],
        "counts": [v.num_images for v in mirrored.methods.values()],
        "settings": mirrored.settings,
        "folder_files": [one["files"].tolist(), two["files"].tolist()],
        "folder_max_diff": max(float(np.abs(one[m] - two[m]).max()) for m in fex),
        "folder_targets_equal": bool((one["targets"] == two["targets"]).all()),
    }))
    """
)


# a TensorFlow subprocess with 2 virtual CPUs (~20 s); --strategy mirrored is run fast by
# tests/test_cli_evaluate.py::test_strategy_options_give_the_same_table
@pytest.mark.slow
def test_mirrored_strategy_runs_every_replica_through_strategy_run():
    done = subprocess.run([sys.executable, "-c", MIRRORED], cwd=ROOT, capture_output=True, text=True, timeout=400, env=ENV)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT")]
    assert lines, done.stderr[-4000:]
    data = json.loads(lines[0][len("RESULT"):])
    assert data["replicas"] == 2 and data["counts"] == [7, 7]
    # strategy.run traced the explainer's body once per replica (replica ids 0 and 1), once in the default context
    assert data["traced_mirrored"] == [0, 1] and data["traced_single"] == [0]
    assert any("CPU:1" in d for d in data["devices"]), data["devices"]  # replica 1's ops are pinned to the second device
    for name, means in data["single"].items():
        assert set(means) == set(data["mirrored"][name])
        for key, value in means.items():
            np.testing.assert_allclose(data["mirrored"][name][key], value, rtol=1e-5, atol=1e-7, err_msg=f"{name} {key}")
    np.testing.assert_allclose(data["per_image"][1], data["per_image"][0], rtol=1e-5, atol=1e-7)  # dataset order kept
    assert data["settings"]["strategy"] == "mirrored" and data["settings"]["replicas"] == 2
    assert data["folder_files"][0] == data["folder_files"][1] and len(data["folder_files"][0]) == 30
    assert data["folder_targets_equal"] and data["folder_max_diff"] < 1e-5


# ----------------------------------------------------------------------------- the stream on the one engine (issue 16)
def test_explain_folder_resume_compares_weights_preprocessing_methods_and_range(tmp_path):
    from tfxai import streaming

    write_folder(tmp_path / "images", 3, size=16, labels=False)
    keras_model = models.small_cnn(softmax=True)
    model = tfxai.adapt(keras_model, input_range=(0, 255))
    out = tmp_path / "maps"

    def unit(x):
        return x / 255.0

    def symmetric(x):
        return x / 127.5 - 1.0

    symmetric.__name__ = unit.__name__ = "numpy_preprocess"  # every mode of the command line has this name
    run = dict(methods="vanilla", progress=False, shard_size=2, preprocess=unit)
    first = streaming.explain_folder(model, tmp_path / "images", out, **run)
    assert first.written == [0, 1]
    assert streaming.explain_folder(model, tmp_path / "images", out, **run).already_done == [0, 1]  # same settings: resumed
    import keras

    other = keras.models.clone_model(keras_model)  # the same name, other weights
    other.set_weights([w + 0.01 for w in keras_model.get_weights()])
    assert other.name == keras_model.name
    cases = [
        (dict(model=tfxai.adapt(other, input_range=(0, 255))), "model_weights"),
        (dict(preprocess=symmetric), "preprocess"),
        (dict(quick=True), "quick"),
        (dict(model=tfxai.adapt(keras_model, input_range=(0, 1))), "input_range"),
        (dict(methods=None, explainers={"vanilla": tfxai.VanillaGradient(model, output="logit")}), "methods"),
    ]
    for change, differs in cases:
        options = {**run, **{k: v for k, v in change.items() if k != "model"}}
        if options.get("methods") is None:
            options.pop("methods")
        with pytest.raises(InvalidInputError, match=rf"({differs}).*differ.*new output folder \(--out\) or delete"):
            streaming.explain_folder(change.get("model", model), tmp_path / "images", out, **options)


def test_explain_folder_names_a_damaged_or_foreign_shard(tmp_path):
    from tfxai import streaming

    write_folder(tmp_path / "images", 4, size=16, labels=False)
    model = tfxai.adapt(models.small_cnn(softmax=True), input_range=(0, 255))
    run = dict(methods="vanilla", progress=False, shard_size=2)
    streaming.explain_folder(model, tmp_path / "images", tmp_path / "maps", **run)
    (tmp_path / "maps" / "shard-00000.npz").write_bytes(b"PK\x03\x04 damaged")
    with pytest.raises(InvalidInputError, match=r"shard-00000\.npz.*damaged.*delete it"):
        streaming.explain_folder(model, tmp_path / "images", tmp_path / "maps", **run)
    with pytest.raises(InvalidInputError, match=r"shard-00000\.npz"):
        list(streaming.read_shards(tmp_path / "maps"))
    np.savez(tmp_path / "maps" / "shard-00000.npz", weights=np.zeros(3))  # a foreign file of the same name
    with pytest.raises(InvalidInputError, match=r"shard-00000\.npz.*'files'"):
        streaming.explain_folder(model, tmp_path / "images", tmp_path / "maps", **run)
    (tmp_path / "maps" / "shard-00000.npz").unlink()  # the fix the message gives: the shard is recomputed
    assert streaming.explain_folder(model, tmp_path / "images", tmp_path / "maps", **run).written == [0]
    (tmp_path / "maps" / "manifest.json").write_text("{broken")
    with pytest.raises(InvalidInputError, match=r"manifest\.json.*not a tfxai manifest"):
        streaming.explain_folder(model, tmp_path / "images", tmp_path / "maps", **run)


def test_explain_folder_targets_by_name_and_a_one_channel_model(tmp_path):
    from tfxai import streaming

    write_folder(tmp_path / "images", 3, size=16, labels=False)
    keras_model = models.small_cnn(input_shape=(16, 16, 1), softmax=True)
    model = tfxai.adapt(keras_model, input_range=(0, 255), class_names=["cat", "dog", "bird", "fish", "frog"])
    summary = streaming.explain_folder(model, tmp_path / "images", tmp_path / "maps", methods="vanilla",
                                       targets="bird", progress=False)
    assert summary.images == 3 and summary.skipped_files == []
    data = streaming.load_all(tmp_path / "maps")
    assert data["targets"].tolist() == [2, 2, 2] and data["vanilla"].shape == (3, 16, 16)
    # the files were decoded with the model's one channel
    grey = np.stack([models.center_crop(tf.io.decode_image((tmp_path / "images" / n).read_bytes(), channels=1), 16, 16 / 0.875)
                     for n in data["files"]])
    np.testing.assert_allclose(data["vanilla"], tfxai.VanillaGradient(model)(grey, 2), rtol=1e-4, atol=1e-6)
    with pytest.raises(InvalidInputError, match="Unknown class name 'kat'"):
        streaming.explain_folder(model, tmp_path / "images", tmp_path / "other", methods="vanilla", targets="kat", progress=False)
