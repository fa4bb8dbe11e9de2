"""Compact HTML for what a learner touches in a notebook: a run, a comparison of two runs.

Each says what it is, gives its headline figures and what to call next; the terminal's
text (:mod:`labkit.report.text`) stays the one source of the figures.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

from labkit import artifacts as A

if TYPE_CHECKING:
    from labkit.compare import Comparison
    from labkit.frames import Run

STYLE = (".labkit-rich pre{font-size:12px;margin:0.3em 0} .labkit-rich .muted{color:#57606a}"
         " .labkit-rich table td,.labkit-rich table th{padding:0 0.6em;text-align:right}")
NEXT = ((A.GC_EVENTS, "run.gc_events (one row per collection), labkit.analysis.gc_summary"),
        (A.MEMRAY, "run.memray.allocations_at_peak, .growth, .churn, .memory"),
        (A.PROC, "run.proc (RSS, threads, fds over time)"),
        (A.PYSPY_PROFILE, "run.pyspy.functions, run.pyspy.samples"),
        (A.ORIGINS, "run.origins.threads, .tasks, .fds (who created what is alive)"))


def run_html(run: Run) -> str:
    """A run: its facts and each capture's summary, then the frames to read next."""
    from labkit.report.text import run_summary_lines

    lines = run_summary_lines(run)
    head, body = lines[0], lines[1:]
    calls = "".join(f"<li><code>{html.escape(c)}</code></li>" for a, c in NEXT if run.has(a))
    return (f'<div class="labkit-rich"><style>{STYLE}</style><b>{_pre([head])}</b>'
            f"<pre>{_pre(body)}</pre>"
            f'<div class="muted">Next: <ul>{calls}<li><code>labkit.compare(a, b)</code>, '
            f"<code>labkit.postmortem.load_evidence(run=run.path)</code></li></ul></div></div>")


def lines_html(title: str, lines: list[str], calls: str = "") -> str:
    """A summary's terminal lines under a title, with what to call next."""
    nxt = f'<div class="muted">Next: <code>{html.escape(calls)}</code></div>' if calls else ""
    return (f'<div class="labkit-rich"><style>{STYLE}</style><b>{html.escape(title)}</b>'
            f"<pre>{_pre(lines)}</pre>{nxt}</div>")


def _pre(lines: list[str]) -> str:
    """Terminal lines for a ``<pre>``: each escaped as the terminal escapes it (a captured
    name's newline cannot start a line of its own), then for HTML."""
    from labkit.cli.output import printable

    return html.escape("\n".join(printable(ln) for ln in lines))


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
    parts = [f'<div class="labkit-rich"><style>{STYLE}</style><b>B</b> '
             f"<code>{html.escape(str(cmp.b.path))}</code> against <b>A</b> "
             f"<code>{html.escape(str(cmp.a.path))}</code>"]
    fmt = {"float_format": lambda v: f"{v:,.3f}", "border": 0, "index": True}
    if not cmp.summary.empty:
        parts.append("<h4>Summary (B - A)</h4>" + cmp.summary.to_html(**fmt))
    fmt["index"] = False
    if not cmp.allocations.empty:
        parts.append(f"<h4>Allocation sites at the peak, by growth (top {top})</h4>"
                     + cmp.allocations.head(top).to_html(**fmt))
    if not cmp.functions.empty:
        parts.append(f"<h4>py-spy functions, by growth of self share (top {top})</h4>"
                     + cmp.functions.head(top).to_html(**fmt))
    return "".join(parts) + "</div>"
