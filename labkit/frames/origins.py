"""``origins.json`` -> ``threads``, ``tasks`` and ``fds`` frames: who created what is still
alive.

``threads``: one row per thread the program started: ``name``, ``alive`` (at the end of
the run), ``t_s``, ``function``/``file``/``line`` (the first frame in the user's code, see
:mod:`labkit.attribution`; empty when none is), ``stack`` (innermost first, the agent's
frames removed) and ``frames`` (the same as ``(file, line, function)`` tuples).
``tasks``: the same for each asyncio task not yet done at the end, ``name`` being its
coroutine's. ``fds``: one row per descriptor open at the end: ``fd``, ``kind`` (file, socket, pipe,
device, other), ``target``, and the same code columns for the call that opened it (empty
when it was open before the program ran or opened by a call the agent does not wrap).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from labkit.attribution import DEFAULT, Attribution, Frame
from labkit.errors import CorruptCaptureError
from labkit.safefile import read_json

CODE_COLUMNS = ("function", "file", "line", "stack", "frames")
_TEXT = {"function": "string", "file": "string", "stack": "string"}
_AGENT = ("labkit/capture/bootstrap.py", "labkit/capture/origins.py", "runpy.py",
          "<frozen runpy>")


def _stacks(doc: dict[str, Any], path: Path) -> list[list[Frame]]:
    try:
        return [[(str(f), int(ln), str(fn)) for f, ln, fn in st
                 if not str(f).endswith(_AGENT)] for st in doc["stacks"]]
    except (KeyError, TypeError, ValueError, OverflowError):
        raise CorruptCaptureError(f"{path} is not a labkit origins file; re-capture the run") \
            from None


def _code(stacks: list[list[Frame]], i: Any,
          how: Attribution) -> tuple[str, str, int, str, tuple[Frame, ...]]:
    if not isinstance(i, int) or not 0 <= i < len(stacks):
        return "", "", 0, "", ()
    st = stacks[i]
    user = how.user_frame(st) or ("", 0, "")  # none: library code acting on its own
    text = " < ".join(f"{fn} ({Path(f).name}:{ln})" for f, ln, fn in st)
    return user[2], user[0], user[1], text, tuple(st)


def fd_kind(target: str) -> str:
    """``socket``, ``pipe``, ``device``, ``file`` or ``other``, from a ``/proc`` link."""
    if target.startswith("socket:"):
        return "socket"
    if target.startswith("pipe:"):
        return "pipe"
    if target.startswith("/dev/"):
        return "device"
    if target.startswith("/"):
        return "file"
    return "other"


@dataclass
class OriginsCapture:
    """The loaded record: ``threads``, ``fds`` and ``tasks`` at the end of the run, as
    described in the module docstring, and ``threads_at_peak``/``fds_at_peak``/
    ``tasks_at_peak``: the same when the most threads (descriptors, pending tasks) were
    alive (open), which is where a leak cleaned up before exit still shows."""

    threads: pd.DataFrame
    fds: pd.DataFrame
    threads_at_peak: pd.DataFrame
    fds_at_peak: pd.DataFrame
    tasks: pd.DataFrame
    tasks_at_peak: pd.DataFrame


def load_origins(path: Path, t0_ns: int = 0, how: Attribution = DEFAULT) -> OriginsCapture:
    """Load ``origins.json``; a malformed file is a one-line :class:`CorruptCaptureError`."""
    from labkit.schemas import check

    doc = read_json(path, "origins file")
    if not isinstance(doc, dict):
        raise CorruptCaptureError(f"{path} is not a labkit origins file; re-capture the run")
    check(doc, "origins", path, "origins file", "re-capture the run")
    stacks = _stacks(doc, path)

    def threads(rows: Any) -> pd.DataFrame:
        return pd.DataFrame(
            [(str(t["name"]), bool(t["alive"]), (int(t["t_ns"]) - t0_ns) / 1e9,
              *_code(stacks, t["stack"], how)) for t in rows],
            columns=["name", "alive", "t_s", *CODE_COLUMNS]).astype(
                {"alive": bool, "line": "int64", "t_s": "float64", "name": "string",
                 **_TEXT})

    def fds(rows: Any) -> pd.DataFrame:
        return pd.DataFrame(
            [(int(f["fd"]), fd_kind(str(f["target"])), str(f["target"]),
              *_code(stacks, f["stack"], how)) for f in rows],
            columns=["fd", "kind", "target", *CODE_COLUMNS]).astype(
                {"fd": "int64", "line": "int64", "kind": "string", "target": "string",
                 **_TEXT})

    try:
        return OriginsCapture(threads(doc["threads"]), fds(doc["fds"]),
                              threads(doc.get("threads_at_peak", doc["threads"])),
                              fds(doc.get("fds_at_peak", doc["fds"])),
                              threads(doc.get("tasks", [])),
                              threads(doc.get("tasks_at_peak", doc.get("tasks", []))))
    except (KeyError, TypeError, ValueError, OverflowError, AttributeError):
        raise CorruptCaptureError(f"{path} is not a labkit origins file; re-capture the run") \
            from None
