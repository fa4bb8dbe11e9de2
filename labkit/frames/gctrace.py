"""GC tracer files -> DataFrames: ``gc_events`` and ``heap``, on the run's time axis (``t_s``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from labkit.capture.gctrace import EVENT_COLUMNS, EVENTS_FILE, HEAP_COLUMNS, HEAP_FILE, META_FILE
from labkit.errors import CorruptCaptureError


def _read_csv(path: Path, required: tuple[str, ...]) -> pd.DataFrame:
    try:
        df = pd.read_csv(path, dtype="int64", engine="c")
    except FileNotFoundError:
        raise CorruptCaptureError(f"{path} is missing; re-capture the run") from None
    except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise CorruptCaptureError(
            f"{path} is not a labkit GC trace ({str(exc).splitlines()[0]}); re-capture the run"
        ) from None
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise CorruptCaptureError(f"{path} lacks columns {missing}; re-capture the run")
    return df


def load_meta(run_dir: Path) -> dict[str, Any]:
    """The tracer's own record: clock origin, interpreter, per-event cost, overhead."""
    path = run_dir / META_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CorruptCaptureError(f"{path} is missing; re-capture the run") from None
    except ValueError:
        raise CorruptCaptureError(f"{path} is not valid JSON; re-capture the run") from None


def load_gc_events(run_dir: Path, t0_ns: int) -> pd.DataFrame:
    """One row per collection.

    Columns: ``seq``, ``t_s`` (start, seconds since the run's origin), ``pause_ms``,
    ``generation``, ``collected``, ``uncollectable``, ``thread_id``, ``young_count``
    (``gc.get_count()[0]`` at start), ``count1``, ``count2``, ``t_start_ns``, ``t_stop_ns``.
    """
    df = _read_csv(run_dir / EVENTS_FILE, EVENT_COLUMNS)
    out = pd.DataFrame({
        "seq": df["seq"],
        "t_s": (df["t_start_ns"] - t0_ns) / 1e9,
        "pause_ms": (df["t_stop_ns"] - df["t_start_ns"]) / 1e6,
        "generation": df["generation"].astype("int8"),
        "collected": df["collected"],
        "uncollectable": df["uncollectable"],
        "thread_id": df["thread_id"],
        "young_count": df["count0"],
        "count1": df["count1"],
        "count2": df["count2"],
        "t_start_ns": df["t_start_ns"],
        "t_stop_ns": df["t_stop_ns"],
    })
    return out


def load_heap(run_dir: Path, t0_ns: int) -> pd.DataFrame:
    """Heap samples: ``t_s``, ``rss_bytes``, ``allocated_blocks``, ``count0..2``
    and, when tracemalloc was on, ``traced_bytes`` and ``traced_peak_bytes``."""
    df = _read_csv(run_dir / HEAP_FILE, HEAP_COLUMNS)
    df.insert(0, "t_s", (df.pop("t_ns") - t0_ns) / 1e9)
    return df
