"""The recorded datasets: complete, verified, small, and still showing their signatures."""

from __future__ import annotations

import html
from pathlib import Path

import pytest

from labkit import load
from labkit.report.display import html_of
from labkit.runner import recorded
from labkit.scenarios import NAMES, get_spec

DATASETS = Path(__file__).resolve().parent.parent / "datasets"


def test_every_scenario_and_variant_is_recorded_and_verifies() -> None:
    for name in NAMES:
        for v in get_spec(name).variants:
            run = load(DATASETS / name / v)  # checks schema and every sha256
            assert run.manifest["params"]["scenario"] == name
            assert run.manifest["params"]["variant"] == v
            assert run.manifest["params"]["quick"] is True
            assert run.manifest["outcome"]["reason"] == "exited"


def test_datasets_stay_small() -> None:
    sizes = [p.stat().st_size for p in DATASETS.rglob("*") if p.is_file()]
    assert sum(sizes) < 30 * 1024 * 1024
    assert max(sizes) < 5 * 1024 * 1024


@pytest.mark.parametrize("name", NAMES)
def test_recorded_runs_show_their_signature(name: str) -> None:
    sig = recorded(name, DATASETS)
    assert sig.ok, [(r.metric, r.values, r.expect) for r in sig.rows if not r.ok]


def test_readme_signature_table_is_what_the_recorded_runs_show() -> None:
    from labkit.report.text import signature_lines

    readme = (DATASETS.parent / "README.md").read_text()
    start = readme.index("```\npool-misuse: shown") + 4
    block = readme[start:readme.index("```", start)]
    lines = [ln for name in NAMES for ln in signature_lines(recorded(name, DATASETS))]
    expected = "\n".join([*lines, f"signatures shown: {len(NAMES)}/{len(NAMES)}"]) + "\n"
    assert block == expected, "README's table is stale: paste `labkit signatures --from datasets`"


def test_a_signature_renders_readably_and_answers_queries() -> None:
    sig = recorded("pool-misuse", DATASETS)
    page = html_of(sig)
    assert "&#10004;" in page and "&#10008;" not in page  # every row held, as marks
    assert " MiB</td>" in page and "e+0" not in page  # human sizes, no scientific notation
    assert html.escape(sig.row("retained bytes at end").expect) in page  # not cut off
    leaky = sig.value("retained bytes at end", "leaky")
    assert leaky == sig.rows[0].values["leaky"] and leaky > 16 * 1024 * 1024
    with pytest.raises(KeyError, match="no metric"):
        sig.row("nothing like this")
