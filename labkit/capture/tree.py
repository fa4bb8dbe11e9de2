"""A program's whole process tree, held together so that caps and signals reach all of it.

The program starts in a process group of its own and, where the machine allows it, in a
cgroup v2 of its own (``labkit-<pid>-<id>`` beside or below labkit's cgroup), which no
descendant can leave by forking, double-forking or ``setsid``. The cgroup gets
``memory.max`` (with ``memory.oom.group``) and ``pids.max`` when those controllers are
delegated to it, and is killed whole through ``cgroup.kill``. Without a cgroup, the tree is
the process group plus the main process's descendants. Either way labkit's own sampler sums
the tree's RSS for the memory cap (:attr:`ProcessTree.enforced_by` says which held), and
whatever is left of the tree once its main process ends is killed, so no run leaves an
orphan behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
import uuid
from pathlib import Path

import psutil

PIDS_MAX = 16_384  # tasks (threads count): ample for a program, a stop for a fork bomb
_PREFIX = "labkit-"


def cgroup2_mount() -> Path | None:
    """Where the cgroup v2 hierarchy is mounted, or None."""
    try:
        with open("/proc/self/mountinfo", encoding="utf-8") as fh:
            for line in fh:
                left, _, right = line.partition(" - ")
                if right.split(" ", 1)[0] == "cgroup2":
                    return Path(left.split()[4])
    except OSError:
        pass
    return None


def _own_cgroup() -> str:
    try:
        with open("/proc/self/cgroup", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("0::"):
                    return line[3:].strip()
    except OSError:
        pass
    return "/"


def write_control(path: Path, text: str) -> bool:
    """Write ``text`` into a cgroup control file; ``False`` where the kernel refuses it."""
    try:
        path.write_text(text, encoding="ascii")
        return True
    except OSError:
        return False


def _owner_prefix() -> str:
    """``labkit-<pid namespace>-``: a cgroup's owner pid means something only in its own pid
    namespace."""
    try:
        ns = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        ns = 0
    return f"{_PREFIX}{ns}-"


def _remove_stale(parent: Path) -> None:
    """Kill and remove the cgroups of labkit processes (of this pid namespace) that no
    longer exist (SIGKILLed): what is left in them are orphans of a run that could not end
    its tree."""
    prefix = _owner_prefix()
    with contextlib.suppress(OSError):
        for d in parent.iterdir():
            owner = d.name[len(prefix):].split("-", 1)[0]
            if d.name.startswith(prefix) and owner.isdigit() and not psutil.pid_exists(
                    int(owner)):
                write_control(d / "cgroup.kill", "1")
                with contextlib.suppress(OSError):
                    d.rmdir()


class ProcessTree:
    """The process tree of one program run: create it, start the program with
    :meth:`preexec` and :meth:`started`, then signal, sample and kill it whole."""

    def __init__(self, memory_cap_bytes: int | None = None, *, cgroup: bool = True) -> None:
        self.memory_cap_bytes = memory_cap_bytes
        self.cgroup: Path | None = None
        self.memory_in_cgroup = False
        self.pids_max: int | None = None
        self.pgid: int | None = None
        self.leftovers_killed = 0
        self._killed = False
        self._main_reaped = False
        self._ended = False
        self.enforced_by = self._enforcement()
        if cgroup:
            self._make_cgroup()

    def _enforcement(self) -> str:
        """``cgroup`` (memory.max held the memory cap), ``cgroup+rss-poll`` (a cgroup held
        the tree, labkit's sampler the memory cap) or ``process-group+rss-poll``."""
        if self.cgroup is None:
            return "process-group+rss-poll"
        return "cgroup" if self.memory_in_cgroup else "cgroup+rss-poll"

    def manifest(self) -> dict[str, object]:
        """The manifest's ``caps`` entry."""
        return {"enforced_by": self.enforced_by, "pids_max": self.pids_max,
                "leftovers_killed": self.leftovers_killed}

    def _make_cgroup(self) -> None:
        mount = cgroup2_mount()
        if mount is None:
            return
        own = mount / _own_cgroup().lstrip("/")
        for parent in dict.fromkeys((mount, own)):
            _remove_stale(parent)
            path = parent / f"{_owner_prefix()}{os.getpid()}-{uuid.uuid4().hex[:8]}"
            try:
                path.mkdir()
            except OSError:
                continue
            self.use_cgroup(path)
            return

    def use_cgroup(self, path: Path) -> None:
        """Hold the tree in the (new, empty) cgroup ``path``, with the caps its delegated
        controllers allow."""
        self.cgroup = path
        try:
            controllers = (path / "cgroup.controllers").read_text().split()
        except OSError:
            controllers = []
        cap = self.memory_cap_bytes
        if cap and "memory" in controllers and write_control(path / "memory.max", str(cap)):
            write_control(path / "memory.oom.group", "1")
            write_control(path / "memory.swap.max", "0")
            self.memory_in_cgroup = True
        if "pids" in controllers and write_control(path / "pids.max", str(PIDS_MAX)):
            self.pids_max = PIDS_MAX
        self.enforced_by = self._enforcement()

    def preexec(self) -> None:
        """In the forked child, before exec: join the cgroup (the process group is Popen's
        ``process_group=0``)."""
        if self.cgroup is not None:
            write_control(self.cgroup / "cgroup.procs", "0")

    def started(self, pid: int) -> None:
        """The program runs as ``pid``: check that it is in the cgroup (else fall back)."""
        self.pgid = pid
        if self.cgroup is not None and pid not in self._cgroup_pids():
            self.cleanup()
            self.pids_max = None
            self.enforced_by = self._enforcement()

    def _cgroup_pids(self) -> list[int]:
        assert self.cgroup is not None
        try:
            return [int(x) for x in (self.cgroup / "cgroup.procs").read_text().split()]
        except (OSError, ValueError):
            return []

    def members(self) -> list[int]:
        """The live pids of the tree (the main process first while it lives)."""
        if self.cgroup is not None:
            pids = self._cgroup_pids()
        else:
            pids = self._group_pids()
            if not self._main_reaped:  # once reaped, its pid may be another process's
                with contextlib.suppress(psutil.Error, TypeError):
                    pids += [p.pid for p in
                             psutil.Process(self.pgid).children(recursive=True)]
        main = [self.pgid] if self.pgid in pids else []
        return main + sorted(set(pids) - {self.pgid})

    def _group_pids(self) -> list[int]:
        found = []
        for d in os.scandir("/proc"):
            if not d.name.isdigit():
                continue
            try:
                with open(f"/proc/{d.name}/stat", "rb") as fh:
                    fields = fh.read().rsplit(b")", 1)[1].split()
            except OSError:
                continue
            if fields[0] != b"Z" and int(fields[2]) == self.pgid:
                found.append(int(d.name))
        return found

    def signal(self, sig: int) -> None:
        """Send ``sig`` to every process of the tree (nothing once :meth:`end` is done)."""
        if self._ended:
            return
        if self.cgroup is None and self.pgid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pgid, sig)
        for pid in self.members():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)

    def kill(self) -> None:
        """SIGKILL the whole tree (``cgroup.kill`` where there is one)."""
        self._killed = True
        if self._ended:
            return
        if self.cgroup is None or not write_control(self.cgroup / "cgroup.kill", "1"):
            self.signal(signal.SIGKILL)

    def memory_capped(self) -> bool:
        """Whether the cgroup's memory.max made the kernel kill in the tree."""
        if not self.memory_in_cgroup or self.cgroup is None:
            return False
        with contextlib.suppress(OSError, ValueError):
            for line in (self.cgroup / "memory.events").read_text().splitlines():
                key, value = line.split()
                if key in ("oom_kill", "oom_group_kill") and int(value) > 0:
                    return True
        return False

    def end(self, wait_s: float = 5.0) -> None:
        """After the main process ended: kill what is left of the tree, then remove the
        cgroup. ``leftovers_killed`` counts the processes still alive that no cap or
        signal had killed."""
        self._main_reaped = True
        left = self.members()
        if left:
            if not self._killed:
                self.leftovers_killed = len(left)
            self.kill()
            deadline = time.monotonic() + wait_s
            while self.members() and time.monotonic() < deadline:
                time.sleep(0.02)
        self.cleanup()
        self._ended = True

    def cleanup(self) -> None:
        """Remove the cgroup (the tree is then held by the process group alone)."""
        if self.cgroup is None:
            return
        for _ in range(50):
            try:
                self.cgroup.rmdir()
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.02)
        self.cgroup, self.memory_in_cgroup = None, False

