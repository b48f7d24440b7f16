"""The zoo: every registered method on every ``keras.applications`` family that builds offline.

Usage::

    python benchmarks/bench_zoo.py [--families MobileNetV2,ResNet50V2] [--methods gradcam,ig]
                                   [--size 96] [--images 2] [--out benchmarks/results/zoo.md]

Each family is built with ``weights=None`` at ``--size`` pixels (families with a
larger minimum input get their minimum), its biases, BatchNormalization gamma
and beta and Rescaling offsets are randomised
(:func:`tests.models.randomize_biases_and_bn`), so that no term is trivially
zero, and its BatchNorm moving statistics are calibrated on random images then
perturbed (:func:`calibrate_batch_norm`), so that the random network still
depends on its input. The images are random (blocky) pixels in [0, 255] passed
through the family's ``preprocess_input``; the valid input range given to tfxai is the image
of [0, 255] under it (what ``python -m tfxai explain`` does). Every registered
method (:data:`tfxai._registry.METHODS`) runs with its ``quick_settings(True)``
on the predicted classes.

One cell per family and method (:func:`classify`):

* ``ok``: a usable map for every image (finite, not constant);
* ``warn:<WarningClass>``: tfxai warned (e.g. a degenerate map, an input range);
* ``err:<ErrorClass>``: a clear tfxai error (a :class:`~tfxai.errors.TfxaiError`);
* ``CONST`` / ``ZERO`` / ``NAN``: a silent constant, all-zero or non-finite map
  for at least one image, without a warning: a bug;
* ``CRASH:<type>``: any other exception: a bug.

The ``decompose`` column is the completeness of :func:`tfxai.decompose`:
``exact <gap>`` or, for models that are not piecewise linear,
``linearize <gap>``, the largest relative gap ``|s - sum of terms| / max(|s|, 1)``
over the images; ``GAP <gap>`` when it exceeds :data:`GAP_TOLERANCE`. The last
column is the wall-clock time of the family (building, tracing and running
everything). The markdown table goes to ``--out`` (default
``benchmarks/results/zoo.md``); the same per-cell logic serves ``tests/test_zoo.py``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
import warnings
from pathlib import Path
from typing import Any, Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

# This checkout's tfxai and tests package (not an installed tfxai of another checkout).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import tfxai  # noqa: E402
from tests import models as test_models  # noqa: E402
from tfxai import _registry  # noqa: E402
from tfxai._cli_common import input_range_of  # noqa: E402
from tfxai.errors import TfxaiError, UnsupportedModelError  # noqa: E402

#: The ``keras.applications`` families that build offline with ``weights=None``: name -> minimum input size.
FAMILIES: dict[str, int] = {
    "VGG16": 32,
    "ResNet50": 32,
    "ResNet50V2": 32,
    "InceptionV3": 75,
    "Xception": 71,
    "DenseNet121": 32,
    "MobileNet": 32,
    "MobileNetV2": 32,
    "MobileNetV3Small": 32,
    "MobileNetV3Large": 32,
    "NASNetMobile": 32,
    "EfficientNetB0": 32,
    "EfficientNetV2B0": 32,
    "ConvNeXtTiny": 32,
}
#: Relative completeness gap above which the decomposition cell reads ``GAP``.
GAP_TOLERANCE = 1e-3
#: Codes of the cells that are bugs (a silent wrong result or an unexplained failure).
BAD = ("CONST", "ZERO", "NAN", "CRASH")


def degenerate(maps: np.ndarray) -> str | None:
    """``"NAN"``, ``"ZERO"`` or ``"CONST"`` if some image's map is non-finite, all zero or constant, else None.

    A map is constant when its spread ``max - min`` is at most ``1e-6`` of its
    largest magnitude (float32 rounding of a constant map stays far below that).
    """
    maps = np.asarray(maps, np.float64)
    if not np.all(np.isfinite(maps)):
        return "NAN"
    flat = maps.reshape(len(maps), -1)
    peak = np.abs(flat).max(axis=1)
    if np.any(peak == 0):
        return "ZERO"
    if np.any(np.ptp(flat, axis=1) <= 1e-6 * peak):
        return "CONST"
    return None


def classify(call: Callable[[], Any]) -> tuple[str, str]:
    """Run `call` (returns maps ``(N, H, W)``) and return ``(cell, detail)``; see the module docstring.

    The detail is the first line of the warning or error message, or the
    degenerate-map code, for the report below the table.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            maps = np.asarray(call())
        except TfxaiError as error:
            return f"err:{type(error).__name__}", _first_line(error)
        except Exception as error:  # noqa: BLE001 - every other exception is a crash, recorded as such
            return f"CRASH:{type(error).__name__}", _first_line(error) + " @ " + _where(error)
    ours = [w for w in caught if type(w.message).__module__.startswith("tfxai")]
    problem = degenerate(maps)
    if maps.ndim != 3:
        return "CRASH:shape", f"maps of shape {maps.shape}, expected (N, H, W)"
    if ours:
        return f"warn:{type(ours[0].message).__name__}", _first_line(ours[0].message) + (f" [{problem}]" if problem else "")
    if problem:
        return problem, f"{problem} map without a warning"
    return "ok", ""


