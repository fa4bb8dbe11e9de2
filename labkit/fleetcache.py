"""A big fleet's frames kept compacted in the store, so that opening it costs milliseconds
a frame, not milliseconds a run.

Reading a Parquet part costs about 1 to 3 ms whatever its size (each column of each file is
set up), so a frame of 1,000 runs takes seconds. From :data:`COMPACT_MIN_RUNS` runs,
:func:`read_frame` keeps each frame in ``STORE/compact/`` as at most :data:`BUCKETS` files:
a run falls in a bucket by a hash of its id, and a bucket's file is named by a digest of the
columns read (a question reads a few) and its runs' ids, their parts' paths, sizes,
modification times and inodes. A run added, removed or
re-exported changes its bucket's name, so that bucket alone is read from the parts again and
written anew; a file found is never stale. A compacted file is only a copy of the parts, read
by labkit alone (never a path to DuckDB); if it cannot be written or read back, the parts
are read instead. A file is touched when read; writing one removes its frame's files
untouched for :data:`UNUSED_DAYS` days. ``compact/`` can be deleted at any time.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from labkit.errors import InputError

COMPACT_MIN_RUNS = 64
BUCKETS = 16
READERS = 4  # parts decoded at once (pyarrow releases the GIL while it decodes)
UNUSED_DAYS = 7

Listed = tuple[str, Path, os.stat_result]  # run id, part file, its lstat


def union_by_name(tables: list[Any]) -> Any:
    """``tables`` as one, columns matched by name (missing ones null); a column typed
    differently in different runs (text in a run without rows) becomes text."""
    import pyarrow as pa

    try:
        return pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        pass
    types: dict[str, set[Any]] = {}
    for t in tables:
        for f in t.schema:
            types.setdefault(f.name, set()).add(f.type)
    clash = {n for n, ts in types.items() if len(ts - {pa.null()}) > 1}
    return pa.concat_tables(
        [t.cast(pa.schema([pa.field(f.name, pa.string()) if f.name in clash else f
                           for f in t.schema])) for t in tables],
        promote_options="permissive")


def read_parts(listed: list[Listed], read: Callable[[Path, str], Any]) -> list[Any]:
    """``read(path, run_id)`` of every part, READERS at once, in ``listed``'s order."""
    if len(listed) < 2 * READERS:
        return [read(p, rid) for rid, p, _ in listed]
    with ThreadPoolExecutor(READERS) as pool:
        return list(pool.map(lambda item: read(item[1], item[0]), listed))


def _bucket(rid: str) -> int:
    return int.from_bytes(hashlib.sha256(rid.encode()).digest()[:4], "big") % BUCKETS


def _digest(frame: str, version: int, items: list[Listed],
            columns: frozenset[str] | None) -> str:
    cols = "*" if columns is None else "\0".join(sorted(columns))
    h = hashlib.sha256(f"{frame}\0{version}\0{cols}\n".encode("utf-8", "surrogateescape"))
    for rid, path, st in sorted(items, key=lambda x: (x[0], str(x[1]))):
        h.update(f"{rid}\0{path}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ino}\n".encode(
            "utf-8", "surrogateescape"))
    return h.hexdigest()[:24]


def _load(path: Path) -> Any | None:
    """A compacted file's table, or None if it is missing or unreadable."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from labkit.safefile import open_regular

    try:
        with open_regular(path, "compacted frame", follow_symlinks=False) as fh:
            buf = pa.BufferReader(fh.read())
        meta = pq.read_metadata(buf)
        # text stays dictionary-encoded: decoding a bucket's stacks into plain strings
        # costs 5 to 10 times as long and as much memory
        text = [f.name for f in meta.schema.to_arrow_schema()
                if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]
        return pq.ParquetFile(buf, metadata=meta, read_dictionary=text,
                              pre_buffer=False).read(use_threads=False)
    except (InputError, pa.ArrowException, OSError):
        return None


def _save(path: Path, table: Any) -> None:
    """Write ``table`` to ``path`` atomically; a cache that cannot be written is no error."""
    import pyarrow.parquet as pq

    from labkit.outputs import write_bytes_atomic

    buf = io.BytesIO()
    pq.write_table(table, buf)
    with contextlib.suppress(InputError):
        write_bytes_atomic(path, buf.getvalue())


def _evict(folder: Path, frame: str) -> None:
    """Remove ``frame``'s compacted files in ``folder`` untouched for UNUSED_DAYS days."""
    import time

    old = time.time() - UNUSED_DAYS * 86400
    for p in folder.glob(f"{frame}-*.parquet"):
        with contextlib.suppress(OSError):  # gone already, or not ours to remove
            if p.lstat().st_mtime < old:
                p.unlink()


def read_frame(frame: str, listed: list[Listed], read: Callable[[Path, str], Any],
               store: Path | None, version: int,
               columns: frozenset[str] | None = None) -> list[Any]:
    """The Arrow tables (each with ``run_id``) of ``frame``'s parts ``listed``: through the
    compacted files in ``store`` (module docstring) for a fleet of :data:`COMPACT_MIN_RUNS`
    runs or more, else part by part. ``read(path, run_id)`` reads one part, its ``columns``
    (None: all); a compacted file holds one set of columns, named by it."""
    if store is None or len({rid for rid, _, _ in listed}) < COMPACT_MIN_RUNS:
        return read_parts(listed, read)
    buckets: dict[int, list[Listed]] = {}
    for item in listed:
        buckets.setdefault(_bucket(item[0]), []).append(item)
    folder = store / "compact" / f"v{version}"
    tables = []
    for _, items in sorted(buckets.items()):
        path = folder / f"{frame}-{_digest(frame, version, items, columns)}.parquet"
        table = _load(path) if path.is_file() else None
        if table is None:
            table = union_by_name(read_parts(items, read))
            _evict(folder, frame)
            _save(path, table)
        else:
            with contextlib.suppress(OSError):
                os.utime(path, follow_symlinks=False)  # in use: not evicted
        tables.append(table)
    return tables
