"""Per-learner caps on memory, CPU and processes, through cgroups where the machine allows.

Each learner gets a cgroup of their own, ``labkit-hub-<pid namespace>-<pid>/<user>`` below
labkit's own cgroup, in every hierarchy that has the controller: cgroup v1 (one mount per
controller: ``memory.limit_in_bytes``, ``cpu.cfs_quota_us``, ``pids.max``) or cgroup v2
(``memory.max``, ``cpu.max``, ``pids.max``, when the controller is delegated). A cap holds
only when its file was written and reads back as written; :class:`Caps` says, per cap,
whether it holds and through which file, or why not. The hub's spawner moves each learner's
server into the learner's cgroups before dropping root (:mod:`labkit.hub.spawner`).

:func:`remove` kills whatever is left in the learners' cgroups and removes them;
:func:`remove_stale` does the same for hubs of this pid namespace that no longer exist.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil

from labkit.capture.tree import write_control

CGROUP_ROOT = Path("/sys/fs/cgroup")
_PREFIX = "labkit-hub-"
_CPU_PERIOD_US = 100_000


@dataclass(frozen=True)
class CapRequest:
    """What each learner may use: bytes of memory, CPUs (may be fractional), tasks."""

    memory_bytes: int
    cpus: float
    pids: int


@dataclass
class Cap:
    """One cap: ``held`` when its file reads back as written; ``via`` names the file, or
    says why the cap does not hold."""

    name: str
    value: str
    held: bool
    via: str


@dataclass
class Caps:
    """The caps every learner gets, and the cgroup folders a learner's server joins
    (``<dir>/<user>/cgroup.procs``)."""

    version: str  # "v1", "v2" or "none"
    caps: list[Cap] = field(default_factory=list)
    group_dirs: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """One line per cap, for the trainer."""
        return [f"{c.name} {c.value}: " + (f"holds ({c.via})" if c.held else
                                           f"NOT held ({c.via})") for c in self.caps]

    def to_json(self) -> dict[str, object]:
        return {"version": self.version, "caps": [asdict(c) for c in self.caps],
                "group_dirs": self.group_dirs}


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="ascii").strip()
    except OSError:
        return None


def _own_groups() -> dict[str, str]:
    """controller (or ``""`` for v2) -> labkit's own cgroup path in that hierarchy."""
    own: dict[str, str] = {}
    with contextlib.suppress(OSError), open("/proc/self/cgroup", encoding="utf-8") as fh:
        for line in fh:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            for c in controllers.split(","):
                own[c] = path
    return own


def _mounts() -> dict[str, Path]:
    """controller -> mount point of its v1 hierarchy; ``""`` -> the v2 mount."""
    mounts: dict[str, Path] = {}
    with contextlib.suppress(OSError), open("/proc/self/mountinfo", encoding="utf-8") as fh:
        for line in fh:
            left, _, right = line.partition(" - ")
            fstype, _, rest = right.partition(" ")
            point = Path(left.split()[4])
            if fstype == "cgroup2":
                mounts[""] = point
            elif fstype == "cgroup":
                for opt in rest.split()[-1].split(","):
                    if opt in ("memory", "cpu", "pids"):
                        mounts[opt] = point
    return mounts


def hub_group_name(pid: int | None = None) -> str:
    """``labkit-hub-<pid namespace>-<pid>``: an owner pid means something only in its own
    pid namespace."""
    try:
        ns = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        ns = 0
    return f"{_PREFIX}{ns}-{os.getpid() if pid is None else pid}"


def _parents() -> dict[str, Path]:
    """Where learners' hub groups go: controller -> labkit's own cgroup folder in that
    hierarchy (``""`` for v2)."""
    own, parents = _own_groups(), {}
    for ctl, mount in _mounts().items():
        path = own.get(ctl if ctl else "")
        if path is not None:
            parents[ctl] = mount / path.lstrip("/")
    return parents


def setup(users: list[str], request: CapRequest) -> Caps:
    """Create each learner's cgroups with ``request``'s caps; returns what holds. Never
    raises for a machine without cgroups: the caps then say they do not hold."""
    parents = _parents()
    name = hub_group_name()
    v1 = {c: parents[c] for c in ("memory", "cpu", "pids") if c in parents}
    wanted = {"memory": (str(request.memory_bytes), f"{request.memory_bytes // 2**20} MiB"),
              "cpu": (f"{int(request.cpus * _CPU_PERIOD_US)} {_CPU_PERIOD_US}",
                      f"{request.cpus:g} CPU"),
              "pids": (str(request.pids), f"{request.pids} tasks")}
    if v1:
        return _setup_v1(v1, name, users, wanted)
    if "" in parents:
        return _setup_v2(parents[""], name, users, wanted)
    return Caps("none", [Cap(k, label, False, "no cgroup hierarchy mounted")
                         for k, (_, label) in wanted.items()])


