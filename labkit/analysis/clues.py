"""The postmortem's weighing: evidence in, clues out, each scored by the share of its
symptom it explains.

A *clue* is a symptom (memory, threads or fds rising, time in GC, churn) or a line of the
user's own code with the evidence against it. :func:`suspects` gathers every clue the
evidence supports, best first; :mod:`labkit.analysis.findings` ranks and merges them.
Code is attributed to the first frame in the user's own code (:mod:`labkit.attribution`);
allocations made by labkit or while importing modules are never suspects.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from labkit.analysis.gc import gc_summary
from labkit.analysis.growth import steady_gain
from labkit.analysis.libraries import Library, native_library, split_stack
from labkit.analysis.symptoms import (
    heap_symptom,
    native_symptom,
    proc_symptoms,
)
from labkit.attribution import DEFAULT, Attribution
from labkit.frames.memray import own_allocations
from labkit.stacks import Frame, is_import_time, is_waiting

if TYPE_CHECKING:
    from labkit.frames.evidence import Evidence

MB = 1024 * 1024
CHURN_MIN_BYTES = 256 * 1024 * 1024  # short-lived bytes that make churn a symptom ...
CHURN_PEAK_TIMES = 50  # ... when also this many times the peak heap
CHURN_WHEN_GROWING = 0.25  # churn's weight while the heap grows: freed bytes do not grow it
WAITING_WEIGHT = 0.25  # a waiting line's weight: wall-clock time, not work done


def _code_name(function: str, file: str, line: int, library: Library | None = None) -> str:
    """``fn (file.py:12)``; for a package site, ``site (pkg/mod.py:3) in pkg 1.2, called from
    fn (file.py:12)``."""
    own = f"{function} ({Path(file).name}:{line})"
    if library is None:
        return own
    caller = "" if (library.site.file, library.site.line) == (file, line) else \
        f", called from {own}"
    return f"{library.site.where} in {library.label}{caller}"


@dataclass(frozen=True)
class Code:
    """Where a suspect is, and which symptom it explains, how much. ``function``/``file``/
    ``line`` are the user's frame (the package site when no user frame called it);
    ``library`` the installed package the evidence passes through, if any."""

    function: str
    file: str
    line: int
    stack: str
    explains: tuple[str, ...]  # one statement per piece of evidence
    library: Library | None = None


@dataclass(frozen=True)
class Clue:
    """One piece of weighed evidence: a symptom (``code`` None) or a line of code."""

    kind: str
    suspect: str
    evidence: str
    score: float  # 0-1: the share of its symptom it explains
    code: Code | None = None


def _groups(df: pd.DataFrame, how: Attribution,
            dists: Mapping[str, tuple[str, str]]) -> list[tuple[Frame, Library | None, list[int]]]:
    """Rows of ``df`` (with ``frames``) grouped by suspect, in first-seen order: by package
    site when the stack passes through an installed package, else by the user's frame
    (see :mod:`labkit.analysis.libraries`). Each group is (the user's frame of its first
    row, i.e. the heaviest caller in a frame sorted largest first, or the site when no user
    frame called it; the library; row positions). Rows with neither a user frame nor a
    package are dropped; so are rows with no user frame when ``how`` has a focus."""
    out: dict[Any, tuple[Frame, Library | None, list[int]]] = {}
    for i, frames in enumerate(df["frames"]):
        user, lib = split_stack(tuple(frames), how, dists)
        if user is None and (lib is None or how.focus is not None):
            continue
        key = ("lib", lib.site.file, lib.site.line) if lib is not None else ("user", user)
        if key in out:
            out[key][2].append(i)
            continue
        if user is None:
            user = Frame(lib.site.file, lib.site.line, lib.site.function)
        out[key] = (user, lib, [i])
    return list(out.values())


def _by_user_frame(df: pd.DataFrame, how: Attribution, sums: dict[str, str],
                   dists: Mapping[str, tuple[str, str]] | None = None,
                   firsts: tuple[str, ...] = ()) -> pd.DataFrame:
    """Rows grouped by suspect (:func:`_groups`); ``sums`` maps output column -> input
    column to add up; ``stack`` and the ``firsts`` columns are the group's first row's,
    ``library`` the suspect's :class:`Library` or None."""
    cols = ["function", "file", "line", "stack", "library", *sums, *firsts]
    groups = _groups(df, how, dists or {}) if len(df) else []
    if not groups:
        return pd.DataFrame(columns=cols)
    gid = np.full(len(df), -1)
    for g, (_, _, idx) in enumerate(groups):
        gid[idx] = g
    kept = np.flatnonzero(gid >= 0)
    # one pass per column over every row, where a pass per group was a frame each
    totals = [df[v].iloc[kept].groupby(gid[kept], sort=True).sum().tolist()
              for v in sums.values()]
    first = [idx[0] for _, _, idx in groups]
    heads = [df[c].iloc[first].tolist() for c in ("stack", *firsts)]
    rows = [(user[2], user[0], int(user[1]), str(heads[0][g]), lib,
             *(t[g] for t in totals), *(h[g] for h in heads[1:]))
            for g, (user, lib, _) in enumerate(groups)]
    return pd.DataFrame(rows, columns=cols)


