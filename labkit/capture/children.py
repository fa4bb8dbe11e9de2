"""Child-process hygiene: a child dies with its parent, and the parent's signals reach it."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import threading
from collections.abc import Iterator
from typing import Any

_FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
_PR_SET_PDEATHSIG = 1


def set_pdeathsig() -> None:
    """``preexec_fn``: the child gets SIGKILL when its parent dies (Linux)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _terminal_delivers_sigint() -> bool:
    for fd in (0, 1, 2):
        try:
            return os.tcgetpgrp(fd) == os.getpgrp()
        except OSError:
            continue
    return False


@contextlib.contextmanager
def forward_signals(child: subprocess.Popen) -> Iterator[list[int]]:
    """Forward labkit's signals to ``child`` while inside; yields the signals received."""
    received: list[int] = []
    skip_int = _terminal_delivers_sigint()

    def handler(signum: int, frame: Any) -> None:
        received.append(signum)
        if signum == signal.SIGINT and skip_int:
            return
        with contextlib.suppress(ProcessLookupError):
            child.send_signal(signum)

    if threading.current_thread() is not threading.main_thread():
        yield received
        return
    saved = {s: signal.signal(s, handler) for s in _FORWARDED}
    try:
        yield received
    finally:
        for s, h in saved.items():
            signal.signal(s, h)
