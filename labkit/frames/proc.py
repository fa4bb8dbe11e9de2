"""Process sampler file -> DataFrame ``proc``: ``t_s``, ``rss_bytes``, ``threads``, ``fds``,
``cpu_percent``, ``children``."""

from __future__ import annotations

import zlib
from pathlib import Path

import pandas as pd

from labkit.capture.proc import COLUMNS
from labkit.errors import CorruptCaptureError


def load_proc(path: Path, t0_ns: int) -> pd.DataFrame:
    """Samples of the process (and its children) over time, from ``proc.csv`` (or ``.gz``)."""
    dtypes = {c: ("float64" if c == "cpu_percent" else "int64") for c in COLUMNS}
    try:
        df = pd.read_csv(path, dtype=dtypes)
    except FileNotFoundError:
        raise CorruptCaptureError(f"{path} is missing; re-capture the run") from None
    except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError, OSError, EOFError,
            zlib.error) as exc:
        raise CorruptCaptureError(
            f"{path} is not a labkit process sample file ({str(exc).splitlines()[0]})"
        ) from None
    if tuple(df.columns) != COLUMNS:
        raise CorruptCaptureError(f"{path} has columns {list(df.columns)}, expected {COLUMNS}")
    df.insert(0, "t_s", (df.pop("t_ns") - t0_ns) / 1e9)
    return df
