r"""python -m tfxai evaluate: the evaluation protocol on a folder of images or a TFDS dataset.

Example (the bundled model, offline, and a folder of photos with a labels.csv):

    python -m tfxai evaluate --model efficientnet_lite0 \
        --images my_photos/ --methods gradcam,vanilla \
        --num-images 20 --num-steps 16 --out eval-out

Writes results.csv, results.md, results.json, curves.png, speed.png and
README.md to --out and prints the Markdown table. Images are read as raw
[0, 255] pixels (shorter side 256, centre crop to the model's input size), so
the model must contain its preprocessing (as the bundled efficientnet_lite0
does) unless --preprocess says otherwise. labels.csv has a header with the
columns filename and class_index (other columns are ignored).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from tfxai._cli_common import input_range_of, load_model, parse_range, positive_int, preprocess_function, writable_folder
from tfxai.errors import InvalidInputError


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``evaluate`` sub-command to an argparse `subparsers` object."""
    parser = subparsers.add_parser(
        "evaluate",
        help="insertion/deletion, Average Drop, Increase in Confidence and speed of methods on a dataset",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from tfxai import _method_table
    from tfxai import models as bundled

    parser.add_argument("--model", required=True,
                        help=f"a bundled model ({', '.join(bundled.names())}), a saved .keras model or a keras.applications name")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--images", help="folder of images with a labels CSV (filename,...,class_index,...)")
    source.add_argument("--tfds", help="a TFDS dataset name, e.g. imagenet2012 (prepared from --manual-dir)")
    parser.add_argument("--labels", default="labels.csv", help="labels CSV inside --images (default labels.csv)")
    parser.add_argument("--manual-dir", default=None, help="TFDS manual download folder (e.g. ImageNet tars)")
    parser.add_argument("--data-dir", default=None, help="TFDS data folder")
    parser.add_argument("--split", default="validation", help="TFDS split (default validation)")
    parser.add_argument("--methods", default="default",
                        help="comma-separated methods, or 'default' or 'all': " + _method_table.default_sentence())
    parser.add_argument("--layer", default=None, help="CAM layer name (default: the last 4-D layer)")
    parser.add_argument("--num-images", type=positive_int, default=None, help="evaluate the first N images")
    parser.add_argument("--num-steps", type=positive_int, default=224, help="insertion/deletion steps (default 224)")
    parser.add_argument("--auc", choices=("trapezoid", "mean_of_steps"), default="trapezoid",
                        help="AUC rule: trapezoid over n+1 points (RISE) or the paper's mean of the n steps")
    parser.add_argument("--substrate", default="blur",
                        help="what removed pixels become in insertion/deletion: blur (default), black, zero or a number")
    parser.add_argument("--targets", choices=("predicted", "label"), default="predicted")
    parser.add_argument("--batch-size", type=positive_int, default=16, help="images per explained batch (default 16)")
    parser.add_argument("--metric-batch-size", type=positive_int, default=64, help="perturbed images per model call")
    parser.add_argument("--preprocess", default="none", choices=("none", "unit", "symmetric", "caffe", "torch", "tf"),
                        help="pixel transform before the model (see `explain`)")
    parser.add_argument("--input-range", type=parse_range, default=None, metavar="LOW,HIGH",
                        help="valid input range for baselines, LOW,HIGH (default: derived from --preprocess)")
    parser.add_argument("--quick", action="store_true", help="fewer SmoothGrad samples / IG steps")
    parser.add_argument("--road", action="store_true",
                        help="also ROAD (Rong et al. 2022): MoRF/LeRF with noisy linear imputation, 18 solves per image")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument("--out", default="tfxai-evaluation", help="output folder (default ./tfxai-evaluation)")
    parser.add_argument("--strategy", choices=("none", "mirrored", "multi-worker"), default="none",
                        help="none: one device; mirrored: every local GPU (tf.distribute.MirroredStrategy); "
                        "multi-worker: several processes or machines from TF_CONFIG (MultiWorkerMirroredStrategy; "
                        "run the same command on every worker, worker 0 writes --out)")
    parser.add_argument("--jit-compile", action="store_true", help="compile the replica steps with XLA")
    parser.set_defaults(func=run, command="evaluate")
    return parser


def _substrate(text: str) -> Any:
    if text in ("blur", "black", "zero"):
        return text
    try:
        return float(text)
    except ValueError:
        raise InvalidInputError(f"--substrate must be 'blur', 'black', 'zero' or a number. Received: {text!r}.") from None


def build_explainers(model: Any, methods: str, layer: str | None, quick: bool) -> dict:
    """``{title: explainer}`` for the methods named on the command line (from the registry)."""
    from tfxai import _registry
    from tfxai.cli import BUDGETS

    def budget(name: str) -> dict:  # the command line's CPU budgets of the slow methods (printed by explain)
        return {} if quick or name not in BUDGETS else {BUDGETS[name][0]: BUDGETS[name][1]}

    return {
        _registry.METHODS[name].title: _registry.build(name, model, quick=quick, layer=layer, **budget(name))
        for name in _registry.parse(methods)
    }


def run(args: argparse.Namespace) -> int:
    """Run the evaluation described by `args`; returns 0 on success.

    With ``--strategy multi-worker`` every worker runs this with the same
    arguments (and its own ``TF_CONFIG``): each reads and evaluates only its
    share of the images, the sums are reduced across workers, worker 0 writes
    ``--out`` and prints the table, and every worker prints
    ``worker I of N: K images``.
    """
    from tfxai import distribute

    # a multi-worker strategy must exist before TensorFlow runs anything else
    strategy = distribute.strategy_from_name(getattr(args, "strategy", "none"))
    import tfxai
    from tfxai import evaluation

    workers, worker = distribute.num_workers(strategy), distribute.worker_index(strategy)
    chief = worker == 0
    if chief:
        writable_folder(args.out)
    with strategy.scope():
        model, app_preprocess = load_model(args.model)
    size = model.inputs[0].shape[1] or 224
    presharded = False
    if args.images:
        dataset = evaluation.image_folder(
            args.images, args.labels, size=size, resize_to=max(256, size), num_images=args.num_images,
            shard=(worker, workers) if workers > 1 else None,
        )
        presharded = workers > 1
    else:
        dataset = evaluation.tfds_dataset(
            args.tfds, split=args.split, manual_dir=args.manual_dir, data_dir=args.data_dir, size=size,
            resize_to=max(256, size), num_images=args.num_images,
        )
    preprocess = app_preprocess or preprocess_function(args.preprocess)
    if preprocess is not None:
        dataset = evaluation.preprocessed(dataset, preprocess)
    adapter = tfxai.adapt(model, input_range=args.input_range or input_range_of(preprocess))
    explainers = build_explainers(adapter, args.methods, args.layer, args.quick)
    results = evaluation.evaluate(
        adapter, explainers, dataset, num_steps=args.num_steps, auc=args.auc, substrate=_substrate(args.substrate),
        targets=args.targets, batch_size=args.batch_size, metric_batch_size=args.metric_batch_size,
        progress=not args.no_progress, strategy=strategy, presharded=presharded,
        jit_compile=getattr(args, "jit_compile", False),
        metrics=evaluation.runner.DEFAULT_METRICS + (("road",) if args.road else ()),
    )
    if chief:
        out = evaluation.write_report(results, Path(args.out), title=f"Evaluation of {Path(args.model).name}")
        print(results.to_markdown())
        print(f"written to {out}")
    print(f"worker {worker} of {workers}: {results.settings['worker_images']} images", flush=True)
    return 0
