"""tfxai against xplique (the TensorFlow peer library), side by side in one process.

Usage (in an environment with xplique; tfxai from this checkout)::

    python3 -m venv /work/venv-xplique
    /work/venv-xplique/bin/pip install "tensorflow==2.20.*" xplique   # brings keras 3
    /work/venv-xplique/bin/python benchmarks/bench_xplique.py [--batch 16] [--repeats 5]

Both libraries explain the same ``keras.applications.MobileNetV2(weights=None)``
(224x224, 1000 classes, CPU) on the same batch for the same target classes,
with the same rows per model call (``batch_size``). The logit of the target is
explained: tfxai is given the model ending in softmax (it strips the softmax
itself), xplique a twin built with ``classifier_activation=None`` holding the
same weights (xplique differentiates the output it is given). Every method is
called once to trace, then the calls alternate (tfxai, xplique, next method,
...) `repeats` times and the best time of each is kept; the table gives
ms/image, the speed ratio (xplique time / tfxai time, > 1 means tfxai is
faster) and the largest difference of the maps, relative to the largest
|map value|, where both compute the same thing.

Definitions, and how they are matched here:

* Grad-CAM: same formula (ReLU of the gradient-mean-weighted channel sum)
  on ``out_relu`` for both (xplique's default is the last layer with
  ``filters``, ``Conv_1``, before BN and ReLU6). tfxai upsamples bilinearly,
  xplique bicubically; the maps are compared after resizing tfxai's
  layer-resolution map (``upsample=False``) bicubically as xplique does.
* Input x Gradient: ``x * dlogit/dx`` summed over channels (xplique
  ``GradientInput(reducer="sum")``; its default reducer is the mean).
* Saliency: ``max_c |dlogit/dx|`` (tfxai ``VanillaGradient(output="logit")``,
  xplique ``Saliency``).
* Integrated Gradients: baseline 0, trapezoid rule over ``m`` intervals
  (tfxai ``num_steps=m``; xplique ``steps=m + 1`` points). Maps differ by
  definition (tfxai ``sum_c |IG|``, xplique's reducers have no abs), so the
  attributions ``(N, H, W, C)`` are compared, from one extra untimed call.
* SmoothGrad: tfxai draws ``sigma = noise_scale * (max - min)`` per image and
  maps ``max_c |mean gradient|``; xplique draws an absolute ``sigma`` and
  reduces the signed mean gradient. The noise differs, so only times are
  compared (``noise_scale=0.1`` on [-1, 1] images matches xplique's
  ``noise=0.2``).
* Grad-CAM++: xplique uses the mean of the activations in the alpha
  denominator and averages the weighted alphas; tfxai follows the paper's
  Eq. 19 (sums). Only times are compared.
"""

from __future__ import annotations

import argparse
import sys
import time

try:
    import xplique
    from xplique.attributions import GradCAM, GradCAMPP, GradientInput, IntegratedGradients, Saliency, SmoothGrad
except ImportError:
    print(
        "xplique is not installed: nothing to compare. Install it in a separate environment, e.g.\n"
        "  python3 -m venv /work/venv-xplique && /work/venv-xplique/bin/pip install 'tensorflow==2.20.*' xplique\n"
        "and run  /work/venv-xplique/bin/python benchmarks/bench_xplique.py"
    )
    sys.exit(0)

from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's tfxai
import tfxai  # noqa: E402

LAYER = "out_relu"


def build_models(seed: int = 0):
    """(softmax model for tfxai, logits twin with the same weights for xplique)."""
    keras.utils.set_random_seed(seed)
    model = keras.applications.MobileNetV2(weights=None, input_shape=(224, 224, 3))
    logits = keras.applications.MobileNetV2(weights=None, input_shape=(224, 224, 3), classifier_activation=None)
    logits.set_weights(model.get_weights())
    return model, logits


