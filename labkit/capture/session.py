"""Run a Python program under any combination of capture backends, into one run directory.

Pass-through contract: the program keeps labkit's stdin, stdout and stderr; its exit code is
returned; signals sent to labkit (SIGINT, SIGTERM, SIGHUP, SIGQUIT) reach it. The program
runs in a process tree of its own (:mod:`labkit.capture.tree`: a process group, and a cgroup
where the machine allows); when labkit holds a terminal, it gives the terminal to that group
as a shell would, so Ctrl-C and Ctrl-Z reach the program's whole group. The main process
dies with labkit (``PR_SET_PDEATHSIG``); the caps (time, memory) stop the whole tree and say
so in the manifest; what is left of the tree when the main process ends is killed.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labkit import artifacts as A
from labkit.capture import bootstrap, heapsnap
from labkit.capture.children import (
    forward_signals,
    hand_terminal,
    in_foreground,
    set_pdeathsig,
    terminal_fd,
)
from labkit.capture.command import PythonCommand, parse_python_command
from labkit.capture.proc import ProcSampler
from labkit.capture.target import Lent, Loan, prepare
from labkit.capture.tree import ProcessTree
from labkit.errors import InputError, UsageError
from labkit.options import label_column
from labkit.rundir import RunWriter, default_run_path


@dataclass
class CaptureOptions:
    """What to capture, and the caps that bound the program."""

    gc: bool = True
    proc: bool = False
    memray: bool = False
    native: bool = False
    trace_python_allocators: bool = False
    aggregate: bool = False  # memray's aggregated format: peak and leaks per stack only
    pyspy: bool = False
    rate_hz: int = 100
    interval_s: float = 0.02
    proc_interval_s: float = 0.1
    quiet: bool = True
    tracemalloc: bool = False
    origins: bool = True  # creation stacks of threads and open fds (in-process)
    time_cap_s: float | None = None
    memory_cap_bytes: int | None = None
    cgroup: bool = True  # hold the program's tree in a cgroup v2 where the machine allows
    env: dict[str, str] | None = None
    labels: dict[str, str] | None = None  # the run's own labels (host, release, ...)
    heap_snapshot: str | None = None  # when to snapshot the heap: one of heapsnap.WHEN

    def __post_init__(self) -> None:
        t, m = self.time_cap_s, self.memory_cap_bytes
        if t is not None and not (isinstance(t, int | float) and math.isfinite(t) and t > 0):
            raise UsageError(f"time cap {t!r}: give a finite number of seconds > 0")
        if m is not None and not (isinstance(m, int) and m > 0):
            raise UsageError(f"memory cap {m!r}: give a whole number of bytes > 0")
        if (why := heapsnap.refusal(self.heap_snapshot, m)) is not None:
            raise UsageError(why)
        if self.aggregate and m is not None:
            raise UsageError("--aggregate with --memory-cap: memray writes an aggregated "
                             "capture only when tracking stops, and the cap kills the program "
                             "first; drop one of them")


@dataclass
class RunResult:
    """How the program ended and where its run directory is."""

    path: Path
    returncode: int
    reason: str
    signal: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    signals_received: list[int] = field(default_factory=list)


def child_argv(cmd: PythonCommand, out_dir: Path, opts: CaptureOptions,
               memray_file: Path | None, lent: Lent | None = None) -> list[str]:
    """The interpreter command line that runs ``cmd`` under the in-process backends."""
    argv = [cmd.python, *cmd.options, bootstrap.__file__, "--out", str(out_dir.absolute()),
            "--interval", str(opts.interval_s)]
    if lent is not None:
        argv += ["--lend", str(lent.path)]
    if opts.quiet:
        argv.append("--quiet")
    if not opts.gc:
        argv.append("--no-gc")
    if opts.tracemalloc:
        argv.append("--tracemalloc")
    if opts.origins:
        argv.append("--origins")
    if opts.heap_snapshot:
        argv += ["--heap-snapshot", opts.heap_snapshot]
    if memray_file is not None:
        argv += ["--memray", str(memray_file.absolute())]
        if opts.native:
            argv.append("--native")
        if opts.trace_python_allocators:
            argv.append("--trace-python-allocators")
        if opts.aggregate:
            argv.append("--aggregate")
    return [*argv, "--", *cmd.target]


def run_program(
    cmd: Sequence[str],
    *,
    out: Path | None = None,
    options: CaptureOptions | None = None,
    kind: str = "capture",
    argv: Sequence[str] | None = None,
    params: dict[str, Any] | None = None,
    metrics_env: str | None = None,
    backends: Sequence[Callable[[int, RunWriter], Any]] = (),
    lend: Sequence[str] = (),
) -> RunResult:
    """Run ``cmd`` under the chosen backends and publish its run directory.

    ``metrics_env=ENV`` reserves the scenario metrics file in the run and names its path to
    the program in the environment variable ``ENV``. Each of ``backends`` is called with the
    child's pid and the writer once the child runs, and must return an object with
    ``stop()`` (and optionally ``manifest_extra``): outside observers such as py-spy.

    The interpreter is probed first and memray (and each of ``lend``) lent if it lacks it:
    see :func:`labkit.capture.target.prepare`. The manifest's ``target`` says what it is.
    """
    opts = options or CaptureOptions()
    for key in opts.labels or {}:
        label_column(key)  # a key that could not be a column is refused before the run
    pycmd = parse_python_command(cmd)
    env = dict(os.environ if opts.env is None else opts.env)
    loan = prepare(pycmd.python, pycmd.options, env, memray=opts.memray, lend=lend)
    try:
        return _run_in(pycmd, loan, env, opts, out, kind, argv, params, metrics_env,
                       backends, list(cmd))
    finally:
        loan.close()


def _run_in(pycmd: PythonCommand, loan: Loan, env: dict[str, str], opts: CaptureOptions,
            out: Path | None, kind: str, argv: Sequence[str] | None,
            params: dict[str, Any] | None, metrics_env: str | None,
            backends: Sequence[Callable[[int, RunWriter], Any]],
            cmd: list[str]) -> RunResult:
    """:func:`run_program` once the target is known and labkit's loans are in place."""
    writer = RunWriter(out or default_run_path(pycmd.label), kind,
                       list(argv if argv is not None else sys.argv), dict(params or {}),
                       labels=dict(opts.labels or {}))
    tree = ProcessTree(heapsnap.backstop(opts.memory_cap_bytes, opts.heap_snapshot),
                       cgroup=opts.cgroup)
    tty = terminal_fd()
    child = _start(pycmd, writer, opts, env, metrics_env, loan.lent, tree,
                   tty if in_foreground(tty) else None)
    watch = _Watch(child, writer, opts, tree, tty)
    rc, received = watch.run(backends)
    sig = -rc if rc < 0 else None
    if watch.reason == "exited" and sig is not None:
        watch.reason = "signal"
    outcome = {"returncode": rc, "signal": signal.Signals(sig).name if sig else None,
               "reason": watch.reason,
               "signals_received": [signal.Signals(s).name for s in received]}
    if opts.memory_cap_bytes:
        outcome["memory_cap_bytes"] = opts.memory_cap_bytes
    if opts.time_cap_s:
        outcome["time_cap_s"] = opts.time_cap_s
    facts = {**loan.facts(pycmd.target), **(_target_facts(writer.path) or {}),
             "pid": child.pid}
    path = writer.publish(command=cmd, outcome=outcome, target=facts,
                          caps=tree.manifest(), **watch.extra)
    return RunResult(path, rc, watch.reason, sig, watch.extra, list(received))


