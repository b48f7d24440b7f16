"""Reproduce the T-Grad paper's evaluation (Table 1, Fig. 3-4, Fig. 6) on EfficientNet-Lite0.

Model: the real ImageNet EfficientNet-Lite0 in ../shared/assets (raw [0, 255]
pixels, preprocessing inside the model). Data: the 200 ImageNet sample photos
(shorter side 256, centre crop 224). Target: each image's predicted class (the
paper's protocol). CAMs on layer ``top_relu`` (7x7x1280).

The run is resumable and chunked: images are processed in chunks of
``--chunk`` photos, chunk by chunk for every method, and every (method, chunk)
result is written to ``OUT/raw/`` as soon as it finishes. Rerunning skips
finished pieces; ``--report`` only rebuilds the tables and figures.

Usage (from the repository root)::

    python benchmarks/reproduce_paper.py --num-images 200 --num-steps 16            # main table
    python benchmarks/reproduce_paper.py --num-images 10 --num-steps 224 --tag fine \
        --methods "T-Grad,Grad-CAM,Vanilla Gradient"                               # fine steps
    python benchmarks/reproduce_paper.py --sanity --sanity-layers 6                 # Fig. 6
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
ASSETS = ROOT.parent / "shared" / "assets"
MODEL_PATH = ASSETS / "models" / "efficientnet_lite0_imagenet.keras"
SAMPLES = ASSETS / "imagenet_samples"
LAYER = "top_relu"


def method_factories(args):
    """Title -> factory(model) for every registered method, with the protocol's settings; Score-CAM last."""
    from tfxai import _registry

    settings = {
        "smoothgrad": dict(num_samples=args.smoothgrad_samples, seed=0, batch_size=16),
        "ig": dict(num_steps=args.ig_steps, batch_size=16),
        "scorecam": dict(num_channels=args.scorecam_channels, batch_size=32),
        "rise": dict(num_masks=args.rise_masks, seed=0, batch_size=32),
        "blurig": dict(num_steps=100, batch_size=20),  # PAIR's default steps (its completeness gap is large below)
    }
    if "expectedgradients" in _registry.METHODS:  # baselines drawn from the data: the 200 photos (Erion et al.)
        from tfxai import evaluation

        settings["expectedgradients"] = dict(
            baselines=lambda: evaluation.image_folder(SAMPLES), max_baselines=200, num_samples=args.ig_steps, seed=0,
            batch_size=16,
        )
    names = sorted(_registry.METHODS, key=lambda n: _registry.METHODS[n].slow)  # the slow ones last

    def factory(name, **extra):
        def build(model):
            kwargs = {k: (v() if callable(v) and k == "baselines" else v) for k, v in {**settings.get(name, {}), **extra}.items()}
            return _registry.build(name, model, layer=LAYER, **kwargs)

        return build

    factories = {_registry.METHODS[name].title: factory(name) for name in names}
    if "lrp" in _registry.METHODS:  # the composites people use on images, beside the epsilon rule
        factories["LRP EpsilonPlusFlat"] = factory("lrp", composite="epsilon_plus_flat")
        factories["LRP EpsilonGammaBox"] = factory("lrp", composite="epsilon_gamma_box")
    return factories


def slug(name: str) -> str:
    name = name.replace("+", "p")  # Grad-CAM++ must not collide with Grad-CAM
    return "".join(c if c.isalnum() else "_" for c in name).strip("_").lower()


def combine(pieces):
    """Pool (method, chunk) results: count-weighted means, pooled standard errors, curves, timing."""
    from tfxai.evaluation.results import MethodResult

    n = sum(p.num_images for p in pieces)
    keys = set().union(*(p.means for p in pieces))
    means, sems = {}, {}
    for key in keys:
        total = sum(p.num_images * p.means[key] for p in pieces)
        squares = 0.0
        for p in pieces:
            sem = p.sems.get(key, float("nan"))
            second = (sem**2 * (p.num_images - 1) if p.num_images > 1 and not math.isnan(sem) else 0.0) + p.means[key] ** 2
            squares += p.num_images * second
        mean = total / n
        var = max(squares / n - mean**2, 0.0)
        means[key], sems[key] = mean, math.sqrt(var / max(n - 1, 1))
    curves = {}
    for key in set().union(*(p.curves for p in pieces)):
        length = len(pieces[0].curves[key])
        curves[key] = [sum(p.num_images * p.curves[key][i] for p in pieces) / n for i in range(length)]
    ms = sum(p.num_images * p.ms_per_image for p in pieces) / n
    per_image = {}
    if all(p.per_image for p in pieces):  # chunks in image order
        per_image = {key: [v for p in pieces for v in p.per_image[key]] for key in pieces[0].per_image}
    return MethodResult(pieces[0].name, n, ms, means, sems, curves, per_image)


