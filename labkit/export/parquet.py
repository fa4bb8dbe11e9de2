"""A run's frames as Parquet, in a Hive-partitioned layout any engine reads without labkit.

Layout (schema version :data:`SCHEMA_VERSION`, a contract like the manifest's)::

    ROOT/frame=<name>/run_id=<id>/part-0.parquet

One ``frame`` per frame the run holds: ``gc_events``, ``heap``, ``proc``, ``memray_peak``
(sites at the high-water mark), ``memray_growth`` (each site over the run), ``memray_churn``,
``pyspy_functions``, ``pyspy_samples``, ``threads`` (a dump's), ``thread_origins``,
``fd_origins``. Every row carries the run's identity: ``run_id`` (the partition; the run's
folder name and its manifest's checksum prefix), ``run_kind``, ``host``, ``python``,
``schema_version`` and one ``label_<key>`` column per ``--label key=value``. The frames'
own columns are as labkit documents them, less ``frames`` (stack tuples; ``stack`` keeps
the same stack as text). DuckDB, Spark, Trino, Polars and pyarrow read it as it is:
``read_parquet('ROOT/frame=memray_peak/*/*.parquet', hive_partitioning=true)``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from labkit import artifacts as A
from labkit.errors import InputError

SCHEMA_VERSION = 1
FRAMES: dict[str, tuple[Any, Callable[[Any], Any]]] = {
    "gc_events": (A.GC_EVENTS, lambda r: r.gc_events),
    "heap": (A.GC_HEAP, lambda r: r.heap),
    "proc": (A.PROC, lambda r: r.proc),
    "memray_peak": (A.MEMRAY, lambda r: r.memray.allocations_at_peak),
    "memray_growth": (A.MEMRAY, lambda r: r.memray.growth),
    "memray_churn": (A.MEMRAY, lambda r: r.memray.churn),
    "pyspy_functions": (A.PYSPY_PROFILE, lambda r: r.pyspy.functions),
    "pyspy_samples": (A.PYSPY_PROFILE, lambda r: r.pyspy.samples),
    "threads": (A.PYSPY_DUMP, lambda r: r.pyspy.threads),
    "thread_origins": (A.ORIGINS, lambda r: r.origins.threads),
    "fd_origins": (A.ORIGINS, lambda r: r.origins.fds),
}


def run_id(run: Any) -> str:
    """The run's partition name: its folder name and its manifest's checksum prefix."""
    digest = hashlib.sha256((run.path / A.MANIFEST).read_bytes()).hexdigest()[:10]
    return f"{run.path.name}-{digest}"


def export_parquet(run: Any, root: Path, labels: dict[str, str] | None = None, *,
                   force: bool = False) -> list[Path]:
    """Write every frame ``run`` holds under ``root`` (layout in the module docstring);
    an existing partition of the same run is replaced only with ``force``."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise InputError("Parquet export needs pyarrow: pip install 'labkit[fleet]'") from None
    from labkit.outputs import check_dir_output

    root = check_dir_output(root)
    rid = run_id(run)
    m = run.manifest
    target = m.get("target") or {}
    identity = {"run_id": rid, "run_kind": str(m.get("kind", "")),
                "host": str((m.get("host") or {}).get("hostname", "")),
                "python": str(target.get("version", "")), "schema_version": SCHEMA_VERSION,
                **{f"label_{k}": v for k, v in (labels or {}).items()}}
    chosen = [(name, get) for name, (art, get) in FRAMES.items() if run.has(art)]
    if not chosen:
        raise InputError(f"{run.path} holds no capture to export")
    parts = [(name, root / f"frame={name}" / f"run_id={rid}" / "part-0.parquet")
             for name, _ in chosen]
    taken = [p for _, p in parts if p.exists()]
    if taken and not force:
        raise InputError(f"{taken[0].parent} already exists (this run was exported there); "
                         "pass --force to replace it")
    written = []
    for (_, get), (_, path) in zip(chosen, parts, strict=True):
        df = get(run).drop(columns=["frames"], errors="ignore").reset_index(drop=True)
        for k, v in identity.items():
            if k != "run_id":  # the partition column: in the path, as Hive has it
                df[k] = v
        table = pa.Table.from_pandas(df, preserve_index=False)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        pq.write_table(table, tmp)
        os.replace(tmp, path)
        written.append(path)
    return written