def _memory_rows(memray: Any, how: Attribution, dists: Mapping[str, tuple[str, str]],
                 site_packages: tuple[str, ...] = ()) -> list[Clue]:
    """Lines of the user's code by the memory they held at the peak and by how much what
    they hold grew over the run, growth counted in full only for a site that grew in at
    least :data:`STEADY_STEPS` steps (a one-off grows in one). When the heap grew (by 1 MiB
    or more), the score is the mean of the two shares, so a site that grows steadily
    outranks a large one-off. In a capture of every Python allocation
    (``--trace-python-allocators``) the share of the objects held at the peak counts at
    half weight beside the share of bytes: many small objects kept alive (the closures or
    callbacks that pin a large buffer) are evidence too. What a line still held when
    tracking stopped (never freed) is stated with it. An aggregated capture has no growth
    history (NaN): its lines rank by what they held at the peak."""
    total = max(1, int(memray.metadata.peak_memory))  # no statistics pass needed
    grow = own_allocations(memray.growth)
    grow = grow.assign(gain=steady_gain(grow).fillna(0.0))
    history = not getattr(memray, "aggregated", False)
    native = bool(getattr(memray.metadata, "has_native_traces", False)) and "record" in grow
    sites = _by_user_frame(grow, how, {"bytes": "peak_bytes", "count": "peak_count",
                                       "never": "end_bytes", "gain": "gain"}, dists,
                           ("record", "frames") if native else ())
    if native:
        sites = _charged_native(sites, memray, how, dists, site_packages,
                                ("bytes", "count", "never", "gain"))
    grown, never = float(sites["gain"].sum()), float(sites["never"].sum())
    objects = float(grow["peak_count"].sum()) if memray.metadata.trace_python_allocators \
        else 0.0
    steady = grown >= MB
    rows: list[Clue] = []
    for r in sites.itertuples():
        of_bytes = r.bytes / total
        of_objects = r.count / objects if objects else 0.0
        at_peak = max(of_bytes, of_objects / 2)
        of_growth = r.gain / grown if steady else 0.0
        score = (at_peak + of_growth) / 2 if steady else at_peak
        if max(at_peak, of_growth) < 0.01:
            continue
        explains = [f"memory: {100 * of_bytes:.0f}% of the heap at its peak "
                    f"({r.bytes / MB:.1f} MiB)"]
        if of_objects >= 0.05 and of_objects / 2 > of_bytes:
            explains.insert(0, f"objects: {100 * of_objects:.0f}% of the objects alive at "
                               f"the peak ({int(r.count):,})")
        if of_growth >= 0.01:
            explains.append(f"memory growth: {100 * of_growth:.0f}% of what the heap gained "
                            f"over the run (+{r.gain / MB:.1f} MiB)")
        if never >= MB and r.never / never >= 0.01:
            explains.append(f"never freed: {100 * r.never / never:.0f}% of what was still "
                            f"held when tracking stopped ({r.never / MB:.1f} MiB)")
        kind = "growing allocation site" if of_growth > at_peak else "allocation site at peak"
        lib = r.library
        if native and r.native:
            explains.append(f"native: allocated in {lib.site.where} of {lib.label}, "
                            "below your Python code")
        rows.append(Clue(kind, _code_name(r.function, r.file, r.line, lib),
                     f"{r.bytes / MB:.1f} MiB in {int(r.count):,} blocks held at the peak, "
                     + (f"+{r.gain / MB:.1f} MiB gained over the run, " if history else
                        "growth not recorded (aggregated capture), ")
                     + f"{r.never / MB:.1f} MiB never freed; stack {str(r.stack)[:120]}", score,
                     Code(r.function, r.file, int(r.line), str(r.stack), tuple(explains),
                          lib)))
    return sorted(rows, key=lambda row: -row.score)[:5]


