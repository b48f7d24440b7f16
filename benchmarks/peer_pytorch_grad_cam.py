"""Peer agreement with pytorch-grad-cam (grad-cam 1.5.x) for LayerCAM, HiResCAM and ROAD.

Run from the repository root with tfxai's Python; pytorch-grad-cam runs in its
own environment with torch (``--torch-python``)::

    python benchmarks/peer_pytorch_grad_cam.py --torch-python /work/venv-torch/bin/python

That environment needs ``torch``, ``numpy``, ``scipy``, ``ttach``,
``opencv-python-headless`` and ``grad-cam`` (installed ``--no-deps``);
torchvision, which pytorch-grad-cam imports for helpers that are not used
here, is replaced by an empty stub module.

The tfxai side builds a small random ReLU CNN (tests/models.py ``small_cnn``)
and saves its weights, images and tfxai's results; the torch side rebuilds
the same network in PyTorch (kernels transposed, NHWC flatten order kept) and
runs pytorch-grad-cam. Compared:

* LayerCAM and HiResCAM on ``conv2`` (after its ReLU). pytorch-grad-cam
  returns ``ReLU(cam)`` min-max normalised at the layer's resolution
  (``(m - min) / (max - min + 1e-7)``), then resized bilinearly with cv2; the
  same normalisation is applied to tfxai's layer maps before comparing.
* ROAD's noisy linear imputation with the noise switched off: the authors'
  imputer (SciPy ``spsolve``) against tfxai's conjugate gradients, and the
  MoRF/LeRF logits after imputation (pytorch-grad-cam's ``percentile`` is the
  *kept* percentage; the removed pixel counts are checked to agree).
"""

from __future__ import annotations

import argparse
import json
import sys
import types
from pathlib import Path

import numpy as np

import _peers  # noqa: E402 - benchmarks/_peers.py, beside this script

ROOT = Path(__file__).resolve().parents[1]
KEPT = (30, 60, 80)  # pytorch-grad-cam percentiles (kept); tfxai removes 100 - p percent


def tfxai_side(folder: Path) -> None:
    sys.path.insert(0, str(ROOT))
    import tensorflow as tf

    import tfxai
    from tests import models

    model = models.small_cnn(num_classes=5, softmax=False, seed=4)
    images = np.random.default_rng(0).uniform(size=(4, 16, 16, 3)).astype("float32")
    targets = np.array([0, 1, 2, 3])
    out = {"images": images, "targets": targets}
    for name in ("conv1", "conv2", "head"):
        kernel, bias = model.get_layer(name).get_weights()
        out[f"{name}_kernel"], out[f"{name}_bias"] = kernel, bias
    for cls in (tfxai.LayerCAM, tfxai.HiResCAM):
        out[f"{cls.name}_layer"] = cls(model, "conv2", upsample=False)(images, targets).numpy()
        out[f"{cls.name}_up"] = cls(model, "conv2")(images, targets).numpy()
    cams = np.random.default_rng(1).uniform(size=(4, 16, 16)).astype("float32")
    out["cams"] = cams
    removed = cams >= np.percentile(cams, 50, axis=(1, 2), keepdims=True)
    imputed, residual = tfxai.metrics.linear_imputation(tf.constant(images, tf.float64), tf.constant(removed),
                                                        tolerance=1e-12)
    out["imputed"], out["imputed_residual"] = imputed.numpy(), residual.numpy()
    # pytorch-grad-cam removes the pixels >= np.percentile(cam, kept) (linear interpolation): one pixel more
    # than round((100 - kept) / 100 * H W) for some percentiles; tfxai is given those exact counts.
    counts = [int((cams[0] >= np.percentile(cams[0], p)).sum()) for p in KEPT]
    out["removed_counts"] = np.array(counts)
    result = tfxai.metrics.road(model, images, cams, targets, percentages=[100 * c / (16 * 16) for c in counts],
                                noise=0.0, output="logit", tolerance=1e-7)
    out["road_morf"], out["road_lerf"] = result.morf, result.lerf
    np.savez(folder / "tfxai.npz", **out)


def _stub_torchvision() -> None:
    torchvision = types.ModuleType("torchvision")
    transforms = types.ModuleType("torchvision.transforms")
    functional = types.ModuleType("torchvision.transforms.functional")
    for name in ("Compose", "Normalize", "ToTensor", "Resize"):
        setattr(transforms, name, object)
    functional.resize = None
    transforms.functional = functional
    torchvision.transforms = transforms
    sys.modules.update({"torchvision": torchvision, "torchvision.transforms": transforms,
                        "torchvision.transforms.functional": functional})


