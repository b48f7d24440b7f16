"""Explainer classes: ``maps = Method(model, ...)(images, targets=None)``; each registers itself."""

from tfxai.explainers.base import AttributionExplainer, Explainer
# Import order is the registry's order (command line, demo, figures).
from tfxai.explainers.gradients import InputXGradient, SmoothGrad, VanillaGradient
from tfxai.explainers.integrated_gradients import IntegratedGradients
from tfxai.explainers.cam import CAM, EigenCAM, GradCAM, GradCAMPlusPlus, ScoreCAM, XGradCAM
from tfxai.explainers.fullgrad import FullGrad
from tfxai.explainers.tgrad import TGrad
from tfxai.explainers.layercam import HiResCAM, LayerCAM
from tfxai.explainers.ablationcam import AblationCAM
from tfxai.explainers.guided import GuidedBackprop, GuidedGradCAM
from tfxai.explainers.noise import NoiseTunnel, SquareGrad, VarGrad
from tfxai.explainers.perturbation import RISE, Occlusion
from tfxai.explainers.lrp import LRP
from tfxai.explainers.deeplift import DeepLIFT
from tfxai.explainers.expected_gradients import ExpectedGradients
from tfxai.explainers.blur_ig import BlurIG
from tfxai.explainers.guided_ig import GuidedIG

__all__ = [
    "Explainer",
    "AttributionExplainer",
    "VanillaGradient",
    "InputXGradient",
    "SmoothGrad",
    "IntegratedGradients",
    "CAM",
    "GradCAM",
    "GradCAMPlusPlus",
    "XGradCAM",
    "ScoreCAM",
    "EigenCAM",
    "FullGrad",
    "TGrad",
    "LayerCAM",
    "HiResCAM",
    "AblationCAM",
    "GuidedBackprop",
    "GuidedGradCAM",
    "NoiseTunnel",
    "SquareGrad",
    "VarGrad",
    "RISE",
    "Occlusion",
    "LRP",
    "DeepLIFT",
    "ExpectedGradients",
    "BlurIG",
    "GuidedIG",
]
