"""Postmortem: a user's own captures (any subset) loaded and turned into ranked suspects.

Inputs are loose files from a real incident: a memray capture, a py-spy speedscope
profile, a py-spy dump, a GC trace (labkit's ``gc_events.bin`` or a run directory holding
one) and process samples (``proc.csv``). :func:`load_evidence` checks every one up front,
so a bad file fails with one line before any report is built.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from labkit import artifacts as A
from labkit.errors import InputError

MB = 1024 * 1024


@dataclass
class Evidence:
    """The loaded captures; any may be None."""

    memray: Any = None
    pyspy: Any = None
    gc_events: pd.DataFrame | None = None
    heap: pd.DataFrame | None = None
    proc: pd.DataFrame | None = None
    origins: Any = None
    sources: dict[str, str] | None = None


def _existing(path: str | Path | None, what: str) -> Path | None:
    if path in (None, ""):
        return None
    p = Path(path)
    if not p.exists():
        raise InputError(f"{what} {p} not found; check the path")
    return p


def load_evidence(memray: str | Path | None = None, pyspy: str | Path | None = None,
                  dump: str | Path | None = None, gc: str | Path | None = None,
                  proc: str | Path | None = None, run: str | Path | None = None) -> Evidence:
    """Load and check each given capture; raises a one-line LabkitError on a bad one.

    ``run``, a labkit run directory (verified first), supplies every capture it holds that
    is not given as a file, and the origins of its threads and fds."""
    from labkit.frames.gctrace import load_gc_events, load_heap
    from labkit.frames.memray import MemrayCapture
    from labkit.frames.proc import load_proc
    from labkit.frames.pyspy import PySpyCapture

    ev = Evidence(sources={})
    if run not in (None, ""):
        from labkit.frames import load

        r = load(run)
        memray = memray or r.path_of(A.MEMRAY)
        pyspy = pyspy or r.path_of(A.PYSPY_PROFILE)
        dump = dump or r.path_of(A.PYSPY_DUMP)
        gc = gc or (r.path if r.has(A.GC_EVENTS) else None)
        proc = proc or r.path_of(A.PROC)
        if r.has(A.ORIGINS):
            ev.origins = r.origins
            ev.sources["origins"] = str(r.need(A.ORIGINS))
    if (p := _existing(memray, "memray capture")) is not None:
        ev.memray = MemrayCapture(p, stats_in_background=True)
        ev.sources["memray"] = str(p)
    sp, dp = _existing(pyspy, "py-spy profile"), _existing(dump, "py-spy dump")
    if sp is not None or dp is not None:
        ev.pyspy = PySpyCapture(speedscope=sp, dump=dp)
        if sp is not None:
            _ = ev.pyspy.samples
            ev.sources["pyspy"] = str(sp)
        if dp is not None:
            _ = ev.pyspy.threads
            ev.sources["dump"] = str(dp)
    if (p := _existing(gc, "GC trace")) is not None:
        if p.is_dir():
            from labkit.frames import load

            run = load(p)
            ev.gc_events, ev.heap = run.gc_events, run.heap
        else:
            origin = None
            ev.gc_events = load_gc_events(p, 0)
            if len(ev.gc_events):
                origin = int(ev.gc_events.t_start_ns.iloc[0])
                ev.gc_events = load_gc_events(p, origin)
            heap = next((h for h in (p.with_name(A.GC_HEAP.name),
                                     p.with_name(A.GC_HEAP.name + ".gz"))
                         if h.exists()), None)
            if heap is not None and origin is not None:
                ev.heap = load_heap(heap, origin)
        ev.sources["gc"] = str(p)
    if (p := _existing(proc, "process samples")) is not None:
        df = load_proc(p, 0)
        ev.proc = load_proc(p, int(df.t_s.iloc[0] * 1e9)) if len(df) else df
        ev.sources["proc"] = str(p)
    if not ev.sources:
        raise InputError("no capture given; pass a run directory, or at least one of "
                         "--memray, --pyspy, --dump, --gc, --proc")
    return ev


def slope_per_s(df: pd.DataFrame, col: str) -> float:
    """Least-squares growth of ``col`` per second over the second half of ``df``."""
    d = df[df.t_s >= df.t_s.min() + (df.t_s.max() - df.t_s.min()) / 2]
    if len(d) < 3 or d.t_s.nunique() < 2:
        return 0.0
    return float(np.polyfit(d.t_s.to_numpy(float), d[col].to_numpy(float), 1)[0])


def rise_to_peak(df: pd.DataFrame, col: str) -> dict[str, float] | None:
    """How far ``col`` rose from its first sample to its peak, and how fast."""
    if df.empty:
        return None
    i = int(df[col].to_numpy().argmax())
    start, peak = float(df[col].iloc[0]), float(df[col].iloc[i])
    return {"start": start, "peak": peak, "rise": peak - start,
            "seconds": float(df.t_s.iloc[i] - df.t_s.iloc[0])}


def _code_name(function: str, file: str, line: int) -> str:
    return f"{function} ({Path(file).name}:{line})"


def _origin_rows(origins: Any) -> list[tuple[str, str, str, float]]:
    """Code that started threads still alive, or opened fds still open, at the end."""
    rows = []
    alive = origins.threads[origins.threads.alive]
    for (fn, file, line), g in alive.groupby(["function", "file", "line"], sort=False):
        if fn and len(g) >= 5:
            names = sorted(set(g["name"].str.replace(r"[-_]?\d+$", "", regex=True)))
            rows.append(("threads started here", _code_name(fn, file, line),
                         f"{len(g):,} of the {len(alive):,} threads alive at the end were "
                         f"started here (named {', '.join(names[:3])}); stack "
                         f"{g['stack'].iloc[0][:160]}", min(1.0, 0.5 + len(g) / (2 * len(alive)))))
    fds = origins.fds
    for (kind, fn, file, line), g in fds.groupby(["kind", "function", "file", "line"],
                                                 sort=False):
        if fn and len(g) >= 5:
            rows.append(("fds opened here", _code_name(fn, file, line),
                         f"{len(g):,} of the {len(fds):,} fds open at the end are {kind}s "
                         f"opened here; stack {g['stack'].iloc[0][:160]}",
                         min(1.0, 0.5 + len(g) / (2 * len(fds)))))
    return rows


def suspects(ev: Evidence) -> pd.DataFrame:
    """Ranked findings: ``kind``, ``suspect``, ``evidence``, ``score`` (0-1, higher first)."""
    rows: list[tuple[str, str, str, float]] = []
    if ev.memray is not None:
        peak = ev.memray.allocations_at_peak
        peak = peak[~peak.in_labkit]
        total = max(1, int(ev.memray.summary.peak_bytes))
        for r in peak.head(5).itertuples():
            rows.append(("allocation site at peak", f"{r.function} ({Path(r.file).name}:{r.line})",
                         f"{r.bytes / MB:.1f} MiB in {r.count:,} blocks held at the peak; "
                         f"stack {r.stack[:120]}", r.bytes / total))
        mem = ev.memray.memory
        growth = slope_per_s(mem, "heap_bytes")
        if growth > 0.5 * MB:
            rows.append(("memory growth", "heap keeps growing",
                         f"{growth / MB:.1f} MiB/s over the second half of the capture", 0.9))
    if ev.proc is not None and len(ev.proc):
        for col, min_rise, unit in (("rss_bytes", 50 * MB, "MiB"), ("threads", 20, ""),
                                    ("fds", 20, "")):
            rise = rise_to_peak(ev.proc, col)
            if rise is not None and rise["rise"] >= min_rise and rise["peak"] >= 1.5 * max(
                    rise["start"], 1):
                scale = MB if unit else 1
                rows.append((f"{col.split('_')[0]} growth", f"{col} rose "
                             f"{rise['peak'] / max(rise['start'], 1):.1f}x",
                             f"from {rise['start'] / scale:,.0f} to a peak of "
                             f"{rise['peak'] / scale:,.0f} {unit} in {rise['seconds']:.1f} s "
                             f"({rise['rise'] / scale / max(rise['seconds'], 1e-3):,.1f} "
                             f"{unit or col}/s)", 0.85))
    if ev.origins is not None:
        rows += _origin_rows(ev.origins)
    if ev.pyspy is not None and ev.pyspy.dump_path is not None:
        t = ev.pyspy.threads
        idle = t[t.idle]
        where = idle["stack"].map(lambda st: " < ".join(st.split(" < ")[:2]))
        for frames, n in where.value_counts().items():
            if n >= 10:
                rows.append(("parked threads", f"{n} threads idle in {frames}",
                             "many threads parked in the same place: pollers never stopped?",
                             min(1.0, n / max(1, len(t)))))
    if ev.pyspy is not None and ev.pyspy.speedscope_path is not None:
        for r in ev.pyspy.functions.head(3).itertuples():
            rows.append(("CPU", f"{r.function} ({Path(r.file).name})",
                         f"{100 * r.self_share:.0f}% of samples in the function itself, "
                         f"{100 * r.total_share:.0f}% including callees", r.self_share))
    if ev.gc_events is not None and len(ev.gc_events):
        from labkit.analysis import gc_summary

        e = ev.gc_events
        wall = max(1e-9, (e.t_stop_ns.max() - e.t_start_ns.min()) / 1e9)
        s = gc_summary(e, wall)
        if s.gc_percent > 5 or s.pause_max_ms > 50:
            rows.append(("garbage collector", f"{s.gc_percent:.1f}% of wall time in GC",
                         f"{s.collections:,.0f} collections ({s.gen2:.0f} full), p99 "
                         f"{s.pause_p99_ms:.2f} ms, max {s.pause_max_ms:.1f} ms",
                         min(1.0, s.gc_percent / 20 + s.pause_max_ms / 500)))
    df = pd.DataFrame(rows, columns=["kind", "suspect", "evidence", "score"])
    return df.sort_values("score", ascending=False, kind="stable").reset_index(drop=True)
