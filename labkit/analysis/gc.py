"""The collector's figures: collections per generation, pauses, the share of wall time.

Pure functions over the GC tracer's events; every one is safe on an empty frame.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


class GCSummary(pd.Series):
    """The Series :func:`gc_summary` returns, a type of its own so that a notebook can show
    it as one readable line. Operations on it give plain Series."""

    @property
    def _constructor(self) -> type[pd.Series]:
        return pd.Series

def gc_summary(gc_events: pd.DataFrame, wall_s: float) -> pd.Series:
    """Collections per generation and pause statistics over a run of ``wall_s`` seconds.

    Returns ``collections``, ``gen0``/``gen1``/``gen2``, ``pause_total_ms``, ``pause_p50_ms``,
    ``pause_p99_ms``, ``pause_max_ms``, ``gc_percent`` (of wall time), ``collections_per_s``
    and ``max_collections_per_s`` (busiest one-second window).
    """
    p = gc_events["pause_ms"] if len(gc_events) else pd.Series([], dtype=float)
    per_gen = gc_events["generation"].value_counts() if len(gc_events) else pd.Series(dtype=int)
    total = float(p.sum())
    return GCSummary({
        "collections": len(gc_events),
        "gen0": int(per_gen.get(0, 0)),
        "gen1": int(per_gen.get(1, 0)),
        "gen2": int(per_gen.get(2, 0)),
        "pause_total_ms": total,
        "pause_p50_ms": float(p.quantile(0.5)) if len(p) else 0.0,
        "pause_p99_ms": float(p.quantile(0.99)) if len(p) else 0.0,
        "pause_max_ms": float(p.max()) if len(p) else 0.0,
        "gc_percent": 100.0 * total / 1000.0 / wall_s if wall_s > 0 else 0.0,
        "collections_per_s": len(gc_events) / wall_s if wall_s > 0 else 0.0,
        "max_collections_per_s": max_rate_per_s(gc_events),
        "wall_s": wall_s,
    })


def max_rate_per_s(gc_events: pd.DataFrame) -> int:
    """The largest number of collections that started within any one-second window."""
    if gc_events.empty:
        return 0
    t = gc_events["t_start_ns"].to_numpy()
    ends = np.searchsorted(t, t + 1_000_000_000, side="left")
    return int((ends - np.arange(len(t))).max())


def pauses_by_generation(gc_events: pd.DataFrame) -> pd.DataFrame:
    """Per generation: count, p50, p99, max and total pause (ms)."""
    g = gc_events.groupby("generation")["pause_ms"]
    return pd.DataFrame({
        "count": g.size(),
        "p50_ms": g.quantile(0.5),
        "p99_ms": g.quantile(0.99),
        "max_ms": g.max(),
        "total_ms": g.sum(),
    })
