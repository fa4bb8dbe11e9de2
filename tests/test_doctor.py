"""``labkit doctor``: versions, the ptrace check, and the remedy when attaching is refused."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from labkit import doctor
from labkit.capture import pyspy
from labkit.errors import ProfilerPermissionError
from tests.conftest import labkit


@pytest.mark.slow
def test_doctor_passes_here() -> None:
    cp = labkit("doctor", timeout=120)
    assert cp.returncode == 0, cp.stdout + cp.stderr
    for name in ("python", "memray", "py-spy", "pandas", "matplotlib", "jupyterlab",
                 "py-spy attach"):
        lines = cp.stdout.splitlines()
        assert any(ln.startswith("ok ") and f" {name} " in ln for ln in lines), name
    assert "all is well" in cp.stdout


def test_doctor_fails_with_the_remedy_when_attach_is_refused(monkeypatch, capsys) -> None:
    from labkit import cli

    def refused(pid: int, **kw) -> str:
        raise ProfilerPermissionError(f"py-spy may not attach to pid {pid}; {pyspy.PTRACE_REMEDY}")

    monkeypatch.setattr(pyspy, "dump", refused)
    assert cli.main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert "NO  py-spy attach" in out and "SYS_PTRACE" in out and "ptrace_scope" in out


def test_missing_package_is_reported(monkeypatch) -> None:
    monkeypatch.setattr(doctor, "PACKAGES", ("labkit-no-such-package",))
    (check,) = [c for c in doctor.versions() if c.name == "labkit-no-such-package"]
    assert not check.ok and "not installed" in check.detail


@pytest.mark.slow
def test_real_ptrace_refusal_is_classified(tmp_path: Path) -> None:
    # GIVEN a Python process owned by root and py-spy running as an unprivileged user
    if os.geteuid() != 0:
        pytest.fail("this test needs root to drop to an unprivileged user")
    spy = tmp_path / "py-spy"
    shutil.copy(pyspy.binary(), spy)
    os.chmod(tmp_path, 0o755)
    target = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        time.sleep(1)
        cp = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                             str(spy), "dump", "--pid", str(target.pid)],
                            capture_output=True, text=True, timeout=30)
    finally:
        target.kill()
        target.wait()
    # WHEN labkit reads py-spy's real error THEN it is a one-line permission error with a remedy
    assert cp.returncode != 0
    err = pyspy.classify_failure(cp.stderr, target.pid)
    assert isinstance(err, ProfilerPermissionError), cp.stderr
    assert "\n" not in str(err) and "SYS_PTRACE" in str(err)