def _first_line(error: Any) -> str:
    text = str(error).strip()
    return (text.splitlines()[0] if text else type(error).__name__)[:300]


def _where(error: BaseException) -> str:
    frames = [f for f in traceback.extract_tb(error.__traceback__) if "tfxai" in f.filename]
    frame = frames[-1] if frames else traceback.extract_tb(error.__traceback__)[-1]
    return f"{Path(frame.filename).name}:{frame.lineno}"


def is_bad(cell: str) -> bool:
    """True for a cell that is a bug: a silent constant/zero/NaN map, a crash, or a completeness gap."""
    return cell.startswith(BAD) or cell.startswith("GAP")


def _batch_norms(model: keras.Model) -> list:
    found = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            found.extend(_batch_norms(layer))
        elif isinstance(layer, keras.layers.BatchNormalization):
            found.append(layer)
    return found


def calibrate_batch_norm(model: keras.Model, images: np.ndarray, seed: int = 0, spread: float = 0.2) -> keras.Model:
    """Set every BatchNormalization's moving statistics to its batch statistics on `images`, then perturb them.

    With ``weights=None`` and statistics drawn without regard to the activations
    (mean 0, variance ~1), a deep network's activations shrink or grow layer
    after layer until the logits no longer depend on the input (gradients of
    1e-24 on MobileNet, all-zero occlusion): every map would be degenerate
    because the model is, which says nothing about tfxai. Calibrating first
    (one training-mode pass with momentum 0), then multiplying each statistic
    by ``1 + spread * N(0, 1)`` (variances by a log-normal factor), gives an
    input-sensitive random network whose BatchNorm terms are not the identity.
    """
    layers = _batch_norms(model)
    momenta = [layer.momentum for layer in layers]
    for layer in layers:
        layer.momentum = 0.0
    try:
        model(images, training=True)
    finally:
        for layer, momentum in zip(layers, momenta):
            layer.momentum = momentum
    rng = np.random.default_rng(seed + 1)
    for layer in layers:
        mean, variance = layer.moving_mean.numpy(), layer.moving_variance.numpy()
        scale = np.sqrt(variance + layer.epsilon)
        layer.moving_mean.assign((mean + spread * scale * rng.normal(size=mean.shape)).astype(mean.dtype))
        layer.moving_variance.assign((variance * np.exp(spread * rng.normal(size=variance.shape))).astype(variance.dtype))
    return model


def build_family(name: str, size: int, seed: int = 0) -> tuple[keras.Model, Callable | None]:
    """``keras.applications.<name>`` with random weights, randomised biases and BN statistics, and its preprocess.

    Biases, BatchNorm gamma/beta and Rescaling offsets are randomised with
    :func:`tests.models.randomize_biases_and_bn`; the BatchNorm moving
    statistics are then calibrated on random images and perturbed
    (:func:`calibrate_batch_norm`).
    """
    import importlib

    factory = getattr(keras.applications, name)
    size = max(size, FAMILIES.get(name, 32))
    keras.utils.set_random_seed(seed)
    model = factory(weights=None, input_shape=(size, size, 3), classes=1000)
    test_models.randomize_biases_and_bn(model, seed)
    preprocess = getattr(importlib.import_module(factory.__module__), "preprocess_input", None)
    calibration = random_images(8, size, preprocess, seed + 100)
    calibrate_batch_norm(model, calibration, seed)
    return model, preprocess


