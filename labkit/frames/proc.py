"""Process sampler file -> DataFrame ``proc``: ``t_s``, ``rss_bytes``, ``threads``, ``fds``,
``cpu_percent``, ``children``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from labkit.capture.proc import COLUMNS
from labkit.errors import CorruptCaptureError
from labkit.frames.csvfile import check_non_negative, read_csv_checked


def load_proc(path: Path, t0_ns: int) -> pd.DataFrame:
    """Samples of the process (and its children) over time, from ``proc.csv`` (or ``.gz``)."""
    dtypes = {c: ("float64" if c == "cpu_percent" else "int64") for c in COLUMNS}
    df = read_csv_checked(path, COLUMNS, "labkit process sample file", dtype=dtypes,
                          exact=True)
    check_non_negative(df, path, ("t_ns", "rss_bytes", "threads", "fds", "children"))
    if len(df) and not bool(np.isfinite(df["cpu_percent"]).all()):
        raise CorruptCaptureError(f"{path} holds a cpu_percent that is not a finite number; "
                                  "the file is damaged: re-capture the run")
    df.insert(0, "t_s", (df.pop("t_ns") - t0_ns) / 1e9)
    return df


def _where(kind: str, target: str, endpoint: str) -> str:
    """What a descriptor points at, coarse enough to group a leak: a socket by its protocol
    and peer (``tcp sockets to 10.0.0.5:443``), a file by its folder, pipes as ``pipes``."""
    if kind == "socket":
        proto, _, rest = endpoint.partition(" ")
        if " -> " in rest:
            local, peer = rest.split(" -> ", 1)
            peer = peer.split(" ")[0]
            if peer.endswith(":0"):  # not connected: listening or bound
                return f"{proto} sockets bound at {local}"
            return f"{proto} sockets to {peer}"
        if proto == "unix":
            return f"unix sockets {rest}".rstrip()
        return "sockets never connected"
    if kind == "file":
        return f"files in {Path(target).parent}/"
    if kind in ("pipe", "device"):
        return f"{kind}s"
    return f"{target.split(':')[0]} descriptors"


def load_fd_table(path: Path) -> pd.DataFrame:
    """``proc_fds.json``: the descriptor table when the most were open, one row per fd:
    ``fd``, ``kind`` (file, socket, pipe, device, other), ``target``, ``endpoint`` (a
    socket's protocol and addresses), ``where`` (what to group a leak by)."""
    from labkit.frames.origins import fd_kind
    from labkit.safefile import read_json
    from labkit.schemas import check

    doc = read_json(path, "descriptor table")
    if not isinstance(doc, dict):
        raise CorruptCaptureError(f"{path} is not a labkit descriptor table; re-capture "
                                  "with --proc")
    check(doc, "proc_fds", path, "descriptor table", "re-capture with --proc")
    try:
        rows = [(int(f["fd"]), fd_kind(str(f["target"])), str(f["target"]),
                 str(f.get("endpoint", ""))) for f in doc["fds"]]
    except (KeyError, TypeError, ValueError, AttributeError):
        raise CorruptCaptureError(f"{path} is not a labkit descriptor table; re-capture "
                                  "with --proc") from None
    df = pd.DataFrame(rows, columns=["fd", "kind", "target", "endpoint"])
    df["where"] = [_where(k, t, e) for k, t, e in zip(df.kind, df.target, df.endpoint,
                                                        strict=True)]
    return df.astype({"fd": "int64"})
