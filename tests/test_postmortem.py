"""``labkit postmortem``: real incident files in, one offline report naming the suspects."""

from __future__ import annotations

import html
import re
import sys
from pathlib import Path

import pytest

from labkit.analysis.clues import suspects
from labkit.analysis.findings import findings
from labkit.frames.evidence import load_evidence
from tests.conftest import assert_clean_error, labkit

DATASETS = Path(__file__).resolve().parent.parent / "datasets"
MEMRAY = DATASETS / "pool-misuse" / "leaky" / "memray.bin"
PROC = DATASETS / "fd-leak" / "leaky" / "proc.csv"
DUMP = DATASETS / "thread-leak" / "leaky" / "pyspy.dump.json"
SPEEDSCOPE = DATASETS / "gateway-load" / "leaky" / "pyspy.speedscope.json"


def test_suspects_name_the_leaks_in_recorded_incidents() -> None:
    ev = load_evidence(memray=MEMRAY, proc=PROC, dump=DUMP, pyspy=SPEEDSCOPE,
                       gc=DATASETS / "gc-tuning" / "default")
    s = suspects(ev)
    assert list(s.columns) == ["kind", "suspect", "evidence", "score", "code"]
    assert s.score.is_monotonic_decreasing
    top_site = s[s.kind.str.contains("allocation site")].iloc[0]
    assert top_site.suspect.startswith("serve (pool_misuse.py:")
    assert any(s.kind == "fds growth")
    parked = s[s.kind == "parked threads"].iloc[0]
    assert parked.suspect == "_poll (thread_leak.py:54)"  # the user's line, not queue.py
    assert parked.evidence.startswith("200 of ") and "Condition.wait" in parked.evidence
    assert any(s.kind == "garbage collector")
    cpu = s[s.kind == "CPU"]
    assert len(cpu) and cpu.suspect.str.contains(r"\(gateway_load\.py:\d+\)").all()
    # suspects are code: import machinery and labkit's own frames never rank
    assert not s.suspect.str.contains("frozen|importlib|bootstrap|gctrace").any()


def test_gc_share_is_of_the_run_not_of_the_span_between_collections(tmp_path: Path) -> None:
    run = DATASETS / "gc-tuning" / "default"
    ev = load_evidence(gc=run)
    wall = (ev.gc_events.t_stop_ns.max() - ev.gc_events.t_start_ns.min()) / 1e9
    assert ev.gc_wall_s is not None and ev.gc_wall_s > wall * 0.99
    one = ev.gc_events.head(1)  # a single collection in a long run is not "100% in GC"
    ev.gc_events = one
    assert not any(suspects(ev).kind == "garbage collector")


def test_threads_started_and_fds_opened_are_named_from_a_run() -> None:
    fd = suspects(load_evidence(run=DATASETS / "fd-leak" / "leaky")).iloc[0]
    assert (fd.kind, fd.suspect) == ("fds opened here", "handle (fd_leak.py:74)")
    th = suspects(load_evidence(run=DATASETS / "thread-leak" / "leaky")).iloc[0]
    assert th.kind == "threads started here" and th.suspect.startswith("run_threads (")


def test_cli_writes_one_reader_report(tmp_path: Path) -> None:
    out = tmp_path / "incident.html"
    cp = labkit("postmortem", "--memray", str(MEMRAY), "--proc", str(PROC), "--dump",
                str(DUMP), "--pyspy", str(SPEEDSCOPE), "--out", str(out), timeout=300)
    assert cp.returncode == 0, cp.stderr
    page = out.read_text()
    verdict = cp.stdout.splitlines()[0].removeprefix("verdict: ")
    assert html.escape(verdict) in page  # the terminal's verdict, first in the page
    assert page.index("What happened") < page.index("Suspects") < page.index("Flamegraphs")
    assert "serve</code> at <code>pool_misuse.py:" in page and "parked threads" in page
    assert "fds rose" in page and "Explains:" in page
    # for a reader: no code cells, no temporary or input paths, nothing from the network
    assert "highlight hl-ipython3" not in page
    assert str(tmp_path) not in page and str(DATASETS) not in page
    assert "Content-Security-Policy" in page and "<title>labkit postmortem</title>" in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    assert all(a for a in re.findall(r'<img [^>]*alt="([^"]*)"', page))
    # flamegraphs of memory and CPU, in labkit's viewer, with their data inline
    assert page.count('class="lk-flame"') == 2 and page.count("labkit's flamegraph viewer") == 1
    assert len(page.encode()) < 1_500_000
    assert not list(tmp_path.glob("*.ipynb"))  # the report is the one output


def test_churn_is_named_where_the_short_lived_bytes_are_made() -> None:
    leaky = findings(load_evidence(memray=DATASETS / "buffer-growth" / "leaky" / "memray.bin"))
    assert [s.kind for s in leaky.symptoms] == ["allocation churn"]
    top = leaky.suspects[0]
    assert (top.function, top.kind) == ("build", "short-lived allocations")
    assert top.explains[0].startswith("churn: ")
    fixed = findings(load_evidence(memray=DATASETS / "buffer-growth" / "fixed" / "memray.bin"))
    assert not fixed.symptoms  # the fix allocates once per response: no churn to report


