"""Time the decompositions against one vanilla-gradient pass (T-Grad/FullGrad goal <= 1.3x, LRP/DeepLIFT <= 1.5x).

Usage: python benchmarks/bench_decomposition.py [--batch 16] [--repeats 3] [--models MobileNetV2 VGG16 Lite0]
       [--methods tgrad,fullgrad,lrp,lrp_epsilon_plus_flat,deeplift] [--profile]

Models are keras.applications with weights=None (224x224, 1000 classes, logits
explained); biases and BN statistics are randomised so that no term is
trivially zero. ``Lite0`` is the bundled, trained EfficientNet-Lite0 on the
shipped photos (its ReLU6 sites saturate). Each explainer is called twice to
trace (the first call runs eagerly, the second compiles), then the methods are
called in turn `repeats` times on the same batch (interleaved, so that load from
other processes hits every method alike) and the best time is kept; the table
gives milliseconds per image and the ratio to the vanilla gradient, in wall-clock
time and in CPU time of this process (steadier when other jobs share the cores).

``--profile`` adds where the extra cost goes: compiled functions that stop after
the replayed forward/backward pass with every site's gradient, or add only the
statistics of the BN-like sites or only those of the saturating ReLU6 sites.
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


def model_and_images(name, batch):
    """(model, images): a randomised keras.applications model on noise, or the trained Lite0 on the photos."""
    if name == "Lite0":
        photos = tfxai.data.load_photos(tfxai.data.photo_names())
        return tfxai.models.efficientnet_lite0(), np.concatenate([photos] * (batch // len(photos) + 1))[:batch]
    model = APPLICATIONS[name](weights=None, classifier_activation=None)
    test_models.randomize_biases_and_bn(model)
    model = tfxai.adapt(model, input_range=(-1.0, 1.0))  # the images below (black = -1 for DeepLIFT, zbox bounds)
    return model, np.random.default_rng(0).uniform(-1, 1, size=(batch, 224, 224, 3)).astype("float32")


def profile_variants(tgrad, fullgrad, vanilla):
    """Compiled parts of T-Grad/FullGrad: the replayed pass alone, then the statistics of one kind of site."""
    import tensorflow as tf

    from tfxai import decomposition as D
    from tfxai.explainers import fullgrad as F, tgrad as T

    dec = tgrad.decomposition
    signature = [tf.TensorSpec([None, 224, 224, 3]), tf.TensorSpec([None], tf.int32)]

    def variant(kinds, wanted):
        @tf.function(input_signature=signature)
        def run(x, t):
            _, _, input_term, sites = dec.gradients(x, t)
            out = [tf.reduce_sum(s.gradient) for s in sites]  # keeps every site's gradient in the graph
            for s in sites:
                if s.gradient.shape.rank == 4 and s.site.kind in kinds:
                    out += [tf.reduce_sum(v) for v in D.site_statistics(s, wanted, input_term.dtype).values()]
            return input_term + tf.add_n(out)

        return lambda images: run(images, tf.fill([len(images)], -1))

    bn = {"batch_norm", "rescaling", "conv_bias", "depthwise_bias", "separable_bias"}
    return {
        "vanilla gradient": vanilla,
        "replayed pass + site gradients": variant(set(), ()),
        "+ T-Grad statistics, BN/bias sites": variant(bn, T.STATISTICS),
        "+ T-Grad statistics, ReLU6 sites": variant({"activation"}, T.STATISTICS),
        "+ FullGrad statistics, BN/bias sites": variant(bn, F.STATISTICS),
        "+ FullGrad statistics, ReLU6 sites": variant({"activation"}, F.STATISTICS),
        "T-Grad": tgrad,
        "FullGrad": fullgrad,
    }


#: The timed explainers besides the vanilla gradient: name -> factory(model, batch).
CANDIDATES = {
    "tgrad": ("T-Grad", lambda m, b: tfxai.TGrad(m, batch_size=b)),
    "fullgrad": ("FullGrad", lambda m, b: tfxai.FullGrad(m, batch_size=b)),
    "lrp": ("LRP epsilon", lambda m, b: tfxai.LRP(m, batch_size=b)),
    "lrp_epsilon_plus_flat": ("LRP EpsilonPlusFlat", lambda m, b: tfxai.LRP(m, composite="epsilon_plus_flat", batch_size=b)),
    "lrp_epsilon_gamma_box": ("LRP EpsilonGammaBox", lambda m, b: tfxai.LRP(m, composite="epsilon_gamma_box", batch_size=b)),
    "lrp_epsilon_alpha2_beta1": ("LRP EpsilonAlpha2Beta1", lambda m, b: tfxai.LRP(m, composite="epsilon_alpha2_beta1", batch_size=b)),
    "deeplift": ("DeepLIFT", lambda m, b: tfxai.DeepLIFT(m, batch_size=b)),
}


def time_methods(methods, images, repeats):
    """Best-of-`repeats` ms/image per method, calls interleaved so that load changes hit all alike.

    Returns ``{name: (wall ms/image, process CPU ms/image)}``; on a machine shared
    with other jobs the CPU time of this process is the steadier of the two.
    """
    for explainer in methods.values():
        explainer(images).numpy()  # eager first call
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
    parser.add_argument("--models", nargs="+", default=[*APPLICATIONS, "Lite0"])
    parser.add_argument("--methods", type=lambda text: text.split(","), default=["tgrad", "fullgrad"],
                        help=f"comma-separated, from {', '.join(CANDIDATES)}")
    parser.add_argument("--profile", action="store_true", help="time the parts of T-Grad and FullGrad")
    args = parser.parse_args(argv)
    rows = []
    for name in args.models:
        model, images = model_and_images(name, args.batch)
        methods = {"vanilla gradient": tfxai.VanillaGradient(model, output="logit", batch_size=args.batch)}
        for key in args.methods:
            title, factory = CANDIDATES[key]
            methods[title] = factory(model, args.batch)
        if args.profile:
            methods = profile_variants(methods["T-Grad"], methods["FullGrad"], methods["vanilla gradient"])
        times = time_methods(methods, images, args.repeats)
        base, base_cpu = times["vanilla gradient"]
        for method, (ms, cpu) in times.items():
            rows.append((name, method, ms, ms / base, cpu, cpu / base_cpu))
            print(f"{name:12s} {method:22s} {ms:9.1f} ms/image  {ms / base:5.2f}x   CPU {cpu:7.1f} ms/image "
                  f"{cpu / base_cpu:5.2f}x", flush=True)
    print(f"\nbatch {args.batch}, best of {args.repeats} interleaved calls after one warm-up; tfxai from "
          f"{Path(tfxai.__file__).parent}\n")
    print("| model | method | ms/image | ratio to vanilla gradient | CPU ms/image | CPU-time ratio |")
    print("|---|---|---|---|---|---|")
    for name, method, ms, ratio, cpu, cpu_ratio in rows:
        print(f"| {name} | {method} | {ms:.1f} | {ratio:.2f}x | {cpu:.1f} | {cpu_ratio:.2f}x |")


if __name__ == "__main__":
    main()
