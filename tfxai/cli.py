"""The command line: ``python -m tfxai {explain,demo,evaluate} ...``.

* ``explain IMAGE... --model MODEL``: explain photos with chosen methods; writes
  ``grid.png`` (images x methods, colour bars, signed maps on a diverging
  scale), ``maps.npz`` and ``predictions.txt``; progress per method and image.
  ``--photo chelsea`` names a photo shipped with tfxai, ``--model
  efficientnet_lite0`` the ImageNet model shipped with tfxai (both offline).
  The slow methods run within CPU budgets (printed); a run estimated to take
  more than a minute prints its estimate first; Ctrl-C stops within seconds and
  still writes every method already finished.
* ``demo``: the offline demo (:mod:`tfxai.demo`).
* ``evaluate``: the evaluation protocol (:mod:`tfxai.cli_evaluate`).

Input range of ``--model``:

* A bundled model name (``efficientnet_lite0``): raw pixels in [0, 255] (the
  model holds its own preprocessing).
* A ``keras.applications`` name (``MobileNetV2``, ``ResNet50``...): photos are
  read as pixels in [0, 255] and passed through that application's
  ``preprocess_input``; explanations are computed in that preprocessed space
  (the model's input space), and the valid range used by baselines is the
  image of [0, 255] under ``preprocess_input`` (e.g. [-1, 1] for MobileNetV2).
  Figures always show the original photo.
* A saved ``.keras`` file: the model takes raw pixels in [0, 255] unless
  ``--preprocess`` says otherwise (``unit``: divide by 255; ``symmetric``:
  scale to [-1, 1]; ``caffe``/``torch``/``tf``: the Keras ImageNet modes).

Methods come from the registry (:mod:`tfxai._registry`): every explainer class
with a ``name`` is offered. ``--help`` reads a static copy of it
(:mod:`tfxai._method_table`, checked against the registry by a test) so that it
answers without importing TensorFlow. Errors are reported as one line on stderr with exit
code 2 (``--debug`` shows the traceback).
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from tfxai import _method_table, cli_evaluate
from tfxai import models as bundled
from tfxai._cli_common import (
    PREPROCESS_MODES,
    image_files,
    input_range_of,
    join_negative_values,
    load_model,
    parse_range,
    positive_int,
    preprocess_function,
    quiet_tensorflow,
    writable_folder,
)
from tfxai.errors import InvalidInputError, TfxaiError

#: The command line's CPU budgets of the slow methods: ``{method: (setting, default, --option, what)}``.
#: The library's own defaults are the papers' (every Score-CAM channel, 4000 RISE masks); on two CPU
#: cores those take minutes per photo, so the command line caps them unless told otherwise.
BUDGETS: dict[str, tuple[str, int, str, str]] = {
    "scorecam": ("num_channels", 64, "--scorecam-channels", "channels with the largest spread"),
    "rise": ("num_masks", 1000, "--rise-masks", "random masks"),
}
#: A run estimated longer than this many seconds prints its estimate before it starts.
ESTIMATE_ABOVE_SECONDS = 60.0


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during ``explain``, after the finished methods were written."""


# --------------------------------------------------------------------------- explain
def _image_files(args: argparse.Namespace) -> list[str]:
    """The images of ``explain``: the files given, then the shipped photos named by ``--photo``."""
    files = [str(p) for p in args.images]
    for item in args.photo or []:
        for name in (n.strip() for n in item.split(",")):
            if name:
                from tfxai import data

                files.append(str(data.photo_path(name)))
    if not files:
        from tfxai import data

        raise InvalidInputError(
            "explain needs images: image files, one folder, or --photo NAME (a photo shipped with tfxai: "
            f"{', '.join(data.photo_names())})."
        )
    return files


def _budgets(args: argparse.Namespace, names: list[str]) -> tuple[dict[str, dict], list[str]]:
    """Settings of the budgeted slow methods among `names` and one printed line each."""
    overrides: dict[str, dict] = {}
    lines = []
    for name in names:
        if name not in BUDGETS:
            continue
        setting, default, option, what = BUDGETS[name]
        value = getattr(args, option[2:].replace("-", "_"), None)
        if value is None:
            from tfxai import _registry

            value = _registry.METHODS[name].quick_settings(True).get(setting, default) if args.quick else default
        overrides[name] = {} if value == "all" else {setting: value}
        lines.append(f"{name}: {'every' if value == 'all' else value} {what} ({option}"
                     f"{'' if value == 'all' else ' all for the paper setting'})")
    return overrides, lines


