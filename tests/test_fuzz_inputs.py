"""A small seeded run of bench/fuzz_inputs.py: mutated runs through every verb give a
result or one line, never a traceback."""

from __future__ import annotations

import importlib.util
import io
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
BENCH = Path(__file__).resolve().parents[1] / "bench" / "fuzz_inputs.py"


def _fuzz_module():
    spec = importlib.util.spec_from_file_location("fuzz_inputs", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_a_hundred_mutated_runs_give_results_or_one_line_errors() -> None:
    log = io.StringIO()
    counts = _fuzz_module().fuzz(100, seed=11, batch=50, cli_every=50, log=log)
    assert counts["crashes"] == 0 and counts["cli faults"] == 0, log.getvalue()[:4000]
    assert counts["cases"] == 100 and counts["cli runs"] == 2
    # the mutations reach both outcomes: some readers refuse, some still read
    assert counts["one-line errors"] > 0 and counts["successes"] > 0


def test_mutations_change_the_file_and_captures_are_re_signed(tmp_path: Path) -> None:
    import json

    from labkit.rundir import read_manifest

    mod = _fuzz_module()
    changed = resigned = 0
    for i in range(30):
        run, what = mod.make_case(i, 5, tmp_path)
        name = what.split(": ")[1].rsplit("/", 1)[1]
        src = mod.ROOT / what.split(": ")[1].rsplit("/", 1)[0]
        changed += (run / name).read_bytes() != (src / name).read_bytes()
        if name != "manifest.json":
            m = json.loads((run / "manifest.json").read_text())
            if any(a["name"] == name for a in m["artifacts"]):
                read_manifest(run)  # the checksums match: the mutation reaches the parser
                resigned += 1
    assert changed >= 25 and resigned >= 5


@pytest.mark.parametrize("case", [509, 938])  # found by the fuzzer: SIGSEGV, SIGABRT
def test_a_capture_that_crashes_memrays_reader_is_one_line(
        tmp_path: Path, case: int, capsys: pytest.CaptureFixture[str]) -> None:
    from labkit.cli import main

    run, what = _fuzz_module().make_case(case, 1, tmp_path)
    assert "memray.bin" in what
    assert main(["summary", str(run)]) == 2  # and this process is still alive
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "crashes memray's reader" in err[0], err
