"""Human-readable figures, one way everywhere (terminal, HTML tables, chart labels)."""

from __future__ import annotations

import math
import re


def plain_number(v: float) -> str:
    """``v`` in plain grouped digits, never in scientific notation: ``1,170``, ``16.7``,
    ``0.3``, ``0.000123`` (3 significant digits below 1,000, trailing zeros dropped)."""
    v = float(v)
    if not math.isfinite(v):
        return "-" if v != v else ("-\u221e" if v < 0 else "\u221e")
    if v == 0:
        return "0"
    if abs(v) >= 1000 or v.is_integer():
        return f"{v:,.0f}"
    digits = max(0, 2 - math.floor(math.log10(abs(v))))
    text = f"{v:,.{digits}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def ratio(a: float, b: float) -> str:
    """``a`` against ``b`` as a ratio label: ``49x``, ``1.4x``, or ``""`` when undefined."""
    if not (math.isfinite(a) and math.isfinite(b)) or a <= 0 or b <= 0:
        return ""
    r = max(a, b) / min(a, b)
    return f"{plain_number(round(r, 1) if r < 10 else round(r))}x"


def human_bytes(v: float) -> str:
    """``1.5 GiB``, ``66.0 MiB``, ``12.0 KiB``, ``512 B``."""
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if abs(v) >= scale:
            return f"{v / scale:,.1f} {unit}"
    return f"{v:,.0f} B"


def human_measure(name: str, v: float) -> str:
    """``v`` as the measure ``name`` reads: a size for ``*bytes*``, a percentage for
    ``*share*`` (a 0-1 fraction), else a plain number (:func:`plain_number`)."""
    if "bytes" in name:
        return human_bytes(float(v))
    if "share" in name:
        return f"{100 * v:.2f}%"
    return plain_number(v)


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
