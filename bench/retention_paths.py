"""Does the retention path name the container that holds each leak of the corpus?

    .venv/bin/python bench/retention_paths.py [PROGRAM ...]
    .venv/bin/python bench/retention_paths.py --objgraph     # path lengths against objgraph

Each memory leak in ``bench/corpus/`` is captured with ``labkit capture --memray
--trace-python-allocators --heap-snapshot``, then ``labkit postmortem RUN --json``. The
culprit's suspect (its ``# culprit:`` function, else the top memory suspect) must have a
``retained_by`` path naming the container below (a global, a class attribute); the table
prints the path found, and the totals.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

CORPUS = Path(__file__).resolve().parent / "corpus"
HOLDERS = {  # program -> the name of the container that holds its leak
    "cache_unbounded": "_cache",
    "class_registry": "Session.registry",
    "closure_capture": "pending",
    "event_log_growth": "EVENTS",
    "listeners_registry": "LISTENERS",
    "logging_handler": "log",
    "per_instance_lru": "Client.lookup",
    "gc_heavy": "keep",
    "listener_closure": "EventBus.listeners",
}


def retention(program: Path) -> tuple[str, str | None, list[str] | None]:
    """Capture and postmortem ``program``; the suspect looked at, its holder and path."""
    culprit = program.read_text().splitlines()[0].removeprefix("# culprit: ").strip()
    with tempfile.TemporaryDirectory(prefix="labkit-retention-") as tmp:
        run, out = Path(tmp) / "run", Path(tmp) / "f.json"
        cmd = [sys.executable, "-m", "labkit"]
        subprocess.run([*cmd, "capture", "--memray", "--trace-python-allocators",
                        "--heap-snapshot", "--out", str(run), "--", sys.executable,
                        str(program)], check=True, capture_output=True, timeout=600)
        subprocess.run([*cmd, "postmortem", str(run), "--json", str(out)], check=True,
                       capture_output=True, timeout=600)
        suspects = json.loads(out.read_text())["suspects"]
    mine = [s for s in suspects if s["function"] == culprit and s.get("retained_by")]
    pick = mine[0] if mine else next((s for s in suspects if s.get("retained_by")), None)
    if pick is None:
        return culprit, None, None
    from labkit.analysis.retention import holder

    return (f"{pick['function']} ({Path(pick['file']).name}:{pick['line']})",
            holder(pick["retained_by"]), pick["retained_by"])


OBJGRAPH = """
import json, sys, time, objgraph
sys.argv = ["x"]
exec(open({prog!r}).read())
from labkit.capture.heapsnap import write_snapshot
targets = {targets}
t = time.perf_counter()
chains = [len(objgraph.find_backref_chain(o, objgraph.is_proper_module, max_depth=40))
          for o in targets]
took = time.perf_counter() - t
write_snapshot({snap!r}, when="exit")
print(json.dumps({{"ids": [id(o) for o in targets], "chains": chains, "s": took}}))
"""
TARGETS = {  # program -> expressions naming leaked objects, after it ran
    "cache_unbounded": "[next(iter(_cache.values()))]",
    "class_registry": "[Session.registry[5].buffer]",
    "closure_capture": "[pending[7].__closure__[0].cell_contents]",
    "event_log_growth": "[EVENTS[11]['tags']]",
    "listeners_registry": "[LISTENERS[3].__defaults__[0]]",
    "gc_heavy": "[keep[2].children[9]]",
    "listener_closure": "[EventBus.listeners[4].__closure__[0].cell_contents]",
}


def against_objgraph() -> None:
    """Path lengths (objects, root included) from labkit's snapshot and objgraph's
    ``find_backref_chain`` for the same leaked objects, and the time each took."""
    import time

    import numpy as np

    from labkit.analysis.heap import HeapGraph
    from labkit.frames.heapsnap import load_heap_snapshot

    print("| program | labkit path | objgraph chain | labkit analysis s | objgraph s |")
    print("|---|---|---|---|---|")
    for name, targets in TARGETS.items():
        with tempfile.TemporaryDirectory(prefix="labkit-objgraph-") as tmp:
            snap = str(Path(tmp) / "s.bin")
            code = OBJGRAPH.format(prog=str(CORPUS / f"{name}.py"), targets=targets,
                                   snap=snap)
            out = json.loads(subprocess.run([sys.executable, "-c", code], check=True,
                                            capture_output=True, text=True).stdout)
            t = time.perf_counter()
            graph = HeapGraph(load_heap_snapshot(snap))
            nodes = graph.snap.nodes_of(np.array(out["ids"], dtype=np.uint64))
            ours = [len(graph.path(int(i))) for i in nodes]
            took = time.perf_counter() - t
        print(f"| {name} | {ours} | {out['chains']} | {took:.2f} | {out['s']:.2f} |")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("programs", nargs="*", help="names in bench/corpus (default: the leaks)")
    ap.add_argument("--objgraph", action="store_true",
                    help="compare path lengths with objgraph's find_backref_chain instead")
    args = ap.parse_args()
    if args.objgraph:
        against_objgraph()
        return 0
    names = args.programs or list(HOLDERS)
    hits = 0
    print("| program | suspect | expected holder | found holder | path |")
    print("|---|---|---|---|---|")
    for name in names:
        where, found, path = retention(CORPUS / f"{name}.py")
        ok = found is not None and found.split(" in ", 1)[0] == HOLDERS[name]
        hits += ok
        print(f"| {name} | {where} | {HOLDERS[name]} | {'**' if ok else ''}{found}"
              f"{'**' if ok else ' (miss)'} | {' > '.join(path or [])} |")
    print(f"\nholder named: {hits} of {len(names)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