def _charged_native(sites: pd.DataFrame, memray: Any, how: Attribution,
                    dists: Mapping[str, tuple[str, str]], site_packages: tuple[str, ...],
                    sums: tuple[str, ...]) -> pd.DataFrame:
    """``sites`` (from :func:`_by_user_frame`, with ``record`` and ``frames``) with each
    one's ``library`` replaced by the compiled code below its Python stack that made the
    allocations (:func:`native_library`, ``native`` True), and the sites charged to one
    native site merged (``sums`` added up; the rest the heaviest's by ``sums[0]``): the
    package site is what ranks."""
    if sites.empty:
        return sites.assign(native=pd.Series(dtype=bool))
    libs, native = [], []
    for r in sites.itertuples():
        below = memray.native_frames(int(r.record))
        lib = native_library(below, r.frames, how, dists, site_packages) if below else None
        libs.append(lib or r.library)
        native.append(lib is not None)
    sites = sites.assign(library=libs, native=native)
    key = [(lib.site.file, lib.site.function) if n else ("row", i)
           for i, (lib, n) in enumerate(zip(libs, native, strict=True))]
    sites = sites.assign(_key=key).sort_values(sums[0], ascending=False, kind="stable")
    totals = sites.groupby("_key", sort=False)[list(sums)].transform("sum")
    first = ~sites["_key"].duplicated()
    return sites.assign(**{c: totals[c] for c in sums})[first].drop(columns="_key")


@dataclass(frozen=True)
class _Churn:
    """The short-lived allocations' total and, when it can make churn a symptom, their
    sites (:func:`_by_user_frame`); from the churn pass alone, which the exports have
    before the temporal one."""

    total: float
    sites: pd.DataFrame | None


def _churn_sites(memray: Any, how: Attribution,
                 dists: Mapping[str, tuple[str, str]]) -> _Churn:
    churn = own_allocations(memray.churn)
    total = float(churn["bytes"].sum()) if len(churn) else 0.0
    if total < CHURN_MIN_BYTES:
        return _Churn(total, None)
    return _Churn(total, _by_user_frame(churn, how, {"bytes": "bytes", "count": "count"},
                                        dists))


def _churn_rows(memray: Any, churn: _Churn, growing: bool) -> list[Clue]:
    """Allocation churn: when short-lived allocations (freed before the next one is made)
    add up to at least :data:`CHURN_MIN_BYTES` and :data:`CHURN_PEAK_TIMES` the peak heap,
    a symptom of its own (the allocation rate), and the lines of the user's code that make
    them (``churn``, :func:`_churn_sites`), by their share. When the heap is ``growing``,
    what is freed at once cannot explain it: churn then weighs :data:`CHURN_WHEN_GROWING`
    as much, below the growth and the sites that hold what grows."""
    total = churn.total
    peak = max(1, int(memray.metadata.peak_memory))
    if churn.sites is None or total < CHURN_PEAK_TIMES * peak:
        return []
    m = memray.metadata
    secs = max(1e-3, (m.end_time - m.start_time).total_seconds())
    read, of = getattr(memray, "churn_records", (1, 1))
    over, about = f"over {secs:.1f} s", ""
    if read < of:  # a bounded pass: its records' share of the run, if records came evenly
        secs = max(1e-3, secs * read / of)
        over = (f"over the first {read:,} of the capture's {of:,} allocation records (the "
                f"churn pass is bounded; about {secs:.1f} s)")
        about = "about "
    weight = CHURN_WHEN_GROWING if growing else 1.0
    rows: list[Clue] = [Clue("allocation churn", f"allocation rate: {total / MB:,.0f} MiB of "
                        f"short-lived allocations ({about}{total / MB / secs:,.0f} MiB/s)",
                        f"{total / peak:,.0f}x the peak heap ({peak / MB:.1f} MiB) allocated "
                        f"and freed at once {over}", 0.8 * weight, None)]
    for r in churn.sites.sort_values("bytes", ascending=False).head(3).itertuples():
        share = r.bytes / total
        if share < 0.05:
            continue
        rows.append(Clue("short-lived allocations",
                     _code_name(r.function, r.file, r.line, r.library),
                     f"{r.bytes / MB:,.0f} MiB in {int(r.count):,} allocations freed at once; "
                     f"stack {str(r.stack)[:120]}", 0.9 * share * weight,
                     Code(r.function, r.file, int(r.line), str(r.stack),
                          (f"churn: {100 * share:.0f}% of the short-lived bytes "
                           f"({r.bytes / MB:,.0f} MiB)",), r.library)))
    return rows


