"""Caps hold for a program's whole process tree: a forked grandchild dies at the time cap, a
child allocating past the memory cap takes the tree down, by the magic and by the CLI, in a
cgroup where the machine allows and by the process group where it does not."""

from __future__ import annotations

import json
import os
import signal
import sys
import textwrap
from pathlib import Path

import pytest

from labkit.capture.session import CaptureOptions, run_program
from labkit.capture.tree import PIDS_MAX, ProcessTree
from tests.conftest import PY, alive, labkit

pytestmark = pytest.mark.slow

ENFORCEMENTS = ("cgroup", "cgroup+rss-poll", "process-group+rss-poll")


def grandchild_program(pidfile: Path, *, setsid: bool = False) -> str:
    """Forks a child that double-forks a sleeping grandchild (its pid into ``pidfile``),
    then sleeps for ever itself."""
    return textwrap.dedent(f"""\
        import os, time
        if os.fork() == 0:
            if os.fork() == 0:
                {"os.setsid()" if setsid else "pass"}
                with open({str(pidfile)!r}, "w") as fh:
                    fh.write(str(os.getpid()))
                time.sleep(600)
            os._exit(0)
        os.wait()
        time.sleep(600)
        """)


def hoarding_child_program(pidfile: Path) -> str:
    """The main process waits; its child keeps 10 MiB more every 20 ms, up to 1 GiB."""
    return textwrap.dedent(f"""\
        import os, time
        if os.fork() == 0:
            with open({str(pidfile)!r}, "w") as fh:
                fh.write(str(os.getpid()))
            kept = []
            for _ in range(100):
                kept.append(b"x" * (10 << 20))
                time.sleep(0.02)
            time.sleep(600)
        os.wait()
        """)


def _dead(pidfile: Path) -> int:
    pid = int(pidfile.read_text())
    assert not alive(pid), f"process {pid} of the tree outlived the run"
    return pid


# -- the magic ---------------------------------------------------------------------------

@pytest.fixture
def shell():
    from IPython.core.interactiveshell import InteractiveShell

    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "labkit")
    return ip


@pytest.mark.parametrize("line, option", [
    ("--time-cap nan", "--time-cap"), ("--time-cap -1", "--time-cap"),
    ("--time-cap inf", "--time-cap"), ("--time-cap 0", "--time-cap"),
    ("--memory-cap inf", "--memory-cap"), ("--memory-cap nan", "--memory-cap"),
    ("--memory-cap 0", "--memory-cap"), ("--memory-cap -5", "--memory-cap"),
    ("--memory-cap 1.5", "--memory-cap"), ("--memory-cap 'x", "quotes"),
])
def test_a_bad_cap_is_one_line_and_nothing_runs(shell, tmp_path: Path, capsys,
                                                line: str, option: str) -> None:
    marker = tmp_path / "ran"
    shell.run_cell_magic("labkit_capture", f"--out {tmp_path / 'run'} {line}",
                         f"open({str(marker)!r}, 'w').close()")
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("labkit: %%labkit_capture"), err
    assert option in lines[0] and "Traceback" not in err
    assert not marker.exists() and not (tmp_path / "run").exists()


def test_the_magics_time_cap_ends_a_double_forked_grandchild(shell, tmp_path: Path) -> None:
    pidfile = tmp_path / "grandchild.pid"
    shell.run_cell_magic("labkit_capture", f"--proc --time-cap 3 --out {tmp_path / 'run'} "
                         "capped", grandchild_program(pidfile))
    manifest = shell.user_ns["capped"].manifest
    assert manifest["outcome"]["reason"] == "time-cap"
    assert manifest["caps"]["enforced_by"] in ENFORCEMENTS
    _dead(pidfile)


