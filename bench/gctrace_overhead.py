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
self-reported cost against B - A, and the same with the hot calibration of before
2026-12-01 (back-to-back ``gc.collect(0)``, taken in the same process after B) in place of
the tracer's cache-cold one.

    .venv/bin/python bench/gctrace_overhead.py [--procs 7] [--reps 2] [--clock wall|cpu]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from labkit.capture import gctrace

HOT = """
import gc, time
def hot_calibration(cb, n=200, pairs=31):
    # the calibration before 2026-12-01 (session 29): rounds of n back-to-back
    # gc.collect(0), everything hot; kept here as the reference for the cache-cold one
    diffs = []
    for r in range(3 * pairs):
        if len(diffs) == pairs:
            break
        took, whole = {}, True
        for on in ((False, True) if r % 2 == 0 else (True, False)):
            if on:
                gc.callbacks.append(cb)
            before = gc.get_stats()[0]["collections"]
            t = time.thread_time_ns()
            for _ in range(n):
                gc.collect(0)
            took[on] = time.thread_time_ns() - t
            whole = whole and gc.get_stats()[0]["collections"] - before == n
            if on:
                gc.callbacks.remove(cb)
        if whole:
            diffs.append((took[True] - took[False]) / n)
    diffs.sort()
    return max(0.0, diffs[len(diffs) // 2]) if diffs else 0.0

"""

# the program both modes time (n iterations; CLOCK is the child's): cyclic garbage and a
# growing long-lived heap
WORKLOAD = """
def workload():
    keep = []
    t = CLOCK()
    for i in range(n):
        node = {"id": i, "payload": [i, str(i)]}
        node["self"] = node                   # cyclic garbage
        if i % 20 == 0:
            keep.append((i, [i]))             # a growing long-lived heap
    return CLOCK() - t
"""

CHILD = """
import gc, importlib.util, json, os, sys, tempfile, time
spec = importlib.util.spec_from_file_location("gctrace", sys.argv[1])
gctrace = importlib.util.module_from_spec(spec); spec.loader.exec_module(gctrace)
setting, n, reps = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
kinds = sys.argv[6]
if setting != "default":
    gc.set_threshold(*map(int, setting.split(",")))

CLOCK = time.process_time if sys.argv[5] == "cpu" else time.perf_counter
WORKLOAD

def empty(phase, info):
    pass

def once(kind):
    gc.collect()
    before = sum(s["collections"] for s in gc.get_stats())
    got = _once(kind)
    got["collections_" + kind] = sum(s["collections"] for s in gc.get_stats()) - before
    return got

def _once(kind):
    if kind == "a":
        return {"a": workload()}
    if kind == "e":
        gc.callbacks.append(empty)
        t = workload()
        gc.callbacks.remove(empty)
        return {"e": t}
    with tempfile.TemporaryDirectory() as out:
        if kind == "p":
            os.environ["LABKIT_GC_CALLBACK"] = "python"
        tr = gctrace.GCTracer(out, interval_s=float(sys.argv[7]))
        os.environ.pop("LABKIT_GC_CALLBACK", None)
        if kind in "cp":
            gc.callbacks.append(tr._callback)
            t = workload()
            gc.callbacks.remove(tr._callback)
            return {kind: t, "kind_" + kind: tr._rec.kind}
        tr.start()
        t = workload()
        tr.stop()
        meta = json.load(open(out + "/" + gctrace.META_FILE))
        samples = sum(1 for _ in open(out + "/" + gctrace.HEAP_FILE)) - 1
        hot = hot_calibration(tr._callback)
    return {"b": t, "events": meta["events"], "per_event_ns": meta["per_event_ns"],
            "hot_ns": hot,
            "reported_ns": meta["overhead_ns"], "sampler_ns": meta["sampler_ns"],
            "drain_ns": meta["drain_ns"], "kind_b": meta["callback_kind"], "samples": samples}

HOT_CALIBRATION
rows = []
for r in range(reps):
    row = {}
    for kind in kinds if r % 2 == 0 else kinds[::-1]:
        row.update(once(kind))
    rows.append(row)
print(json.dumps(rows))
""".replace("HOT_CALIBRATION", HOT).replace("WORKLOAD", WORKLOAD)


def _child(setting: str, n: int, reps: int, clock: str, kinds: str, interval: float,
           prefix: tuple[str, ...] = ()) -> list[dict]:
    cmd = [*prefix, sys.executable, "-c", CHILD, gctrace.__file__, setting, str(n), str(reps),
           clock, kinds, str(interval)]
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    env.pop("LABKIT_GC_CALLBACK", None)
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


