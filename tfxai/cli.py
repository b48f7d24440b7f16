"""The command line: ``python -m tfxai {explain,demo,evaluate} ...``.

* ``explain IMAGE... --model MODEL``: explain photos with chosen methods; writes
  ``grid.png`` (images x methods), ``maps.npz`` and ``predictions.txt``.
* ``demo``: the offline demo (:mod:`tfxai.demo`).
* ``evaluate``: the evaluation protocol, when :mod:`tfxai.cli_evaluate` is installed.

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

Errors are reported as one line on stderr with exit code 2 (``--debug`` shows
the traceback).
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from tfxai import _registry
from tfxai.errors import InvalidInputError, TfxaiError

PREPROCESS_MODES = ("none", "unit", "symmetric", "caffe", "torch", "tf")


# --------------------------------------------------------------------------- models
def load_model(spec: str, weights: str = "imagenet"):
    """Load `spec` (a ``.keras``/``.h5`` path or a ``keras.applications`` name).

    Returns ``(model, preprocess or None)`` where ``preprocess`` is the
    application's ``preprocess_input`` for application names.
    """
    import keras

    path = Path(spec)
    if path.suffix in (".keras", ".h5") or path.exists():
        if not path.is_file():
            raise FileNotFoundError(f"model file not found: {spec!r}")
        return keras.saving.load_model(str(path)), None
    factory = getattr(keras.applications, spec, None)
    if factory is None or not callable(factory):
        names = sorted(n for n in dir(keras.applications) if n[:1].isupper())
        raise InvalidInputError(
            f"--model {spec!r} is neither a model file nor a keras.applications name "
            f"(e.g. {', '.join(names[:6])}...)."
        )
    module = importlib.import_module(factory.__module__)
    preprocess = getattr(module, "preprocess_input", None)
    weights_arg = None if weights == "none" else weights
    try:
        model = factory(weights=weights_arg)
    except Exception as error:  # noqa: BLE001 - download failures come in many types
        raise OSError(
            f"could not build {spec} with weights={weights!r} ({type(error).__name__}: {str(error).splitlines()[0][:200]}); "
            "offline, pass --weights none (random weights) or --weights PATH, or a saved .keras model"
        ) from None
    return model, preprocess


def preprocess_function(mode: str) -> Callable | None:
    """The pixel transform of ``--preprocess`` (None for ``none``)."""
    if mode == "none":
        return None
    if mode == "unit":
        return lambda x: x / 255.0
    if mode == "symmetric":
        return lambda x: x / 127.5 - 1.0
    from keras.applications import imagenet_utils

    return lambda x: imagenet_utils.preprocess_input(np.array(x, copy=True), mode=mode)


def input_range_of(preprocess: Callable | None) -> tuple[float, float]:
    """The valid input range after `preprocess`: the images of all-0 and all-255 pixels."""
    if preprocess is None:
        return 0.0, 255.0
    low = np.asarray(preprocess(np.zeros((1, 2, 2, 3), np.float32)), np.float64)
    high = np.asarray(preprocess(np.full((1, 2, 2, 3), 255.0, np.float32)), np.float64)
    values = np.concatenate([low.ravel(), high.ravel()])
    return float(values.min()), float(values.max())


def _parse_range(text: str) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LOW,HIGH (e.g. 0,255); received {text!r}") from None
    if not low < high:
        raise argparse.ArgumentTypeError(f"LOW must be smaller than HIGH; received {text!r}")
    return low, high


# --------------------------------------------------------------------------- explain
def explain(args: argparse.Namespace, progress: Callable[[str], None]) -> dict:
    """The ``explain`` subcommand (see the module docstring)."""
    import tensorflow as tf

    from tfxai import io, plot, surgery

    names = _registry.parse(args.methods)
    missing = [str(p) for p in args.images if not Path(p).is_file()]
    if missing:
        raise FileNotFoundError(f"image file not found: {missing[0]!r}" + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
    progress(f"loading model {args.model}")
    model, preprocess = load_model(args.model, args.weights)
    if args.preprocess != "auto":
        preprocess = preprocess_function(args.preprocess)
    input_range = args.input_range or input_range_of(preprocess)
    shape = model.input_shape
    if isinstance(shape, list):
        raise InvalidInputError(f"--model must have one image input; {model.name} has {len(shape)} inputs.")
    height, width = shape[1], shape[2]
    if args.size is not None:
        height = width = args.size
    if height is None or width is None:
        raise InvalidInputError(f"{model.name} accepts any image size; pass --size (e.g. --size 224).")
    progress(f"reading {len(args.images)} image(s) at {height}x{width}")
    raw = io.load_images(args.images, (height, width))
    inputs = raw if preprocess is None else np.asarray(preprocess(np.array(raw, copy=True)), np.float32)
    logits = surgery.logits_model(model).predict(inputs, verbose=0, batch_size=8)
    probabilities = tf.nn.softmax(tf.cast(logits, tf.float32), axis=-1).numpy()
    num_classes = probabilities.shape[-1]
    if args.targets:
        targets = [int(t) for t in args.targets.split(",")]
        if len(targets) == 1:
            targets = targets * len(raw)
        if len(targets) != len(raw):
            raise InvalidInputError(f"--targets needs 1 or {len(raw)} class indices; received {args.targets!r}.")
        if not all(0 <= t < num_classes for t in targets):
            raise InvalidInputError(f"--targets must be class indices in [0, {num_classes}); received {args.targets!r}.")
    else:
        targets = probabilities.argmax(axis=-1).tolist()
    targets = np.asarray(targets, np.int32)
    labels = io.class_names(targets, num_classes)
    maps: dict[str, np.ndarray] = {}
    for name in names:
        method = _registry.METHODS[name]
        t0 = time.perf_counter()
        explainer = _registry.build(name, model, input_range, args.quick)
        maps[name] = np.asarray(explainer(inputs, targets=targets), np.float32)
        progress(f"  {method.title:<22} {time.perf_counter() - t0:6.2f} s")
    out = Path(args.out)
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
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tfxai", description="Explain Keras image classifiers.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks instead of one-line errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    methods_help = (f"comma-separated methods among {', '.join(_registry.METHODS)}; 'all'; or 'default' "
                    f"(every available method except the slow {', '.join(_registry.SLOW)})")

    ex = sub.add_parser("explain", help="explain photos with chosen methods; writes grid.png, maps.npz, predictions.txt")
    ex.add_argument("images", nargs="+", metavar="IMAGE", help="image files (JPEG, PNG, BMP, GIF)")
    ex.add_argument("--model", required=True, help="a keras.applications name (e.g. MobileNetV2) or a saved .keras file")
    ex.add_argument("--weights", default="imagenet", help="weights for keras.applications models: imagenet (default), none, or a path")
    ex.add_argument("--methods", default="default", help=methods_help)
    ex.add_argument("--out", default="tfxai-explain", help="output folder (default: ./tfxai-explain)")
    ex.add_argument("--preprocess", default="auto", choices=("auto", *PREPROCESS_MODES),
                    help="pixel transform before the model; auto: the application's preprocess_input for "
                    "keras.applications names, none for model files (raw [0, 255] pixels)")
    ex.add_argument("--input-range", type=_parse_range, default=None, metavar="LOW,HIGH",
                    help="valid input range after preprocessing, for baselines (default: derived from --preprocess)")
    ex.add_argument("--targets", default=None, help="class indices to explain (one, or one per image); default: predicted")
    ex.add_argument("--size", type=int, default=None, help="input size for models without a fixed one")
    ex.add_argument("--alpha", type=float, default=0.5, help="heat-map opacity in the figure (default 0.5)")
    ex.add_argument("--dpi", type=int, default=100, help="figure resolution (default 100)")
    ex.add_argument("--quick", action="store_true", help="fewer samples/steps for SmoothGrad and IG")

    demo = sub.add_parser("demo", help="offline demo: toy shapes, a small CNN trained in seconds, every method")
    demo.add_argument("--out", default="tfxai-demo", help="output folder (default: ./tfxai-demo)")
    demo.add_argument("--methods", default="all", help=methods_help)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--quick", action="store_true", help="smaller data and fewer epochs (for tests)")

    try:
        evaluate = importlib.import_module("tfxai.cli_evaluate")
    except ImportError:
        evaluate = None
    if evaluate is not None:
        evaluate.register(sub)
        parser.set_defaults(_evaluate=evaluate)
    return parser


def run(args: argparse.Namespace) -> Any:
    progress: Callable[[str], None] = lambda line: print(line, flush=True)  # noqa: E731
    if args.command == "explain":
        return explain(args, progress)
    if args.command == "demo":
        from tfxai import demo

        return demo.run(args.out, quick=args.quick, methods=args.methods, seed=args.seed, progress=progress)
    if args.command == "evaluate":
        func = getattr(args, "func", None)
        return func(args) if callable(func) else args._evaluate.run(args)
    raise InvalidInputError(f"unknown command {args.command!r}")  # pragma: no cover - argparse rejects it


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m tfxai`` and the ``tfxai`` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
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
