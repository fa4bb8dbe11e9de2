"""Exports against `memray stats` on a run, in wall time and in CPU time.

CPU time (user + system of the whole process tree, from ``wait4``: labkit's workers
included) is what a machine shared with other work still measures fairly; wall time is
what a user waits. Alternates PAIRS rounds (ABC, CBA), each command a fresh process:
A ``memray stats --json``, B ``labkit export RUN --to parquet``, C ``labkit export RUN
--to pprof``, and prints the medians of the per-round ratios, with the load average.
With ``--floors``, D and E are memray alone making the passes the pprof and the Parquet
export make (see FLOOR_PPROF, FLOOR_PARQUET): the floor labkit's own work adds to.
With ``--before DIR`` (another checkout of labkit, e.g. ``main``'s), each round also runs
both exports from DIR (``PYTHONPATH=DIR``; sides b and c, interleaved with B and C), and
prints the medians of the per-round ratios of this checkout against it, which the load
of a shared machine affects alike.

    .venv/bin/python bench/export_cpu.py RUN [--pairs 3] [--before /path/to/main]

RUN is a run directory with a ``memray.bin``, e.g. one made as ``bench/fleet.py`` makes
its own (``labkit capture --memray --trace-python-allocators --gc --proc``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

from timing import compiled, load_average, run_tree  # bench/timing.py (scripts run from bench/)

# memray alone making the passes each export makes, the way it makes them, nothing of labkit:
# pprof: memray stats' own pass in a second process, beside the reader's opening pass and
# its high-water-mark view; Parquet: the opening pass, then the temporal high-water-mark
# pass beside the (bounded) churn pass in a fork
FLOOR_PPROF = """
import subprocess, sys, memray
stats = subprocess.Popen([sys.executable, "-c", "import sys; from memray._memray import "
                          "compute_statistics; compute_statistics(sys.argv[1], "
                          "num_largest=2**31 - 1)", sys.argv[1]])
r = memray.FileReader(sys.argv[1])
sum(1 for _ in r.get_high_watermark_allocation_records(merge_threads=True))
sys.exit(stats.wait())
"""
FLOOR_PARQUET = """
import os, sys, memray
r = memray.FileReader(sys.argv[1])
pid = os.fork()
if pid == 0:
    n = min(r.metadata.total_allocations, 4_000_000)
    sum(1 for _ in r._aggregate_allocations(n, True, temporary_buffer_size=2))
    os._exit(0)
records, _ = r.get_temporal_high_water_mark_allocation_records(merge_threads=True)
sum(1 for _ in records)
sys.exit(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run")
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--before", help="another labkit checkout to compare with (PYTHONPATH)")
    ap.add_argument("--floors", action="store_true",
                    help="also time memray alone making each export's passes (D, E)")
    args = ap.parse_args()
    py, run = sys.executable, str(Path(args.run).resolve())
    here = str(Path(__file__).resolve().parent.parent)
    envs = {k: {**os.environ, "PYTHONPATH": here} for k in "ABC"}
    compiled(here, *filter(None, [args.before]))
    with tempfile.TemporaryDirectory(prefix="labkit-bench-export-") as tmp:
        sides = {"A": [py, "-m", "memray", "stats", "--json", "-f", "-o", f"{tmp}/stats.json",
                       f"{run}/memray.bin"],
                 "B": [py, "-m", "labkit", "export", run, "--to", "parquet", "--out",
                       f"{tmp}/pq", "--force"],
                 "C": [py, "-m", "labkit", "export", run, "--to", "pprof", "--out",
                       f"{tmp}/pp", "--force"]}
        if args.before:
            for k in "BC":
                sides[k.lower()] = [*sides[k][:-2], f"{tmp}/{k.lower()}", "--force"]
                envs[k.lower()] = {**os.environ, "PYTHONPATH": args.before}
        if args.floors:
            sides["D"] = [py, "-c", FLOOR_PPROF, f"{run}/memray.bin"]
            sides["E"] = [py, "-c", FLOOR_PARQUET, f"{run}/memray.bin"]
            envs["D"] = envs["E"] = envs["A"]
        got: dict[str, list[tuple[float, float, int]]] = {k: [] for k in sides}
        first = ("AbBcC" if args.before else "ABC") + ("DE" if args.floors else "")
        for i in range(args.pairs):
            order = first if i % 2 == 0 else first[::-1]
            for k in order:
                # in an empty folder: ``python -m`` puts the working folder before PYTHONPATH
                got[k].append(run_tree(sides[k], env=envs[k], cwd=tmp))
            print(f"round {i + 1} ({order}): " + ", ".join(
                f"{k} wall {got[k][-1][0]:.1f} s cpu {got[k][-1][1]:.1f} s" for k in first) +
                f"; {load_average()}", flush=True)
    med = statistics.median
    named = [("B", "export parquet"), ("C", "export pprof")]
    if args.floors:
        named += [("D", "memray alone, pprof's passes"), ("E", "memray alone, Parquet's")]
    for k, what in named:
        rw = med(x[0] / a[0] for x, a in zip(got[k], got["A"], strict=True))
        rc = med(x[1] / a[1] for x, a in zip(got[k], got["A"], strict=True))
        print(f"{what}: wall median {med(x[0] for x in got[k]):.1f} s ({rw:.2f}x memray "
              f"stats), cpu median {med(x[1] for x in got[k]):.1f} s ({rc:.2f}x), peak RSS "
              f"{max(x[2] for x in got[k]) / 1e6:.0f} MB")
    for k, what in (("b", "export parquet"), ("c", "export pprof")) if args.before else ():
        rw = med(x[0] / a[0] for x, a in zip(got[k], got["A"], strict=True))
        rc = med(x[1] / a[1] for x, a in zip(got[k], got["A"], strict=True))
        ab_w = med(x[0] / y[0] for x, y in zip(got[k.upper()], got[k], strict=True))
        ab_c = med(x[1] / y[1] for x, y in zip(got[k.upper()], got[k], strict=True))
        print(f"{what} from --before: wall median {med(x[0] for x in got[k]):.1f} s "
              f"({rw:.2f}x memray stats), cpu median {med(x[1] for x in got[k]):.1f} s "
              f"({rc:.2f}x); this checkout against it: wall {ab_w:.2f}x, cpu {ab_c:.2f}x")
    print(f"memray stats: wall median {med(x[0] for x in got['A']):.1f} s, cpu "
          f"{med(x[1] for x in got['A']):.1f} s, peak RSS "
          f"{max(x[2] for x in got['A']) / 1e6:.0f} MB; {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
