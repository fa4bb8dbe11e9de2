"""The heap snapshot's cost on a heap of a million objects or more, and its analysis's.

    .venv/bin/python bench/heap_snapshot.py [--sessions N] [--rounds R]

A program holds N sessions (each an instance, its dict of attributes, a list, a str, a
bytes: about 4 objects each) in a global dict, then exits under ``labkit capture --gc
--heap-snapshot``. Reported per round: the agent's pause (its own clock, written in the
snapshot, wall and CPU), the snapshot's size, the program's wall time with and without
the snapshot; then in a fresh process per round, the analysis (load, dominators, retained
sizes, shortest paths, by type, by retainer): wall and CPU time, peak RSS. Medians. CPU
times are the figures to trust on a shared machine (the load average is printed).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROGRAM = """
import sys
SESSIONS = {{}}
class Session:
    def __init__(self, i):
        self.name = "session-%d" % i
        self.tags = [i]
        self.blob = b"x" * 64
for i in range({n}):
    SESSIONS[i] = Session(i)
"""

ANALYSIS = """
import json, resource, sys, time
t0 = time.perf_counter()
from labkit.analysis.heap import HeapGraph
from labkit.frames.heapsnap import load_heap_snapshot
snap = load_heap_snapshot(sys.argv[1])
g = HeapGraph(snap)
g.retained, g.parent
g.by_type(), g.by_retainer(10)
ru = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"s": time.perf_counter() - t0, "n": snap.n, "edges": len(snap.targets),
                  "cpu_s": ru.ru_utime + ru.ru_stime,
                  "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "top": g.by_retainer(1)["path"].iloc[0]}))
"""


def one_round(n: int, tmp: Path, i: int) -> dict[str, float]:
    prog = tmp / "prog.py"
    prog.write_text(PROGRAM.format(n=n))
    out: dict[str, float] = {}
    for snap in (False, True) if i % 2 == 0 else (True, False):
        run = tmp / f"run-{i}-{snap}"
        flags = ["--gc", *(["--heap-snapshot"] if snap else [])]
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "labkit", "capture", *flags, "--out", str(run),
                        "--", sys.executable, str(prog)], check=True, capture_output=True)
        out["wall_snap" if snap else "wall_plain"] = time.perf_counter() - t
        if snap:
            path = run / "heapsnap.bin"
            raw = path.read_bytes()
            stats = json.loads(raw[raw.rindex(b"E") + 5:])
            out["pause_s"], out["pause_cpu_s"] = stats["pause_s"], stats["pause_cpu_s"]
            out["mib"] = len(raw) / 2**20
            a = json.loads(subprocess.run([sys.executable, "-c", ANALYSIS, str(path)],
                                          check=True, capture_output=True,
                                          text=True).stdout)
            out.update(analysis_s=a["s"], analysis_cpu_s=a["cpu_s"], rss_mib=a["rss_mib"],
                       objects=a["n"],
                       edges=a["edges"])
            top = a["top"]
    print(f"round {i}: {out}; top retainer: {top}", file=sys.stderr)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=250_000)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="labkit-heapbench-") as tmp:
        rounds = [one_round(a.sessions, Path(tmp), i) for i in range(a.rounds)]
    med = {k: statistics.median(r[k] for r in rounds) for k in rounds[0]}
    print("| objects | edges | pause wall (cpu) | file | run wall plain / with snapshot "
          "| analysis wall (cpu) | analysis peak RSS |")
    print("|---|---|---|---|---|---|---|")
    print(f"| {med['objects']:,.0f} | {med['edges']:,.0f} | {med['pause_s']:.2f} s "
          f"({med['pause_cpu_s']:.2f} s) | {med['mib']:.0f} MiB | {med['wall_plain']:.2f} s / "
          f"{med['wall_snap']:.2f} s | {med['analysis_s']:.2f} s ({med['analysis_cpu_s']:.2f} s)"
          f" | {med['rss_mib']:.0f} MiB |")
    print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
