"""Peer agreement with PAIR ``saliency`` (0.2.x) for Guided IG, and a rough timing against IG.

Run from the repository root with tfxai's Python::

    python benchmarks/peer_saliency_guided_ig.py [--saliency-python /tmp/peer-saliency/bin/python] [--timing]

PAIR's ``saliency.core.GuidedIG`` is framework-free NumPy: it calls a
``call_model_function`` for the gradient at each point of its path. Two ways
to run it on tfxai's model:

* in process (preferred): the peer environment's ``site-packages`` is
  appended to ``sys.path`` (same Python; tfxai's own NumPy stays first), and
  the ``call_model_function`` is a TensorFlow gradient of the same Keras model;
* otherwise a subprocess in the peer environment runs PAIR, and every gradient
  it asks for is exchanged through a pipe (``.npy`` bytes on stdin/stdout):
  the points come from PAIR, the gradients from the same Keras model here.

Compared on the same weights, images, baselines and targets (the explained
score is the logit of the target class in both):

* a float64 ReLU CNN (``tests/models.py`` ``small_cnn``, random biases):
  PAIR's path and tfxai's are both float64, so they agree to rounding;
* the same CNN in float32 (tfxai's default dtype), PAIR's defaults and two
  other settings, zero and random-array baselines;
* ``keras.applications.MobileNetV2(weights=None)`` at 64x64 built as the zoo
  does (``bench_zoo.build_family``: random biases, BatchNorm statistics
  calibrated then perturbed, so the random network depends on its input), PAIR's defaults, baseline ``-1`` (tfxai's
  ``"black"`` for inputs preprocessed to ``[-1, 1]``).

Conventions (see the printed table):

* steps, fraction, max_dist: PAIR's ``x_steps=200, fraction=0.25,
  max_dist=0.02`` are tfxai's defaults ``num_steps=200, fraction=0.25,
  max_dist=0.02``;
* baseline: PAIR's default is zeros; tfxai's default ``"black"`` is the low end
  of the model's input range (0 for ``[0, 1]`` inputs, -1 for MobileNetV2's
  ``[-1, 1]``); the comparison passes the same baseline to both;
* score: PAIR explains whatever its ``call_model_function`` differentiates;
  tfxai's ``output="logit"`` (default) or ``"probability"``;
* batching: PAIR explains one image per call; tfxai a batch inside one graph;
* dtype: PAIR's path is float64; tfxai's path, L1 bookkeeping and ranking are
  float64 too, the model sees points in its own dtype, and the attributions
  are returned in the model's dtype (float32 here);
* NumPy 2: saliency 0.2.1 calls ``np.quantile(..., interpolation="lower")``,
  a keyword NumPy 2 removed (TypeError: PAIR's Guided IG does not run at all
  with NumPy >= 2). Its module is given a NumPy whose ``quantile`` maps
  ``interpolation`` to ``method`` (the same option renamed); nothing else changes;
* where PAIR would fail its ``assert gamma > 0`` (rounding leaves the path
  just past the step's L1 target) or loop forever (nothing left to move),
  tfxai ends the step; neither happens on these inputs;
* maps: PAIR's ``VisualizeImageGrayscale`` sums ``|a|`` over channels, clips
  at the 99th percentile and scales to ``[0, 1]``; tfxai's map is the
  unnormalised ``sum_c |a_c|``. Attributions are compared, not maps.

In float32 the two paths can part where two features' ``|gradient|`` are
within float32 rounding of each other: the gradient of a batch of images and
of one image are not bit-identical, so a tie can rank differently and the
paths (hence attributions) differ locally. The table says how often.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULT = ROOT / "benchmarks" / "results" / "peers" / "saliency_guided_ig.json"
PEER_SITE = "/tmp/peer-saliency/lib/python3.11/site-packages"


# ------------------------------------------------------------------ the peer, in process or by subprocess
class _NumpyWithInterpolation:
    """NumPy for PAIR's module: ``np.quantile(..., interpolation='lower')`` as ``method='lower'``.

    saliency 0.2.1 calls ``np.quantile(a, q, interpolation='lower')``; the keyword was deprecated in
    NumPy 1.22 and removed in NumPy 2 (a TypeError). ``method`` is the same option under its new name.
    Only PAIR's ``guided_ig`` module sees this wrapper.
    """

    def __getattr__(self, name):
        return getattr(np, name)

    @staticmethod
    def quantile(a, q, *args, interpolation=None, **kwargs):
        if interpolation is not None:
            kwargs["method"] = interpolation
        return np.quantile(a, q, *args, **kwargs)


def _patch(saliency_guided_ig_module) -> None:
    saliency_guided_ig_module.np = _NumpyWithInterpolation()


def _send(stream, array: np.ndarray) -> None:
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(array), allow_pickle=False)
    data = buffer.getvalue()
    stream.write(len(data).to_bytes(8, "little") + data)
    stream.flush()


def _receive(stream) -> np.ndarray | None:
    header = stream.read(8)
    if len(header) < 8:
        return None
    size = int.from_bytes(header, "little")
    return np.load(io.BytesIO(stream.read(size)), allow_pickle=False)


def peer_side() -> None:
    """Run in the peer environment: jobs in on stdin, PAIR's gradient requests out on stdout."""
    import saliency.core.guided_ig as pair_guided_ig

    saliency = sys.modules["saliency.core"]
    _patch(pair_guided_ig)
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer

    def call_model_function(x, call_model_args=None, expected_keys=None):
        _send(stdout, np.concatenate([[1.0], np.ravel(x)]))  # 1: a gradient request
        return {saliency.INPUT_OUTPUT_GRADIENTS: _receive(stdin).reshape(np.shape(x))}

    while True:
        job = _receive(stdin)
        if job is None:
            return
        shape = tuple(int(v) for v in job[:3])
        steps, fraction, max_dist = int(job[3]), float(job[4]), float(job[5])
        size = int(np.prod(shape))
        x, baseline = job[6:6 + size].reshape(shape), job[6 + size:].reshape(shape)
        result = saliency.GuidedIG().GetMask(x, call_model_function, x_baseline=baseline, x_steps=steps,
                                             fraction=fraction, max_dist=max_dist)
        _send(stdout, np.concatenate([[0.0], np.ravel(result)]))  # 0: the result