def torch_side(folder: Path) -> None:
    _stub_torchvision()
    import torch
    from pytorch_grad_cam import HiResCAM, LayerCAM
    from pytorch_grad_cam.metrics.road import NoisyLinearImputer, ROADLeastRelevantFirst, ROADMostRelevantFirst
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    data = dict(np.load(folder / "tfxai.npz"))

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = torch.nn.Conv2d(3, 6, 3, padding=1)
            self.relu1 = torch.nn.ReLU()
            self.conv2 = torch.nn.Conv2d(6, 8, 3, padding=1)
            self.relu2 = torch.nn.ReLU()
            self.pool = torch.nn.MaxPool2d(2)
            self.head = torch.nn.Linear(8 * 8 * 8, 5)

        def forward(self, x):
            x = self.pool(self.relu2(self.conv2(self.relu1(self.conv1(x)))))
            return self.head(x.permute(0, 2, 3, 1).flatten(1))  # Keras' NHWC flatten order

    net = Net().eval()
    with torch.no_grad():
        for name in ("conv1", "conv2"):
            getattr(net, name).weight.copy_(torch.tensor(data[f"{name}_kernel"]).permute(3, 2, 0, 1))
            getattr(net, name).bias.copy_(torch.tensor(data[f"{name}_bias"]))
        net.head.weight.copy_(torch.tensor(data["head_kernel"]).T)
        net.head.bias.copy_(torch.tensor(data["head_bias"]))
    x = torch.tensor(data["images"]).permute(0, 3, 1, 2).contiguous()
    targets = [ClassifierOutputTarget(int(t)) for t in data["targets"]]
    out = {"torch_version": torch.__version__}
    with torch.no_grad():
        out["logits"] = net(x).numpy()
    for name, cls in (("layercam", LayerCAM), ("hirescam", HiResCAM)):
        with cls(model=net, target_layers=[net.relu2]) as cam:
            out[name] = cam(input_tensor=x, targets=targets)
    imputer = NoisyLinearImputer(noise=0.0)
    cams = data["cams"]
    imputed = []
    for i in range(len(x)):
        present = torch.tensor((cams[i] < np.percentile(cams[i], 50)).astype(np.float32))
        imputed.append(imputer(torch.tensor(data["images"][i], dtype=torch.float32).permute(2, 0, 1), present).numpy())
    out["imputed"] = np.stack(imputed).transpose(0, 2, 3, 1)
    for order, cls in (("morf", ROADMostRelevantFirst), ("lerf", ROADLeastRelevantFirst)):
        scores, removed = [], []
        for kept in KEPT:
            metric = cls(percentile=kept)
            metric.perturbation.imputer.noise = 0.0
            with torch.no_grad():
                scores.append(metric(x, cams, targets, net, return_diff=False))
            masks = cams if order == "morf" else 1 - cams
            removed.append([int((m >= np.percentile(m, kept)).sum()) for m in masks])
        out[f"road_{order}"] = np.stack(scores, axis=1)
        out[f"road_{order}_removed"] = np.array(removed).T
    np.savez(folder / "torch.npz", **out)


def compare(folder: Path) -> dict:
    ours = dict(np.load(folder / "tfxai.npz"))
    theirs = dict(np.load(folder / "torch.npz"))
    report = {"torch": str(theirs["torch_version"])}
    for name in ("layercam", "hirescam"):
        layer = ours[f"{name}_layer"]
        low = layer.min(axis=(1, 2), keepdims=True)
        high = layer.max(axis=(1, 2), keepdims=True)
        expected = (ours[f"{name}_up"] - low) / (high - low + 1e-7)  # resizing commutes with the affine scaling
        report[f"{name}_max_abs_diff(normalised maps in [0, 1])"] = float(np.abs(expected - theirs[name]).max())
    report["road_imputation_max_abs_diff"] = float(np.abs(ours["imputed"] - theirs["imputed"]).max())
    report["road_imputation_tfxai_residual"] = float(ours["imputed_residual"].max())
    count = 16 * 16
    for order in ("morf", "lerf"):
        naive = np.round(np.array([100 - p for p in KEPT]) / 100 * count)
        report[f"road_{order}_removed_counts(pytorch-grad-cam, round((100-p)% HW))"] = [
            theirs[f"road_{order}_removed"][0].tolist(), naive.astype(int).tolist()]
        report[f"road_{order}_removed_counts_agree"] = bool(np.all(theirs[f"road_{order}_removed"] == ours["removed_counts"]))
        report[f"road_{order}_logit_max_abs_diff"] = float(np.abs(ours[f"road_{order}"] - theirs[f"road_{order}"]).max())
    report["road_logit_scale(max |logit|)"] = float(np.abs(theirs["logits"]).max())
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    _peers.add_arguments(parser, "torch", "/work/venv-torch/bin/python")
    report = _peers.run(parser.parse_args(), "torch", __file__, tfxai_side, torch_side, compare)
    if report is not None:
        print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
