"""Reading files a user hands labkit without trusting them: regular files only, bounded.

A path that is a symlink out of a run, a device such as ``/dev/zero`` or a FIFO would make a
reader follow it, read forever or block forever. :func:`open_regular` opens without
following a final symlink and without blocking, then checks what it opened.
"""

from __future__ import annotations

import errno
import gzip
import io
import json
import os
import stat
from pathlib import Path
from typing import Any, BinaryIO

from labkit.errors import CorruptCaptureError, InputError

JSON_MAX_BYTES = 256 * 1024 * 1024
GZIP_MAX_RATIO = 100  # labkit's own captures pack 2-10 times; a bomb expands ~1000 times
GZIP_FLOOR_BYTES = 64 * 1024 * 1024


def open_regular(path: Path | str, what: str = "file", *,
                 follow_symlinks: bool = True) -> BinaryIO:
    """Open ``path`` for reading in binary mode if it is a regular file; otherwise raise a
    one-line :class:`InputError` saying what it is instead."""
    path = Path(path)
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC
    if not follow_symlinks:
        flags |= os.O_NOFOLLOW
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise InputError(f"{what} {path} not found; check the path") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise InputError(f"{what} {path} is a symbolic link; labkit reads only regular "
                             "files inside a run (copy the file in)") from None
        if exc.errno == errno.EISDIR:
            raise InputError(f"{what} {path} is a directory; give a file") from None
        raise InputError(f"{what} {path} is not readable ({exc.strerror}); check the path "
                         "and its permissions") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        kind = "a directory" if stat.S_ISDIR(st.st_mode) else \
            "a FIFO" if stat.S_ISFIFO(st.st_mode) else \
            "a device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) else \
            "a socket" if stat.S_ISSOCK(st.st_mode) else "not a regular file"
        raise InputError(f"{what} {path} is {kind}; give a regular file")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


class _BoundedGzip(io.RawIOBase):
    """Decompresses ``raw`` but refuses to yield more than ``limit`` bytes."""

    def __init__(self, raw: BinaryIO, limit: int, what: str, path: Path) -> None:
        self._raw, self._gz = raw, gzip.GzipFile(fileobj=raw, mode="rb")
        self._left, self._what, self._path, self._limit = limit, what, path, limit

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        data = self._gz.read(min(len(b), self._left + 1))
        if len(data) > self._left:
            raise CorruptCaptureError(
                f"{self._what} {self._path} expands past {self._limit >> 20} MiB "
                f"(over {GZIP_MAX_RATIO} times its size); it is a gzip bomb or not a file "
                "labkit packed: restore the capture")
        self._left -= len(data)
        b[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._gz.close()
            self._raw.close()
        super().close()


def open_capture(path: Path | str, what: str = "file") -> BinaryIO:
    """:func:`open_regular`, decompressing a ``.gz`` path; the decompressed stream may be
    at most ``GZIP_MAX_RATIO`` times the file (and never less than ``GZIP_FLOOR_BYTES``),
    past which reading raises a one-line :class:`CorruptCaptureError`."""
    raw = open_regular(path, what)
    if Path(path).suffix != ".gz":
        return raw
    limit = max(GZIP_FLOOR_BYTES, GZIP_MAX_RATIO * os.fstat(raw.fileno()).st_size)
    return io.BufferedReader(_BoundedGzip(raw, limit, what, Path(path)))  # type: ignore[return-value]


class _NonFinite(ValueError):
    pass


def _no_constant(name: str) -> Any:
    raise _NonFinite(name)


def read_json(path: Path | str, what: str, *, max_bytes: int = JSON_MAX_BYTES,
              follow_symlinks: bool = True) -> Any:
    """Parse a JSON file strictly: a regular file, at most ``max_bytes``, no ``NaN`` or
    ``Infinity``, not nested past what the parser can take. Any failure is one line."""
    with open_regular(path, what, follow_symlinks=follow_symlinks) as fh:
        if os.fstat(fh.fileno()).st_size > max_bytes:
            raise CorruptCaptureError(f"{what} {path} is larger than {max_bytes >> 20} MiB; "
                                      "it is not a capture labkit wrote")
        raw = fh.read()
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_no_constant)
    except _NonFinite as exc:
        raise CorruptCaptureError(f"{what} {path} holds a non-finite number ({exc}); it is "
                                  "damaged or not a capture labkit reads") from None
    except (ValueError, UnicodeDecodeError):
        raise CorruptCaptureError(f"{what} {path} is not valid JSON; it is damaged or not a "
                                  "capture labkit reads") from None
    except RecursionError:
        raise CorruptCaptureError(f"{what} {path} is nested too deeply to be a capture; it "
                                  "is damaged or hostile") from None
