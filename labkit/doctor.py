"""``labkit doctor``: what this machine has, and whether py-spy can attach here."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from labkit.errors import LabkitError

PACKAGES = ("memray", "py-spy", "pandas", "matplotlib", "jupyterlab", "psutil", "papermill",
            "nbconvert", "jupytext")


@dataclass
class Check:
    """One line of the doctor's report."""

    name: str
    ok: bool
    detail: str


def versions() -> list[Check]:
    """Python and each package labkit runs on, with its installed version."""
    checks = [Check("python", sys.version_info >= (3, 11), sys.version.split()[0])]
    for name in PACKAGES:
        try:
            checks.append(Check(name, True, metadata.version(name)))
        except metadata.PackageNotFoundError:
            checks.append(Check(name, False, "not installed: run `make lab` or pip install -e ."))
    return checks


def ptrace_check() -> Check:
    """Start a small Python program and try ``py-spy dump`` on it."""
    from labkit.capture import pyspy
    from labkit.capture.children import set_pdeathsig

    scope = Path("/proc/sys/kernel/yama/ptrace_scope")
    scope_note = f"ptrace_scope={scope.read_text().strip()}" if scope.exists() else "no yama"
    code = "import sys, time; print('ready', flush=True); time.sleep(60)"
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                             preexec_fn=set_pdeathsig)
    try:
        assert child.stdout is not None
        child.stdout.readline()
        threads = json.loads(pyspy.dump(child.pid, timeout_s=20))
        ok = any(t.get("frames") for t in threads)
        return Check("py-spy attach", ok, f"can attach here ({scope_note})" if ok
                     else "py-spy ran but returned no Python stacks")
    except LabkitError as exc:
        return Check("py-spy attach", False, str(exc))
    finally:
        child.kill()
        child.wait()


def run_doctor() -> list[Check]:
    """Every check, in report order."""
    return [*versions(), ptrace_check()]
