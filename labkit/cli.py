"""The ``labkit`` command. Each verb is a thin shell over functions a notebook can call too.

Errors a user can cause are :class:`LabkitError`s: printed as one line, exit code 2.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

from labkit.errors import LabkitError, UsageError
from labkit.options import INTERVAL, MEMORY_MIB, PID, RATE_HZ, SECONDS, TOP

Handler = Callable[[argparse.Namespace, list[str]], int]


_CONTROL = {c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F, *range(0x80, 0xA0)) if c != 0x0A}


def say(line: str, file: TextIO | None = None) -> None:
    """Print one line with control characters escaped (a captured function name can hold
    terminal escapes), flushed."""
    print(str(line).translate(_CONTROL), file=file or sys.stdout, flush=True)


def _split_command(argv: list[str]) -> tuple[list[str], list[str]]:
    if "--" in argv:
        i = argv.index("--")
        return argv[:i], argv[i + 1:]
    return argv, []


def _add_capture_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, help="run directory to create (default: runs/NAME-TIME)")
    p.add_argument("--interval", type=INTERVAL, default=0.02, metavar="S",
                   help="heap sampling interval in seconds (0.01 to 60; default 0.02)")
    p.add_argument("--tracemalloc", action="store_true",
                   help="also sample tracemalloc's traced memory (slows the program 2-3x)")
    p.add_argument("--proc", action="store_true",
                   help="sample RSS, threads, fds and CPU from outside")


def _run_and_summarise(command: list[str], out: Path | None, opts: Any, kind: str,
                       summary: Callable[[Any], list[str]]) -> int:
    """Run ``command`` under ``opts``, print ``summary`` of its run to stderr, and exit as
    the program did."""
    from labkit.capture.session import exit_like, run_program

    result = run_program(command, out=out, options=opts, kind=kind,
                         argv=["labkit", *sys.argv[1:]])
    from labkit.frames import load

    for line in summary(load(result.path)):
        say(line, sys.stderr)
    return exit_like(result)


def cmd_gctrace(args: argparse.Namespace, command: list[str]) -> int:
    """Run a program with the GC tracer; print a line per collection and a summary."""
    from labkit.capture.session import CaptureOptions
    from labkit.report.text import gc_summary_lines

    opts = CaptureOptions(gc=True, proc=args.proc, quiet=args.quiet,
                          interval_s=args.interval, tracemalloc=args.tracemalloc)
    return _run_and_summarise(command, args.out, opts, "gctrace", gc_summary_lines)


def cmd_capture(args: argparse.Namespace, command: list[str]) -> int:
    """Run a program under any combination of backends (all four when none is named)."""
    from labkit.capture.session import CaptureOptions
    from labkit.report.text import run_summary_lines

    chosen = {k: getattr(args, k) for k in ("gc", "proc", "memray", "pyspy")}
    if not any(chosen.values()):
        chosen = dict.fromkeys(chosen, True)
    opts = CaptureOptions(**chosen, native=args.native,
                          trace_python_allocators=args.trace_python_allocators,
                          rate_hz=args.rate, interval_s=args.interval,
                          tracemalloc=args.tracemalloc, quiet=True)
    return _run_and_summarise(command, args.out, opts, "capture", run_summary_lines)


def cmd_attach(args: argparse.Namespace, command: list[str]) -> int:
    """Capture a running process by pid."""
    from labkit.capture.attach import attach
    from labkit.report.text import run_summary_lines

    if args.pyspy is None and not args.dump and args.proc is None:
        args.pyspy, args.dump, args.proc = 5.0, True, 5.0
    path = attach(args.pid, pyspy_s=args.pyspy, dump=args.dump, proc_s=args.proc,
                  rate_hz=args.rate, out=args.out, argv=["labkit", *sys.argv[1:]])
    from labkit.frames import load

    for line in run_summary_lines(load(path)):
        say(line)
    return 0


def cmd_compare(args: argparse.Namespace, command: list[str]) -> int:
    """Print B against A: summary deltas, then sites and functions by growth."""
    from labkit.compare import compare
    from labkit.report.text import comparison_lines

    for line in comparison_lines(compare(args.a, args.b), top=args.top):
        say(line)
    return 0


def cmd_list(args: argparse.Namespace, command: list[str]) -> int:
    """Scenarios, their variants or settings, and what each shows."""
    from labkit.report.text import scenario_list_lines

    for line in scenario_list_lines():
        say(line)
    return 0


def cmd_run(args: argparse.Namespace, command: list[str]) -> int:
    """Run a scenario's variants (or settings) under capture."""
    from labkit.frames import load
    from labkit.report.text import run_summary_lines
    from labkit.runner import parse_captures, parse_params, run_scenario
    from labkit.scenarios import get_spec

    spec = get_spec(args.scenario)
    chosen = args.setting or args.variant
    variants = [chosen] if chosen and chosen != "all" else None
    if args.setting and not spec.settings:
        raise UsageError(f"{args.scenario} has variants, not settings; use --variant")
    results = run_scenario(args.scenario, variants=variants,
                           captures=parse_captures(args.capture, spec.captures),
                           params=parse_params(args.param), quick=args.quick, out=args.out,
                           python=args.python, argv=["labkit", *sys.argv[1:]],
                           memory_cap_mb=args.memory_cap, time_cap_s=args.time_cap)
    worst = 0
    for variant, res in results.items():
        note = " (stopped by its cap, as designed)" if res.reason.endswith("-cap") else ""
        say(f"== {args.scenario} / {variant}: {res.reason}{note}, exit code {res.returncode}")
        for line in run_summary_lines(load(res.path))[1:]:
            say(line)
        worst = worst or (0 if res.returncode == 0 or res.reason.endswith("-cap") else 1)
    return worst


