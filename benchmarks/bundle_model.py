"""Regenerate the EfficientNet-Lite0 bundle shipped in ``tfxai/models/efficientnet_lite0/``.

    python benchmarks/bundle_model.py [--source ../shared/assets/models/efficientnet_lite0_imagenet.keras]

Reads the course's ``.keras`` file (a plain Keras 3 functional model, see
``../shared/assets/README.md``) and writes, beside the licence and provenance
files that are kept by hand in that folder:

* ``config.json``: the architecture, ``model.to_json()`` (layer names, the
  first ``Rescaling(1/128, offset=-127/128)`` layer, softmax output...);
* ``weights.npz``: every weight under its variable path (``stem_conv/kernel``,
  ``predictions/bias``...), compressed. Convolution and dense kernels (98 % of
  the 4.7 M parameters) are stored as float16; BatchNormalization parameters
  and biases stay float32, so tiny moving means/variances do not underflow.
  :func:`tfxai.models.efficientnet_lite0` loads everything back as float32.

It then rebuilds the model from the bundle with :func:`tfxai.models.efficientnet_lite0`
and prints the bundle's size and the largest probability difference to the
original on random inputs (the accuracy check on the 200 sample photos is
``tests/test_bundled.py``).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import keras
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
ASSETS = Path(os.environ.get("TFXAI_ASSETS", ROOT.parent / "shared" / "assets"))
BUNDLE = ROOT / "tfxai" / "models" / "efficientnet_lite0"

#: Weights whose variable name ends like this are stored as float16; the others stay float32.
FLOAT16_SUFFIXES = ("/kernel", "/depthwise_kernel")


def bundle(model: keras.Model, folder: Path) -> dict[str, int]:
    """Write ``config.json`` and ``weights.npz`` of `model` into `folder`; returns {file name: bytes}."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(model.to_json())
    arrays = {}
    for variable in model.weights:
        value = np.asarray(variable)
        dtype = np.float16 if variable.path.endswith(FLOAT16_SUFFIXES) else np.float32
        arrays[variable.path] = value.astype(dtype)
    if len(arrays) != len(model.weights):
        raise SystemExit("two weights share a variable path; cannot store them by name")
    np.savez_compressed(folder / "weights.npz", **arrays)
    return {name: (folder / name).stat().st_size for name in ("config.json", "weights.npz")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=ASSETS / "models" / "efficientnet_lite0_imagenet.keras")
    args = parser.parse_args()
    if not args.source.is_file():
        raise SystemExit(f"{args.source} not found: pass --source path/to/efficientnet_lite0_imagenet.keras")
    original = keras.saving.load_model(args.source)
    sizes = bundle(original, BUNDLE)
    for name, size in sizes.items():
        print(f"{BUNDLE / name}: {size / 1e6:.2f} MB")

    sys.path.insert(0, str(ROOT))
    from tfxai.models import efficientnet_lite0

    rebuilt = efficientnet_lite0()
    x = np.random.default_rng(0).uniform(0, 255, (8, 224, 224, 3)).astype("float32")
    difference = np.abs(rebuilt.predict(x, verbose=0) - original.predict(x, verbose=0)).max()
    print(f"largest probability difference to the original on 8 random images: {difference:.2e}")


if __name__ == "__main__":
    main()
