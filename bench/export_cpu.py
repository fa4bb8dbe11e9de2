"""Exports against `memray stats` on a run, in wall time and in CPU time.

CPU time (user + system of the whole process tree, from ``wait4``: labkit's workers
included) is what a machine shared with other work still measures fairly; wall time is
what a user waits. Alternates PAIRS rounds (ABC, CBA), each command a fresh process:
A ``memray stats --json``, B ``labkit export RUN --to parquet``, C ``labkit export RUN
--to pprof``, and prints the medians of the per-round ratios, with the load average.
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
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def timed(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds of the tree, and peak RSS (bytes, largest process)."""
    t = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    err = proc.stderr.read() if proc.stderr is not None else b""
    _, status, ru = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {argv[:5]}: {err.decode(errors='replace')[-400:]}")
    return time.perf_counter() - t, ru.ru_utime + ru.ru_stime, ru.ru_maxrss * 1024


def load() -> str:
    return "load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run")
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--before", help="another labkit checkout to compare with (PYTHONPATH)")
    args = ap.parse_args()
    py, run = sys.executable, args.run
    here = str(Path(__file__).resolve().parent.parent)
    envs = {k: {**os.environ, "PYTHONPATH": here} for k in "ABC"}
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
        got: dict[str, list[tuple[float, float, int]]] = {k: [] for k in sides}
        first = "AbBcC" if args.before else "ABC"
        for i in range(args.pairs):
            order = first if i % 2 == 0 else first[::-1]
            for k in order:
                got[k].append(timed(sides[k], envs[k]))
            print(f"round {i + 1} ({order}): " + ", ".join(
                f"{k} wall {got[k][-1][0]:.1f} s cpu {got[k][-1][1]:.1f} s" for k in first) +
                f"; {load()}", flush=True)
    med = statistics.median
    for k, what in (("B", "export parquet"), ("C", "export pprof")):
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
          f"{max(x[2] for x in got['A']) / 1e6:.0f} MB; {load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
