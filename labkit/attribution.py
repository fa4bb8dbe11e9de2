"""Whose code is a frame? The first frame in the user's own code is where a finding points.

A frame is *not* the user's when its file is in the standard library, in installed
packages (``site-packages``, ``dist-packages``), frozen (``<frozen ...>``), or labkit's own.
The rules read the path only, so they hold for captures made on another machine or by
another interpreter. ``focus``/``ignore`` regular expressions (as in pprof) adjust them:
a frame whose file or function matches ``ignore`` is never the user's; with ``focus``,
only matching frames are.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

Frame = tuple[str, int, str]  # file, line, function

_LAB_PROGRAMS = re.compile(r"/labkit/scenarios/(?!base\.py$|measure\.py$)")  # the lab's "user"
_NOT_USER = re.compile(
    r"(^<frozen |^<built-in|/lib/python3\.\d+/|/lib/pypy3|site-packages/|dist-packages/"
    r"|/labkit/(capture|frames|scenarios/base\.py|scenarios/measure\.py)|runpy\.py$)")


@dataclass(frozen=True)
class Attribution:
    """How to pick a user frame: the built-in rules plus optional regexes."""

    focus: re.Pattern[str] | None = None
    ignore: re.Pattern[str] | None = None

    def is_user(self, frame: Frame) -> bool:
        """Whether ``frame`` is in the user's own code."""
        file, _line, func = frame
        text = f"{file}:{func}"
        if self.ignore is not None and self.ignore.search(text):
            return False
        if self.focus is not None:
            return bool(self.focus.search(text))
        path = file.replace("\\", "/")
        return bool(_LAB_PROGRAMS.search(path)) or not _NOT_USER.search(path)

    def user_frame(self, stack: Sequence[Frame]) -> Frame | None:
        """The innermost user frame of ``stack`` (innermost first), or None."""
        return next((f for f in stack if self.is_user(f)), None)


DEFAULT = Attribution()


def attribution(focus: str | None = None, ignore: str | None = None) -> Attribution:
    """An :class:`Attribution` from pprof-style ``--focus``/``--ignore`` expressions."""
    return Attribution(re.compile(focus) if focus else None,
                       re.compile(ignore) if ignore else None)