def median_ci(xs: list[float]) -> tuple[float, float]:
    """A distribution-free 95% confidence interval of the median: the order statistics
    n/2 -+ 0.98 sqrt(n) (the binomial's normal approximation)."""
    xs, n = sorted(xs), len(xs)
    half = 0.98 * n ** 0.5
    return xs[max(0, int(n / 2 - half))], xs[min(n - 1, int(n / 2 + half + 0.999))]


def timed(args: argparse.Namespace) -> None:
    """Wall or CPU time, A E P C B alternating in each process; medians over the rounds."""
    print(f"python {sys.version.split()[0]}; {args.procs} processes x {args.reps} rounds "
          f"(A E P C B, order alternating), n={args.n}, {args.clock} time; "
          f"tracer {gctrace.__file__}")
    print(f"{'thresholds':<11} {'rounds':>6} {'B/A':>6} {'95% CI':>11} {'A s':>6} {'B s':>6} "
          f"{'events':>6} "
          f"{'calib us':>8} {'(B-A)/ev us':>11} {'E-A us':>6} {'P-E us':>6} {'C-E us':>6} "
          f"{'B-C ms':>6} {'sampler ms':>10} {'reported/(B-A)':>14} {'hot calib us':>12} "
          f"{'hot rep/(B-A)':>13} {'callback':>8}")
    med = statistics.median
    for setting in args.settings.split(";"):
        rows = []
        for _ in range(args.procs):
            rows += _child(setting, args.n, args.reps, args.clock, "aepcb", 0.02)
        ev = med(r["events"] for r in rows)
        diff = med(r["b"] - r["a"] for r in rows)
        reported = med(r["reported_ns"] for r in rows) / 1e9
        # the same report with the hot (pre-cache-cold) calibration in place of the tracer's
        hot = med(r["hot_ns"] for r in rows)
        reported_hot = med(r["reported_ns"] - r["events"] * (r["per_event_ns"] - r["hot_ns"])
                           for r in rows) / 1e9
        per_ev = {k: 1e6 * med(r[k] - r["e"] for r in rows) / ev for k in "pc"}
        lo, hi = median_ci([r["b"] / r["a"] for r in rows])
        print(f"{setting:<11} {len(rows):>6} {med(r['b'] / r['a'] for r in rows):>6.3f} "
              f"{lo:>5.3f}-{hi:<5.3f} "
              f"{med(r['a'] for r in rows):>6.3f} {med(r['b'] for r in rows):>6.3f} {ev:>6.0f} "
              f"{med(r['per_event_ns'] for r in rows) / 1000:>8.2f} {1e6 * diff / ev:>11.2f} "
              f"{1e6 * med(r['e'] - r['a'] for r in rows) / ev:>6.2f} "
              f"{per_ev['p']:>6.2f} {per_ev['c']:>6.2f} "
              f"{1e3 * med(r['b'] - r['c'] for r in rows):>6.1f} "
              f"{med(r['sampler_ns'] + r['drain_ns'] for r in rows) / 1e6:>10.1f} "
              f"{reported / diff if diff > 0 else float('nan'):>14.2f} {hot / 1000:>12.2f} "
              f"{reported_hot / diff if diff > 0 else float('nan'):>13.2f} {rows[0]['kind_b']:>8}")


def _callgrind_totals(outdir: Path) -> tuple[int, int]:
    """(main thread's instructions, every other thread's) from callgrind's per-thread files."""
    main = others = 0
    for f in outdir.glob("cg.*"):
        total = 0
        for line in f.read_text(errors="replace").splitlines():
            if line.startswith(("summary:", "totals:")):
                total = int(line.split()[1])
        if f.name.endswith("-01"):
            main += total
        else:
            others += total
    return main, others


