"""Peer agreement with PAIR's ``saliency`` package (saliency.core, the authors' NumPy code): Blur IG.

Run from the repository root with tfxai's Python::

    python benchmarks/peer_saliency.py --saliency-python /tmp/peer-saliency/bin/python

PAIR's core methods are NumPy: they call a ``call_model_function(x_batch, call_model_args,
expected_keys)`` for gradients at the points *they* choose, so they need the model. The
saliency environment has no TensorFlow; its ``saliency``, NumPy and SciPy are pure Python or
built for the same CPython as tfxai's venv, so the saliency side runs in this process with the
peer's ``site-packages`` appended to ``sys.path`` (after tfxai's own packages: tfxai's NumPy is
used; the script checks that the peer's NumPy has the same version). ``call_model_function``
then returns the gradients of the same Keras model, the same weights, no conversion. SciPy is
imported here only (tfxai itself never imports it).

Structure: one function per method (``blur_ig`` here; Guided IG goes beside it), each taking
the model, images, targets and the imported ``saliency.core`` and returning rows
``{comparison: figure}``; :func:`main` prints the table and writes
``benchmarks/results/peers/saliency.json``.

Models: the small random ReLU CNN of the tests (``tests/models.py small_cnn``, logits, biases
randomised) in float64 (so differences are the methods', not float32 rounding) and in float32.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "peers" / "saliency.json"


# --------------------------------------------------------------------------- the saliency side
def import_saliency(saliency_python: str):
    """``saliency.core`` imported from the peer environment's site-packages (appended to ``sys.path``)."""
    site = subprocess.run(
        [saliency_python, "-c", "import numpy, saliency, sys; print(saliency.__file__.rsplit('/saliency/', 1)[0]); "
         "print(numpy.__version__)"],
        check=True, capture_output=True, text=True,
    ).stdout.split()
    if site[0] not in sys.path:
        sys.path.append(site[0])  # after tfxai's packages: tfxai's NumPy is the one imported
    import numpy
    import saliency.core as core

    if numpy.__version__ != site[1]:
        raise RuntimeError(f"the peer's NumPy is {site[1]}, tfxai's {numpy.__version__}: run the peer by subprocess")
    return core


def call_model_function(model, target: int):
    """PAIR's NumPy interface on a Keras model: gradients of the target's logit w.r.t. the inputs."""
    import tensorflow as tf

    def call(x_batch, call_model_args=None, expected_keys=None):
        x = tf.constant(np.asarray(x_batch), model.inputs[0].dtype)
        with tf.GradientTape() as tape:
            tape.watch(x)
            score = model(x, training=False)[:, target]
        return {"INPUT_OUTPUT_GRADIENTS": tape.gradient(score, x).numpy()}

    return call


def _relative(ours: np.ndarray, theirs: np.ndarray) -> float:
    return float(np.abs(ours - theirs).max() / np.abs(theirs).max())


