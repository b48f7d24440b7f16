"""Rough cost of LRP against one vanilla gradient pass (the goal: LRP epsilon <= 1.5x the gradient).

    python benchmarks/bench_lrp.py [--batch 16] [--size 224] [--repeats 3]

keras.applications.MobileNetV2(weights=None, classifier_activation=None) with random weights; every
method compiled by its first calls (tfxai's runtime traces on the second call of a shape), then the
median of `repeats` timed calls is printed. A shared machine gives noisy figures: compare ratios.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    import keras

    import tfxai

    model = keras.applications.MobileNetV2(weights=None, classifier_activation=None,
                                           input_shape=(args.size, args.size, 3))
    adapter = tfxai.adapt(model, input_range=(-1, 1))
    images = np.random.default_rng(0).uniform(-1, 1, (args.batch, args.size, args.size, 3)).astype("float32")
    targets = np.arange(args.batch) % 1000
    methods = {
        "vanilla gradient (logit)": tfxai.VanillaGradient(adapter, output="logit", batch_size=args.batch),
        "LRP epsilon": tfxai.LRP(adapter, batch_size=args.batch),
        "LRP epsilon_plus_flat": tfxai.LRP(adapter, composite="epsilon_plus_flat", batch_size=args.batch),
        "LRP epsilon_gamma_box": tfxai.LRP(adapter, composite="epsilon_gamma_box", batch_size=args.batch),
    }
    rows = []
    for name, explainer in methods.items():
        for _ in range(2):  # eager first call, then the trace
            explainer.attributions(images, targets)
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            explainer.attributions(images, targets).numpy()
            times.append(time.perf_counter() - start)
        rows.append((name, statistics.median(times)))
    base = rows[0][1]
    print(f"MobileNetV2, batch {args.batch} at {args.size}x{args.size}, median of {args.repeats}")
    print(f"{'method':28s} {'seconds':>8s} {'x gradient':>10s}")
    for name, seconds in rows:
        print(f"{name:28s} {seconds:8.2f} {seconds / base:10.2f}")


if __name__ == "__main__":
    main()