class Peer:
    """PAIR's Guided IG on one image: ``peer(x, baseline, gradient, steps, fraction, max_dist)``."""

    def __init__(self, python: str):
        self.mode, self.process = "in-process", None
        try:
            if PEER_SITE not in sys.path:
                sys.path.append(PEER_SITE)
            import saliency.core
            import saliency.core.guided_ig

            _patch(saliency.core.guided_ig)
            self.saliency = saliency.core
            self.version = _version()
        except Exception as error:  # noqa: BLE001 - any import failure: use the subprocess
            self.mode = f"subprocess ({type(error).__name__} in process)"
            self.process = subprocess.Popen([python, __file__, "--side", "peer"], stdin=subprocess.PIPE,
                                            stdout=subprocess.PIPE, env={**os.environ})
            self.version = subprocess.run([python, "-c", "import importlib.metadata as m; print(m.version('saliency'))"],
                                          capture_output=True, text=True).stdout.strip()

    def __call__(self, x, baseline, gradient, steps, fraction, max_dist) -> np.ndarray:
        if self.process is None:
            def call_model_function(batch, call_model_args=None, expected_keys=None):
                return {self.saliency.INPUT_OUTPUT_GRADIENTS: gradient(batch)}

            return self.saliency.GuidedIG().GetMask(x, call_model_function, x_baseline=baseline, x_steps=steps,
                                                    fraction=fraction, max_dist=max_dist)
        job = np.concatenate([np.array(x.shape, float), [steps, fraction, max_dist], np.ravel(x), np.ravel(baseline)])
        _send(self.process.stdin, job.astype(np.float64))
        while True:
            message = _receive(self.process.stdout)
            if message[0] == 0.0:
                return message[1:].reshape(x.shape)
            _send(self.process.stdin, gradient(message[1:].reshape((1, *x.shape))))

    def close(self) -> None:
        if self.process is not None:
            self.process.stdin.close()
            self.process.wait()


