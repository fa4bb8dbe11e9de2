"""The ``labkit`` argument parser: every verb, its options and their checked types."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from labkit.cli import verbs
from labkit.export import DEFAULT_FORMAT, MEMRAY_PASSES
from labkit.options import (
    INTERVAL,
    LABEL_HELP,
    LABEL_KEY_RULE,
    MEMORY_MIB,
    PID,
    PORT,
    RATE_HZ,
    SECONDS,
    TOP,
    integer,
    label,
    number,
    param,
)

LEARNERS = integer(1, 200)
CPUS = number(0.01, 1024, unit="CPUs")
TASKS = integer(16, 1 << 22)


def _add_capture_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, help="run directory to create (default: runs/NAME-TIME)")
    p.add_argument("--interval", type=INTERVAL, default=0.02, metavar="S",
                   help="heap sampling interval in seconds (0.01 to 60; default 0.02)")
    p.add_argument("--tracemalloc", action="store_true",
                   help="also sample tracemalloc's traced memory (slows the program 2-3x)")
    p.add_argument("--proc", action="store_true",
                   help="sample RSS, threads, fds and CPU from outside")
    p.add_argument("--label", type=label, action="append", metavar="K=V", help=LABEL_HELP)
    p.add_argument("--time-cap", type=SECONDS, metavar="S",
                   help="stop the program's whole process tree after this long (default: none)")
    p.add_argument("--memory-cap", type=MEMORY_MIB, metavar="MIB",
                   help="stop the program's whole process tree when its RSS passes this "
                        "(default: none)")


class _OnlyVerb:
    """The subparsers action, for :func:`build_parser` with a verb: only that verb's parser
    is made, every other verb's calls go to :data:`_SKIPPED`; ``names`` are all of them."""

    def __init__(self, sub: Any, verb: str) -> None:
        self.sub, self.verb, self.names = sub, verb, []

    def add_parser(self, name: str, **kw: Any) -> Any:
        self.names.append(name)
        return self.sub.add_parser(name, **kw) if name == self.verb else _SKIPPED


class _Skipped:
    """A verb's parser not made: it takes every call (``add_argument``, ``set_defaults``)
    and does nothing."""

    def __getattr__(self, name: str) -> Any:
        return self._nothing

    def _nothing(self, *args: Any, **kw: Any) -> _Skipped:
        return self


_SKIPPED = _Skipped()


