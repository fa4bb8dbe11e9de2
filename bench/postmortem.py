"""A postmortem on a realistic memray capture against what memray's own commands cost.

Makes a capture of at least 10 million allocation records from many distinct call stacks,
with ``--trace-python-allocators`` (every small object is a record), then alternates PAIRS
times, each a fresh process tree:

  A  ``memray flamegraph`` then ``memray stats --json`` on the file: what a memray user
     runs to get the same two views (where memory went, and the totals);
  B  ``labkit postmortem --memray FILE --html OUT``: findings, charts and flamegraphs in
     one offline report (built from the findings the command computed);
  C  ``labkit postmortem --memray FILE --json OUT``: the verdict and suspects on the
     terminal and as JSON, the default use.

Prints the medians of the per-round wall-time ratios B/A and C/A and each side's peak
RSS (the largest process in its tree, from ``wait4``).

    .venv/bin/python bench/postmortem.py [--pairs 3] [--objects 5000000]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from timing import timed  # bench/timing.py (scripts run from bench/)

MAKE = """
import memray, sys

N_SITES = 300
src = []
for k in range(N_SITES):
    src.append(f"def site_{k}(n, depth):\\n"
               f"    if depth:\\n"
               f"        return site_{(k * 7 + 1) % N_SITES}(n, depth - 1)\\n"
               f"    keep = []\\n"
               f"    for i in range(n):\\n"
               f"        t = (i, str(i), [i] * {k % 5 + 1})\\n"
               f"        if i % 50 == 0:\\n"
               f"            keep.append(t)\\n"
               f"    return keep\\n")
import os, importlib
sys.path.insert(0, os.path.dirname(sys.argv[1]))
with open(os.path.join(os.path.dirname(sys.argv[1]), "app_sites.py"), "w") as fh:
    fh.write("N_SITES = %d\\n" % N_SITES + "\\n".join(src))  # real files: the user's code
app = importlib.import_module("app_sites")
held = []
objects = int(sys.argv[2])
per_call = max(1, objects // (N_SITES * 3 * 4))
with memray.Tracker(sys.argv[1], trace_python_allocators=True, follow_fork=False):
    for round_ in range(4):
        for k in range(N_SITES):
            held.append(getattr(app, f"site_{k}")(per_call, k % 4))
"""


def records(path: Path) -> int:
    """Allocation records in a capture (allocations and frees, as memray counts them)."""
    import memray

    return memray.FileReader(str(path)).metadata.total_allocations


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--objects", type=int, default=5_000_000)
    args = ap.parse_args()
    py = sys.executable
    with tempfile.TemporaryDirectory(prefix="labkit-bench-pm-") as tmp:
        cap = Path(tmp) / "big.bin"
        t = time.perf_counter()
        subprocess.run([py, "-c", MAKE, str(cap), str(args.objects)], check=True)
        n = records(cap)
        print(f"capture: {n:,} allocation records, {cap.stat().st_size / 1e6:.0f} MB, made "
              f"in {time.perf_counter() - t:.0f} s", flush=True)
        memray_a = [[py, "-m", "memray", "flamegraph", "-f", "-o", f"{tmp}/fg.html", str(cap)],
                    [py, "-m", "memray", "stats", "--json", "-f", "-o", f"{tmp}/stats.json",
                     str(cap)]]
        sides = {"B": [py, "-m", "labkit", "postmortem", "--memray", str(cap), "--html",
                       f"{tmp}/pm.html", "--force"],
                 "C": [py, "-m", "labkit", "postmortem", "--memray", str(cap), "--json",
                       f"{tmp}/pm.json", "--force"]}
        got: dict[str, list[tuple[float, int]]] = {"A": [], "B": [], "C": []}
        for i in range(args.pairs):
            order = ("A", "B", "C") if i % 2 == 0 else ("C", "B", "A")
            for side in order:
                if side == "A":
                    runs = [timed(c) for c in memray_a]
                    got["A"].append((sum(w for w, _ in runs), max(r for _, r in runs)))
                else:
                    got[side].append(timed(sides[side]))
            a, b, c = (got[k][-1][0] for k in "ABC")
            print(f"round {i + 1} ({'/'.join(order)}): memray flamegraph+stats {a:.1f} s, "
                  f"labkit --html {b:.1f} s ({b / a:.2f}x), labkit --json {c:.1f} s "
                  f"({c / a:.2f}x)", flush=True)
        med = statistics.median
        for k, what in (("A", "memray flamegraph + stats"), ("B", "labkit postmortem --html"),
                        ("C", "labkit postmortem --json")):
            ratio = med(w / a for (w, _), (a, _) in zip(got[k], got["A"], strict=True))
            print(f"{what:<28} median {med(w for w, _ in got[k]):5.1f} s, ratio {ratio:.2f}, "
                  f"peak RSS {max(r for _, r in got[k]) / 1e6:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
