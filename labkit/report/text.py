"""Plain-text summaries printed by the CLI (the same numbers a notebook shows)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from labkit import artifacts as A
from labkit.analysis import gc_summary
from labkit.capture.gctrace import FLOOD_PER_S
from labkit.frames import Run
from labkit.report.pages import render
from labkit.units import human_bytes, human_measure, plain_number, printable

if TYPE_CHECKING:
    import pandas as pd

    from labkit.analysis.compare import Comparison
    from labkit.analysis.findings import Findings
    from labkit.fleetdb import Fleet
    from labkit.frames.memray import MemrayCapture
    from labkit.frames.pyspy import PySpyCapture
    from labkit.scenarios.base import Signature


def gc_summary_lines(run: Run) -> list[str]:
    """The ``labkit gctrace`` summary: per generation, pauses, % in GC, tracer overhead."""
    meta = run.gc_meta
    ev = run.gc_events
    wall_s = run.gc_wall_s
    s = gc_summary(ev, wall_s)
    own = int(ev["in_tracer"].sum()) if len(ev) else 0
    overhead_ms = meta.get("overhead_ns", 0) / 1e6
    per_event = f"{meta.get('per_event_ns', 0) / 1000:.2f} us an event x {s.collections:.0f}"
    kind = {"c": " (compiled)", "python": " (Python)"}.get(meta.get("callback_kind", ""), "")
    if "sampler_ns" in meta:  # the whole cost: callback as CPython invokes it, sampler, drain
        cost = (f"  tracer: {overhead_ms:.3f} ms ({100 * overhead_ms / 1000 / wall_s:.2f}% of "
                f"wall): callback{kind} {per_event} = {meta.get('callback_ns', 0) / 1e6:.3f} ms, "
                f"sampler thread {meta['sampler_ns'] / 1e6:.3f} ms, final drain "
                f"{meta.get('drain_ns', 0) / 1e6:.3f} ms; ")
    else:  # recorded by an older tracer: the callback alone
        cost = (f"  tracer: {per_event} = {overhead_ms:.3f} ms "
                f"({100 * overhead_ms / 1000 / wall_s:.2f}% of wall); ")
    lines = [
        f"labkit gctrace: {s.collections:.0f} collections in {wall_s:.3f} s "
        f"(gen0 {s.gen0:.0f}, gen1 {s.gen1:.0f}, gen2 {s.gen2:.0f}); "
        f"{s.collections_per_s:.0f}/s, busiest second {s.max_collections_per_s:.0f}",
        f"  pause total {s.pause_total_ms:.3f} ms, p50 {s.pause_p50_ms:.3f} ms, "
        f"p99 {s.pause_p99_ms:.3f} ms, max {s.pause_max_ms:.3f} ms; "
        f"{s.gc_percent:.2f}% of wall time in GC",
        f"{cost}{own} collection(s) ran in labkit's own sampler thread",
    ]
    if s.max_collections_per_s > FLOOD_PER_S:
        lines.append(f"  warning: over {FLOOD_PER_S:,} collections a second: thresholds this low "
                     "flood the process with collections, and the tracer's cost shows")
    if not meta.get("finished", False):
        lines.append("  note: the program ended without running its exit handlers (os._exit, a "
                     "signal or a cap); events up to the last flush (<= 0.1 s before) are kept")
    lines.append(f"  run directory: {run.path}")
    return lines


def proc_summary_lines(run: Run) -> list[str]:
    """Start, end and peak of the process samples."""
    df = run.proc
    if df.empty:
        return ["process samples: none (the program ended before the first sample)"]
    first, last = df.iloc[0], df.iloc[-1]
    return [
        f"process samples: {len(df)} over {last.t_s - first.t_s:.2f} s; "
        f"rss {human_bytes(first.rss_bytes)} -> {human_bytes(last.rss_bytes)} "
        f"(peak {human_bytes(df.rss_bytes.max())}), threads {first.threads:.0f} -> "
        f"{last.threads:.0f} (peak {df.threads.max():.0f}), fds {first.fds:.0f} -> "
        f"{last.fds:.0f} (peak {df.fds.max():.0f})"
    ]


def file_summary_lines(path: Path, kind: str, cap: MemrayCapture | PySpyCapture) -> list[str]:
    """A loose capture file (:func:`labkit.frames.load_file`), summarised as it would be in
    a run."""
    if kind == "memray":
        return [f"{path} (memray capture)", *memray_summary_lines(cap)]
    if kind == "speedscope":
        return [f"{path} (py-spy speedscope profile)", *pyspy_summary_lines(cap)]
    return [f"{path} (py-spy dump)", *threads_summary_lines(cap)]


def run_summary_lines(run: Run) -> list[str]:
    """A run's facts, then one block per capture it holds."""
    m, out, target = run.meta, run.meta.outcome, run.meta.target
    lines = [
        f"run {run.path} ({m.kind or None}), {m.start_utc or None} .. {m.end_utc or None}",
        f"  command: {' '.join(m.command)}",
        f"  outcome: {out.reason or '?'}, exit code "
        f"{'?' if out.returncode is None else out.returncode}",
        f"  python: {target.version or '?'} ({target.implementation or '?'}), "
        f"gc threshold {target.gc_threshold or '?'}",
        f"  files: {', '.join(run.files)} (checksums verified)",
    ]
    if run.has(A.GC_EVENTS):
        lines += gc_summary_lines(run)[:-1]
    if run.has(A.PROC):
        lines += proc_summary_lines(run)
    if run.has(A.MEMRAY):
        lines += memray_summary_lines(run.memray)
    if run.has(A.PYSPY_PROFILE):
        lines += pyspy_summary_lines(run.pyspy)
    if run.has(A.PYSPY_DUMP):
        lines += threads_summary_lines(run.pyspy)
    return lines


