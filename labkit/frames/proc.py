"""Process sampler file -> DataFrame ``proc``: ``t_s``, ``rss_bytes``, ``threads``, ``fds``,
``cpu_percent``, ``children``."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from labkit.capture.proc import COLUMNS
from labkit.frames.csvfile import read_csv_checked


def load_proc(path: Path, t0_ns: int) -> pd.DataFrame:
    """Samples of the process (and its children) over time, from ``proc.csv`` (or ``.gz``)."""
    dtypes = {c: ("float64" if c == "cpu_percent" else "int64") for c in COLUMNS}
    df = read_csv_checked(path, COLUMNS, "labkit process sample file", dtype=dtypes,
                          exact=True)
    df.insert(0, "t_s", (df.pop("t_ns") - t0_ns) / 1e9)
    return df
