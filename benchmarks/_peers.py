"""The two-sided driver of the peer benchmarks (``benchmarks/peer_*.py``).

tfxai runs in this process and saves weights, inputs and its results to a folder;
the peer runs the same script in its own environment (``--side <peer>``, another
Python with torch or another TensorFlow) and saves its results beside them; the
tfxai side then compares the two.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Callable


def add_arguments(parser: argparse.ArgumentParser, peer: str, python: str) -> None:
    """``--side tfxai|<peer>``, ``--folder`` (default: a new temporary folder) and ``--<peer>-python``."""
    parser.add_argument("--side", choices=("tfxai", peer), default="tfxai")
    parser.add_argument("--folder", default=None)
    parser.add_argument(f"--{peer}-python", default=python, help=f"the Python of the {peer} environment")


def run(args: argparse.Namespace, peer: str, script: str, tfxai_side: Callable[[Path], None],
        peer_side: Callable[[Path], None], compare: Callable[[Path], Any], extra: tuple = (),
        env: dict | None = None) -> Any:
    """On the peer's side run `peer_side` and return None; on tfxai's, run both sides and return `compare`."""
    if args.side == peer:
        peer_side(Path(args.folder))
        return None
    folder = Path(args.folder or tempfile.mkdtemp(prefix="tfxai_peer_"))
    folder.mkdir(parents=True, exist_ok=True)
    tfxai_side(folder)
    python = getattr(args, f"{peer}_python")
    subprocess.run([python, script, "--side", peer, "--folder", str(folder), *extra], check=True,
                   env={**os.environ, **(env or {})})
    return compare(folder)