def _version() -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version("saliency")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


# ------------------------------------------------------------------ the comparison
def _gradient_fn(adapter, dtype, target: int, compiled: bool = False):
    """PAIR's gradient: d logit_target / d x of the same Keras model (tfxai's adapter strips the softmax).

    Eager by default (PAIR's use); `compiled`: inside a ``tf.function``, as tfxai evaluates it.
    """
    import tensorflow as tf

    def tape_gradient(point):
        with tf.GradientTape() as tape:
            tape.watch(point)
            score = adapter.logits(point)[:, target]
        return tape.gradient(score, point)

    function = tf.function(tape_gradient) if compiled else tape_gradient
    return lambda batch: function(tf.constant(batch, dtype)).numpy().astype(np.float64)


def compare_case(peer: Peer, label: str, model, images, baselines, targets, sensitivity: bool = False,
                 **settings) -> dict:
    import tfxai

    explainer = tfxai.GuidedIG(model, baseline=baselines, output="logit", **settings)
    start = time.perf_counter()
    ours = explainer.attributions(images, targets).numpy().astype(np.float64)
    ours_seconds = time.perf_counter() - start
    arguments = settings["num_steps"], settings["fraction"], settings["max_dist"]
    theirs, peer_seconds = [], 0.0
    for x, x0, target in zip(images, baselines, targets):
        start = time.perf_counter()
        theirs.append(peer(x.astype(np.float64), x0.astype(np.float64),
                           _gradient_fn(explainer.adapter, images.dtype, int(target)), *arguments))
        peer_seconds += time.perf_counter() - start
    theirs = np.stack(theirs)
    difference = np.abs(ours - theirs)
    scale = np.abs(theirs).max(axis=(1, 2, 3), keepdims=True)
    extra = {}
    if sensitivity:
        # float32: the same model's gradient, eager (PAIR's call) and compiled (tfxai's graph), along PAIR's path
        points = []

        def recording(eager, compiled):
            def gradient(batch):
                a, b = eager(batch), compiled(batch)
                points.append(float(np.abs(a - b).max() / max(np.abs(a).max(), 1e-30)))
                return a
            return gradient

        for x, x0, target in zip(images, baselines, targets):
            peer(x.astype(np.float64), x0.astype(np.float64),
                 recording(_gradient_fn(explainer.adapter, images.dtype, int(target)),
                           _gradient_fn(explainer.adapter, images.dtype, int(target), compiled=True)), *arguments)
        extra["path_points_where_eager_and_compiled_gradients_differ_by_>1e-5_rel"] = [
            int(np.sum(np.array(points) > 1e-5)), len(points)]
        extra["eager_vs_compiled_gradient_max_rel_diff_on_the_path"] = float(max(points))
        # PAIR given the compiled gradient, as tfxai computes it
        again = np.stack([
            peer(x.astype(np.float64), x0.astype(np.float64),
                 _gradient_fn(explainer.adapter, images.dtype, int(target), compiled=True), *arguments)
            for x, x0, target in zip(images, baselines, targets)
        ])
        extra["pair_with_compiled_gradients_vs_tfxai_max_rel_diff"] = float(
            (np.abs(again - ours).max(axis=(1, 2, 3)) / scale.ravel()).max())
        extra["pair_with_compiled_vs_eager_gradients_max_rel_diff"] = float(
            (np.abs(again - theirs).max(axis=(1, 2, 3)) / scale.ravel()).max())
    delta = explainer.convergence_delta(images, ours, targets)
    ig = tfxai.IntegratedGradients(explainer.adapter, baseline=baselines, num_steps=settings["num_steps"],
                                   method="riemann_left", output="logit")
    per_image = difference.max(axis=(1, 2, 3)) / scale.ravel()
    return {
        "case": label,
        "dtype": str(images.dtype),
        "settings": settings,
        "images": list(images.shape),
        "max_abs_diff": float(difference.max()),
        "max_rel_diff(to max |a| of the image)": float(per_image.max()),
        "images_agreeing_to_1e-4_rel": int((per_image < 1e-4).sum()),
        "max_abs_attribution": float(np.abs(theirs).max()),
        "features_differing_by_more_than_1e-4_rel": int((difference / scale > 1e-4).sum()),
        "score_difference(logit(x) - logit(x'))": [float(v) for v in ours.sum(axis=(1, 2, 3)) - delta],
        "tfxai_completeness_max_abs_delta": float(np.abs(delta).max()),
        "straight_line_ig_same_steps_completeness_max_abs_delta": float(np.abs(ig.convergence_delta(
            images, ig.attributions(images, targets), targets)).max()),
        # score(x) - score(x') = sum(ours) - delta
        "pair_completeness_max_abs_delta": float(np.abs(theirs.sum(axis=(1, 2, 3)) - ours.sum(axis=(1, 2, 3)) + delta).max()),
        "seconds(tfxai batch, PAIR one by one)": [round(ours_seconds, 2), round(peer_seconds, 2)],
        **extra,
    }


