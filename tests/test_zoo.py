"""The zoo (``benchmarks/bench_zoo.py``) as a test: a usable map or a clear message on real architectures.

The slow test runs a few ``keras.applications`` families (random weights,
randomised biases and BatchNorm statistics, small inputs) through the very
function the benchmark uses and fails on any silent constant, all-zero or NaN
map, any crash, and any completeness gap of ``tfxai.decompose``. The fast tests
check the per-cell classification itself.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import bench_zoo  # noqa: E402

from tfxai.errors import InputRangeWarning, InvalidInputError  # noqa: E402

MAPS = np.random.default_rng(0).normal(size=(2, 4, 4))


def _warn_and_return(maps):
    warnings.warn("far outside", InputRangeWarning)
    return maps


def _raise(error):
    raise error


@pytest.mark.parametrize("call, cell", [
    (lambda: MAPS, "ok"),
    (lambda: np.stack([MAPS[0], np.full((4, 4), 0.3)]), "CONST"),  # one image is enough
    (lambda: np.stack([MAPS[0], np.full((4, 4), 0.3) + 1e-9 * MAPS[1]]), "CONST"),  # float rounding of a constant
    (lambda: np.stack([MAPS[0], np.zeros((4, 4))]), "ZERO"),
    (lambda: np.where(MAPS > 1, np.nan, MAPS), "NAN"),
    (lambda: np.where(MAPS > 1, np.inf, MAPS), "NAN"),
    (lambda: _warn_and_return(np.zeros((2, 4, 4))), "warn:InputRangeWarning"),  # a warned degenerate map is not silent
    (lambda: _raise(InvalidInputError("bad")), "err:InvalidInputError"),
    (lambda: _raise(KeyError("x")), "CRASH:KeyError"),
    (lambda: MAPS[..., None], "CRASH:shape"),
])
def test_cells_are_classified(call, cell):
    assert bench_zoo.classify(call)[0] == cell


def test_bad_cells_are_the_silent_ones():
    assert [c for c in ("ok", "warn:X", "err:Y", "exact 1e-07", "CONST", "ZERO", "NAN", "CRASH:TypeError", "GAP 1.0e-01")
            if bench_zoo.is_bad(c)] == ["CONST", "ZERO", "NAN", "CRASH:TypeError", "GAP 1.0e-01"]


def test_markdown_marks_the_bad_cells_and_lists_the_messages():
    results = {"Net": {"cells": {"gradcam": "CONST", "ig": "ok", "decompose": "exact 1e-07"},
                       "details": {"gradcam": "CONST map without a warning", "ig": ""}, "seconds": 3.0, "size": 64}}
    table = bench_zoo.markdown(results, ["gradcam", "ig"])
    assert "| Net | 64 | **CONST** | ok | exact 1e-07 | 3 |" in table
    assert "1 cell(s)" in table and "- Net / gradcam: `CONST` CONST map without a warning" in table


#: Families and methods of the slow test: a depthwise net, a pre-activation ResNet, and the two families
#: whose automatic CAM layer and hard-swish activations broke silently (issue 16).
FAMILIES = ["MobileNetV2", "ResNet50V2", "MobileNet", "MobileNetV3Small"]
METHODS = ["vanilla", "ig", "gradcam", "gradcam++", "eigencam", "scorecam", "fullgrad", "tgrad", "occlusion"]


@pytest.mark.slow
@pytest.mark.parametrize("family", FAMILIES)
def test_zoo_family_has_no_silent_failure(family):
    result = bench_zoo.run_family(family, METHODS, size=64, num_images=2)
    assert set(result["cells"]) == {*METHODS, "decompose"}
    bad = {m: (c, result["details"].get(m, "")) for m, c in result["cells"].items() if bench_zoo.is_bad(c)}
    assert not bad, f"{family}: {bad}"
