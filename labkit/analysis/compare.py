"""Compare two runs: per allocation site, per py-spy function, and the summary figures.

The equivalent of pprof's ``-diff_base``: B minus A, sorted by growth.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from labkit import artifacts as A
from labkit.analysis.diff import diff_sites, diff_summaries
from labkit.analysis.gc import gc_summary
from labkit.frames import Run, load

SITE = ["function", "file", "line"]


@dataclass
class Comparison:
    """``allocations``, ``functions`` and ``summary`` deltas of run B against run A."""

    a: Run
    b: Run
    allocations: pd.DataFrame = field(default_factory=pd.DataFrame)
    functions: pd.DataFrame = field(default_factory=pd.DataFrame)
    summary: pd.DataFrame = field(default_factory=pd.DataFrame)


def _summaries(run: Run) -> pd.Series:
    parts = []
    if run.has(A.MEMRAY):
        s = run.memray.summary
        parts.append(s[["peak_bytes", "total_allocated_bytes", "allocations", "duration_s"]]
                     .add_prefix("memray_"))
    if run.has(A.GC_EVENTS):
        g = gc_summary(run.gc_events, run.gc_wall_s)
        parts.append(g[["collections", "gen2", "pause_total_ms", "pause_p99_ms", "pause_max_ms",
                        "gc_percent"]].add_prefix("gc_"))
    if run.has(A.PROC) and not run.proc.empty:
        p = run.proc
        parts.append(pd.Series({"proc_peak_rss_bytes": p.rss_bytes.max(),
                                "proc_peak_threads": p.threads.max(),
                                "proc_peak_fds": p.fds.max()}))
    return pd.concat(parts) if parts else pd.Series(dtype=float)


def compare(a: Run | Path | str, b: Run | Path | str) -> Comparison:
    """B against A; a capture that only one run holds is left out of the comparison."""
    ra = a if isinstance(a, Run) else load(a)
    rb = b if isinstance(b, Run) else load(b)
    out = Comparison(ra, rb)
    if ra.has(A.MEMRAY) and rb.has(A.MEMRAY):
        pa, pb = ra.memray.allocations_at_peak, rb.memray.allocations_at_peak
        out.allocations = diff_sites(pa[~pa.in_labkit], pb[~pb.in_labkit], SITE,
                                     ["bytes", "count"])
    if ra.has(A.PYSPY_PROFILE) and rb.has(A.PYSPY_PROFILE):
        out.functions = diff_sites(ra.pyspy.functions, rb.pyspy.functions,
                                   ["function", "file"], ["self_share", "total_share"])
    out.summary = diff_summaries(_summaries(ra), _summaries(rb))
    return out
