"""Time T-Grad and FullGrad against one vanilla-gradient pass (SPEC goal: <= 1.3x).

Usage: python benchmarks/bench_decomposition.py [--batch 16] [--repeats 3] [--models MobileNetV2 VGG16]

Models are keras.applications with weights=None (224x224, 1000 classes, logits
explained); biases and BN statistics are randomised so that no term is
trivially zero. Each explainer is called once to trace, then the methods are
called in turn `repeats` times on the same batch (interleaved, so that load from
other processes hits every method alike) and the best time is kept; the table
gives milliseconds per image and the ratio to the vanilla gradient.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import keras
import numpy as np

import tfxai

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository's tests package
from tests import models as test_models  # noqa: E402

APPLICATIONS = {"MobileNetV2": keras.applications.MobileNetV2, "VGG16": keras.applications.VGG16}


def time_methods(methods, images, repeats):
    """Best-of-`repeats` ms/image per method, calls interleaved so that load changes hit all alike."""
    for explainer in methods.values():
        explainer(images).numpy()  # trace + warm-up
    best = {name: float("inf") for name in methods}
    for _ in range(repeats):
        for name, explainer in methods.items():
            start = time.perf_counter()
            explainer(images).numpy()
            best[name] = min(best[name], (time.perf_counter() - start) / len(images) * 1000.0)
    return best


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
        for method, ms in times.items():
            rows.append((name, method, ms, ms / times["vanilla gradient"]))
            print(f"{name:12s} {method:17s} {ms:9.1f} ms/image  {ms / times['vanilla gradient']:5.2f}x", flush=True)
    print(f"\nbatch {args.batch}, best of {args.repeats} interleaved calls after one warm-up\n")
    print("| model | method | ms/image | ratio to vanilla gradient |")
    print("|---|---|---|---|")
    for name, method, ms, ratio in rows:
        print(f"| {name} | {method} | {ms:.1f} | {ratio:.2f}x |")


if __name__ == "__main__":
    main()
