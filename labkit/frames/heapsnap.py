"""A heap snapshot (:mod:`labkit.capture.heapsnap`'s format) -> numpy arrays and a CSR graph.

Memory contract: one array per field (8 or 4 bytes an object, 8 an edge) and no Python
object per heap object, so heaps of millions of objects load in seconds. Node ``i`` is the
``i``-th object written; edges whose target the snapshot does not hold are dropped.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from labkit.capture.heapsnap import MAGIC, VERSION
from labkit.errors import CorruptCaptureError
from labkit.safefile import open_regular

_FIELDS = (("ids", "u8"), ("types", "u4"), ("sizes", "u8"), ("lengths", "u4"),
           ("nref", "u4"))


@dataclass
class HeapSnapshot:
    """The object graph: per node ``addr``, ``type_ix``, ``size`` (shallow), ``length``;
    edges as CSR (``offsets``, ``targets``: node indices); ``roots`` as ``(label, node)``;
    ``names[(holder, target)]`` the labels of named edges; ``describe[node]`` what a
    function, class or module is; ``stats`` the writer's figures (pause, when)."""

    path: Path
    addr: np.ndarray
    type_ix: np.ndarray
    size: np.ndarray
    length: np.ndarray
    offsets: np.ndarray
    targets: np.ndarray
    types: list[str]
    roots: list[tuple[str, int]]
    names: dict[tuple[int, int], str]
    describe: dict[int, str]
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def n(self) -> int:
        """The number of objects."""
        return len(self.addr)

    @cached_property
    def _order(self) -> np.ndarray:
        return np.argsort(self.addr, kind="stable")

    def nodes_of(self, addresses: np.ndarray) -> np.ndarray:
        """Node index of each address (-1 where the snapshot holds no object there)."""
        order, addresses = self._order, np.asarray(addresses, dtype=np.uint64)
        pos = np.searchsorted(self.addr[order], addresses)
        pos = np.minimum(pos, max(0, len(order) - 1))
        hit = (len(order) > 0) & (self.addr[order][pos] == addresses)
        return np.where(hit, order[pos], -1).astype(np.int64)

    def nodes_within(self, start: np.ndarray, length: np.ndarray) -> tuple[np.ndarray,
                                                                        np.ndarray]:
        """Pairs ``(block, node)``: the objects whose address lies in ``[start, start +
        length)`` (an allocation holding an object, whatever its header before ``id``)."""
        sorted_addr = self.addr[self._order]
        start = np.asarray(start, dtype=np.uint64)
        lo = np.searchsorted(sorted_addr, start)
        hi = np.searchsorted(sorted_addr, start + np.asarray(length, dtype=np.uint64))
        counts = hi - lo
        block = np.repeat(np.arange(len(start)), counts)
        firsts = np.repeat(lo - np.concatenate(([0], np.cumsum(counts)[:-1])), counts)
        return block, self._order[np.arange(counts.sum()) + firsts]

    def type_of(self, node: int) -> str:
        """The type name of ``node``."""
        return self.types[int(self.type_ix[node])]


def _read(f: Any, n: int, what: str) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise ValueError(f"truncated in {what}")
    return data


def load_heap_snapshot(path: Path | str) -> HeapSnapshot:
    """Read and check a snapshot; raises a one-line :class:`CorruptCaptureError` if it is
    truncated, of another version or not a snapshot."""
    path = Path(path)
    try:
        with open_regular(path, "heap snapshot") as f:
            return _parse(path, f)
    except (ValueError, KeyError, TypeError, IndexError, struct.error) as exc:
        raise CorruptCaptureError(f"heap snapshot {path} is unreadable ({exc}); capture it "
                                  "again with labkit capture --heap-snapshot") from None


def _json_block(f: Any) -> Any:
    (n,) = struct.unpack("=I", _read(f, 4, "a block's length"))
    return json.loads(_read(f, n, "a JSON block"))


def _parse(path: Path, f: Any) -> HeapSnapshot:
    if f.read(len(MAGIC)) != MAGIC:
        raise ValueError("not a labkit heap snapshot")
    if _read(f, 1, "the header") != b"H":
        raise ValueError("no header")
    hdr = _json_block(f)
    if hdr.get("version") != VERSION:
        raise ValueError(f"format version {hdr.get('version')!r}, this labkit reads {VERSION}")
    order = "<" if hdr.get("byteorder") == "little" else ">"
    parts: dict[str, list[np.ndarray]] = {k: [] for k, _ in _FIELDS}
    refs: list[np.ndarray] = []
    meta, stats = None, None
    while stats is None:
        tag = _read(f, 1, "a block's tag")
        if tag == b"O":
            n, m = struct.unpack("=II", _read(f, 8, "a block's counts"))
            for key, dt in _FIELDS:
                width = np.dtype(dt).itemsize
                parts[key].append(np.frombuffer(_read(f, n * width, key), order + dt))
            refs.append(np.frombuffer(_read(f, m * 8, "referents"), order + "u8"))
        elif tag == b"J":
            meta = _json_block(f)
        elif tag == b"E":
            stats = _json_block(f)
        else:
            raise ValueError(f"unknown block {tag!r}")
    if meta is None:
        raise ValueError("no type table")
    col = {k: np.concatenate(v) if v else np.zeros(0, dt) for (k, dt), v in
           zip(_FIELDS, parts.values(), strict=True)}
    ref = np.concatenate(refs) if refs else np.zeros(0, "u8")
    if int(col["nref"].sum(dtype=np.int64)) != len(ref):
        raise ValueError("edge counts do not add up")
    addr = col["ids"].astype(np.uint64)
    # an object written twice (it became tracked while the graph was walked) counts once
    uniq, first = np.unique(addr, return_index=True)
    snap = HeapSnapshot(path, addr, col["types"].astype(np.int32), col["sizes"].astype(np.int64),
                        col["lengths"].astype(np.int64), np.zeros(1, np.int64),
                        np.zeros(0, np.int64), list(meta["types"]), [], {}, {}, stats)
    src = np.repeat(np.arange(len(addr)), col["nref"].astype(np.int64))
    dst = snap.nodes_of(ref.astype(np.uint64))
    keep = dst >= 0
    if len(uniq) != len(addr):
        dup = np.ones(len(addr), bool)
        dup[first] = False
        keep &= ~dup[src]
    src, dst = src[keep], dst[keep]
    snap.offsets = np.concatenate(([0], np.cumsum(np.bincount(src, minlength=len(addr)))))
    snap.targets = dst[np.argsort(src, kind="stable")]
    if len(snap.types) and int(snap.type_ix.max(initial=0)) >= len(snap.types):
        raise ValueError("a type index out of range")
    lookup = snap.nodes_of
    roots = meta["roots"]
    rnodes = lookup(np.array([int(a) for _, a in roots], dtype=np.uint64))
    snap.roots = [(str(lbl), int(i)) for (lbl, _), i in zip(roots, rnodes, strict=True)
                  if i >= 0]
    names = meta["names"]
    if names:
        hn = lookup(np.array([int(h) for h, _, _ in names], dtype=np.uint64))
        tn = lookup(np.array([int(t) for _, t, _ in names], dtype=np.uint64))
        snap.names = {(int(h), int(t)): str(lbl) for h, t, (_, _, lbl) in
                      zip(hn, tn, names, strict=True) if h >= 0 and t >= 0}
    desc = meta["describe"]
    if desc:
        dn = lookup(np.array([int(a) for a, _ in desc], dtype=np.uint64))
        snap.describe = {int(i): str(t) for i, (_, t) in zip(dn, desc, strict=True) if i >= 0}
    return snap
