"""py-spy backend: record CPU stacks of a pid (speedscope JSON + flamegraph SVG) and dump threads.

py-spy runs as a separate process and needs ptrace permission on the target. Its failures
are turned into one-line :class:`LabkitError`s by :func:`classify_failure`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from labkit import artifacts as A
from labkit.capture.children import set_pdeathsig
from labkit.errors import InputError, LabkitError, ProfilerPermissionError

PTRACE_REMEDY = (
    "run as root, or give the container SYS_PTRACE (docker run --cap-add SYS_PTRACE), "
    "or set /proc/sys/kernel/yama/ptrace_scope to 0; otherwise replay the recorded datasets"
)


def binary() -> str:
    """Path of the py-spy executable (next to this interpreter first, then on PATH)."""
    here = Path(sys.executable).with_name("py-spy")
    if here.is_file():
        return str(here)
    found = shutil.which("py-spy")
    if found is None:
        raise InputError("py-spy is not installed; run `pip install py-spy` (or `make lab`)")
    return found


def classify_failure(stderr: str, pid: int) -> LabkitError:
    """Turn py-spy's stderr into one line that says what is wrong and what to do."""
    text = stderr.lower()
    if "permission denied" in text or "operation not permitted" in text:
        return ProfilerPermissionError(
            f"py-spy may not attach to pid {pid} (ptrace permission denied); {PTRACE_REMEDY}"
        )
    if "no such file or directory" in text or "check that the process is running" in text \
            or "no such process" in text:
        return InputError(f"no process with pid {pid} (it has exited?); give a running pid")
    if "failed to find python version" in text or "failed to find a python interpreter" in text:
        return InputError(f"pid {pid} is not a Python process py-spy can read (or not started "
                          "yet); give the pid of a running Python program")
    first = next((ln.strip() for ln in stderr.splitlines() if ln.strip().startswith("Error")),
                 stderr.strip().splitlines()[0] if stderr.strip() else "no output")
    return LabkitError(f"py-spy failed on pid {pid}: {first}")


def dump(pid: int, *, locals_: bool = False, timeout_s: float = 30, retries: int = 3) -> str:
    """``py-spy dump --json`` of every thread of ``pid``; returns the JSON text."""
    argv = [binary(), "dump", "--pid", str(pid), "--json"]
    if locals_:
        argv.append("--locals")
    err = ""
    for attempt in range(retries):
        try:
            cp = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s,
                                env={**os.environ, "RUST_BACKTRACE": "0"})
        except subprocess.TimeoutExpired:
            raise LabkitError(f"py-spy dump of pid {pid} took over {timeout_s:.0f} s") from None
        if cp.returncode == 0 and cp.stdout.strip():
            return cp.stdout
        err = cp.stderr
        if "python version" not in err.lower() or attempt == retries - 1:
            break
        time.sleep(0.5)  # the interpreter may still be starting up
    raise classify_failure(err, pid)


class Recorder:
    """Two ``py-spy record`` processes on one pid: speedscope JSON and flamegraph SVG.

    ``stop()`` waits for them to notice the target's exit (or interrupts them, which makes
    py-spy write what it has). Failures are kept in ``manifest_extra`` rather than raised,
    so one profiler failing never loses the other captures.
    """

    def __init__(self, pid: int, writer: Any, *, rate_hz: int = 100,
                 duration_s: float | None = None, subprocesses: bool = False) -> None:
        self.pid = pid
        self.rate_hz = rate_hz
        self.duration_s = duration_s
        self.subprocesses = subprocesses
        self.outputs = {
            "speedscope": writer.file(A.PYSPY_PROFILE),
            "flamegraph": writer.file(A.PYSPY_FLAMEGRAPH),
        }
        self.procs: dict[str, subprocess.Popen] = {}
        self.manifest_extra: dict[str, Any] = {}

    def start(self) -> Recorder:
        """Start recording; returns self."""
        for fmt, out in self.outputs.items():
            argv = [binary(), "record", "--pid", str(self.pid), "--rate", str(self.rate_hz),
                    "--format", fmt, "--output", str(out), "--nonblocking"]
            if self.duration_s:
                argv += ["--duration", str(max(1, round(self.duration_s)))]
            if self.subprocesses:
                argv.append("--subprocesses")
            self.procs[fmt] = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE, text=True, env={**os.environ, "RUST_BACKTRACE": "0"},
                start_new_session=True, preexec_fn=set_pdeathsig)
        return self

    def stop(self, grace_s: float = 10) -> None:
        """Finish both recorders and note any failure in ``manifest_extra``."""
        errors = {}
        deadline = time.monotonic() + grace_s
        for fmt, p in self.procs.items():
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.send_signal(2)
                try:
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
            stderr = p.stderr.read() if p.stderr else ""
            if not self.outputs[fmt].is_file() or self.outputs[fmt].stat().st_size == 0:
                errors[fmt] = str(classify_failure(stderr, self.pid))
        self.manifest_extra = {"pyspy": {"rate_hz": self.rate_hz, "errors": errors}}
