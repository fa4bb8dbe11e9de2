"""Attach to a running process: py-spy record and dump, and the process sampler.

The incident flow: a process is already misbehaving. Attaching is checked first (one
``py-spy dump``), so a refused ptrace or a vanished pid fails before anything is written.
"""

from __future__ import annotations

import time
from pathlib import Path

import psutil

from labkit import artifacts as A
from labkit.capture import pyspy
from labkit.capture.proc import ProcSampler
from labkit.errors import InputError
from labkit.options import label_column
from labkit.rundir import RunWriter, default_run_path


def check_pid(pid: int) -> psutil.Process:
    """The live process ``pid``, or :class:`InputError`."""
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            raise psutil.NoSuchProcess(pid)
        return proc
    except psutil.NoSuchProcess:
        raise InputError(f"no process with pid {pid} (it has exited?); give a running pid") \
            from None


def attach(
    pid: int,
    *,
    pyspy_s: float | None = 5.0,
    dump: bool = True,
    proc_s: float | None = 5.0,
    rate_hz: int = 100,
    out: Path | None = None,
    argv: list[str] | None = None,
    labels: dict[str, str] | None = None,
) -> Path:
    """Capture a running process into a new run directory; returns its path."""
    for key in labels or {}:
        label_column(key)  # a key that could not be a column is refused before the capture
    proc = check_pid(pid)
    writer = RunWriter(out or default_run_path(f"attach-{pid}"), "attach", argv or [],
                       {"pid": pid, "pyspy_s": pyspy_s, "dump": dump, "proc_s": proc_s,
                        "rate_hz": rate_hz}, labels=dict(labels or {}))
    try:
        if dump or pyspy_s:
            text = pyspy.dump(pid)  # raises the one-line error when ptrace is refused
            if dump:
                writer.file(A.PYSPY_DUMP).write_text(text)
        writer.mark_origin()
        started = []
        if pyspy_s:
            started.append(pyspy.Recorder(pid, writer, rate_hz=rate_hz,
                                          duration_s=pyspy_s).start())
        if proc_s:
            started.append(ProcSampler(pid, writer.file(A.PROC), interval_s=0.1,
                                       fds_path=writer.file(A.PROC_FDS)).start())
        deadline = time.monotonic() + max(pyspy_s or 0, proc_s or 0)
        while time.monotonic() < deadline and proc.is_running():
            time.sleep(0.05)
        extra: dict = {}
        for s in started:
            s.stop()
            extra.update(getattr(s, "manifest_extra", {}) or {})
    except BaseException:
        writer.abandon()
        raise
    return writer.publish(
        command=[" ".join(proc.cmdline()) if proc.is_running() else f"pid {pid}"],
        target={"pid": pid}, **extra)
