"""Time T-Grad and FullGrad against one vanilla-gradient pass (SPEC goal: <= 1.3x).

Usage: python benchmarks/bench_decomposition.py [--batch 16] [--repeats 3] [--models MobileNetV2 VGG16]

Models are keras.applications with weights=None (224x224, 1000 classes, logits
explained); biases and BN statistics are randomised so that no term is
trivially zero. Each explainer is called once to trace, then the methods are
called in turn `repeats` times on the same batch (interleaved, so that load from
other processes hits every method alike) and the best time is kept; the table
gives milliseconds per image and the ratio to the vanilla gradient, in wall-clock
time and in CPU time of this process (steadier when other jobs share the cores).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import keras
import numpy as np

# This checkout's tfxai and tests package (not an installed tfxai of another checkout).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import tfxai  # noqa: E402
from tests import models as test_models  # noqa: E402

APPLICATIONS = {"MobileNetV2": keras.applications.MobileNetV2, "VGG16": keras.applications.VGG16}


def time_methods(methods, images, repeats):
    """Best-of-`repeats` ms/image per method, calls interleaved so that load changes hit all alike.

    Returns ``{name: (wall ms/image, process CPU ms/image)}``; on a machine shared
    with other jobs the CPU time of this process is the steadier of the two.
    """
    for explainer in methods.values():
        explainer(images).numpy()  # trace + warm-up
    best = {name: [float("inf"), float("inf")] for name in methods}
    for _ in range(repeats):
        for name, explainer in methods.items():
            start, cpu = time.perf_counter(), time.process_time()
            explainer(images).numpy()
            wall_ms = (time.perf_counter() - start) / len(images) * 1000.0
            cpu_ms = (time.process_time() - cpu) / len(images) * 1000.0
            best[name] = [min(best[name][0], wall_ms), min(best[name][1], cpu_ms)]
    return {name: tuple(value) for name, value in best.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--models", nargs="+", default=list(APPLICATIONS))
    args = parser.parse_args(argv)
    images = np.random.default_rng(0).uniform(-1, 1, size=(args.batch, 224, 224, 3)).astype("float32")
    rows = []
    for name in args.models:
        model = APPLICATIONS[name](weights=None, classifier_activation=None)
        test_models.randomize_biases_and_bn(model)
        methods = {
            "vanilla gradient": tfxai.VanillaGradient(model, output="logit", batch_size=args.batch),
            "T-Grad": tfxai.TGrad(model, batch_size=args.batch),
            "FullGrad": tfxai.FullGrad(model, batch_size=args.batch),
        }
        times = time_methods(methods, images, args.repeats)
        base, base_cpu = times["vanilla gradient"]
        for method, (ms, cpu) in times.items():
            rows.append((name, method, ms, ms / base, cpu, cpu / base_cpu))
            print(f"{name:12s} {method:17s} {ms:9.1f} ms/image  {ms / base:5.2f}x   CPU {cpu:7.1f} ms/image "
                  f"{cpu / base_cpu:5.2f}x", flush=True)
    print(f"\nbatch {args.batch}, best of {args.repeats} interleaved calls after one warm-up; tfxai from "
          f"{Path(tfxai.__file__).parent}\n")
    print("| model | method | ms/image | ratio to vanilla gradient | CPU ms/image | CPU-time ratio |")
    print("|---|---|---|---|---|---|")
    for name, method, ms, ratio, cpu, cpu_ratio in rows:
        print(f"| {name} | {method} | {ms:.1f} | {ratio:.2f}x | {cpu:.1f} | {cpu_ratio:.2f}x |")


if __name__ == "__main__":
    main()
