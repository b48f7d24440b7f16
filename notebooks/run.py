"""Sync and execute the lecture notebooks: ``python notebooks/run.py``.

Every notebook has its source ``notebooks/NN_name.py`` (jupytext percent format: ``# %%`` code
cells, ``# %% [markdown]`` Markdown cells) and its paired ``notebooks/NN_name.ipynb``, committed
with outputs. This script reads each ``.py`` with jupytext, executes it top to bottom in a fresh
Python kernel (nbclient) with the working directory ``notebooks/`` and this checkout first on
``PYTHONPATH`` (so the kernel imports this checkout's ``tfxai``), and writes the ``.ipynb`` with
its outputs::

    python notebooks/run.py              # every notebook (about 5 minutes on two CPU cores)
    python notebooks/run.py 03 05        # some notebooks, by number or name
    python notebooks/run.py --check      # no execution: fail if an .ipynb's cells differ from its .py
    python notebooks/run.py student      # the assignment's student copy (see make_student.py)
    python notebooks/run.py nbgrader     # `nbgrader validate` (defaults) on the solved and the student copy

Only the standard library, jupytext, nbformat and nbclient are imported here (the kernel imports
tfxai). Outputs are made reproducible: seeds are set in the notebooks, cell ids are numbered,
execution timings are not recorded, and absolute paths of this machine that a warning might print
are replaced by placeholders (reported on stderr), and consecutive printed outputs of a cell are
merged into one.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CELL_TIMEOUT = 600  # seconds per cell
#: Kernel options: C++ log lines (TensorFlow's start-up messages) go to this process's stderr instead of
#: into the notebook, figures are stored at 80 dpi (smaller files; readable on GitHub), quiet kernel log.
KERNEL_ARGUMENTS = [
    "--IPKernelApp.capture_fd_output=False",
    "--InlineBackend.rc=figure.dpi=80",
    "--IPKernelApp.log_level=ERROR",
]
#: Environment variables removed from the kernel's environment: the notebooks need none of them.
UNSET = ("KERAS_HOME", "KERAS_BACKEND", "MPLBACKEND")
UNSET_PREFIXES = ("TFXAI_",)


def sources(names: list[str] | None = None) -> list[Path]:
    """The notebook sources ``NN_name.py`` (all, or those whose file name starts with one of `names`)."""
    paths = sorted(HERE.glob("[0-9][0-9]_*.py"))
    if names:
        chosen = [p for p in paths if any(p.stem.startswith(n) or p.stem == n for n in names)]
        unknown = [n for n in names if not any(p.stem.startswith(n) for p in paths)]
        if unknown:
            raise SystemExit(f"No notebook matches {unknown}; notebooks: {[p.stem for p in paths]}")
        return chosen
    return paths


def read_source(path: Path):
    """The notebook of a percent-format ``.py`` file, with numbered cell ids (stable diffs)."""
    import jupytext

    notebook = jupytext.read(path)
    for index, cell in enumerate(notebook.cells):
        cell["id"] = f"cell-{index:02d}"
    notebook.metadata.setdefault(
        "kernelspec", {"display_name": "Python 3", "language": "python", "name": "python3"}
    )
    return notebook


def cells_of(notebook) -> list[tuple[str, str]]:
    """What pairing compares: the type and source of every cell."""
    return [(cell.cell_type, cell.source) for cell in notebook.cells]


def kernel_env(root: Path | None = ROOT) -> dict[str, str]:
    """The kernel's environment: this process's, minus tfxai/Keras settings, with `root` on PYTHONPATH."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in UNSET and not key.startswith(UNSET_PREFIXES)
    }
    if root is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(root)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env["PYTHONHASHSEED"] = "0"
    return env


def execute(notebook, cwd: Path, env: dict[str, str] | None = None, allow_errors: bool = False):
    """Execute `notebook` in place in a fresh ``python3`` kernel started in `cwd`; returns it.

    The kernel runs with :data:`KERNEL_ARGUMENTS` (TensorFlow's C++ log lines stay out of the
    notebook; figures at 80 dpi).
    """
    import nbclient

    client = nbclient.NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT,
        kernel_name="python3",
        resources={"metadata": {"path": str(cwd)}},
        allow_errors=allow_errors,
        record_timing=False,
        extra_arguments=KERNEL_ARGUMENTS,
    )
    client.execute(env=kernel_env() if env is None else env)
    return notebook


def _placeholders() -> list[tuple[str, str]]:
    pairs = [(str(ROOT), "<repository>"), (sys.prefix, "<python>"), (sys.base_prefix, "<python>")]
    home = os.path.expanduser("~")
    if home not in ("/", "~"):
        pairs.append((home, "~"))
    return sorted({p for p in pairs if len(p[0]) > 1}, key=lambda p: -len(p[0]))


def scrub(notebook) -> list[str]:
    """Replace absolute paths of this machine in text outputs by placeholders; returns what was replaced."""
    replaced = []
    pairs = _placeholders()

    def clean(text: str) -> str:
        for path, placeholder in pairs:
            if path in text:
                replaced.append(path)
                text = text.replace(path, placeholder)
        return text

    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if "text" in output:
                output["text"] = clean(output["text"])
            if output.get("output_type") == "error":
                output["traceback"] = [clean(line) for line in output["traceback"]]
            for key, value in output.get("data", {}).items():
                if key.startswith("text/") and isinstance(value, str):
                    output["data"][key] = clean(value)
    return sorted(set(replaced))


