"""The ``labkit`` command. Each verb is a thin shell over functions a notebook can call too.

Errors a user can cause are :class:`LabkitError`s: printed as one line, exit code 2.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from labkit import schemas
from labkit.capture import MEMRAY_FILE
from labkit.cli.output import say
from labkit.errors import LabkitError, UsageError
from labkit.export import DEFAULT_FORMAT, MEMRAY_PASSES

if TYPE_CHECKING:
    import argparse

__all__ = ["WITHOUT_PYARROW", "WITHOUT_TEARDOWN", "command", "main", "say"]

# Verbs that read captures into pandas and print text, JSON or HTML, never Parquet or
# DuckDB. As the ``labkit`` command they run without pyarrow, which pandas 3 imports
# whenever it is installed: about 35 MB of RSS and 0.2 s of the start of every run (a
# postmortem's largest process, bench/README.md). Any other verb keeps it.
WITHOUT_PYARROW = frozenset({"postmortem", "summary", "compare"})

# Verbs that return with every file they wrote closed and in place and every line they
# printed flushed. As the ``labkit`` command their process then leaves without the
# interpreter's teardown, which frees every object pandas and pyarrow made one by one
# (22-35 ms of a large capture's Parquet export, 5-7 ms without it: bench/README.md) where
# the process's end frees them all at once.
WITHOUT_TEARDOWN = frozenset({"export", "postmortem", "summary"})


def _split_command(argv: list[str]) -> tuple[list[str], list[str]]:
    if "--" in argv:
        i = argv.index("--")
        return argv[:i], argv[i + 1:]
    return argv, []


class _Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP reached labkit: unwound like Ctrl-C (temporary files removed,
    partial runs dropped), then labkit dies by that signal."""


def _on_terminate(signum: int, frame: object) -> None:
    raise _Terminated(signum)


def _unwind_on_terminate() -> None:
    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) is signal.SIG_DFL:
            signal.signal(sig, _on_terminate)


def _hide_pyarrow() -> None:
    """Make ``import pyarrow`` fail in this process, so that pandas, imported after, keeps
    ``str`` columns in Python objects; nothing if pandas or pyarrow is already in."""
    if "pandas" not in sys.modules and "pyarrow" not in sys.modules:
        sys.modules["pyarrow"] = None  # type: ignore[assignment]  # import raises ImportError


def main(argv: Sequence[str] | None = None) -> int:
    """Run a verb and return its exit code (:func:`command`, the ``labkit`` command, exits
    with it). Called without ``argv`` (as the command, whose process is this one verb's),
    a verb of :data:`WITHOUT_PYARROW` hides pyarrow from the process first, jsonschema is
    imported without any optional format checker (:data:`labkit.schemas.FORMAT_LIBRARIES`),
    and once the verb is done every object is frozen out of the collector's reach
    (:func:`gc.freeze`): the interpreter's teardown then collects nothing, where its full
    collections walked every object pandas and pyarrow made (0.13-0.17 s of a Parquet
    export, bench/README.md); a verb sees ``args.own_process`` True, and may freeze its own
    imports too (the Parquet export and the postmortem do). Called with ``argv`` (a test, a
    notebook), it leaves the interpreter as it is."""
    return _verb(argv)[0]


def command() -> NoReturn:
    """The ``labkit`` command (its console script, ``python -m labkit``): :func:`main`, then
    exit with its code. A verb of :data:`WITHOUT_TEARDOWN`, once it returns with no other
    thread left to join, exits at once: the exit handlers run (:mod:`atexit`'s, temporary
    folders' finalizers) and the standard streams are flushed, but the interpreter does
    not tear its objects down. An export typed in full has memray's passes started
    before anything else (:func:`_export_started`)."""
    first = _export_started(sys.argv[1:])
    try:
        code, verb = _verb(None, first)
    finally:
        if first is not None:
            first.close()  # the workers no run took
    others = [t for t in threading.enumerate()
              if t is not threading.main_thread() and not t.daemon]
    run_exit_handlers = getattr(atexit, "_run_exitfuncs", None)
    if verb in WITHOUT_TEARDOWN and not others and run_exit_handlers is not None:
        run_exit_handlers()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code)
    sys.exit(code)


