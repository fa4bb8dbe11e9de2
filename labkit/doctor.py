"""``labkit doctor``: what this machine has, and whether py-spy can attach here; with
``--python PATH``, which capture backends will work for that interpreter, and why not."""

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


def ptrace_check(python: str | None = None) -> Check:
    """Start a small Python program (in ``python``, default labkit's) and try ``py-spy
    dump`` on it."""
    from labkit.capture import pyspy
    from labkit.capture.children import set_pdeathsig

    scope = Path("/proc/sys/kernel/yama/ptrace_scope")
    scope_note = f"ptrace_scope={scope.read_text().strip()}" if scope.exists() else "no yama"
    code = "import sys, time; print('ready', flush=True); time.sleep(60)"
    child = subprocess.Popen([python or sys.executable, "-c", code], stdout=subprocess.PIPE,
                             text=True, preexec_fn=set_pdeathsig)
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


def target_checks(python: str) -> list[Check]:
    """Which capture backends will work for the interpreter ``python``, and why not; a
    command that is not a Python >= 3.11 that starts is a one-line :class:`InputError`."""
    from labkit.capture.command import parse_python_command
    from labkit.capture.target import memray_source, probe

    parse_python_command([python, "-c", "pass"])  # the same checks as a capture's
    t = probe(python)
    checks = [Check("python", True, f"{t.version_text} ({t.implementation}), prefix "
                    f"{t.prefix}, {len(t.distributions)} top-level packages installed")]
    try:
        own = memray_source(t) == "target"
        memray = Check("memray", True, f"its own memray {t.memray['version']}" if own and
                       t.memray else "labkit lends its own memray, on a folder after the "
                       "program's packages (nothing is installed there)")
    except LabkitError as exc:
        memray = Check("memray", False, str(exc))
    checks.append(memray)
    checks.append(Check("--native", memray.ok and sys.platform == "linux",
                        "memray's native stacks" if memray.ok and sys.platform == "linux"
                        else "needs memray (above) on Linux"))
    checks.append(Check("GC tracer", True, "labkit's agent runs by path on the standard "
                        "library of any Python 3.11+"))
    checks.append(ptrace_check(python))
    proc = Path("/proc/self/status").is_file()
    checks.append(Check("proc sampler", proc, "reads /proc from outside" if proc
                        else "needs Linux's /proc"))
    return checks


def run_doctor(python: str | None = None) -> list[Check]:
    """Every check, in report order: this machine's, or for ``python`` its backends'."""
    if python is not None:
        return target_checks(python)
    return [*versions(), ptrace_check()]
