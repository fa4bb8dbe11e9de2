"""Reading labkit's CSV capture files (plain or gzipped) with one error contract."""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Any

import pandas as pd

from labkit.errors import CorruptCaptureError
from labkit.safefile import open_capture


def read_csv_checked(path: Path, columns: tuple[str, ...], what: str, *,
                     dtype: Any = None, exact: bool = False) -> pd.DataFrame:
    """Read ``path``; any parse, type or decompression failure, or a missing column (any
    other column too, with ``exact``), is a one-line :class:`CorruptCaptureError`."""
    try:
        with open_capture(path, what) as fh:
            df = pd.read_csv(fh, dtype=dtype, engine="c")
    except FileNotFoundError:
        raise CorruptCaptureError(f"{path} is missing; re-capture the run") from None
    except (ValueError, OverflowError, pd.errors.ParserError, pd.errors.EmptyDataError,
            OSError, EOFError, zlib.error) as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise CorruptCaptureError(f"{path} is not a {what} ({first}); re-capture the run") \
            from None
    if (tuple(df.columns) != columns) if exact else any(c not in df.columns for c in columns):
        raise CorruptCaptureError(f"{path} has columns {list(df.columns)}, expected "
                                  f"{list(columns)}; re-capture the run")
    return df


def check_non_negative(df: pd.DataFrame, path: Path, columns: tuple[str, ...]) -> None:
    """A one-line :class:`CorruptCaptureError` if any of ``columns`` (times, counts, sizes)
    holds a negative value: no sampler writes one, and a time below zero could overflow."""
    for c in columns:
        if c in df.columns and len(df) and bool((df[c] < 0).any()):
            raise CorruptCaptureError(f"{path} holds a negative {c} (row "
                                      f"{int((df[c] < 0).argmax())}); the file is damaged: "
                                      "re-capture the run")
