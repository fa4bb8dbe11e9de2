"""One public leak reproduction from bench/incidents, captured from its own venv with the
real labkit, leaky and fixed release (bench/real_incidents.py runs them all)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
CASE = "croniter-expressions"  # pure Python, small wheels, seconds to run



def _bench():
    spec = importlib.util.spec_from_file_location("real_incidents",
                                                  BENCH / "real_incidents.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # its dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="session")
def incident(tmp_path_factory):
    """The case, and its captures' scores per release (venvs built once a session)."""
    bench = _bench()
    (case,) = bench.load_cases([CASE])
    root = tmp_path_factory.mktemp("incident")
    runs = root / "runs"
    runs.mkdir()
    scored = {}
    for release in ("leaky", "fixed"):
        # nothing of labkit goes into the case venv: capture lends labkit's memray
        python = bench.venv_for(case, release, install_memray=False, cache=root / "venvs")
        out = runs / release
        report = bench.capture(case, python, out)
        assert "error" not in report, report["error"]
        scored[release] = (report, bench.score(case, report))
    return case, scored


@pytest.mark.slow
def test_case_is_pinned_and_public(incident):
    case, _ = incident
    data = json.loads((BENCH / "incidents" / CASE / "case.json").read_text())
    assert data["leaky"] != data["fixed"]
    assert data["issue"].startswith("https://github.com/")
    assert data["culprit"]["file"].startswith("croniter/")
    assert (BENCH / "incidents" / CASE / "app.py").is_file()
    assert case.package == "croniter"


@pytest.mark.slow
def test_leaky_release_shows_growth_and_the_culprit_in_the_top_three(incident):
    _, scored = incident
    report, score = scored["leaky"]
    assert score["growth"], report["symptoms"]
    # the package's culprit (its function or file) appears in a top-three suspect
    assert score["in_stack"] is not None and score["in_stack"] <= 3, report["suspects"][:3]
    # and a suspect names it as the package's own code (its library entry or site)
    assert score["named"] is not None and score["named"] <= 3, report["suspects"][:3]
    # the program's own call site is a suspect too
    assert score["user"] is not None, report["suspects"][:3]


@pytest.mark.slow
def test_fixed_release_has_no_growth_symptom(incident):
    _, scored = incident
    report, score = scored["fixed"]
    assert not score["growth"], report["symptoms"]
    assert "keeps growing" not in report["verdict"]


def _suspect(rank, function, file, stack="", library=None):
    return {"rank": rank, "kind": "growing allocation site", "function": function,
            "file": file, "line": 1, "stack": stack, "score": 0.5, "explains": [],
            "evidence": {}, **({"library": library} if library else {})}


def test_score_ranks_the_library_site_the_stack_and_the_user_entry():
    bench = _bench()
    (case,) = bench.load_cases([CASE])
    site = {"function": "_expand", "file": "/venv/site-packages/croniter/croniter.py",
            "line": 1063}
    report = {"verdict": "heap keeps growing; ...",
              "symptoms": [{"kind": "memory growth", "what": "heap keeps growing",
                            "evidence": "1 MiB/s"},
                           {"kind": "allocation churn", "what": "9 MiB short-lived",
                            "evidence": ""}],
              "suspects": [_suspect(1, "main", "/x/app.py"),
                           _suspect(2, "next_run", "/x/app.py",
                                    "__init__ (croniter.py:251) < next_run (app.py:10)"),
                           _suspect(3, "next_run", "/x/app.py",
                                    library={"package": "croniter", "version": "6.0.0",
                                             "entry": {"function": "__init__",
                                                       "file": "croniter/croniter.py",
                                                       "line": 251},
                                             "site": site})]}
    got = bench.score(case, report)
    assert got["named"] == 3  # by the library field's entry or site
    assert got["in_stack"] == 2  # first mention: "(croniter.py:" in a stack
    assert got["user"] == 2
    assert got["growth"] == ["memory growth: heap keeps growing"]  # churn is not growth


def test_score_finds_nothing_where_nothing_is_named():
    bench = _bench()
    (case,) = bench.load_cases([CASE])
    report = {"verdict": "nothing abnormal found in these captures", "symptoms": [],
              "suspects": [_suspect(1, "main", "/x/app.py", "main (app.py:3)")]}
    got = bench.score(case, report)
    assert (got["named"], got["in_stack"], got["user"], got["growth"]) == (None, None, None, [])
    assert bench.score(case, {"error": "capture exit 2"}) == {"error": "capture exit 2"}


def test_a_culprit_named_only_by_its_compiled_module_reads_so():
    bench = _bench()
    (case,) = bench.load_cases(["pydantic-recursive-adapter"])
    so = "/venv/site-packages/pydantic_core/_pydantic_core.cpython-311-x86_64-linux-gnu.so"
    lib = {"package": "pydantic_core", "version": "2.14.5",
           "entry": {"function": "create_schema_validator",
                     "file": "/venv/site-packages/pydantic/plugin/_schema_validator.py",
                     "line": 49},
           "site": {"function": "<unknown>", "file": so, "line": 0}}
    report = {"verdict": "native memory: ...", "symptoms": [],
              "suspects": [_suspect(1, "main", "/x/app.py"),
                           _suspect(2, "parse_batch", "/x/app.py", library=lib)]}
    got = bench.score(case, report)
    assert (got["named"], got["named_by"]) == (2, "so")
    row = {"case": case.name, "kind": case.kind, "release": "leaky", "version": case.leaky,
           "seconds": 1.0, **got}
    assert "| 2 (.so) |" in bench.table([row])
    named = {**lib, "site": {"function": "Definitions", "file": so, "line": 0}}
    report["suspects"][1]["library"] = named
    assert bench.score(case, report)["named_by"] == "code"
