"""The postmortem's HTML report, written for a reader: one self-contained page.

What ran (command, host, Python, time) heads the page; the verdict and the ranked suspects
come next (each with what it explains, its evidence and its stack), then the charts of
each capture given and the flamegraphs, then where the evidence came from. No code cells,
no temporary paths, no script or style from the network: the page's
Content-Security-Policy forbids every request, images are inline PNGs (drawn at twice the
display resolution) with alt text, and the flamegraphs use labkit's own viewer
(:mod:`labkit.report.flame`). Built straight from the computed findings: no kernel and no
second load of the captures.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from labkit.analysis.findings import RANKING, Findings
from labkit.charts.export import figure_html
from labkit.report import views
from labkit.report.flame import flame_html, viewer_css, viewer_js
from labkit.report.pages import render, trusted
from labkit.units import human_bytes

CSP = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
       "script-src 'unsafe-inline'; base-uri 'none'; form-action 'none'")
FINDINGS_STYLE = """
.verdict{font-size:1.15em;background:#fff8c5;border-left:4px solid #d4a72c;padding:0.6em 0.9em}
.suspect{border:1px solid #d0d7de;border-radius:6px;padding:0.6em 0.9em;margin:0.8em 0}
.suspect h3{margin:0;font-size:1.05em} .suspect code{font-size:1em}
.rank{display:inline-block;min-width:1.6em;color:#fff;background:#cf222e;border-radius:3px;
 text-align:center;margin-right:0.4em}
.score{color:#57606a;font-size:0.9em} .where{color:#57606a;font-size:0.85em;word-break:break-all}
.explains{margin:0.3em 0} .suspect pre{background:#f6f8fa;padding:0.5em;overflow-x:auto;
 font-size:12px} .muted{color:#57606a}
.note{border-left:4px solid #0969da;padding:0.3em 0.8em;background:#ddf4ff}
"""  # class selectors only: safe inside a notebook
STYLE = """
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;color:#24292f;
 max-width:960px;margin:2em auto;padding:0 1em}
h1{font-size:1.6em;margin-bottom:0.2em} h2{margin-top:1.8em;border-bottom:1px solid #d0d7de}
img{max-width:100%;height:auto} .sources td{padding:0 1em 0 0;vertical-align:top}
""" + FINDINGS_STYLE


def _sources(ev: Any) -> dict[str, Any]:
    what = {"memray": "memray capture", "pyspy": "py-spy profile", "dump": "py-spy dump",
            "gc": "GC trace", "proc": "process samples", "origins": "thread and fd origins",
            "fd table": "descriptor table at its peak"}
    rows = []
    for key, path in (ev.sources or {}).items():
        p = Path(path)
        rows.append({"what": what.get(key, key), "name": p.name,
                     "size": human_bytes(p.stat().st_size) if p.is_file() else "run directory"})
    recorded = ""
    if ev.memray is not None:
        m = ev.memray.metadata
        how = ("every Python allocation (--trace-python-allocators)"
               if m.trace_python_allocators else "pymalloc arenas, not each small object")
        records = (f"{m.total_allocations:,} call stacks aggregated by memray (--aggregate)"
                   if getattr(ev.memray, "aggregated", False) else
                   f"{m.total_allocations:,} allocation records")
        recorded = (f"{records}, {how}, "
                    f"{(m.end_time - m.start_time).total_seconds():.1f} s")
    return {"sources": rows, "recorded": recorded}


def what_ran(ev: Any) -> list[tuple[str, str]]:
    """What the page's evidence came from, as (what, value) rows: the command, the host, the
    Python and the time, from the run's manifest, else from memray's own metadata; a fact
    that no capture recorded says so."""
    import shlex

    facts = {"command": "", "host": "", "Python": "", "time": ""}
    if ev.run_dir:
        from labkit.errors import LabkitError
        from labkit.rundir import read_manifest

        try:
            m = read_manifest(ev.run_dir, verify=False)
        except LabkitError:
            m = {}
        host, target = m.get("host") or {}, m.get("target") or {}
        cmd = m.get("command") or m.get("argv") or []
        facts["command"] = shlex.join(str(a) for a in cmd) if isinstance(cmd, list) else ""
        facts["host"] = ", ".join(str(host[k]) for k in ("hostname", "platform") if host.get(k))
        facts["Python"] = " ".join(str(target.get(k) or host.get(k) or "") for k in
                                   ("implementation", "version_full")).strip() or str(
            host.get("version", ""))
        if m.get("start_utc"):
            facts["time"] = f"{m['start_utc']} to {m.get('end_utc', '?')} (UTC)"
    if ev.memray is not None:
        md = ev.memray.metadata
        facts["command"] = facts["command"] or str(md.command_line)
        facts["time"] = facts["time"] or f"{md.start_time:%Y-%m-%d %H:%M:%S} to " \
            f"{md.end_time:%H:%M:%S} (the capture's clock)"
    return [(k, v or "not recorded by these captures") for k, v in facts.items()]


def findings_html(found: Findings) -> str:
    """The verdict, the symptoms and the suspects as an HTML fragment (what a notebook
    shows for :class:`labkit.analysis.findings.Findings`, and the top of the page)."""
    return render("findings.html.j2", found=found, ranking=RANKING)


def postmortem_page(found: Findings, ev: Any, *, title: str = "labkit postmortem") -> str:
    """The whole report page for ``found`` (from :func:`labkit.analysis.findings.findings`) and
    the loaded evidence ``ev`` it was computed from."""
    return render("postmortem.html.j2", title=title, csp=CSP,
                  style=trusted(STYLE + viewer_css()), script=trusted(viewer_js()),
                  findings=trusted(findings_html(found)), ran=what_ran(ev),
                  charts=[trusted(figure_html(c.figure, c.alt)) for c in views.charts(ev)],
                  flames=[trusted(flame_html(f.tree, title=f.title, unit=f.unit, viewer=False))
                          for f in views.flames(ev, found)], **_sources(ev))