def _thread_families(threads: pd.DataFrame) -> list[Clue]:
    """From a dump alone: many threads of one name family parked in the same frame (a pool
    names its workers ``prefix_N``). A symptom, not code: who made them needs origins."""
    idle = threads[threads.idle]
    family = idle["name"].str.replace(r"[-_]?\d+$", "", regex=True)
    rows: list[Clue] = []
    for (fam, fn, file, line), g in idle.assign(family=family).groupby(
            ["family", "function", "file", "line"], sort=False):
        if len(g) >= 10:
            rows.append(Clue("parked thread family", f"{len(g)} threads named {fam or '?'}* idle "
                         f"in {_code_name(fn, file, line)}",
                         f"{len(g)} of {len(threads)} threads in the dump; capture with "
                         "`labkit capture` to learn which code started them", 0.6, None))
    return rows


def _origin_groups(df: pd.DataFrame, how: Attribution,
                   dists: Mapping[str, tuple[str, str]]) -> list[tuple[Frame, Library | None,
                                                                      pd.DataFrame]]:
    return [(user, lib, df.iloc[idx]) for user, lib, idx in _groups(df, how, dists)] \
        if len(df) else []


def _origin_rows(origins: Any, how: Attribution,
                 dists: Mapping[str, tuple[str, str]]) -> list[Clue]:
    """Code that started the threads alive (the asyncio tasks pending), or opened the fds
    open, at the end of the run or at their peak (whichever held more)."""
    rows = []
    for what, at_end, at_peak in (("threads", origins.threads, origins.threads_at_peak),
                                  ("tasks", origins.tasks, origins.tasks_at_peak)):
        end, peak = at_end[at_end.alive], at_peak[at_peak.alive]
        alive, when = (peak, "at their peak") if len(peak) > len(end) else (end, "at the end")
        state, label = ("alive", "named") if what == "threads" else ("pending", "running")
        for (file, line, fn), lib, g in _origin_groups(alive, how, dists):
            if fn and len(g) >= 5:
                names = sorted(set(g["name"].str.replace(r"[-_]?\d+$", "", regex=True)))
                explains = f"{what}: started {len(g):,} of the {len(alive):,} {state} {when}"
                rows.append(Clue(f"{what} started here", _code_name(fn, file, line, lib),
                             f"{len(g):,} of the {len(alive):,} {what} {state} {when} were "
                             f"started here ({label} {', '.join(names[:3])}); stack "
                             f"{g['stack'].iloc[0][:160]}",
                             min(1.0, 0.5 + len(g) / (2 * len(alive))),
                             Code(fn, file, line, g["stack"].iloc[0], (explains,), lib)))
    fds, when = ((origins.fds_at_peak, "at their peak")
                 if len(origins.fds_at_peak) > len(origins.fds) else (origins.fds, "at the end"))
    for kind, of_kind in (fds.groupby("kind", sort=False) if len(fds) else ()):
        for (file, line, fn), lib, g in _origin_groups(of_kind, how, dists):
            if fn and len(g) >= 5:
                explains = f"fds: opened {len(g):,} of the {len(fds):,} open {when} ({kind}s)"
                rows.append(Clue("fds opened here", _code_name(fn, file, line, lib),
                             f"{len(g):,} of the {len(fds):,} fds open {when} are {kind}s "
                             f"opened here; stack {g['stack'].iloc[0][:160]}",
                             min(1.0, 0.5 + len(g) / (2 * len(fds))),
                             Code(fn, file, line, g["stack"].iloc[0], (explains,), lib)))
    return rows