def random_images(num_images: int, size: int, preprocess: Callable | None, seed: int = 0) -> np.ndarray:
    """Random pixels in [0, 255] (smoothed a little, so that patches matter) through `preprocess`."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 255, (num_images, size // 8 + 1, size // 8 + 1, 3)).astype("float32")
    smooth = np.repeat(np.repeat(coarse, 8, axis=1), 8, axis=2)[:, :size, :size]
    raw = np.clip(0.7 * smooth + 0.3 * rng.uniform(0, 255, smooth.shape), 0, 255).astype("float32")
    return raw if preprocess is None else np.asarray(preprocess(raw.copy()), np.float32)


def decompose_cell(adapter: Any, images: np.ndarray) -> tuple[str, str]:
    """Completeness of :func:`tfxai.decompose`: exact, else linearised (see the module docstring)."""
    def gap(mode: str) -> tuple[str, str]:
        value = float(np.max(tfxai.decompose(adapter, mode=mode).completeness_gap(images)))
        if not np.isfinite(value):
            return "NAN", f"{mode}: non-finite completeness gap"
        return (f"GAP {value:.1e}" if value > GAP_TOLERANCE else f"{mode} {value:.0e}"), ""

    try:
        return gap("exact")
    except UnsupportedModelError:
        pass
    except TfxaiError as error:
        return f"err:{type(error).__name__}", _first_line(error)
    except Exception as error:  # noqa: BLE001
        return f"CRASH:{type(error).__name__}", "exact: " + _first_line(error) + " @ " + _where(error)
    try:
        return gap("linearize")
    except TfxaiError as error:
        return f"err:{type(error).__name__}", _first_line(error)
    except Exception as error:  # noqa: BLE001
        return f"CRASH:{type(error).__name__}", "linearize: " + _first_line(error) + " @ " + _where(error)


def run_family(name: str, methods: list[str], size: int = 96, num_images: int = 2, seed: int = 0,
               decomposition: bool = True, progress: Callable[[str], None] | None = None) -> dict:
    """Every method of `methods` (and the decomposition) on family `name`.

    Returns ``{"cells": {method or "decompose": cell}, "details": {...}, "seconds": float, "size": int}``.
    A family that cannot be built gives one ``CRASH`` cell per method.
    """
    start = time.perf_counter()
    cells: dict[str, str] = {}
    details: dict[str, str] = {}
    try:
        model, preprocess = build_family(name, size, seed)
    except Exception as error:  # noqa: BLE001
        for method in methods:
            cells[method] = f"CRASH:{type(error).__name__}"
        details["build"] = _first_line(error)
        return {"cells": cells, "details": details, "seconds": time.perf_counter() - start, "size": size}
    size = int(model.inputs[0].shape[1])
    images = random_images(num_images, size, preprocess, seed)
    adapter = tfxai.adapt(model, input_range=input_range_of(preprocess))
    for method in methods:
        t0 = time.perf_counter()
        cells[method], details[method] = classify(
            lambda: _registry.build(method, adapter, quick=True)(images)
        )
        if progress:
            progress(f"  {name:<17} {method:<15} {cells[method]:<28} {time.perf_counter() - t0:6.1f} s")
    if decomposition:
        t0 = time.perf_counter()
        cells["decompose"], details["decompose"] = decompose_cell(adapter, images)
        if progress:
            progress(f"  {name:<17} {'decompose':<15} {cells['decompose']:<28} {time.perf_counter() - t0:6.1f} s")
    del model, adapter
    keras.utils.clear_session()
    return {"cells": cells, "details": details, "seconds": time.perf_counter() - start, "size": size}


def markdown(results: dict[str, dict], methods: list[str], decomposition: bool = True) -> str:
    """The matrix (families x methods) as a markdown table, with the messages of the non-ok cells below."""
    columns = methods + (["decompose"] if decomposition else [])
    lines = [
        "| family | size | " + " | ".join(columns) + " | time (s) |",
        "|---|---|" + "---|" * len(columns) + "---|",
    ]
    for family, result in results.items():
        cells = [result["cells"].get(c, "") for c in columns]
        cells = [f"**{c}**" if is_bad(c) else c for c in cells]
        lines.append(f"| {family} | {result['size']} | " + " | ".join(cells) + f" | {result['seconds']:.0f} |")
    bad = sum(is_bad(c) for r in results.values() for c in r["cells"].values())
    lines += ["", f"Bugs (bold: silent constant/zero/NaN map, crash, completeness gap): {bad} cell(s).", "", "Messages:", ""]
    for family, result in results.items():
        for column, text in result["details"].items():
            if text:
                lines.append(f"- {family} / {column}: `{result['cells'].get(column, '')}` {text}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", default=",".join(FAMILIES), help="comma-separated keras.applications names")
    parser.add_argument("--methods", default="all", help="comma-separated method names, or 'all'")
    parser.add_argument("--size", type=int, default=96, help="input size (raised to a family's minimum)")
    parser.add_argument("--images", type=int, default=2, help="images per family")
    parser.add_argument("--no-decompose", action="store_true", help="skip the decomposition column")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "zoo.md"))
    args = parser.parse_args(argv)
    families = [f.strip() for f in args.families.split(",") if f.strip()]
    methods = _registry.parse(args.methods)
    results: dict[str, dict] = {}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    header = (
        f"# The zoo: every method on every keras.applications family\n\n"
        f"Random weights (biases, BatchNorm gamma/beta randomised; BatchNorm statistics calibrated on random images, then perturbed), {args.images} random images at "
        f"{args.size} px (or the family's minimum), quick settings. Keras {keras.__version__}. "
        f"Command: `python benchmarks/bench_zoo.py {' '.join(argv if argv is not None else sys.argv[1:])}`\n\n"
    )
    for family in families:
        print(f"{family}:", flush=True)
        results[family] = run_family(family, methods, args.size, args.images, decomposition=not args.no_decompose,
                                     progress=lambda line: print(line, flush=True))
        print(f"  {family}: {results[family]['seconds']:.0f} s", flush=True)
        out.write_text(header + markdown(results, methods, not args.no_decompose))  # partial results survive a stop
    table = markdown(results, methods, not args.no_decompose)
    print(table)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
