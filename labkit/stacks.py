"""One model of a call stack, for every loader, analysis and face.

A :class:`Frame` is ``(file, line, function)``; a stack is a sequence of frames, innermost
first. The predicates here classify a frame by its file path alone, so they hold for
captures made on another machine or by another interpreter:

* :func:`is_agent`: labkit's in-process agent (tracer, bootstrap, origins wrappers) and
  runpy, which every loader hides from every view;
* :func:`is_generated`: not a file (``<frozen ...>``, ``<string>``, a dataclass's
  generated ``__init__``);
* :func:`is_stdlib`: the standard library;
* :func:`package_of`: the installed package (its top-level import name) a file belongs to;
* :func:`is_labkit_internal`: labkit's own machinery (capture, frames, the scenarios' base);
* :func:`is_lab_program`: the lab's scenario programs, which play the user's code;
* :func:`is_import_time`: a stack that is importing a module;
* :func:`is_waiting`: a stack whose innermost frame blocks (a lock, a socket, select);
* :func:`in_package_path` and :func:`shared_object_of`: where a file sits in its
  ``site-packages`` and which shared object a native frame is in.

Which frame is *the user's* is decided by :mod:`labkit.attribution` from these.
:func:`stack_text` writes a stack the one way every face shows it.
"""

from __future__ import annotations

import functools
import operator
import re
from collections.abc import Iterable, Sequence
from typing import NamedTuple


class Frame(NamedTuple):
    """One frame of a stack."""

    file: str
    line: int
    function: str


AGENT_FILES = ("labkit/capture/gctrace.py", "labkit/capture/bootstrap.py",
               "labkit/capture/origins.py", "<frozen runpy>", "/runpy.py",
               "labkit/capture/heapsnap.py", "labkit/capture/gccallback.py",
               "labkit/capture/gcsys.py")
TRACER_FILE = AGENT_FILES[0]  # an allocation made here is the GC tracer's own
SNAPSHOT_FILE = AGENT_FILES[-1]  # ... and here, the heap snapshot's

_STDLIB = re.compile(r"/lib/python3\.\d+/|/lib/pypy3|runpy\.py$")
_PACKAGE = re.compile(r"(?:site|dist)-packages/([^/]+)")
_LABKIT_INTERNAL = re.compile(r"/labkit/(capture|frames|scenarios/base\.py|scenarios/measure\.py)")
_LAB_PROGRAMS = re.compile(r"/labkit/scenarios/(?!base\.py$|measure\.py$)")


def _posix(file: str) -> str:
    return file.replace("\\", "/")


def is_agent(file: str) -> bool:
    """labkit's in-process agent or runpy: hidden from every view of a capture."""
    return file.endswith(AGENT_FILES)


def is_generated(file: str) -> bool:
    """Not a file: frozen modules, ``<string>``, generated code, ``module '...'``."""
    return file.startswith(("<", "module '"))


def is_stdlib(file: str) -> bool:
    """In the standard library (an installed package is not: see :func:`package_of`)."""
    path = _posix(file)
    return bool(_STDLIB.search(path)) and package_of(path) is None


@functools.lru_cache(maxsize=1 << 14)
def package_of(file: str) -> str | None:
    """The top-level import name of the installed package ``file`` is in (``aiohttp`` for
    ``.../site-packages/aiohttp/cookiejar.py``, ``six`` for ``.../site-packages/six.py``,
    ``ujson`` for ``.../site-packages/ujson.cpython-311-x86_64-linux-gnu.so``),
    or None for a file outside ``site-packages``/``dist-packages``."""
    m = _PACKAGE.search(_posix(file))
    if m is None:
        return None
    name = m.group(1)
    if re.search(r"\.(?:so|pyd|dylib)$", name):  # one-file compiled module
        return name.split(".", 1)[0]
    return name[:-3] if name.endswith(".py") else name


def is_labkit_internal(file: str) -> bool:
    """labkit's own machinery, never a suspect."""
    return bool(_LABKIT_INTERNAL.search(_posix(file)))


def is_lab_program(file: str) -> bool:
    """One of the lab's scenario programs (the code a learner is shown as theirs)."""
    return bool(_LAB_PROGRAMS.search(_posix(file)))


def is_import_time(frames: Iterable[tuple[str, int, str]]) -> bool:
    """Whether a stack is importing a module (importlib's frames are in it)."""
    return any(map(_is_importlib, map(_FILE, frames)))  # C-level, per stack


@functools.lru_cache(maxsize=1 << 16)
def _is_importlib(file: str) -> bool:
    """Whether ``file`` is importlib's (each file name matched once)."""
    return _IMPORTLIB_FILE(file) is not None


_IMPORTLIB_FILE = re.compile("<frozen importlib").match
_FILE = operator.itemgetter(0)


# the standard library's calls that block a thread: a sample whose innermost frame is one of
# these is waiting (on a lock, a socket, a child, a timer), whatever py-spy called it
_WAITING = re.compile(
    r"(?:^|\.)(?:wait|_wait_for_tstate_lock|join|acquire|sleep|select|poll|epoll|kqueue|"
    r"readinto|recv|recv_into|recvfrom|recvmsg|accept|read|readline|_recv|_recv_bytes|"
    r"_poll|_communicate|_try_wait|do_handshake|getaddrinfo|_real_close)$")
_WAIT_FILES = re.compile(r"(?:^|/)(?:threading|socket|selectors|queue|ssl|subprocess|"
                         r"connection|popen_fork|synchronize|base_events|selector_events|"
                         r"time|select)\.py$")


def is_waiting(frames: Sequence[tuple[str, int, str]]) -> bool:
    """Whether a stack (innermost first) is blocked rather than running: its innermost
    frame is a standard-library call that waits (``Condition.wait``, ``Thread.join``,
    ``SocketIO.readinto``, ``select``...). Such samples are wall-clock time, not CPU."""
    if not frames:
        return False
    file, _line, function = frames[0]
    path = _posix(file)
    return bool(_WAITING.search(function)) and (is_stdlib(path) or is_generated(path)) \
        and bool(_WAIT_FILES.search(path) or is_generated(path))


def in_package_path(file: str) -> str:
    """``file`` from its ``site-packages`` on (``aiohttp/cookiejar.py``), or its name."""
    path = _posix(file)
    m = _PACKAGE.search(path)
    return path[m.start(1):] if m else path.rsplit("/", 1)[-1]


def shared_object_of(file: str) -> str | None:
    """The shared object a native frame's file names (``.../_foo.cpython-311.so``,
    ``libz.so.1``), or None for a source file or a Python file."""
    name = _posix(file).rsplit("/", 1)[-1]
    return file if re.search(r"\.so(?:\.\d+)*$|\.dylib$|\.pyd$", name) else None


@functools.lru_cache(maxsize=1 << 16)
def frame_text(function: str, file: str, line: int) -> str:
    """``function (file.py:line)``."""
    return f"{function} ({file.rsplit('/', 1)[-1]}:{line})"


def stack_text(frames: Iterable[tuple[str, int, str]]) -> str:
    """A stack, innermost first, as ``fn (file.py:12) < caller (main.py:3) < ...``."""
    return " < ".join(frame_text(fn, file, line) for file, line, fn in frames)
