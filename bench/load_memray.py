"""Loading a large memray capture: labkit's frames vs ``memray stats`` on the same file.

Makes a capture with at least 5 million allocation records (allocations plus frees, as
memray counts them in ``total_allocations``), then runs, alternating, PAIRS times each:

  A  ``memray stats --json`` on the file (a fresh process);
  B  a fresh process that loads every labkit frame but ``leaks``: ``load_memray(path)``
     (memory timeline, allocations at peak, summary with totals). The totals need the same
     C++ statistics pass ``memray stats`` makes; it runs in a second process from the
     start, so B uses up to two cores. The wall time is what a user waits for.
  C  a fresh process that loads the memory timeline and allocations at peak (peak and
     duration from the metadata, no totals): what a report needs to name suspects.

Prints the median wall-time ratios B/A and C/A and each one's peak RSS (the largest
process in its tree, from ``wait4``).

    .venv/bin/python bench/load_memray.py [--pairs 7] [--allocations 2600000]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from timing import timed  # bench/timing.py (scripts run from bench/)

MAKE = """
import memray, sys
def churn(n):
    keep = []
    for i in range(n):
        b = bytearray(600)         # above pymalloc's 512 bytes: a real malloc and free
        if i % 100 == 0:
            keep.append(b)
    return keep
with memray.Tracker(sys.argv[1], follow_fork=False):
    churn(int(sys.argv[2]))
"""

LABKIT_ALL = """
import sys
from labkit.frames.memray import load_memray
c = load_memray(sys.argv[1])
print(len(c.memory), len(c.allocations_at_peak), c.summary.allocations)
"""

LABKIT_PEAK = """
import sys
from labkit.frames.memray import MemrayCapture
c = MemrayCapture(sys.argv[1])
print(len(c.memory), len(c.allocations_at_peak), c.metadata.peak_memory)
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=7)
    ap.add_argument("--allocations", type=int, default=2_600_000)
    args = ap.parse_args()
    memray_cli = str(Path(sys.executable).with_name("memray"))
    with tempfile.TemporaryDirectory() as d:
        cap = Path(d) / "big.bin"
        subprocess.run([sys.executable, "-c", MAKE, str(cap), str(args.allocations)], check=True)
        import memray

        with memray.FileReader(str(cap)) as r:
            records = r.metadata.total_allocations
        from importlib.metadata import version

        print(f"capture: {records:,} allocation records ({cap.stat().st_size / 1e6:.1f} MB "
              f"on disk), python {sys.version.split()[0]}, memray {version('memray')}")
        commands = {
            "memray stats --json": [memray_cli, "stats", "--json", "-f", "-o",
                                    str(Path(d) / "s.json"), str(cap)],
            "labkit all frames": [sys.executable, "-c", LABKIT_ALL, str(cap)],
            "labkit timeline+peak": [sys.executable, "-c", LABKIT_PEAK, str(cap)],
        }
        names = list(commands)
        wall: dict[str, list[float]] = {n: [] for n in names}
        rss: dict[str, list[int]] = {n: [] for n in names}
        for i in range(args.pairs):
            for n in (names if i % 2 == 0 else names[::-1]):
                w, r = timed(commands[n])
                wall[n].append(w)
                rss[n].append(r)
        med = statistics.median
        base = wall[names[0]]
        print(f"{args.pairs} rounds, order alternating each round")
        for n in names:
            ratio = med(x / y for x, y in zip(wall[n], base, strict=True))
            print(f"  {n:<22} median {med(wall[n]):.2f} s  ratio {ratio:.3f}  "
                  f"peak RSS {max(rss[n]) / 1e6:.0f} MB")


if __name__ == "__main__":
    main()
