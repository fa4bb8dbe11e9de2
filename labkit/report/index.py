"""The reports' index: a card per report with whether its lessons held.

Facts are gathered from each executed notebook when it is rendered (:func:`report_facts`,
stored in the ``.ipynb``'s ``labkit_report`` metadata) and read back by
:func:`write_index`, so an index can be rewritten without executing anything again.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from labkit.outputs import write_text_atomic
from labkit.report.pages import render, trusted
from labkit.units import human_measure, ratio

SIGNATURE_MIME = "application/vnd.labkit.signature+json"  # a signature's summary in an output
HEADLINE_MIME = "application/vnd.labkit.headline+json"  # {"headline": str}: a page's one line


def report_facts(nb: Any) -> dict[str, Any]:
    """What the index shows of an executed notebook: its signatures' summaries (see
    :meth:`labkit.scenarios.base.Signature.summary`), its first headline (a postmortem's
    verdict, a fleet's "4 of 20 pods grew at the same line") and a thumbnail of its first
    chart."""
    sigs, thumb, headline = [], None, None
    for cell in nb.cells:
        for out in cell.get("outputs", []) if cell.get("cell_type") == "code" else []:
            data = out.get("data", {})
            if SIGNATURE_MIME in data:
                sigs.append(data[SIGNATURE_MIME])
            if headline is None and isinstance(data.get(HEADLINE_MIME), dict):
                headline = str(data[HEADLINE_MIME].get("headline") or "") or None
            chart = re.search(r'class="labkit-chart".*?src="data:image/png;base64,([^"]+)"',
                              str(data.get("text/html", "")), re.S)
            if thumb is None and chart:
                thumb = _thumbnail(chart.group(1))
    return {"signatures": sigs, "thumbnail": thumb, "headline": headline}


def _thumbnail(png_b64: str, width: int = 320) -> str:
    import base64
    import io

    from PIL import Image

    im = Image.open(io.BytesIO(base64.b64decode(png_b64)))
    im.thumbnail((width, width * 2))
    buf = io.BytesIO()
    im.convert("RGB").save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


INDEX_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
INDEX_STYLE = """
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;max-width:1000px;
 margin:2em auto;padding:0 1em;color:#24292f}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(300px,1fr));gap:1em}
.card{border:1px solid #d0d7de;border-radius:6px;padding:0.8em}
.card img{width:100%;height:auto;border:1px solid #eee} .card h2{font-size:1.05em;margin:0.2em 0}
.lesson{font-weight:600;margin:0.3em 0}
.ok{color:#1a7f37} .no{color:#cf222e;font-weight:bold} .muted{color:#57606a;font-size:0.9em}
"""


def _facts_of(report: Path) -> dict[str, Any]:
    """The facts stored in a report's executed notebook (empty if there is none)."""
    from labkit.errors import LabkitError
    from labkit.safefile import read_json

    try:  # a regular file only: a FIFO or link left there is no report's notebook
        doc = read_json(report.with_suffix(".ipynb"), "notebook", follow_symlinks=False)
        facts = doc["metadata"]["labkit_report"]
        return facts if isinstance(facts, dict) else {}
    except (LabkitError, KeyError, TypeError):
        return {}


def _signatures(sigs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What a card says of each signature: its lesson row first (``headline``: the metric,
    each variant's figure and their ratio; ``expect``), then held or not and its failed rows."""
    out = []
    for sig in sigs:
        head = sig.get("headline") or {}
        headline = expect = ""
        if head:
            metric = str(head.get("metric"))
            values = [(str(k), v) for k, v in head.get("values") or []]
            vals = " against ".join(f"{k} {_fig(metric, v)}" for k, v in values)
            nums = [float(v) for _, v in values if isinstance(v, (int, float))]
            times = ratio(nums[0], nums[1]) if len(values) == 2 == len(nums) else ""
            headline = f"{metric}: {vals}" + (f" ({times})" if times else "")
            expect = f"expected: {head.get('expect')}"
        out.append({"name": str(sig.get("scenario", "")), "ok": bool(sig.get("ok")),
                    "held": sig.get("held"), "rows": sig.get("rows"),
                    "failed": [str(m) for m in sig.get("failed", [])], "headline": headline,
                    "expect": expect, "lesson_ok": bool(head.get("ok", sig.get("ok")))})
    return out


def _fig(metric: str, v: Any) -> str:
    """A figure as its metric reads (:func:`labkit.units.human_measure`), ``-`` if none."""
    return human_measure(metric, v) if isinstance(v, (int, float)) else "-"


def write_index(out_dir: Path, reports: list[tuple[Path, str]]) -> Path:
    """``index.html``: a card per report (relative links, nothing external) with the
    thumbnail of its first chart, whether each signature in it held, and its headline
    figures, read from the facts stored with the report (:func:`report_facts`)."""
    cards = []
    for path, title in reports:
        facts = _facts_of(path)
        thumb = facts.get("thumbnail")
        cards.append({
            "href": path.name, "title": title,
            "thumb": thumb if isinstance(thumb, str) and thumb.startswith(
                "data:image/png;base64,") else None,
            "signatures": _signatures(facts.get("signatures", [])),
            "headline": facts.get("headline") if isinstance(facts.get("headline"), str)
            else None,
            "kind": "reader's report" if facts.get("reader") else "trainer's report (with code)"})
    page = render("index.html.j2", csp=INDEX_CSP, style=trusted(INDEX_STYLE), cards=cards)
    index = out_dir / "index.html"
    write_text_atomic(index, page)
    return index
