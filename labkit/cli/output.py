"""What the ``labkit`` command prints: one line at a time, terminal-safe."""

from __future__ import annotations

import sys
from typing import TextIO

_CONTROL = {c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F, *range(0x80, 0xA0)) if c != 0x0A}


def say(line: str, file: TextIO | None = None) -> None:
    """Print one line with control characters escaped (a captured function name can hold
    terminal escapes), flushed."""
    from labkit.progress import clear

    clear()
    print(str(line).translate(_CONTROL), file=file or sys.stdout, flush=True)
