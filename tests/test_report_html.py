"""The HTML renderings: what a reader's report and the index contain (not how they look)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from labkit.report.display import html_of, mimebundle_of
from labkit.report.html import for_reader, to_html
from labkit.report.index import SIGNATURE_MIME, report_facts, write_index
from labkit.scenarios.base import Signature, SignatureRow


def _sig(ok: bool) -> Signature:
    return Signature("pool-misuse", [
        SignatureRow("retained bytes at end", {"leaky": 65e6, "fixed": math.nan},
                     "leaky >= 16 MiB", ok),
        SignatureRow("requests served", {"leaky": 4000, "fixed": 4000}, "equal", True)])


def _executed() -> nbformat.NotebookNode:
    sig = mimebundle_of(_sig(False))
    chart = ('<img class="labkit-chart" width="900" alt="Chart: RSS" src="data:image/png;'
             'base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAE'
             'hQGAhKmMIQAAAABJRU5ErkJggg==">')
    return new_notebook(cells=[
        new_markdown_cell("# Pool misuse"),
        new_code_cell("leaky = lab.run('leaky')", outputs=[
            new_output("stream", name="stdout",
                       text="leaky: exited, exit code 0, /tmp/labkit-pool-misuse-x1y2/leaky\n"),
            new_output("stream", name="stderr", text="UserWarning: something noisy\n"),
            new_output("display_data", data={"text/html": chart, "text/plain": "Chart"}),
            new_output("display_data", data={"text/html": '<div class="where">'
                                             "/tmp/labkit-listeners-l7dafx28/listeners.py"
                                             "</div>", "text/plain": "where"})]),
        new_markdown_cell("## Predict\nSet `prediction_mib` in the parameters cell.",
                          metadata={"tags": ["learner"]}),
        new_code_cell("nb.table(sig)", outputs=[
            new_output("execute_result", data=sig, execution_count=2)]),
        new_code_cell("check(None, 1.0)", outputs=[
            new_output("execute_result", data={"text/plain": "False"}, execution_count=3)]),
    ], metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                "language": "python"}})


def test_a_signature_carries_its_summary_for_the_index_as_strict_json() -> None:
    bundle = mimebundle_of(_sig(False))
    assert "signature" in bundle["text/html"] and "retained bytes" in bundle["text/plain"]
    summary = json.loads(json.dumps(bundle[SIGNATURE_MIME], allow_nan=False))
    assert (summary["ok"], summary["held"], summary["rows"]) == (False, 1, 2)
    assert summary["failed"] == ["retained bytes at end"]
    assert summary["headline"]["values"] == [["leaky", 65e6], ["fixed", None]]


def test_a_readers_report_has_no_code_warnings_bare_values_or_temporary_paths() -> None:
    nb = _executed()
    reader = for_reader(nb)
    texts = [o for c in reader.cells if c.cell_type == "code" for o in c.outputs]
    assert not any(o.get("name") == "stderr" for o in texts)
    assert not any(o.get("data", {}).get("text/plain") == "False" for o in texts)
    page = to_html(nb, "Pool misuse", reader=True)
    assert "highlight hl-ipython3" not in page and "lab.run(" not in page
    assert "/tmp/" not in page and "(a temporary folder)" in page
    assert '<div class="where">listeners.py</div>' in page  # a file by its name
    assert "prediction_mib" not in page  # the learner's instructions are not the reader's
    assert "prediction_mib" in to_html(nb, "Pool misuse")
    assert "UserWarning" not in page and "<title>Pool misuse</title>" in page
    assert "retained bytes at end" in page and 'alt="Chart: RSS"' in page
    trainer = to_html(nb, "Pool misuse")
    assert "highlight hl-ipython3" in trainer  # the trainer's rendering keeps the code
    assert len(nb.cells[1].outputs) == 4  # the executed notebook itself is untouched


def test_the_index_says_which_lessons_held_with_headline_and_thumbnail(tmp_path: Path) -> None:
    nb = _executed()
    nb.metadata["labkit_report"] = {"source": "10-pool-misuse.py", **report_facts(nb)}
    (tmp_path / "10-pool-misuse.ipynb").write_text(nbformat.writes(nb))
    (tmp_path / "10-pool-misuse.html").write_text("<html></html>")
    (tmp_path / "00-start-here.html").write_text("<html></html>")  # no facts: still listed
    index = write_index(tmp_path, [(tmp_path / "00-start-here.html", "Start here"),
                                   (tmp_path / "10-pool-misuse.html", "Pool misuse")])
    page = index.read_text()
    assert "signature NOT held (1/2 rows); failed: retained bytes at end" in page
    assert '<p class="lesson no">retained bytes at end: leaky 62.0 MiB against fixed -</p>' \
        in page and "expected: leaky &gt;= 16 MiB" in page
    assert page.count('<img src="data:image/png;base64,') == 1
    start = page.split("Pool misuse")[0]
    assert 'href="00-start-here.html"' in start and "no signature in this notebook" in start


def test_each_card_leads_with_the_row_its_signature_declares_as_the_lesson(
        tmp_path: Path) -> None:
    sig = Signature("buffer-growth", [
        SignatureRow("bytes sent (the same work)", {"leaky": 15.3e6, "fixed": 15.3e6},
                     "equal", True),
        SignatureRow("total bytes allocated (memray)", {"leaky": 1.5 * 2**30,
                                                        "fixed": 31.2 * 2**20},
                     "leaky >= 10x fixed", True, lesson=True),
        SignatureRow("allocation rate, bytes/s", {"leaky": 1170.0, "fixed": 3.0},
                     "leaky >= 3x fixed", True)])
    assert sig.summary()["headline"]["metric"] == "total bytes allocated (memray)"
    nb = new_notebook(cells=[new_code_cell("sig", outputs=[
        new_output("execute_result", data=mimebundle_of(sig), execution_count=1)])])
    nb.metadata["labkit_report"] = report_facts(nb)
    (tmp_path / "20-buffer-growth.ipynb").write_text(nbformat.writes(nb))
    (tmp_path / "20-buffer-growth.html").write_text("<html></html>")
    page = write_index(tmp_path, [(tmp_path / "20-buffer-growth.html", "Buffer")]).read_text()
    card = page.split('<div class="card">')[1]
    first = card.split("<p")[1]  # the card's first line is the lesson, not a control row
    assert "total bytes allocated (memray): leaky 1.5 GiB against fixed 31.2 MiB (49x)" in first
    assert "bytes sent" not in card and "e+" not in card


def test_postmortem_and_fleet_cards_have_a_headline(tmp_path: Path) -> None:
    from labkit import fleet
    from labkit.analysis.findings import Findings

    datasets = Path(__file__).resolve().parent.parent / "datasets"
    fl = fleet(datasets / "fleet")
    found = Findings("memory keeps growing: serve (app.py:12) holds 40.0 MiB")
    nb = new_notebook(cells=[
        new_code_cell("found", outputs=[new_output("execute_result", data=mimebundle_of(found),
                                                   execution_count=1)]),
        new_code_cell("fl", outputs=[new_output("execute_result", data=mimebundle_of(fl),
                                                execution_count=2)])])
    assert report_facts(nb)["headline"] == found.verdict
    facts = report_facts(new_notebook(cells=nb.cells[1:]))
    v = fl.verdict()
    assert facts["headline"].startswith(f"{len(v.grew_on)} of {v.nodes} pods grew at the "
                                        "same line: ")
    nb = new_notebook(cells=nb.cells[1:])
    nb.metadata["labkit_report"] = facts
    (tmp_path / "95-fleet.ipynb").write_text(nbformat.writes(nb))
    (tmp_path / "95-fleet.html").write_text("<html></html>")
    page = write_index(tmp_path, [(tmp_path / "95-fleet.html", "Fleet")]).read_text()
    assert f'<p class="lesson">{len(v.grew_on)} of {v.nodes} pods grew' in page
    assert "no signature in this notebook" not in page


def test_a_run_its_captures_and_a_comparison_display_as_compact_html() -> None:
    from labkit import load
    from labkit.analysis.compare import compare

    datasets = Path(__file__).resolve().parent.parent / "datasets"
    run = load(datasets / "pool-misuse" / "leaky")
    page = html_of(run)
    assert "pool-misuse/leaky" in page and "memray:" in page  # what it is, its figures
    assert "run.memray.allocations_at_peak" in page and "run.gc_events" in page  # what next
    assert "memray capture memray.bin" in html_of(run.memray) and \
        ".allocations_at_peak" in html_of(run.memray)
    dump = html_of(load(datasets / "thread-leak" / "leaky").pyspy)
    assert "py-spy capture" in dump and "threads" in dump
    from labkit.analysis import gc_summary

    summary = gc_summary(run.gc_events, run.gc_wall_s)
    assert summary.collections == len(run.gc_events)  # still the Series analysis returns
    assert "collections in" in html_of(summary) and "% of wall time in GC" in html_of(summary)
    cmp = compare(datasets / "pool-misuse" / "fixed", run)
    page = html_of(cmp)
    assert "Summary (B - A)" in page and "memray_peak_bytes" in page
    assert "Allocation sites at the peak, by growth" in page and "serve" in page


def test_data_classes_are_plain_and_a_kernel_shows_them_through_its_formatters() -> None:
    from types import SimpleNamespace

    from IPython.core.formatters import DisplayFormatter

    from labkit import load
    from labkit.report.display import HTML, register

    for cls in HTML:
        assert "_repr_html_" not in vars(cls) and "_repr_mimebundle_" not in vars(cls), cls
    run = load(Path(__file__).resolve().parent.parent / "datasets" / "pool-misuse" / "leaky")
    ip = SimpleNamespace(display_formatter=DisplayFormatter())  # a kernel's, still unregistered
    assert "text/html" not in ip.display_formatter.format(run)[0]
    assert register(ip)
    shown, _ = ip.display_formatter.format(run)
    assert shown["text/html"] == html_of(run)
    bundle, _ = ip.display_formatter.format(_sig(True))
    assert bundle[SIGNATURE_MIME]["ok"] is True and "signature" in bundle["text/html"]


def test_pages_escape_every_name_a_program_chose() -> None:
    from labkit.analysis.findings import Findings
    from labkit.report.flame import flame_html
    from labkit.report.pages import environment
    from labkit.report.postmortem_page import findings_html

    hostile = '<img src=x onerror="alert(1)">'
    found = Findings(verdict=f"heap grew {hostile}", symptoms=[
        {"what": hostile, "evidence": "</li><script>x</script>", "kind": "memory"}],
        suspects=[{"rank": 1, "function": hostile, "file": f"/srv/{hostile}.py", "line": 3,
                   "stack": f"{hostile} < main", "score": 0.5, "kind": "site",
                   "explains": [hostile], "evidence": {hostile: hostile}}], notes=[hostile])
    page = findings_html(found) + flame_html({"n": "a", "f": "", "v": 1, "u": 0},
                                             title=hostile, unit=hostile, note=hostile)
    assert environment().autoescape is True
    assert "<img" not in page and "<script>x" not in page
    assert page.count("&lt;img src=x onerror=") >= 9


def test_a_readable_table_has_plain_grouped_figures_and_file_names() -> None:
    import numpy as np
    import pandas as pd

    from labkit.notebook import readable

    df = pd.DataFrame({"t_s": [0.056872, 734.048461], "rps": [1170.25, 9.150242],
                       "threads": np.array([608, 8], dtype="int64"),
                       "rss_bytes": [1.5 * 2**30, 31.2 * 2**20],
                       "file": ["/tmp/labkit-x-1/app.py", "/usr/lib/python3/threading.py"]})
    page = readable(df).to_html()
    for shown in ("0.0569", "734", "1,170", "9.15", "608", "1.5 GiB", "31.2 MiB", "app.py",
                  "threading.py"):
        assert f">{shown}<" in page, shown
    assert "/tmp/" not in page and "e+" not in page and "0.056872" not in page


def test_plain_numbers_never_use_scientific_notation() -> None:
    from labkit.units import human_measure, plain_number, ratio

    cases = {1170.0: "1,170", 0.3: "0.3", 16.7: "16.7", 0.000123: "0.000123",
             1e12: "1,000,000,000,000",
             -2.5: "-2.5", 0: "0", 18.94: "18.9"}
    for v, want in cases.items():
        assert plain_number(v) == want, v
    assert human_measure("requests/s", 1170.4) == "1,170"
    assert ratio(1.5 * 2**30, 31.2 * 2**20) == "49x" and ratio(608, 8) == "76x"
    assert ratio(1.4, 1.0) == "1.4x" and ratio(1, 0) == ""


def test_a_stop_for_a_prediction_selects_its_cell_and_notifies_in_jupyterlab(
        monkeypatch) -> None:
    from labkit import notebook as nbk
    from labkit import progress
    from labkit.report.stop import NOTIFY, stop_bundle

    js = stop_bundle('set "x" </script>')["application/javascript"]
    assert json.dumps('set "x" </script>') in js  # the message is data, never code
    assert NOTIFY in js and "activeCellIndex" in js and "scrollToItem" in js
    shown: list = []
    monkeypatch.delenv(progress.REPORT_ENV, raising=False)
    monkeypatch.setattr(progress, "where", lambda: "notebook")
    monkeypatch.setattr("IPython.display.display", lambda obj, raw=False: shown.append(obj))
    try:
        nbk.predict_first({"prediction_mib": None})
    except nbk.PredictFirst as exc:
        assert "prediction_mib" in str(exc)
    else:
        raise AssertionError("no stop")
    assert shown and "prediction_mib" in shown[0]["application/javascript"]