def relative_difference(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--ig-steps", type=int, default=16, help="IG intervals m")
    parser.add_argument("--samples", type=int, default=8, help="SmoothGrad noisy copies per image")
    parser.add_argument("--methods", nargs="+", default=None, help="subset of the method names")
    args = parser.parse_args(argv)

    model, logits_model = build_models()
    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, size=(args.batch, 224, 224, 3)).astype("float32")
    targets = (np.arange(args.batch) * 37) % 1000
    one_hot = tf.one_hot(targets, 1000).numpy()
    n = args.batch

    # name -> (tfxai explainer, tfxai call, xplique call, comparison or None)
    pairs = {}
    gradcam = tfxai.GradCAM(model, layer=LAYER, batch_size=n)
    gradcam_small = tfxai.GradCAM(model, layer=LAYER, upsample=False, batch_size=n)
    x_gradcam = GradCAM(logits_model, batch_size=n, conv_layer=LAYER)

    def compare_gradcam(x_maps):
        small = gradcam_small(images, targets)[..., None]
        ours = tf.image.resize(small, (224, 224), method="bicubic")[..., 0]
        return relative_difference(ours, x_maps[..., 0])

    pairs["Grad-CAM"] = (lambda: gradcam(images, targets), lambda: x_gradcam.explain(images, one_hot), compare_gradcam)

    ixg = tfxai.InputXGradient(model, output="logit", batch_size=n)
    x_ixg = GradientInput(logits_model, batch_size=n, reducer="sum")
    pairs["Input x Gradient"] = (
        lambda: ixg(images, targets), lambda: x_ixg.explain(images, one_hot),
        lambda x_maps, ours: relative_difference(ours, x_maps[..., 0]),
    )
    saliency = tfxai.VanillaGradient(model, output="logit", batch_size=n)
    x_saliency = Saliency(logits_model, batch_size=n)
    pairs["Saliency"] = (
        lambda: saliency(images, targets), lambda: x_saliency.explain(images, one_hot),
        lambda x_maps, ours: relative_difference(ours, x_maps[..., 0]),
    )
    ig = tfxai.IntegratedGradients(model, baseline=0.0, num_steps=args.ig_steps, method="trapezoid",
                                   output="logit", batch_size=n)
    x_ig = IntegratedGradients(logits_model, batch_size=n, steps=args.ig_steps + 1, baseline_value=0.0, reducer="sum")

    def compare_ig(x_maps, ours):
        x_attr = IntegratedGradients(logits_model, batch_size=n, steps=args.ig_steps + 1, baseline_value=0.0,
                                     reducer=None).explain(images, one_hot)
        return relative_difference(ig.attributions(images, targets), x_attr)

    pairs[f"Integrated Gradients ({args.ig_steps} steps)"] = (
        lambda: ig(images, targets), lambda: x_ig.explain(images, one_hot), compare_ig,
    )
    smooth = tfxai.SmoothGrad(model, num_samples=args.samples, noise_scale=0.1, output="logit", seed=0, batch_size=n)
    x_smooth = SmoothGrad(logits_model, batch_size=n, nb_samples=args.samples, noise=0.2, reducer="max")
    pairs[f"SmoothGrad ({args.samples} samples)"] = (
        lambda: smooth(images, targets), lambda: x_smooth.explain(images, one_hot), None,
    )
    gradcampp = tfxai.GradCAMPlusPlus(model, layer=LAYER, batch_size=n)
    x_gradcampp = GradCAMPP(logits_model, batch_size=n, conv_layer=LAYER)
    pairs["Grad-CAM++"] = (lambda: gradcampp(images, targets), lambda: x_gradcampp.explain(images, one_hot), None)

    if args.methods:
        pairs = {k: v for k, v in pairs.items() if any(k.lower().startswith(m.lower()) for m in args.methods)}

    print(f"tfxai {getattr(tfxai, '__version__', '')} ({Path(tfxai.__file__).parent}) vs xplique {xplique.__version__}; "
          f"TensorFlow {tf.__version__}, Keras {keras.__version__}; MobileNetV2(weights=None) 224x224, "
          f"batch {n}, CPU", flush=True)
    differences = {}
    for name, (ours, theirs, compare) in pairs.items():
        mine, other = np.asarray(ours()), np.asarray(theirs())  # trace + warm-up
        if compare is None:
            differences[name] = "n/a (definitions differ)"
        elif compare is compare_gradcam:
            differences[name] = f"{compare(other):.1e}"
        else:
            differences[name] = f"{compare(other, mine):.1e}"
    best = {(name, side): float("inf") for name in pairs for side in (0, 1)}
    for _ in range(args.repeats):
        for name, calls in pairs.items():
            for side in (0, 1):
                start = time.perf_counter()
                np.asarray(calls[side]())
                best[name, side] = min(best[name, side], time.perf_counter() - start)
    print(f"\nbest of {args.repeats} alternating calls after one warm-up call each\n")
    print("| method | tfxai ms/image | xplique ms/image | xplique / tfxai | max map difference (relative) |")
    print("|---|---|---|---|---|")
    for name in pairs:
        ours, theirs = best[name, 0] / n * 1000, best[name, 1] / n * 1000
        print(f"| {name} | {ours:.1f} | {theirs:.1f} | {theirs / ours:.2f}x | {differences[name]} |")


if __name__ == "__main__":
    main()
