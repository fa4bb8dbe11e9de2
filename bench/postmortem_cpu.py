"""A postmortem against memray's commands on one capture, in wall time, CPU time and peak RSS.

CPU time (user + system of the whole process tree, from ``wait4``: labkit's workers
included) is what a machine shared with other work still measures fairly. Alternates PAIRS
rounds (ABC, CBA), each command a fresh process tree run from a temporary folder: A
``memray flamegraph`` then ``memray stats --json``; B ``labkit postmortem --memray FILE
--json OUT`` from the checkout ``--before`` (its ``PYTHONPATH``), if given; C the same
from this checkout. Prints each round and the medians of the per-round ratios to A, with
the load average.

    .venv/bin/python bench/postmortem_cpu.py CAPTURE [--pairs 3] [--before /path/to/checkout]

CAPTURE is a memray file, e.g. one ``bench/postmortem.py --captures DIR`` keeps.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

from timing import compiled, load_average, run_tree  # bench/timing.py (scripts run from bench/)

HERE = Path(__file__).resolve().parent.parent


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("capture", type=Path)
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--before", type=Path, help="a labkit checkout to run as B")
    args = ap.parse_args()
    py, cap = sys.executable, str(args.capture.resolve())
    compiled(HERE, *filter(None, [args.before]))
    with tempfile.TemporaryDirectory(prefix="labkit-bench-pmcpu-") as tmp:
        def memray() -> tuple[float, float, int]:
            runs = [run_tree([py, "-m", "memray", "flamegraph", "-f", "-o", f"{tmp}/fg.html",
                              cap], cwd=tmp),
                    run_tree([py, "-m", "memray", "stats", "--json", "-f", "-o",
                              f"{tmp}/stats.json", cap], cwd=tmp)]
            return (sum(r[0] for r in runs), sum(r[1] for r in runs), max(r[2] for r in runs))

        def labkit(checkout: Path) -> tuple[float, float, int]:
            return run_tree([py, "-m", "labkit", "postmortem", "--memray", cap, "--json",
                             f"{tmp}/pm.json", "--force"], cwd=tmp,
                            env={**os.environ, "PYTHONPATH": str(checkout)})

        sides = {"A": memray, "C": lambda: labkit(HERE)}
        if args.before is not None:
            sides["B"] = lambda: labkit(args.before.resolve())
        keys = "".join(k for k in "ABC" if k in sides)
        got: dict[str, list[tuple[float, float, int]]] = {k: [] for k in keys}
        for i in range(args.pairs):
            order = keys if i % 2 == 0 else keys[::-1]
            for k in order:
                got[k].append(sides[k]())
            print(f"round {i + 1} ({order}): " + ", ".join(
                f"{k} wall {got[k][-1][0]:.1f} s cpu {got[k][-1][1]:.1f} s "
                f"peak RSS {got[k][-1][2] / 1e6:.0f} MB" for k in keys) + f"; {load_average()}",
                flush=True)
    med = statistics.median
    for k, what in (("A", "memray flamegraph + stats"), ("B", "labkit --before"),
                    ("C", "labkit (this checkout)")):
        if k in got:
            rw = med(x[0] / a[0] for x, a in zip(got[k], got["A"], strict=True))
            rc = med(x[1] / a[1] for x, a in zip(got[k], got["A"], strict=True))
            print(f"{what:<26} wall median {med(x[0] for x in got[k]):5.1f} s ({rw:.2f}x), "
                  f"cpu median {med(x[1] for x in got[k]):5.1f} s ({rc:.2f}x), peak RSS "
                  f"{max(x[2] for x in got[k]) / 1e6:.0f} MB")
    print(load_average())
    return 0


if __name__ == "__main__":
    sys.exit(main())