def instructions(args: argparse.Namespace) -> None:
    """Instructions executed (callgrind), one fresh process per kind, each minus the same
    process with n=0 (start-up, imports and the tracer's calibration cancel). The tracer's
    interval is stretched by callgrind's slowdown (A's time under it over A's time
    without), so the sampler wakes as often per unit of work as it would natively."""
    print(f"python {sys.version.split()[0]}; callgrind instructions, n={args.n}, one process "
          f"per kind, minus the same with n=0; tracer {gctrace.__file__}")
    print(f"{'thresholds':<11} {'collections':>11} {'slowdown':>8} {'B/A':>7} {'C/A':>7} "
          f"{'P/A':>7} {'E-A/ev':>7} {'P-A/ev':>7} {'C-A/ev':>7} {'B-A/ev main':>11} "
          f"{'sampler/wake':>12} {'wakes':>5} {'callback':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        for setting in args.settings.split(";"):
            native = statistics.median(
                _child(setting, args.n, 1, "wall", "a", 0.02)[0]["a"] for _ in range(3))
            got: dict[str, tuple[int, int]] = {}
            info: dict[str, dict] = {}
            slowdown = 1.0
            for kind in "aepcb":
                for n in (args.n, 0):
                    d = Path(tmp) / f"{setting}-{kind}-{n}"
                    d.mkdir()
                    vg = ("valgrind", "--tool=callgrind", "--separate-threads=yes",
                          f"--callgrind-out-file={d}/cg.%p", "--")
                    row = _child(setting, n, 1, "wall", kind, 0.02 * slowdown, vg)[0]
                    got[kind + ("n" if n else "0")] = _callgrind_totals(d)
                    if n:
                        info[kind] = row
                if kind == "a":
                    slowdown = info["a"]["a"] / native
            ir = {k: (got[k + "n"][0] - got[k + "0"][0], got[k + "n"][1] - got[k + "0"][1])
                  for k in "aepcb"}
            ev = info["c"]["collections_c"]
            whole = {k: ir[k][0] + ir[k][1] for k in ir}
            wakes = info["b"]["samples"]
            print(f"{setting:<11} {ev:>11} {slowdown:>8.0f} {whole['b'] / whole['a']:>7.4f} "
                  f"{whole['c'] / whole['a']:>7.4f} {whole['p'] / whole['a']:>7.4f} "
                  f"{(ir['e'][0] - ir['a'][0]) / ev:>7.0f} {(ir['p'][0] - ir['a'][0]) / ev:>7.0f} "
                  f"{(ir['c'][0] - ir['a'][0]) / ev:>7.0f} {(ir['b'][0] - ir['a'][0]) / ev:>11.0f} "
                  f"{ir['b'][1] / max(1, wakes):>12.0f} {wakes:>5} {info['b']['kind_b']:>8}")


FLOOR_CHILD = """
import gc, importlib.util, os, sys
spec = importlib.util.spec_from_file_location("gctrace", sys.argv[1])
g = importlib.util.module_from_spec(spec); spec.loader.exec_module(g)
kind, n = sys.argv[2], int(sys.argv[3])
if kind == "p":
    os.environ["LABKIT_GC_CALLBACK"] = "python"
t = g.GCTracer("/nonexistent-not-used")
def empty(phase, info):
    pass
cb = {"a": None, "e": empty, "c": t._callback, "p": t._callback}[kind]
if cb is not None:
    gc.callbacks.append(cb)
for _ in range(n):
    gc.collect(0)
print(t._rec.kind)
"""


def floor(args: argparse.Namespace) -> None:
    """Instructions a ``gc.collect(0)`` costs with nothing, an empty Python function, the
    compiled callback and the Python callback in ``gc.callbacks`` (callgrind; each process
    minus the same with no collections)."""
    n = args.n or 20_000
    print(f"python {sys.version.split()[0]}; callgrind instructions a gc.collect(0), n={n}")
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    env.pop("LABKIT_GC_CALLBACK", None)
    with tempfile.TemporaryDirectory() as tmp:
        per = {}
        for kind in "aecp":
            ir = []
            for m in (n, 0):
                out = Path(tmp) / f"cg.{kind}.{m}"
                subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                                sys.executable, "-c", FLOOR_CHILD, gctrace.__file__, kind,
                                str(m)], capture_output=True, check=True, env=env)
                ir.append(next(int(ln.split()[1]) for ln in out.read_text().splitlines()
                               if ln.startswith(("summary:", "totals:"))))
            per[kind] = (ir[0] - ir[1]) / n
        for kind, label in zip("aecp", ("nothing", "empty Python function",
                                         "compiled callback", "Python callback"), strict=True):
            print(f"{label:<22} {per[kind]:>8,.0f}  (+{per[kind] - per['a']:,.0f})")

