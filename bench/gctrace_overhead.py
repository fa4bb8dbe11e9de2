"""GC tracer overhead: the same allocation-heavy workload with and without the tracer.

A = the workload alone, B = the workload with labkit's GCTracer running (callback and
sampler thread). Each pair runs side by side in one fresh interpreter, in alternating
order (AB, BA, ...), because on these VMs a whole process can land in a fast or slow
mode (seen: 0.14 s vs 0.25 s for the same plain program). PROCS processes x REPS pairs;
the workload times itself, so start-up is excluded. Prints the median B/A ratio and the
per-event cost two ways: the tracer's calibrated figure, and median(B - A) / collections.

    .venv/bin/python bench/gctrace_overhead.py [--procs 7] [--reps 2] [--n 600000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

from labkit.capture import gctrace

CHILD = """
import gc, importlib.util, json, sys, tempfile, time
spec = importlib.util.spec_from_file_location("gctrace", sys.argv[1])
gctrace = importlib.util.module_from_spec(spec); spec.loader.exec_module(gctrace)
setting, n, reps = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
if setting != "default":
    gc.set_threshold(*map(int, setting.split(",")))

def workload():
    keep = []
    t = time.perf_counter()
    for i in range(n):
        node = {"id": i, "payload": [i, str(i)]}
        node["self"] = node                   # cyclic garbage
        if i % 20 == 0:
            keep.append((i, [i]))             # a growing long-lived heap
    return time.perf_counter() - t

def once(traced):
    gc.collect()
    if not traced:
        return workload(), 0, 0.0
    with tempfile.TemporaryDirectory() as out:
        tr = gctrace.GCTracer(out, interval_s=0.02)
        tr.start()
        t = workload()
        tr.stop()
        meta = json.load(open(out + "/" + gctrace.META_FILE))
    return t, meta["events"], meta["per_event_ns"]

rows = []
for r in range(reps):
    order = (False, True) if r % 2 == 0 else (True, False)
    res = {traced: once(traced) for traced in order}
    rows.append({"a": res[False][0], "b": res[True][0], "events": res[True][1],
                 "per_event_ns": res[True][2]})
print(json.dumps(rows))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--procs", type=int, default=7)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--n", type=int, default=600_000)
    args = ap.parse_args()
    print(f"python {sys.version.split()[0]}; {args.procs} processes x {args.reps} A/B pairs "
          f"(alternating order), n={args.n}")
    print(f"{'thresholds':<12} {'pairs':>5} {'ratio B/A':>9} {'A s':>7} {'B s':>7} "
          f"{'collections':>11} {'us/event':>8} {'(B-A)/event us':>14}")
    for setting in ("default", "5,10,10"):
        rows = []
        for _ in range(args.procs):
            out = subprocess.run([sys.executable, "-c", CHILD, gctrace.__file__, setting,
                                  str(args.n), str(args.reps)],
                                 capture_output=True, text=True, check=True).stdout
            rows += json.loads(out)
        med = statistics.median
        a, b = med(r["a"] for r in rows), med(r["b"] for r in rows)
        ev = med(r["events"] for r in rows)
        diff = med(r["b"] - r["a"] for r in rows)
        print(f"{setting:<12} {len(rows):>5} {med(r['b'] / r['a'] for r in rows):>9.3f} "
              f"{a:>7.3f} {b:>7.3f} {ev:>11.0f} "
              f"{med(r['per_event_ns'] for r in rows) / 1000:>8.2f} {1e6 * diff / ev:>14.2f}")


if __name__ == "__main__":
    main()
