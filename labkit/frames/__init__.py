"""Frames: a run directory's capture files as pandas DataFrames.

:func:`load` checks the manifest (schema, sha256 of every file) and returns a :class:`Run`
whose properties load each backend's files on first use. Every time column is ``t_s``:
seconds since the run's origin, one clock for all backends.

``Run``, ``load`` and ``load_file`` live in :mod:`labkit.frames.run` and are imported from
here on first use, so that importing one of this package's modules (a capture's reader, the
memray worker an export starts first) does not import the run's machinery.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from labkit.frames.run import Run, load, load_file

__all__ = ["Run", "load", "load_file"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from labkit.frames import run

        return getattr(run, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
