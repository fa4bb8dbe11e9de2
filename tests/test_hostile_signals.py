"""Ctrl-C reaching ``labkit run`` mid-scenario: no traceback, no further variants, exit 130."""

from __future__ import annotations

import glob
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from labkit import runner
from labkit.capture.session import RunResult
from labkit.scenarios.base import run_main
from labkit.scenarios.fd_leak import SPEC
from tests.conftest import alive, labkit

FLEET = Path(__file__).resolve().parents[1] / "datasets" / "fleet"


def test_a_scenario_interrupted_exits_130_without_a_traceback() -> None:
    def work(variant, params, metrics):
        raise KeyboardInterrupt

    with pytest.raises(SystemExit) as info:
        run_main(SPEC, ["--variant", "leaky", "--quick"], work)
    assert info.value.code == 130
    assert info.value.__context__ is None or info.value.__suppress_context__


def test_run_stops_after_the_variant_the_user_interrupted(monkeypatch, tmp_path: Path) -> None:
    ran = []

    def fake(name, spec, variant, *rest):
        ran.append(variant)
        return RunResult(tmp_path / variant, 130, "exited", None, {}, [signal.SIGINT])

    monkeypatch.setattr(runner, "_run_variant", fake)
    results = runner.run_scenario("fd-leak", quick=True, out=tmp_path / "r")
    assert ran == ["leaky"] and list(results) == ["leaky"]


def test_sigint_mid_scenario_is_quiet_and_stops(tmp_path: Path) -> None:
    out = tmp_path / "runs"
    p = subprocess.Popen([sys.executable, "-m", "labkit", "run", "fd-leak", "--quick",
                          "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, start_new_session=True)
    deadline = time.monotonic() + 60
    while not [f for f in glob.glob(f"{out}/leaky.partial-*/scenario.jsonl")
               if Path(f).stat().st_size]:
        assert p.poll() is None and time.monotonic() < deadline, "the scenario never started"
        time.sleep(0.05)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130, err
    assert "Traceback" not in err, err
    assert not (out / "fixed").exists()
    assert not alive(p.pid)


def test_sigterm_at_the_fd_limit_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    prog = tmp_path / "emfile.py"
    prog.write_text("import os, resource, signal\n"
                    "resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))\n"
                    "held = []\n"
                    "try:\n"
                    "    while True:\n"
                    "        held.append(open(os.devnull))\n"
                    "except OSError:\n"
                    "    pass\n"
                    "os.kill(os.getpid(), signal.SIGTERM)\n")
    cp = labkit("capture", "--gc", "--out", str(tmp_path / "run"), "--", sys.executable,
                str(prog))
    assert cp.returncode == -signal.SIGTERM, cp.stderr
    assert "Traceback" not in cp.stderr, cp.stderr
    assert "could not finish the origins capture" in cp.stderr
    assert (tmp_path / "run" / "manifest.json").is_file()


def test_sigterm_mid_fleet_leaves_no_temporary_file(tmp_path: Path) -> None:
    store = tmp_path / "store"
    p = subprocess.Popen([sys.executable, "-m", "labkit", "fleet", str(FLEET), "--store",
                          str(store)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, start_new_session=True)
    deadline = time.monotonic() + 120
    while not list(store.rglob("part-0.parquet")):
        assert p.poll() is None and time.monotonic() < deadline, p.stderr.read()
        time.sleep(0.02)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=60)
    assert p.returncode == -signal.SIGTERM, err
    assert err.strip() == "labkit: stopped by SIGTERM", err
    assert not [f for f in store.rglob("*") if f.name.endswith(".tmp")]
