"""Evaluation of explainers on datasets: streaming runner, loaders, result tables and reports.

    results = tfxai.evaluation.evaluate(model, {"Grad-CAM": tfxai.GradCAM(model)}, dataset)
    results.save("out/")   # results.csv, results.md, results.json, curves.png, speed.png

Every step runs through ``strategy.run`` (pass ``strategy=tf.distribute.MirroredStrategy()``
for every local GPU, or a ``MultiWorkerMirroredStrategy`` on every worker); the
steps are the model runtime's (:meth:`tfxai._runtime.Runtime.step`) and the
metrics are :mod:`tfxai.metrics`' own in-graph cores.
"""

from tfxai.evaluation.data import center_crop, image_folder, preprocessed, read_labels, tfds_dataset
from tfxai.evaluation.report import write_report
from tfxai.evaluation.results import EvaluationResults, MethodResult, PairedDifference
from tfxai.evaluation.runner import METRICS, EvaluationSettings, evaluate

__all__ = [
    "evaluate",
    "EvaluationSettings",
    "METRICS",
    "EvaluationResults",
    "MethodResult",
    "PairedDifference",
    "image_folder",
    "tfds_dataset",
    "center_crop",
    "read_labels",
    "preprocessed",
    "write_report",
]
