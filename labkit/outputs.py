"""Where labkit may write: checked before any expensive work, never over what a user has.

Every verb that writes a file or a folder of files checks each output with
:func:`check_output` (through :func:`check_run_output`, :func:`check_file_output` or
:func:`check_dir_output`). The path is first made real: ``..`` and symbolic links are
resolved component by component, from the current folder for a relative path; a part that
does not exist yet is taken lexically, as ``mkdir -p`` would create it (so
``NONEXIST/../RUN/x`` is ``RUN/x``). Then:

* an output inside a run directory (a folder holding ``manifest.json``, or below one) is
  refused: a run is evidence and labkit never adds to it after publishing;
* a symbolic link anywhere in the path as given (the output itself, its folder, or any
  folder above it that the path names; not the current folder's own ancestors) is refused:
  a link can lead into a run or be swapped between the check and the write. The message
  gives the real path to use instead;
* an existing FIFO, socket or device where a file or folder would go is refused (writing
  to it would block or go nowhere);
* an existing file is replaced only with ``force`` (runs are never replaced at all);
* an output that is one of the verb's inputs is refused even with ``force``;
* the folder it goes in must exist or be creatable: its nearest existing ancestor a folder
  where the system lets labkit create a file (tried, not guessed from mode bits).

Writes themselves go through :func:`write_text_atomic`, so a reader never sees half a file;
a write the system refuses (a read-only or virtual file system) is one line too.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from labkit.artifacts import MANIFEST
from labkit.errors import InputError

Kind = Literal["file", "dir", "run"]


def enclosing_run(path: Path) -> Path | None:
    """The run directory that ``path`` is, or is inside; None if neither. ``path`` should be
    real (see :func:`real_path`); a folder that cannot be looked into counts as no run."""
    for d in (Path(path), *Path(path).parents):
        try:
            if stat.S_ISREG(os.stat(d / MANIFEST).st_mode):
                return d
        except OSError:
            continue
    return None


def _kind_of(mode: int) -> str:
    return ("a folder" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else
            "a socket" if stat.S_ISSOCK(mode) else
            "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a special file")


def real_path(path: Path | str, flag: str = "--out", *, allow_symlinks: bool = False) -> Path:
    """``path`` made absolute with ``..`` and symbolic links resolved (see the module
    docstring); a symbolic link on the way is an :class:`InputError` unless
    ``allow_symlinks`` (then it is followed)."""
    given = Path(path)
    try:
        cur = Path("/") if given.is_absolute() else Path(os.getcwd())
    except OSError:
        raise InputError("the current folder no longer exists; cd somewhere real") from None
    parts = given.parts[1:] if given.is_absolute() else given.parts
    for i, part in enumerate(parts):
        if part == "..":
            cur = cur.parent
            continue
        if part in ("", "."):
            continue
        cur = cur / part
        try:
            mode = os.lstat(cur).st_mode
        except (FileNotFoundError, NotADirectoryError):
            continue  # created later (or refused as not creatable), taken lexically
        except OSError as exc:
            raise InputError(f"{flag} {path}: cannot look into {cur.parent} ({exc.strerror}); "
                             f"choose another {flag}") from None
        if stat.S_ISLNK(mode):
            real = Path(os.path.realpath(cur))
            if not allow_symlinks:
                whole = Path(os.path.realpath(os.path.abspath(path)))
                if (run := enclosing_run(whole)) is not None:
                    raise InputError(f"{flag} {path}: {cur} is a symbolic link into the run "
                                     f"{run}; labkit never writes into a run: choose a {flag} "
                                     "outside it")
                what = (f"remove it or choose another {flag}" if i == len(parts) - 1 else
                        f"give the real path {whole}")
                raise InputError(f"{flag} {path}: {cur} is a symbolic link (to {real}); "
                                 f"labkit never writes through one: {what}")
            cur = real
    return cur


def _writable_parent(path: Path, flag: str) -> None:
    d = path.parent
    while not os.path.lexists(d):
        d = d.parent
    if not d.is_dir():
        raise InputError(f"{flag} {path}: {d} is not a folder; choose another {flag}")
    try:  # the system's answer, not the mode bits: root passes those, /proc does not
        with tempfile.TemporaryFile(dir=d):
            pass
    except OSError as exc:
        raise InputError(f"{flag} {path}: {d} is not a writable folder ({exc.strerror}); "
                         f"choose another {flag}") from None


def check_output(path: Path | str, kind: Kind, flag: str = "--out", *,
                 allow_symlinks: bool = False) -> Path:
    """The one path check every writing verb makes (see the module docstring): returns the
    real path of an output that is not in a run, not reached through a symbolic link, not a
    FIFO, socket or device, of the right ``kind`` if it exists, in a creatable writable
    place. Whether an existing file may be replaced is the caller's decision."""
    real = real_path(path, flag, allow_symlinks=allow_symlinks)
    run = enclosing_run(real if kind == "dir" else real.parent)
    if run is not None:
        raise InputError(f"{flag} {real} is inside the run {run}; labkit never writes into a "
                         f"run: choose a {flag} outside it")
    try:
        mode = os.stat(real).st_mode
    except OSError:
        mode = None
    if mode is not None:
        if kind == "run":
            raise InputError(f"{real} already exists; labkit never overwrites a run: choose "
                             f"another {flag} or remove it")
        if kind == "file" and stat.S_ISDIR(mode):
            raise InputError(f"{flag} {real} is a folder; give a file name")
        if kind == "dir" and stat.S_ISREG(mode):
            raise InputError(f"{flag} {real} is a file; give a folder")
        if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            raise InputError(f"{flag} {real} is {_kind_of(mode)}; labkit writes only regular "
                             f"files and folders: choose another {flag}")
    _writable_parent(real / "x" if kind == "dir" else real, flag)
    return real


def check_run_output(path: Path, flag: str = "--out") -> Path:
    """A new run directory's path: absent, not inside a run, in a writable place."""
    return check_output(path, "run", flag)


def check_file_output(path: Path, *, force: bool, inputs: Iterable[Path | str | None] = (),
                      flag: str = "--out") -> Path:
    """A file to write: not a folder, not an input, not inside a run, writable, and new
    unless ``force``. Returns its real path."""
    real = check_output(path, "file", flag)
    for given in inputs:
        if given is not None and Path(os.path.realpath(given)) == real:
            raise InputError(f"{flag} {real} is one of the inputs; labkit never overwrites a "
                             f"capture: choose another {flag}")
    if os.path.lexists(real) and not force:
        raise InputError(f"{real} already exists; pass --force to replace it, or choose "
                         f"another {flag}")
    return real


def check_dir_output(path: Path, flag: str = "--out") -> Path:
    """A folder to write files into: not a file, not inside a run, writable. Returns its
    real path."""
    return check_output(path, "dir", flag)


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder."""
    write_bytes_atomic(path, text.encode("utf-8"))


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror}; choose another place") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise InputError(f"cannot write {path}: {exc.strerror}; choose another "
                             "place") from None
        raise
