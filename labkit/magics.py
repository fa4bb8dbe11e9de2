"""IPython magics: ``%load_ext labkit``.

``%%labkit_capture [--gc] [--memray] [--proc] [--pyspy] [--trace-python-allocators]
[--heap-snapshot[=WHEN]] [--out DIR] [--time-cap S] [--memory-cap MIB] [NAME]`` runs the
cell as a program of its own: a fresh process of the kernel's interpreter, under the
backends named (none named: the GC tracer, memray and the process sampler; the agent's
thread/task/fd origins always; ``--heap-snapshot`` adds the heap's object graph, so the
suspects say what keeps their memory alive).
The cell sees none of the kernel's variables, so it imports and builds what it needs. That
is what each backend requires: memray and the GC tracer must own an interpreter from its
start, py-spy attaches to a process by pid (and needs ptrace), the process sampler watches
a whole process; and a leaky cell cannot leak into the kernel, which its caps (120 s,
1 GiB by default; checked as the CLI checks them) also protect. The caps hold for the
cell's whole process tree (its forked and double-forked children too; see
:mod:`labkit.capture.tree`). The run directory is published like any ``labkit capture``
run (``labkit.load``, ``labkit compare`` and ``labkit postmortem`` take it); its loaded
:class:`~labkit.frames.Run` is bound to ``NAME`` (default ``_labkit_run``) and shown: the GC
pauses against allocation, the postmortem's suspects and the memory flamegraph.

``%labkit_gc on|show|off`` runs labkit's GC tracer inside the kernel itself, so a learner
sees the kernel's own collections: turn it on, call ``gc.set_threshold(...)`` or build
garbage in a cell, then ``%labkit_gc`` shows every collection since ``on``; ``off`` stops
it and shows them a last time.
"""

from __future__ import annotations

import argparse
import keyword
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from labkit.errors import LabkitError
from labkit.options import MEMORY_MIB, SECONDS
from labkit.report.display import register as register_display

DEFAULT_TIME_CAP_S = 120.0
DEFAULT_MEMORY_CAP_MIB = 1024
_DRAIN_WAIT_S = 0.25  # the tracer's thread appends events every 0.1 s


class _Quiet(argparse.ArgumentParser):
    def error(self, message: str) -> Any:
        raise LabkitError(f"{self.prog}: {message}")


def _capture_parser() -> argparse.ArgumentParser:
    ap = _Quiet(prog="%%labkit_capture", add_help=False)
    for flag in ("--gc", "--memray", "--proc", "--pyspy", "--trace-python-allocators"):
        ap.add_argument(flag, action="store_true")
    ap.add_argument("--heap-snapshot", nargs="?", const="exit",
                    choices=("exit", "peak", "signal", "cap"))
    ap.add_argument("--out", type=Path)
    ap.add_argument("--time-cap", type=SECONDS, default=DEFAULT_TIME_CAP_S)
    ap.add_argument("--memory-cap", type=MEMORY_MIB, default=DEFAULT_MEMORY_CAP_MIB)
    ap.add_argument("name", nargs="?", default="_labkit_run")
    return ap


def capture_cell(cell: str, line: str = "") -> Any:
    """Run ``cell`` under capture as ``%%labkit_capture line`` does; returns the variable
    name and the loaded run.
    Raises a one-line :class:`LabkitError` for bad options (checked as the ``labkit`` CLI
    checks them, before anything runs) or a py-spy that may not attach."""
    from labkit.capture.session import CaptureOptions, run_program
    from labkit.frames import load

    try:
        words = shlex.split(line)
    except ValueError as exc:
        raise LabkitError(f"%%labkit_capture: {exc}; check the quotes in its line") from None
    args = _capture_parser().parse_args(words)
    if not args.name.isidentifier() or keyword.iskeyword(args.name):
        raise LabkitError(f"%%labkit_capture: {args.name!r} is not a variable name")
    chosen = args.gc or args.memray or args.proc or args.pyspy
    if args.pyspy:
        from labkit.doctor import ptrace_check

        check = ptrace_check()
        if not check.ok:
            raise LabkitError(f"py-spy cannot attach here ({check.detail}); drop --pyspy, "
                              "or run the kernel as root / with CAP_SYS_PTRACE")
    opts = CaptureOptions(gc=args.gc or not chosen, memray=args.memray or not chosen,
                          proc=args.proc or not chosen, pyspy=args.pyspy,
                          trace_python_allocators=args.trace_python_allocators,
                          heap_snapshot=args.heap_snapshot, time_cap_s=args.time_cap,
                          memory_cap_bytes=args.memory_cap * 1024 * 1024)
    tmp = Path(tempfile.mkdtemp(prefix="labkit-cell-"))
    script = tmp / "cell.py"
    # the magic's line first, as a comment: line numbers in findings match the cell's own
    # (one line: a line break in the options must not turn their rest into code)
    flat = line.replace("\r", "\\r").replace("\n", "\\n")
    script.write_text(f"# %%labkit_capture {flat}\n{cell}", encoding="utf-8")
    res = run_program([sys.executable, str(script)], out=args.out or tmp / "run",
                      options=opts, kind="capture")
    run = load(res.path)
    print(f"{args.name} = labkit.load({str(res.path)!r})  # {res.reason}, exit code "
          f"{res.returncode}")
    return args.name, run


