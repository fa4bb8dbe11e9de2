"""Parent-side helpers the scenarios' signatures share (they need pandas; the programs don't).

Nothing here is imported by a scenario program: only by ``signature()`` functions, which
run in labkit's own process.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from labkit import artifacts as A
from labkit.errors import CorruptCaptureError
from labkit.safefile import open_capture


def metrics_frame(run: Any) -> pd.DataFrame:
    """The scenario's own JSON lines as a frame, with ``t_s`` on the run's axis."""
    path = run.need(A.METRICS)
    try:
        with open_capture(path, "scenario metrics") as fh:
            df = pd.read_json(fh, lines=True)
    except ValueError as exc:
        raise CorruptCaptureError(f"{path} is not JSON lines ({exc}); re-run the scenario") \
            from None
    if "t_ns" in df:
        df.insert(0, "t_s", (df.pop("t_ns") - run.t0_ns) / 1e9)
    return df


def quarter_growth(df: pd.DataFrame, x: str, y: str) -> float:
    """Mean ``y`` over the last quarter of ``x`` divided by its mean over the first."""
    d = df.dropna(subset=[y])
    lo, hi = d[x].min(), d[x].max()
    span = hi - lo
    first = d[d[x] <= lo + span / 4][y].mean()
    last = d[d[x] >= hi - span / 4][y].mean()
    return float(last / first) if first else float("inf") if last else 1.0


def peak_rss(run: Any) -> float:
    """Peak RSS from the process sampler, else from memray, else the heap samples."""
    if run.has(A.PROC) and not run.proc.empty:
        return float(run.proc.rss_bytes.max())
    if run.has(A.MEMRAY):
        return float(run.memray.memory.rss_bytes.max())
    return float(run.heap.rss_bytes.max())


def growth_during_work(run: Any, df: pd.DataFrame, col: str,
                       until_s: float | None = None) -> float:
    """Peak of ``col`` during the work (up to ``until_s``) minus its value at the baseline.

    The baseline is the last sample between the program's ``baseline`` and ``work`` events
    (the settle pause of :meth:`Metrics.baseline`), so files, threads and memory that the
    interpreter, labkit's tracer and the program's setup hold are not counted as growth,
    and nothing the work did is counted as baseline. A program that announced no baseline
    is measured from its first metrics line."""
    m = metrics_frame(run)
    events = m.get("event", pd.Series(index=m.index, dtype=object))
    marks, starts = m[events == "baseline"].t_s, m[events == "work"].t_s
    if len(marks) and len(starts):
        settle_from, work_from = float(marks.iloc[0]), float(starts.iloc[0])
    else:
        settle_from = work_from = float(m.t_s.min())
    settled = df[(df.t_s >= settle_from) & (df.t_s <= work_from)]
    before = settled if len(settled) else df[df.t_s <= work_from]
    start = before[col].iloc[-1] if len(before) else df[col].iloc[0]
    end = until_s if until_s is not None else float("inf")
    during = df[(df.t_s >= work_from) & (df.t_s <= end)]
    return float(max(during[col].max() if len(during) else start, start) - start)
