"""Analysis: pure functions over the frames. DataFrames in, DataFrames (or Series) out.

Nothing here reads files or draws; every function is safe to call on an empty frame.
"""

from __future__ import annotations

from typing import Any

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


def diff_sites(a: pd.DataFrame, b: pd.DataFrame, key: list[str],
               values: list[str]) -> pd.DataFrame:
    """Per ``key``, the sum of each of ``values`` in A and B and B - A, largest growth first.

    Columns: the key columns, then ``<v>_a``, ``<v>_b``, ``<v>_delta`` for each value.
    A site present in only one frame counts as 0 in the other.
    """
    ga = a.groupby(key, dropna=False)[values].sum()
    gb = b.groupby(key, dropna=False)[values].sum()
    both = ga.add_suffix("_a").join(gb.add_suffix("_b"), how="outer").fillna(0)
    for v in values:
        both[f"{v}_delta"] = both[f"{v}_b"] - both[f"{v}_a"]
    first = f"{values[0]}_delta"
    both = both.sort_values(first, ascending=False, kind="stable")
    return both.reset_index()[[*key, *(f"{v}_{s}" for v in values for s in ("a", "b", "delta"))]]


def diff_summaries(a: pd.Series, b: pd.Series) -> pd.DataFrame:
    """Figures both runs have: ``a``, ``b``, ``delta`` and ``ratio`` (b / a), by metric."""
    common = [k for k in a.index if k in b.index]
    df = pd.DataFrame({"a": a[common].astype(float), "b": b[common].astype(float)})
    df["delta"] = df["b"] - df["a"]
    df["ratio"] = df["b"] / df["a"].where(df["a"] != 0)
    df.index.name = "metric"
    return df


def allocation_profile(captures: dict[str, Any]) -> pd.DataFrame:
    """Per label (``{"leaky": run.memray, ...}``), in bytes: ``allocated`` over the whole
    capture (as ``memray stats`` counts it), ``short_lived`` (freed before the next
    allocation: memray's temporary allocations) and ``at_peak`` (held at the high-water
    mark), the program's own allocations only for the last two."""
    from labkit.frames.memray import own_allocations

    rows = {label: {"allocated": int(c.summary.total_allocated_bytes),
                    "short_lived": int(own_allocations(c.churn)["bytes"].sum()),
                    "at_peak": int(own_allocations(c.allocations_at_peak)["bytes"].sum())}
            for label, c in captures.items()}
    return pd.DataFrame.from_dict(rows, orient="index")
