"""Which program each loose capture came from, so that captures of different programs are
never read as one incident.

A memray capture records its process id; a py-spy profile's threads are named by their OS
thread ids, the main thread's being the process id; a py-spy dump records the pid. Process
samples and GC traces name no process and are left out.
"""

from __future__ import annotations

import copy
from typing import Any

from labkit.safefile import read_json


def program_of(ev: Any) -> dict[str, int]:
    """Capture kind (``memray``, ``pyspy``, ``dump``) -> the pid it was taken from, for the
    captures that say."""
    out: dict[str, int] = {}
    if ev.memray is not None and getattr(ev.memray.metadata, "pid", 0):
        out["memray"] = int(ev.memray.metadata.pid)
    py = ev.pyspy
    if py is not None and py.speedscope_path is not None:
        tids = [int(t) for t in py.samples["thread_id"] if int(t) > 0]
        if tids:
            out["pyspy"] = min(tids)  # the main thread's id is the pid
    if py is not None and py.dump_path is not None:
        doc = read_json(py.dump_path, "py-spy dump")
        pids = {int(t["pid"]) for t in doc if isinstance(t, dict) and t.get("pid")}
        if len(pids) == 1:
            out["dump"] = pids.pop()
    return out


def split_by_program(ev: Any) -> dict[int, tuple[list[str], Any]] | None:
    """When loose captures (not a run directory) come from more than one process: pid ->
    (its capture kinds, an Evidence holding only those); else None."""
    if getattr(ev, "run_dir", None):
        return None
    pids = program_of(ev)
    if len(set(pids.values())) < 2:
        return None
    from labkit.frames.pyspy import PySpyCapture

    out: dict[int, tuple[list[str], Any]] = {}
    for pid in sorted(set(pids.values())):
        kinds = [k for k, p in pids.items() if p == pid]
        sub = copy.copy(ev)
        sub.proc = sub.gc_events = sub.heap = sub.fd_table = sub.origins = None
        sub.memray = ev.memray if "memray" in kinds else None
        has = {k for k in ("pyspy", "dump") if k in pids}
        sub.pyspy = ev.pyspy if has and has <= set(kinds) else None
        if sub.pyspy is None and ("pyspy" in kinds or "dump" in kinds):
            sub.pyspy = PySpyCapture(
                speedscope=ev.pyspy.speedscope_path if "pyspy" in kinds else None,
                dump=ev.pyspy.dump_path if "dump" in kinds else None)
        out[pid] = (kinds, sub)
    return out
