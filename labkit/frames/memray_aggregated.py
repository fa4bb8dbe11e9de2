"""memray's aggregated captures (``memray run --aggregate``, ``labkit capture --aggregate``).

memray writes such a file once, when tracking stops, and keeps in it, per call stack, only
what was held at the high-water mark and what was never freed (plus the heap and RSS
snapshots over time). Its reader gives those two views
(``get_high_watermark_allocation_records``, ``get_leaked_allocation_records``) and refuses
every pass that needs the allocation history. This module turns the worker's two views into
the frame :class:`labkit.frames.memray.MemrayCapture` builds its views from, and says what
evidence such a capture cannot give (:data:`MISSING`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

WHY = "aggregated capture: memray keeps, per call stack, only what was held at the " \
      "high-water mark and what was never freed"
MISSING: tuple[dict[str, str], ...] = (
    {"evidence": "growth per call stack over the run",
     "why": f"{WHY}, not when it was allocated; the heap's own timeline remains"},
    {"evidence": "short-lived allocations (churn)",
     "why": f"{WHY}; allocations freed before the peak leave no trace"},
    {"evidence": "totals allocated over the run (memray stats, pprof alloc_*)",
     "why": f"{WHY}; allocations freed before the end are not counted"},
)
UNKNOWN_GROWTH = ("first_bytes", "last_bytes", "growth_bytes", "rising")  # NaN: no history


def is_aggregated(metadata: Any) -> bool:
    """Whether memray's ``metadata`` (memray's own, or a worker's plain copy, whose
    ``file_format`` is the format's name) is that of an aggregated capture."""
    fmt = getattr(metadata, "file_format", None)
    return getattr(fmt, "name", fmt) == "AGGREGATED_ALLOCATIONS"


def merge_views(peak: list[tuple[Any, ...]], leaks: list[tuple[Any, ...]]
                ) -> tuple[list[tuple[Any, ...]], dict[str, Any]]:
    """The worker's two views as one row per call stack: ``(stack, tid, None, hybrid)``
    records (as :meth:`MemrayCapture.native_frames` reads them) and their columns
    ``peak_bytes``, ``peak_count``, ``end_bytes``, ``end_count`` (numpy arrays). Each view
    row is ``(stack, tid, bytes, count, hybrid)``."""
    import numpy as np

    rows: dict[tuple[Any, ...], list[Any]] = {}
    for col, view in ((0, peak), (2, leaks)):
        for stack, tid, nbytes, count, hybrid in view:
            key = tuple(map(tuple, hybrid if hybrid is not None else stack))
            row = rows.setdefault(key, [(stack, tid, None, hybrid), 0, 0, 0, 0])
            row[1 + col] += int(nbytes)
            row[2 + col] += int(count)
    values = list(rows.values())
    cols = {name: np.array([v[i] for v in values], dtype=np.int64)
            for i, name in enumerate(("peak_bytes", "peak_count", "end_bytes", "end_count"), 1)}
    return [v[0] for v in values], cols


def growth_columns(cols: dict[str, Any]) -> dict[str, Any]:
    """The growth columns of :attr:`MemrayCapture.growth` for an aggregated capture: the
    history is unknown (NaN, see :data:`UNKNOWN_GROWTH`), ``increases`` 0."""
    import numpy as np

    n = len(cols["peak_bytes"])
    return {**cols, **{c: np.full(n, np.nan) for c in UNKNOWN_GROWTH},
            "increases": np.zeros(n, dtype=np.int64)}


def held_frame(base: pd.DataFrame, cols: dict[str, Any]) -> pd.DataFrame:
    """``base`` (one row per record, from ``_records_frame``) with the held columns."""
    import numpy as np

    full = growth_columns(cols)
    return base.drop(columns=["bytes", "count"]).assign(record=np.arange(len(base)), **full)
