"""Evaluation metrics for explanation maps.

* :func:`insertion`, :func:`deletion`, :func:`insertion_minus_deletion`:
  perturbation curves and AUCs (RISE; the T-Grad protocol).
* :func:`average_drop`, :func:`increase_in_confidence`, :func:`confidence_change`:
  Grad-CAM++'s confidence metrics.
* :func:`cascading_randomization`: Adebayo et al.'s sanity check.
* :func:`road`: ROAD (Remove And Debias) MoRF/LeRF curves with noisy linear imputation.
"""

from tfxai.metrics.confidence import (
    ConfidenceChange,
    Score,
    average_drop,
    confidence_change,
    increase_in_confidence,
)
from tfxai.metrics.perturbation import (
    AUC_RULES,
    CurveResult,
    InsertionDeletion,
    curve_auc,
    deletion,
    insertion,
    insertion_minus_deletion,
    pixel_ranks,
    step_schedule,
)
from tfxai.metrics.road import ROADResult, linear_imputation, noisy_linear_imputation, road
from tfxai.metrics.randomization import (
    RandomizationResult,
    cascading_randomization,
    reinitialize_layer,
    spearman,
    ssim,
)

__all__ = [
    "insertion",
    "deletion",
    "insertion_minus_deletion",
    "InsertionDeletion",
    "CurveResult",
    "curve_auc",
    "step_schedule",
    "pixel_ranks",
    "AUC_RULES",
    "average_drop",
    "increase_in_confidence",
    "confidence_change",
    "ConfidenceChange",
    "Score",
    "cascading_randomization",
    "RandomizationResult",
    "reinitialize_layer",
    "spearman",
    "ssim",
    "road",
    "ROADResult",
    "linear_imputation",
    "noisy_linear_imputation",
]
