"""The verbs of the ``labkit`` command: each a thin shell over functions a notebook calls.

Each handler takes the parsed arguments and the program after ``--`` and returns the exit
code; errors a user can cause are raised as :class:`LabkitError` and printed by ``main``.
"""

from __future__ import annotations

import argparse
import gc
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from labkit.capture import MEMRAY_FILE
from labkit.cli.output import say
from labkit.errors import InputError, UsageError
from labkit.export import MEMRAY_PASSES


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


def _caps(args: argparse.Namespace) -> dict[str, Any]:
    """``--time-cap`` and ``--memory-cap`` as :class:`CaptureOptions` fields."""
    mib = args.memory_cap
    return {"time_cap_s": args.time_cap, "memory_cap_bytes": mib * 1024 * 1024 if mib else None}


def cmd_gctrace(args: argparse.Namespace, command: list[str]) -> int:
    """Run a program with the GC tracer; print a line per collection and a summary."""
    from labkit.capture.session import CaptureOptions
    from labkit.report.text import gc_summary_lines

    opts = CaptureOptions(gc=True, proc=args.proc, quiet=args.quiet,
                          interval_s=args.interval, tracemalloc=args.tracemalloc,
                          labels=dict(args.label or []), **_caps(args))
    return _run_and_summarise(command, args.out, opts, "gctrace", gc_summary_lines)


def cmd_capture(args: argparse.Namespace, command: list[str]) -> int:
    """Run a program under any combination of backends (all four when none is named)."""
    from labkit.capture.session import CaptureOptions
    from labkit.report.text import run_summary_lines

    chosen = {k: getattr(args, k) for k in ("gc", "proc", "memray", "pyspy")}
    if not any(chosen.values()):
        chosen = dict.fromkeys(chosen, True)
    if args.aggregate and not chosen["memray"]:
        raise UsageError("--aggregate is memray's format; add --memray (or name no backend)")
    opts = CaptureOptions(**chosen, native=args.native,
                          trace_python_allocators=args.trace_python_allocators,
                          aggregate=args.aggregate,
                          rate_hz=args.rate, interval_s=args.interval,
                          tracemalloc=args.tracemalloc, quiet=True,
                          heap_snapshot=args.heap_snapshot,
                          labels=dict(args.label or []), **_caps(args))
    return _run_and_summarise(command, args.out, opts, "capture", run_summary_lines)


def cmd_attach(args: argparse.Namespace, command: list[str]) -> int:
    """Capture a running process by pid."""
    from labkit.capture.attach import attach
    from labkit.report.text import run_summary_lines

    if args.pyspy is None and not args.dump and args.proc is None:
        args.pyspy, args.dump, args.proc = 5.0, True, 5.0
    path = attach(args.pid, pyspy_s=args.pyspy, dump=args.dump, proc_s=args.proc,
                  rate_hz=args.rate, out=args.out, argv=["labkit", *sys.argv[1:]],
                  labels=dict(args.label or []))
    from labkit.frames import load

    for line in run_summary_lines(load(path)):
        say(line)
    return 0


