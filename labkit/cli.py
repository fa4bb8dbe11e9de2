"""The ``labkit`` command. Each verb is a thin shell over functions a notebook can call too.

Errors a user can cause are :class:`LabkitError`s: printed as one line, exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from labkit.errors import LabkitError, UsageError

Handler = Callable[[argparse.Namespace, list[str]], int]


def _split_command(argv: list[str]) -> tuple[list[str], list[str]]:
    if "--" in argv:
        i = argv.index("--")
        return argv[:i], argv[i + 1:]
    return argv, []


def _add_capture_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, help="run directory to create (default: runs/NAME-TIME)")
    p.add_argument("--interval", type=float, default=0.02, metavar="S",
                   help="heap sampling interval in seconds (>= 0.01; default 0.02)")
    p.add_argument("--tracemalloc", action="store_true",
                   help="also sample tracemalloc's traced memory (slows the program 2-3x)")
    p.add_argument("--proc", action="store_true",
                   help="sample RSS, threads, fds and CPU from outside")


def cmd_gctrace(args: argparse.Namespace, command: list[str]) -> int:
    """Run a program with the GC tracer; print a line per collection and a summary."""
    from labkit.capture.session import CaptureOptions, exit_like, run_program
    from labkit.report.text import gc_summary_lines

    if args.interval < 0.01:
        raise UsageError("--interval must be at least 0.01 s")
    opts = CaptureOptions(gc=True, proc=args.proc, quiet=args.quiet,
                          interval_s=args.interval, tracemalloc=args.tracemalloc)
    result = run_program(command, out=args.out, options=opts, kind="gctrace",
                         argv=["labkit", *sys.argv[1:]])
    for line in gc_summary_lines(result.path):
        print(line, file=sys.stderr)
    return exit_like(result)


def cmd_capture(args: argparse.Namespace, command: list[str]) -> int:
    """Run a program under any combination of backends (all four when none is named)."""
    from labkit.capture.session import CaptureOptions, exit_like, run_program
    from labkit.report.text import run_summary_lines

    chosen = {k: getattr(args, k) for k in ("gc", "proc", "memray", "pyspy")}
    if not any(chosen.values()):
        chosen = dict.fromkeys(chosen, True)
    if args.interval < 0.01:
        raise UsageError("--interval must be at least 0.01 s")
    opts = CaptureOptions(**chosen, native=args.native,
                          trace_python_allocators=args.trace_python_allocators,
                          rate_hz=args.rate, interval_s=args.interval,
                          tracemalloc=args.tracemalloc, quiet=True)
    result = run_program(command, out=args.out, options=opts, kind="capture",
                         argv=["labkit", *sys.argv[1:]])
    for line in run_summary_lines(result.path):
        print(line, file=sys.stderr)
    return exit_like(result)


def cmd_attach(args: argparse.Namespace, command: list[str]) -> int:
    """Capture a running process by pid."""
    from labkit.capture.attach import attach
    from labkit.report.text import run_summary_lines

    if args.pyspy is None and not args.dump and args.proc is None:
        args.pyspy, args.dump, args.proc = 5.0, True, 5.0
    path = attach(args.pid, pyspy_s=args.pyspy, dump=args.dump, proc_s=args.proc,
                  rate_hz=args.rate, out=args.out, argv=["labkit", *sys.argv[1:]])
    for line in run_summary_lines(path):
        print(line)
    return 0


def cmd_compare(args: argparse.Namespace, command: list[str]) -> int:
    """Print B against A: summary deltas, then sites and functions by growth."""
    from labkit.compare import compare
    from labkit.report.text import comparison_lines

    for line in comparison_lines(compare(args.a, args.b), top=args.top):
        print(line)
    return 0


def cmd_summary(args: argparse.Namespace, command: list[str]) -> int:
    """Print what a run holds and the summary of each capture in it."""
    from labkit.report.text import run_summary_lines

    for line in run_summary_lines(args.run):
        print(line)
    return 0


def cmd_doctor(args: argparse.Namespace, command: list[str]) -> int:
    """Print versions and the ptrace check; 0 when all is well, 1 otherwise."""
    from labkit.doctor import run_doctor

    checks = run_doctor()
    width = max(len(c.name) for c in checks)
    for c in checks:
        print(f"{'ok ' if c.ok else 'NO '} {c.name:<{width}}  {c.detail}")
    bad = [c for c in checks if not c.ok]
    print("all is well" if not bad else f"{len(bad)} problem(s): see the lines marked NO")
    return 0 if not bad else 1


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every verb."""
    parser = argparse.ArgumentParser(prog="labkit", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="verb", metavar="VERB")

    p = sub.add_parser("gctrace", help="run a Python program with the GC tracer",
                       usage="labkit gctrace [options] -- python PROG [ARGS] | -m MODULE [ARGS]")
    _add_capture_flags(p)
    p.add_argument("--quiet", action="store_true", help="print the summary only")
    p.set_defaults(handler=cmd_gctrace, needs_command=True)

    p = sub.add_parser("capture", help="run a program under memray, py-spy, the GC tracer and "
                       "the process sampler (all four unless some are named)",
                       usage="labkit capture [options] -- python PROG [ARGS] | -m MODULE [ARGS]")
    _add_capture_flags(p)
    p.add_argument("--gc", action="store_true", help="the GC tracer")
    p.add_argument("--memray", action="store_true", help="memray (allocations, peak, RSS)")
    p.add_argument("--native", action="store_true", help="memray: native stacks too")
    p.add_argument("--trace-python-allocators", action="store_true",
                   help="memray: every pymalloc allocation (needed for small-object leaks)")
    p.add_argument("--pyspy", action="store_true", help="py-spy CPU stacks from outside")
    p.add_argument("--rate", type=int, default=100, metavar="HZ", help="py-spy sampling rate")
    p.set_defaults(handler=cmd_capture, needs_command=True)

    p = sub.add_parser("attach", help="capture a running process: py-spy record and dump, "
                       "process samples (all three unless some are named)")
    p.add_argument("pid", type=int)
    p.add_argument("--pyspy", type=float, metavar="SECONDS", help="py-spy record this long")
    p.add_argument("--dump", action="store_true", help="py-spy dump of every thread's stack")
    p.add_argument("--proc", type=float, metavar="SECONDS", help="sample the process this long")
    p.add_argument("--rate", type=int, default=100, metavar="HZ", help="py-spy sampling rate")
    p.add_argument("--out", type=Path, help="run directory to create")
    p.set_defaults(handler=cmd_attach, needs_command=False)

    p = sub.add_parser("compare", help="run B against run A: what grew, by site and function")
    p.add_argument("a", type=Path, help="the baseline run")
    p.add_argument("b", type=Path, help="the run to compare with it")
    p.add_argument("--top", type=int, default=10, help="rows per table (default 10)")
    p.set_defaults(handler=cmd_compare, needs_command=False)

    p = sub.add_parser("summary", help="check a run directory (or one capture file) and "
                       "summarise it")
    p.add_argument("run", type=Path, help="a run directory, or a memray/speedscope/dump file")
    p.set_defaults(handler=cmd_summary, needs_command=False)

    p = sub.add_parser("doctor", help="versions, and whether py-spy can attach here")
    p.set_defaults(handler=cmd_doctor, needs_command=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: returns the exit code."""
    own, command = _split_command(list(sys.argv[1:] if argv is None else argv))
    parser = build_parser()
    args = parser.parse_args(own)
    if not getattr(args, "verb", None):
        parser.print_help()
        return 2
    try:
        if args.needs_command and not command:
            raise UsageError(f"no program given; usage: labkit {args.verb} [options] -- python "
                             "PROG [ARGS]")
        if command and not args.needs_command:
            raise UsageError(f"labkit {args.verb} takes no program after --")
        return args.handler(args, command)
    except LabkitError as exc:
        print(f"labkit: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("labkit: interrupted", file=sys.stderr)
        return 130
