"""Progress on long work: the phase named, and a bar where someone is watching.

``with progress(n, "what") as p: ... p.step("running leaky")`` reports phase i of n. It
shows on a terminal (stderr is a TTY) as one line rewritten in place, in a notebook kernel
as a progress bar updated in place, and nowhere else: not when stderr is piped or a file,
not while labkit renders a report (``LABKIT_REPORT``, see :mod:`labkit.notebook`). Work
nested in other work (a scenario's runs inside ``labkit signatures``) names its phase under
the outer one, on the same line or bar.
"""

from __future__ import annotations

import contextlib
import html
import os
import sys
import time
from collections.abc import Iterator
from typing import Any

REPORT_ENV = "LABKIT_REPORT"
_active: list[Progress] = []


def where() -> str | None:
    """``"notebook"``, ``"tty"`` or None: where progress would show now."""
    if os.environ.get(REPORT_ENV):
        return None
    ip = sys.modules.get("IPython")
    shell = ip.get_ipython() if ip is not None and hasattr(ip, "get_ipython") else None
    if shell is not None and getattr(shell, "kernel", None) is not None:
        return "notebook"
    try:
        return "tty" if sys.stderr.isatty() else None
    except (AttributeError, ValueError):
        return None


class Progress:
    """Phase ``i`` of ``total`` of ``what``; see the module docstring."""

    def __init__(self, total: int, what: str) -> None:
        self.total, self.what, self.i, self.phase = max(1, total), what, 0, ""
        self.t0 = time.monotonic()
        self.sink = where()
        self._handle: Any = None

    def step(self, phase: str) -> None:
        """Start the next phase, named ``phase``."""
        self.i = min(self.i + 1, self.total)
        self.phase = phase
        _draw()

    def line(self) -> str:
        """``what i/n: phase``."""
        return f"{self.what} {self.i}/{self.total}: {self.phase}"


def _draw() -> None:
    top = _active[0] if _active else None
    if top is None or top.sink is None:
        return
    text = " › ".join(p.line() for p in _active)
    if top.sink == "tty":
        width = 24
        filled = int(width * (top.i - 1 + (_active[-1].i / _active[-1].total
                                            if len(_active) > 1 else 0)) / top.total)
        sys.stderr.write(f"\r\x1b[K[{'#' * filled}{'.' * (width - filled)}] {text}"[:300])
        sys.stderr.flush()
    else:
        from IPython.display import HTML, display

        bar = (f'<progress value="{top.i}" max="{top.total}" style="width:14em"></progress> '
               f"<code>{html.escape(text)}</code> "
               f"<small>{time.monotonic() - top.t0:.0f} s</small>")
        if top._handle is None:
            top._handle = display(HTML(bar), display_id=True)
        else:
            top._handle.update(HTML(bar))


def clear() -> None:
    """Rub out the terminal's progress line, so a line printed next starts clean (the next
    step draws it again)."""
    if _active and _active[0].sink == "tty":
        sys.stderr.write("\r\x1b[K")
        sys.stderr.flush()


@contextlib.contextmanager
def progress(total: int, what: str) -> Iterator[Progress]:
    """Report ``total`` phases of ``what`` while the block runs; cleared at its end."""
    p = Progress(total, what)
    _active.append(p)
    try:
        yield p
    finally:
        _active.remove(p)
        if not _active and p.sink == "tty":
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()
        elif not _active and p.sink == "notebook" and p._handle is not None:
            from IPython.display import HTML

            p._handle.update(HTML(f"<small>{html.escape(what)}: {p.total} step(s) done in "
                                  f"{time.monotonic() - p.t0:.0f} s</small>"))
        elif _active:
            _draw()
