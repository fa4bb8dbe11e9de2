"""The terminal outputs on the recorded datasets, held byte for byte across restructurings.

Each case runs the real ``labkit`` verb in-process over ``datasets/`` and compares what it
prints with ``tests/golden/<case>.txt``. A deliberate change of output (a unit, a wording)
regenerates the files with ``LABKIT_REGEN_GOLDEN=1 python -m pytest tests/test_cli_golden.py``
and the commit shows the difference; anything else that changes the text fails here.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import pytest

from labkit.cli import main

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).resolve().parent / "golden"
RUNS = sorted(p.parent.relative_to(ROOT).as_posix()
              for p in (ROOT / "datasets").glob("*/*/manifest.json"))
PAIRS = [(f"{s}/fixed", f"{s}/leaky") for s in
         sorted({Path(r).parent.as_posix() for r in RUNS})
         if (ROOT / s / "fixed").is_dir() and (ROOT / s / "leaky").is_dir()]


def _cases() -> list[tuple[str, list[str]]]:
    cases = [(f"summary-{r}", ["summary", r]) for r in RUNS]
    cases += [(f"postmortem-{r}", ["postmortem", r]) for r in RUNS]
    cases += [(f"compare-{a}", ["compare", a, b]) for a, b in PAIRS]
    cases += [("fleet", ["fleet", "datasets/fleet"]),
              ("fleet-by-requests", ["fleet", "datasets/fleet", "--by", "requests"]),
              ("signatures", ["signatures", "--from", "datasets"])]
    return [(name.replace("datasets/", "").replace("/", "-"), argv) for name, argv in cases]


def test_every_dataset_run_is_covered() -> None:
    assert len(RUNS) >= 15 and len(PAIRS) >= 5


@pytest.mark.parametrize(("name", "argv"), _cases(), ids=[n for n, _ in _cases()])
def test_terminal_output_unchanged(name: str, argv: list[str], capsys: pytest.CaptureFixture,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    code = main(argv)
    out = capsys.readouterr().out
    assert code in (0, 1), (code, out)
    text = f"$ labkit {' '.join(argv)}\n[exit {code}]\n{out}"
    path = GOLDEN / f"{name}.txt"
    if os.environ.get("LABKIT_REGEN_GOLDEN") == "1":
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(text)
    assert path.is_file(), f"no golden output for {name}: run with LABKIT_REGEN_GOLDEN=1"
    want = path.read_text()
    assert text == want, "".join(difflib.unified_diff(
        want.splitlines(True), text.splitlines(True), "golden", "now"))
