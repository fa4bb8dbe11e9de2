"""Shared helpers: run the real ``labkit`` command in a subprocess, write small programs."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

PY = sys.executable
_MODULE_SECONDS: dict[str, float] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Sum each test module's setup, call and teardown time, for the summary below."""
    module = report.nodeid.split("::", 1)[0]
    _MODULE_SECONDS[module] = _MODULE_SECONDS.get(module, 0.0) + report.duration


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Time per test module, slowest first: where the suite's minutes go."""
    if not _MODULE_SECONDS:
        return
    terminalreporter.section("time per module")
    for module, s in sorted(_MODULE_SECONDS.items(), key=lambda kv: -kv[1]):
        terminalreporter.write_line(f"{s:8.1f} s  {module}")
    terminalreporter.write_line(f"{sum(_MODULE_SECONDS.values()):8.1f} s  in all")


@pytest.fixture(autouse=True)
def _records_in_tmp(tmp_path_factory: pytest.TempPathFactory,
                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Learner records (labkit.analysis.records) from any test go to a temporary folder,
    never into the home of whoever runs the suite."""
    monkeypatch.setenv("LABKIT_RECORDS", str(tmp_path_factory.mktemp("records")))


def labkit(*args: str, timeout: float = 120, **kw) -> subprocess.CompletedProcess:
    """Run ``python -m labkit ARGS`` and capture its output."""
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    return subprocess.run([PY, "-m", "labkit", *args], timeout=timeout, **kw)


_MAIN_AS = """
from labkit.cli import main
how, verb = sys.argv[1], sys.argv[2:]
if how == "command":  # as the labkit command: main() reads sys.argv
    sys.argv = ["labkit", *verb]
    code = main()
else:  # as a notebook or a test calls it
    code = main(verb)
"""


def main_as(how: str, verb: list[str], cwd: Path, *, before: str = "", after: str
            ) -> subprocess.CompletedProcess:
    """``labkit.cli.main`` on ``verb`` in a fresh interpreter, as the ``labkit`` command
    (``how`` "command") or called with argv ("in-process"): the script ``before`` runs
    first, ``after`` once main has returned ``code`` (``gc`` and ``sys`` imported for
    both)."""
    script = "import gc, sys\n" + before + _MAIN_AS + after
    return subprocess.run([PY, "-c", script, how, *verb], capture_output=True, text=True,
                          cwd=cwd)


def assert_clean_error(cp: subprocess.CompletedProcess, *words: str) -> None:
    """Exit 2, one ``labkit:`` line on stderr naming ``words``, no traceback."""
    assert cp.returncode == 2, (cp.returncode, cp.stderr)
    lines = [ln for ln in cp.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, cp.stderr
    assert lines[0].startswith("labkit: "), cp.stderr
    assert "Traceback" not in cp.stderr
    for w in words:
        assert w in lines[0], (w, lines[0])


def alive(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.fixture
def write_prog(tmp_path: Path):
    """Write a small program into ``tmp_path`` and return its path."""

    def _write(code: str, name: str = "prog.py") -> Path:
        p = tmp_path / name
        p.write_text(textwrap.dedent(code))
        return p

    return _write


@pytest.fixture(autouse=True, scope="session")
def _session_cache(tmp_path_factory: pytest.TempPathFactory):
    """One cache for the session (``labkit fleet`` exports runs there once, for the tests,
    the CLI and the notebooks' kernels alike), never the user's ``~/.cache``."""
    old = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("xdg-cache"))
    yield
    if old is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = old


@pytest.fixture(autouse=True)
def _no_stray_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONUNBUFFERED", "1")
    monkeypatch.delenv("PYTHONSTARTUP", raising=False)
    os.environ.pop("LABKIT_TEST_STRAY", None)


@pytest.fixture(scope="session")
def live_reports(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every notebook executed live (quick preset) and exported to offline HTML."""
    from labkit.report.html import render_all

    out = tmp_path_factory.mktemp("reports-live")
    render_all(out)
    return out

