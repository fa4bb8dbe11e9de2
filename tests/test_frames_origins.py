"""Thread and fd origins: the code that started the threads still alive and opened the fds
still open, recorded by the in-process agent and named by the postmortem."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from labkit import load
from labkit.analysis.clues import suspects
from labkit.attribution import DEFAULT, attribution
from labkit.errors import CorruptCaptureError
from labkit.frames.evidence import load_evidence
from labkit.frames.origins import fd_kind, load_origins
from tests.conftest import PY, labkit

LEAKY = """
import os, socket, subprocess, sys, time
from concurrent.futures import ThreadPoolExecutor

pools, conns, pipes = [], [], []

def make_pool():
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fetcher")
    pool.submit(time.sleep, 0.01)
    pools.append(pool)          # never shut down

def connect_upstream():
    conns.append(socket.socket(socket.AF_INET, socket.SOCK_STREAM))

def spawn_helper():
    pipes.append(os.pipe())

def handle():
    make_pool()
    connect_upstream()
    with open(__file__) as fh:  # closed: never reported
        fh.read()

for i in range(50):
    handle()
for i in range(8):
    spawn_helper()
time.sleep(0.1)
"""


def test_user_frames_skip_the_standard_library_packages_and_labkit() -> None:
    stdlib = ("/usr/lib/python3.12/threading.py", 10, "start")
    pkg = ("/venv/lib/python3.11/site-packages/requests/api.py", 5, "get")
    agent = ("/x/labkit/capture/bootstrap.py", 1, "main")
    mine = ("/home/me/app/server.py", 42, "handle")
    assert DEFAULT.user_frame([stdlib, pkg, agent, mine]) == mine
    assert DEFAULT.is_user(("/venv/lib/python3.11/site-packages/labkit/scenarios/fd_leak.py",
                            1, "serve"))
    assert not DEFAULT.is_user(("<frozen importlib._bootstrap>", 1, "_load"))
    assert attribution(ignore="server").user_frame([mine]) is None
    assert attribution(focus="requests").user_frame([stdlib, pkg, mine]) == pkg


def test_fd_kinds() -> None:
    assert [fd_kind(t) for t in ("socket:[1]", "pipe:[2]", "/dev/null", "/tmp/x",
                                 "anon_inode:[eventfd]")] == \
        ["socket", "pipe", "device", "file", "other"]


@pytest.mark.parametrize("doc", ['{"threads": [], "fds": []}', '{"stacks": 5}', "[]",
                                 '{"stacks": [], "threads": [{"name": 1}], "fds": []}'])
def test_malformed_origins_are_one_line(tmp_path: Path, doc: str) -> None:
    p = tmp_path / "origins.json"
    p.write_text(doc)
    with pytest.raises(CorruptCaptureError):
        load_origins(p)


@pytest.mark.slow
def test_the_agent_names_who_started_threads_and_opened_fds(tmp_path: Path) -> None:
    prog = tmp_path / "svc.py"
    prog.write_text(LEAKY)
    cp = labkit("capture", "--gc", "--proc", "--out", str(tmp_path / "run"), "--", PY,
                str(prog))
    assert cp.returncode == 0, cp.stderr
    run = load(tmp_path / "run")
    threads = run.origins.threads
    alive = threads[threads.alive]
    assert len(alive) == 50
    assert set(alive.function) == {"make_pool"} and set(alive.line) == {9}  # submit()
    assert alive["name"].str.startswith("fetcher").all()
    fds = run.origins.fds
    sockets = fds[fds.kind == "socket"]
    assert len(sockets) == 50 and set(sockets.function) == {"connect_upstream"}
    pipes = fds[fds.kind == "pipe"]
    assert (pipes.function == "spawn_helper").sum() == 16
    assert not fds.target.str.contains(str(tmp_path / "run")).any()  # labkit's own files
    assert not (fds.target == str(prog)).any()  # the file the program closed
    top = suspects(load_evidence(run=tmp_path / "run")).head(3)
    assert list(top.suspect[:2]) == ["make_pool (svc.py:9)", "connect_upstream (svc.py:13)"]
    assert json.loads((tmp_path / "run" / "manifest.json").read_text())["artifacts"]


TASKS = """
import asyncio, sys

registry = []

async def listen(queue):
    while True:
        await queue.get()

def subscribe():
    queue = asyncio.Queue()
    registry.append(queue)
    return asyncio.ensure_future(listen(queue))

async def main():
    for _ in range(60):
        subscribe()
    asyncio.get_running_loop().create_task(asyncio.sleep(0))  # done at once: never reported
    await asyncio.sleep(0.8)

asyncio.run(main())
"""


@pytest.mark.slow
def test_the_agent_names_who_created_pending_asyncio_tasks(tmp_path: Path) -> None:
    prog = tmp_path / "subs.py"
    prog.write_text(TASKS)
    cp = labkit("capture", "--gc", "--out", str(tmp_path / "run"), "--", PY, str(prog))
    assert cp.returncode == 0, cp.stderr
    origins = load(tmp_path / "run").origins
    assert origins.tasks.empty  # asyncio.run cancels what is left: none pending at the end
    peak = origins.tasks_at_peak
    assert (peak.function == "subscribe").sum() == 60 and set(peak.name) >= {"listen"}
    assert not (peak.name == "sleep").any()
    top = suspects(load_evidence(run=tmp_path / "run")).iloc[0]
    assert (top.kind, top.suspect) == ("tasks started here", "subscribe (subs.py:13)")


def test_the_agent_imports_nothing_a_program_does_not(tmp_path: Path) -> None:
    prog = tmp_path / "plain.py"
    prog.write_text("import sys\nprint('asyncio' in sys.modules)\n")
    cp = labkit("capture", "--gc", "--out", str(tmp_path / "run"), "--", PY, str(prog))
    assert cp.returncode == 0, cp.stderr
    assert cp.stdout.splitlines()[0] == "False"
