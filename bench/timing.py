"""What the benchmarks share: timing one command in a fresh process tree."""

from __future__ import annotations

import os
import subprocess
import time


def timed(argv: list[str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (bytes: the largest process in its tree, from ``wait4``)
    of one command; a failing command stops the benchmark with its last stderr."""
    t = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    err = proc.stderr.read() if proc.stderr is not None else b""
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {argv[:5]}: {err.decode(errors='replace')[-400:]}")
    return wall, usage.ru_maxrss * 1024
