"""A postmortem's evidence: a user's own captures (any subset), loaded and checked.

Inputs are loose files from a real incident: a memray capture, a py-spy speedscope
profile, a py-spy dump, a GC trace (labkit's ``gc_events.bin`` or a run directory holding
one) and process samples (``proc.csv``). :func:`load_evidence` checks every one up front,
so a bad file fails with one line before any analysis starts; :func:`evidence_of` takes
what an already loaded run holds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from labkit import artifacts as A
from labkit.errors import InputError

if TYPE_CHECKING:
    from labkit.frames.heapsnap import HeapSnapshot
    from labkit.frames.memray import MemrayCapture
    from labkit.frames.origins import OriginsCapture
    from labkit.frames.pyspy import PySpyCapture


@dataclass
class Evidence:
    """The loaded captures; any may be None."""

    memray: MemrayCapture | None = None
    pyspy: PySpyCapture | None = None
    gc_events: pd.DataFrame | None = None
    heap: pd.DataFrame | None = None
    proc: pd.DataFrame | None = None
    origins: OriginsCapture | None = None
    fd_table: pd.DataFrame | None = None  # the descriptor table at its peak, from outside
    gc_wall_s: float | None = None  # the traced run's wall time, when known
    sources: dict[str, str] | None = None
    # {top-level import name: (distribution, version)} as installed where the program ran,
    # read by the target interpreter at capture (the run's manifest); empty if unknown
    distributions: dict[str, tuple[str, str]] = field(default_factory=dict)
    site_packages: tuple[str, ...] = ()  # the target's, from the same manifest
    run_dir: str | None = None  # the run directory the captures come from, if any
    heap_snapshot: HeapSnapshot | None = None  # the object graph (who keeps memory alive)
    heap_snapshot_error: str | None = None  # why a given snapshot was left out


def _existing(path: str | Path | None, what: str) -> Path | None:
    if path in (None, ""):
        return None
    p = Path(path)
    if not p.exists():
        raise InputError(f"{what} {p} not found; check the path")
    return p


def load_evidence(memray: str | Path | None = None, pyspy: str | Path | None = None,
                  dump: str | Path | None = None, gc: str | Path | None = None,
                  proc: str | Path | None = None, run: str | Path | None = None,
                  heap_snapshot: str | Path | None = None) -> Evidence:
    """Load and check each given capture; raises a one-line LabkitError on a bad one.

    ``run``, a labkit run directory (verified first), supplies every capture it holds that
    is not given as a file, and the origins of its threads and fds. A heap snapshot
    that cannot be read is left out (``heap_snapshot_error`` says why), never fatal."""
    from labkit.frames.gctrace import load_gc_events, load_heap
    from labkit.frames.memray import MemrayCapture
    from labkit.frames.proc import load_proc
    from labkit.frames.pyspy import PySpyCapture

    ev, r = Evidence(sources={}), None
    if run not in (None, ""):
        from labkit.frames import load

        r = load(run, background_stats=False)
        ev = evidence_of(r)  # then each file given replaces the run's own capture
    if (p := _existing(memray, "memray capture")) is not None:
        # findings read churn, no stats; the file is opened only in the workers (held, then
        # churn forked from it)
        ev.memray = MemrayCapture(p, churn_in_background=True, open_here=False)
        ev.sources["memray"] = str(p)
    sp, dp = _existing(pyspy, "py-spy profile"), _existing(dump, "py-spy dump")
    if sp is not None or dp is not None:
        if r is not None:  # a profile given with a run's dump, or the other way round
            sp = sp or r.path_of(A.PYSPY_PROFILE)
            dp = dp or r.path_of(A.PYSPY_DUMP)
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
            ev.gc_events, ev.heap, ev.gc_wall_s = run.gc_events, run.heap, run.gc_wall_s
        else:
            origin, ev.heap = None, None
            ev.gc_events = load_gc_events(p, 0)
            if len(ev.gc_events):
                origin = int(ev.gc_events.t_start_ns.iloc[0])
                ev.gc_events = load_gc_events(p, origin)
            heap = next((h for h in (p.with_name(A.GC_HEAP.name),
                                     p.with_name(A.GC_HEAP.name + ".gz"))
                         if h.exists()), None)
            if heap is not None and origin is not None:
                ev.heap = load_heap(heap, origin)
            ev.gc_wall_s = _wall_from_meta(p.with_name(A.GC_META.name), ev.gc_events)
        ev.sources["gc"] = str(p)
    if (p := _existing(proc, "process samples")) is not None:
        df = load_proc(p, 0)
        ev.proc = load_proc(p, int(df.t_s.iloc[0] * 1e9)) if len(df) else df
        ev.sources["proc"] = str(p)
        table = p.with_name(A.PROC_FDS.name)
        if ev.fd_table is None and table.is_file():
            from labkit.frames.proc import load_fd_table

            ev.fd_table = load_fd_table(table)
            ev.sources["fd table"] = str(table)
    if not ev.distributions:
        ev.distributions, ev.site_packages = _target_beside(memray, pyspy, dump, gc, proc)
    if (p := _existing(heap_snapshot, "heap snapshot")) is not None:
        ev.heap_snapshot, ev.heap_snapshot_error = _snapshot(p)
        ev.sources["heap snapshot"] = str(p)
    if not ev.sources and r is not None:
        raise InputError(f"{r.path} holds no capture a postmortem can read")
    if not ev.sources:
        raise InputError("no capture given; pass a run directory, or at least one of "
                         "--memray, --pyspy, --dump, --gc, --proc")
    return ev


def evidence_of(run: Any) -> Evidence:
    """The evidence a loaded :class:`~labkit.frames.Run` holds, sharing its frames (on the
    run's time axis; nothing is loaded twice)."""
    ev = Evidence(sources={}, distributions=dict(getattr(run, "distributions", {}) or {}),
                  site_packages=tuple(getattr(run, "site_packages", ()) or ()),
                  run_dir=str(run.path))
    if run.has(A.MEMRAY):
        ev.memray, ev.sources["memray"] = run.memray, str(run.need(A.MEMRAY))
    if run.has(A.PYSPY_PROFILE) or run.has(A.PYSPY_DUMP):
        ev.pyspy = run.pyspy
        for art, key in ((A.PYSPY_PROFILE, "pyspy"), (A.PYSPY_DUMP, "dump")):
            if run.has(art):
                ev.sources[key] = str(run.need(art))
    if run.has(A.GC_EVENTS):
        ev.gc_events, ev.gc_wall_s, ev.sources["gc"] = run.gc_events, run.gc_wall_s, str(
            run.path)
        ev.heap = run.heap if run.has(A.GC_HEAP) else None
    if run.has(A.PROC):
        ev.proc, ev.sources["proc"] = run.proc, str(run.need(A.PROC))
    if run.has(A.PROC_FDS):
        ev.fd_table, ev.sources["fd table"] = run.fd_table, str(run.need(A.PROC_FDS))
    if run.has(A.ORIGINS):
        ev.origins, ev.sources["origins"] = run.origins, str(run.need(A.ORIGINS))
    if run.has(A.HEAP_SNAPSHOT):
        p = run.need(A.HEAP_SNAPSHOT)
        ev.heap_snapshot, ev.heap_snapshot_error = _snapshot(p)
        ev.sources["heap snapshot"] = str(p)
    return ev


def _target_beside(*paths: str | Path | None) -> tuple[dict[str, tuple[str, str]],
                                                      tuple[str, ...]]:
    """The target's distributions and ``site-packages`` folders from the manifest of the run
    that holds a loose capture (its folder, or the folder itself for a run given as
    ``--gc``); empty if none."""
    from labkit.errors import LabkitError
    from labkit.frames import Run

    for p in paths:
        if p in (None, ""):
            continue
        folder = Path(p) if Path(p).is_dir() else Path(p).parent
        if (folder / "manifest.json").is_file():
            try:
                found = Run(folder, verify=False)
                return found.distributions, found.site_packages
            except LabkitError:
                continue
    return {}, ()


def _snapshot(path: Path) -> tuple[HeapSnapshot | None, str | None]:
    """The snapshot, or None and the one line saying why it cannot be read."""
    from labkit.errors import LabkitError
    from labkit.frames.heapsnap import load_heap_snapshot

    try:
        return load_heap_snapshot(path), None
    except LabkitError as exc:
        return None, str(exc)


def _wall_from_meta(meta_path: Path, events: pd.DataFrame) -> float | None:
    """The tracer's own window (start to end, or to the last collection) from the
    ``gctrace.json`` beside a loose ``gc_events.bin``; None without one."""
    if not meta_path.is_file():
        return None
    from labkit.frames.gctrace import load_meta

    meta = load_meta(meta_path)
    t0 = meta.get("t0_ns")
    end = meta.get("t_end_ns") or (int(events.t_stop_ns.max()) if len(events) else None)
    if not isinstance(t0, int) or not isinstance(end, int) or end <= t0:
        return None
    return (end - t0) / 1e9
