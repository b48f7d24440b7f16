"""Time the issue-13 methods and ROAD on keras.applications.MobileNetV2 (weights=None, 224x224, 1000 classes).

Usage: ``python benchmarks/bench_new_methods.py [--batch 16] [--slow-images 2] [--repeats 2]``

Prints ms/image: the best of `repeats` calls after one warm-up call that traces
the tf.function. Gradient and CAM methods run on `batch` images; the methods
that expand every image into many model calls (RISE, Occlusion, SquareGrad,
VarGrad, ROAD) run with their command-line *quick* settings on `slow_images`
images, and the last column extrapolates linearly to their default settings
(cost is proportional to the rows per image). `batch_size` (rows per model
call) is `rows` for every method.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import keras
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's tfxai
import tfxai  # noqa: E402


def peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def time_fn(fn, repeats: int) -> tuple[float, float]:
    """(first call incl. tracing in s, best steady-state call in s)."""
    start = time.perf_counter()
    fn()
    first = time.perf_counter() - start
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return first, best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--slow-images", type=int, default=2)
    parser.add_argument("--rows", type=int, default=32, help="batch_size: rows per model call")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    keras.utils.set_random_seed(0)
    model = tfxai.adapt(keras.applications.MobileNetV2(weights=None, input_shape=(224, 224, 3)), input_range=(-1, 1))
    images = np.random.default_rng(0).uniform(-1, 1, (args.batch, 224, 224, 3)).astype("float32")
    few = images[: args.slow_images]
    bs = args.rows
    fast = [
        ("LayerCAM", tfxai.LayerCAM(model, batch_size=bs), "-", 1),
        ("HiResCAM", tfxai.HiResCAM(model, batch_size=bs), "-", 1),
        ("GuidedBackprop", tfxai.GuidedBackprop(model, batch_size=bs), "-", 1),
        ("GuidedGradCAM", tfxai.GuidedGradCAM(model, batch_size=bs), "-", 1),
        ("VanillaGradient (ref.)", tfxai.VanillaGradient(model, batch_size=bs), "-", 1),
    ]
    slow = [
        ("RISE", tfxai.RISE(model, **tfxai.RISE.quick_settings(True), batch_size=bs), "256 masks", 4000 / 256),
        ("Occlusion", tfxai.Occlusion(model, **tfxai.Occlusion.quick_settings(True), batch_size=bs),
         "patch 32 / stride 32: 49", 169 / 49),
        ("SquareGrad", tfxai.SquareGrad(model, **tfxai.SquareGrad.quick_settings(True), batch_size=bs),
         "10 samples", 50 / 10),
        ("VarGrad", tfxai.VarGrad(model, **tfxai.VarGrad.quick_settings(True), batch_size=bs),
         "10 samples", 50 / 10),
    ]
    rows = []
    for name, explainer, setting, _ in fast:
        first, best = time_fn(lambda: explainer(images).numpy(), args.repeats)
        rows.append((name, setting, len(images), first, 1000 * best / len(images), None))
        print(rows[-1], flush=True)
    for name, explainer, setting, factor in slow:
        first, best = time_fn(lambda: explainer(few).numpy(), max(1, args.repeats - 1))
        ms = 1000 * best / len(few)
        rows.append((name, setting, len(few), first, ms, ms * factor))
        print(rows[-1], flush=True)
    maps = tfxai.GradCAM(model, batch_size=bs)(few).numpy()
    result = {}

    def run_road():
        result["r"] = tfxai.metrics.road(model, few, maps, batch_size=bs)

    first, best = time_fn(run_road, max(1, args.repeats - 1))
    rows.append(("ROAD (metric)", "MoRF+LeRF x 9 percentages", len(few), first, 1000 * best / len(few), None))
    print(rows[-1], f"max residual {result['r'].residual:.2e}", flush=True)

    print(f"\nMobileNetV2(weights=None) 224x224, CPU, TensorFlow/Keras {keras.__version__}, batch_size={bs}")
    header = (f"| {'method':<22} | {'setting':<25} | {'images':>6} | {'1st call s':>10} | {'ms/image':>9} |"
              f" {'ms/image at default':>19} |")
    print(header)
    print("|" + "|".join("-" * len(c) for c in header.split("|")[1:-1]) + "|")
    for name, setting, n, first, ms, default in rows:
        extra = "-" if default is None else f"{default:.0f}"
        print(f"| {name:<22} | {setting:<25} | {n:>6} | {first:>10.1f} | {ms:>9.1f} | {extra:>19} |")
    print(f"peak RSS: {peak_rss_mb():.0f} MiB")


if __name__ == "__main__":
    main()
