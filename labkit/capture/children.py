"""Child-process hygiene: a child dies with its parent, the parent's signals reach it, and a
child in a process group of its own gets the terminal as a shell would give it."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

_FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
_PR_SET_PDEATHSIG = 1


def set_pdeathsig() -> None:
    """``preexec_fn``: the child gets SIGKILL when its parent dies (Linux)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def terminal_fd() -> int | None:
    """A descriptor of labkit's controlling terminal, or None."""
    for fd in (0, 1, 2):
        try:
            os.tcgetpgrp(fd)
            return fd
        except OSError:
            continue
    return None


def in_foreground(fd: int | None) -> bool:
    """Whether labkit's process group is the foreground group of the terminal on ``fd``."""
    try:
        return fd is not None and os.tcgetpgrp(fd) == os.getpgrp()
    except OSError:
        return False


def hand_terminal(fd: int, pgid: int) -> None:
    """Make ``pgid`` the terminal's foreground group (as a shell does for a job); SIGTTOU is
    blocked meanwhile, so a caller in the background may do it too."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTTOU})
    try:
        with contextlib.suppress(OSError):
            os.tcsetpgrp(fd, pgid)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


@contextlib.contextmanager
def forward_signals(send: Callable[[int], None]) -> Iterator[list[int]]:
    """Pass labkit's signals to ``send`` while inside; yields the signals received."""
    received: list[int] = []

    def handler(signum: int, frame: Any) -> None:
        received.append(signum)
        with contextlib.suppress(ProcessLookupError):
            send(signum)

    if threading.current_thread() is not threading.main_thread():
        yield received
        return
    saved = {s: signal.signal(s, handler) for s in _FORWARDED}
    try:
        yield received
    finally:
        for s, h in saved.items():
            signal.signal(s, h)