def build_report(out: Path, tag: str, order):
    from tfxai.evaluation import EvaluationResults
    from tfxai.evaluation.results import MethodResult

    raw = out / f"raw_{tag}"
    if not raw.exists():
        return None
    pieces, fractions, settings = {}, None, None
    for path in sorted(raw.glob("*.json")):
        data = json.loads(path.read_text())
        result = MethodResult(**data["result"])
        start = int(path.stem.rsplit("__", 1)[1])
        pieces.setdefault(result.name, []).append((start, result))
        fractions, settings = data["fractions"], data["settings"]
    if not pieces:
        return None
    # keep only the image chunks every method finished, so all rows are over the same photos
    starts = {name: {s for s, _ in items} for name, items in pieces.items()}
    common = set.intersection(*starts.values())
    if not common:
        return None
    names = [n for n in order if n in pieces] + [n for n in pieces if n not in order]
    combined = {n: combine([r for s, r in sorted(pieces[n], key=lambda item: item[0]) if s in common]) for n in names}
    results = EvaluationResults(combined, fractions, {**settings, "images": f"{sum(1 for _ in common)} chunk(s) starting at {sorted(common)}"})
    target = out / tag
    results.save(target)
    write_paired(results, target / "paired.md")
    return results


def write_paired(results, path: Path, reference: str = "T-Grad") -> None:
    """Paired differences `reference - method` per metric over the same photos (mean ± s.e., share of wins)."""
    if reference not in results.methods or not results.methods[reference].per_image:
        return
    keys = [("ins_del", "Ins − Del", True), ("insertion", "Insertion", True), ("deletion", "Deletion", False)]
    lines = [
        f"{reference} minus each method on the same {results.methods[reference].num_images} photos: mean ± standard error "
        "of the per-photo difference, and the share of photos where "
        f"{reference} is better.",
        "",
        "| Method | " + " | ".join(f"Δ {label} | {reference} better" for _, label, _ in keys) + " |",
        "|---|" + "---:|---:|" * len(keys),
    ]
    for name, result in results.methods.items():
        if name == reference or not result.per_image:
            continue
        cells = []
        for key, _, higher in keys:
            d = results.paired(reference, name, key)
            better = d.first_larger if higher else 1.0 - d.first_larger
            cells += [f"{d.mean:+.4f} ± {d.sem:.4f}", f"{100 * better:.0f} %"]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    path.write_text("\n".join(lines) + "\n")


def run_evaluation(args, out: Path):
    import numpy as np
    import keras
    import tfxai
    from tfxai import evaluation

    model = keras.saving.load_model(MODEL_PATH)
    factories = method_factories(args)
    names = [n for n in factories if not args.methods or n in args.methods]
    print(f"methods: {names}", flush=True)
    raw = out / f"raw_{args.tag}"
    raw.mkdir(parents=True, exist_ok=True)
    chunks = math.ceil(args.num_images / args.chunk)
    explainers = {}
    for chunk in range(chunks):
        start = chunk * args.chunk
        count = min(args.chunk, args.num_images - start)
        dataset = evaluation.image_folder(SAMPLES, num_images=start + count).skip(start)
        for name in names:
            path = raw / f"{slug(name)}__{start:04d}.json"
            if path.exists():
                continue
            if name not in explainers:
                explainers[name] = factories[name](model)
            tick = time.time()
            results = evaluation.evaluate(
                model, {name: explainers[name]}, dataset, num_steps=args.num_steps, auc=args.auc,
                batch_size=args.batch_size, metric_batch_size=args.metric_batch_size, progress=False,
                keep_per_image=True, metrics=evaluation.runner.DEFAULT_METRICS + (("road",) if args.road else ()),
            )
            result = results.methods[name]
            path.write_text(json.dumps({
                "result": result.__dict__, "fractions": np.asarray(results.fractions).tolist(),
                "settings": {**results.settings, "images": f"{start}..{start + count - 1}"},
            }))
            print(f"[{time.strftime('%H:%M:%S')}] {name} images {start}-{start + count - 1}: "
                  f"ins {result.means['insertion']:.3f} del {result.means['deletion']:.3f} "
                  f"AD {result.means['average_drop']:.1f} IC {result.means['increase_in_confidence']:.1f} "
                  + (f"ROAD {result.means['road']:.3f} " if args.road else "")
                  + f"{result.ms_per_image:.0f} ms/img ({time.time() - tick:.0f} s)", flush=True)
        build_report(out, args.tag, list(factories))


