"""The command line: ``python -m tfxai {explain,demo,evaluate} ...``.

* ``explain IMAGE... --model MODEL``: explain photos with chosen methods; writes
  ``grid.png`` (images x methods, colour bars, signed maps on a diverging
  scale), ``maps.npz`` and ``predictions.txt``; progress per method and image.
* ``demo``: the offline demo (:mod:`tfxai.demo`).
* ``evaluate``: the evaluation protocol (:mod:`tfxai.cli_evaluate`).

Input range of ``--model``:

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
with a ``name`` is offered. Errors are reported as one line on stderr with exit
code 2 (``--debug`` shows the traceback).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from tfxai import _registry, _runtime, cli_evaluate
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


# --------------------------------------------------------------------------- explain
def explain(args: argparse.Namespace, progress: Callable[[str], None]) -> dict:
    """The ``explain`` subcommand (see the module docstring); one folder is streamed (:mod:`tfxai.streaming`)."""
    if len(args.images) == 1 and Path(args.images[0]).is_dir():
        from tfxai import streaming  # before anything touches TensorFlow: a multi-worker strategy comes first

        return streaming.run_folder(args)
    import tensorflow as tf
    from tqdm.auto import tqdm

    import tfxai
    from tfxai import io, plot

    names = _registry.parse(args.methods)
    image_files(args.images)  # image files, or one folder alone (streamed above)
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
    progress(f"reading {len(args.images)} image(s) at {height}x{width}")
    raw = io.load_images(args.images, (height, width))
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
    maps: dict[str, np.ndarray] = {}
    overrides = {"scorecam": {"num_channels": args.scorecam_channels}} if args.scorecam_channels else {}
    with tqdm(total=len(names) * len(raw), desc="explaining", unit="map", disable=args.no_progress, file=sys.stdout) as bar:
        for name in names:
            cls = _registry.METHODS[name]
            t0 = time.perf_counter()
            explainer = _registry.build(name, adapter, quick=args.quick, **overrides.get(name, {}))
            per_image = []
            for i in range(len(raw)):
                bar.set_postfix_str(f"{cls.title}, image {i + 1}/{len(raw)}")
                per_image.append(np.asarray(explainer(inputs[i : i + 1], targets=targets[i : i + 1]), np.float32))
                bar.update(1)
            maps[name] = np.concatenate(per_image)
            bar.write(f"  {cls.title:<22} {time.perf_counter() - t0:6.2f} s")
    out.mkdir(parents=True, exist_ok=True)
    titles = [f"{label} ({probabilities[i, t]:.0%})" for i, (label, t) in enumerate(zip(labels, targets))]
    figure = plot.method_grid(
        raw,
        {_registry.METHODS[n].title: maps[n] for n in names},
        labels=titles,
        signed=[_registry.METHODS[n].title for n in names if _registry.METHODS[n].signed],
        alpha=args.alpha,
    )
    figure.savefig(out / "grid.png", dpi=args.dpi)
    np.savez_compressed(
        out / "maps.npz", images=raw.astype(np.uint8), targets=targets, probabilities=probabilities[np.arange(len(raw)), targets],
        files=np.array([str(p) for p in args.images]), **maps,
    )
    lines = [f"{p}\t{t}\t{label}\t{probabilities[i, t]:.4f}" for i, (p, t, label) in enumerate(zip(args.images, targets, labels))]
    (out / "predictions.txt").write_text("file\tclass\tname\tprobability\n" + "\n".join(lines) + "\n")
    progress(f"wrote {out / 'grid.png'}, {out / 'maps.npz'}, {out / 'predictions.txt'}")
    return {"targets": targets, "labels": labels, "maps": maps}


# --------------------------------------------------------------------------- parser
def methods_help() -> str:
    slow = ", ".join(_registry.slow()) or "none"
    return (f"comma-separated methods among {', '.join(_registry.METHODS)}; 'all'; or 'default' "
            f"(every method except the slow {slow})")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tfxai", description="Explain Keras image classifiers.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks instead of one-line errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    ex = sub.add_parser("explain", help="explain photos with chosen methods; writes grid.png, maps.npz, predictions.txt")
    ex.add_argument("images", nargs="+", metavar="IMAGE",
                    help="image files (JPEG, PNG, BMP, GIF), or one folder (streamed to sharded .npz files)")
    ex.add_argument("--model", required=True, help="a keras.applications name (e.g. MobileNetV2) or a saved .keras file")
    ex.add_argument("--weights", default="imagenet", help="weights for keras.applications models: imagenet (default), none, or a path")
    ex.add_argument("--methods", default="default", help=methods_help())
    ex.add_argument("--out", default="tfxai-explain", help="output folder (default: ./tfxai-explain)")
    ex.add_argument("--preprocess", default="auto", choices=("auto", *PREPROCESS_MODES),
                    help="pixel transform before the model; auto: the application's preprocess_input for "
                    "keras.applications names, none for model files (raw [0, 255] pixels)")
    ex.add_argument("--input-range", type=parse_range, default=None, metavar="LOW,HIGH",
                    help="valid input range after preprocessing, for baselines and noise (default: derived from --preprocess)")
    ex.add_argument("--targets", default=None,
                    help="classes to explain, as indices or names (e.g. 282 or tiger_cat; one, or one per image); default: predicted")
    ex.add_argument("--size", type=positive_int, default=None, help="input size for models without a fixed one")
    ex.add_argument("--alpha", type=float, default=0.5, help="heat-map opacity in the figure (default 0.5)")
    ex.add_argument("--dpi", type=positive_int, default=100, help="figure resolution (default 100)")
    ex.add_argument("--quick", action="store_true", help="fewer samples/steps for SmoothGrad and IG, 32 Score-CAM channels")
    ex.add_argument("--scorecam-channels", type=positive_int, default=None, metavar="K",
                    help="Score-CAM channel budget: the K channels with the largest spread per image (default: all)")
    ex.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    from tfxai import streaming

    streaming.add_folder_arguments(ex)

    demo = sub.add_parser("demo", help="offline demo: toy shapes, a small CNN trained in seconds, every method")
    demo.add_argument("--out", default="tfxai-demo", help="output folder (default: ./tfxai-demo)")
    demo.add_argument("--methods", default="all", help=methods_help())
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--quick", action="store_true", help="smaller data and fewer epochs (for tests)")
    demo.add_argument("--no-photo", action="store_true",
                      help="skip the second step (a shipped photo explained with the shipped ImageNet model)")

    cli_evaluate.register(sub)
    return parser


def run(args: argparse.Namespace) -> Any:
    progress: Callable[[str], None] = lambda line: print(line, flush=True)  # noqa: E731
    if args.command == "explain":
        return explain(args, progress)
    if args.command == "demo":
        from tfxai import demo

        writable_folder(args.out)
        return demo.run(args.out, quick=args.quick, methods=args.methods, seed=args.seed, progress=progress,
                        photo=not args.no_photo)
    return args.func(args)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m tfxai`` and the ``tfxai`` console script; returns the exit code."""
    quiet_tensorflow()
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
    except KeyboardInterrupt:
        print("tfxai: interrupted", file=sys.stderr)
        return 130
    return int(result) if isinstance(result, int) else 0
