"""Peer agreement with Captum's ``DeepLift`` (captum 0.9) for ``tfxai.DeepLIFT``.

Run from the repository root with tfxai's Python; Captum runs in its own
environment with torch (``--torch-python``)::

    python benchmarks/peer_captum.py --torch-python /tmp/peer-torch/bin/python

The tfxai side builds three small float64 networks with random biases and
randomised BatchNormalization statistics and saves their weights, the images,
the baselines and tfxai's attributions; the torch side rebuilds the same
networks (kernels transposed, NHWC flatten order kept, BatchNorm eps 1e-3 as
Keras) and runs ``captum.attr.DeepLift(net).attribute(x, baselines, target,
return_convergence_delta=True)`` (``multiply_by_inputs=True``, its default:
``(x - x0) * multipliers``, as tfxai). Compared, per network and baseline
(black and a random image per input): the attributions (max absolute and
relative difference), each side's summation delta ``sum A - (s(x) - s(x0))``.

* ``vgg``: Conv-ReLU, Conv-ReLU, MaxPool, Conv-BN-ReLU, MaxPool (overlapping
  3x3/2 windows), Dense-ReLU, Dense. Every nonlinearity has a rule on both
  sides (Captum's ``nn.ReLU``/``nn.MaxPool2d`` hooks); same maps expected.
  Captum's own delta is not zero here (0.01-0.1): its max-pooling hook
  scatters each window's share with ``max_unpool2d``, which *writes* rather
  than adds, so overlapping windows (3x3, stride 2) lose shares; and a
  ``ReLU`` directly before a ``MaxPool2d`` breaks its summation even with
  disjoint windows (Captum issue #1104, open; #1276: the zero-delta fallback
  uses ``grad_input[0]``, the first image's gradient). tfxai's rule routes the
  shares through the max pooling's own gradient (which adds) and sums to the
  logit difference; the maps differ by up to the size of Captum's error.
* ``vgg_bn_pool``: the same rule where Captum's hooks work (Conv-ReLU-BN-MaxPool
  with disjoint 2x2 windows): the same maps up to rounding.
* ``resnet``: a stem, two residual blocks ``ReLU(BN(conv(ReLU(BN(conv x)))) + x)``
  written with torch's ``+`` (a linear op: Captum does not hook it and need not),
  global average pooling, Dense. Every ReLU is its own ``nn.ReLU`` module:
  Captum's hooks are per module, so torchvision's habit of calling one
  ``self.relu`` several times breaks them (documented in Captum).
* ``se``: an EfficientNet-style block (SiLU, Squeeze-Excitation with a
  sigmoid gate and ``*``). Captum has no rule for ``nn.SiLU`` (not in its
  ``SUPPORTED_NON_LINEAR``) nor for the product ``x * gate`` (a torch op, not
  a module): it gives them their plain gradient and its delta is not zero;
  tfxai applies the Rescale rule to SiLU and the exact product rule
  ``m_a = (b + b0)/2``, ``m_b = (a + a0)/2`` and sums to the logit difference.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

import _peers  # noqa: E402 - benchmarks/_peers.py, beside this script

ROOT = Path(__file__).resolve().parents[1]
RESULT = ROOT / "benchmarks" / "results" / "peers" / "captum_deeplift.json"
NETS = ("vgg", "vgg_bn_pool", "resnet", "se")
SIZE = 32


# ----------------------------------------------------------------------------- Keras side
def build_keras(name: str):
    import keras

    from tests import models

    L, d = keras.layers, "float64"
    keras.utils.set_random_seed(NETS.index(name))
    inputs = keras.Input((SIZE, SIZE, 3), dtype=d)
    if name == "vgg":
        x = L.Conv2D(8, 3, padding="same", activation="relu", dtype=d, name="conv1")(inputs)
        x = L.Conv2D(8, 3, padding="same", activation="relu", dtype=d, name="conv2")(x)
        x = L.MaxPooling2D(2, dtype=d, name="pool1")(x)
        x = L.Conv2D(12, 3, padding="same", dtype=d, name="conv3")(x)
        x = L.BatchNormalization(dtype=d, name="bn3")(x)
        x = L.ReLU(dtype=d, name="relu3")(x)
        x = L.MaxPooling2D(3, strides=2, dtype=d, name="pool2")(x)  # 16 -> 7, overlapping windows
        x = L.Flatten(dtype=d)(x)
        x = L.Dense(16, activation="relu", dtype=d, name="fc1")(x)
        outputs = L.Dense(5, dtype=d, name="fc2")(x)
    elif name == "vgg_bn_pool":
        x = inputs
        for i, channels in enumerate((8, 12), start=1):
            x = L.Conv2D(channels, 3, padding="same", activation="relu", dtype=d, name=f"conv{i}")(x)
            x = L.BatchNormalization(dtype=d, name=f"bn{i}")(x)
            x = L.MaxPooling2D(2, dtype=d, name=f"pool{i}")(x)
        x = L.Flatten(dtype=d)(x)
        x = L.Dense(16, activation="relu", dtype=d, name="fc1")(x)
        outputs = L.Dense(5, dtype=d, name="fc2")(x)
    elif name == "resnet":
        x = L.Conv2D(8, 3, padding="same", use_bias=False, dtype=d, name="stem")(inputs)
        x = L.BatchNormalization(dtype=d, name="stem_bn")(x)
        x = L.ReLU(dtype=d, name="stem_relu")(x)
        for b in (1, 2):
            y = L.Conv2D(8, 3, padding="same", use_bias=False, dtype=d, name=f"b{b}_conv1")(x)
            y = L.BatchNormalization(dtype=d, name=f"b{b}_bn1")(y)
            y = L.ReLU(dtype=d, name=f"b{b}_relu1")(y)
            y = L.Conv2D(8, 3, padding="same", use_bias=False, dtype=d, name=f"b{b}_conv2")(y)
            y = L.BatchNormalization(dtype=d, name=f"b{b}_bn2")(y)
            x = L.ReLU(dtype=d, name=f"b{b}_relu2")(L.Add(dtype=d)([x, y]))
        x = L.GlobalAveragePooling2D(dtype=d)(x)
        outputs = L.Dense(5, dtype=d, name="fc")(x)
    else:
        x = L.Conv2D(8, 3, padding="same", use_bias=False, dtype=d, name="stem")(inputs)
        x = L.BatchNormalization(dtype=d, name="stem_bn")(x)
        x = L.Activation("swish", dtype=d, name="stem_silu")(x)
        se = L.GlobalAveragePooling2D(keepdims=True, dtype=d)(x)
        se = L.Conv2D(4, 1, activation="swish", dtype=d, name="se_reduce")(se)
        se = L.Conv2D(8, 1, activation="sigmoid", dtype=d, name="se_expand")(se)
        x = L.Multiply(dtype=d)([x, se])
        x = L.GlobalAveragePooling2D(dtype=d)(x)
        outputs = L.Dense(5, dtype=d, name="fc")(x)
    model = keras.Model(inputs, outputs, name=name)
    return models.randomize_biases_and_bn(model, 10 + NETS.index(name), scale=0.3)


def tfxai_side(folder: Path) -> None:
    sys.path.insert(0, str(ROOT))
    import tfxai

    images = np.random.default_rng(0).uniform(size=(4, SIZE, SIZE, 3))
    random_baselines = np.random.default_rng(1).uniform(size=(4, SIZE, SIZE, 3))
    targets = np.array([0, 1, 2, 3])
    out = {"images": images, "targets": targets, "random_baselines": random_baselines}
    for name in NETS:
        model = build_keras(name)
        for layer in model.layers:
            for weight in layer.weights:
                out[f"{name}/{layer.name}/{weight.name}"] = np.asarray(weight)
        for key, baseline in (("black", "black"), ("random", random_baselines)):
            dl = tfxai.DeepLIFT(model, baseline=baseline)
            attributions = dl.attributions(images, targets).numpy()
            out[f"{name}/{key}/tfxai"] = attributions
            out[f"{name}/{key}/tfxai_delta"] = dl.convergence_delta(images, attributions, targets)
        out[f"{name}/logits"] = model(images).numpy()
    np.savez(folder / "tfxai.npz", **out)


# ----------------------------------------------------------------------------- torch side
def build_torch(name: str, data: dict):
    import torch
    from torch import nn

    torch.set_default_dtype(torch.float64)

    def conv(key, cin, cout, k, bias=True):
        layer = nn.Conv2d(cin, cout, k, padding=k // 2, bias=bias)
        with torch.no_grad():
            layer.weight.copy_(torch.tensor(data[f"{name}/{key}/kernel"]).permute(3, 2, 0, 1))
            if bias:
                layer.bias.copy_(torch.tensor(data[f"{name}/{key}/bias"]))
        return layer

    def bn(key, channels):
        layer = nn.BatchNorm2d(channels, eps=1e-3)
        with torch.no_grad():
            for ours, theirs in (("gamma", "weight"), ("beta", "bias"), ("moving_mean", "running_mean"),
                                 ("moving_variance", "running_var")):
                getattr(layer, theirs).copy_(torch.tensor(data[f"{name}/{key}/{ours}"]))
        return layer

    def dense(key, cin, cout):
        layer = nn.Linear(cin, cout)
        with torch.no_grad():
            layer.weight.copy_(torch.tensor(data[f"{name}/{key}/kernel"]).T)
            layer.bias.copy_(torch.tensor(data[f"{name}/{key}/bias"]))
        return layer

    class VGG(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.relu1 = conv("conv1", 3, 8, 3), nn.ReLU()
            self.conv2, self.relu2 = conv("conv2", 8, 8, 3), nn.ReLU()
            self.pool1 = nn.MaxPool2d(2)
            self.conv3, self.bn3, self.relu3 = conv("conv3", 8, 12, 3), bn("bn3", 12), nn.ReLU()
            self.pool2 = nn.MaxPool2d(3, stride=2)
            self.fc1, self.relu4, self.fc2 = dense("fc1", 12 * 7 * 7, 16), nn.ReLU(), dense("fc2", 16, 5)

        def forward(self, x):
            x = self.pool1(self.relu2(self.conv2(self.relu1(self.conv1(x)))))
            x = self.pool2(self.relu3(self.bn3(self.conv3(x))))
            x = x.permute(0, 2, 3, 1).flatten(1)  # Keras' NHWC flatten order
            return self.fc2(self.relu4(self.fc1(x)))

    class VGGBNPool(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.relu1, self.bn1, self.pool1 = conv("conv1", 3, 8, 3), nn.ReLU(), bn("bn1", 8), nn.MaxPool2d(2)
            self.conv2, self.relu2, self.bn2, self.pool2 = conv("conv2", 8, 12, 3), nn.ReLU(), bn("bn2", 12), nn.MaxPool2d(2)
            self.fc1, self.relu3, self.fc2 = dense("fc1", 12 * 8 * 8, 16), nn.ReLU(), dense("fc2", 16, 5)

        def forward(self, x):
            x = self.pool1(self.bn1(self.relu1(self.conv1(x))))
            x = self.pool2(self.bn2(self.relu2(self.conv2(x))))
            return self.fc2(self.relu3(self.fc1(x.permute(0, 2, 3, 1).flatten(1))))

    class ResNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem, self.stem_bn, self.stem_relu = conv("stem", 3, 8, 3, False), bn("stem_bn", 8), nn.ReLU()
            self.blocks = nn.ModuleList()
            for b in (1, 2):
                self.blocks.append(nn.ModuleDict({
                    "conv1": conv(f"b{b}_conv1", 8, 8, 3, False), "bn1": bn(f"b{b}_bn1", 8), "relu1": nn.ReLU(),
                    "conv2": conv(f"b{b}_conv2", 8, 8, 3, False), "bn2": bn(f"b{b}_bn2", 8), "relu2": nn.ReLU(),
                }))
            self.fc = dense("fc", 8, 5)

        def forward(self, x):
            x = self.stem_relu(self.stem_bn(self.stem(x)))
            for blk in self.blocks:
                y = blk["bn2"](blk["conv2"](blk["relu1"](blk["bn1"](blk["conv1"](x)))))
                x = blk["relu2"](x + y)  # torch `+`: linear, not hooked by Captum (nor needed)
            return self.fc(x.mean(dim=(2, 3)))

    class SE(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem, self.stem_bn, self.stem_silu = conv("stem", 3, 8, 3, False), bn("stem_bn", 8), nn.SiLU()
            self.se_reduce, self.se_silu = conv("se_reduce", 8, 4, 1), nn.SiLU()
            self.se_expand, self.se_sigmoid = conv("se_expand", 4, 8, 1), nn.Sigmoid()
            self.fc = dense("fc", 8, 5)

        def forward(self, x):
            x = self.stem_silu(self.stem_bn(self.stem(x)))
            gate = self.se_sigmoid(self.se_expand(self.se_silu(self.se_reduce(x.mean(dim=(2, 3), keepdim=True)))))
            return self.fc((x * gate).mean(dim=(2, 3)))  # torch `*`: Captum has no rule for it

    return {"vgg": VGG, "vgg_bn_pool": VGGBNPool, "resnet": ResNet, "se": SE}[name]().eval()


def torch_side(folder: Path) -> None:
    import captum
    import torch
    from captum.attr import DeepLift

    data = dict(np.load(folder / "tfxai.npz"))
    out = {"torch_version": torch.__version__, "captum_version": captum.__version__}
    x = torch.tensor(data["images"]).permute(0, 3, 1, 2).contiguous()
    targets = torch.tensor(data["targets"])
    for name in NETS:
        net = build_torch(name, data)
        with torch.no_grad():
            out[f"{name}/logits"] = net(x).numpy()
        for key in ("black", "random"):
            x0 = torch.zeros_like(x) if key == "black" else torch.tensor(data["random_baselines"]).permute(0, 3, 1, 2)
            attributions, delta = DeepLift(net).attribute(x, baselines=x0.contiguous(), target=targets,
                                                          return_convergence_delta=True)
            out[f"{name}/{key}/captum"] = attributions.detach().permute(0, 2, 3, 1).numpy()
            out[f"{name}/{key}/captum_delta"] = delta.detach().numpy()
    np.savez(folder / "torch.npz", **out)


# ----------------------------------------------------------------------------- comparison
def compare(folder: Path) -> dict:
    ours = dict(np.load(folder / "tfxai.npz"))
    theirs = dict(np.load(folder / "torch.npz"))
    report: dict = {"torch": str(theirs["torch_version"]), "captum": str(theirs["captum_version"]), "dtype": "float64"}
    for name in NETS:
        report[f"{name}: logits max abs diff (same network?)"] = float(
            np.abs(ours[f"{name}/logits"] - theirs[f"{name}/logits"]).max())
        for key in ("black", "random"):
            a, b = ours[f"{name}/{key}/tfxai"], theirs[f"{name}/{key}/captum"]
            scale = np.abs(b).max()
            report[f"{name}/{key}: attributions max abs diff"] = float(np.abs(a - b).max())
            report[f"{name}/{key}: attributions max abs diff / max |captum|"] = float(np.abs(a - b).max() / scale)
            report[f"{name}/{key}: tfxai summation delta (max abs)"] = float(np.abs(ours[f"{name}/{key}/tfxai_delta"]).max())
            report[f"{name}/{key}: captum summation delta (max abs)"] = float(np.abs(theirs[f"{name}/{key}/captum_delta"]).max())
            total = np.abs(a.sum(axis=(1, 2, 3))).max()
            report[f"{name}/{key}: max |sum A| (the logit difference)"] = float(total)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    _peers.add_arguments(parser, "torch", "/tmp/peer-torch/bin/python")
    parser.add_argument("--no-write", action="store_true", help=f"do not write {RESULT.relative_to(ROOT)}")
    args = parser.parse_args()
    report = _peers.run(args, "torch", __file__, tfxai_side, torch_side, compare)
    if report is None:
        return
    print(json.dumps(report, indent=2))
    if not args.no_write:
        RESULT.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
