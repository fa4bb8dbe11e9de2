"""Progress shows where someone watches: on a terminal, not in a pipe or a report."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from labkit import progress as P

DATASETS = Path(__file__).resolve().parent.parent / "datasets"


def _stderr_on_a_tty(args: list[str], env: dict[str, str] | None = None) -> str:
    """Run labkit with stderr on a pseudo-terminal; what the terminal received."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "labkit", *args], stdout=subprocess.DEVNULL,
                            stderr=follower, env={**os.environ, **(env or {})})
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 4096)
        except OSError:  # the terminal closed: the process is done with it
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=120)
    os.close(leader)
    return b"".join(chunks).decode(errors="replace")


@pytest.mark.slow
def test_a_terminal_sees_the_phases_a_pipe_and_a_report_do_not(tmp_path: Path) -> None:
    memray = str(DATASETS / "pool-misuse" / "leaky" / "memray.bin")
    seen = _stderr_on_a_tty(["postmortem", "--memray", memray, "--html",
                             str(tmp_path / "a.html")])
    assert "postmortem 1/3: loading the captures" in seen
    assert "postmortem 3/3: drawing the report" in seen and seen.endswith("\x1b[K")
    piped = subprocess.run([sys.executable, "-m", "labkit", "postmortem", "--memray", memray,
                            "--html", str(tmp_path / "b.html")], capture_output=True,
                           text=True)
    assert piped.returncode == 0 and "postmortem 1/3" not in piped.stderr + piped.stdout
    in_report = _stderr_on_a_tty(["postmortem", "--memray", memray, "--html",
                                  str(tmp_path / "c.html")], env={P.REPORT_ENV: "1"})
    assert "postmortem 1/3" not in in_report


def test_nested_work_names_its_phase_under_the_outer_one(monkeypatch, capsys) -> None:
    monkeypatch.delenv(P.REPORT_ENV, raising=False)
    monkeypatch.setattr(P, "where", lambda: "tty")
    with P.progress(2, "signatures") as outer:
        outer.step("measuring pool-misuse")
        with P.progress(2, "pool-misuse") as inner:
            inner.step("running leaky")
    err = capsys.readouterr().err
    assert "signatures 1/2: measuring pool-misuse › pool-misuse 1/2: running leaky" in err
    assert err.endswith("\r\x1b[K")  # the line is rubbed out at the end


def test_the_progress_line_names_a_custom_setting(monkeypatch, capsys) -> None:
    from types import SimpleNamespace

    import labkit.runner as R

    monkeypatch.delenv(P.REPORT_ENV, raising=False)
    monkeypatch.setattr(P, "where", lambda: "tty")
    monkeypatch.setattr(R, "_run_variant", lambda *a, **k: SimpleNamespace(signals_received=[]))
    R.run_scenario("gc-tuning", variants=["default"], quick=True,
                   params={"thresholds": "5,10,10", "freeze": "1"})
    err = capsys.readouterr().err
    assert "gc-tuning 1/1: running a custom setting: thresholds=5,10,10, freeze=1" in err
    assert "running default" not in err
    R.run_scenario("pool-misuse", variants=["leaky"], quick=True)
    assert "pool-misuse 1/1: running leaky" in capsys.readouterr().err
