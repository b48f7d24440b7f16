"""``python -m tfxai``: see :mod:`tfxai.cli`."""

from __future__ import annotations

import os
import sys

from tfxai.cli import main

if __name__ == "__main__":
    code = main()
    if code == 130:
        # Ctrl-C: the finished maps are written; a TensorFlow op may still run in the worker thread and
        # would hold the interpreter's shutdown for minutes, so leave at once
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)