def findings_lines(found: Findings, top: int = 10) -> list[str]:
    """A postmortem's findings: verdict, symptoms, then the suspects, best first."""
    out = [f"verdict: {found.verdict}", "symptoms:"]
    out += [f"  - {s.what}: {s.evidence}" for s in found.symptoms] or ["  (none)"]
    out.append("suspects:")
    for s in found.suspects[:top]:
        out.append(f"  {s.rank}. {s.named} [{s.kind}, score {s.score:.2f}]")
        if s.library is not None:
            out.append(f"     entry {s.library.entry.where}: the package's API your code "
                       "called")
        out.append(f"     explains {'; '.join(s.explains)}")
        out.append(f"     stack {s.stack[:150]}")
        if s.retained_by:
            out.append(f"     kept alive by {s.kept_alive_by}, "
                       f"{human_bytes(s.retained_bytes or 0)} retained: "
                       f"{' > '.join(s.retained_by)}")
    if not found.suspects:
        out.append("  (no line of your code stands out in these captures)")
    out += [f"note: {n}" for n in found.notes]
    out += [f"missing: {m.evidence} ({m.why})" for m in found.missing]
    return out


def memray_summary_lines(cap: MemrayCapture) -> list[str]:
    """Peak, totals and the top allocation sites at the high-water mark."""
    s = cap.summary
    peak = cap.allocations_at_peak
    peak = peak[~peak.in_labkit]
    totals = (f"{human_bytes(s.total_allocated_bytes)} allocated in {s.allocations:,} "
              "allocations" if s.total_allocated_bytes is not None else
              "aggregated capture (the high-water mark and leaks per stack; no allocation "
              "totals or history)")
    lines = [f"memray: peak {human_bytes(s.peak_bytes)}, {totals} over {s.duration_s:.2f} s; "
             "top sites at peak:"]
    for r in peak.head(3).itertuples():
        lines.append(f"  {human_bytes(r.bytes):>10} in {r.count:>6,} blocks  {r.stack[:90]}")
    return lines


def pyspy_summary_lines(py: PySpyCapture) -> list[str]:
    """The functions that held the CPU."""
    f = py.functions
    lines = [f"py-spy: {py.samples['count'].sum():,} samples; top functions (self):"]
    for r in f.head(3).itertuples():
        lines.append(f"  {100 * r.self_share:5.1f}% self {100 * r.total_share:5.1f}% total  "
                     f"{r.function} ({Path(r.file).name})")
    return lines


def threads_summary_lines(py: PySpyCapture) -> list[str]:
    """Thread count, idle count and where idle threads are parked."""
    t = py.threads
    idle = t[t.idle]
    lines = [f"threads: {len(t)} ({len(idle)} idle); where they are parked:"]
    for (fn, f), n in idle.groupby(["function", "file"]).size().sort_values(
            ascending=False).head(3).items():
        lines.append(f"  {n:>5} in {fn} ({Path(f).name})")
    return lines


def comparison_lines(cmp: Comparison, top: int = 10) -> list[str]:
    """``labkit compare``: summary deltas, then growth by site and by function."""
    lines = [f"B {cmp.b.path} against A {cmp.a.path}"]
    if not cmp.summary.empty:
        lines += _table(cmp.summary, float_format=lambda v: f"{v:,.3f}")
    if not cmp.allocations.empty:
        lines.append(f"allocation sites at peak, by growth (top {top}):")
        lines += _table(cmp.allocations.head(top), index=False)
    if not cmp.functions.empty:
        lines.append(f"py-spy functions, by growth of self share (top {top}):")
        lines += _table(cmp.functions.head(top), index=False)
    return lines


def _table(df: pd.DataFrame, **kw: Any) -> list[str]:
    """``df.to_string`` as lines, each text cell escaped first (a captured name with a
    newline in it stays in its row)."""
    text = df.copy()
    for c in text.columns:
        if text[c].dtype == object or str(text[c].dtype) == "string":
            text[c] = text[c].map(lambda v: printable(v) if isinstance(v, str) else v)
    text.index = text.index.map(lambda i: printable(i) if isinstance(i, str) else i)
    return text.to_string(**kw).splitlines()


