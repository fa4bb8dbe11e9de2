"""Exports against `memray stats` on a run, in wall time and in CPU time.

CPU time (user + system of the whole process tree, from ``wait4``: labkit's workers
included) is what a machine shared with other work still measures fairly; wall time is
what a user waits. Alternates PAIRS rounds (ABC, CBA), each command a fresh process:
A ``memray stats --json``, B ``labkit export RUN --to parquet``, C ``labkit export RUN
--to pprof``, and prints the medians of the per-round ratios, with the load average.

    .venv/bin/python bench/export_cpu.py RUN [--pairs 3]

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


def timed(argv: list[str]) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds of the tree, and peak RSS (bytes, largest process)."""
    t = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
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
    args = ap.parse_args()
    py, run = sys.executable, args.run
    with tempfile.TemporaryDirectory(prefix="labkit-bench-export-") as tmp:
        sides = {"A": [py, "-m", "memray", "stats", "--json", "-f", "-o", f"{tmp}/stats.json",
                       f"{run}/memray.bin"],
                 "B": [py, "-m", "labkit", "export", run, "--to", "parquet", "--out",
                       f"{tmp}/pq", "--force"],
                 "C": [py, "-m", "labkit", "export", run, "--to", "pprof", "--out",
                       f"{tmp}/pp", "--force"]}
        got: dict[str, list[tuple[float, float, int]]] = {k: [] for k in sides}
        for i in range(args.pairs):
            order = "ABC" if i % 2 == 0 else "CBA"
            for k in order:
                got[k].append(timed(sides[k]))
            print(f"round {i + 1} ({order}): " + ", ".join(
                f"{k} wall {got[k][-1][0]:.1f} s cpu {got[k][-1][1]:.1f} s" for k in "ABC") +
                f"; {load()}", flush=True)
    med = statistics.median
    for k, what in (("B", "export parquet"), ("C", "export pprof")):
        rw = med(x[0] / a[0] for x, a in zip(got[k], got["A"], strict=True))
        rc = med(x[1] / a[1] for x, a in zip(got[k], got["A"], strict=True))
        print(f"{what}: wall median {med(x[0] for x in got[k]):.1f} s ({rw:.2f}x memray "
              f"stats), cpu median {med(x[1] for x in got[k]):.1f} s ({rc:.2f}x), peak RSS "
              f"{max(x[2] for x in got[k]) / 1e6:.0f} MB")
    print(f"memray stats: wall median {med(x[0] for x in got['A']):.1f} s, cpu "
          f"{med(x[1] for x in got['A']):.1f} s, peak RSS "
          f"{max(x[2] for x in got['A']) / 1e6:.0f} MB; {load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
