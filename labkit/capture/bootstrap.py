"""The in-process agent: starts the GC tracer and memray's Tracker, then runs the program.

Run as a script by :func:`labkit.capture.session.run_program`::

    python bootstrap.py --out DIR [--interval S] [--quiet] [--no-gc] [--tracemalloc]
                        [--lend DIR] [--memray FILE [--native] [--trace-python-allocators]
                                                    [--aggregate]]
                        [--heap-snapshot exit|signal|peak|cap]
                        -- (PROG | -m MODULE | -c CODE) [ARGS]

Contract:

* It imports only the standard library (and memray when asked): it runs inside the
  program's interpreter, which need not have labkit's dependencies. ``--lend DIR`` (what
  labkit lends: memray and what it imports) is appended to the *end* of ``sys.path``
  before anything is imported, so the program's own packages always come first.
* Everything it writes is named by an absolute path fixed before the program starts, so a
  program that changes directory or deletes files cannot redirect it.
* Its messages (gctrace's per-collection lines) go to a duplicate of fd 2 taken before the
  program ran, never to whatever the program later opens on fds 0-2.
* It acts only in the process it was started in: a forked child drops the tracer, memray's
  tracker and the signal handlers (see :mod:`labkit.capture.gctrace`), so children can
  never write into the run, and their exit is theirs alone.
* The program runs as ``__main__`` and exits as plain Python would: its own exit code, its
  own traceback (labkit's frames trimmed), death by an uncaught SIGINT.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import sys
from types import ModuleType
from typing import Any, TextIO

_HERE = os.path.abspath(__file__)
_HANDLED = (signal.SIGTERM, signal.SIGHUP)


def _load(module: str) -> ModuleType:
    """``MODULE.py`` beside this file, under a private name (the program may have its own
    module of that name, and labkit need not be importable here)."""
    name = f"_labkit_{module}"
    spec = importlib.util.spec_from_file_location(
        name, os.path.join(os.path.dirname(_HERE), f"{module}.py"))
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod  # dataclass-free, but keep the usual import contract
    spec.loader.exec_module(mod)
    return mod


def parse(argv: list[str]) -> tuple[dict[str, Any], list[str]]:
    """Split the agent's options from the program's command line (after ``--``)."""
    opts: dict[str, Any] = {"out": None, "interval": 0.02, "quiet": False, "tracemalloc": False,
                            "memray": None, "native": False, "trace_python_allocators": False,
                            "aggregate": False,
                            "gc": True, "origins": False, "lend": None, "heap_snapshot": None}
    i = 0
    while i < len(argv) and argv[i] != "--":
        a = argv[i]
        if a in ("--out", "--interval", "--memray", "--lend", "--heap-snapshot"):
            opts[a[2:].replace("-", "_")] = argv[i + 1]
            i += 2
            continue
        key = a[2:].replace("-", "_")
        if key.startswith("no_"):
            opts[key[3:]] = False
        else:
            opts[key] = True
        i += 1
    for key in ("out", "memray", "lend"):
        if opts[key]:
            opts[key] = os.path.abspath(opts[key])
    return opts, argv[i + 1:]


def _messages() -> TextIO | None:
    """A private duplicate of fd 2 (not inherited by the program's children)."""
    try:
        return os.fdopen(os.dup(2), "w", buffering=1, encoding="utf-8", errors="replace")
    except OSError:
        return None


def _trim_traceback(exc: BaseException) -> BaseException:
    tb = exc.__traceback__
    while tb is not None and (
        os.path.abspath(tb.tb_frame.f_code.co_filename) == _HERE
        or "runpy" in os.path.basename(tb.tb_frame.f_code.co_filename)
        or tb.tb_frame.f_code.co_filename.startswith("<frozen runpy")
    ):
        tb = tb.tb_next
    return exc.with_traceback(tb)


def _run_target(target: list[str]) -> dict[str, Any]:
    """Run the program as ``__main__``; returns its globals, which the caller keeps alive
    until tracking stops, as they would be at a plain interpreter's exit."""
    import runpy

    if target[0] == "-m":
        sys.argv = [target[1], *target[2:]]
        sys.path[0] = os.getcwd()
        return runpy.run_module(target[1], run_name="__main__", alter_sys=True)
    if target[0] == "-c":
        sys.argv = ["-c", *target[2:]]
        sys.path[0] = ""
        main_globals = sys.modules["__main__"].__dict__
        main_globals.pop("__file__", None)
        exec(compile(target[1], "<string>", "exec"), main_globals)
        return main_globals
    prog = target[0]
    sys.argv = [prog, *target[1:]]
    sys.path[0] = os.path.dirname(os.path.abspath(prog))
    return runpy.run_path(prog, run_name="__main__")


def _program_globals(exc: BaseException) -> dict[str, Any] | None:
    """The globals of the program's outermost frame in ``exc``'s traceback (runpy has
    already put labkit's own ``__main__`` back)."""
    tb = _trim_traceback(exc).__traceback__
    return tb.tb_frame.f_globals if tb is not None else None


def _heap_snapshots(opts: dict[str, Any], owner: int) -> Any:
    """The heap snapshot's writer, called with the program's globals (None: the running
    ``__main__``'s); for every WHEN but ``exit``, SIGUSR2 takes one (labkit sends it at the
    peak or at the memory cap), each replacing the last. None when not asked for."""
    when = opts["heap_snapshot"]
    if not when:
        return None
    heapsnap = _load("heapsnap")
    path = os.path.join(opts["out"], heapsnap.SNAPSHOT_FILE)

    def take(program_globals: dict[str, Any] | None) -> None:
        if program_globals is None:
            main = sys.modules.get("__main__")
            program_globals = getattr(main, "__dict__", None)
        # never the program's outcome: a snapshot that fails is missing from the run
        with contextlib.suppress(OSError, MemoryError):
            heapsnap.write_snapshot(path, when=when, program_globals=program_globals)

    def on_usr2(signum: int, frame: Any) -> None:
        if os.getpid() == owner:
            take(None)

    if when != "exit":
        if signal.getsignal(signal.SIGUSR2) is signal.SIG_DFL:
            signal.signal(signal.SIGUSR2, on_usr2)
            os.register_at_fork(after_in_child=lambda: signal.signal(signal.SIGUSR2,
                                                                     signal.SIG_DFL))
        # labkit blocked it until now (see session._start): one sent early runs the handler
        signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGUSR2])
    return take