# ``labkit export``'s options that take a value (labkit.cli.parser)
_EXPORT_VALUED = frozenset({"--to", "--out", "--label"})


def _export_started(argv: list[str]) -> Any:
    """For ``export RUN ...`` with every option by its whole name, memray's passes for its
    ``--to`` started over RUN's capture now, before argparse, the verbs and the run's
    machinery are imported (about 20 ms of the export's critical path); None for any other
    command line, whose export starts them once parsed. ``cmd_export`` uses them only if
    they are the passes it wants over the file it wants, and stops them otherwise."""
    if argv[:1] != ["export"]:
        return None
    run, to, words = None, DEFAULT_FORMAT, iter(argv[1:])
    for word in words:
        name, eq, value = word.partition("=")
        if name in _EXPORT_VALUED:
            value = value if eq else next(words, "")
            to = value if name == "--to" else to
        elif word == "--force":
            continue
        elif word.startswith("-") or run is not None:
            return None  # help, "--", an option abbreviated, a second run: argparse's
        else:
            run = word
    if run is None or to not in MEMRAY_PASSES:
        return None
    # here, not at the top: subprocess and ctypes, 5-7 ms of every other verb's start
    from labkit.frames.memray_start import start_first

    return start_first(Path(run) / MEMRAY_FILE, MEMRAY_PASSES[to])


def _verb(argv: Sequence[str] | None, first: Any = None) -> tuple[int, str | None]:
    """:func:`main`'s exit code, and the verb it ran (None if none); ``first``, memray's
    passes an export's command line started (:func:`_export_started`)."""
    try:
        return _main(argv, first)
    finally:
        if argv is None:
            gc.freeze()


def _main(argv: Sequence[str] | None, first: Any = None) -> tuple[int, str | None]:
    own, command = _split_command(list(sys.argv[1:] if argv is None else argv))
    from labkit.cli.parser import build_parser

    parser = build_parser(own[0] if own and not own[0].startswith("-") else None)
    args = parser.parse_args(own)
    if not getattr(args, "verb", None):
        parser.print_help()
        return 2, None
    args.memray_started = first  # for cmd_export
    return _run(args, command, own_process=argv is None), args.verb


def _run(args: argparse.Namespace, command: list[str], *, own_process: bool) -> int:
    """Run the parsed verb ``args`` (``command``, the program after ``--``): its exit code,
    a :class:`LabkitError` or an interruption turned into one line and a code."""
    args.own_process = own_process  # the process is this verb's alone
    if own_process:
        schemas.hidden_from_jsonschema = schemas.FORMAT_LIBRARIES
        if args.verb in WITHOUT_PYARROW:
            _hide_pyarrow()
    if threading.current_thread() is threading.main_thread():
        _unwind_on_terminate()
    try:
        if args.needs_command and not command:
            raise UsageError(f"no program given; usage: labkit {args.verb} [options] -- python "
                             "PROG [ARGS]")
        if command and not args.needs_command:
            raise UsageError(f"labkit {args.verb} takes no program after --")
        return args.handler(args, command)
    except LabkitError as exc:
        say(f"labkit: {exc}", sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt as exc:
        if isinstance(exc, _Terminated):
            sig = exc.args[0]
            say(f"labkit: stopped by {signal.Signals(sig).name}", sys.stderr)
            signal.signal(sig, signal.SIG_DFL)
            os.kill(os.getpid(), sig)
            return 128 + sig
        say("labkit: interrupted", sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (`labkit ... | head`): stop quietly, as a C tool would
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 128 + signal.SIGPIPE
    except OSError as exc:  # a file or folder labkit could not read or write, wherever
        say(f"labkit: {os_error_line(exc)}", sys.stderr)
        return 2


def os_error_line(exc: OSError) -> str:
    """One line for an :class:`OSError` no verb turned into a :class:`LabkitError`: the
    path, what went wrong and what to do."""
    import errno

    where = f"{exc.filename}" if exc.filename is not None else "a file labkit needed"
    why = exc.strerror or type(exc).__name__
    if exc.errno in (errno.EACCES, errno.EPERM):
        todo = "check its permissions (and those of the folders above it), or run as its owner"
    elif exc.errno == errno.ENOSPC:
        todo = "free some disk space and run again"
    else:
        todo = "check the path and run again"
    return f"{where}: {why}; {todo}"