def _start(pycmd: PythonCommand, writer: RunWriter, opts: CaptureOptions,
           env: dict[str, str], metrics_env: str | None, lent: Lent | None,
           tree: ProcessTree, tty: int | None) -> subprocess.Popen:
    """Reserve the in-process backends' files, set the run's origin, start the program in
    ``tree`` (a process group of its own, given the terminal ``tty`` if labkit holds it)."""
    if opts.gc:
        for art in (A.GC_EVENTS, A.GC_HEAP, A.GC_META):
            writer.file(art)
    if opts.origins:
        writer.file(A.ORIGINS)
    if opts.heap_snapshot:
        writer.file(A.HEAP_SNAPSHOT)
    memray_file = writer.file(A.MEMRAY) if opts.memray else None
    env = dict(env)
    if metrics_env is not None:
        env[metrics_env] = str(writer.file(A.METRICS))
    writer.mark_origin()

    def preexec() -> None:
        set_pdeathsig()
        tree.preexec()
        heapsnap.hold_signal(opts.heap_snapshot)
        if tty is not None:
            hand_terminal(tty, os.getpgrp())

    try:
        child = subprocess.Popen(child_argv(pycmd, writer.path, opts, memray_file, lent),
                                 env=env, process_group=0, preexec_fn=preexec)
    except OSError as exc:
        tree.cleanup()
        writer.abandon()
        raise InputError(f"cannot start {pycmd.python}: {exc.strerror}; give a working "
                         "Python interpreter after --") from None
    tree.started(child.pid)
    if tty is not None:
        hand_terminal(tty, child.pid)
    return child


