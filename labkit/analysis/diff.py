"""Runs side by side: per-key sums of A, B and B - A, summary figures with ratios, and the
allocation profile of several captures.

Pure functions over frames; nothing here reads files.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from labkit.frames.memray import own_allocations


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
    rows = {label: {"allocated": int(c.summary.total_allocated_bytes),
                    "short_lived": int(own_allocations(c.churn)["bytes"].sum()),
                    "at_peak": int(own_allocations(c.allocations_at_peak)["bytes"].sum())}
            for label, c in captures.items()}
    return pd.DataFrame.from_dict(rows, orient="index")
