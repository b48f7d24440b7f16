"""Evaluation results: per-method sums while streaming, then a table (CSV, Markdown, JSON)."""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tfxai.errors import InvalidInputError

#: Table columns: key, header, format, "higher is better?"
COLUMNS = (
    ("insertion", "Insertion AUC ↑", "{:.4f}"),
    ("deletion", "Deletion AUC ↓", "{:.4f}"),
    ("ins_del", "Ins − Del ↑", "{:.4f}"),
    ("average_drop", "Average Drop % ↓", "{:.2f}"),
    ("increase_in_confidence", "Increase in Conf. % ↑", "{:.2f}"),
    ("road_morf", "ROAD MoRF ↓", "{:.4f}"),
    ("road_lerf", "ROAD LeRF ↑", "{:.4f}"),
    ("road", "ROAD (LeRF − MoRF)/2 ↑", "{:.4f}"),
    ("ms_per_image", "ms / image", "{:.1f}"),
)


class MethodAccumulator:
    """Running sums of one method (constant memory)."""

    def __init__(self, curve_length: int, keep_per_image: bool = False):
        self.keep_per_image = keep_per_image
        self.per_image: dict[str, list] = {}
        self.count = 0
        self.seconds = 0.0
        self.sums: dict[str, float] = {}
        self.squares: dict[str, float] = {}
        self.curves: dict[str, np.ndarray] = {}
        self.curve_length = curve_length
        self.warm = False

    def add(self, count: int, seconds: float, values: dict, curves: dict) -> None:
        self.count += count
        self.seconds += seconds
        for key, value in values.items():
            value = np.asarray(value, np.float64)
            self.sums[key] = self.sums.get(key, 0.0) + float(value.sum())
            self.squares[key] = self.squares.get(key, 0.0) + float((value**2).sum())
            if self.keep_per_image:
                self.per_image.setdefault(key, []).extend(value.reshape(-1).tolist())
        for key, scores in curves.items():
            self.curves[key] = self.curves.get(key, np.zeros(self.curve_length)) + np.asarray(scores).sum(axis=0)

    def add_sums(
        self, count: int, seconds: float, sums: dict, squares: dict, curves: dict, per_image: dict | None = None
    ) -> None:
        """Add sums already reduced over a batch (and over replicas and workers).

        `per_image` (with ``keep_per_image``): ``{"index": (B,) global image
        indices, metric: (B,) values}``; values are put in index order by :meth:`result`.
        """
        self.count += int(count)
        self.seconds += float(seconds)
        for key, value in sums.items():
            self.sums[key] = self.sums.get(key, 0.0) + float(value)
            self.squares[key] = self.squares.get(key, 0.0) + float(squares[key])
        for key, value in curves.items():
            self.curves[key] = self.curves.get(key, np.zeros(self.curve_length)) + np.asarray(value, np.float64)
        if self.keep_per_image and per_image is not None:
            self.per_image.setdefault("__index__", []).extend(np.asarray(per_image["index"]).reshape(-1).tolist())
            for key, value in per_image.items():
                if key != "index":
                    self.per_image.setdefault(key, []).extend(np.asarray(value, np.float64).reshape(-1).tolist())

    def _ordered_per_image(self) -> dict:
        values = dict(self.per_image)
        index = values.pop("__index__", None)
        if index is None:
            return {k: list(v) for k, v in values.items()}
        order = np.argsort(np.asarray(index), kind="stable")
        return {k: np.asarray(v)[order].tolist() for k, v in values.items()}

    def result(self, name: str) -> "MethodResult":
        n = max(self.count, 1)
        means = {k: v / n for k, v in self.sums.items()}
        sems = {}
        for key, mean in means.items():
            var = max(self.squares[key] / n - mean**2, 0.0)
            sems[key] = math.sqrt(var / max(self.count - 1, 1)) if self.count > 1 else float("nan")
        return MethodResult(
            name=name,
            num_images=self.count,
            ms_per_image=1000.0 * self.seconds / n,
            means=means,
            sems=sems,
            curves={k: (v / n).tolist() for k, v in self.curves.items()},
            per_image=self._ordered_per_image(),
        )


@dataclass
class MethodResult:
    """Means (and standard errors of the mean) of every metric for one method.

    ``per_image`` holds every image's value of every metric, in dataset order,
    when the evaluation ran with ``keep_per_image=True`` (else it is empty).
    """

    name: str
    num_images: int
    ms_per_image: float
    means: dict
    sems: dict
    curves: dict = field(default_factory=dict)
    per_image: dict = field(default_factory=dict)

    def value(self, key: str) -> float:
        if key == "ms_per_image":
            return self.ms_per_image
        return self.means.get(key, float("nan"))


