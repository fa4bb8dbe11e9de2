"""What the ``labkit`` command prints: one line at a time, terminal-safe."""

from __future__ import annotations

import re
import sys
from typing import TextIO

# C0 and C1 controls (newline included: one say() is one line), DEL, and the Unicode line
# separators and bidirectional overrides that can make a line look like another
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match[str]) -> str:
    c = ord(match.group())
    return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"


def printable(text: object) -> str:
    """``text`` with every control character escaped as ``\\xNN`` (``\\uNNNN``): a value
    from a capture (a function, file or thread name, a label, a path) can then neither move
    the cursor nor start a line of its own."""
    return _UNSAFE.sub(_escape, str(text))


def say(line: str, file: TextIO | None = None) -> None:
    """Print one line, control characters (a newline too) escaped by :func:`printable`
    (a captured function name can hold terminal escapes), flushed."""
    from labkit.progress import clear

    clear()
    print(printable(line), file=file or sys.stdout, flush=True)