def show_run(run: Any) -> None:
    """What a captured cell shows, from the run as loaded (nothing read twice): the
    suspects, then the postmortem page's charts and flamegraphs (each only if captured)."""
    from IPython.display import display

    from labkit import notebook as nb
    from labkit.analysis.findings import findings
    from labkit.frames.evidence import evidence_of
    from labkit.report import views

    ev = evidence_of(run)
    found = findings(ev)
    display(found)
    for chart in views.charts(ev):
        nb.show(chart.figure, alt=chart.alt)
    for f in views.flames(ev, found):
        display(nb.Flamegraph(f.tree, title=f.title, unit=f.unit))


class KernelGC:
    """The GC tracer running in this interpreter, for ``%labkit_gc``."""

    def __init__(self) -> None:
        self.tracer: Any = None
        self.dir: Path | None = None

    def on(self) -> str:
        from labkit.capture.gctrace import GCTracer

        if self.tracer is not None:
            return "the kernel's GC tracer is already on"
        self.dir = Path(tempfile.mkdtemp(prefix="labkit-kernel-gc-"))
        self.tracer = GCTracer(str(self.dir))
        self.tracer.start()
        return ("tracing this kernel's collections; run cells, then %labkit_gc to see them, "
                "%labkit_gc off to stop")

    def events(self) -> Any:
        """Every collection since ``on`` (this kernel's, the tracer's own thread marked)."""
        from labkit.capture.gctrace import EVENTS_FILE
        from labkit.frames.gctrace import load_gc_events

        if self.tracer is None or self.dir is None:
            raise LabkitError("the kernel's GC tracer is off; %labkit_gc on first")
        time.sleep(_DRAIN_WAIT_S)
        return load_gc_events(self.dir / EVENTS_FILE, self.tracer.t0_ns,
                              self.tracer._thread_id)

    def off(self) -> Any:
        events = self.events()
        self.tracer.stop()
        self.tracer = None
        return events


def show_kernel_gc(events: Any) -> None:
    """The kernel's collections: a line of figures and the pauses over time."""
    import gc

    from labkit import notebook as nb
    from labkit.analysis import gc_summary
    from labkit.charts import gc_timeline, labkit_style

    ev = events[~events.in_tracer]
    wall = max(float(ev.t_s.max()) if len(ev) else 0.0, 1e-9)
    s = gc_summary(ev, wall)
    nb.md(f"**This kernel: {s.collections:,.0f} collections** (gen0 {s.gen0:,.0f}, gen1 "
          f"{s.gen1:,.0f}, gen2 {s.gen2:,.0f}), pauses {s.pause_total_ms:.1f} ms in total, "
          f"longest {s.pause_max_ms:.2f} ms, over {wall:.1f} s; thresholds now "
          f"`{gc.get_threshold()}`.")
    if len(ev):
        with labkit_style():
            nb.show(gc_timeline(ev, title="This kernel's collections"))


KERNEL_GC = KernelGC()  # the kernel's one tracer (constructing it starts nothing)


def load_ipython_extension(ip: Any) -> None:
    """Register ``%%labkit_capture`` and ``%labkit_gc`` (``%load_ext labkit``)."""
    kernel_gc = KERNEL_GC

    def labkit_capture(line: str, cell: str) -> None:
        try:
            name, run = capture_cell(cell, line)
        except LabkitError as exc:
            print(f"labkit: {exc}", file=sys.stderr)
            return
        ip.user_ns[name] = run
        show_run(run)

    def labkit_gc(line: str) -> None:
        what = line.strip() or "show"
        try:
            if what == "on":
                print(kernel_gc.on())
            elif what in ("show", "off"):
                show_kernel_gc(kernel_gc.events() if what == "show" else kernel_gc.off())
            else:
                raise LabkitError(f"%labkit_gc {what}: say on, show or off")
        except LabkitError as exc:
            print(f"labkit: {exc}", file=sys.stderr)

    register_display(ip)
    ip.register_magic_function(labkit_capture, "cell", "labkit_capture")
    ip.register_magic_function(labkit_gc, "line", "labkit_gc")