def no_caps() -> Caps:
    """No cgroups at all (``labkit hub --no-caps``): every cap says it does not hold."""
    return Caps("off", [Cap(k, "-", False, "--no-caps") for k in ("memory", "cpu", "pids")])


_V1_FILES = {"memory": "memory.limit_in_bytes", "cpu": "cpu.cfs_quota_us",
             "pids": "pids.max"}


def _setup_v1(parents: dict[str, Path], name: str, users: list[str],
              wanted: dict[str, tuple[str, str]]) -> Caps:
    caps = Caps("v1")
    for ctl, (value, label) in wanted.items():
        parent = parents.get(ctl)
        if parent is None:
            caps.caps.append(Cap(ctl, label, False, f"no cgroup v1 {ctl} controller mounted"))
            continue
        hub = parent / name
        fname = _V1_FILES[ctl]
        held = True
        try:
            hub.mkdir(exist_ok=True)
            for user in users:
                (hub / user).mkdir(exist_ok=True)
        except OSError as exc:
            caps.caps.append(Cap(ctl, label, False, f"cannot create {hub}: {exc.strerror}"))
            continue
        caps.group_dirs.append(str(hub))
        if ctl == "cpu":
            # a group weighs as one task against its siblings: the class weighs as many
            # tasks as it has learners, so a loaded machine does not starve the room
            write_control(hub / "cpu.shares", str(1024 * len(users)))
            value = value.split()[0]
            for user in users:
                write_control(hub / user / "cpu.cfs_period_us", str(_CPU_PERIOD_US))
        for user in users:
            f = hub / user / fname
            held = held and write_control(f, value) and _read(f) == value
        caps.caps.append(Cap(ctl, label, held, f"cgroup v1 {fname}" if held else
                             f"cgroup v1 {fname} could not be written"))
    return caps


_V2_FILES = {"memory": "memory.max", "cpu": "cpu.max", "pids": "pids.max"}


def _setup_v2(parent: Path, name: str, users: list[str],
              wanted: dict[str, tuple[str, str]]) -> Caps:
    caps = Caps("v2")
    hub = parent / name
    try:
        hub.mkdir(exist_ok=True)
        for user in users:
            (hub / user).mkdir(exist_ok=True)
    except OSError as exc:
        return Caps("v2", [Cap(k, label, False, f"cannot create {hub}: {exc.strerror}")
                           for k, (_, label) in wanted.items()])
    caps.group_dirs.append(str(hub))
    available = (_read(parent / "cgroup.controllers") or "").split()
    enable = " ".join(f"+{c}" for c in wanted if c in available)
    if enable:
        write_control(hub / "cgroup.subtree_control", enable)
    if "cpu" in available:  # the class weighs as many tasks as it has learners
        write_control(hub / "cpu.weight", str(min(10_000, 100 * len(users))))
    for ctl, (value, label) in wanted.items():
        fname = _V2_FILES[ctl]
        if ctl not in available:
            caps.caps.append(Cap(ctl, label, False,
                                 f"the {ctl} controller is not delegated to {parent}"))
            continue
        held = all(write_control(hub / u / fname, value) and _read(hub / u / fname) == value
                   for u in users)
        caps.caps.append(Cap(ctl, label, held, f"cgroup v2 {fname}" if held else
                             f"cgroup v2 {fname} could not be written"))
    return caps


def _procs(group: Path) -> list[int]:
    text = _read(group / "cgroup.procs") or ""
    return [int(p) for p in text.split()]


def _kill_and_remove(hub: Path) -> int:
    """SIGKILL every process in ``hub``'s learner groups until they are empty, then remove
    them; returns how many processes were killed."""
    killed = 0
    groups = [d for d in hub.iterdir() if d.is_dir()] if hub.is_dir() else []
    deadline = time.monotonic() + 10
    for group in groups:
        while (pids := _procs(group)) and time.monotonic() < deadline:
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                    killed += 1
            time.sleep(0.05)
        with contextlib.suppress(OSError):
            group.rmdir()
    with contextlib.suppress(OSError):
        hub.rmdir()
    return killed


def remove(caps: Caps) -> int:
    """Kill what is left in the learners' cgroups and remove them (hub and learners);
    returns how many processes were killed."""
    return sum(_kill_and_remove(Path(d)) for d in caps.group_dirs)


def remove_stale() -> None:
    """Remove the learners' cgroups of hubs (of this pid namespace) that no longer run."""
    prefix = hub_group_name(0)[:-1]
    for parent in _parents().values():
        with contextlib.suppress(OSError):
            for d in parent.iterdir():
                owner = d.name.removeprefix(prefix)
                if d.name.startswith(prefix) and owner.isdigit() and not psutil.pid_exists(
                        int(owner)):
                    _kill_and_remove(d)
