"""Who keeps it alive: dominators, retained sizes and retention paths of a heap snapshot.

The graph is a :class:`~labkit.frames.heapsnap.HeapSnapshot` (CSR arrays) under a virtual
super-root whose children are the snapshot's roots, in their order (the program's globals
first). :func:`dominators` is Semi-NCA (Lengauer-Tarjan's semidominators, then nearest
common ancestors; Georgiadis et al.), run over flat integer lists; every other pass is a
numpy pass. An object reached from no root (garbage awaiting collection) has no dominator
(-1) and retains nothing.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass
from functools import cached_property
from itertools import pairwise
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

    from labkit.frames.heapsnap import HeapSnapshot

_PLUMBING = {"__dict__", "__closure__"}  # edges a path shows through the name that follows


def dominators(offsets: np.ndarray, targets: np.ndarray, root: int) -> np.ndarray:
    """The immediate dominator of every node reachable from ``root`` (``root``'s own is
    itself), -1 for the rest; the graph is CSR (``offsets`` of length n + 1)."""
    n = len(offsets) - 1
    # flat int64 arrays, not lists: 8 bytes a node or edge, no int object per value
    off, tgt = _flat(offsets), _flat(targets)
    # iterative depth-first search: preorder numbers, DFS-tree parents
    pre = _flat(np.full(n, -1))
    vertex, parent = array("q"), array("q")
    stack = array("q", [root, -1])
    while stack:
        p = stack.pop()
        v = stack.pop()
        if pre[v] != -1:
            continue
        pv = pre[v] = len(vertex)
        vertex.append(v)
        parent.append(p)
        for k in range(off[v + 1] - 1, off[v] - 1, -1):
            w = tgt[k]
            if pre[w] == -1:
                stack.append(w)
                stack.append(pv)
    m = len(vertex)
    # predecessors in preorder numbers, as CSR, reachable edges only
    del off, tgt
    pre_a = np.frombuffer(pre, dtype=np.int64)
    src = np.repeat(np.arange(n), np.diff(offsets))
    ps, pt = pre_a[src], pre_a[targets]
    ok = (ps >= 0) & (pt >= 0)
    ps, pt = ps[ok], pt[ok]
    order = np.argsort(pt, kind="stable")
    poff = _flat(np.concatenate(([0], np.cumsum(np.bincount(pt, minlength=m)))))
    preds = _flat(ps[order])
    del pre_a, src, ps, pt, order, ok
    semi = _flat(np.arange(m))
    label = _flat(np.arange(m))
    anc = _flat(np.full(m, -1))
    for w in range(m - 1, 0, -1):
        s = semi[w]
        for k in range(poff[w], poff[w + 1]):
            v = preds[k]
            if anc[v] != -1:  # linked (processed): the least semi on its path, compressed
                path = []
                x = v
                while anc[anc[x]] != -1:
                    path.append(x)
                    x = anc[x]
                for y in reversed(path):
                    a = anc[y]
                    if semi[label[a]] < semi[label[y]]:
                        label[y] = label[a]
                    anc[y] = anc[a]
                v = label[v]
            if semi[v] < s:
                s = semi[v]
        semi[w] = s
        anc[w] = parent[w]
    idom = array("q", parent)
    idom[0] = 0
    for w in range(1, m):
        x = idom[w]
        sw = semi[w]
        while x > sw:
            x = idom[x]
        idom[w] = x
    out = np.full(n, -1, dtype=np.int64)
    vx = np.frombuffer(vertex, dtype=np.int64)
    out[vx] = vx[np.frombuffer(idom, dtype=np.int64)]
    return out


def _flat(a: np.ndarray) -> array:
    """``a`` as a Python ``array('q')``: indexed as fast as a list, 8 bytes an item."""
    out = array("q")
    out.frombytes(np.ascontiguousarray(a, dtype=np.int64).tobytes())
    return out


def bfs_parents(offsets: np.ndarray, targets: np.ndarray, sources: list[int],
                n: int) -> np.ndarray:
    """Shortest-path parents from ``sources`` (earlier sources win ties): ``parent[v]`` is
    the node before ``v``, ``-2`` at a source, ``-1`` where unreachable."""
    parent = np.full(n, -1, dtype=np.int64)
    front = np.array(list(dict.fromkeys(sources)), dtype=np.int64)
    parent[front] = -2
    while len(front):
        starts, ends = offsets[front], offsets[front + 1]
        counts = ends - starts
        src = np.repeat(front, counts)
        base = np.repeat(starts - np.concatenate(([0], np.cumsum(counts)[:-1])), counts)
        dst = targets[np.arange(int(counts.sum())) + base]
        new = parent[dst] == -1
        dst, src = dst[new], src[new]
        dst, first = np.unique(dst, return_index=True)
        parent[dst] = src[first]
        front = dst[np.argsort(first, kind="stable")]
    return parent


@dataclass
class HeapGraph:
    """A snapshot's graph under its super-root (node ``n``), with dominators, retained
    sizes and shortest root paths, each computed once, on first use."""

    snap: HeapSnapshot

    @cached_property
    def _csr(self) -> tuple[np.ndarray, np.ndarray]:
        s = self.snap
        rnodes = np.array([i for _, i in s.roots], dtype=np.int64)
        offsets = np.concatenate((s.offsets, [s.offsets[-1] + len(rnodes)]))
        return offsets, np.concatenate((s.targets, rnodes))

    @cached_property
    def idom(self) -> np.ndarray:
        """Immediate dominator per node (``n``, the super-root, for what a root alone
        keeps; -1 when unreachable)."""
        offsets, targets = self._csr
        return dominators(offsets, targets, self.snap.n)[:-1]

    @cached_property
    def retained(self) -> np.ndarray:
        """Bytes each object keeps alive: its own and all it dominates."""
        n, idom = self.snap.n, self.idom
        ret = np.where(idom >= 0, self.snap.size, 0).astype(np.int64)
        depth = self._depth
        for d in range(int(depth.max(initial=0)), 0, -1):
            at = np.flatnonzero(depth == d)
            up = idom[at]
            inner = up < n
            np.add.at(ret, up[inner], ret[at[inner]])
        return ret

    @cached_property
    def _depth(self) -> np.ndarray:
        n, idom = self.snap.n, self.idom
        depth = np.where(idom == n, 1, 0).astype(np.int64)
        front = np.flatnonzero(idom == n)
        children = np.argsort(np.where(idom >= 0, idom, n + 1), kind="stable")
        sorted_idom = np.where(idom >= 0, idom, n + 1)[children]
        d = 1
        while len(front):
            lo = np.searchsorted(sorted_idom, front)
            hi = np.searchsorted(sorted_idom, front, side="right")
            counts = hi - lo
            base = np.repeat(lo - np.concatenate(([0], np.cumsum(counts)[:-1])), counts)
            front = children[np.arange(int(counts.sum())) + base]
            d += 1
            depth[front] = d
        return depth

    @cached_property
    def parent(self) -> np.ndarray:
        """Shortest-path parent per node from the roots (see :func:`bfs_parents`)."""
        s = self.snap
        return bfs_parents(s.offsets, s.targets, [i for _, i in s.roots], s.n)

    def path(self, node: int) -> list[int]:
        """The nodes from a root to ``node`` (shortest), empty when unreachable."""
        parent, out = self.parent, []
        if parent[node] == -1:
            return []
        while node >= 0:
            out.append(int(node))
            node = int(parent[node])
        return out[::-1]

    def root_label(self, node: int) -> str:
        """The label of the root ``node`` is (its first, when it is several)."""
        return next(lbl for lbl, i in self.snap.roots if i == node)

    def steps(self, nodes: list[int]) -> list[str]:
        """A path as readable steps: the root, then each named edge or object, e.g.
        ``["module __main__", "global SESSIONS_BY_ID (dict, 1,200 entries)", ...]``."""
        if not nodes:
            return []
        s = self.snap
        out = [self.root_label(nodes[0])]
        for h, t in pairwise(nodes):
            name = s.names.get((h, t))
            if name in _PLUMBING:
                continue
            what = describe(s, t)
            if name is None:
                out.append(what)
            elif name.startswith("closure variable") or "." in name:
                out.append(f"{name} ({what})")
            else:
                out.append(f"global {name} ({what})")
        return out

    def by_type(self) -> pd.DataFrame:
        """Per type: ``count``, shallow ``bytes``, and ``retained`` (of its objects not
        dominated by another of its type), largest retained first."""
        import pandas as pd

        s, idom = self.snap, self.idom
        live = idom >= 0
        own = live & ~((idom < s.n) & (s.type_ix[np.clip(idom, 0, s.n - 1)] == s.type_ix))
        k = len(s.types)
        df = pd.DataFrame({
            "type": s.types,
            "count": np.bincount(s.type_ix[live], minlength=k),
            "bytes": np.bincount(s.type_ix[live], s.size[live], minlength=k).astype(np.int64),
            "retained": np.bincount(s.type_ix[own], self.retained[own],
                                    minlength=k).astype(np.int64)})
        df = df[df["count"] > 0]
        return df.sort_values("retained", ascending=False, kind="stable").reset_index(drop=True)

    def by_retainer(self, top: int = 20) -> pd.DataFrame:
        """What holds the most (MAT's dominator view, flattened): the objects that keep
        the most bytes alive, excluding roots, modules, classes and their dicts, each
        with its ``retained`` bytes, ``objects`` it dominates and its root ``path``."""
        import pandas as pd

        s, ret = self.snap, self.retained
        roots = {i for _, i in s.roots}
        plumbing = {t for (_, t), name in s.names.items() if name in _PLUMBING}
        rows, seen = [], 0
        for node in np.argsort(-ret, kind="stable"):
            node = int(node)
            if ret[node] <= 0 or len(rows) >= top or seen > 100_000:
                break
            seen += 1
            if node in roots or node in plumbing or node in s.describe:
                continue
            p = self.path(node)
            rows.append((describe(s, node), int(ret[node]), " > ".join(self.steps(p))))
        return pd.DataFrame(rows, columns=["retainer", "retained", "path"])


def describe(s: HeapSnapshot, node: int) -> str:
    """``dict, 1,200 entries``, ``bytearray, 64.0 KiB``, or what the agent said it is."""
    if node in s.describe:
        return s.describe[node]
    t, length, size = s.type_of(node), int(s.length[node]), int(s.size[node])
    if length:
        return f"{t}, {length:,} entries"
    if size >= 1024:
        return f"{t}, {_size(size)}"
    return t


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n} B"


def diff(before: HeapGraph, after: HeapGraph, top: int = 20) -> dict[str, pd.DataFrame]:
    """What changed between two snapshots: ``by_type`` (count, bytes, retained deltas) and
    ``by_retainer`` (the retained bytes of each retaining path, before and after)."""
    a, b = before.by_type(), after.by_type()
    t = a.merge(b, on="type", how="outer", suffixes=("_before", "_after")).fillna(0)
    for col in ("count", "bytes", "retained"):
        t[f"{col}_delta"] = (t[f"{col}_after"] - t[f"{col}_before"]).astype(np.int64)
    t = t.sort_values("bytes_delta", ascending=False, kind="stable").reset_index(drop=True)
    ra, rb = before.by_retainer(top * 5), after.by_retainer(top * 5)
    r = ra.merge(rb, on="path", how="outer", suffixes=("_before", "_after"))
    r["retained_before"] = r["retained_before"].fillna(0).astype(np.int64)
    r["retained_after"] = r["retained_after"].fillna(0).astype(np.int64)
    r["delta"] = r["retained_after"] - r["retained_before"]
    r = r.sort_values("delta", ascending=False, kind="stable").head(top).reset_index(drop=True)
    return {"by_type": t, "by_retainer": r[["path", "retained_before", "retained_after",
                                            "delta"]]}