def cmd_compare(args: argparse.Namespace, command: list[str]) -> int:
    """Print B against A: summary deltas, then sites and functions by growth."""
    from labkit.analysis.compare import compare
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
    from labkit.runner import parse_captures, run_scenario
    from labkit.scenarios import get_spec

    spec = get_spec(args.scenario)
    chosen = args.setting or args.variant
    variants = [chosen] if chosen and chosen != "all" else None
    if args.setting and not spec.settings:
        raise UsageError(f"{args.scenario} has variants, not settings; use --variant")
    if args.out is not None:  # every variant's run checked before the first one runs
        from labkit.outputs import check_run_output

        for v in variants or spec.variants:
            check_run_output(args.out / v)
    results = run_scenario(args.scenario, variants=variants,
                           captures=parse_captures(args.capture, spec.captures),
                           params=dict(args.param), quick=args.quick, out=args.out,
                           python=args.python, argv=["labkit", *sys.argv[1:]],
                           memory_cap_mb=args.memory_cap, time_cap_s=args.time_cap,
                           labels=dict(args.label or []))
    worst = 0
    for variant, res in results.items():
        note = " (stopped by its cap, as designed)" if res.reason.endswith("-cap") else ""
        say(f"== {args.scenario} / {variant}: {res.reason}{note}, exit code {res.returncode}")
        for line in run_summary_lines(load(res.path))[1:]:
            say(line)
        worst = worst or (0 if res.returncode == 0 or res.reason.endswith("-cap") else 1)
        if res.signals_received:
            return 128 + res.signals_received[0]
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
    if args.out is not None:
        from labkit.outputs import check_dir_output

        check_dir_output(args.out)
    from labkit.progress import progress

    failed = []
    with tempfile.TemporaryDirectory(prefix="labkit-signatures-") as tmp, \
            progress(len(names), "signatures") as bar:
        root = args.out or Path(tmp)
        for name in names:
            bar.step(f"measuring {name}")
            sig = (recorded(name, args.from_dir) if args.from_dir else
                   measure(name, quick=args.quick, out=root, python=args.python))
            for line in signature_lines(sig):
                say(line)
            if not sig.ok:
                failed.append(name)
    say(f"signatures shown: {len(names) - len(failed)}/{len(names)}"
          + (f"; NOT shown: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


def _params(pairs: list[tuple[str, str]] | None) -> dict[str, object]:
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
               force=args.force, reader=args.reader)
    say(f"index: {args.out / 'index.html'}")
    return 0


def cmd_postmortem(args: argparse.Namespace, command: list[str]) -> int:
    """Name the code behind an incident: the verdict and ranked suspects on the terminal,
    optionally the offline HTML report and the findings as JSON."""
    import json
    import re

    from labkit.analysis.findings import findings
    from labkit.attribution import attribution
    from labkit.frames.evidence import load_evidence
    from labkit.outputs import check_file_output, write_text_atomic

    given = {k: getattr(args, k) for k in ("run", "memray", "pyspy", "dump", "gc", "proc",
                                           "heap_snapshot")}
    outs = {k: check_file_output(p, force=args.force, inputs=given.values(), flag=f"--{k}")
            for k, p in (("html", args.html), ("json", args.json)) if p is not None}
    if len(outs) == 2 and outs["html"] == outs["json"]:
        raise UsageError("--html and --json name the same file; give two")
    try:
        how = attribution(args.focus, args.ignore)
    except re.error as exc:
        raise UsageError(f"--focus/--ignore is not a regular expression: {exc}") from None
    from labkit.progress import progress

    with progress(3 if "html" in outs else 2, "postmortem") as bar:
        bar.step("loading the captures")
        ev = load_evidence(**given)  # every input checked before any report is built
        _settle(args)
        bar.step("weighing the evidence")
        found = findings(ev, how)
        if "html" in outs:
            bar.step("drawing the report")
            from labkit.report.postmortem_page import postmortem_page  # and matplotlib

            _settle(args)
            page = postmortem_page(found, ev)
    from labkit.report.text import findings_lines

    for line in findings_lines(found, args.top):
        say(line)
    if "json" in outs:
        write_text_atomic(outs["json"], json.dumps(found.to_json(), indent=1) + "\n")
        say(f"wrote {outs['json']}")
    if "html" in outs:
        write_text_atomic(outs["html"], page)
        say(f"wrote {outs['html']}")
    return 0


def cmd_notebooks(args: argparse.Namespace, command: list[str]) -> int:
    """Copy the lab's notebook sources into a folder a learner owns."""
    from labkit.report.html import copy_notebooks

    for path in copy_notebooks(args.dir, force=args.force):
        say(f"wrote {path}")
    return 0


def _settle(args: argparse.Namespace) -> None:
    """As the ``labkit`` command (``args.own_process``), put every object made so far (the
    verb's imports, what it loaded) out of the collector's reach (:func:`gc.freeze`): the
    full collections its next work triggers walk only what that work makes. The collector
    stays on (a report's charts make reference cycles)."""
    if args.own_process:
        gc.freeze()


def cmd_export(args: argparse.Namespace, command: list[str]) -> int:
    """Write a run in another tool's format: pprof profiles, or Parquet frames."""
    from labkit.frames.memray_start import start_first

    # memray's passes, the export's critical path, start before anything else is imported
    # (the run's machinery, pandas); the run uses them once its manifest lists that file.
    # As the labkit command they were started from the command line before it was parsed
    # (labkit.cli.command): used if they are the ones wanted, else stopped
    path, passes = Path(args.run) / MEMRAY_FILE, MEMRAY_PASSES[args.to]
    first = getattr(args, "memray_started", None)
    if first is None or (first.path, first.passes) != (path, passes):
        if first is not None:
            first.close()
        first = start_first(path, passes)
    try:
        run = _export_run(args, first)
    except BaseException:
        if first is not None:
            first.close()
        raise
    out = args.out or run.path.with_name(f"{run.path.name}.{args.to}")
    if args.to == "pprof":
        from labkit.export.pprof import export_pprof

        written = export_pprof(run, out, force=args.force)
    else:
        from labkit.export.parquet import export_parquet

        written = export_parquet(run, out, dict(args.label or []), force=args.force,
                                 own_process=args.own_process)
    for path in written:
        say(f"wrote {path}")
    return 0


def _export_run(args: argparse.Namespace, first: Any) -> Any:
    """The run ``cmd_export`` reads, its output folder checked first, with ``first`` (its
    memray capture, passes started) if its manifest lists that file."""
    from labkit.frames import load
    from labkit.outputs import check_dir_output

    if args.out is not None:
        check_dir_output(args.out)  # before the run is read; the export checks it again
    return load(args.run, background_stats=False, memray_first=first)


def cmd_fleet(args: argparse.Namespace, command: list[str]) -> int:
    """Query many runs together: growing sites, outlier nodes, top suspects."""
    from labkit.fleetdb import cache_root, fleet
    from labkit.outputs import check_dir_output, check_file_output, check_output, write_text_atomic

    # both outputs checked before any run is read or exported
    store = (check_dir_output(args.store, flag="--store") if args.store is not None else
             check_output(cache_root(), "dir", "XDG_CACHE_HOME", allow_symlinks=True))
    path = (check_file_output(args.json, force=args.force, inputs=args.paths, flag="--json")
            if args.json is not None else None)
    if path is not None and (path == store or store in path.parents):
        raise InputError(f"--json {path} is inside the store {store}; choose a --json "
                         "outside it")
    fl = fleet(args.paths, labels=dict(args.label or []), by=args.by, store=store)
    if path is not None:
        import json

        write_text_atomic(path, json.dumps(fl.summary(), indent=1, default=str) + "\n")
    from labkit.report.text import fleet_lines

    for line in fleet_lines(fl):
        say(line)
    return 0


def cmd_class(args: argparse.Namespace, command: list[str]) -> int:
    """The trainer's view of a room of learners' records (:mod:`labkit.analysis.room`)."""
    from labkit.outputs import check_file_output, write_text_atomic
    from labkit.scenarios import get_spec

    for name in args.scenario or []:
        get_spec(name)  # an unknown name is a one-line error
    outs = {flag: check_file_output(path, force=args.force, inputs=[args.dir], flag=flag)
            for flag, path in (("--html", args.html), ("--json", args.json)) if path}
    from labkit.analysis.room import room
    from labkit.report.room_page import room_lines

    rm = room(args.dir, scenarios=args.scenario or ())
    if "--json" in outs:
        import json

        write_text_atomic(outs["--json"], json.dumps(rm.summary(), indent=1) + "\n")
    if "--html" in outs:
        from labkit.report.room_page import room_page

        write_text_atomic(outs["--html"], room_page(rm, title=f"The room: {args.dir.name}"))
    for line in room_lines(rm):
        say(line)
    for line in rm.skipped:
        say(line, sys.stderr)
    return 0


def cmd_lab(args: argparse.Namespace, command: list[str]) -> int:
    """Start JupyterLab on the lab's notebooks (this process becomes JupyterLab)."""
    from labkit.lab import start_lab

    start_lab(args.dir, port=args.port, browser=not args.no_browser)
    return 0  # not reached: start_lab replaces the process


def cmd_hub(args: argparse.Namespace, command: list[str]) -> int:
    """Run JupyterHub for a room of learners until stopped (Ctrl-C)."""
    from labkit.hub.caps import CapRequest
    from labkit.hub.run import start_hub

    request = None if args.no_caps else CapRequest(
        memory_bytes=args.memory_cap * 2**20, cpus=args.cpus, pids=args.pids)
    return start_hub(args.learners, ip=args.ip, port=args.port, password=args.password,
                     request=request, idle_timeout_s=int(args.idle_timeout), state=args.state,
                     proxy=args.proxy, say=say)


def cmd_summary(args: argparse.Namespace, command: list[str]) -> int:
    """Print what a run holds and the summary of each capture in it."""
    from labkit.frames import load, load_file
    from labkit.report.text import file_summary_lines, run_summary_lines

    path = Path(args.run)
    if path.exists() and not path.is_dir():
        lines = file_summary_lines(path, *load_file(path))
    else:
        lines = run_summary_lines(load(path))
    for line in lines:
        say(line)
    return 0


def _snapshot_at(path: Path) -> Any:
    """The heap snapshot of a run directory (checked against its manifest) or a file."""
    from labkit import artifacts as A
    from labkit.errors import InputError
    from labkit.frames.heapsnap import load_heap_snapshot

    if path.is_dir():
        from labkit.frames import load

        run = load(path, background_stats=False)
        if not run.has(A.HEAP_SNAPSHOT):
            raise InputError(f"{path} holds no heap snapshot; capture it with labkit capture "
                             "--heap-snapshot")
        path = run.need(A.HEAP_SNAPSHOT)
    return load_heap_snapshot(path)


def cmd_heap(args: argparse.Namespace, command: list[str]) -> int:
    """The largest retainers of a heap snapshot and its totals by type, or what grew."""
    from labkit.analysis.heap import HeapGraph, diff
    from labkit.units import human_bytes

    graph = HeapGraph(_snapshot_at(args.run))
    st = graph.snap.stats
    say(f"heap snapshot ({st.get('when')}): {graph.snap.n:,} objects, pause "
        f"{st.get('pause_s', 0):.2f} s")
    if args.diff is not None:
        d = diff(graph, HeapGraph(_snapshot_at(args.diff)), args.top)
        say("grew, by type:")
        for r in d["by_type"].head(args.top).itertuples():
            say(f"  {r.bytes_delta:+,} bytes {r.count_delta:+,} objects  {r.type}")
        say("grew, by retainer:")
        for r in d["by_retainer"].itertuples():
            say(f"  {r.delta:+,} bytes retained  {r.path}")
        return 0
    say("largest retainers:")
    for r in graph.by_retainer(args.top).itertuples():
        say(f"  {human_bytes(r.retained):>10}  {r.path}")
    say("by type (retained by objects of the type):")
    for r in graph.by_type().head(args.top).itertuples():
        say(f"  {human_bytes(r.retained):>10} retained {human_bytes(r.bytes):>10} in "
            f"{r.count:>9,} objects  {r.type}")
    return 0


def cmd_doctor(args: argparse.Namespace, command: list[str]) -> int:
    """Print versions and the ptrace check; 0 when all is well, 1 otherwise."""
    from labkit.doctor import run_doctor

    checks = run_doctor(args.python)
    width = max(len(c.name) for c in checks)
    for c in checks:
        say(f"{'ok ' if c.ok else 'NO '} {c.name:<{width}}  {c.detail}")
    bad = [c for c in checks if not c.ok]
    say("all is well" if not bad else f"{len(bad)} problem(s): see the lines marked NO")
    return 0 if not bad else 1
