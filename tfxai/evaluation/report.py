"""Reports of evaluation results: tables and figures written to a folder."""

from __future__ import annotations

from pathlib import Path

from tfxai.evaluation.results import EvaluationResults


def write_report(results: EvaluationResults, directory: str | Path, title: str = "Evaluation", notes: str = "") -> Path:
    """Write results.{csv,md,json}, curves.png, speed.png and a README.md with the table and settings."""
    directory = results.save(directory)
    settings = "\n".join(f"- {k}: {v}" for k, v in results.settings.items())
    text = (
        f"# {title}\n\n{results.to_markdown()}\n"
        "Mean ± standard error over images. AUCs of the softmax probability of the target.\n\n"
        f"Settings:\n{settings}\n\n![curves](curves.png)\n\n![speed](speed.png)\n"
    )
    if notes:
        text += "\n" + notes + "\n"
    (directory / "README.md").write_text(text)
    return directory
