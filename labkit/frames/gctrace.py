"""GC tracer files -> DataFrames: ``gc_events`` and ``heap``, on the run's time axis (``t_s``)."""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from labkit.capture.gctrace import (
    EVENT_FIELDS,
    EVENTS_MAGIC,
    HEAP_COLUMNS,
)
from labkit.errors import CorruptCaptureError
from labkit.safefile import open_capture, read_json

if TYPE_CHECKING:
    import pandas as pd


def load_meta(path: Path) -> dict[str, Any]:
    """The tracer's own record (``gctrace.json``): clock origin, interpreter, per-event
    cost, overhead."""
    from labkit.schemas import check

    meta = read_json(path, "GC trace record")
    if not isinstance(meta, dict):
        raise CorruptCaptureError(f"{path} is not a labkit GC trace record; re-capture the run")
    check(meta, "gctrace", path, "GC trace record", "re-capture the run")
    return meta


def read_event_records(path: Path) -> np.ndarray:
    """The raw int64 records of ``gc_events.bin``, shape (n, len(EVENT_FIELDS)).

    A trailing partial record (a program killed mid-write) is dropped.
    """
    try:
        with open_capture(path, "GC trace") as fh:
            magic = fh.read(len(EVENTS_MAGIC))
            if path.suffix == ".gz":
                data = fh.read()
                raw = np.frombuffer(data[: len(data) // 8 * 8], "<i8")
            else:
                raw = np.fromfile(fh, dtype="<i8")
    except FileNotFoundError:
        raise CorruptCaptureError(f"{path} is missing; re-capture the run") from None
    except (OSError, EOFError, zlib.error):
        raise CorruptCaptureError(f"{path} is not a readable gzip file; restore it") from None
    if magic != EVENTS_MAGIC:
        raise CorruptCaptureError(f"{path} is not a labkit GC event file; re-capture the run")
    width = len(EVENT_FIELDS)
    n = len(raw) // width
    return raw[: n * width].reshape(n, width)


def gc_event_columns(path: Path, t0_ns: int, tracer_thread_id: int = 0
                     ) -> dict[str, np.ndarray]:
    """The columns of :func:`load_gc_events` as numpy arrays (for a caller that needs no
    DataFrame); impossible records are a one-line :class:`CorruptCaptureError`."""
    rec = read_event_records(path)
    col = {name: rec[:, i] for i, name in enumerate(EVENT_FIELDS)}
    # non-negative times cannot overflow when the run's origin is subtracted
    bad = (col["t_start_ns"] < 0) | (col["t_stop_ns"] < col["t_start_ns"]) | \
        (col["generation"] < 0) | (col["generation"] > 2) | (col["collected"] < 0) | \
        (col["uncollectable"] < 0)
    if bad.any():
        raise CorruptCaptureError(
            f"{path} holds impossible records (first at #{int(bad.argmax())}); "
            "the file is damaged: re-capture the run"
        )
    return {
        "seq": np.arange(len(rec), dtype="int64"),
        "t_s": (col["t_start_ns"] - t0_ns) / 1e9,
        "pause_ms": (col["t_stop_ns"] - col["t_start_ns"]) / 1e6,
        "generation": col["generation"].astype("int8"),
        "collected": col["collected"],
        "uncollectable": col["uncollectable"],
        "thread_id": col["thread_id"],
        "young_count": col["count0"],
        "count1": col["count1"],
        "count2": col["count2"],
        "in_tracer": (col["thread_id"] == tracer_thread_id) & (tracer_thread_id != 0),
        "t_start_ns": col["t_start_ns"],
        "t_stop_ns": col["t_stop_ns"],
    }


def load_gc_events(path: Path, t0_ns: int, tracer_thread_id: int = 0) -> pd.DataFrame:
    """One row per collection, from ``gc_events.bin`` (or its gzipped ``.gz``).

    Columns: ``seq``, ``t_s`` (start, seconds since the run's origin), ``pause_ms``,
    ``generation``, ``collected``, ``uncollectable``, ``thread_id``, ``young_count``
    (``gc.get_count()[0]`` at start), ``count1``, ``count2``, ``in_tracer`` (the collection
    ran in labkit's own sampler thread), ``t_start_ns``, ``t_stop_ns``.
    """
    import pandas as pd

    return pd.DataFrame(gc_event_columns(path, t0_ns, tracer_thread_id))


def load_heap(path: Path, t0_ns: int) -> pd.DataFrame:
    """Heap samples: ``t_s``, ``rss_bytes``, ``allocated_blocks``, ``count0..2``
    and, when tracemalloc was on, ``traced_bytes`` and ``traced_peak_bytes``."""
    # csvfile imports pandas: the event columns (the pprof export) need only numpy
    from labkit.frames.csvfile import check_non_negative, read_csv_checked

    df = read_csv_checked(path, HEAP_COLUMNS, "labkit heap sample file", dtype="int64")
    check_non_negative(df, path, ("t_ns",))
    df.insert(0, "t_s", (df.pop("t_ns") - t0_ns) / 1e9)
    return df
