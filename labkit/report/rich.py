"""Compact HTML for what a learner touches in a notebook: a run, a comparison of two runs.

Each says what it is, gives its headline figures and what to call next; the terminal's
text (:mod:`labkit.report.text`) stays the one source of the figures.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from labkit import artifacts as A
from labkit.report.pages import macro, trusted
from labkit.units import printable

if TYPE_CHECKING:
    from labkit.analysis.compare import Comparison
    from labkit.frames import Run

STYLE = (".labkit-rich pre{font-size:12px;margin:0.3em 0} .labkit-rich .muted{color:#57606a}"
         " .labkit-rich table td,.labkit-rich table th{padding:0 0.6em;text-align:right}")
NEXT = ((A.GC_EVENTS, "run.gc_events (one row per collection), labkit.analysis.gc_summary"),
        (A.MEMRAY, "run.memray.allocations_at_peak, .growth, .churn, .memory"),
        (A.PROC, "run.proc (RSS, threads, fds over time)"),
        (A.PYSPY_PROFILE, "run.pyspy.functions, run.pyspy.samples"),
        (A.ORIGINS, "run.origins.threads, .tasks, .fds (who created what is alive)"))


def _macro(name: str) -> Any:
    return macro("rich.html.j2", name, style=trusted(STYLE))


def run_html(run: Run) -> str:
    """A run: its facts and each capture's summary, then the frames to read next."""
    from labkit.report.text import run_summary_lines

    lines = run_summary_lines(run)
    return str(_macro("run")(printable(lines[0]), _pre(lines[1:]),
                             [c for a, c in NEXT if run.has(a)]))


def lines_html(title: str, lines: list[str], calls: str = "") -> str:
    """A summary's terminal lines under a title, with what to call next."""
    return str(_macro("lines")(title, _pre(lines), calls))


def _pre(lines: list[str]) -> list[str]:
    """Terminal lines for a ``<pre>``, each escaped as the terminal escapes it (a captured
    name's newline cannot start a line of its own); the template escapes them for HTML."""
    return [printable(ln) for ln in lines]


def gc_summary_html(s: Any) -> str:
    """A GC summary (:func:`labkit.analysis.gc_summary`) as one line of figures."""
    line = (f"{s.collections:,.0f} collections in {s.wall_s:.2f} s (gen0 {s.gen0:,.0f}, gen1 "
            f"{s.gen1:,.0f}, gen2 {s.gen2:,.0f}; {s.collections_per_s:,.0f}/s, busiest second "
            f"{s.max_collections_per_s:,.0f}); pauses {s.pause_total_ms:,.1f} ms in total, "
            f"p50 {s.pause_p50_ms:.3f} ms, p99 {s.pause_p99_ms:.3f} ms, max "
            f"{s.pause_max_ms:.2f} ms; {s.gc_percent:.2f}% of wall time in GC")
    return lines_html("GC summary", [line], "labkit.analysis.pauses_by_generation(events)")


def comparison_html(cmp: Comparison, top: int = 10) -> str:
    """B against A: the summary deltas, then the sites and functions that grew most."""
    fmt: dict[str, Any] = {"float_format": lambda v: f"{v:,.3f}", "border": 0}
    tables = []
    if not cmp.summary.empty:  # DataFrame.to_html escapes cell text itself
        tables.append(("Summary (B - A)", trusted(cmp.summary.to_html(**fmt, index=True))))
    if not cmp.allocations.empty:
        tables.append((f"Allocation sites at the peak, by growth (top {top})",
                       trusted(cmp.allocations.head(top).to_html(**fmt, index=False))))
    if not cmp.functions.empty:
        tables.append((f"py-spy functions, by growth of self share (top {top})",
                       trusted(cmp.functions.head(top).to_html(**fmt, index=False))))
    return str(_macro("comparison")(str(cmp.a.path), str(cmp.b.path), tables))
