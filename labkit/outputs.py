"""Where labkit may write: checked before any expensive work, never over what a user has.

Contract for every verb that writes a file or a folder of files:

* an output inside a run directory (a folder holding ``manifest.json``, or below one) is
  refused: a run is evidence and labkit never adds to it after publishing;
* an existing file is replaced only with ``force`` (runs are never replaced at all);
* an output that is one of the verb's inputs is refused even with ``force``;
* the folder it goes in must exist or be creatable, and be writable.

Writes themselves go through :func:`write_text_atomic`, so a reader never sees half a file.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from labkit.artifacts import MANIFEST
from labkit.errors import InputError


def enclosing_run(path: Path) -> Path | None:
    """The run directory that ``path`` is, or is inside; None if neither."""
    for d in (Path(path).absolute(), *Path(path).absolute().parents):
        if (d / MANIFEST).is_file():
            return d
    return None


def _writable_parent(path: Path, flag: str) -> None:
    d = path.parent
    while not d.exists():
        d = d.parent
    if not d.is_dir() or not os.access(d, os.W_OK | os.X_OK):
        raise InputError(f"{flag} {path}: {d} is not a writable folder; choose another {flag}")


def check_run_output(path: Path, flag: str = "--out") -> Path:
    """A new run directory's path: absent, not inside a run, in a writable place."""
    path = Path(path).absolute()
    run = enclosing_run(path.parent)
    if run is not None:
        raise InputError(f"{flag} {path} is inside the run {run}; labkit never writes into a "
                         f"run: choose a {flag} outside it")
    if path.exists() or path.is_symlink():
        raise InputError(f"{path} already exists; labkit never overwrites a run: choose another "
                         f"{flag} or remove it")
    _writable_parent(path, flag)
    return path


def check_file_output(path: Path, *, force: bool, inputs: Iterable[Path | str | None] = (),
                      flag: str = "--out") -> Path:
    """A file to write: not a folder, not an input, not inside a run, writable, and new
    unless ``force``. Returns it as an absolute path."""
    path = Path(path).absolute()
    if path.is_dir():
        raise InputError(f"{flag} {path} is a folder; give a file name")
    for given in inputs:
        if given is not None and Path(given).absolute().resolve() == path.resolve():
            raise InputError(f"{flag} {path} is one of the inputs; labkit never overwrites a "
                             f"capture: choose another {flag}")
    run = enclosing_run(path.parent)
    if run is not None:
        raise InputError(f"{flag} {path} is inside the run {run}; labkit never writes into a "
                         f"run: choose a {flag} outside it")
    if (path.exists() or path.is_symlink()) and not force:
        raise InputError(f"{path} already exists; pass --force to replace it, or choose "
                         f"another {flag}")
    _writable_parent(path, flag)
    return path


def check_dir_output(path: Path, flag: str = "--out") -> Path:
    """A folder to write files into: not a file, not inside a run, writable."""
    path = Path(path).absolute()
    if path.exists() and not path.is_dir():
        raise InputError(f"{flag} {path} is a file; give a folder")
    run = enclosing_run(path)
    if run is not None:
        raise InputError(f"{flag} {path} is inside the run {run}; labkit never writes into a "
                         f"run: choose a {flag} outside it")
    _writable_parent(path / "x", flag)
    return path


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder."""
    write_bytes_atomic(path, text.encode("utf-8"))


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