def scenario_list_lines() -> list[str]:
    """``labkit list``."""
    from labkit.scenarios import NAMES, get_spec

    lines = []
    for name in NAMES:
        spec = get_spec(name)
        lines.append(f"{name}: {spec.title}")
        lines.append(f"  incident: {spec.incident}")
        lines.append(f"  shows: {spec.shows}")
        kind = "settings" if spec.settings else "variants"
        for v in spec.variants:
            lines.append(f"  {kind[:-1]} {v}: {spec.variant_help.get(v, '')}")
        lines.append(f"  captures: {', '.join(spec.captures)}; caps: {spec.memory_cap_mb} MiB, "
                     f"{spec.time_cap_s:.0f} s ({spec.quick_time_cap_s:.0f} s with --quick)")
    return lines


def _fmt(v: float) -> str:
    if v != v:  # NaN
        return "-"
    if abs(v) >= 1e6:
        return f"{v / 1e6:,.1f}M"
    if abs(v) >= 100 or v == int(v):
        return f"{v:,.0f}"
    return plain_number(v)


def signature_html(sig: Signature) -> str:
    """One scenario's signature as an HTML table for a notebook or report: a clear mark per
    row, human figures (MiB for bytes, thousands separators), the whole expectation."""
    variants = list(sig.rows[0].values) if sig.rows else []
    rows = [{"ok": r.ok, "metric": r.metric, "expect": r.expect,
             "cells": [_human(r.values.get(v), "bytes" in r.metric) for v in variants]}
            for r in sig.rows]
    return render("signature.html.j2", sig=sig, variants=variants, rows=rows)


def _human(v: float | None, is_bytes: bool) -> str:
    if v is None or v != v:
        return "-"
    if is_bytes and abs(v) >= 1024:
        return human_bytes(v)
    return _fmt(v)


def signature_lines(sig: Signature) -> list[str]:
    """One scenario's signature as a table: metric, a value per variant, the expectation."""
    variants = list(sig.rows[0].values) if sig.rows else []
    head = f"{'':3}{'metric':<52}" + "".join(f"{v:>15}" for v in variants) + "  expected"
    lines = [f"{sig.scenario}: {'shown' if sig.ok else 'NOT SHOWN'} ({sig.elapsed_s:.1f} s)",
             head]
    for r in sig.rows:
        vals = "".join(f"{_human(r.values.get(v), 'bytes' in r.metric):>15}" for v in variants)
        lines.append(f"{'ok' if r.ok else 'NO':<3}{r.metric[:51]:<52}{vals}  {r.expect}")
    return lines


def _section(title: str, rows: list[str], empty: str = "(none)") -> list[str]:
    """``title``, then each row indented, or ``empty`` when there is none."""
    return [title, *(f"  {r}" for r in rows or [empty])]


def fleet_lines(fl: Fleet) -> list[str]:
    """A fleet (:class:`labkit.fleetdb.Fleet`): its verdict, then the sites that grew on
    several nodes, the outlier nodes and each node's top suspect."""
    runs, n = fl.counts()
    load = fl.by or "duration_s"
    unit = f"per unit of {fl.by}" if fl.by else "per second of uptime"
    sites, out, tops = fl.growing_sites(), fl.outliers(), fl.top_suspects()
    lines = [f"fleet: {runs} runs on {n} nodes; load is {load}"]
    if fl.copies_skipped:
        lines.append(f"note: skipped {fl.copies_skipped} "
                     f"cop{'y' if fl.copies_skipped == 1 else 'ies'} of runs already counted "
                     "(same run id: folder name and manifest checksum)")
    if runs > n:
        lines.append(f"note: {runs - n} runs share a node with another (a node is the "
                     "run's host label, else its host name); label runs with --label "
                     "host=NAME to tell them apart")
    lines.append(f"verdict: {fl.verdict().text}")
    lines += _section("sites that grew during the run on two nodes or more:", [
        f"{s.function} ({s.file}:{s.line}): grew on {s.nodes_growing} of {s.nodes} nodes, "
        f"up to {human_bytes(s.max_peak_bytes)} at the peak"
        + ("" if s.bytes_per_load != s.bytes_per_load else
           f", {human_bytes(s.bytes_per_load)} more at the peak {unit} (r = {s.r:.2f})")
        for s in sites.itertuples()],
        empty="(no run has a memray capture)" if "memray_growth" in fl.absent else "(none)")
    lines += _section("outlier nodes (far above the fleet's median):", [
        f"{o.node}: {o.measure} {human_measure(o.measure, o.value)} against a median of "
        f"{human_measure(o.measure, o.median)}" for o in out.itertuples()])
    lines += _section("top suspect of each node:", [
        f"{t.function} ({t.file}:{t.line}) leads on {t.nodes} of {n} nodes, with a score of "
        f"0.5 or more on {t.nodes_strong} (median {t.median_score:.2f}; {t.kinds})"
        for t in tops.itertuples()], empty="(no node has a suspect)")
    return lines