def _passes(explainer: Any, size: tuple[int, int]) -> float:
    """A rough cost of one map in forward passes of one image (a gradient counts 3)."""
    for attribute in ("num_samples", "num_steps"):
        value = getattr(explainer, attribute, None)
        if isinstance(value, int):
            return 3.0 * (value + 1)
    if getattr(explainer, "name", "") == "scorecam":
        channels = explainer.num_channels or (explainer.layer_shape[-1] or 512)
        return 1.0 + float(channels)
    if isinstance(getattr(explainer, "num_masks", None), int):
        return 1.0 + float(explainer.num_masks)
    if hasattr(explainer, "coverage") and hasattr(explainer, "geometry"):
        patch, stride = explainer.geometry(size)
        return 1.0 + float(((size[0] - patch[0]) // stride[0] + 1) * ((size[1] - patch[1]) // stride[1] + 1))
    return 4.0


def _write_outputs(out: Path, raw: Any, files: list[str], targets: Any, labels: list[str], probabilities: Any,
                   maps: dict, alpha: float, dpi: int) -> list[Path]:
    """grid.png (when a map exists), maps.npz and predictions.txt for the methods in `maps`."""
    import numpy as np

    from tfxai import _registry, plot

    out.mkdir(parents=True, exist_ok=True)
    written = []
    if maps:
        titles = [f"{label} ({probabilities[i, t]:.0%})" for i, (label, t) in enumerate(zip(labels, targets))]
        figure = plot.method_grid(
            raw,
            {_registry.METHODS[n].title: maps[n] for n in maps},
            labels=titles,
            signed=[_registry.METHODS[n].title for n in maps if _registry.METHODS[n].signed],
            alpha=alpha,
        )
        figure.savefig(out / "grid.png", dpi=dpi)
        written.append(out / "grid.png")
    np.savez_compressed(
        out / "maps.npz", images=raw.astype(np.uint8), targets=targets,
        probabilities=probabilities[np.arange(len(raw)), targets], files=np.array(files), **maps,
    )
    lines = [f"{p}\t{t}\t{label}\t{probabilities[i, t]:.4f}" for i, (p, t, label) in enumerate(zip(files, targets, labels))]
    (out / "predictions.txt").write_text("file\tclass\tname\tprobability\n" + "\n".join(lines) + "\n")
    return [*written, out / "maps.npz", out / "predictions.txt"]


def explain(args: argparse.Namespace, progress: Callable[[str], None]) -> dict:
    """The ``explain`` subcommand (see the module docstring); one folder is streamed (:mod:`tfxai.streaming`)."""
    if len(args.images) == 1 and not args.photo and Path(args.images[0]).is_dir():
        from tfxai import streaming  # before anything touches TensorFlow: a multi-worker strategy comes first

        return streaming.run_folder(args)
    import numpy as np
    import tensorflow as tf
    from tqdm.auto import tqdm

    import tfxai
    from tfxai import _registry, _runtime, io

    names = _registry.parse(args.methods)
    files = image_files(_image_files(args))  # image files, or one folder alone (streamed above)
    out = writable_folder(args.out)
    progress(f"loading model {args.model}")
    model, preprocess = load_model(args.model, args.weights)
    if args.preprocess != "auto":
        preprocess = preprocess_function(args.preprocess)
    shape = model.input_shape
    if isinstance(shape, list):
        raise InvalidInputError(f"--model must have one image input; {model.name} has {len(shape)} inputs.")
    adapter = tfxai.adapt(model, input_range=args.input_range or input_range_of(preprocess))
    height, width = shape[1], shape[2]
    if args.size is not None:
        height = width = args.size
    if height is None or width is None:
        raise InvalidInputError(f"{model.name} accepts any image size; pass --size (e.g. --size 224).")
    progress(f"reading {len(files)} image(s) at {height}x{width}")
    raw = io.load_images(files, (height, width))
    inputs = raw if preprocess is None else np.asarray(preprocess(np.array(raw, copy=True)), np.float32)
    logits = adapter.logits(tf.constant(inputs, adapter.dtype))
    probabilities = adapter.probabilities(logits).numpy()
    if args.targets:
        targets = _runtime.targets_from_text(args.targets, len(raw), adapter)
    else:
        targets = probabilities.argmax(axis=-1).astype(np.int32)
    targets = np.asarray(targets, np.int32)
    class_names = adapter.class_names
    labels = [class_names[t] for t in targets] if class_names else io.class_names(targets, adapter.num_classes)
    overrides, budget_lines = _budgets(args, names)
    for line in budget_lines:
        progress(f"budget: {line}")
    explainers = {name: _registry.build(name, adapter, quick=args.quick, **overrides.get(name, {})) for name in names}
    one = tf.constant(inputs[:1], adapter.dtype)
    t0 = time.perf_counter()
    adapter.logits(one)
    forward = time.perf_counter() - t0
    estimate = sum(3.0 + forward * _passes(e, (height, width)) * len(raw) / 3.0 for e in explainers.values())
    if estimate > ESTIMATE_ABOVE_SECONDS:
        progress(f"estimated time: about {estimate / 60:.0f} min for {len(names)} methods x {len(raw)} image(s) "
                 f"(rough: from one forward pass, {1000 * forward:.0f} ms); Ctrl-C stops and keeps the finished methods")
    maps: dict[str, np.ndarray] = {}
    stop = threading.Event()
    failure: list[BaseException] = []

    def work() -> None:
        try:
            with tqdm(total=len(names) * len(raw), desc="explaining", unit="map", disable=args.no_progress,
                      file=sys.stdout) as bar:
                for name, explainer in explainers.items():
                    cls = _registry.METHODS[name]
                    start = time.perf_counter()
                    per_image = []
                    for i in range(len(raw)):
                        if stop.is_set():
                            return
                        bar.set_postfix_str(f"{cls.title}, image {i + 1}/{len(raw)}")
                        per_image.append(np.asarray(explainer(inputs[i : i + 1], targets=targets[i : i + 1]), np.float32))
                        bar.update(1)
                    maps[name] = np.concatenate(per_image)
                    bar.write(f"  {cls.title:<22} {time.perf_counter() - start:6.2f} s")
        except BaseException as error:  # noqa: BLE001 - re-raised in the main thread
            failure.append(error)

    # the maps are computed in a worker thread so that Ctrl-C reaches the main thread at once (a running
    # TensorFlow op does not return to Python for minutes); the main thread then writes what is finished
    worker = threading.Thread(target=work, name="tfxai-explain", daemon=True)
    worker.start()
    try:
        while worker.is_alive():
            worker.join(0.1)
    except KeyboardInterrupt:
        stop.set()
        done = dict(maps)
        written = _write_outputs(out, raw, files, targets, labels, probabilities, done, args.alpha, args.dpi)
        print(f"\ntfxai explain: interrupted; wrote the {len(done)} finished method(s) "
              f"({', '.join(done) or 'none'}) to {', '.join(str(p) for p in written)}", file=sys.stderr, flush=True)
        raise Interrupted() from None
    if failure:
        raise failure[0]
    written = _write_outputs(out, raw, files, targets, labels, probabilities, maps, args.alpha, args.dpi)
    progress(f"wrote {', '.join(str(p) for p in written)}")
    return {"targets": targets, "labels": labels, "maps": maps}


# --------------------------------------------------------------------------- parser
def methods_help() -> str:
    """The ``--methods`` help text, from the static method table (no TensorFlow import)."""
    return f"comma-separated methods among {', '.join(_method_table.names())}; or 'default' or 'all': " + (
        _method_table.default_sentence())


def model_help() -> str:
    return (f"a bundled model ({', '.join(bundled.names())}: offline, trained on ImageNet), "
            "a keras.applications name (e.g. MobileNetV2) or a saved .keras file")


def _budget_type(text: str) -> int | str:
    return "all" if text.strip().lower() == "all" else positive_int(text)


def _add_folder_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``explain FOLDER`` (streamed by :mod:`tfxai.streaming`), without importing it."""
    group = parser.add_argument_group("folders (explain FOLDER --out DIR: streamed, sharded, resumable)")
    group.add_argument("--batch-size", type=positive_int, default=16, help="images per step (default 16)")
    group.add_argument("--shard-size", type=positive_int, default=256, help="images per shard file (default 256)")
    group.add_argument("--strategy", choices=("none", "mirrored", "multi-worker"), default="none",
                       help="none: one device; mirrored: every local GPU; multi-worker: from TF_CONFIG")
    group.add_argument("--on-error", choices=("skip", "raise"), default="skip",
                       help="unreadable files: skip them with a warning naming them (default) or stop")
    group.add_argument("--jit-compile", action="store_true", help="compile the step with XLA")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser; building it imports neither TensorFlow nor Keras (``--help`` is fast)."""
    parser = argparse.ArgumentParser(
        prog="tfxai", description="Explain Keras image classifiers.",
        epilog="example (offline): python -m tfxai explain --photo chelsea --model efficientnet_lite0 --out out",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks instead of one-line errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    ex = sub.add_parser(
        "explain", help="explain photos with chosen methods; writes grid.png, maps.npz, predictions.txt",
        description="Explain photos with chosen methods; writes grid.png, maps.npz and predictions.txt to --out. "
        "Ctrl-C stops within seconds and writes the methods already finished.",
        epilog="example (offline, shipped photo and model): "
        "python -m tfxai explain --photo chelsea --model efficientnet_lite0 --methods gradcam,ig --out out",
    )
    ex.add_argument("images", nargs="*", metavar="IMAGE",
                    help="image files (JPEG, PNG, BMP, GIF), or one folder (streamed to sharded .npz files)")
    ex.add_argument("--photo", action="append", metavar="NAME",
                    help="a photo shipped with tfxai (camera, chelsea, coffee, grace_hopper, rocket; "
                    "repeat or comma-separate for several)")
    ex.add_argument("--model", required=True, help=model_help())
    ex.add_argument("--weights", default="imagenet", help="weights for keras.applications models: imagenet (default), none, or a path")
    ex.add_argument("--methods", default="default", help=methods_help())
    ex.add_argument("--out", default="tfxai-explain", help="output folder (default: ./tfxai-explain)")
    ex.add_argument("--preprocess", default="auto", choices=("auto", *PREPROCESS_MODES),
                    help="pixel transform before the model; auto: the application's preprocess_input for "
                    "keras.applications names, none for bundled models and model files (raw [0, 255] pixels)")
    ex.add_argument("--input-range", type=parse_range, default=None, metavar="LOW,HIGH",
                    help="valid input range after preprocessing, for baselines and noise (default: derived from --preprocess)")
    ex.add_argument("--targets", default=None,
                    help="classes to explain, as indices or names (e.g. 282 or tiger_cat; one, or one per image); default: predicted")
    ex.add_argument("--size", type=positive_int, default=None, help="input size for models without a fixed one")
    ex.add_argument("--alpha", type=float, default=0.5, help="heat-map opacity in the figure (default 0.5)")
    ex.add_argument("--dpi", type=positive_int, default=100, help="figure resolution (default 100)")
    ex.add_argument("--quick", action="store_true",
                    help="fewer samples/steps for SmoothGrad and IG; 32 Score-CAM channels, 256 RISE masks")
    ex.add_argument("--scorecam-channels", type=_budget_type, default=None, metavar="K",
                    help=f"Score-CAM budget: the K channels with the largest spread per image (default "
                    f"{BUDGETS['scorecam'][1]}; 'all' for every channel, the paper's setting, minutes per photo on a CPU)")
    ex.add_argument("--rise-masks", type=_budget_type, default=None, metavar="N",
                    help=f"RISE budget: N random masks (default {BUDGETS['rise'][1]}; 'all' for the paper's 4000)")
    ex.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    _add_folder_arguments(ex)

    demo = sub.add_parser("demo", help="offline demo: toy shapes, a small CNN trained in seconds, every method")
    demo.add_argument("--out", default="tfxai-demo", help="output folder (default: ./tfxai-demo)")
    demo.add_argument("--methods", default="all", help=methods_help())
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--quick", action="store_true", help="smaller data and fewer epochs (for tests)")
    demo.add_argument("--no-photo", action="store_true",
                      help="skip the second step (a shipped photo explained with the shipped ImageNet model)")
    demo.add_argument("--photo-model", default=bundled.names()[0], choices=bundled.names(),
                      help=f"the bundled model of the second step (default {bundled.names()[0]})")

    cli_evaluate.register(sub)
    return parser


def check_arguments(argv: Sequence[str] | None = None) -> None:
    """Parse the command line without importing TensorFlow: ``--help`` and usage errors exit here (fast)."""
    build_parser().parse_args(argv)


def run(args: argparse.Namespace) -> Any:
    progress: Callable[[str], None] = lambda line: print(line, flush=True)  # noqa: E731
    quiet_tensorflow()
    if args.command == "explain":
        return explain(args, progress)
    if args.command == "demo":
        from tfxai import demo

        writable_folder(args.out)
        return demo.run(args.out, quick=args.quick, methods=args.methods, seed=args.seed, progress=progress,
                        photo=not args.no_photo, photo_model=args.photo_model)
    return args.func(args)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m tfxai`` and the ``tfxai`` console script; returns the exit code.

    130 after Ctrl-C (``explain`` has then written its finished methods).
    """
    parser = build_parser()
    args = parser.parse_args(join_negative_values(sys.argv[1:] if argv is None else argv))
    try:
        result = run(args)
    except (TfxaiError, ValueError, TypeError, OSError) as error:
        if args.debug:
            raise
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        print(f"tfxai {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as interrupt:
        if not isinstance(interrupt, Interrupted):
            print("tfxai: interrupted", file=sys.stderr)
        return 130
    return int(result) if isinstance(result, int) else 0