class _Watch:
    """The program while it runs: observers beside it, caps over its whole tree, labkit's
    signals forwarded to it. Whatever happens, the tree and every observer are stopped."""

    def __init__(self, child: subprocess.Popen, writer: RunWriter, opts: CaptureOptions,
                 tree: ProcessTree, tty: int | None) -> None:
        self.child, self.writer, self.opts, self.tree, self.tty = child, writer, opts, tree, tty
        self.reason = "exited"
        self.extra: dict[str, Any] = {}
        self.observers: list[Any] = []
        self._cap_file = writer.path / ".proc-cap.csv"  # samples kept only for the cap
        self._snap_rss = heapsnap.PEAK_MIN / heapsnap.PEAK_STEP  # RSS at the last one asked

    def run(self, backends: Sequence[Callable[[int, RunWriter], Any]]) -> tuple[int, list[int]]:
        """Watch until the program ends; returns its exit status and the signals received."""
        try:
            with forward_signals(self._forward) as received:
                self._start_observers(backends)
                rc = self._wait()
                if self.reason == "exited" and self.tree.memory_capped():
                    self.reason = "memory-cap"
                self.tree.end()  # after reading the cgroup: this removes it
                for o in self.observers:
                    o.stop()
                    self.extra.update(getattr(o, "manifest_extra", {}) or {})
        except BaseException:
            self._abort()
            raise
        finally:
            self._cap_file.unlink(missing_ok=True)
            self._reclaim_terminal()
        return rc, received

    def _reclaim_terminal(self) -> None:
        """Take the terminal back if the program's group still holds it (not if labkit's
        shell has since given it to another job)."""
        with contextlib.suppress(OSError):
            if self.tty is not None and os.tcgetpgrp(self.tty) == self.child.pid:
                hand_terminal(self.tty, os.getpgrp())

    def _forward(self, sig: int) -> None:
        # a terminal's SIGINT reached labkit, not the program's group: pass it to the whole
        # group, as the terminal would have; any other signal goes to the program alone
        if sig == signal.SIGINT and in_foreground(self.tty):
            self.tree.signal(sig)
        else:
            self.child.send_signal(sig)

    def _start_observers(self, backends: Sequence[Callable[[int, RunWriter], Any]]) -> None:
        pid, opts = self.child.pid, self.opts
        if opts.proc or opts.memory_cap_bytes or opts.heap_snapshot == "peak":
            path = self.writer.file(A.PROC) if opts.proc else self._cap_file
            fds = self.writer.file(A.PROC_FDS) if opts.proc else None
            self.observers.append(ProcSampler(pid, path, interval_s=opts.proc_interval_s,
                                              fds_path=fds, on_sample=self._check_memory,
                                              tree=self.tree.members).start())
        if opts.pyspy:
            from labkit.capture import pyspy

            self.observers.append(pyspy.Recorder(pid, self.writer, rate_hz=opts.rate_hz).start())
        self.observers += [make(pid, self.writer) for make in backends]

    def _check_memory(self, rss: int) -> None:
        """Each sample of the tree's RSS: heap snapshots asked; past the cap, tree killed."""
        cap, when, pid = self.opts.memory_cap_bytes, self.opts.heap_snapshot, self.child.pid
        snap, alive = self.writer.path / A.HEAP_SNAPSHOT.name, lambda: self.child.poll() is None
        if when == "peak" and rss > self._snap_rss * heapsnap.PEAK_STEP and self.reason == "exited":
            self._snap_rss = rss
            heapsnap.ask(pid, snap, wait_s=0, alive=alive)
        if cap and rss > cap and self.reason == "exited":
            self.reason = "memory-cap"
            _ = when == "cap" and heapsnap.ask(pid, snap, wait_s=heapsnap.CAP_WAIT_S, alive=alive)
            self.tree.kill()

    def _wait(self) -> int:
        """The program's exit status; past the time cap its tree is terminated, then
        killed."""
        cap = self.opts.time_cap_s
        deadline = None if cap is None else time.monotonic() + cap
        while deadline is None or time.monotonic() < deadline:
            step = 0.2 if deadline is None else max(0.0, min(0.2, deadline - time.monotonic()))
            try:
                return self.child.wait(timeout=step)
            except subprocess.TimeoutExpired:
                self._follow_stop()
        self.reason = "time-cap"
        self.tree.signal(signal.SIGTERM)
        try:
            return self.child.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.tree.kill()
            return self.child.wait()

    def _follow_stop(self) -> None:
        """The program was stopped (Ctrl-Z, or reading the terminal in the background): take
        the terminal back and stop labkit alike, so that its shell sees the job stopped;
        once continued, give the program the terminal if labkit is in the foreground, and
        continue it."""
        if self.tty is None:
            return
        try:
            info = os.waitid(os.P_PID, self.child.pid, os.WSTOPPED | os.WNOHANG)
        except ChildProcessError:
            return
        if info is None or info.si_code != os.CLD_STOPPED:
            return
        self._reclaim_terminal()
        os.kill(os.getpid(), info.si_status)
        if in_foreground(self.tty):
            hand_terminal(self.tty, self.child.pid)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.child.pid, signal.SIGCONT)

    def _abort(self) -> None:
        self.tree.kill()
        self.child.wait()
        self.tree.end()
        for o in self.observers:
            with contextlib.suppress(Exception):
                o.stop()


def _target_facts(run_path: Path) -> dict[str, Any] | None:
    import json

    try:
        meta = json.loads((run_path / A.GC_META.name).read_text())
    except (OSError, ValueError):
        return None
    return meta.get("python")


def exit_like(result: RunResult) -> int:
    """Return the program's exit code, or die by the signal that killed it."""
    if result.signal is not None:
        with contextlib.suppress(OSError):  # SIGKILL (a memory cap) has no handler to reset
            signal.signal(result.signal, signal.SIG_DFL)
        os.kill(os.getpid(), result.signal)
        time.sleep(1)
    return result.returncode
