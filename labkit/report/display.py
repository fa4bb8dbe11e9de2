"""How labkit's objects show in Jupyter, decided here and nowhere else.

Data classes (a run, a capture, a GC summary, a comparison, a signature, findings, a fleet)
know nothing of display. :func:`register` tells IPython's display formatters how to show
each of them; the extension (``%load_ext labkit``) and ``import labkit.notebook`` call it.
:func:`html_of` and :func:`mimebundle_of` give the same renderings outside a kernel.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from labkit.analysis import GCSummary
from labkit.analysis.compare import Comparison
from labkit.analysis.findings import Findings
from labkit.fleetdb import Fleet
from labkit.frames import Run
from labkit.frames.memray import MemrayCapture
from labkit.frames.pyspy import PySpyCapture
from labkit.report import rich, text
from labkit.report.index import HEADLINE_MIME, SIGNATURE_MIME
from labkit.report.postmortem_page import FINDINGS_STYLE, findings_html
from labkit.scenarios.base import Signature


def _memray_html(cap: MemrayCapture) -> str:
    return rich.lines_html(f"memray capture {cap.path.name}", text.memray_summary_lines(cap),
                           ".allocations_at_peak, .growth, .leaks, .churn, .memory, .summary")


def _pyspy_html(cap: PySpyCapture) -> str:
    lines = (text.pyspy_summary_lines(cap) if cap.speedscope_path is not None else []) + \
        (text.threads_summary_lines(cap) if cap.dump_path is not None else [])
    return rich.lines_html("py-spy capture", lines, ".functions, .samples, .threads")


def _findings_html(found: Findings) -> str:
    return f"<div><style>{FINDINGS_STYLE}</style>{findings_html(found)}</div>"


def _fleet_html(fl: Fleet) -> str:
    return rich.lines_html("fleet", text.fleet_lines(fl),
                           ".runs, .growing_sites(), .outliers(), .top_suspects(), .sql(query)")


HTML: dict[type, Callable[[Any], str]] = {
    Run: rich.run_html,
    MemrayCapture: _memray_html,
    PySpyCapture: _pyspy_html,
    GCSummary: rich.gc_summary_html,
    Comparison: rich.comparison_html,
    Signature: text.signature_html,
    Findings: _findings_html,
    Fleet: _fleet_html,
}


def html_of(obj: Any) -> str:
    """The HTML that ``obj`` shows in a notebook (a KeyError for a type labkit does not show)."""
    for cls in type(obj).__mro__:
        if cls in HTML:
            return HTML[cls](obj)
    raise KeyError(f"labkit shows no {type(obj).__name__} as HTML")


def mimebundle_of(obj: Any, include: Any = None, exclude: Any = None) -> dict[str, Any]:
    """A signature's bundle: its HTML, its terminal text, and its summary under
    :data:`SIGNATURE_MIME` for the report index; findings' and a fleet's: their HTML and
    their headline under :data:`HEADLINE_MIME`. Other objects give only their HTML."""
    if isinstance(obj, Signature):
        return {"text/html": text.signature_html(obj),
                "text/plain": "\n".join(text.signature_lines(obj)),
                SIGNATURE_MIME: obj.summary()}
    if isinstance(obj, (Findings, Fleet)):
        return {"text/html": html_of(obj), HEADLINE_MIME: {"headline": headline_of(obj)}}
    return {"text/html": html_of(obj)}


def headline_of(obj: Findings | Fleet) -> str:
    """The one line an index card leads with: a postmortem's verdict (the first program's,
    when captures of several were given, with how many more); for a fleet, how many pods
    grew at the same line ("4 of 20 pods grew at the same line: serve (app.py:12)")."""
    if isinstance(obj, Findings):
        first, *more = obj.verdict.split(" | ")
        return first + (f" (and {len(more)} more program{'s' * (len(more) > 1)})"
                        if more else "")
    v = obj.verdict()
    if v.site is None:
        return f"no line grew on two of the {v.nodes} pods or more"
    s = v.site
    return (f"{len(v.grew_on)} of {v.nodes} pods grew at the same line: {s.get('function')} "
            f"({s.get('file')}:{s.get('line')})")


def register(ip: Any = None) -> bool:
    """Register every renderer with ``ip``'s display formatters (the running IPython when
    None). Returns False, changing nothing, outside IPython. Safe to call again."""
    if ip is None:
        try:
            from IPython import get_ipython
        except ImportError:
            return False
        ip = get_ipython()
    if ip is None:
        return False
    formatters = ip.display_formatter
    for cls, fn in HTML.items():
        formatters.formatters["text/html"].for_type(cls, fn)
    for cls in (Signature, Findings, Fleet):
        formatters.mimebundle_formatter.for_type(cls, mimebundle_of)
    return True
