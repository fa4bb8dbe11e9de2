"""Exporting a run against `memray stats` on the same capture, and a fleet query over 100 runs.

1. Captures a run with labkit (``labkit capture --memray --trace-python-allocators --gc
   --proc``) of a program that makes about OBJECTS small objects from many call stacks,
   then alternates PAIRS rounds, each command a fresh process:

     A  ``memray stats --json`` on the run's ``memray.bin``;
     B  ``labkit export RUN --to parquet`` (every frame, the runs and suspects frames);
     C  ``labkit export RUN --to pprof`` (memory with alloc_* and inuse_*, GC);
     D  memray's own reader doing what any export of growth over time must: open the file
        (its first pass) and read the temporal high-water-mark records (a second), in
        Python with nothing else: the floor for B.

     E  every memray pass the Parquet export needs, in bare memray with nothing of labkit:
        D in this process while a second one opens the file and reads the short-lived
        (temporary) allocations, as the export does: the floor for B on two cores.

   Prints the medians of the per-round ratios B/A, C/A, D/A and E/A.

2. Exports the 20 recorded pods of ``datasets/fleet``, copies their partitions under new
   run ids and node names until there are RUNS runs, and times opening the fleet and
   answering its three questions (growing sites, outliers, top suspects) in one process,
   median of ROUNDS.

    .venv/bin/python bench/fleet.py [--pairs 5] [--objects 2000000] [--runs 100]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from postmortem import MAKE  # bench/postmortem.py: the many-stacks program
from timing import timed

ROOT = Path(__file__).resolve().parent.parent

APP = MAKE.replace("with memray.Tracker(sys.argv[1], trace_python_allocators=True, "
                   "follow_fork=False):", "if True:")


FLOOR = """
import sys, memray
r = memray.FileReader(sys.argv[1])
records, _ = r.get_temporal_high_water_mark_allocation_records(merge_threads=True)
sum(1 for _ in records)
"""

BOTH = """
import subprocess, sys, memray
churn = subprocess.Popen([sys.executable, "-c", "import sys, memray; "
                          "r = memray.FileReader(sys.argv[1]); "
                          "sum(1 for _ in r.get_temporary_allocation_records(threshold=1))",
                          sys.argv[1]])
r = memray.FileReader(sys.argv[1])
records, _ = r.get_temporal_high_water_mark_allocation_records(merge_threads=True)
sum(1 for _ in records)
sys.exit(churn.wait())
"""


def export_against_stats(py: str, tmp: Path, pairs: int, objects: int) -> None:
    run = tmp / "run"
    (tmp / "app.py").write_text(APP)
    t = time.perf_counter()
    subprocess.run([py, "-m", "labkit", "capture", "--memray", "--trace-python-allocators",
                    "--gc", "--proc", "--out", str(run), "--", py, str(tmp / "app.py"),
                    str(tmp / "unused.bin"), str(objects)], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import memray

    n = memray.FileReader(str(run / "memray.bin")).metadata.total_allocations
    print(f"capture: {n:,} allocation records, {(run / 'memray.bin').stat().st_size / 1e6:.0f}"
          f" MB, made in {time.perf_counter() - t:.0f} s", flush=True)
    sides = {"A": [py, "-m", "memray", "stats", "--json", "-f", "-o", str(tmp / "stats.json"),
                   str(run / "memray.bin")],
             "B": [py, "-m", "labkit", "export", str(run), "--to", "parquet", "--out",
                   str(tmp / "parquet"), "--force"],
             "C": [py, "-m", "labkit", "export", str(run), "--to", "pprof", "--out",
                   str(tmp / "pprof"), "--force"],
             "D": [py, "-c", FLOOR, str(run / "memray.bin")],
             "E": [py, "-c", BOTH, str(run / "memray.bin")]}
    got: dict[str, list[float]] = {k: [] for k in sides}
    for i in range(pairs):
        order = "ABCDE" if i % 2 == 0 else "EDCBA"
        for side in order:
            got[side].append(timed(sides[side])[0])
        a, b, c, d, e = (got[k][-1] for k in "ABCDE")
        print(f"round {i + 1} ({order}): memray stats {a:.2f} s, export parquet {b:.2f} s "
              f"({b / a:.2f}x), export pprof {c:.2f} s ({c / a:.2f}x), memray reader floor "
              f"{d:.2f} s ({d / a:.2f}x), every pass the export needs {e:.2f} s "
              f"({e / a:.2f}x)", flush=True)
    med = statistics.median
    for k, what in (("B", "labkit export --to parquet"), ("C", "labkit export --to pprof"),
                    ("D", "memray reader floor"), ("E", "every pass it needs")):
        ratio = med(x / a for x, a in zip(got[k], got["A"], strict=True))
        print(f"{what:<28} median {med(got[k]):.2f} s, ratio to memray stats {ratio:.2f} "
              f"(memray stats median {med(got['A']):.2f} s)")


def fleet_query(tmp: Path, runs: int, rounds: int) -> None:
    from labkit.export.parquet import export_parquet
    from labkit.fleetdb import Fleet
    from labkit.frames import load

    root = tmp / "fleet"
    recorded = sorted(m.parent for m in (ROOT / "datasets" / "fleet").glob("*/*/manifest.json"))
    ids = []
    for path in recorded:
        written = export_parquet(load(path, background_stats=False), root)
        ids.append(written[0].parent.name.removeprefix("run_id="))
    parts = [(root, rid) for rid in ids]
    copy = 0
    while len(parts) < runs:  # the same pods again, as other nodes
        rid = ids[copy % len(ids)]
        new = f"copy{copy}-{rid}"
        for frame in root.glob("frame=*"):
            src = frame / f"run_id={rid}"
            if src.is_dir():
                shutil.copytree(src, frame / f"run_id={new}")
        parts.append((root, new))
        copy += 1
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        fl = Fleet(parts, by="requests")
        fl.growing_sites(), fl.outliers(), fl.top_suspects()
        times.append(time.perf_counter() - t)
    n = len(list((root / "frame=runs").iterdir()))
    files = len(list(root.glob("frame=*/*/*.parquet")))
    print(f"fleet of {n} runs ({files} Parquet files): open + growing sites + outliers + top "
          f"suspects, median of {rounds}: {statistics.median(times):.3f} s "
          f"(min {min(times):.3f}, max {max(times):.3f})")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--objects", type=int, default=2_000_000)
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="labkit-bench-fleet-") as tmp:
        export_against_stats(sys.executable, Path(tmp), args.pairs, args.objects)
        fleet_query(Path(tmp), args.runs, args.rounds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