def test_the_magics_memory_cap_ends_the_tree_when_a_child_hoards(shell,
                                                                   tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    shell.run_cell_magic("labkit_capture", f"--proc --memory-cap 200 --time-cap 60 "
                         f"--out {tmp_path / 'run'} capped", hoarding_child_program(pidfile))
    manifest = shell.user_ns["capped"].manifest
    assert manifest["outcome"]["reason"] == "memory-cap"
    assert manifest["outcome"]["memory_cap_bytes"] == 200 << 20
    _dead(pidfile)


# -- the CLI -----------------------------------------------------------------------------

def test_labkit_capture_time_cap_ends_the_grandchild(tmp_path: Path) -> None:
    pidfile = tmp_path / "grandchild.pid"
    (tmp_path / "prog.py").write_text(grandchild_program(pidfile))
    cp = labkit("capture", "--gc", "--time-cap", "3", "--out", str(tmp_path / "run"), "--",
                PY, str(tmp_path / "prog.py"))
    assert cp.returncode == -signal.SIGTERM, cp.stderr
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["outcome"]["reason"] == "time-cap"
    assert manifest["caps"]["enforced_by"] in ENFORCEMENTS
    _dead(pidfile)


def test_labkit_capture_memory_cap_ends_the_tree_when_a_child_hoards(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    (tmp_path / "prog.py").write_text(hoarding_child_program(pidfile))
    cp = labkit("capture", "--gc", "--memory-cap", "250", "--time-cap", "60", "--out",
                str(tmp_path / "run"), "--", PY, str(tmp_path / "prog.py"))
    assert cp.returncode == -signal.SIGKILL, cp.stderr
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["outcome"]["reason"] == "memory-cap"
    _dead(pidfile)


@pytest.mark.parametrize("flag, value", [("--time-cap", "nan"), ("--time-cap", "-1"),
                                         ("--memory-cap", "inf")])
def test_labkit_capture_refuses_a_bad_cap(tmp_path: Path, flag: str, value: str) -> None:
    cp = labkit("capture", flag, value, "--out", str(tmp_path / "run"), "--", PY, "-c", "1")
    assert cp.returncode == 2 and flag in cp.stderr and "Traceback" not in cp.stderr
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("caps", [{"time_cap_s": float("nan")}, {"time_cap_s": float("inf")},
                                  {"time_cap_s": -1}, {"time_cap_s": 0},
                                  {"memory_cap_bytes": 0}, {"memory_cap_bytes": 1.5e9}])
def test_capture_options_refuse_a_cap_that_bounds_nothing(caps: dict) -> None:
    from labkit.errors import UsageError

    with pytest.raises(UsageError, match="cap"):
        CaptureOptions(**caps)


# -- without a cgroup: the process group ---------------------------------------------------

def _run(tmp_path: Path, code: str, **caps) -> dict:
    (tmp_path / "prog.py").write_text(code)
    run_program([sys.executable, str(tmp_path / "prog.py")], out=tmp_path / "run",
                options=CaptureOptions(cgroup=False, **caps))
    return json.loads((tmp_path / "run" / "manifest.json").read_text())


def test_the_process_group_holds_the_time_cap_without_a_cgroup(tmp_path: Path) -> None:
    pidfile = tmp_path / "grandchild.pid"
    manifest = _run(tmp_path, grandchild_program(pidfile), time_cap_s=3)
    assert manifest["caps"]["enforced_by"] == "process-group+rss-poll"
    assert manifest["outcome"]["reason"] == "time-cap"
    _dead(pidfile)


def test_the_process_group_holds_the_memory_cap_without_a_cgroup(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    manifest = _run(tmp_path, hoarding_child_program(pidfile), time_cap_s=60,
                    memory_cap_bytes=250 << 20)
    assert manifest["caps"]["enforced_by"] == "process-group+rss-poll"
    assert manifest["outcome"]["reason"] == "memory-cap"
    _dead(pidfile)


def test_a_grandchild_that_leaves_the_group_is_held_only_by_a_cgroup(tmp_path: Path) -> None:
    # setsid() leaves the process group: only a cgroup still holds the grandchild, and the
    # manifest says which enforcement held
    pidfile = tmp_path / "grandchild.pid"
    (tmp_path / "prog.py").write_text(grandchild_program(pidfile, setsid=True))
    run_program([sys.executable, str(tmp_path / "prog.py")], out=tmp_path / "run",
                options=CaptureOptions(time_cap_s=3))
    caps = json.loads((tmp_path / "run" / "manifest.json").read_text())["caps"]
    pid = int(pidfile.read_text())
    if caps["enforced_by"].startswith("cgroup"):
        assert not alive(pid)
    else:
        assert caps["enforced_by"] == "process-group+rss-poll" and alive(pid)
        os.kill(pid, signal.SIGKILL)


# -- the cgroup's own caps (a directory standing in for a cgroup: a unit test) -------------

@pytest.mark.parametrize("controllers, memory, pids", [
    ("cpu io memory pids", True, True), ("cpu pids", False, True), ("", False, False)])
def test_a_cgroup_gets_the_caps_its_controllers_allow(tmp_path: Path, controllers: str,
                                                      memory: bool, pids: bool) -> None:
    (tmp_path / "cgroup.controllers").write_text(controllers + "\n")
    tree = ProcessTree(200 << 20, cgroup=False)
    tree.use_cgroup(tmp_path)
    assert tree.enforced_by == ("cgroup" if memory else "cgroup+rss-poll")
    assert ((tmp_path / "memory.max").exists(), (tmp_path / "pids.max").exists()) == (
        memory, pids)
    if memory:
        assert int((tmp_path / "memory.max").read_text()) == 200 << 20
        assert (tmp_path / "memory.oom.group").read_text() == "1"
        (tmp_path / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 0\n")
        assert not tree.memory_capped()
        (tmp_path / "memory.events").write_text("low 0\nhigh 0\nmax 9\noom 1\noom_kill 1\n")
        assert tree.memory_capped()
    assert tree.manifest() == {"enforced_by": tree.enforced_by,
                               "pids_max": PIDS_MAX if pids else None,
                               "leftovers_killed": 0}