def run_comparison(peer: Peer) -> list[dict]:
    import keras

    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import bench_zoo  # the zoo's builder of random but input-sensitive keras.applications networks
    from tests import models

    rows = []
    rng = np.random.default_rng(0)
    images = rng.uniform(size=(4, 16, 16, 3))
    targets = np.array([0, 1, 2, 3])
    random_baseline = rng.uniform(size=(4, 16, 16, 3))
    defaults = {"num_steps": 200, "fraction": 0.25, "max_dist": 0.02}

    model64 = models.small_cnn((16, 16, 3), num_classes=5, softmax=True, seed=4, dtype="float64")
    rows.append(compare_case(peer, "small CNN float64, PAIR defaults, zero baseline", model64, images,
                             np.zeros_like(images), targets, **defaults))
    rows.append(compare_case(peer, "small CNN float64, fraction 0.1, max_dist 1, random baseline", model64, images,
                             random_baseline, targets, num_steps=64, fraction=0.1, max_dist=1.0))
    keras.utils.clear_session()
    model32 = models.small_cnn((16, 16, 3), num_classes=5, softmax=True, seed=4)
    images32 = images.astype("float32")
    rows.append(compare_case(peer, "small CNN float32, PAIR defaults, zero baseline", model32, images32,
                             np.zeros_like(images32), targets, **defaults))
    rows.append(compare_case(peer, "small CNN float32, fraction 0.5, max_dist 0.1, random baseline", model32, images32,
                             random_baseline.astype("float32"), targets, num_steps=100, fraction=0.5, max_dist=0.1))
    keras.utils.clear_session()
    import tfxai

    mobilenet, preprocess = bench_zoo.build_family("MobileNetV2", 64)
    photos = bench_zoo.random_images(2, 64, preprocess, seed=7)
    adapter = tfxai.adapt(mobilenet, input_range=(-1.0, 1.0))
    rows.append(compare_case(peer, "MobileNetV2 64x64 float32, PAIR defaults, baseline -1 (tfxai 'black')", adapter,
                             photos, np.full_like(photos, -1.0), np.array([3, 7]), sensitivity=True, **defaults))
    keras.utils.clear_session()
    previous = keras.config.floatx(), keras.config.dtype_policy()
    keras.config.set_floatx("float64")
    keras.config.set_dtype_policy("float64")
    try:
        mobilenet64, _ = bench_zoo.build_family("MobileNetV2", 64)
        adapter64 = tfxai.adapt(mobilenet64, input_range=(-1.0, 1.0))
        rows.append(compare_case(peer, "MobileNetV2 64x64 float64, PAIR defaults, baseline -1", adapter64,
                                 photos.astype("float64"), np.full(photos.shape, -1.0), np.array([3, 7]), **defaults))
    finally:
        keras.config.set_floatx(previous[0])
        keras.config.set_dtype_policy(previous[1])
    return rows


