"""Tell what kind of capture a loose file is, from its first bytes (for postmortem files)."""

from __future__ import annotations

from pathlib import Path

from labkit.capture.gctrace import EVENTS_MAGIC
from labkit.capture.proc import COLUMNS as PROC_COLUMNS
from labkit.errors import InputError
from labkit.safefile import open_regular

KINDS = ("run", "memray", "speedscope", "dump", "gc", "proc")
_MEMRAY_MAGICS = (b"memray", b"\x04\x22\x4d\x18")  # plain, or compressed as an LZ4 frame


def sniff(path: Path | str) -> str:
    """One of :data:`KINDS`, or :class:`InputError` for a file labkit does not recognise."""
    path = Path(path)
    if path.is_dir():
        return "run"
    with open_regular(path, "capture") as fh:
        head = fh.read(4096)
    text = head.lstrip()
    if text.startswith(b"["):
        return "dump"
    if text.startswith(b"{"):
        return "speedscope"
    if head.startswith(EVENTS_MAGIC):
        return "gc"
    if head.startswith(",".join(PROC_COLUMNS).encode()):
        return "proc"
    if head.startswith(_MEMRAY_MAGICS):
        return "memray"
    raise InputError(
        f"{path} is not a run directory or a capture labkit recognises (a memray .bin, a "
        "py-spy speedscope or dump .json); check the path"
    )
