"""What the ``labkit`` command prints: one line at a time, terminal-safe."""

from __future__ import annotations

import sys
from typing import TextIO

from labkit.units import printable


def say(line: str, file: TextIO | None = None) -> None:
    """Print one line, control characters (a newline too) escaped by :func:`printable`
    (a captured function name can hold terminal escapes), flushed."""
    from labkit.progress import clear

    clear()
    print(printable(line), file=file or sys.stdout, flush=True)