# ------------------------------------------------------------------ timing
def run_timing() -> list[dict]:
    import keras

    import tfxai

    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import bench_zoo  # the zoo's builder of random but input-sensitive keras.applications networks
    from tests import models

    out = []
    cases = []
    small = models.small_cnn((32, 32, 3), num_classes=10, seed=0)
    cases.append(("small CNN 32x32", small, np.random.default_rng(0).uniform(size=(4, 32, 32, 3)).astype("float32")))
    keras.utils.clear_session()
    mobilenet, preprocess = bench_zoo.build_family("MobileNetV2", 224)
    adapter = tfxai.adapt(mobilenet, input_range=(-1.0, 1.0))
    cases.append(("MobileNetV2 224x224", adapter, bench_zoo.random_images(4, 224, preprocess, seed=1)))
    for label, model, images in cases:
        targets = [1, 2, 3, 4]
        row = {"model": label, "batch": len(images)}
        for name, explainer in (
            ("ig_32", tfxai.IntegratedGradients(model, num_steps=32, output="logit")),
            ("ig_200_riemann_left", tfxai.IntegratedGradients(model, num_steps=200, method="riemann_left", output="logit")),
            ("guidedig_200(default)", tfxai.GuidedIG(model)),
            ("guidedig_64(command line)", tfxai.GuidedIG(model, num_steps=64)),
        ):
            explainer.slow = True  # compiled on the first call for all; the timed call includes its tracing (seconds)
            start = time.perf_counter()
            explainer(images, targets).numpy()
            row[f"{name}_seconds_per_map"] = round((time.perf_counter() - start) / len(images), 3)
        row["guidedig_200 / ig_32"] = round(row["guidedig_200(default)_seconds_per_map"] / row["ig_32_seconds_per_map"], 1)
        row["guidedig_200 / ig_200"] = round(
            row["guidedig_200(default)_seconds_per_map"] / row["ig_200_riemann_left_seconds_per_map"], 2)
        out.append(row)
        print(json.dumps(row), flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", choices=("tfxai", "peer"), default="tfxai")
    parser.add_argument("--saliency-python", default="/tmp/peer-saliency/bin/python")
    parser.add_argument("--subprocess", action="store_true", help="run PAIR in its own environment even if it imports")
    parser.add_argument("--timing", action="store_true", help="also time Guided IG against IG (minutes on 2 cores)")
    args = parser.parse_args()
    if args.side == "peer":
        peer_side()
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if args.subprocess:
        global PEER_SITE
        PEER_SITE = tempfile.mkdtemp()  # nothing to import there: forces the subprocess
    peer = Peer(args.saliency_python)
    try:
        rows = run_comparison(peer)
    finally:
        peer.close()
    report = {"peer": f"PAIR saliency {peer.version} (saliency.core.GuidedIG)", "mode": peer.mode, "cases": rows}
    for row in rows:
        print(f"{row['case']:<75} max|diff| {row['max_abs_diff']:.2e}  rel {row['max_rel_diff(to max |a| of the image)']:.2e}"
              f"  (max|a| {row['max_abs_attribution']:.2e}; completeness tfxai {row['tfxai_completeness_max_abs_delta']:.2e})")
    if args.timing:
        report["timing"] = run_timing()
    elif RESULT.exists():
        previous = json.loads(RESULT.read_text())
        if "timing" in previous:
            report["timing"] = previous["timing"]
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written {RESULT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
