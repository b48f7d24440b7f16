"""Speed of the gradient methods on MobileNetV2 (weights=None, 224x224, batch 16).

Prints ms/image for each method and the ratio IG(m steps) / ((m + 1) x one
gradient pass), whose goal is <= 1.15. Run:

    python benchmarks/bench_gradients.py [--batch 16] [--steps 50] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time

import keras
import numpy as np

import tfxai


def timed(fn, repeats):
    fn()  # trace + warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        np.asarray(result)
        best = min(best, time.perf_counter() - start)
    return best


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--samples", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    model = keras.applications.MobileNetV2(weights=None, input_shape=(224, 224, 3), classifier_activation="softmax")
    images = np.random.default_rng(0).uniform(-1, 1, size=(args.batch, 224, 224, 3)).astype("float32")
    targets = np.arange(args.batch) % 1000
    model = tfxai.adapt(model, input_range=(-1, 1))  # MobileNetV2 preprocess_input space
    methods = {
        "VanillaGradient": tfxai.VanillaGradient(model, batch_size=args.batch),
        "InputXGradient": tfxai.InputXGradient(model, batch_size=args.batch),
        f"SmoothGrad ({args.samples} samples)": tfxai.SmoothGrad(model, num_samples=args.samples, seed=0, batch_size=64),
        f"IntegratedGradients ({args.steps} steps)": tfxai.IntegratedGradients(
            model, num_steps=args.steps, batch_size=args.batch
        ),
    }
    print(f"MobileNetV2 (weights=None) 224x224, batch {args.batch}, best of {args.repeats}")
    print(f"| method | ms/image | s/batch |\n|---|---|---|")
    seconds = {}
    for name, explainer in methods.items():
        seconds[name] = timed(lambda: explainer(images, targets), args.repeats)
        print(f"| {name} | {1000 * seconds[name] / args.batch:.1f} | {seconds[name]:.2f} |", flush=True)

    # IG evaluates (m + 1) rows per image in chunks of `batch` rows: (m + 1) chunks per batch,
    # each the size of one vanilla-gradient pass over the batch.
    ig_name = f"IntegratedGradients ({args.steps} steps)"
    ratio = seconds[ig_name] / ((args.steps + 1) * seconds["VanillaGradient"])
    print(f"\nIG({args.steps}) / ((m+1) x one gradient pass of the batch) = {ratio:.3f}  (goal <= 1.15)")

if __name__ == "__main__":
    main()