def build_parser(verb: str | None = None) -> argparse.ArgumentParser:
    """The argument parser for every verb; with ``verb``, one of them, only that verb's
    options are made (all a command line that starts with it needs: argparse makes a
    parser in about 0.5 ms, looking up its messages' translations, and a start of the
    ``labkit`` command is on every export's critical path). Any other ``verb`` gets them
    all."""
    parser = argparse.ArgumentParser(
        prog="labkit", description="A profiling and memory-forensics lab for Python: "
        "incidents, captures, postmortems.")
    sub: Any = parser.add_subparsers(dest="verb", metavar="VERB")
    if verb is not None:
        sub = _OnlyVerb(sub, verb)

    p = sub.add_parser("gctrace", help="run a Python program with the GC tracer",
                       usage="labkit gctrace [options] -- python PROG [ARGS] | -m MODULE [ARGS]")
    _add_capture_flags(p)
    p.add_argument("--quiet", action="store_true", help="print the summary only")
    p.set_defaults(handler=verbs.cmd_gctrace, needs_command=True)

    p = sub.add_parser("capture", help="run a program under memray, py-spy, the GC tracer and "
                       "the process sampler (all four unless some are named)",
                       usage="labkit capture [options] -- python PROG [ARGS] | -m MODULE [ARGS]")
    _add_capture_flags(p)
    p.add_argument("--gc", action="store_true", help="the GC tracer")
    p.add_argument("--memray", action="store_true", help="memray (allocations, peak, RSS)")
    p.add_argument("--native", action="store_true", help="memray: native stacks too")
    p.add_argument("--trace-python-allocators", action="store_true",
                   help="memray: every pymalloc allocation (needed for small-object leaks)")
    p.add_argument("--aggregate", action="store_true",
                   help="memray: the aggregated format (the high-water mark and leaks per "
                        "stack only; small, for long runs; no growth history or churn)")
    p.add_argument("--pyspy", action="store_true", help="py-spy CPU stacks from outside")
    p.add_argument("--rate", type=RATE_HZ, default=100, metavar="HZ",
                   help="py-spy sampling rate (1 to 1000; default 100)")
    p.add_argument("--heap-snapshot", nargs="?", const="exit", metavar="WHEN",
                   choices=("exit", "peak", "signal", "cap"),
                   help="also snapshot the heap's object graph (who keeps memory alive): at "
                        "exit (the default), at the RSS peak, on SIGUSR2, or at the memory "
                        "cap before the kill; pauses the program about 2 s per million "
                        "objects")
    p.set_defaults(handler=verbs.cmd_capture, needs_command=True)

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
    p.add_argument("--label", type=label, action="append", metavar="K=V", help=LABEL_HELP)
    p.set_defaults(handler=verbs.cmd_attach, needs_command=False)

    p = sub.add_parser("compare", help="run B against run A: what grew, by site and function")
    p.add_argument("a", type=Path, help="the baseline run")
    p.add_argument("b", type=Path, help="the run to compare with it")
    p.add_argument("--top", type=TOP, default=10, help="rows per table (default 10)")
    p.set_defaults(handler=verbs.cmd_compare, needs_command=False)

    p = sub.add_parser("list", help="scenarios, their variants or settings, what each shows")
    p.set_defaults(handler=verbs.cmd_list, needs_command=False)

    p = sub.add_parser("run", help="run a scenario's variants under capture")
    p.add_argument("scenario")
    p.add_argument("--variant", help="leaky, fixed or all (default all)")
    p.add_argument("--setting", help="for gc-tuning: one setting (default all)")
    p.add_argument("--capture", help="comma-separated: gc,memray,pyspy,proc "
                   "(default: the scenario's own choice)")
    p.add_argument("-p", "--param", type=param, action="append", default=[], metavar="K=V",
                   help="override a parameter (repeatable)")
    p.add_argument("--quick", action="store_true", help="the preset that finishes in seconds")
    p.add_argument("--out", type=Path, help="directory for the runs (one per variant)")
    p.add_argument("--python", help="interpreter to run the scenario with (default: this one); "
                   "labkit lends it labkit and memray, nothing is installed there")
    p.add_argument("--memory-cap", type=MEMORY_MIB, metavar="MIB",
                   help="stop a variant whose RSS passes this (default: the scenario's)")
    p.add_argument("--time-cap", type=SECONDS, metavar="S",
                   help="stop a variant that runs longer (default: the scenario's)")
    p.add_argument("--label", type=label, action="append", metavar="K=V", help=LABEL_HELP)
    p.set_defaults(handler=verbs.cmd_run, needs_command=False)

    p = sub.add_parser("signatures", help="run scenarios and print what tells leaky from "
                       "fixed; exit 1 if a signature is not shown")
    p.add_argument("scenarios", nargs="*", metavar="SCENARIO")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", type=Path, help="keep the runs here (default: a temporary dir)")
    p.add_argument("--python", help="interpreter to run the scenarios with")
    p.add_argument("--from", dest="from_dir", type=Path, metavar="DIR",
                   help="measure recorded runs DIR/<scenario>/<variant> instead (e.g. datasets)")
    p.set_defaults(handler=verbs.cmd_signatures, needs_command=False)

    p = sub.add_parser("report", help="execute notebooks and write offline HTML reports")
    p.add_argument("notebooks", nargs="*", metavar="NOTEBOOK",
                   help="names (10-pool-misuse, pool-misuse) or paths")
    p.add_argument("--all", action="store_true", help="every notebook in notebooks/")
    p.add_argument("--out", type=Path, default=Path("reports"),
                   help="default: reports/ (labkit's own earlier reports there are replaced)")
    p.add_argument("--force", action="store_true",
                   help="also replace files there that labkit did not write")
    p.add_argument("-p", "--param", type=param, action="append", metavar="K=V",
                   help="set a notebook parameter, VALUE a Python literal, else a string "
                   "(repeatable)")
    p.add_argument("--reader", action="store_true",
                   help="a reader's rendering: no code cells, warnings or temporary paths")
    p.set_defaults(handler=verbs.cmd_report, needs_command=False)

    p = sub.add_parser("postmortem", help="name the code behind an incident from a run or "
                       "loose captures (any subset): verdict, suspects, --html, --json")
    p.add_argument("run", nargs="?", type=Path,
                   help="a labkit run directory (capture, attach or scenario run)")
    p.add_argument("--memray", type=Path, help="a memray capture file")
    p.add_argument("--pyspy", type=Path, help="a py-spy speedscope profile")
    p.add_argument("--dump", type=Path, help="a py-spy dump (--json)")
    p.add_argument("--gc", type=Path, help="labkit's gc_events.bin, or a run directory")
    p.add_argument("--proc", type=Path, help="labkit's proc.csv")
    p.add_argument("--heap-snapshot", type=Path, metavar="FILE",
                   help="a heap snapshot (labkit's heapsnap.bin): what keeps memory alive")
    p.add_argument("--html", "--out", dest="html", type=Path,
                   help="also write the offline HTML report here")
    p.add_argument("--json", type=Path, help="also write the findings as JSON here")
    p.add_argument("--force", action="store_true", help="replace --html/--json if they exist")
    p.add_argument("--focus", metavar="REGEX",
                   help="only frames whose file:function matches count as your code")
    p.add_argument("--ignore", metavar="REGEX",
                   help="frames whose file:function matches are never your code")
    p.add_argument("--top", type=TOP, default=10, help="suspects to print (default 10)")
    p.set_defaults(handler=verbs.cmd_postmortem, needs_command=False)

    p = sub.add_parser("notebooks", help="copy the lab's notebooks into a folder, for a learner")
    p.add_argument("dir", type=Path, help="the folder to copy them into (created if needed)")
    p.add_argument("--force", action="store_true", help="replace notebooks already there")
    p.set_defaults(handler=verbs.cmd_notebooks, needs_command=False)

    p = sub.add_parser("export", help="a run as pprof (go tool pprof, Pyroscope) or Parquet "
                       "(DuckDB, Spark)")
    p.add_argument("run", type=Path, help="a run directory")
    p.add_argument("--to", choices=list(MEMRAY_PASSES), default=DEFAULT_FORMAT,
                   help="pprof: memory.pb.gz (inuse at the peak) and cpu.pb.gz; parquet: "
                        "every frame, Hive-partitioned by frame and run")
    p.add_argument("--out", type=Path,
                   help="folder to write (default: RUN.pprof or RUN.parquet beside it)")
    p.add_argument("--label", type=label, action="append", metavar="K=V",
                   help="parquet: a label for every row, over the run's own (repeatable); "
                        f"KEY is {LABEL_KEY_RULE}")
    p.add_argument("--force", action="store_true", help="replace earlier exports there")
    p.set_defaults(handler=verbs.cmd_export, needs_command=False)

    p = sub.add_parser("fleet", help="many runs at once (DuckDB): sites that grow with load, "
                       "outlier nodes, the top suspect on each")
    p.add_argument("paths", nargs="+", type=Path, metavar="RUN_OR_DIR",
                   help="run directories, folders of runs, or Parquet exports")
    p.add_argument("--by", metavar="LABEL",
                   help="the label that measures load (default: each run's duration); a "
                        f"label key: {LABEL_KEY_RULE}")
    p.add_argument("--label", type=label, action="append", metavar="K=V",
                   help="a label for every run exported here (repeatable); KEY is "
                        f"{LABEL_KEY_RULE}")
    p.add_argument("--store", type=Path, help="where runs are exported (default: "
                   "$XDG_CACHE_HOME/labkit/fleet)")
    p.add_argument("--json", type=Path, help="also write the answers as JSON here")
    p.add_argument("--force", action="store_true", help="replace --json if it exists")
    p.set_defaults(handler=verbs.cmd_fleet, needs_command=False)

    p = sub.add_parser("class", help="the trainer's view of the room: every learner's "
                       "predictions, signatures and checks from their homes")
    p.add_argument("dir", type=Path, metavar="DIR", help="a folder of learners' homes "
                   "(DIR/<learner>/.labkit/records/) or of records folders (DIR/<learner>/)")
    p.add_argument("--scenario", action="append", metavar="NAME",
                   help="list this scenario even if nobody ran it (repeatable)")
    p.add_argument("--html", type=Path, help="also write the room as one offline HTML page")
    p.add_argument("--json", type=Path, help="also write the room's tables as JSON")
    p.add_argument("--force", action="store_true", help="replace --html/--json if they exist")
    p.set_defaults(handler=verbs.cmd_class, needs_command=False)

    p = sub.add_parser("lab", help="JupyterLab on the lab's notebooks (127.0.0.1, token, "
                       "works as root)")
    p.add_argument("dir", type=Path, nargs="?",
                   help="the notebooks' folder (default: the checkout's notebooks/, or "
                        "./labkit-notebooks copied from the package)")
    p.add_argument("--port", type=PORT, default=8888,
                   help="1 to 65535 (default 8888); a port in use is an error, never moved")
    p.add_argument("--no-browser", action="store_true", help="do not open a browser")
    p.set_defaults(handler=verbs.cmd_lab, needs_command=False)

    p = sub.add_parser("hub", help="JupyterHub for a class on this machine: a Unix user, "
                       "home and capped server per learner, one shared password (root)")
    p.add_argument("learners", type=LEARNERS, help="how many learners (1 to 200)")
    p.add_argument("--port", type=PORT, default=8000, help="the hub's port (default 8000)")
    p.add_argument("--ip", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1; 0.0.0.0 for a room)")
    p.add_argument("--password", help="the room's shared password (default: "
                   "$LABKIT_HUB_PASSWORD, else a new one, printed)")
    p.add_argument("--memory-cap", type=MEMORY_MIB, default=2048, metavar="MIB",
                   help="memory per learner (default 2048)")
    p.add_argument("--cpus", type=CPUS, default=1.0, help="CPUs per learner (default 1)")
    p.add_argument("--pids", type=TASKS, default=2048,
                   help="processes and threads per learner (default 2048)")
    p.add_argument("--no-caps", action="store_true",
                   help="no cgroups: learners share the machine freely (for comparison)")
    p.add_argument("--idle-timeout", type=SECONDS, default=3600, metavar="S",
                   help="stop a learner's server idle this long (default 3600)")
    p.add_argument("--state", type=Path, metavar="DIR",
                   help="keep the hub's state here (default: a temporary folder, removed)")
    p.add_argument("--proxy", type=Path, metavar="PATH",
                   help="configurable-http-proxy (default: scripts/install-hub-proxy's)")
    p.set_defaults(handler=verbs.cmd_hub, needs_command=False)

    p = sub.add_parser("summary", help="check a run directory (or one capture file) and "
                       "summarise it")
    p.add_argument("run", type=Path, help="a run directory, or a memray/speedscope/dump file")
    p.set_defaults(handler=verbs.cmd_summary, needs_command=False)

    p = sub.add_parser("heap", help="what keeps memory alive, from a heap snapshot: the "
                       "largest retainers with their root paths, and totals by type")
    p.add_argument("run", type=Path, help="a run captured with --heap-snapshot, or its "
                   "heapsnap.bin")
    p.add_argument("--diff", type=Path, metavar="RUN",
                   help="a later snapshot: what grew, by type and by retainer")
    p.add_argument("--top", type=TOP, default=10, help="rows per table (default 10)")
    p.set_defaults(handler=verbs.cmd_heap, needs_command=False)

    p = sub.add_parser("doctor", help="versions, and whether py-spy can attach here; with "
                       "--python, which backends will work for that interpreter")
    p.add_argument("--python", metavar="PATH",
                   help="an interpreter to check (a venv's python): which capture backends "
                        "will work for it, and why not")
    p.set_defaults(handler=verbs.cmd_doctor, needs_command=False)
    if isinstance(sub, _OnlyVerb) and verb not in sub.names:
        return build_parser()
    return parser