def _fd_table_rows(table: pd.DataFrame) -> list[Clue]:
    """From outside: what the descriptors open at their peak pointed at, when one kind of
    target holds most of them (a symptom; the code that opened them needs origins)."""
    groups = table.groupby("where").size().sort_values(ascending=False)
    top, n = groups.index[0], int(groups.iloc[0])
    if n < 0.5 * len(table) or n < 10:
        return []
    rest = "; ".join(f"{int(c):,} {w}" for w, c in groups.iloc[1:4].items())
    return [Clue("fd table", f"{n:,} of the {len(table):,} fds open at their peak are {top}",
             f"descriptor table read from /proc at the peak{'; then ' + rest if rest else ''}",
             0.7, None)]


def _native_rows(memray: Any, how: Attribution, dists: Mapping[str, tuple[str, str]],
                 what: str, site_packages: tuple[str, ...] = ()) -> list[Clue]:
    """The Python entry of native memory: the code (yours, or the package under it) whose
    allocations memray saw grow most while RSS grew, else the most held at the peak; its
    native allocations happen below it, where memray's Python view cannot follow. In a
    capture with native stacks, the compiled code below it is the site
    (:func:`_charged_native`)."""
    grow = own_allocations(memray.growth)
    grow = grow.assign(gain=steady_gain(grow).fillna(0.0))
    native = bool(getattr(memray.metadata, "has_native_traces", False)) and "record" in grow
    sites = _by_user_frame(grow, how, {"gain": "gain", "bytes": "peak_bytes"}, dists,
                           ("record", "frames") if native else ())
    if native:
        sites = _charged_native(sites, memray, how, dists, site_packages, ("gain", "bytes"))
    if sites.empty:
        return []
    col = "gain" if sites["gain"].sum() > 0 else "bytes"
    r = sites.sort_values(col, ascending=False, kind="stable").iloc[0]
    return [Clue("native memory", _code_name(r.function, r.file, r.line, r.library),
                 f"{what}; the Python code whose allocations grew most meanwhile "
                 f"(+{r.gain / MB:.1f} MiB seen by memray); stack {str(r.stack)[:120]}", 0.9,
                 Code(r.function, r.file, int(r.line), str(r.stack),
                      (f"native memory: the Python code that grew most while {what[15:]}",),
                      r.library))]


def _sample_rows(samples: pd.DataFrame, how: Attribution,
                 dists: Mapping[str, tuple[str, str]]) -> list[Clue]:
    """py-spy's samples: the lines running on the CPU, by their share of the samples that
    were not waiting; and, apart, the lines whose samples wait (a lock, a socket, a join:
    :func:`labkit.stacks.is_waiting`), at :data:`WAITING_WEIGHT` of their share, never
    called CPU. py-spy leaves idle threads out unless told ``--idle``, but a thread caught
    as it wakes is sampled anyway: the frame says what it was doing."""
    samples = samples[~samples["frames"].map(is_import_time)]
    waiting = samples["frames"].map(is_waiting).astype(bool)
    n_all = max(1, int(samples["count"].sum()))
    n_cpu = max(1, int(samples[~waiting]["count"].sum()))
    rows: list[Clue] = []
    cpu = _by_user_frame(samples[~waiting], how, {"samples": "count"}, dists)
    for r in cpu.sort_values("samples", ascending=False).head(3).itertuples():
        rows.append(Clue("CPU", _code_name(r.function, r.file, r.line, r.library),
                     f"{100 * r.samples / n_cpu:.0f}% of on-CPU samples ran in or below this "
                     f"line of your code; stack {r.stack[:120]}", r.samples / n_cpu,
                     Code(r.function, r.file, r.line, r.stack,
                          (f"cpu: {100 * r.samples / n_cpu:.0f}% of the CPU samples",),
                          r.library)))
    wait = _by_user_frame(samples[waiting], how, {"samples": "count"}, dists)
    for r in wait.sort_values("samples", ascending=False).head(3).itertuples():
        on = r.stack.split(" < ", 1)[0]
        rows.append(Clue("waiting", _code_name(r.function, r.file, r.line, r.library),
                     f"{100 * r.samples / n_all:.0f}% of the samples wait below this line "
                     f"(in {on}), off the CPU; stack {r.stack[:120]}",
                     WAITING_WEIGHT * r.samples / n_all,
                     Code(r.function, r.file, r.line, r.stack,
                          (f"waiting: {100 * r.samples / n_all:.0f}% of the samples wait "
                           f"here, in {on}",), r.library)))
    return rows


