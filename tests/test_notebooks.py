"""Notebooks: each executes headless live and in replay, and says which it did."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import nbformat
import pytest

from labkit import notebook as nb
from labkit.report.html import notebook_paths, title_of

NOTEBOOKS = notebook_paths()
SCENARIO_NOTEBOOKS = [p for p in NOTEBOOKS if p.stem[:2] not in ("00", "90", "95")]
# 90-postmortem and 95-fleet always read recorded files: replay=True changes nothing in them,
# and the live pass executes them
REPLAYED = [p for p in NOTEBOOKS if p.stem[:2] not in ("90", "95")]
EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["']\s*(?:https?:)?//""", re.I)


def test_the_lab_has_its_notebooks() -> None:
    stems = [p.stem for p in NOTEBOOKS]
    assert stems[0] == "00-start-here" and stems[-2:] == ["90-postmortem", "95-fleet"]
    assert len(SCENARIO_NOTEBOOKS) == 6


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_each_notebook_has_a_parameters_cell(path: Path) -> None:
    import jupytext

    cells = jupytext.read(path).cells
    params = [c for c in cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1 and params[0].cell_type == "code"
    assert "replay" in params[0].source


def _outputs_text(ipynb: Path) -> str:
    nbk = nbformat.read(ipynb, as_version=4)
    errors = [o for c in nbk.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors, errors
    return "\n".join(o.get("text", "") for c in nbk.cells if c.cell_type == "code"
                     for o in c.get("outputs", []) if o.get("output_type") == "stream")


@pytest.mark.slow
def test_every_notebook_executes_live_and_says_so(live_reports: Path) -> None:
    for path in NOTEBOOKS:
        ipynb = live_reports / f"{path.stem}.ipynb"
        assert (live_reports / f"{path.stem}.html").is_file()
        text = _outputs_text(ipynb)
        if path in SCENARIO_NOTEBOOKS:
            assert "running live (quick preset)" in text, path.stem
            assert "replaying" not in text, path.stem
    assert nbformat.read(live_reports / "10-pool-misuse.ipynb", as_version=4)["metadata"]


@pytest.fixture(scope="module")
def replay_reports(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The notebooks that can replay, executed with ``replay=True`` (the recorded datasets)."""
    from labkit.report.html import render_all

    out = tmp_path_factory.mktemp("reports-replay")
    render_all(out, [p.stem for p in REPLAYED], parameters={"replay": True})
    return out


@pytest.mark.slow
def test_every_notebook_executes_in_replay_and_says_so(replay_reports: Path) -> None:
    assert {p.stem for p in replay_reports.glob("*.ipynb")} == {p.stem for p in REPLAYED}
    for path in REPLAYED:
        text = _outputs_text(replay_reports / f"{path.stem}.ipynb")
        if path in SCENARIO_NOTEBOOKS:
            assert "replaying the recorded runs" in text and "replay=True" in text, path.stem
            assert "running live" not in text


@pytest.mark.slow
def test_reports_are_signed_offline_and_indexed(live_reports: Path) -> None:
    from nbformat.sign import NotebookNotary

    notary = NotebookNotary()
    for path in NOTEBOOKS:
        nbk = nbformat.read(live_reports / f"{path.stem}.ipynb", as_version=4)
        assert notary.check_signature(nbk), f"{path.stem}.ipynb is not signed"
        page = (live_reports / f"{path.stem}.html").read_text()
        assert not EXTERNAL.findall(page), (path.stem, EXTERNAL.findall(page)[:3])
        assert "cdnjs" not in page and "require.js" not in page
        title = re.search(r"<title>(.*?)</title>", page)
        assert title and html.unescape(title.group(1)) == title_of(path), path.stem
        assert "UserWarning" not in page, path.stem  # IPython's IFrame advice, say
        assert "No description has been provided" not in page, path.stem  # every chart: alt
        assert "<progress" not in page, path.stem  # progress shows live, never in a report
        if path.stem == "30-gc-tuning":  # the control degrades to a note in a report
            assert "a control here reruns the workload" in page
        facts = nbk.metadata["labkit_report"]
        assert facts["thumbnail"].startswith("data:image/png;base64,"), path.stem
        if path in SCENARIO_NOTEBOOKS:
            assert [s["ok"] for s in facts["signatures"]] == [True], path.stem
    index = (live_reports / "index.html").read_text()
    for path in NOTEBOOKS:
        assert f'href="{path.stem}.html"' in index
    assert index.count("signature held") == len(SCENARIO_NOTEBOOKS)
    assert index.count('<img src="data:image/png;base64,') == len(NOTEBOOKS)


def test_replay_when_a_live_capture_is_impossible(monkeypatch, capsys) -> None:
    monkeypatch.setattr(nb, "live_capture_blocker", lambda name: "py-spy cannot attach here")
    lab = nb.Scenario("thread-leak")
    assert lab.mode == "replay"
    out = capsys.readouterr().out
    assert "replaying the recorded runs" in out and "py-spy cannot attach here" in out
    assert lab.run("leaky").manifest["params"]["variant"] == "leaky"


def test_exercise_check_tells_right_from_wrong(capsys) -> None:
    right = nb.check(100, 110, rel=0.2, what="threads")
    assert right and repr(right).startswith("Right") and "&#10004;" in right._repr_html_()
    assert not nb.check(0, 1.2, factor=3) and not nb.check(0, 1.2, rel=0.9)  # 0 is never right
    assert not nb.check(-50, 50, rel=0.5) and nb.check(2.0, 1.2, factor=3)
    assert nb.check(None, 5).ok is None
    with pytest.raises(ValueError):
        nb.check(1, 1, rel=1.0)
    wrong = nb.check(50, 110, rel=0.2)
    assert not wrong and repr(wrong).startswith("Not quite") and "&#10008;" in \
        wrong._repr_html_()
    assert repr(nb.check(None, 110)).startswith("No prediction yet")


def test_a_scenario_measures_nothing_until_the_learner_predicts(monkeypatch) -> None:
    monkeypatch.delenv(nb.REPORT_ENV, raising=False)
    lab = nb.Scenario("pool-misuse", replay=True, predictions={"prediction_mib": None})
    with pytest.raises(nb.PredictFirst) as caught:
        lab.run("leaky")
    assert lab.runs == {}
    shown = caught.value._render_traceback_()
    assert len(shown) == 1 and "set prediction_mib in the parameters cell" in shown[0]
    lab.predictions["prediction_mib"] = 60
    assert lab.run("leaky").manifest["params"]["variant"] == "leaky"
    monkeypatch.setenv(nb.REPORT_ENV, "1")  # a report shows every answer
    assert nb.Scenario("pool-misuse", replay=True,
                       predictions={"prediction_mib": None}).run("fixed")


@pytest.mark.slow
def test_run_all_in_a_real_kernel_stops_before_the_first_answer(tmp_path: Path,
                                                                monkeypatch) -> None:
    import jupytext
    import papermill

    from labkit.report.html import resolve

    monkeypatch.delenv(nb.REPORT_ENV, raising=False)
    source = jupytext.read(resolve("10-pool-misuse"))
    out = tmp_path / "run-all.ipynb"
    with pytest.raises(papermill.PapermillExecutionError):
        papermill.execute_notebook(source, str(out), parameters={"replay": True},
                                   kernel_name="python3", progress_bar=False, cwd=tmp_path)
    done = nbformat.read(out, as_version=4)
    outputs = [o for c in done.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    text = json.dumps(outputs)
    assert "Predict first: set prediction_mib" in text
    assert "signature" not in text and "labkit-chart" not in text  # no answer shown
