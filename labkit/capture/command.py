"""The program labkit is asked to capture: ``python [OPTS] (PROG|-m MOD|-c CODE) [ARGS]``,
split into its parts and checked before anything runs."""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from labkit.errors import InputError, UsageError


@dataclass
class PythonCommand:
    """``python [OPTS] (PROG|-m MOD|-c CODE) [ARGS]``, split into its parts."""

    python: str
    options: list[str]
    target: list[str]

    @property
    def label(self) -> str:
        """A short name for the run directory."""
        if self.target[0] == "-m":
            return self.target[1].rsplit(".", 1)[-1]
        if self.target[0] == "-c":
            return "code"
        return Path(self.target[0]).stem


def parse_python_command(cmd: Sequence[str]) -> PythonCommand:
    """Split and check a command; raise :class:`UsageError`/:class:`InputError` if unusable."""
    cmd = list(cmd)
    if not cmd:
        raise UsageError("no program given; usage: labkit gctrace -- python PROG [ARGS]")
    python = cmd[0]
    if shutil.which(python) is None:
        if os.path.islink(python) and not os.path.exists(python):
            raise InputError(f"{python} links to {os.path.realpath(python)}, which is gone: "
                             "its venv's base Python was moved or deleted; recreate the venv")
        raise InputError(f"{python!r} is not an executable; give a Python interpreter after --")
    if "python" not in Path(python).name and "pypy" not in Path(python).name:
        raise UsageError(
            f"{python!r} does not look like a Python interpreter; usage: -- python PROG [ARGS]"
        )
    i = 1
    options: list[str] = []
    while i < len(cmd) and cmd[i].startswith("-") and cmd[i] not in ("-m", "-c", "-"):
        options.append(cmd[i])
        if cmd[i] in ("-X", "-W") and i + 1 < len(cmd):
            options.append(cmd[i + 1])
            i += 1
        i += 1
    rest = cmd[i:]
    if not rest:
        raise UsageError("no program given after the interpreter; add PROG, -m MODULE or -c CODE")
    if rest[0] in ("-m", "-c"):
        if len(rest) < 2:
            raise UsageError(f"{rest[0]} needs an argument")
    elif rest[0] == "-":
        raise UsageError("reading the program from stdin is not supported; give a file")
    elif not Path(rest[0]).is_file():
        raise InputError(f"program {rest[0]!r} not found; check the path")
    return PythonCommand(python, options, rest)
