"""``python -m tfxai``: see :mod:`tfxai.cli`."""

from __future__ import annotations

import sys

from tfxai.cli import main

if __name__ == "__main__":
    sys.exit(main())
