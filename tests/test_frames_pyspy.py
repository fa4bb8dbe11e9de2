"""py-spy through labkit: real py-spy recording and dumping small programs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from labkit import CaptureOptions, load, run_program
from labkit.capture import attach as attach_mod
from labkit.errors import CorruptCaptureError
from labkit.frames.pyspy import SAMPLE_COLUMNS, load_dump, load_speedscope
from tests.conftest import PY, alive

BUSY = """
import time
def g():
    t = time.perf_counter()
    n = 0
    while time.perf_counter() - t < 2.0:
        n += 1
    return n
g()
"""

PARKED = """
import queue, sys, threading, time
q = queue.Queue()
for i in range(50):
    threading.Thread(target=q.get, name=f"poller-{i}", daemon=True).start()
print("ready", flush=True)
time.sleep(60)
"""


@pytest.mark.slow
def test_busy_loop_is_most_samples(tmp_path: Path, write_prog) -> None:
    prog = write_prog(BUSY)
    res = run_program([PY, str(prog)], out=tmp_path / "r",
                      options=CaptureOptions(gc=False, pyspy=True, rate_hz=200))
    assert res.extra["pyspy"]["errors"] == {}
    py = load(res.path).pyspy
    assert list(py.samples.columns) == list(SAMPLE_COLUMNS)
    total = py.samples["count"].sum()
    assert total >= 100  # about 2 s at 200 Hz; enough samples for the share to mean something
    g = py.functions[py.functions.function == "g"].iloc[0]
    assert g.self_share >= 0.8
    assert py.samples.iloc[0].function == "g"
    svg = (res.path / "pyspy.flamegraph.svg").read_text()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg


@pytest.mark.slow
def test_attach_dump_shows_fifty_threads_parked_on_queue_get(tmp_path: Path) -> None:
    target = subprocess.Popen([PY, "-c", PARKED], stdout=subprocess.PIPE, text=True)
    try:
        target.stdout.readline()
        path = attach_mod.attach(target.pid, pyspy_s=1, dump=True, proc_s=1,
                                 out=tmp_path / "att")
    finally:
        target.kill()
        target.wait()
    run = load(path)
    threads = run.pyspy.threads
    parked = threads[threads.idle & threads["stack"].str.contains("get (queue.py", regex=False)]
    assert len(parked) == 50
    assert set(parked.name) == {f"poller-{i}" for i in range(50)}
    assert run.proc.threads.max() >= 51
    assert run.manifest["kind"] == "attach" and run.manifest["params"]["pid"] == target.pid


@pytest.mark.slow
def test_attach_cli_to_a_gone_pid(tmp_path: Path) -> None:
    from tests.conftest import assert_clean_error, labkit

    p = subprocess.Popen([PY, "-c", "pass"])
    p.wait()
    cp = labkit("attach", str(p.pid), "--out", str(tmp_path / "r"))
    assert_clean_error(cp, "no process with pid")
    assert not (tmp_path / "r").exists()


@pytest.mark.slow
def test_attach_without_ptrace_permission_is_one_line_and_writes_nothing(
        tmp_path: Path, monkeypatch, capsys) -> None:
    # GIVEN py-spy really running as an unprivileged user, through labkit's own code path
    import shutil

    from labkit import cli
    from labkit.capture import pyspy

    spy = tmp_path / "py-spy"
    shutil.copy(pyspy.binary(), spy)
    tmp_path.chmod(0o755)
    wrapper = tmp_path / "py-spy-as-nobody"
    wrapper.write_text(f'#!/bin/sh\nexec setpriv --reuid=65534 --regid=65534 --clear-groups '
                       f'{spy} "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setattr(pyspy, "binary", lambda: str(wrapper))
    target = subprocess.Popen([PY, "-c", "import time; print(1, flush=True); time.sleep(30)"],
                              stdout=subprocess.PIPE)
    try:
        target.stdout.readline()
        rc = cli.main(["attach", str(target.pid), "--out", str(tmp_path / "r")])
    finally:
        target.kill()
        target.wait()
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert len(err) == 1 and "ptrace" in err[0] and "SYS_PTRACE" in err[0]
    assert not (tmp_path / "r").exists()
    assert not [p for p in tmp_path.iterdir() if ".partial-" in p.name]


def test_speedscope_and_dump_from_hand_built_documents(tmp_path: Path) -> None:
    doc = {"shared": {"frames": [{"name": "main", "file": "/a/app.py", "line": 1},
                                 {"name": "work", "file": "/a/app.py", "line": 5},
                                 {"name": "idle", "file": "/a/app.py", "line": 9}]},
           "profiles": [{"type": "sampled", "name": 'Thread 7 "MainThread"',
                         "samples": [[0, 1], [0, 1], [0, 1], [0, 2], []],
                         "weights": [0.01] * 5}]}
    p = tmp_path / "p.json"
    p.write_text(json.dumps(doc))
    samples, functions = load_speedscope(p)
    assert samples.iloc[0].to_dict() == {
        "thread_id": 7, "thread_name": "MainThread", "function": "work", "file": "/a/app.py",
        "line": 5, "stack": "work (app.py:5) < main (app.py:1)", "count": 3,
        "frames": (("/a/app.py", 5, "work"), ("/a/app.py", 1, "main"))}
    f = functions.set_index("function")
    assert f.loc["work", "self_share"] == 0.75 and f.loc["main", "total_share"] == 1.0
    assert f.loc["main", "self_count"] == 0
    dump = [{"thread_id": 1, "os_thread_id": 2, "thread_name": "t", "active": False,
             "owns_gil": False, "frames": [{"name": "wait", "filename": "/x/threading.py",
                                            "line": 3}]}]
    d = tmp_path / "d.json"
    d.write_text(json.dumps(dump))
    t = load_dump(d).iloc[0]
    assert t.idle and t.function == "wait" and t["name"] == "t"


@pytest.mark.parametrize("text", ["", "{", "[1, 2", '{"profiles": 3}', '{"shared": {}}',
                                  "[]x"])
def test_malformed_speedscope_is_a_clear_error(tmp_path: Path, text: str) -> None:
    p = tmp_path / "bad.json"
    p.write_text(text)
    with pytest.raises(CorruptCaptureError):
        load_speedscope(p)


def test_malformed_dump_is_a_clear_error(tmp_path: Path) -> None:
    p = tmp_path / "bad.json"
    p.write_text('[{"thread_id": "x"}]')
    with pytest.raises(CorruptCaptureError, match="dump"):
        load_dump(p)


def test_pid_check() -> None:
    from labkit.errors import InputError

    with pytest.raises(InputError, match="no process"):
        attach_mod.check_pid(2**22 + 4321)
    assert alive(attach_mod.check_pid(subprocess.os.getpid()).pid)
    assert sys.executable


def test_a_line_number_beyond_int32_loses_its_line_not_the_profile(tmp_path: Path) -> None:
    # GIVEN a profile and a dump where py-spy wrote a line that no file has (beyond int32)
    huge = 2**31 + 17
    doc = {"shared": {"frames": [{"name": "main", "file": "/a/app.py", "line": 1},
                                 {"name": "work", "file": "/a/app.py", "line": huge}]},
           "profiles": [{"type": "sampled", "name": 'Thread 7 "MainThread"',
                         "samples": [[0, 1], [0, 1]], "weights": [0.01] * 2}]}
    p = tmp_path / "p.json"
    p.write_text(json.dumps(doc))
    dump = [{"thread_id": 1, "os_thread_id": 2, "thread_name": "t", "active": True,
             "owns_gil": False, "frames": [{"name": "work", "filename": "/a/app.py",
                                            "line": huge}]}]
    d = tmp_path / "d.json"
    d.write_text(json.dumps(dump))
    # THEN both are read; that frame's line is 0 (unknown), the others keep theirs
    samples, _ = load_speedscope(p)
    assert samples.iloc[0]["frames"] == (("/a/app.py", 0, "work"), ("/a/app.py", 1, "main"))
    assert samples.iloc[0]["count"] == 2
    assert load_dump(d).iloc[0]["line"] == 0
