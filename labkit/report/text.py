"""Plain-text summaries printed by the CLI (the same numbers a notebook shows)."""

from __future__ import annotations

from pathlib import Path

from labkit.analysis import gc_summary
from labkit.capture.gctrace import FLOOD_PER_S
from labkit.frames import load


def gc_summary_lines(run_path: Path) -> list[str]:
    """The ``labkit gctrace`` summary: per generation, pauses, % in GC, tracer overhead."""
    run = load(run_path)
    meta = run.gc_meta
    ev = run.gc_events
    t0 = meta.get("t0_ns") or run.t0_ns  # the tracer's window: it sees nothing before
    end = meta.get("t_end_ns") or (int(ev["t_stop_ns"].max()) if len(ev) else t0)
    wall_s = max(1e-9, (end - t0) / 1e9)
    s = gc_summary(ev, wall_s)
    own = int(ev["in_tracer"].sum()) if len(ev) else 0
    overhead_ms = meta.get("overhead_ns", 0) / 1e6
    lines = [
        f"labkit gctrace: {s.collections:.0f} collections in {wall_s:.3f} s "
        f"(gen0 {s.gen0:.0f}, gen1 {s.gen1:.0f}, gen2 {s.gen2:.0f}); "
        f"{s.collections_per_s:.0f}/s, busiest second {s.max_collections_per_s:.0f}",
        f"  pause total {s.pause_total_ms:.3f} ms, p50 {s.pause_p50_ms:.3f} ms, "
        f"p99 {s.pause_p99_ms:.3f} ms, max {s.pause_max_ms:.3f} ms; "
        f"{s.gc_percent:.2f}% of wall time in GC",
        f"  tracer: {meta.get('per_event_ns', 0) / 1000:.2f} us an event x {s.collections:.0f} "
        f"= {overhead_ms:.3f} ms ({100 * overhead_ms / 1000 / wall_s:.2f}% of wall); "
        f"{own} collection(s) ran in labkit's own sampler thread",
    ]
    if s.max_collections_per_s > FLOOD_PER_S:
        lines.append(f"  warning: over {FLOOD_PER_S:,} collections a second: thresholds this low "
                     "flood the process with collections, and the tracer's cost shows")
    if not meta.get("finished", False):
        lines.append("  note: the program ended without running its exit handlers (os._exit, a "
                     "signal or a cap); events up to the last flush (<= 0.1 s before) are kept")
    lines.append(f"  run directory: {run.path}")
    return lines


def proc_summary_lines(run_path: Path) -> list[str]:
    """Start, end and peak of the process samples."""
    df = load(run_path).proc
    if df.empty:
        return ["process samples: none (the program ended before the first sample)"]
    first, last = df.iloc[0], df.iloc[-1]
    return [
        f"process samples: {len(df)} over {last.t_s - first.t_s:.2f} s; "
        f"rss {first.rss_bytes / 1e6:.1f} -> {last.rss_bytes / 1e6:.1f} MB "
        f"(peak {df.rss_bytes.max() / 1e6:.1f}), threads {first.threads:.0f} -> "
        f"{last.threads:.0f} (peak {df.threads.max():.0f}), fds {first.fds:.0f} -> "
        f"{last.fds:.0f} (peak {df.fds.max():.0f})"
    ]


def run_summary_lines(run_path: Path) -> list[str]:
    """What ``labkit summary RUN`` prints: the run's facts, then one block per capture."""
    run = load(run_path)
    m = run.manifest
    out = m.get("outcome", {})
    target = m.get("target") or {}
    lines = [
        f"run {run.path} ({m.get('kind')}), {m.get('start_utc')} .. {m.get('end_utc')}",
        f"  command: {' '.join(m.get('command', m.get('argv', [])))}",
        f"  outcome: {out.get('reason', '?')}, exit code {out.get('returncode', '?')}",
        f"  python: {target.get('version', '?')} ({target.get('implementation', '?')}), "
        f"gc threshold {target.get('gc_threshold', '?')}",
        f"  files: {', '.join(run.files)} (checksums verified)",
    ]
    from labkit.capture.gctrace import EVENTS_FILE
    from labkit.capture.proc import PROC_FILE

    if run.has(EVENTS_FILE):
        lines += gc_summary_lines(run_path)[:-1]
    if run.has(PROC_FILE):
        lines += proc_summary_lines(run_path)
    return lines