@dataclass
class PairedDifference:
    """``first - second`` of one metric over the same images: mean, standard error, share of images where first is larger."""

    first: str
    second: str
    key: str
    num_images: int
    mean: float
    sem: float
    first_larger: float


@dataclass
class EvaluationResults:
    """One row per method; `fractions` are the x-axis of the mean curves."""

    methods: dict
    fractions: Any
    settings: dict

    # ------------------------------------------------------------- tables
    def rows(self) -> list[dict]:
        """One dict per method with every metric, its standard error and ms/image."""
        rows = []
        for result in self.methods.values():
            row: dict[str, Any] = {"method": result.name, "num_images": result.num_images}
            for key, _, _ in COLUMNS:
                row[key] = result.value(key)
                if key in result.sems:
                    row[f"{key}_sem"] = result.sems[key]
            rows.append(row)
        return rows

    def to_csv(self, path: str | Path | None = None) -> str:
        rows = self.rows()
        keys = ["method", "num_images"] + [k for k, _, _ in COLUMNS] + [f"{k}_sem" for k, _, _ in COLUMNS[:-1]]
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=keys, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: row.get(k, "") for k in keys})
        text = buffer.getvalue()
        if path is not None:
            Path(path).write_text(text)
        return text

    def to_markdown(self, sem: bool = True) -> str:
        """A Markdown table (mean ± standard error of the mean over images)."""
        present = [c for c in COLUMNS if any(not math.isnan(r.value(c[0])) for r in self.methods.values())]
        lines = ["| Method | N | " + " | ".join(h for _, h, _ in present) + " |"]
        lines.append("|---|---:|" + "---:|" * len(present))
        for result in self.methods.values():
            cells = []
            for key, _, fmt in present:
                value = result.value(key)
                cell = fmt.format(value)
                if sem and key in result.sems and not math.isnan(result.sems[key]):
                    cell += " ± " + fmt.format(result.sems[key])
                cells.append(cell)
            lines.append(f"| {result.name} | {result.num_images} | " + " | ".join(cells) + " |")
        return "\n".join(lines) + "\n"

    def paired(self, first: str, second: str, key: str = "ins_del") -> "PairedDifference":
        """Per-image difference ``first - second`` of metric `key` on the same images.

        Methods evaluated on the same images are compared far more precisely
        by the mean and standard error of their per-image differences than by
        their separate standard errors. Needs ``evaluate(..., keep_per_image=True)``.
        """
        for name in (first, second):
            if name not in self.methods:
                raise InvalidInputError(f"no method {name!r} in these results; methods: {list(self.methods)}.")
            if key not in self.methods[name].per_image:
                raise InvalidInputError(
                    f"method {name!r} has no per-image values of {key!r}; run evaluate(..., keep_per_image=True)."
                )
        a = np.asarray(self.methods[first].per_image[key], np.float64)
        b = np.asarray(self.methods[second].per_image[key], np.float64)
        if a.shape != b.shape:
            raise InvalidInputError(f"{first!r} has {a.size} images and {second!r} {b.size}; a paired comparison needs the same images.")
        diff = a - b
        sem = float(diff.std(ddof=1) / math.sqrt(diff.size)) if diff.size > 1 else float("nan")
        return PairedDifference(first, second, key, int(diff.size), float(diff.mean()), sem, float((diff > 0).mean()))

    # --------------------------------------------------------- persistence
    def to_json(self) -> str:
        return json.dumps(
            {
                "methods": {k: asdict(v) for k, v in self.methods.items()},
                "fractions": np.asarray(self.fractions).tolist(),
                "settings": self.settings,
            },
            indent=1,
        )

    @classmethod
    def from_json(cls, text: str) -> "EvaluationResults":
        data = json.loads(text)
        methods = {k: MethodResult(**v) for k, v in data["methods"].items()}
        return cls(methods, np.asarray(data["fractions"]), data["settings"])

    def save(self, directory: str | Path, figures: bool = True) -> Path:
        """Write results.csv, results.md, results.json and (optionally) curves.png, speed.png."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.to_csv(directory / "results.csv")
        (directory / "results.md").write_text(self.to_markdown())
        (directory / "results.json").write_text(self.to_json())
        if figures:
            from tfxai.plot import evaluation as plots

            plots.plot_curves(self).savefig(directory / "curves.png", dpi=110, bbox_inches="tight")
            plots.plot_speed(self).savefig(directory / "speed.png", dpi=110, bbox_inches="tight")
        return directory
