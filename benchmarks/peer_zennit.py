"""Peer agreement with Zennit (PyTorch) for LRP: every rule and composite on a VGG-style and a ResNet-style net.

Run from the repository root with tfxai's Python; Zennit runs in its own
environment with torch (``--torch-python``)::

    python benchmarks/peer_zennit.py --torch-python /tmp/peer-torch/bin/python

The tfxai side builds two small random networks in float64 (so only the
conventions, not float32 rounding, can differ), randomises every bias and the
BatchNorm statistics (``tests/models.randomize_biases_and_bn``), and saves
weights, images and tfxai's relevance for each rule and composite; the torch
side rebuilds the same networks (kernels transposed, NHWC flatten order kept)
and runs Zennit's ``Gradient`` attributor with ``attr_output = one_hot *
logits`` (tfxai's initial relevance):

* VGG-style: Normalization -> [conv-BN-ReLU] x2 -> maxpool -> conv-BN-ReLU ->
  maxpool -> flatten -> dense-ReLU -> dense.
* ResNet-style: Normalization -> conv-BN-ReLU -> a residual block (conv-BN-ReLU-
  conv-BN + identity, Add, ReLU) -> a downsampling block (1x1 stride-2 conv on
  both paths) -> global average pooling -> dense. The residual sum is Zennit's
  ``Sum`` layer on the stacked paths (what its ResNet canonizer builds), so
  both give it the ``Norm`` rule.

Zennit gets its BatchNorm canonizer (``NamedMergeBatchNorm``, every BN merged
into the convolution before it), ``layer_map_base`` (ReLU Pass, Sum/AvgPool
Norm, BN Pass) and, for a single rule, ``(Convolution, rule), (Linear, rule)``;
``zbox`` is ZBox on the first convolution and Epsilon elsewhere. The
Normalization layer is applied before the torch network (Zennit's relevance is
then at the normalised input; tfxai passes relevance through leading
preprocessing unchanged, so both report the same numbers per pixel), and the
ZBox bounds are the input range [0, 1] normalised per channel on both sides.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

import _peers  # noqa: E402 - benchmarks/_peers.py, beside this script

ROOT = Path(__file__).resolve().parents[1]
#: Keras' default. Zennit's MergeBatchNorm leaves the BN's eps in place when it turns the BN into the
#: "identity" (running_var = 1), so its canonised network computes x / sqrt(1 + eps) there: with eps = 1e-3
#: every merged BN would shrink Zennit's logits and relevance by 0.05 % (1e-5, PyTorch's default: 5e-6). The
#: torch side therefore gets eps = 0 and running_var = var + eps (the same forward, an exact identity after
#: the merge); ``--keep-bn-eps`` keeps eps to show that effect.
BN_EPSILON = 1e-3
MEAN, STD = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
RULES = {  # name: tfxai keywords
    "epsilon": {"rule": "epsilon"},
    "gamma": {"rule": "gamma"},
    "alpha2beta1": {"rule": "alpha_beta"},
    "zplus": {"rule": "zplus"},
    "flat": {"rule": "flat"},
    "wsquare": {"rule": "wsquare"},
    "zbox": {"rule": "zbox"},
    "epsilon_plus_flat": {"composite": "EpsilonPlusFlat"},
    "epsilon_gamma_box": {"composite": "EpsilonGammaBox"},
    "epsilon_alpha2_beta1": {"composite": "EpsilonAlpha2Beta1"},
    "epsilon_plus": {"composite": "EpsilonPlus"},
}
BN_PAIRS = {  # network: [(conv, bn)]
    "vgg": [("c1", "b1"), ("c2", "b2"), ("c3", "b3")],
    "resnet": [("c1", "b1"), ("ca1", "ba1"), ("ca2", "ba2"), ("cb1", "bb1"), ("cb2", "bb2"), ("cs", "bs")],
}


# ---------------------------------------------------------------------- tfxai side
def keras_vgg(keras):
    L = keras.layers
    inp = keras.Input((16, 16, 3))
    x = L.Normalization(mean=MEAN, variance=STD ** 2, name="norm")(inp)
    for conv, bn, filters, pool in (("c1", "b1", 8, False), ("c2", "b2", 8, True), ("c3", "b3", 16, True)):
        x = L.ReLU()(L.BatchNormalization(epsilon=BN_EPSILON, name=bn)(L.Conv2D(filters, 3, padding="same", name=conv)(x)))
        if pool:
            x = L.MaxPooling2D()(x)
    x = L.Dense(32, activation="relu", name="d1")(L.Flatten()(x))
    return keras.Model(inp, L.Dense(10, name="d2")(x), name="vgg")


def keras_resnet(keras):
    L = keras.layers

    def cbr(x, name, bn, filters, size, strides=1, relu=True):
        x = L.BatchNormalization(epsilon=BN_EPSILON, name=bn)(L.Conv2D(filters, size, strides=strides, padding="same", name=name)(x))
        return L.ReLU()(x) if relu else x

    inp = keras.Input((16, 16, 3))
    x = cbr(L.Normalization(mean=MEAN, variance=STD ** 2, name="norm")(inp), "c1", "b1", 8, 3)
    y = cbr(cbr(x, "ca1", "ba1", 8, 3), "ca2", "ba2", 8, 3, relu=False)
    x = L.ReLU()(L.Add()([y, x]))
    y = cbr(cbr(x, "cb1", "bb1", 16, 1, strides=2), "cb2", "bb2", 16, 3, relu=False)
    s = cbr(x, "cs", "bs", 16, 1, strides=2, relu=False)
    x = L.ReLU()(L.Add()([y, s]))
    return keras.Model(inp, L.Dense(10, name="fc")(L.GlobalAveragePooling2D()(x)), name="resnet")


def tfxai_side(folder: Path) -> None:
    sys.path.insert(0, str(ROOT))
    import keras

    keras.config.set_floatx("float64")
    keras.config.set_dtype_policy("float64")
    import tfxai
    from tests import models

    images = np.random.default_rng(0).uniform(size=(4, 16, 16, 3))
    targets = np.array([0, 3, 5, 9])
    out = {"images": images, "targets": targets}
    for net, build in (("vgg", keras_vgg), ("resnet", keras_resnet)):
        keras.utils.set_random_seed(1)
        model = build(keras)
        models.randomize_biases_and_bn(model, seed=2, scale=0.3)
        norm = model.get_layer("norm")
        out[f"{net}_normalised"] = np.asarray(norm(images))
        out[f"{net}_low"] = np.asarray(norm(np.zeros((1, 1, 1, 3))))[0, 0, 0]
        out[f"{net}_high"] = np.asarray(norm(np.ones((1, 1, 1, 3))))[0, 0, 0]
        for layer in model.layers:
            for weight in layer.weights:
                out[f"{net}/{layer.name}/{weight.name}"] = np.asarray(weight)
        out[f"{net}_logits"] = np.asarray(model(images))
        for name, kwargs in RULES.items():
            out[f"{net}_{name}"] = tfxai.LRP(model, **kwargs).attributions(images, targets).numpy()
    np.savez(folder / "tfxai.npz", **out)


# ---------------------------------------------------------------------- torch side
def torch_side(folder: Path, keep_bn_eps: bool = False) -> None:
    import torch
    from zennit.attribution import Gradient
    from zennit.canonizers import NamedMergeBatchNorm
    from zennit.composites import (EpsilonAlpha2Beta1, EpsilonGammaBox, EpsilonPlus, EpsilonPlusFlat,
                                   LayerMapComposite, SpecialFirstLayerMapComposite, layer_map_base)
    from zennit.layer import Sum
    from zennit.rules import AlphaBeta, Epsilon, Flat, Gamma, WSquare, ZBox, ZPlus
    from zennit.types import Convolution

    torch.set_default_dtype(torch.float64)
    data = dict(np.load(folder / "tfxai.npz"))
    nn = torch.nn

    def conv(cin, cout, k, stride=1):
        return nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2)

    class VGG(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1, self.b1, self.r1 = conv(3, 8, 3), nn.BatchNorm2d(8, eps=BN_EPSILON), nn.ReLU()
            self.c2, self.b2, self.r2, self.p2 = conv(8, 8, 3), nn.BatchNorm2d(8, eps=BN_EPSILON), nn.ReLU(), nn.MaxPool2d(2)
            self.c3, self.b3, self.r3, self.p3 = conv(8, 16, 3), nn.BatchNorm2d(16, eps=BN_EPSILON), nn.ReLU(), nn.MaxPool2d(2)
            self.d1, self.r4, self.d2 = nn.Linear(16 * 4 * 4, 32), nn.ReLU(), nn.Linear(32, 10)

        def forward(self, x):
            x = self.p2(self.r2(self.b2(self.c2(self.r1(self.b1(self.c1(x)))))))
            x = self.p3(self.r3(self.b3(self.c3(x))))
            return self.d2(self.r4(self.d1(x.permute(0, 2, 3, 1).flatten(1))))  # Keras' NHWC flatten order

    class ResNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1, self.b1, self.r1 = conv(3, 8, 3), nn.BatchNorm2d(8, eps=BN_EPSILON), nn.ReLU()
            self.ca1, self.ba1, self.ra1 = conv(8, 8, 3), nn.BatchNorm2d(8, eps=BN_EPSILON), nn.ReLU()
            self.ca2, self.ba2 = conv(8, 8, 3), nn.BatchNorm2d(8, eps=BN_EPSILON)
            self.suma, self.ra2 = Sum(), nn.ReLU()
            self.cb1, self.bb1, self.rb1 = conv(8, 16, 1, 2), nn.BatchNorm2d(16, eps=BN_EPSILON), nn.ReLU()
            self.cb2, self.bb2 = conv(16, 16, 3), nn.BatchNorm2d(16, eps=BN_EPSILON)
            self.cs, self.bs = conv(8, 16, 1, 2), nn.BatchNorm2d(16, eps=BN_EPSILON)
            self.sumb, self.rb2 = Sum(), nn.ReLU()
            self.gap, self.fc = nn.AdaptiveAvgPool2d(1), nn.Linear(16, 10)

        def forward(self, x):
            x = self.r1(self.b1(self.c1(x)))
            y = self.ba2(self.ca2(self.ra1(self.ba1(self.ca1(x)))))
            x = self.ra2(self.suma(torch.stack([y, x], dim=-1)))
            y = self.bb2(self.cb2(self.rb1(self.bb1(self.cb1(x)))))
            s = self.bs(self.cs(x))
            x = self.rb2(self.sumb(torch.stack([y, s], dim=-1)))
            return self.fc(self.gap(x).flatten(1))

    def load(net, model):
        with torch.no_grad():
            for name, module in model.named_modules():
                prefix = f"{net}/{name}/"
                if isinstance(module, nn.Conv2d):
                    module.weight.copy_(torch.tensor(data[prefix + "kernel"]).permute(3, 2, 0, 1))
                    module.bias.copy_(torch.tensor(data[prefix + "bias"]))
                elif isinstance(module, nn.Linear):
                    module.weight.copy_(torch.tensor(data[prefix + "kernel"]).T)
                    module.bias.copy_(torch.tensor(data[prefix + "bias"]))
                elif isinstance(module, nn.BatchNorm2d):
                    for ours, theirs in (("gamma", "weight"), ("beta", "bias"), ("moving_mean", "running_mean"),
                                         ("moving_variance", "running_var")):
                        getattr(module, theirs).copy_(torch.tensor(data[prefix + ours]))
                    if not keep_bn_eps:
                        module.running_var.add_(module.eps)
                        module.eps = 0.0
        return model.eval()

    out = {"torch_version": torch.__version__}
    for net, cls in (("vgg", VGG), ("resnet", ResNet)):
        model = load(net, cls())
        x = torch.tensor(data[f"{net}_normalised"]).permute(0, 3, 1, 2).contiguous()
        low = torch.tensor(data[f"{net}_low"]).reshape(1, 3, 1, 1).expand_as(x)
        high = torch.tensor(data[f"{net}_high"]).reshape(1, 3, 1, 1).expand_as(x)
        with torch.no_grad():
            out[f"{net}_logits"] = model(x).numpy()
        eye = torch.eye(10)[torch.tensor(data["targets"])]

        def merge():
            return [NamedMergeBatchNorm([((c,), b) for c, b in BN_PAIRS[net]])]

        def single(rule):
            return LayerMapComposite(layer_map_base() + [(Convolution, rule), (nn.Linear, rule)], canonizers=merge())

        composites = {
            "epsilon": single(Epsilon()),
            "gamma": single(Gamma(0.25)),
            "alpha2beta1": single(AlphaBeta(2, 1)),
            "zplus": single(ZPlus()),
            "flat": single(Flat()),
            "wsquare": single(WSquare()),
            "zbox": SpecialFirstLayerMapComposite(
                layer_map_base() + [(Convolution, Epsilon()), (nn.Linear, Epsilon())],
                [(Convolution, ZBox(low, high))], canonizers=merge()),
            "epsilon_plus_flat": EpsilonPlusFlat(canonizers=merge()),
            "epsilon_gamma_box": EpsilonGammaBox(low=low, high=high, canonizers=merge()),
            "epsilon_alpha2_beta1": EpsilonAlpha2Beta1(canonizers=merge()),
            "epsilon_plus": EpsilonPlus(canonizers=merge()),
        }
        for name, composite in composites.items():
            with Gradient(model, composite) as attributor:
                _, relevance = attributor(x.clone(), lambda output: eye * output.detach())
            out[f"{net}_{name}"] = relevance.permute(0, 2, 3, 1).detach().numpy()
    np.savez(folder / "torch.npz", **out)


def compare(folder: Path) -> dict:
    ours = dict(np.load(folder / "tfxai.npz"))
    theirs = dict(np.load(folder / "torch.npz"))
    report = {"torch": str(theirs["torch_version"]), "dtype": "float64 on both sides"}
    rows = []
    for net in ("vgg", "resnet"):
        logits = float(np.abs(ours[f"{net}_logits"] - theirs[f"{net}_logits"]).max())
        report[f"{net}_logits_max_abs_diff"] = logits
        for name in RULES:
            a, b = ours[f"{net}_{name}"], theirs[f"{net}_{name}"]
            diff = float(np.abs(a - b).max())
            scale = float(np.abs(b).max())
            sums = float(np.abs(a.sum(axis=(1, 2, 3)) - b.sum(axis=(1, 2, 3))).max())
            report[f"{net}_{name}"] = {"max_abs_diff": diff, "max_rel_diff": diff / scale if scale else diff,
                                       "max_abs_relevance": scale, "total_max_abs_diff": sums}
            rows.append((net, name, diff, diff / scale if scale else diff, scale))
    print(f"{'net':8s} {'rule / composite':22s} {'max |diff|':>12s} {'relative':>10s} {'max |R|':>10s}")
    for net, name, diff, rel, scale in rows:
        print(f"{net:8s} {name:22s} {diff:12.3e} {rel:10.2e} {scale:10.3e}")
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    _peers.add_arguments(parser, "torch", "/tmp/peer-torch/bin/python")
    parser.add_argument("--keep-bn-eps", action="store_true", help="give Zennit the BNs' eps (see BN_EPSILON)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "peers" / "zennit.json"))
    args = parser.parse_args()
    report = _peers.run(args, "torch", __file__, tfxai_side, lambda folder: torch_side(folder, args.keep_bn_eps),
                        compare, extra=("--keep-bn-eps",) if args.keep_bn_eps else ())
    if report is None:
        return
    report["zennit_bn_eps"] = "kept (Zennit's merged BN is x / sqrt(1 + eps))" if args.keep_bn_eps else \
        "0, running_var + eps (same forward; exact identity after Zennit's merge)"
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: v for k, v in report.items() if not isinstance(v, dict)}, indent=2))


if __name__ == "__main__":
    main()
