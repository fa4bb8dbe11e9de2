"""GC tracer overhead: the same allocation-heavy workload with and without the tracer.

A = the workload alone, B = the workload with labkit's GCTracer running (callback and
sampler thread), and two partial tracers for the breakdown: E = an empty Python callback
in ``gc.callbacks`` (what CPython itself spends invoking any callback: the info dict, the
call), C = the tracer's callback alone (no sampler thread). Each round runs A, E, C, B side
by side in one fresh interpreter, the order reversed every other round, because on these
VMs a whole process can land in a fast or slow mode. PROCS processes x REPS rounds; the
workload times itself (wall time, or with ``--clock cpu`` the process's CPU time, every
thread's: robust when neighbours load the machine), so start-up is excluded. Prints per
threshold setting the median B/A ratio and, per collection: the tracer's calibrated cost,
median(B - A) / collections, and the breakdown (E-A, C-E, B-C); then the tracer's
self-reported cost against B - A.

    .venv/bin/python bench/gctrace_overhead.py [--procs 7] [--reps 2] [--clock wall|cpu]
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

CLOCK = time.process_time if sys.argv[5] == "cpu" else time.perf_counter

def workload():
    keep = []
    t = CLOCK()
    for i in range(n):
        node = {"id": i, "payload": [i, str(i)]}
        node["self"] = node                   # cyclic garbage
        if i % 20 == 0:
            keep.append((i, [i]))             # a growing long-lived heap
    return CLOCK() - t

def empty(phase, info):
    pass

def once(kind):
    gc.collect()
    if kind == "a":
        return {"a": workload()}
    if kind == "e":
        gc.callbacks.append(empty)
        t = workload()
        gc.callbacks.remove(empty)
        return {"e": t}
    with tempfile.TemporaryDirectory() as out:
        tr = gctrace.GCTracer(out, interval_s=0.02)
        if kind == "c":
            gc.callbacks.append(tr._callback)
            t = workload()
            gc.callbacks.remove(tr._callback)
            return {"c": t}
        tr.start()
        t = workload()
        tr.stop()
        meta = json.load(open(out + "/" + gctrace.META_FILE))
    return {"b": t, "events": meta["events"], "per_event_ns": meta["per_event_ns"],
            "reported_ns": meta["overhead_ns"], "sampler_ns": meta["sampler_ns"],
            "drain_ns": meta["drain_ns"]}

rows = []
for r in range(reps):
    row = {}
    for kind in ("a", "e", "c", "b") if r % 2 == 0 else ("b", "c", "e", "a"):
        row.update(once(kind))
    rows.append(row)
print(json.dumps(rows))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--procs", type=int, default=7)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--n", type=int, default=600_000)
    ap.add_argument("--settings", default="default;5,10,10")
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                    help="cpu: the process's CPU time (all its threads), which a busy "
                         "neighbour does not inflate; misses GIL hand-off latency")
    args = ap.parse_args()
    print(f"python {sys.version.split()[0]}; {args.procs} processes x {args.reps} rounds "
          f"(A E C B, order alternating), n={args.n}, {args.clock} time; "
          f"tracer {gctrace.__file__}")
    print(f"{'thresholds':<11} {'rounds':>6} {'B/A':>6} {'A s':>6} {'B s':>6} {'events':>6} "
          f"{'calib us':>8} {'(B-A)/ev us':>11} {'E-A us':>6} {'C-E us':>6} {'B-C ms':>6} "
          f"{'sampler ms':>10} {'reported/(B-A)':>14}")
    med = statistics.median
    for setting in args.settings.split(";"):
        rows = []
        for _ in range(args.procs):
            out = subprocess.run([sys.executable, "-c", CHILD, gctrace.__file__, setting,
                                  str(args.n), str(args.reps), args.clock],
                                 capture_output=True, text=True, check=True).stdout
            rows += json.loads(out)
        ev = med(r["events"] for r in rows)
        diff = med(r["b"] - r["a"] for r in rows)
        reported = med(r["reported_ns"] for r in rows) / 1e9
        print(f"{setting:<11} {len(rows):>6} {med(r['b'] / r['a'] for r in rows):>6.3f} "
              f"{med(r['a'] for r in rows):>6.3f} {med(r['b'] for r in rows):>6.3f} {ev:>6.0f} "
              f"{med(r['per_event_ns'] for r in rows) / 1000:>8.2f} {1e6 * diff / ev:>11.2f} "
              f"{1e6 * med(r['e'] - r['a'] for r in rows) / ev:>6.2f} "
              f"{1e6 * med(r['c'] - r['e'] for r in rows) / ev:>6.2f} "
              f"{1e3 * med(r['b'] - r['c'] for r in rows):>6.1f} "
              f"{med(r['sampler_ns'] + r['drain_ns'] for r in rows) / 1e6:>10.1f} "
              f"{reported / diff if diff > 0 else float('nan'):>14.2f}")


if __name__ == "__main__":
    main()
