"""Whose code is a frame? The first frame in the user's own code is where a finding points.

A frame is *not* the user's when its file is in the standard library, in installed
packages (``site-packages``, ``dist-packages``), not a file at all (``<frozen ...>``,
``<string>``: generated code such as a dataclass's ``__init__``), or labkit's own.
The rules read the path only, so they hold for captures made on another machine or by
another interpreter. ``focus``/``ignore`` regular expressions (as in pprof) adjust them:
a frame whose file or function matches ``ignore`` is never the user's; with ``focus``,
only matching frames are.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from labkit.stacks import (
    Frame,
    is_generated,
    is_lab_program,
    is_labkit_internal,
    is_stdlib,
    package_of,
)

_COMPREHENSIONS = ("<listcomp>", "<dictcomp>", "<setcomp>", "<genexpr>")
_CONSTRUCTORS = ("__init__", "__new__", "__post_init__")
_JUDGED_MAX = 1 << 16  # stacks an Attribution remembers before it starts afresh
_UNJUDGED = object()


@dataclass(frozen=True)
class Attribution:
    """How to pick a user frame: the built-in rules plus optional regexes."""

    focus: re.Pattern[str] | None = None
    ignore: re.Pattern[str] | None = None
    # each stack's user frame, by the stack (a tuple); its own, so that a lookup hashes
    # the stack alone (an lru_cache keyed on self too hashed this dataclass in Python)
    _judged: dict[tuple[Frame, ...], Frame | None] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False)

    def is_user(self, frame: Frame) -> bool:
        """Whether ``frame`` is in the user's own code."""
        return _is_user(frame[0], frame[2], self.focus, self.ignore)

    def user_frame(self, stack: Sequence[Frame]) -> Frame | None:
        """The innermost user frame of ``stack`` (see :meth:`_user_frame`); cached for
        stacks given as tuples."""
        if not isinstance(stack, tuple):
            return self._user_frame(stack)
        judged = self._judged
        got = judged.get(stack, _UNJUDGED)
        if got is _UNJUDGED:
            if len(judged) >= _JUDGED_MAX:
                judged.clear()
            got = judged[stack] = self._user_frame(stack)
        return got

    def _user_frame(self, stack: Sequence[Frame]) -> Frame | None:
        """The innermost user frame of ``stack`` (innermost first), or None.

        Two frames point past themselves: a comprehension's (3.11 gives them their own) is
        named after the function it is written in, at the comprehension's line; and a
        constructor's (``__init__``, ``__new__``, ``__post_init__``) is the line that
        constructs the object, when that line is the user's too: what an object holds is
        its shape, how many are made and kept is the caller's doing."""
        for i, f in enumerate(stack):
            if not self.is_user(f):
                continue
            caller = stack[i + 1] if i + 1 < len(stack) else None
            if caller is None:
                return f
            if f[2] in _COMPREHENSIONS and caller[0] == f[0]:
                return Frame(f[0], f[1], caller[2])
            if f[2].rsplit(".", 1)[-1] in _CONSTRUCTORS and self.is_user(caller):
                return self.user_frame(stack[i + 1:])
            return f
        return None


@functools.lru_cache(maxsize=1 << 16)
def _is_user(file: str, func: str, focus: re.Pattern[str] | None,
             ignore: re.Pattern[str] | None) -> bool:
    text = f"{file}:{func}"
    if ignore is not None and ignore.search(text):
        return False
    if focus is not None:
        return bool(focus.search(text))
    path = file.replace("\\", "/")
    return is_lab_program(path) or not (is_generated(path) or is_stdlib(path)
                                        or package_of(path) is not None
                                        or is_labkit_internal(path))


DEFAULT = Attribution()


def attribution(focus: str | None = None, ignore: str | None = None) -> Attribution:
    """An :class:`Attribution` from pprof-style ``--focus``/``--ignore`` expressions."""
    return Attribution(re.compile(focus) if focus else None,
                       re.compile(ignore) if ignore else None)
