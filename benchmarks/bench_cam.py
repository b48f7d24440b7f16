"""Time the CAM family on keras.applications.MobileNetV2 (weights=None, 224x224, 1000 classes).

Usage: ``python benchmarks/bench_cam.py [--batch 16] [--score-images 2] [--repeats 3]``

Prints ms/image (best of `repeats` calls after one warm-up call that traces the
tf.function) for Grad-CAM, Grad-CAM++, XGrad-CAM and Eigen-CAM on a batch of
`batch` images, and Score-CAM over all 1280 channels of ``out_relu`` on
`score_images` images (masked inputs evaluated `score_batch` rows at a time),
then the process's peak resident memory (``resource.getrusage``).
"""

from __future__ import annotations

import argparse
import resource
import sys
import time

import keras
import numpy as np

import tfxai


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MiB (ru_maxrss is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def time_call(explainer, images, repeats: int) -> tuple[float, float]:
    """(first call incl. tracing in s, best steady-state call in s)."""
    start = time.perf_counter()
    explainer(images).numpy()
    first = time.perf_counter() - start
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        explainer(images).numpy()
        best = min(best, time.perf_counter() - start)
    return first, best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--score-images", type=int, default=2)
    parser.add_argument("--score-batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    keras.utils.set_random_seed(0)
    model = keras.applications.MobileNetV2(weights=None, input_shape=(224, 224, 3))
    images = np.random.default_rng(0).uniform(-1, 1, (args.batch, 224, 224, 3)).astype("float32")
    rows = []
    for cls in [tfxai.GradCAM, tfxai.GradCAMPlusPlus, tfxai.XGradCAM, tfxai.EigenCAM]:
        explainer = cls(model, batch_size=args.batch)
        first, best = time_call(explainer, images, args.repeats)
        rows.append((cls.__name__, explainer.layer, args.batch, "-", first, 1000 * best / args.batch))
    score_images = images[: args.score_images]
    explainer = tfxai.ScoreCAM(model, batch_size=args.score_batch)
    first, best = time_call(explainer, score_images, max(1, args.repeats - 2))
    channels = explainer.layer_shape[-1]
    rows.append(("ScoreCAM", explainer.layer, args.score_images, f"{channels} x {args.score_batch}", first,
                 1000 * best / args.score_images))

    print(f"MobileNetV2(weights=None) 224x224, CPU, keras {keras.__version__}")
    header = f"| {'method':<16} | {'layer':<9} | {'images':>6} | {'masks x rows/call':>17} | {'1st call s':>10} | {'ms/image':>9} |"
    print(header)
    print("|" + "|".join("-" * (len(c)) for c in header.split("|")[1:-1]) + "|")
    for name, layer, n, masks, first, ms in rows:
        print(f"| {name:<16} | {layer:<9} | {n:>6} | {masks:>17} | {first:>10.1f} | {ms:>9.1f} |")
    print(f"peak RSS: {peak_rss_mb():.0f} MiB")


if __name__ == "__main__":
    main()
