"""Write the student copy of an assignment notebook: ``python notebooks/make_student.py``.

The assignment (``notebooks/07_assignment.ipynb``) carries its reference answers between nbgrader's
solution markers inside code cells::

    def interpolate(baseline, image, alphas):
        ### BEGIN SOLUTION
        ...
        ### END SOLUTION

The student copy follows nbgrader's ``ClearSolutions`` and ``ClearHiddenTests`` conventions
(nbgrader itself is not needed):

* every region from a ``### BEGIN SOLUTION`` line to its ``### END SOLUTION`` line (both lines
  stripped of surrounding spaces) is replaced by ``# YOUR CODE HERE`` and
  ``raise NotImplementedError()`` at the indentation of the ``BEGIN`` line (Markdown cells: by
  ``YOUR ANSWER HERE``);
* a cell marked as a solution cell (``metadata.nbgrader.solution``) without such a region is
  replaced entirely by that stub;
* regions between ``BEGIN HIDDEN TESTS`` and ``END HIDDEN TESTS`` are removed;
* a solution region outside a solution cell, a hidden-test region outside a grade cell, a nested
  ``BEGIN`` or a missing ``END`` is an error;
* outputs and execution counts are cleared.

Usage::

    python notebooks/make_student.py                       # -> notebooks/student/07_assignment.ipynb
    python notebooks/make_student.py SOURCE.ipynb --out DIR
    python notebooks/run.py student                        # the same

Only the standard library and nbformat are imported (jupytext too when the source is a ``.py``).
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_SOURCE = HERE / "07_assignment.ipynb"
DEFAULT_OUT = HERE / "student"

BEGIN_SOLUTION = "### BEGIN SOLUTION"
END_SOLUTION = "### END SOLUTION"
BEGIN_HIDDEN_TESTS = "BEGIN HIDDEN TESTS"
END_HIDDEN_TESTS = "END HIDDEN TESTS"
CODE_STUB = "# YOUR CODE HERE\nraise NotImplementedError()"
TEXT_STUB = "YOUR ANSWER HERE"


class AssignmentError(ValueError):
    """The notebook's solution or hidden-test markers are malformed."""


def _nbgrader(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def replace_solutions(source: str, stub: str, where: str = "cell") -> tuple[str, bool]:
    """`source` with every solution region replaced by `stub` (indented like its BEGIN line).

    Returns the new source and whether a region was found.
    """
    kept: list[str] = []
    inside = found = False
    for line in source.split("\n"):
        marker = line.strip()
        if marker == BEGIN_SOLUTION:
            if inside:
                raise AssignmentError(f"{where}: nested '{BEGIN_SOLUTION}'")
            inside = found = True
            indent = line[: line.find(BEGIN_SOLUTION)]
            kept.extend(indent + stub_line for stub_line in stub.split("\n"))
        elif marker == END_SOLUTION:
            if not inside:
                raise AssignmentError(f"{where}: '{END_SOLUTION}' without '{BEGIN_SOLUTION}'")
            inside = False
        elif not inside:
            kept.append(line)
    if inside:
        raise AssignmentError(f"{where}: '{BEGIN_SOLUTION}' without '{END_SOLUTION}'")
    return "\n".join(kept), found


def remove_hidden_tests(source: str, where: str = "cell") -> tuple[str, bool]:
    """`source` without its hidden-test regions; returns the new source and whether one was found."""
    kept: list[str] = []
    inside = found = False
    for line in source.split("\n"):
        if BEGIN_HIDDEN_TESTS in line:
            if inside:
                raise AssignmentError(f"{where}: nested '{BEGIN_HIDDEN_TESTS}'")
            inside = found = True
        elif END_HIDDEN_TESTS in line:
            inside = False
        elif not inside:
            kept.append(line)
    if inside:
        raise AssignmentError(f"{where}: '{BEGIN_HIDDEN_TESTS}' without '{END_HIDDEN_TESTS}'")
    return "\n".join(kept), found


def student_copy(notebook):
    """A new notebook: `notebook` with solutions and hidden tests removed and outputs cleared."""
    student = copy.deepcopy(notebook)
    for index, cell in enumerate(student.cells):
        where = f"cell {index}"
        stub = CODE_STUB if cell.cell_type == "code" else TEXT_STUB
        cell.source, replaced = replace_solutions(cell.source, stub, where)
        meta = _nbgrader(cell)
        if replaced and not meta.get("solution", False):
            raise AssignmentError(f"{where}: a solution region in a cell not marked as a solution cell (nbgrader.solution)")
        if meta.get("solution", False) and not replaced:
            cell.source = stub
        cell.source, hidden = remove_hidden_tests(cell.source, where)
        if hidden and not meta.get("grade", False):
            raise AssignmentError(f"{where}: a hidden-test region in a cell not marked as a grade cell (nbgrader.grade)")
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        cell.get("metadata", {}).pop("execution", None)
    student.metadata.pop("celltoolbar", None)
    student.metadata.pop("jupytext", None)  # a standalone notebook, not paired with a .py source
    return student


def read(path: Path):
    """A notebook from an ``.ipynb`` file, or from a jupytext ``.py`` source."""
    if path.suffix == ".py":
        import jupytext

        return jupytext.read(path)
    import nbformat

    return nbformat.read(path, as_version=4)


def write_student_copy(source: Path = DEFAULT_SOURCE, out: Path = DEFAULT_OUT) -> Path:
    """Write the student copy of `source` into the folder `out` (same file name, ``.ipynb``)."""
    import nbformat

    student = student_copy(read(Path(source)))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    target = out / (Path(source).stem + ".ipynb")
    nbformat.write(student, target)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the student copy of an assignment notebook (solutions removed).")
    parser.add_argument("source", nargs="?", default=str(DEFAULT_SOURCE), help="assignment .ipynb or jupytext .py")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="output folder (default: notebooks/student)")
    args = parser.parse_args(argv)
    try:
        target = write_student_copy(Path(args.source), Path(args.out))
    except AssignmentError as error:
        print(f"{args.source}: {error}", file=sys.stderr)
        return 2
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
