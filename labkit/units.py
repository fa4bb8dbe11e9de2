"""Human-readable figures, one way everywhere (terminal, HTML tables, chart labels)."""

from __future__ import annotations

import re


def human_bytes(v: float) -> str:
    """``1.5 GiB``, ``66.0 MiB``, ``12.0 KiB``, ``512 B``."""
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if abs(v) >= scale:
            return f"{v / scale:,.1f} {unit}"
    return f"{v:,.0f} B"


def human_measure(name: str, v: float) -> str:
    """``v`` as the measure ``name`` reads: a size for ``*bytes*``, a percentage for
    ``*share*`` (a 0-1 fraction), else a whole number or 3 significant digits."""
    if "bytes" in name:
        return human_bytes(float(v))
    if "share" in name:
        return f"{100 * v:.2f}%"
    return f"{v:,.0f}" if float(v).is_integer() else f"{v:,.3g}"


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