# --------------------------------------------------------------------------- methods
def blur_ig(model, images: np.ndarray, targets: np.ndarray, core) -> dict:
    """tfxai.BlurIG against saliency.core.BlurIG (max_sigma=50, 100 steps, grad_step=0.01 unless said)."""
    import tfxai

    rows: dict = {}

    def peer(max_sigma=50.0, steps=100, grad_step=0.01, sqrt=False, batch_size=100):
        start = time.perf_counter()
        out = np.stack([
            core.BlurIG().GetMask(image, call_model_function(model, int(t)), max_sigma=max_sigma, steps=steps,
                                  grad_step=grad_step, sqrt=sqrt, batch_size=batch_size)
            for image, t in zip(images, targets)
        ])
        return out, time.perf_counter() - start

    def ours(**settings):
        explainer = tfxai.BlurIG(model, batch_size=100, **settings)
        explainer.attributions(images[:1], targets[:1])  # trace once
        start = time.perf_counter()
        out = explainer.attributions(images, targets).numpy()
        return out, time.perf_counter() - start, explainer

    theirs, peer_seconds = peer()
    same, our_seconds, fd = ours(grad_step=0.01)
    rows["finite difference (grad_step=0.01): max rel. diff"] = _relative(same, theirs)
    exact, _, explainer = ours()
    rows["exact sigma derivative (tfxai default) vs PAIR: max rel. diff"] = _relative(exact, theirs)
    rows["seconds per image: PAIR / tfxai"] = [peer_seconds / len(images), our_seconds / len(images)]
    # completeness: sum = logit(x) - logit(x blurred at max_sigma), up to the left Riemann sum's error
    drop = explainer.convergence_delta(images, np.zeros_like(exact), targets) * -1.0
    rows["logit(x) - logit(blur(x, 50)): max |.|"] = float(np.abs(drop).max())
    rows["completeness gap / |drop|: PAIR, tfxai grad_step, tfxai exact"] = [
        float(np.abs(theirs.sum(axis=(1, 2, 3)) - drop).max() / np.abs(drop).max()),
        float(np.abs(fd.convergence_delta(images, same, targets)).max() / np.abs(drop).max()),
        float(np.abs(explainer.convergence_delta(images, exact, targets)).max() / np.abs(drop).max()),
    ]
    middle, _, midpoint = ours(method="riemann_middle")
    rows["tfxai riemann_middle: completeness gap / |drop|"] = float(
        np.abs(midpoint.convergence_delta(images, middle, targets)).max() / np.abs(drop).max())
    # sqrt spacing: PAIR's grid sqrt(k max_sigma / m) ends at sqrt(max_sigma); tfxai's max_sigma sqrt(k / m) at max_sigma
    sqrt_ours, _, _ = ours(max_sigma=5.0, num_steps=20, grad_step=0.01, sqrt=True)
    sqrt_theirs, _ = peer(max_sigma=25.0, steps=20, sqrt=True, batch_size=1)
    rows["sqrt=True: tfxai max_sigma=5 vs PAIR max_sigma=25 (batch_size=1): max rel. diff"] = _relative(sqrt_ours, sqrt_theirs)
    sqrt_batched, _ = peer(max_sigma=25.0, steps=20, sqrt=True, batch_size=20)
    rows["sqrt=True: PAIR batch_size=20 vs its batch_size=1 (one step size per batch): max rel. diff"] = _relative(
        sqrt_batched, sqrt_theirs)
    return rows


METHODS = {"Blur IG": blur_ig}


# --------------------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--saliency-python", default="/tmp/peer-saliency/bin/python")
    parser.add_argument("--sizes", default="32,224", help="image sizes (the default max_sigma=50 exceeds 32)")
    parser.add_argument("--images", type=int, default=3, help="images per size (one at sizes above 64)")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    import keras

    from tests import models

    core = import_saliency(args.saliency_python)
    report: dict = {"saliency": getattr(sys.modules.get("saliency"), "__version__", "?")}
    for size in (int(v) for v in args.sizes.split(",")):
        count = args.images if size <= 64 else 1
        images = np.random.default_rng(0).uniform(size=(count, size, size, 3))
        targets = np.arange(count) % 5
        for dtype in ("float64", "float32"):
            keras.utils.clear_session()
            model = models.small_cnn((size, size, 3), num_classes=5, seed=4, dtype=dtype)
            for title, method in METHODS.items():
                report[f"{title} ({dtype}, {count} random {size}x{size} images)"] = method(
                    model, images.astype(dtype), targets, core)
    width = max(len(k) for rows in report.values() if isinstance(rows, dict) for k in rows)
    for title, rows in report.items():
        if not isinstance(rows, dict):
            continue
        print(f"\n{title}")
        for key, value in rows.items():
            shown = ", ".join(f"{v:.3g}" for v in value) if isinstance(value, list) else f"{value:.3g}"
            print(f"  {key:<{width}}  {shown}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
