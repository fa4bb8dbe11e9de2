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

2. Exports the 20 recorded pods of ``datasets/fleet`` and generates from them fleets of
   SIZES runs (:mod:`labkit.export.fleetgen`: every frame, varied nodes and loads); on each,
   alternating ROUNDS times, times in one process: DuckDB opening the fleet and answering
   its three questions reading every part with no store, the same with a new empty store
   (a first query: parts read, then the store's compacted copies written,
   :mod:`labkit.fleetcache`), the same through those copies (every later query), and
   Spark in local mode
   (one session, started once) answering the growing sites; every side's rows are checked
   to be the same. Prints medians and the load average.

    .venv/bin/python bench/fleet.py [--pairs 5] [--objects 2000000] [--sizes 100,1000]
                                    [--rounds 5] [--fleet-only] [--no-spark]
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

from postmortem import MAKE  # bench/postmortem.py: the many-stacks program
from timing import compiled, timed

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
    compiled(ROOT)
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


def _growing_rows(df) -> list[tuple]:
    return [tuple(r) for r in df.astype(object).itertuples(index=False)]


def _duck(parts: list, store: Path | None) -> tuple[float, list[tuple]]:
    """Seconds to open the fleet and answer its three questions; the growing sites."""
    from labkit.fleetdb import Fleet

    t = time.perf_counter()
    fl = Fleet(parts, by="requests", store=store)
    rows = _growing_rows(fl.growing_sites())
    fl.outliers(), fl.top_suspects()
    return time.perf_counter() - t, rows


def fleet_query(tmp: Path, sizes: list[int], rounds: int, spark_too: bool) -> None:
    from labkit.export.fleetgen import generate_fleet
    from labkit.fleetdb import collect

    recorded = {root for root, _ in collect([ROOT / "datasets" / "fleet"],
                                            store=tmp / "recorded")}.pop()
    spark = None
    if spark_too:
        from labkit.fleetspark import growing_sites, local_session

        t = time.perf_counter()
        spark = local_session(cores=2, shuffle_partitions=4)
        print(f"Spark {spark.version} local[2] session started in "
              f"{time.perf_counter() - t:.1f} s", flush=True)
    for n in sizes:
        root = tmp / f"fleet{n}"
        t = time.perf_counter()
        generate_fleet(recorded, root, n)
        files = len(list(root.glob("frame=*/*/*.parquet")))
        print(f"generated fleet of {n} runs ({files} Parquet files) in "
              f"{time.perf_counter() - t:.1f} s", flush=True)
        parts = collect([root])
        store = tmp / f"store{n}"

        got: dict[str, list[float]] = {"cold": [], "first": [], "warm": [], "spark": []}
        _, first = _duck(parts, store)  # writes the store's compacted frames
        for i in range(rounds):
            sides = ["cold", "first", "warm", "spark"] if spark else ["cold", "first", "warm"]
            for side in (sides if i % 2 == 0 else sides[::-1]):
                if side == "spark":
                    t = time.perf_counter()
                    rows = [tuple(r.values()) for r in growing_sites(spark, root)]
                    got[side].append(time.perf_counter() - t)
                else:
                    new = tmp / f"store{n}-first{i}"  # empty: this round's first query
                    took, rows = _duck(parts, {"cold": None, "first": new, "warm": store}[side])
                    got[side].append(took)
                assert len(rows) == len(first) and rows[0][:5] == first[0][:5], (side, rows)
        med = statistics.median
        print(f"{n} runs, median of {rounds} alternating rounds "
              f"(load average {os.getloadavg()[0]:.1f}):", flush=True)
        print(f"  DuckDB, every part read, no store          {med(got['cold']):6.2f} s "
              f"(min {min(got['cold']):.2f}, max {max(got['cold']):.2f})")
        print(f"  DuckDB, first query (parts, store written) {med(got['first']):6.2f} s "
              f"(min {min(got['first']):.2f}, max {max(got['first']):.2f})")
        print(f"  DuckDB, through the store's compacted copy {med(got['warm']):6.2f} s "
              f"(min {min(got['warm']):.2f}, max {max(got['warm']):.2f})")
        if spark:
            print(f"  Spark local[2], growing sites only         {med(got['spark']):6.2f} s "
                  f"(min {min(got['spark']):.2f}, max {max(got['spark']):.2f})", flush=True)
    if spark:
        spark.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--objects", type=int, default=2_000_000)
    ap.add_argument("--sizes", default="100,1000", help="fleet sizes, in runs")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--fleet-only", action="store_true", help="skip part 1")
    ap.add_argument("--no-spark", action="store_true", help="DuckDB alone in part 2")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="labkit-bench-fleet-") as tmp:
        if not args.fleet_only:
            export_against_stats(sys.executable, Path(tmp), args.pairs, args.objects)
        fleet_query(Path(tmp), [int(n) for n in args.sizes.split(",")], args.rounds,
                    not args.no_spark)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