def test_cli_bad_inputs_are_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "cut.bin"
    bad.write_bytes(MEMRAY.read_bytes()[:200])
    assert_clean_error(labkit("postmortem", "--memray", str(bad), "--out",
                              str(tmp_path / "r.html")), "not a readable memray capture")
    assert_clean_error(labkit("postmortem", "--out", str(tmp_path / "r.html")), "no capture")
    assert_clean_error(labkit("postmortem", "--proc", str(tmp_path / "missing.csv"), "--out",
                              str(tmp_path / "r.html")), "not found")
    copy = tmp_path / "proc.csv"
    copy.write_bytes(PROC.read_bytes())
    assert_clean_error(labkit("postmortem", "--proc", str(copy), "--out", str(copy)),
                       "never overwrites")
    assert copy.read_bytes() == PROC.read_bytes()
    assert not (tmp_path / "r.html").exists()


def test_cli_prints_the_verdict_and_writes_json_findings(tmp_path: Path) -> None:
    import json

    out = tmp_path / "findings.json"
    cp = labkit("postmortem", str(DATASETS / "fd-leak" / "leaky"), "--json", str(out))
    assert cp.returncode == 0, cp.stderr
    first = cp.stdout.splitlines()[0]
    assert first.startswith("verdict: ") and "handle (fd_leak.py:74)" in first
    doc = json.loads(out.read_text())
    assert set(doc) == {"verdict", "symptoms", "suspects", "notes", "missing"}
    assert doc["missing"] == []  # a full memray capture: nothing is missing
    top = doc["suspects"][0]
    assert {"rank", "function", "file", "line", "stack", "score", "explains", "evidence"} <= \
        set(top)
    assert (top["rank"], top["function"], top["line"]) == (1, "handle", 74)
    assert top["file"].endswith("fd_leak.py") and top["explains"][0].startswith("fds:")
    assert any(s["what"].startswith("fds rose") for s in doc["symptoms"])
    # --ignore takes a line out of "your code"; --focus that matches nothing leaves no suspect
    cp = labkit("postmortem", str(DATASETS / "fd-leak" / "leaky"), "--focus", "nothing-here")
    assert cp.returncode == 0 and "no line of your code stands out" in cp.stdout
    assert_clean_error(labkit("postmortem", str(DATASETS / "fd-leak" / "leaky"), "--focus",
                              "(unclosed"), "regular expression")


ONE_OFF_AND_LEAK = """
import time

def load_table():
    return bytearray(40 << 20)        # large, once, kept: not a leak

def remember(cache):
    cache.append(bytearray(200_000))  # small, every request, kept: the leak

table = load_table()
cache = []
for i in range(100):
    remember(cache)
    time.sleep(0.01)
"""


@pytest.mark.slow
def test_a_site_growing_steadily_outranks_a_large_one_off(tmp_path: Path) -> None:
    prog = tmp_path / "svc.py"
    prog.write_text(ONE_OFF_AND_LEAK)
    cp = labkit("capture", "--memray", "--out", str(tmp_path / "run"), "--", sys.executable,
                str(prog))
    assert cp.returncode == 0, cp.stderr
    s = suspects(load_evidence(run=tmp_path / "run"))
    memory = s[s.kind.str.contains("allocation site")]
    assert list(memory.suspect[:2]) == ["remember (svc.py:8)", "load_table (svc.py:5)"]
    assert memory.iloc[0].kind == "growing allocation site"
    assert memory.iloc[1].score < memory.iloc[0].score


def test_cli_says_when_loose_captures_come_from_different_programs() -> None:
    # GIVEN a memray capture of one incident and a py-spy dump of another
    cp = labkit("postmortem", "--memray", str(MEMRAY), "--dump", str(DUMP))
    assert cp.returncode == 0, cp.stderr
    verdict = cp.stdout.splitlines()[0]
    # THEN the verdict says so, with one verdict per program; the same program's files do not
    assert verdict.startswith("verdict: these captures come from 2 different programs")
    assert "(memray): heap grew by" in verdict and "(dump): 200 threads named poller*" in verdict
    one = labkit("postmortem", "--memray", str(MEMRAY), "--proc",
                 str(DATASETS / "pool-misuse" / "leaky" / "proc.csv"))
    assert "different programs" not in one.stdout


def test_the_page_states_what_ran_command_host_python_and_time() -> None:
    from labkit.report.postmortem_page import postmortem_page, what_ran
    from labkit.rundir import read_manifest

    run = DATASETS / "pool-misuse" / "leaky"
    m = read_manifest(run, verify=False)
    ev = load_evidence(run=run)
    ran = dict(what_ran(ev))
    assert ran["command"].endswith("--variant leaky --params '" + m["command"][-1] + "'")
    assert m["host"]["platform"] in ran["host"]
    assert m["target"]["version_full"] in ran["Python"] and "cpython" in ran["Python"]
    assert ran["time"].startswith(m["start_utc"])
    page = postmortem_page(findings(ev), ev)
    top = page[:page.index('class="verdict"')]  # before the verdict: what ran
    from markupsafe import escape

    assert all(str(escape(v)) in top for v in ran.values())
    loose = load_evidence(memray=MEMRAY)  # loose captures: memray's own record, else said
    ran = dict(what_ran(loose))
    assert "pool_misuse" in ran["command"] and ran["host"] == "not recorded by these captures"