def cmd_signatures(args: argparse.Namespace, command: list[str]) -> int:
    """Run scenarios and print the signature that tells their variants apart."""
    import tempfile

    from labkit.report.text import signature_lines
    from labkit.runner import measure, recorded
    from labkit.scenarios import NAMES, get_spec

    names = args.scenarios or list(NAMES)
    for n in names:
        get_spec(n)
    failed = []
    with tempfile.TemporaryDirectory(prefix="labkit-signatures-") as tmp:
        root = args.out or Path(tmp)
        for name in names:
            sig = (recorded(name, args.from_dir) if args.from_dir else
                   measure(name, quick=args.quick, out=root, python=args.python))
            for line in signature_lines(sig):
                say(line)
            if not sig.ok:
                failed.append(name)
    say(f"signatures shown: {len(names) - len(failed)}/{len(names)}"
          + (f"; NOT shown: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


def _params(pairs: list[list[str]] | None) -> dict[str, object]:
    import ast

    out: dict[str, object] = {}
    for key, raw in pairs or []:
        try:
            out[key] = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            out[key] = raw
    return out


def cmd_report(args: argparse.Namespace, command: list[str]) -> int:
    """Execute notebooks headless and write offline HTML reports plus an index."""
    from labkit.report.html import render_all

    if not args.notebooks and not args.all:
        raise UsageError("name notebooks to render, or --all")
    render_all(args.out, None if args.all else args.notebooks, _params(args.param),
               force=args.force)
    say(f"index: {args.out / 'index.html'}")
    return 0


def cmd_postmortem(args: argparse.Namespace, command: list[str]) -> int:
    """Name the code behind an incident: the verdict and ranked suspects on the terminal,
    optionally the offline HTML report and the findings as JSON."""
    import json
    import re

    from labkit.attribution import attribution
    from labkit.findings import findings
    from labkit.outputs import check_file_output, write_text_atomic
    from labkit.postmortem import load_evidence
    from labkit.report.html import render, resolve

    given = {k: getattr(args, k) for k in ("run", "memray", "pyspy", "dump", "gc", "proc")}
    outs = {k: check_file_output(p, force=args.force, inputs=given.values(), flag=f"--{k}")
            for k, p in (("html", args.html), ("json", args.json)) if p is not None}
    if len(outs) == 2 and outs["html"] == outs["json"]:
        raise UsageError("--html and --json name the same file; give two")
    try:
        how = attribution(args.focus, args.ignore)
    except re.error as exc:
        raise UsageError(f"--focus/--ignore is not a regular expression: {exc}") from None
    ev = load_evidence(**given)  # every input checked before any report is built
    found = findings(ev, how)
    for line in found.lines(args.top):
        say(line)
    if "json" in outs:
        write_text_atomic(outs["json"], json.dumps(found.to_json(), indent=1) + "\n")
        say(f"wrote {outs['json']}")
    if "html" in outs:
        params = {k: str(Path(v).resolve()) for k, v in given.items() if v is not None}
        params.update(focus=args.focus, ignore=args.ignore)
        render(resolve("90-postmortem"), outs["html"], params, notebook_copy=False)
        say(f"wrote {outs['html']}")
    return 0


def cmd_notebooks(args: argparse.Namespace, command: list[str]) -> int:
    """Copy the lab's notebook sources into a folder a learner owns."""
    from labkit.report.html import copy_notebooks

    for path in copy_notebooks(args.dir, force=args.force):
        say(f"wrote {path}")
    return 0


def cmd_summary(args: argparse.Namespace, command: list[str]) -> int:
    """Print what a run holds and the summary of each capture in it."""
    from labkit.report.text import summary_lines

    for line in summary_lines(args.run):
        say(line)
    return 0


def cmd_doctor(args: argparse.Namespace, command: list[str]) -> int:
    """Print versions and the ptrace check; 0 when all is well, 1 otherwise."""
    from labkit.doctor import run_doctor

    checks = run_doctor()
    width = max(len(c.name) for c in checks)
    for c in checks:
        say(f"{'ok ' if c.ok else 'NO '} {c.name:<{width}}  {c.detail}")
    bad = [c for c in checks if not c.ok]
    say("all is well" if not bad else f"{len(bad)} problem(s): see the lines marked NO")
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
    p.add_argument("--rate", type=RATE_HZ, default=100, metavar="HZ",
                   help="py-spy sampling rate (1 to 1000; default 100)")
    p.set_defaults(handler=cmd_capture, needs_command=True)

    p = sub.add_parser("attach", help="capture a running process: py-spy record and dump, "
                       "process samples (all three unless some are named)")
    p.add_argument("pid", type=PID)
    p.add_argument("--pyspy", type=SECONDS, metavar="SECONDS", help="py-spy record this long")
    p.add_argument("--dump", action="store_true", help="py-spy dump of every thread's stack")
    p.add_argument("--proc", type=SECONDS, metavar="SECONDS",
                   help="sample the process this long")
    p.add_argument("--rate", type=RATE_HZ, default=100, metavar="HZ",
                   help="py-spy sampling rate (1 to 1000; default 100)")
    p.add_argument("--out", type=Path, help="run directory to create")
    p.set_defaults(handler=cmd_attach, needs_command=False)

    p = sub.add_parser("compare", help="run B against run A: what grew, by site and function")
    p.add_argument("a", type=Path, help="the baseline run")
    p.add_argument("b", type=Path, help="the run to compare with it")
    p.add_argument("--top", type=TOP, default=10, help="rows per table (default 10)")
    p.set_defaults(handler=cmd_compare, needs_command=False)

    p = sub.add_parser("list", help="scenarios, their variants or settings, what each shows")
    p.set_defaults(handler=cmd_list, needs_command=False)

    p = sub.add_parser("run", help="run a scenario's variants under capture")
    p.add_argument("scenario")
    p.add_argument("--variant", help="leaky, fixed or all (default all)")
    p.add_argument("--setting", help="for gc-tuning: one setting (default all)")
    p.add_argument("--capture", help="comma-separated: gc,memray,pyspy,proc "
                   "(default: the scenario's own choice)")
    p.add_argument("--param", action="append", default=[], metavar="K=V",
                   help="override a parameter (repeatable)")
    p.add_argument("--quick", action="store_true", help="the preset that finishes in seconds")
    p.add_argument("--out", type=Path, help="directory for the runs (one per variant)")
    p.add_argument("--python", help="interpreter to run the scenario with (default: this one)")
    p.add_argument("--memory-cap", type=MEMORY_MIB, metavar="MIB",
                   help="stop a variant whose RSS passes this (default: the scenario's)")
    p.add_argument("--time-cap", type=SECONDS, metavar="S",
                   help="stop a variant that runs longer (default: the scenario's)")
    p.set_defaults(handler=cmd_run, needs_command=False)

    p = sub.add_parser("signatures", help="run scenarios and print what tells leaky from "
                       "fixed; exit 1 if a signature is not shown")
    p.add_argument("scenarios", nargs="*", metavar="SCENARIO")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", type=Path, help="keep the runs here (default: a temporary dir)")
    p.add_argument("--python", help="interpreter to run the scenarios with")
    p.add_argument("--from", dest="from_dir", type=Path, metavar="DIR",
                   help="measure recorded runs DIR/<scenario>/<variant> instead (e.g. datasets)")
    p.set_defaults(handler=cmd_signatures, needs_command=False)

    p = sub.add_parser("report", help="execute notebooks and write offline HTML reports")
    p.add_argument("notebooks", nargs="*", metavar="NOTEBOOK",
                   help="names (10-pool-misuse, pool-misuse) or paths")
    p.add_argument("--all", action="store_true", help="every notebook in notebooks/")
    p.add_argument("--out", type=Path, default=Path("reports"),
                   help="default: reports/ (labkit's own earlier reports there are replaced)")
    p.add_argument("--force", action="store_true",
                   help="also replace files there that labkit did not write")
    p.add_argument("-p", "--param", nargs=2, action="append", metavar=("KEY", "VALUE"),
                   help="set a notebook parameter (a Python literal, else a string)")
    p.set_defaults(handler=cmd_report, needs_command=False)

    p = sub.add_parser("postmortem", help="name the code behind an incident from a run or "
                       "loose captures (any subset): verdict, suspects, --html, --json")
    p.add_argument("run", nargs="?", type=Path,
                   help="a labkit run directory (capture, attach or scenario run)")
    p.add_argument("--memray", type=Path, help="a memray capture file")
    p.add_argument("--pyspy", type=Path, help="a py-spy speedscope profile")
    p.add_argument("--dump", type=Path, help="a py-spy dump (--json)")
    p.add_argument("--gc", type=Path, help="labkit's gc_events.bin, or a run directory")
    p.add_argument("--proc", type=Path, help="labkit's proc.csv")
    p.add_argument("--html", "--out", dest="html", type=Path,
                   help="also write the offline HTML report here")
    p.add_argument("--json", type=Path, help="also write the findings as JSON here")
    p.add_argument("--force", action="store_true", help="replace --html/--json if they exist")
    p.add_argument("--focus", metavar="REGEX",
                   help="only frames whose file:function matches count as your code")
    p.add_argument("--ignore", metavar="REGEX",
                   help="frames whose file:function matches are never your code")
    p.add_argument("--top", type=TOP, default=10, help="suspects to print (default 10)")
    p.set_defaults(handler=cmd_postmortem, needs_command=False)

    p = sub.add_parser("notebooks", help="copy the lab's notebooks into a folder, for a learner")
    p.add_argument("dir", type=Path, help="the folder to copy them into (created if needed)")
    p.add_argument("--force", action="store_true", help="replace notebooks already there")
    p.set_defaults(handler=cmd_notebooks, needs_command=False)

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
        say(f"labkit: {exc}".replace("\n", "\\n"), sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        say("labkit: interrupted", sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (`labkit ... | head`): stop quietly, as a C tool would
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 128 + signal.SIGPIPE
