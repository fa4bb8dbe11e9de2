"""Human-readable figures, one way everywhere (terminal, HTML tables, chart labels)."""

from __future__ import annotations


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
