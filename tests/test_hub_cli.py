"""``labkit hub``'s one-line refusals and its caps bookkeeping, without starting a hub."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from labkit.hub import caps as cgroups
from labkit.hub.learners import learner_names


def _hub(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "labkit", "hub", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=60)


def test_bad_counts_and_a_missing_proxy_are_one_line_exit_2(tmp_path: Path) -> None:
    for args, words in ((["0"], "out of range"), (["201"], "out of range"),
                        (["ten"], "not a whole number"),
                        (["2", "--proxy", str(tmp_path / "nope")], "configurable-http-proxy")):
        cp = _hub(*args, cwd=tmp_path)
        assert cp.returncode == 2 and cp.stdout == "", (args, cp.stdout, cp.stderr)
        assert words in cp.stderr and "Traceback" not in cp.stderr, cp.stderr
    cp = _hub("2", "--proxy", str(tmp_path / "nope"), cwd=tmp_path)
    assert cp.stderr.count("\n") == 1, cp.stderr


def test_learner_names_are_numbered_and_sort_as_numbers() -> None:
    assert learner_names(3) == ["labkit-01", "labkit-02", "labkit-03"]
    names = learner_names(120)
    assert names[0] == "labkit-001" and names == sorted(names)


def test_v1_caps_hold_when_written_and_read_back_and_are_removed(tmp_path: Path) -> None:
    parents = {c: tmp_path / c for c in ("memory", "cpu", "pids")}
    for p in parents.values():
        p.mkdir()
    wanted = {"memory": (str(512 << 20), "512 MiB"), "cpu": ("50000 100000", "0.5 CPU"),
              "pids": ("256", "256 tasks")}
    caps = cgroups._setup_v1(parents, "labkit-hub-1-2", ["labkit-01", "labkit-02"], wanted)
    assert caps.version == "v1" and all(c.held for c in caps.caps), caps
    group = tmp_path / "memory" / "labkit-hub-1-2" / "labkit-02"
    assert (group / "memory.limit_in_bytes").read_text() == str(512 << 20)
    assert (tmp_path / "cpu/labkit-hub-1-2/labkit-01/cpu.cfs_quota_us").read_text() == "50000"
    assert caps.lines()[0] == "memory 512 MiB: holds (cgroup v1 memory.limit_in_bytes)"
    assert (tmp_path / "cpu/labkit-hub-1-2/cpu.shares").read_text() == "2048"  # 2 learners
    for d in caps.group_dirs:  # a real cgroup's files vanish with rmdir; these are plain
        for f in Path(d).rglob("*"):
            if f.is_file():
                f.unlink()
    cgroups.remove(caps)
    assert not any((tmp_path / c / "labkit-hub-1-2").exists() for c in parents)


def test_a_missing_controller_says_it_does_not_hold(tmp_path: Path) -> None:
    (tmp_path / "memory").mkdir()
    caps = cgroups._setup_v1({"memory": tmp_path / "memory"}, "labkit-hub-1-3", ["labkit-01"],
                             {"memory": ("1024", "1 KiB"), "pids": ("64", "64 tasks")})
    held = {c.name: c.held for c in caps.caps}
    assert held == {"memory": True, "pids": False}
    assert "pids 64 tasks: NOT held (no cgroup v1 pids controller mounted)" in caps.lines()
    assert cgroups.no_caps().lines()[0] == "memory -: NOT held (--no-caps)"
