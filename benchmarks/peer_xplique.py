"""Peer agreement with xplique 2.0 for Occlusion, Guided Backprop, SmoothGrad/SquareGrad/VarGrad and RISE.

Run from the repository root with tfxai's Python; xplique runs in its own
environment (TensorFlow 2.20) given by ``--xplique-python``::

    python benchmarks/peer_xplique.py --xplique-python /work/venv-xplique/bin/python

The tfxai side builds two small random CNNs (tests/models.py), saves them with
the images and tfxai's maps to a temporary folder, then runs this same file in
the xplique environment (``--side xplique``), which loads the models and
computes xplique's maps; the comparison is printed.

What is compared:

* Occlusion (deterministic): xplique sums the score drops of the patches
  covering a pixel, tfxai averages them, so ``xplique == tfxai * coverage``.
* Guided Backprop (deterministic) on the signed per-channel gradients of the
  logit: a model with plain ReLUs (fused, ``ReLU()``, ``Activation('relu')``),
  and a model whose ``ReLU(max_value=6)`` saturates (xplique gates on ``u > 0``
  only, so it lets gradients through saturated ReLU6 units; tfxai does not).
* SmoothGrad, SquareGrad, VarGrad with the *same* noise: xplique's
  ``_perturb_samples`` is replaced by one that adds tfxai's draws, so only the
  statistics (mean, mean of squares, unbiased variance) are compared.
* RISE (different random masks): correlation of the maps with 3000 masks each
  (tfxai ``normalization="masks"``, xplique's normalisation).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

import _peers  # noqa: E402 - benchmarks/_peers.py, beside this script

ROOT = Path(__file__).resolve().parents[1]
NUM_NOISE = 32


def tfxai_side(folder: Path) -> None:
    sys.path.insert(0, str(ROOT))
    import keras
    import tensorflow as tf

    import tfxai
    from tests import models

    images = np.random.default_rng(0).uniform(size=(4, 16, 16, 3)).astype("float32")
    targets = np.array([0, 1, 2, 3])
    cnn = models.small_cnn(num_classes=5, softmax=True, seed=4)  # fused ReLUs, softmax head
    cnn.save(folder / "cnn.keras")
    logits_cnn = models.small_cnn(num_classes=5, softmax=False, seed=4)  # same weights, logits head
    logits_cnn.set_weights(cnn.get_weights())
    logits_cnn.save(folder / "cnn_logits.keras")

    keras.utils.set_random_seed(1)
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(6, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.Conv2D(6, 3, padding="same")(x)
    x = keras.layers.ReLU(name="relu_layer")(x)
    x = keras.layers.Conv2D(6, 3, padding="same")(x)
    x = keras.layers.Activation("relu")(x)
    x = keras.layers.Conv2D(6, 3, padding="same")(x)
    x = keras.layers.ReLU(max_value=6.0, name="relu6")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    relus = keras.Model(inputs, keras.layers.Dense(5)(x), name="relus")
    models.randomize_biases_and_bn(relus, 1, scale=0.5)
    relus.save(folder / "relus.keras")
    saturating = keras.models.clone_model(relus)
    saturating.set_weights([w * (8.0 if w.ndim == 4 else 1.0) for w in relus.get_weights()])
    saturating.save(folder / "saturating.keras")

    out = {"images": images, "targets": targets}
    occlusion = tfxai.Occlusion(cnn, patch_size=4, stride=2)
    out["occlusion"] = occlusion(images, targets).numpy()
    out["coverage"] = occlusion.coverage((16, 16))
    for name, model in (("relus", relus), ("saturating", saturating)):
        out[f"gbp_{name}"] = tfxai.GuidedBackprop(model).attributions(images, targets).numpy()
        probe = keras.Model(model.input, model.get_layer("relu6").input)
        out[f"saturated_{name}"] = float(np.mean(probe(images).numpy() > 6))
    explainers = {kind: tfxai.NoiseTunnel(tfxai.VanillaGradient(cnn), kind=kind, num_samples=NUM_NOISE,
                                          noise_scale=0.2, seed=5) for kind in ("smoothgrad", "squaregrad", "vargrad")}
    for kind, explainer in explainers.items():
        out[kind] = explainer.attributions(images, targets).numpy()
    any_tunnel = explainers["smoothgrad"]
    out["noise"] = np.stack([
        any_tunnel.sigma * tf.random.stateless_normal((16, 16, 3), any_tunnel.runtime.seed(5) + [0, k]).numpy()
        for k in range(NUM_NOISE)
    ])
    out["rise"] = tfxai.RISE(cnn, num_masks=3000, grid_size=4, normalization="masks", seed=3,
                             batch_size=250)(images, targets).numpy()
    np.savez(folder / "tfxai.npz", **out)


def xplique_side(folder: Path) -> None:
    import keras
    import tensorflow as tf
    import xplique
    from xplique.attributions import GuidedBackprop, Occlusion, Rise, SmoothGrad, SquareGrad, VarGrad
    from xplique.attributions.gradient_statistics.gradient_statistic import GradientStatistic

    data = dict(np.load(folder / "tfxai.npz"))
    images, targets = data["images"], data["targets"]
    onehot = tf.one_hot(targets, 5).numpy()
    cnn = keras.saving.load_model(folder / "cnn.keras")
    cnn_logits = keras.saving.load_model(folder / "cnn_logits.keras")
    out = {"xplique_version": xplique.__version__, "tf_version": tf.__version__}

    occ = Occlusion(cnn, patch_size=4, patch_stride=2, occlusion_value=0.0, batch_size=64)
    out["occlusion"] = np.asarray(occ.explain(images, onehot))[..., 0]
    for name in ("relus", "saturating"):
        model = keras.saving.load_model(folder / f"{name}.keras")
        out[f"gbp_{name}"] = np.asarray(GuidedBackprop(model, reducer=None).explain(images, onehot))

    noise = tf.constant(data["noise"])

    def same_noise(inputs, nb_perturbations, _noise):
        repeated = tf.repeat(inputs, repeats=nb_perturbations, axis=0)
        return repeated + tf.tile(noise[:nb_perturbations], [inputs.shape[0], 1, 1, 1])

    GradientStatistic._perturb_samples = staticmethod(same_noise)
    for kind, cls in (("smoothgrad", SmoothGrad), ("squaregrad", SquareGrad), ("vargrad", VarGrad)):
        explainer = cls(cnn, nb_samples=NUM_NOISE, noise=0.2, reducer=None, batch_size=NUM_NOISE * len(images))
        out[kind] = np.asarray(explainer.explain(images, onehot))
    tf.random.set_seed(0)
    rise = Rise(cnn, nb_samples=3000, grid_size=4, preservation_probability=0.5, batch_size=250)
    out["rise"] = np.asarray(rise.explain(images, onehot))[..., 0]
    del cnn_logits
    np.savez(folder / "xplique.npz", **out)


def compare(folder: Path) -> dict:
    ours = dict(np.load(folder / "tfxai.npz"))
    theirs = dict(np.load(folder / "xplique.npz"))

    def rel(a, b):
        return float(np.abs(a - b).max() / np.abs(b).max())

    def corr(a, b):
        return float(np.mean([np.corrcoef(x.ravel(), y.ravel())[0, 1] for x, y in zip(a, b)]))

    report = {
        "xplique": str(theirs["xplique_version"]), "xplique_tensorflow": str(theirs["tf_version"]),
        "occlusion_max_rel_diff(tfxai*coverage vs xplique)": rel(ours["occlusion"] * ours["coverage"], theirs["occlusion"]),
        "occlusion_max_rel_diff(tfxai vs xplique, no coverage)": rel(ours["occlusion"], theirs["occlusion"]),
    }
    for name in ("relus", "saturating"):
        report[f"guided_backprop_{name}_max_rel_diff"] = rel(ours[f"gbp_{name}"], theirs[f"gbp_{name}"])
        report[f"guided_backprop_{name}_relu6_saturated_fraction"] = float(ours[f"saturated_{name}"])
    for kind in ("smoothgrad", "squaregrad", "vargrad"):
        report[f"{kind}_same_noise_max_rel_diff"] = rel(ours[kind], theirs[kind])
    report["vargrad_ratio_if_biased(S-1)/S"] = (NUM_NOISE - 1) / NUM_NOISE
    report["rise_pearson(3000 masks each)"] = corr(ours["rise"], theirs["rise"])
    report["rise_max_rel_diff"] = rel(ours["rise"], theirs["rise"])
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    _peers.add_arguments(parser, "xplique", "/work/venv-xplique/bin/python")
    report = _peers.run(parser.parse_args(), "xplique", __file__, tfxai_side, xplique_side, compare,
                        env={"TF_CPP_MIN_LOG_LEVEL": "3"})
    if report is not None:
        print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
