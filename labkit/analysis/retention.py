"""The join: where memory was allocated (memray) with what keeps it alive (a heap snapshot).

memray's raw records carry each allocation's address; an allocation that was still held
when tracking stopped contains the object whose ``id()`` lies inside it (CPython's ``id``
is the address, after any GC header). So each object alive at an exit snapshot maps to the
stack that allocated it, and each memory suspect's objects to their shortest path from a
root. The join is ``"address"`` when memray recorded the objects themselves (every one
with ``--trace-python-allocators``; without it only large objects such as big ``bytes``),
else ``"type"``: the snapshot alone, retainers by type, no suspect gets a path.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from labkit.analysis.heap import HeapGraph
from labkit.stacks import Frame, is_agent

if TYPE_CHECKING:
    from labkit.attribution import Attribution
    from labkit.frames.heapsnap import HeapSnapshot

_FREES = {1, 5, 15}  # memray AllocatorType: PYMALLOC_FREE, FREE, MUNMAP
_MMAP = 14  # an mmap holds pymalloc's arenas: objects of every site, so it names none
MAX_PATHS = 20_000  # a site's objects whose root path is followed (the largest first)


@dataclass
class Retention:
    """A suspect's retention: the readable ``steps`` from a root to its objects, the bytes
    ``retained`` by the objects on paths through that container, and how many of them."""

    steps: list[str]
    retained: int
    objects: int


def live_allocations(memray_path: Path | str) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                       dict[int, Any]]:
    """``(address, size, stack_id)`` of every allocation still held when memray stopped,
    and one record per stack id (for its stack). One pass over memray's raw records."""
    import memray

    live: dict[int, tuple[int, int]] = {}
    reps: dict[int, Any] = {}
    with memray.FileReader(str(memray_path)) as reader:
        for r in reader.get_allocation_records():
            a = int(r.allocator)
            if a in _FREES:
                live.pop(r.address, None)
                continue
            if a == _MMAP:
                continue
            sid = r.stack_id
            live[r.address] = (r.size, sid)
            if sid not in reps:
                reps[sid] = r
    addr = np.fromiter(live.keys(), dtype=np.uint64, count=len(live))
    vals = np.array(list(live.values()), dtype=np.int64).reshape(-1, 2)
    return addr, vals[:, 0], vals[:, 1], reps


def sites_of_objects(snap: HeapSnapshot, memray_path: Path | str, how: Attribution
                     ) -> dict[tuple[str, int], np.ndarray]:
    """The snapshot's objects by the user line that allocated them: ``(file name, line)``
    -> node indices."""
    addr, size, sid, reps = live_allocations(memray_path)
    block, node = snap.nodes_within(addr, size.astype(np.uint64))
    # an object inside several live blocks belongs to the smallest (its own allocation)
    order = np.lexsort((size[block], node))
    block, node = block[order], node[order]
    first = np.concatenate(([True], node[1:] != node[:-1])) if len(node) else node.astype(bool)
    block, node = block[first], node[first]
    site_of: dict[int, tuple[str, int] | None] = {}
    for s, r in reps.items():
        frames = tuple(Frame(f, ln, fn) for fn, f, ln in r.stack_trace() if not is_agent(f))
        u = how.user_frame(frames) if frames else None
        site_of[s] = (Path(u.file).name, int(u.line)) if u is not None else None
    out: dict[tuple[str, int], list[np.ndarray]] = {}
    sids = sid[block]
    for s in np.unique(sids):
        key = site_of.get(int(s))
        if key is not None:
            out.setdefault(key, []).append(node[sids == s])
    return {k: np.unique(np.concatenate(v)) for k, v in out.items()}


def retention_of(graph: HeapGraph, nodes: np.ndarray) -> Retention | None:
    """The holder (:func:`holder`) of the most of ``nodes``' bytes, as a path: the root,
    the chain down to the first of ``nodes`` on it, then on to the largest of ``nodes``
    held that way. ``retained`` adds up the shallow sizes of ``nodes`` held through that chain
    (robust to an object misattributed by a free list: its bytes still count where they
    are held)."""
    snap = graph.snap
    nodes = nodes[graph.parent[nodes] != -1]
    if not len(nodes):
        return None
    nodes = nodes[np.argsort(-snap.size[nodes], kind="stable")][:MAX_PATHS]
    mine = set(nodes.tolist())
    bytes_by: Counter[tuple[str, ...]] = Counter()
    count_by: Counter[tuple[str, ...]] = Counter()
    best_path: dict[tuple[str, ...], list[int]] = {}
    for v in nodes.tolist():
        path = graph.path(v)
        j = next(i for i, x in enumerate(path) if x in mine)
        outside = graph.steps(path[:max(j, 1)])
        key = (holder([*outside, ""]),)  # the named holder, however deep the rest goes
        bytes_by[key] += int(snap.size[v])
        count_by[key] += 1
        best_path.setdefault(key, path)  # nodes go largest first
    key, retained = bytes_by.most_common(1)[0]
    return Retention(graph.steps(best_path[key]), retained, count_by[key])


def join(snap: HeapSnapshot, memray: Any, suspects: list[Any], how: Attribution) -> str:
    """Give each memory suspect its ``retained_by`` and ``retained_bytes``; returns the
    join made (``"address"`` or ``"type"``) as a sentence for the findings' notes."""
    graph = HeapGraph(snap)
    when = snap.stats.get("when", "exit")
    if memray is None:
        return (f"heap snapshot ({when}): no memray capture, so retainers are by type only "
                "(labkit heap RUN); capture with --memray --trace-python-allocators to "
                "join them to the lines that allocated")
    if when != "exit":
        return (f"heap snapshot taken at {when}: memray's addresses are those held at the "
                "end, so only a snapshot at exit joins them; retainers are by type only")
    try:
        sites = sites_of_objects(snap, memray.path, how)
    except (NotImplementedError, OSError, RuntimeError, ValueError):
        return "heap snapshot: memray's capture has no addresses (aggregated); by type only"
    joined = 0
    for s in suspects:
        nodes = sites.get((Path(s.file).name, int(s.line)))
        if nodes is None or not any(e.startswith(("memory", "never", "objects"))
                                    for e in s.explains):
            continue
        r = retention_of(graph, nodes)
        if r is not None:
            s.retained_by, s.retained_bytes = r.steps, r.retained
            joined += 1
    full = bool(getattr(memray.metadata, "trace_python_allocators", False))
    how_joined = ("every object's address (--trace-python-allocators)" if full else
                  "the addresses of large objects only (capture with "
                  "--trace-python-allocators for every object)")
    return (f"heap snapshot ({when}, {snap.n:,} objects) joined to memray by {how_joined}: "
            f"{joined} suspect(s) show what keeps their memory alive")


def holder(steps: list[str]) -> str:
    """The first named holder on a path, with its root: ``SESSIONS_BY_ID in module
    __main__ (app.py)``, ``Bus.listeners in class app.Bus``; else the path's last
    container before its end."""
    root = steps[0]
    for st in steps[1:]:
        if st.startswith("global "):
            return f"{st[len('global '):].split(' (', 1)[0]} in {root}"
        name = st.split(" (", 1)[0]
        if "." in name and " " not in name:
            return f"{name} in {root}"
    return f"{steps[-2] if len(steps) > 1 else root} in {root}"
