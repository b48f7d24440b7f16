"""The first map as a student waits for it, against the eager lecture code (issue 17 goal: <= 2x).

Usage: python benchmarks/bench_first_map.py [--methods vanilla,gradcam] [--ig-steps 32] [--repeats 1]

For every registered method (``tfxai._registry.METHODS``; ``--methods`` selects),
in a FRESH PROCESS each, on the bundled EfficientNet-Lite0 and one shipped photo
(``chelsea``), after the model's own first ``predict``:

1. the eager lecture code for the same quantity (plain Keras and
   ``tf.GradientTape``, no ``tf.function``; the "unit" column says which):
   one input gradient for the gradient methods, T-Grad, FullGrad and Guided
   Backprop (their lecture code is no shorter than a gradient); Grad-CAM for the
   CAMs (Guided Grad-CAM: Grad-CAM plus one gradient); Integrated Gradients
   with the same number of steps; the noisy gradients of SmoothGrad-like
   methods (same number of samples, in batches of 32); the same number of
   masked forward passes for Score-CAM, RISE and Occlusion (batches of 32);
2. the method's first call, including building the explainer ("first map");
3. its second call (with the runtime's default, the call that traces) and a
   third call (steady state).

The ratio is first map / eager lecture code. Methods use their default
settings except IG (``--ig-steps``, 32 as in the issue). Load from other
processes is printed beside each row (``os.getloadavg``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------------------------- child
def _child(name: str, ig_steps: int) -> dict:
    sys.path.insert(0, str(ROOT))
    import numpy as np
    import tensorflow as tf
    import keras

    import tfxai
    from tfxai import _registry

    model = tfxai.models.efficientnet_lite0()
    photo = tfxai.data.load_photos(["chelsea"])
    model.predict(photo, verbose=0)  # the model's own first predict (as a notebook does)
    cls = _registry.METHODS[name]
    images = tf.constant(photo)
    target = int(np.argmax(model.predict(photo, verbose=0)[0]))

    # ---- eager lecture codes
    def gradient(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            score = model(x, training=False)[:, target]
        return tape.gradient(score, x)

    def gradcam():
        layer = model.get_layer("top_relu")
        grad_model = keras.Model(model.inputs, [layer.output, model.output])
        with tf.GradientTape() as tape:
            conv, preds = grad_model(images, training=False)
            score = preds[:, target]
        grads = tape.gradient(score, conv)
        weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
        cam = tf.nn.relu(tf.reduce_sum(conv * weights, axis=-1))
        return tf.image.resize(cam[..., None], (224, 224))

    def integrated_gradients(steps):
        alphas = tf.linspace(0.0, 1.0, steps + 1)[:, None, None, None]
        path = alphas * images  # black baseline
        grads = tf.concat([gradient(path[i : i + 32]) for i in range(0, steps + 1, 32)], 0)
        avg = tf.reduce_mean((grads[:-1] + grads[1:]) / 2.0, axis=0)
        return images[0] * avg

    def smoothgrad(samples):
        noisy = images + tf.random.normal((samples, 224, 224, 3), stddev=0.15 * 255.0)
        return tf.reduce_mean(tf.concat([gradient(noisy[i : i + 32]) for i in range(0, samples, 32)], 0), 0)

    def forward_passes(count, masks_fn):
        total = 0.0
        for start in range(0, count, 32):
            rows = min(32, count - start)
            scores = model(images * masks_fn(start, rows), training=False)[:, target]
            total += float(tf.reduce_sum(scores))
        return total

    def rise_masks(start, rows):
        grid = tf.cast(tf.random.uniform((rows, 7, 7, 1)) < 0.5, tf.float32)
        return tf.image.resize(grid, (256, 256))[:, 16:240, 16:240]

    def scorecam(channels):
        layer = model.get_layer("top_relu")
        activations = keras.Model(model.inputs, layer.output)(images, training=False)
        up = tf.image.resize(activations, (224, 224))[0]  # (224, 224, C)
        low, high = tf.reduce_min(up, axis=(0, 1)), tf.reduce_max(up, axis=(0, 1))
        norm = (up - low) / (high - low + 1e-8)

        def masks(start, rows):
            return tf.transpose(norm[..., start : start + rows], (2, 0, 1))[..., None]

        return forward_passes(channels, masks)

    def occlusion_masks(start, rows):
        anchors = [(y, x) for y in range(0, 224 - 32 + 1, 16) for x in range(0, 224 - 32 + 1, 16)]
        masks = np.ones((rows, 224, 224, 1), np.float32)
        for i, (y, x) in enumerate(anchors[start : start + rows]):
            masks[i, y : y + 32, x : x + 32] = 0.0
        return masks

    gradient_unit = ("one eager gradient", lambda: gradient(images))
    lecture = {
        "vanilla": ("eager gradient", lambda: gradient(images)),
        "inputxgradient": ("eager gradient x input", lambda: gradient(images) * images),
        "ig": (f"eager IG, {ig_steps} steps", lambda: integrated_gradients(ig_steps)),
        "smoothgrad": ("eager 50 noisy gradients", lambda: smoothgrad(50)),
        "squaregrad": ("eager 50 noisy gradients", lambda: smoothgrad(50)),
        "vargrad": ("eager 50 noisy gradients", lambda: smoothgrad(50)),
        "scorecam": ("eager 1280 masked forwards", lambda: scorecam(1280)),
        "rise": ("eager 4000 masked forwards", lambda: forward_passes(4000, rise_masks)),
        "occlusion": ("eager 170 masked forwards", lambda: forward_passes(169, occlusion_masks) + forward_passes(1, lambda s, r: 1.0)),
        "guidedgradcam": ("eager Grad-CAM + gradient", lambda: (gradcam(), gradient(images))),
        "tgrad": gradient_unit,
        "fullgrad": gradient_unit,
        "guidedbackprop": gradient_unit,
    }
    unit, reference = lecture.get(name, ("eager Grad-CAM", gradcam) if cls.takes_layer else gradient_unit)
    if name == "ig":
        kwargs = {"num_steps": ig_steps}
    else:
        kwargs = {}
    load = os.getloadavg()[0]
    start = time.perf_counter()
    result = reference()
    if isinstance(result, tuple):
        [np.asarray(r) for r in result]
    else:
        np.asarray(result)
    eager = time.perf_counter() - start

    start = time.perf_counter()
    explainer = _registry.build(name, model, **kwargs)
    built = time.perf_counter() - start
    calls = []
    for _ in range(3):
        start = time.perf_counter()
        explainer(photo).numpy()
        calls.append(time.perf_counter() - start)
    return {
        "name": name, "title": cls.title, "unit": unit, "eager": eager, "build": built, "first": built + calls[0],
        "second": calls[1], "third": calls[2], "traces": explainer.trace_count, "load": load,
        "eager_calls": __import__("tfxai._runtime", fromlist=["x"]).EAGER_CALLS,
    }


# ---------------------------------------------------------------------------------------------- parent
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="all", help="comma-separated method names (default: all registered)")
    parser.add_argument("--ig-steps", type=int, default=32)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--json", help="also write the rows to this JSON file")
    args = parser.parse_args(argv)
    if args.child:
        print("RESULT " + json.dumps(_child(args.child, args.ig_steps)), flush=True)
        return
    sys.path.insert(0, str(ROOT))
    from tfxai import _registry  # noqa: E402  (imports TensorFlow once, for the names)

    names = _registry.parse(args.methods)
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")}
    rows = []
    print("| method | eager lecture code (unit) | tfxai first map | second call | third call | first / eager | load |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for name in names:
        done = subprocess.run([sys.executable, __file__, "--child", name, "--ig-steps", str(args.ig_steps)],
                              env=env, capture_output=True, text=True)
        line = [l for l in done.stdout.splitlines() if l.startswith("RESULT ")]
        if done.returncode or not line:
            print(f"| {name} | failed: {done.stderr.strip().splitlines()[-1:]} |", flush=True)
            continue
        row = json.loads(line[0][len("RESULT "):])
        rows.append(row)
        print(f"| {row['title']} | {row['eager']:.2f} s ({row['unit']}) | {row['first']:.2f} s "
              f"(build {row['build']:.2f}) | {row['second']:.2f} s | {row['third']:.3f} s | "
              f"{row['first'] / row['eager']:.1f}x | {row['load']:.1f} |", flush=True)
    if rows:
        print(f"\nEfficientNet-Lite0, 1 photo, fresh process per method; TFXAI_EAGER_CALLS={rows[0]['eager_calls']} "
              f"(0 = compile on the first call); load = 1-min load average at the start of each row.")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
