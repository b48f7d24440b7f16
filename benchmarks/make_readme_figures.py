"""Make the README's figures from the real EfficientNet-Lite0 model and one sample photo.

    python benchmarks/make_readme_figures.py [--photo n02099601_golden_retriever.JPEG] [--quick]

Writes ``benchmarks/figures/methods.png`` (every available method on one photo),
``benchmarks/figures/tgrad_layers.png`` (per-layer T-Grad maps) and
``benchmarks/figures/ig.png`` (the IG tutorial summary). Needs ``../shared/assets``.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import keras
import numpy as np

import tfxai
import tfxai.plot
from tfxai import _registry, io

ROOT = Path(__file__).resolve().parents[1]
ASSETS = Path(os.environ.get("TFXAI_ASSETS", ROOT.parent / "shared" / "assets"))
OUT = ROOT / "benchmarks" / "figures"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photo", default="n02099601_golden_retriever.JPEG")
    parser.add_argument("--quick", action="store_true", help="skip Score-CAM (one forward pass per channel)")
    args = parser.parse_args()
    if (ASSETS / "keras").is_dir():
        os.environ.setdefault("KERAS_HOME", str(ASSETS / "keras"))
    OUT.mkdir(parents=True, exist_ok=True)
    model = keras.saving.load_model(ASSETS / "models" / "efficientnet_lite0_imagenet.keras")
    x = io.load_image(ASSETS / "imagenet_samples" / args.photo)[None]
    probabilities = model.predict(x, verbose=0)[0]
    target = int(probabilities.argmax())
    name = io.class_names([target], 1000)[0]
    print(f"{args.photo}: {name} ({probabilities[target]:.1%})")

    names = _registry.parse("default" if args.quick else "all")
    maps = {}
    for method in names:
        start = time.perf_counter()
        maps[_registry.METHODS[method].title] = np.asarray(_registry.build(method, model)(x, targets=target))
        print(f"  {_registry.METHODS[method].title:<22} {time.perf_counter() - start:6.1f} s")
    signed = [_registry.METHODS[m].title for m in names if _registry.METHODS[m].signed]
    # two rows of panels for a README-friendly width
    titles = list(maps)
    half = (len(titles) + 1) // 2
    figure = tfxai.plot.method_grid(np.concatenate([x, x]), {
        **{f"{t}": np.concatenate([maps[t], maps[titles[half + k]] if half + k < len(titles) else np.zeros_like(maps[t])])
           for k, t in enumerate(titles[:half])}
    }, labels=[f"{name} {probabilities[target]:.0%}"] * 2, signed=signed, cell=2.2)
    # rename the second row's titles to its methods
    for k, ax in enumerate(figure.axes[half + 2:], start=half):
        ax.set_title(titles[k] if k < len(titles) else "", fontsize=10)
        if k >= len(titles):
            ax.set_visible(False)
    figure.savefig(OUT / "methods.png", dpi=80)

    if getattr(tfxai, "TGrad", None) is not None:
        layers = tfxai.TGrad(model).layer_maps(x, targets=target)
        ranked = sorted(layers, key=lambda t: -float(t[2][0]))[:10]
        combined = sum(np.asarray(m) * np.asarray(s)[:, None, None] for _, m, s in layers)
        tfxai.plot.layer_maps([np.asarray(m)[0] for _, m, _ in ranked], names=[n for n, _, _ in ranked],
                              scores=[float(s[0]) for _, _, s in ranked], image=x[0], combined=combined[0],
                              cols=6).savefig(OUT / "tgrad_layers.png", dpi=80)

    baseline = np.zeros_like(x[0])
    attributions = tfxai.integrated_gradients.integrated_gradients(model, baseline, x[0], target, m_steps=32)
    tfxai.plot.ig_summary(x[0], baseline, attributions, title=name).savefig(OUT / "ig.png", dpi=70)
    print("wrote", ", ".join(str(p.relative_to(ROOT)) for p in sorted(OUT.glob("*.png"))))


if __name__ == "__main__":
    main()