def main(argv: list[str] | None = None) -> None:
    """Start the chosen backends, run the program, stop them; exit as the program did."""
    opts, target = parse(sys.argv[1:] if argv is None else argv)
    owner = os.getpid()
    if opts["lend"]:
        sys.path.append(opts["lend"])
    tracker = None
    if opts["memray"]:
        import memray

        fmt = {"file_format": memray.FileFormat.AGGREGATED_ALLOCATIONS} if opts["aggregate"] \
            else {}
        tracker = memray.Tracker(
            opts["memray"], native_traces=opts["native"],
            trace_python_allocators=opts["trace_python_allocators"],
            follow_fork=False, **fmt,
        )
        tracker.__enter__()
    tracer = None
    messages = None if opts["quiet"] else _messages()
    if opts["gc"]:
        tracer = _load("gctrace").GCTracer(
            opts["out"], interval_s=float(opts["interval"]), echo=messages,
            tracemalloc=opts["tracemalloc"],
        )
    origins = None
    heap = _heap_snapshots(opts, owner)

    def _finish(program_globals: dict[str, Any] | None = None) -> None:
        if os.getpid() != owner:
            return
        steps = (("origins", origins and (lambda: origins.write(opts["out"]))),
                 ("GC trace", tracer and tracer.stop),
                 ("memray", tracker and (lambda: tracker.__exit__(None, None, None))))
        for what, step in steps:  # origins first, while the program's threads and files live
            if not step:
                continue
            try:
                step()
            except OSError as exc:  # a program at its fd limit, a full disk: one line
                if sys.stderr is not None:
                    print(f"labkit: could not finish the {what} capture ({exc.strerror}); "
                          "the run goes without it", file=sys.stderr)
        if heap is not None and opts["heap_snapshot"] == "exit":
            # after memray stops: what it still holds is exactly what the snapshot sees,
            # and the snapshot's own allocations are in no capture
            heap(program_globals)

    def _on_signal(signum: int, frame: Any) -> None:
        _finish()
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    def _drop_handlers_in_child() -> None:
        for sig in _HANDLED:
            if signal.getsignal(sig) is _on_signal:
                signal.signal(sig, signal.SIG_DFL)

    for sig in _HANDLED:
        if signal.getsignal(sig) is signal.SIG_DFL:
            signal.signal(sig, _on_signal)
    os.register_at_fork(after_in_child=_drop_handlers_in_child)
    if tracer is not None:
        tracer.start()
    if opts["origins"]:
        own = [messages.fileno()] if messages is not None else []
        if tracer is not None:
            own.append(tracer.statm_fd)
        origins = _load("origins").Origins(opts["out"], ignore_fds=tuple(own))
        origins.install()
        if tracer is not None:
            tracer.on_tick = origins.sample
    try:
        main_globals = _run_target(target)
    except SystemExit as exc:
        _finish(_program_globals(exc))
        raise
    except BaseException as exc:
        _finish(_program_globals(exc))
        # Report it as plain Python would: the program's frames only, exit 1, and an
        # uncaught KeyboardInterrupt ends the process by SIGINT.
        exc = _trim_traceback(exc)
        sys.excepthook(type(exc), exc, exc.__traceback__)
        if isinstance(exc, KeyboardInterrupt):
            if sys.stderr is not None:
                sys.stderr.flush()
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGINT)
        sys.exit(1)
    _finish(main_globals)
    del main_globals


def _die_by_sigint() -> None:
    """Labkit's own start-up interrupted (no program frame yet): end by SIGINT, as the
    program would have, without a traceback of labkit's frames."""
    if sys.stderr is not None:
        sys.stderr.flush()
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGINT)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        _die_by_sigint()