def suspects(ev: Evidence, how: Attribution = DEFAULT) -> pd.DataFrame:
    """Ranked findings: ``kind``, ``suspect``, ``evidence``, ``score`` (0-1, higher first),
    ``code`` (a :class:`Code` for a suspect in the user's code; None for a symptom).

    Code is attributed to the first frame in the user's own code (``how``); allocations
    made by labkit or while importing modules are never suspects. What needs no memray
    temporal pass (churn, the other captures) is weighed first: an export's worker may
    still be making that pass."""
    dists = getattr(ev, "distributions", None) or {}
    churn = _churn_sites(ev.memray, how, dists) if ev.memray is not None else None
    others = _other_rows(ev, how, dists)
    rows: list[Clue] = []
    if ev.memray is not None and churn is not None:
        site_packages = tuple(getattr(ev, "site_packages", ()) or ())
        rows += _memory_rows(ev.memray, how, dists, site_packages)
        found = heap_symptom(ev.memray.memory, ev.memray.growth)
        rows += _churn_rows(ev.memray, churn, found is not None)
        rows += [Clue(*found)] if found else []
        if (native := native_symptom(ev.memray, ev.proc)) is not None:
            rows += [Clue(*native), *_native_rows(ev.memray, how, dists, native[1],
                                                  site_packages)]
    rows += others
    df = pd.DataFrame([(r.kind, r.suspect, r.evidence, r.score) for r in rows],
                      columns=["kind", "suspect", "evidence", "score"])
    df["code"] = [r.code for r in rows]
    return df.sort_values("score", ascending=False, kind="stable").reset_index(drop=True)


def _other_rows(ev: Evidence, how: Attribution, dists: Mapping[str, tuple[str, str]]
                ) -> list[Clue]:
    """The clues of every capture but memray's: process sampler, origins, fd table,
    py-spy's dump and samples, the GC tracer."""
    rows: list[Clue] = []
    if ev.proc is not None and len(ev.proc):
        rows += [Clue(*found) for found in proc_symptoms(ev.proc)]
    if ev.origins is not None:
        rows += _origin_rows(ev.origins, how, dists)
    if ev.fd_table is not None and len(ev.fd_table) >= 20:
        rows += _fd_table_rows(ev.fd_table)
    if ev.pyspy is not None and ev.pyspy.dump_path is not None:
        t = ev.pyspy.threads
        idle = t[t.idle].assign(count=1)
        parked = _by_user_frame(idle, how, {"threads": "count"}, dists)
        rows += _thread_families(t)
        for r in parked.itertuples():
            if r.threads >= 10:
                where = " < ".join(r.stack.split(" < ")[:2])
                rows.append(Clue("parked threads",
                             _code_name(r.function, r.file, r.line, r.library),
                             f"{r.threads} of {len(t)} threads idle here (in {where}): "
                             "pollers never stopped?", min(1.0, r.threads / max(1, len(t))),
                             Code(r.function, r.file, r.line, r.stack,
                                  (f"threads: {r.threads} of the {len(t)} in the dump are "
                                   "parked here",), r.library)))
    if ev.pyspy is not None and ev.pyspy.speedscope_path is not None:
        rows += _sample_rows(ev.pyspy.samples, how, dists)
    if ev.gc_events is not None and len(ev.gc_events):
        e = ev.gc_events
        wall = ev.gc_wall_s
        of = "of the run's wall time"
        if wall is None:  # a bare event file: the span from the first collection's start
            wall, of = (e.t_stop_ns.max() - e.t_start_ns.min()) / 1e9, "of the traced span"
        s = gc_summary(e, max(wall, 1e-9))
        if (s.gc_percent > 5 and len(e) >= 10) or s.pause_max_ms > 50:
            rows.append(Clue("garbage collector", f"{s.gc_percent:.1f}% {of} in GC",
                         f"{s.collections:,.0f} collections ({s.gen2:.0f} full), p99 "
                         f"{s.pause_p99_ms:.2f} ms, max {s.pause_max_ms:.1f} ms",
                         min(1.0, s.gc_percent / 20 + s.pause_max_ms / 500), None))
    return rows