def coalesce_streams(notebook) -> None:
    """Merge consecutive stdout (or stderr) outputs of a cell into one, so how the kernel happened to
    flush its output does not change the file."""
    for cell in notebook.cells:
        merged = []
        for output in cell.get("outputs", []):
            previous = merged[-1] if merged else None
            if (
                output.get("output_type") == "stream"
                and previous is not None
                and previous.get("output_type") == "stream"
                and previous.get("name") == output.get("name")
            ):
                previous["text"] += output["text"]
            else:
                merged.append(output)
        if "outputs" in cell:
            cell["outputs"] = merged


def paired(source: Path) -> Path:
    return source.with_suffix(".ipynb")


def run(source: Path) -> float:
    """Execute one source and write its paired ``.ipynb``; returns the seconds it took."""
    import jupytext

    notebook = read_source(source)
    start = time.perf_counter()
    execute(notebook, HERE)
    seconds = time.perf_counter() - start
    coalesce_streams(notebook)
    replaced = scrub(notebook)
    if replaced:
        print(f"  {source.name}: replaced absolute paths in outputs: {replaced}", file=sys.stderr)
    notebook.metadata.pop("widgets", None)
    jupytext.write(notebook, paired(source))
    return seconds


def check(paths: list[Path]) -> list[str]:
    """Problems of the pairs: a missing ``.ipynb`` or cells that differ from the ``.py``."""
    import nbformat

    problems = []
    for source in paths:
        target = paired(source)
        if not target.exists():
            problems.append(f"{target.name} is missing")
            continue
        if cells_of(nbformat.read(target, as_version=4)) != cells_of(read_source(source)):
            problems.append(f"{target.name} differs from {source.name}")
    return problems


def nbgrader_check(nbgrader: str = "nbgrader", folder: Path | None = None) -> int:
    """Run ``nbgrader validate`` with nbgrader's default settings on the assignment, solved and as a student gets it.

    The solved notebook (the ``.py`` source with its reference answers) must pass every test
    ("Success! Your notebook passes all the tests."); the student copy (``make_student.py``) must
    pass none (``--invert``: "Success! The notebook does not pass any tests."). nbgrader is not a
    requirement of tfxai (it brings JupyterLab and about 55 other packages): pass the path of an
    ``nbgrader`` executable from any environment whose kernel ``python3`` can import this
    checkout's tfxai (this checkout is put first on ``PYTHONPATH``). Returns 0 when both hold.
    """
    import subprocess
    import tempfile

    import jupytext
    import nbformat

    import make_student  # noqa: E402  (notebooks/ is on sys.path when run as a script)

    folder = Path(folder or tempfile.mkdtemp(prefix="tfxai-nbgrader-"))
    (folder / "student").mkdir(parents=True, exist_ok=True)
    solved = jupytext.read(HERE / "07_assignment.py")
    solved.metadata.pop("jupytext", None)
    nbformat.write(solved, folder / "solved.ipynb")
    make_student.write_student_copy(HERE / "07_assignment.py", folder / "student")
    env = kernel_env()
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # as a student's machine: nothing set
    status = 0
    for cwd, command, expected in (
        (folder, [nbgrader, "validate", "solved.ipynb"], "Success! Your notebook passes all the tests."),
        (folder / "student", [nbgrader, "validate", "--invert", "07_assignment.ipynb"],
         "Success! The notebook does not pass any tests."),
    ):
        start = time.perf_counter()
        result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        ok = expected in result.stdout
        print(f"{' '.join(command[1:])}: {'as expected' if ok else 'FAILED'} ({seconds:.0f} s)", flush=True)
        if not ok:
            print(result.stdout[-4000:], file=sys.stderr)
            status = 1
    print(f"copies in {folder}")
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*",
                        help="notebook numbers or names (default: all), 'student', or 'nbgrader [PATH-TO-nbgrader]'")
    parser.add_argument("--check", action="store_true", help="only check that every .ipynb matches its .py")
    args = parser.parse_args(argv)
    if args.names[:1] == ["student"]:
        import make_student  # noqa: E402  (notebooks/ is on sys.path when run as a script)

        return make_student.main(args.names[1:])
    if args.names[:1] == ["nbgrader"]:
        return nbgrader_check(*(args.names[1:2] or ["nbgrader"]))
    paths = sources(args.names)
    if args.check:
        problems = check(paths)
        for problem in problems:
            print(problem, file=sys.stderr)
        if problems:
            print("Run `python notebooks/run.py` to regenerate.", file=sys.stderr)
        return 1 if problems else 0
    import nbclient.exceptions

    total, failed = 0.0, []
    for source in paths:
        print(f"{source.stem} ...", flush=True)
        try:
            seconds = run(source)
        except nbclient.exceptions.CellExecutionError as error:
            failed.append(source.stem)
            print(f"{source.stem}: FAILED, {paired(source).name} left unchanged\n{error}", file=sys.stderr, flush=True)
            continue
        total += seconds
        print(f"{source.stem}: {seconds:.0f} s -> {paired(source).relative_to(ROOT)}", flush=True)
    print(f"{len(paths) - len(failed)} notebooks in {total:.0f} s" + (f"; FAILED: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