def run_sanity(args, out: Path):
    import numpy as np
    import keras
    from tfxai import evaluation, metrics
    from tfxai.plot import evaluation as plots

    model = keras.saving.load_model(MODEL_PATH)
    factories = method_factories(args)
    names = [n for n in (args.sanity_methods or list(factories)) if n in factories]
    images = np.stack([x.numpy() for x, _ in evaluation.image_folder(SAMPLES, num_images=args.sanity_images)])
    target = out / "sanity"
    target.mkdir(parents=True, exist_ok=True)
    found = {}
    rows = []
    for name in names:
        tick = time.time()
        result = metrics.cascading_randomization(
            model, factories[name], images, layers=args.sanity_layers, seed=0, keep_maps=True, every=args.sanity_every
        )
        found[name] = result
        for layer, rho, ssim in zip(result.layers, result.spearman, result.ssim):
            rows.append((name, layer, *[f"{v:.4f}" for v in rho], *[f"{v:.4f}" for v in ssim]))
        print(f"[{time.strftime('%H:%M:%S')}] sanity {name}: {time.time() - tick:.0f} s; spearman last {result.spearman[-1]}", flush=True)
        np.savez_compressed(target / f"{slug(name)}.npz", spearman=result.spearman, ssim=result.ssim, layers=np.array(result.layers))
    n = len(images)
    header = "method,layer," + ",".join(f"spearman_{i}" for i in range(n)) + "," + ",".join(f"ssim_{i}" for i in range(n))
    (target / "sanity.csv").write_text(header + "\n" + "\n".join(",".join(r) for r in rows) + "\n")
    if n >= 2:
        # Control: are the fully randomised model's maps still about the image? Compare its maps of
        # photos 0 and 1 with each other, and photo 1's randomised map with photo 0's trained map.
        lines = ["method,spearman_random0_random1,spearman_trained0_random1,spearman_trained0_trained1"]
        for name, result in found.items():
            last, original = result.maps[-1], result.original_maps
            pairs = [(last[:1], last[1:2]), (original[:1], last[1:2]), (original[:1], original[1:2])]
            lines.append(name + "," + ",".join(f"{float(metrics.spearman(a, b)[0]):.4f}" for a, b in pairs))
        (target / "sanity_control.csv").write_text("\n".join(lines) + "\n")
    for i in range(n):
        plots.plot_sanity_grid(images[i], found, image_index=i).savefig(target / f"sanity_{i}.png", dpi=100, bbox_inches="tight")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    parser.add_argument("--tag", default="main", help="name of the run (sub-folder)")
    parser.add_argument("--num-images", type=int, default=200)
    parser.add_argument("--chunk", type=int, default=50)
    parser.add_argument("--num-steps", type=int, default=16)
    parser.add_argument("--auc", default="trapezoid")
    parser.add_argument("--batch-size", type=int, default=10)
    parser.add_argument("--metric-batch-size", type=int, default=34)
    parser.add_argument("--methods", type=lambda s: [m.strip() for m in s.split(",") if m.strip()], default=None)
    parser.add_argument("--smoothgrad-samples", type=int, default=16)
    parser.add_argument("--ig-steps", type=int, default=16)
    parser.add_argument("--scorecam-channels", type=int, default=32)
    parser.add_argument("--rise-masks", type=int, default=500, help="RISE masks per photo (the paper: 4000)")
    parser.add_argument("--road", action="store_true", help="also ROAD (MoRF/LeRF at 10..90 %%, 18 solves per photo)")
    parser.add_argument("--report", action="store_true", help="only rebuild tables and figures")
    parser.add_argument("--sanity", action="store_true", help="cascading randomisation instead of the table")
    parser.add_argument("--sanity-images", type=int, default=2)
    parser.add_argument("--sanity-layers", type=lambda s: None if s == "all" else int(s), default=6,
                        help="randomise the top K layers with weights, or 'all'")
    parser.add_argument("--sanity-every", type=int, default=1, help="explain after every K-th randomised layer")
    parser.add_argument("--sanity-methods", type=lambda s: [m.strip() for m in s.split(",")], default=None)
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"{platform.node()} {platform.processor() or platform.machine()} cpus={os.cpu_count()} python {platform.python_version()}", flush=True)
    if args.report:
        build_report(out, args.tag, list(method_factories(args)))
    elif args.sanity:
        run_sanity(args, out)
    else:
        run_evaluation(args, out)


if __name__ == "__main__":
    main()
