"""Execute every lecture notebook top to bottom (cwd = notebooks/), and check the assignment's answers.

The notebooks use the EfficientNet-Lite0 model of ../shared/assets (or $TFXAI_IMAGENET_MODEL);
without it they are skipped with the reason. Each cell may take up to 300 s.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import nbclient
import nbformat
import pytest

from tests import models

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
NAMES = sorted(p.name for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
NEEDS_ASSETS = [n for n in NAMES if not n.startswith("07_")]

pytestmark = [pytest.mark.notebooks, pytest.mark.slow]


def execute(name: str, extra_cells: tuple[str, ...] = ()):
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    for source in extra_cells:
        notebook.cells.append(nbformat.v4.new_code_cell(source))
    env_backend = os.environ.get("MPLBACKEND")
    os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    try:
        client = nbclient.NotebookClient(
            notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}
        )
        client.execute()
    finally:
        if env_backend is None:
            os.environ.pop("MPLBACKEND", None)
        else:
            os.environ["MPLBACKEND"] = env_backend
    return notebook


def outputs_text(notebook) -> str:
    parts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream":
                parts.append(output["text"])
            elif "data" in output and "text/plain" in output["data"]:
                parts.append(output["data"]["text/plain"])
    return "\n".join(parts)


def count_images(notebook) -> int:
    return sum("image/png" in o.get("data", {}) for c in notebook.cells for o in c.get("outputs", []))


def test_notebooks_are_committed_without_outputs():
    assert len(NAMES) == 7, NAMES
    for name in NAMES:
        notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
        nbformat.validate(notebook)
        for cell in notebook.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, f"{name} has outputs; rebuild with notebooks/_build.py"


@pytest.mark.parametrize("name", NEEDS_ASSETS)
def test_lecture_notebook_runs(name):
    model_path = Path(os.environ.get("TFXAI_IMAGENET_MODEL", models.REAL_MODEL))
    if not model_path.exists() or not models.SAMPLES.exists():
        pytest.skip(f"needs ../shared/assets (model {model_path} or photos {models.SAMPLES} not found)")
    notebook = execute(name)
    text = outputs_text(notebook)
    assert count_images(notebook) >= 1, f"{name} displayed no figure"
    if name.startswith("01_"):
        assert "test accuracy" in text and "max difference to tfxai.VanillaGradient: 0.0" in text
    if name.startswith("02_"):
        line = next(l for l in text.splitlines() if " -> " in l and "is now" in l)
        before, after = line.split(" -> ")
        assert before.startswith("lesser_panda")  # the model recognises the photo...
        assert not after.startswith("lesser_panda")  # ...and one FGSM step changes the class
        assert "P(gibbon) = 9" in text or "P(gibbon) = 100" in text  # the targeted attack reaches the target
    if name.startswith("05_"):
        gap = float(text.split("gap ")[1].split(")")[0])
        assert gap < 1e-3, text


def test_assignment_answers_are_checked():
    dump = (
        "import json\n"
        "print('RESULTS=' + json.dumps({'gap': completeness_gap, 'delta': f_x - f_baseline,"
        " 'ig_sum': float(student_ig.sum()), 'cam_shape': list(student_cam.shape),"
        " 'cam_max_error': float(np.abs(student_cam - reference_cam).max()),"
        " 'ig_max_error': float(np.abs(student_ig - reference_ig).max())}))"
    )
    notebook = execute("07_assignment.ipynb", (dump,))
    line = [l for l in outputs_text(notebook).splitlines() if l.startswith("RESULTS=")][-1]
    results = json.loads(line[len("RESULTS="):])
    # Completeness of the student's IG: sum IG = F(x) - F(x') within 5% (64 trapezoid steps).
    assert results["gap"] <= 0.05 * abs(results["delta"]) + 1e-3, results
    assert abs(results["delta"]) > 0.1  # the check is not vacuous
    assert results["ig_max_error"] < 1e-3 and results["cam_max_error"] < 1e-3
    assert results["cam_shape"] == [8, 8]  # conv3 of the demo CNN on 32x32 images
    text = outputs_text(notebook)
    for k in (1, 2, 3):
        assert f"Exercise {k} passed" in text