INSITU_CHILD = HOT + """
import importlib.util, json, statistics, sys
spec = importlib.util.spec_from_file_location("gctrace", sys.argv[1])
gctrace = importlib.util.module_from_spec(spec); spec.loader.exec_module(gctrace)
setting, n, pairs = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
rec = gctrace.GCTracer("/nonexistent-not-used")._rec
def empty(phase, info):
    pass
CLOCK = time.thread_time_ns
WORKLOAD
def run(cb):
    gc.collect()
    before = sum(s["collections"] for s in gc.get_stats())
    if cb is not None:
        gc.callbacks.append(cb)
    t = workload()
    if cb is not None:
        gc.callbacks.remove(cb)
    return t, sum(s["collections"] for s in gc.get_stats()) - before
thresholds = gc.get_threshold() if setting == "default" else tuple(map(int, setting.split(",")))
rows = []
for p in range(pairs):
    gc.set_threshold(*thresholds)
    kinds = ("a", "e", "c") if p % 2 == 0 else ("c", "e", "a")
    got = {k: run({"a": None, "e": empty, "c": rec.callback}[k]) for k in kinds}
    gc.set_threshold(700, 10, 10)
    row = {k + "_ns": (got[k][0] - got["a"][0]) / got[k][1] for k in "ec"}
    if p % 4 == 0:
        row["cold_ns"] = gctrace._cb.calibrate(rec)
        row["hot_ns"] = hot_calibration(rec.callback)
    row["collections"] = got["c"][1]
    rows.append(row)
print(json.dumps(rows))
""".replace("WORKLOAD", WORKLOAD)


def insitu(args: argparse.Namespace) -> None:
    """The callback's cost a collection inside the workload, without the whole-process noise:
    in one process, slices of the workload with nothing, an empty Python function (E) and
    the tracer's callback (C) in ``gc.callbacks``, alternating, timed in the thread's CPU
    time; per slice (X - A) / collections. Every 4th pair the tracer's calibration and the
    hot one are taken in the same process, so both see the machine's same moments. Medians
    over PROCS processes x PAIRS pairs."""
    n, pairs = args.n, args.reps
    print(f"python {sys.version.split()[0]}; in-situ: {args.procs} processes x {pairs} pairs "
          f"of workload slices, n={n}, thread CPU time; tracer {gctrace.__file__}")
    print(f"{'thresholds':<11} {'pairs':>5} {'coll/slice':>10} {'E-A us':>6} {'C-A us':>6} "
          f"{'95% CI':>11} {'calib us':>8} {'hot us':>6} {'calib/(C-A)':>11} "
          f"{'hot/(C-A)':>9}")
    med = statistics.median
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    env.pop("LABKIT_GC_CALLBACK", None)
    for setting in args.settings.split(";"):
        rows = []
        for _ in range(args.procs):
            out = subprocess.run([sys.executable, "-c", INSITU_CHILD, gctrace.__file__, setting,
                                  str(n), str(pairs)], capture_output=True, text=True,
                                 check=True, env=env).stdout
            rows += json.loads(out.strip().splitlines()[-1])
        c = med(r["c_ns"] for r in rows)
        lo, hi = median_ci([r["c_ns"] for r in rows])
        cold = med(r["cold_ns"] for r in rows if "cold_ns" in r)
        hot = med(r["hot_ns"] for r in rows if "hot_ns" in r)
        print(f"{setting:<11} {len(rows):>5} {med(r['collections'] for r in rows):>10.0f} "
              f"{med(r['e_ns'] for r in rows) / 1e3:>6.2f} {c / 1e3:>6.2f} "
              f"{lo / 1e3:>5.2f}-{hi / 1e3:<5.2f} {cold / 1e3:>8.2f} {hot / 1e3:>6.2f} "
              f"{cold / c:>11.2f} {hot / c:>9.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--procs", type=int, default=7)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--n", type=int, default=None,
                    help="workload iterations (default 600000; 200000 with --instructions)")
    ap.add_argument("--settings", default="default;5,10,10")
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                    help="cpu: the process's CPU time (all its threads), which a busy "
                         "neighbour does not inflate; misses GIL hand-off latency")
    ap.add_argument("--floor", action="store_true",
                    help="instructions one gc.collect(0) costs per gc.callbacks entry "
                         "(callgrind)")
    ap.add_argument("--insitu", action="store_true",
                    help="the callback's cost a collection inside the workload (slices "
                         "alternating in one process, thread CPU time; --reps pairs a "
                         "process) against the tracer's calibration and the hot one")
    ap.add_argument("--instructions", action="store_true",
                    help="count instructions with valgrind's callgrind instead of timing: "
                         "deterministic under any load")
    args = ap.parse_args()
    if args.floor:
        floor(args)
    elif args.insitu:
        args.n = args.n or 20_000
        insitu(args)
    elif args.instructions:
        args.n = args.n or 200_000
        instructions(args)
    else:
        args.n = args.n or 600_000
        timed(args)


if __name__ == "__main__":
    main()
