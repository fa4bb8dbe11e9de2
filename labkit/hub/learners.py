"""The room's learners: real local Unix users ``labkit-01`` ... with homes under ``/home``.

Each learner is created with ``useradd`` (marked by its comment, :data:`COMMENT`, so labkit
only ever reuses or deletes users it created), gets the lab's notebooks copied into
``~/labkit-notebooks`` (a notebook already there is the learner's and is kept), and owns its
home. :func:`remove_users` deletes the users and keeps their homes, so their work and
``~/.labkit/records/`` stay readable after the class (``labkit class /home``).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from labkit.errors import InputError

COMMENT = "labkit hub learner"
HOME_ROOT = Path("/home")
NOTEBOOKS = "labkit-notebooks"


@dataclass(frozen=True)
class Learner:
    """A learner's user name, uid and home."""

    name: str
    uid: int
    home: Path


def learner_names(count: int) -> list[str]:
    """``labkit-01`` ... ``labkit-NN`` (two digits at least)."""
    width = max(2, len(str(count)))
    return [f"labkit-{i:0{width}d}" for i in range(1, count + 1)]


def _check_tools() -> None:
    if os.geteuid() != 0:
        raise InputError("labkit hub creates a Unix user per learner and needs root; run it "
                         "with sudo (or as root in the class VM)")
    for tool in ("useradd", "userdel"):
        if shutil.which(tool) is None:
            raise InputError(f"{tool} is not installed; install the passwd package")


def _existing(name: str) -> pwd.struct_passwd | None:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        return None


def create_learners(count: int, home_root: Path = HOME_ROOT) -> list[Learner]:
    """Create (or reuse, when labkit made them) ``count`` learners with the notebooks in
    their homes. A user of that name that labkit did not create is refused, in one line."""
    _check_tools()
    names = learner_names(count)
    for name in names:
        entry = _existing(name)
        if entry is not None and entry.pw_gecos != COMMENT:
            raise InputError(f"a user {name} already exists and labkit did not create it; "
                             "remove it or use a machine of its own for the class")
    learners = []
    for name in names:
        home = home_root / name
        if _existing(name) is None:
            cp = subprocess.run(["useradd", "--create-home", "--home-dir", str(home),
                                 "--comment", COMMENT, "--shell", "/bin/bash",
                                 "--user-group", name], capture_output=True, text=True)
            if cp.returncode not in (0, 12):  # 12: the home existed (a past class): kept
                raise InputError(f"useradd {name} failed: {cp.stderr.strip()}")
        entry = pwd.getpwnam(name)
        home.mkdir(exist_ok=True)
        home.chmod(0o700)  # useradd's HOME_MODE may let other learners read it
        _copy_notebooks(home / NOTEBOOKS)
        _chown_tree(home, entry.pw_uid, entry.pw_gid)
        learners.append(Learner(name, entry.pw_uid, home))
    return learners


def _copy_notebooks(dest: Path) -> None:
    """The lab's notebooks and ``jupytext.toml`` that ``dest`` does not have yet."""
    from labkit.resources import notebooks_dir

    dest.mkdir(exist_ok=True)
    for src in sorted(notebooks_dir().iterdir()):
        if (src.suffix == ".py" and src.name[:2].isdigit()) or src.name == "jupytext.toml":
            out = dest / src.name
            if not out.exists():
                tmp = out.with_name(f".{out.name}.tmp")
                shutil.copyfile(src, tmp)
                os.replace(tmp, out)


def _chown_tree(root: Path, uid: int, gid: int) -> None:
    """Give ``root`` and everything below it (links themselves, never their targets) to
    the learner: a home from a past class may carry an old uid."""
    os.chown(root, uid, gid, follow_symlinks=False)
    for dirpath, dirnames, filenames in os.walk(root):
        for entry in (*dirnames, *filenames):
            with contextlib.suppress(FileNotFoundError):
                os.chown(os.path.join(dirpath, entry), uid, gid, follow_symlinks=False)


def kill_processes(learners: list[Learner]) -> int:
    """SIGKILL every process the learners' uids still own; returns how many."""
    uids = {lr.uid for lr in learners}
    killed = 0
    for _ in range(20):
        procs = [p for p in psutil.process_iter(["uids"])
                 if p.info["uids"] is not None and p.info["uids"].real in uids]
        if not procs:
            break
        for p in procs:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p.pid, signal.SIGKILL)
                killed += 1
        time.sleep(0.1)
    return killed


def remove_users(learners: list[Learner]) -> None:
    """Delete the learners' users (and their groups); their homes stay."""
    kill_processes(learners)
    for lr in learners:
        entry = _existing(lr.name)
        if entry is not None and entry.pw_gecos == COMMENT:
            subprocess.run(["userdel", lr.name], capture_output=True)
