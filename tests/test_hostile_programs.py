"""Programs that fork, die, close fds, chdir or ignore signals: the run stays evidence.

For every program: labkit's exit code is the one plain ``python`` gives for it, the
published run verifies (``labkit summary``), and no process of the program is left. Each
program is run twice, by plain Python and under ``labkit capture``, with a marker in the
environment so that every descendant can be found afterwards through ``/proc``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from labkit import load
from tests.conftest import PY, alive, labkit

pytestmark = pytest.mark.slow

WORK = "import gc\nfor _ in range(3000):\n    a = [1]; a.append(a)\ngc.collect()\n"

PROGRAMS: dict[str, str] = {
    "fork-and-exit": WORK + """
import os, sys, time
pid = os.fork()
if pid == 0:
    for _ in range(20000):
        a = [1]; a.append(a)
    time.sleep(0.4)      # long enough for the process sampler to see it
    sys.exit(0)          # unwinds through labkit's agent in the child
os.waitpid(pid, 0)
sys.exit(4)
""",
    "fork-and-kill-the-worker": WORK + """
import os, signal, sys, time
pid = os.fork()
if pid == 0:
    while True:
        a = [1]; a.append(a)
time.sleep(0.3)
os.kill(pid, signal.SIGTERM)   # the worker inherited labkit's SIGTERM handler
os.waitpid(pid, 0)
sys.exit(3)
""",
    "multiprocessing-fork": WORK + """
import multiprocessing as mp, time
def work(n):
    return sum(len([[i] for i in range(2000)]) for _ in range(n))
if __name__ == "__main__":
    with mp.get_context("fork").Pool(2) as pool:
        time.sleep(0.4)
        print(sum(pool.map(work, range(40))))
""",
    "multiprocessing-spawn": WORK + """
import multiprocessing as mp
def work(n):
    return n * n
if __name__ == "__main__":
    with mp.get_context("spawn").Pool(2) as pool:
        print(sum(pool.map(work, range(20))))
""",
    "multiprocessing-forkserver": WORK + """
import multiprocessing as mp, time
def work(n):
    return n * n
if __name__ == "__main__":
    with mp.get_context("forkserver").Pool(2) as pool:
        time.sleep(0.4)  # long enough for the process sampler (every 0.1 s) to see them
        print(sum(pool.map(work, range(20))))
""",
    "pool-terminate": WORK + """
import multiprocessing as mp, time
def slow(n):
    while True:
        a = [1]; a.append(a)
if __name__ == "__main__":
    pool = mp.get_context("fork").Pool(2)
    pool.map_async(slow, range(4))
    time.sleep(0.5)
    pool.terminate()     # SIGTERM to every worker
    pool.join()
""",
    "os-exit": WORK + "import os\nos._exit(7)\n",
    "segfault": WORK + "import ctypes\nctypes.string_at(0)\n",
    "500-threads": WORK + """
import threading, time
ts = [threading.Thread(target=time.sleep, args=(0.2,)) for _ in range(500)]
for t in ts: t.start()
for t in ts: t.join()
""",
    "closes-fds-0-2": WORK + """
import gc, os, sys
data = os.environ["HOSTILE_DATA"]
os.close(0); os.close(1); os.close(2)
fh = open(data, "w")     # takes fd 0 now
for _ in range(50):
    gc.collect()
fh.write("the program's own data\\n")
fh.close()
sys.exit(3)
""",
    "chdir-and-delete": WORK + """
import os, sys
os.mkdir("elsewhere")
os.chdir("elsewhere")
for name in os.listdir(".."):
    if name not in ("elsewhere", "runs"):
        p = os.path.join("..", name)
        os.remove(p) if os.path.isfile(p) else None
for _ in range(20):
    gc.collect()
sys.exit(5)
""",
    "reads-stdin": WORK + """
import sys
data = sys.stdin.read()
print(len(data))
sys.exit(len(data) % 256)
""",
}


@dataclass
class Outcome:
    returncode: int
    stdout: str
    stderr: str


def _marked(mark: str) -> list[int]:
    """Pids of live processes whose environment carries ``mark``."""
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            env = (d / "environ").read_bytes()
            state = (d / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if f"HOSTILE_MARK={mark}".encode() in env and state != "Z":
            found.append(int(d.name))
    return found


def _run(argv: list[str], cwd: Path, env: dict[str, str], stdin: bytes | None = None,
         sig: signal.Signals | None = None) -> Outcome:
    p = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if sig is not None:
        assert p.stdout is not None
        assert p.stdout.readline().strip() == b"ready"
        p.send_signal(sig)
    out, err = p.communicate(stdin, timeout=120)
    return Outcome(p.returncode, out.decode(errors="replace"), err.decode(errors="replace"))


def _both(tmp_path: Path, code: str, *, capture: tuple[str, ...] = ("--gc", "--proc"),
          stdin: bytes | None = None, sig: signal.Signals | None = None,
          out: str = "run") -> tuple[Outcome, Outcome, Path]:
    """Run ``code`` by plain Python, then under ``labkit capture``; no process may remain."""
    results = []
    for mode in ("plain", "labkit"):
        cwd = tmp_path / mode
        cwd.mkdir()
        (cwd / "prog.py").write_text(code)
        mark = uuid.uuid4().hex
        env = {**os.environ, "HOSTILE_MARK": mark, "HOSTILE_DATA": str(cwd / "data.txt")}
        argv = [PY, "prog.py"]
        if mode == "labkit":
            argv = [PY, "-m", "labkit", "capture", *capture, "--out", out, "--", *argv]
        results.append(_run(argv, cwd, env, stdin, sig))
        deadline = time.monotonic() + 5
        while _marked(mark) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _marked(mark), f"{mode}: processes left behind"
    return results[0], results[1], tmp_path / "labkit" / out


def _verified(run: Path) -> None:
    cp = labkit("summary", str(run))
    assert cp.returncode == 0, cp.stderr
    load(run)  # every checksum


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_hostile_program(tmp_path: Path, name: str) -> None:
    stdin = b"x" * 1000 if name == "reads-stdin" else None
    capture = ("--gc", "--proc", "--memray") if name.startswith(("fork", "multi", "pool")) \
        else ("--gc", "--proc")
    plain, lab, run = _both(tmp_path, PROGRAMS[name], capture=capture, stdin=stdin)
    assert lab.returncode == plain.returncode, (plain, lab)
    assert lab.stdout == plain.stdout
    _verified(run)
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["outcome"]["returncode"] == plain.returncode
    if name.startswith(("fork", "multiprocessing-fork", "pool")):
        assert manifest["children_seen"] >= 1, manifest.get("children_seen")
        meta = json.loads((run / "gctrace.json").read_text())
        assert meta["python"]["executable"] and meta["finished"] is True


def test_closing_fds_0_2_keeps_labkit_out_of_the_programs_files(tmp_path: Path) -> None:
    # gctrace (not quiet) prints a line per collection: to labkit's own copy of stderr,
    # never into the file the program opened on fd 0 (or 2)
    cwd = tmp_path / "gctrace"
    cwd.mkdir()
    (cwd / "prog.py").write_text(PROGRAMS["closes-fds-0-2"])
    env = {**os.environ, "HOSTILE_MARK": uuid.uuid4().hex, "HOSTILE_DATA": str(cwd / "d.txt")}
    cp = subprocess.run([PY, "-m", "labkit", "gctrace", "--out", "r", "--", PY, "prog.py"],
                        cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert cp.returncode == 3
    assert (cwd / "d.txt").read_text() == "the program's own data\n"
    assert sum(ln.startswith("gc ") for ln in cp.stderr.splitlines()) >= 50
    _verified(cwd / "r")


FOREVER = """
import gc, sys, time
print("ready", flush=True)
while True:
    a = [1]; a.append(a)
    time.sleep(0.0001)
"""


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_runs_forever_until_a_signal_to_labkit(tmp_path: Path, sig: signal.Signals) -> None:
    plain, lab, run = _both(tmp_path, FOREVER, sig=sig)
    assert plain.returncode == lab.returncode == -sig
    _verified(run)
    outcome = json.loads((run / "manifest.json").read_text())["outcome"]
    assert outcome["signals_received"] == [sig.name]


def test_sigkill_to_labkit_takes_the_program_with_it(tmp_path: Path) -> None:
    plain, lab, run = _both(tmp_path, FOREVER, sig=signal.SIGKILL)
    assert plain.returncode == lab.returncode == -signal.SIGKILL
    # nothing can publish after SIGKILL: no run under the final name, only the partial one
    assert not run.exists()
    assert [p.name for p in (tmp_path / "labkit").iterdir() if ".partial-" in p.name]


def test_program_ignoring_sigterm_finishes_its_work(tmp_path: Path) -> None:
    code = ("import signal, sys, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
            "print('ready', flush=True)\ntime.sleep(1.0)\nsys.exit(6)\n")
    plain, lab, run = _both(tmp_path, code, sig=signal.SIGTERM)
    assert plain.returncode == lab.returncode == 6
    _verified(run)


TREE_FOREVER = """
import os, time
if os.fork() == 0:
    if os.fork() == 0:
        time.sleep(600)      # a grandchild, orphaned at once: not the program's child
    os._exit(0)
os.wait()
print("ready", flush=True)
while True:
    time.sleep(0.01)
"""


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_to_labkit_leaves_no_orphan_of_the_tree(tmp_path: Path,
                                                         sig: signal.Signals) -> None:
    # plain Python would leave the grandchild running; labkit ends the program's whole tree
    (tmp_path / "prog.py").write_text(TREE_FOREVER)
    mark = uuid.uuid4().hex
    env = {**os.environ, "HOSTILE_MARK": mark}
    lab = _run([PY, "-m", "labkit", "capture", "--gc", "--out", "run", "--", PY, "prog.py"],
               tmp_path, env, sig=sig)
    assert lab.returncode == -sig, lab.stderr
    assert not _marked(mark), "processes left behind"
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["outcome"]["signals_received"] == [sig.name]
    assert manifest["caps"]["leftovers_killed"] >= 1
    _verified(tmp_path / "run")


def _read_until(fd: int, text: bytes, seen: bytearray) -> None:
    import select

    while text not in seen:
        ready, _, _ = select.select([fd], [], [], 60)
        assert ready, f"no {text!r} from the terminal; got {bytes(seen)!r}"
        seen += os.read(fd, 4096)


def test_at_a_terminal_the_program_reads_it_and_ctrl_c_ends_its_tree(tmp_path: Path) -> None:
    # labkit holds a terminal (a pty): it gives it to the program's process group as a
    # shell would, so the program may read it, and Ctrl-C reaches its whole group
    import fcntl
    import pty
    import termios

    pidfile = tmp_path / "grandchild.pid"
    (tmp_path / "prog.py").write_text(
        "import os, time\n"
        "if os.fork() == 0:\n"
        "    if os.fork() == 0:\n"
        f"        open({str(pidfile)!r} + '.tmp', 'w').write(str(os.getpid()))\n"
        f"        os.rename({str(pidfile)!r} + '.tmp', {str(pidfile)!r})\n"
        "        time.sleep(600)\n"
        "    os._exit(0)\n"
        "os.wait()\n"
        f"while not os.path.exists({str(pidfile)!r}):\n"  # the grandchild is up before Ctrl-C
        "    time.sleep(0.01)\n"
        "print('got', input('name? '), flush=True)\n"
        "time.sleep(600)\n")
    master, slave = pty.openpty()

    def controlling_terminal() -> None:
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    p = subprocess.Popen([PY, "-m", "labkit", "capture", "--gc", "--out", "run", "--", PY,
                          "prog.py"], cwd=tmp_path, stdin=slave, stdout=slave, stderr=slave,
                         preexec_fn=controlling_terminal)
    os.close(slave)
    seen = bytearray()
    try:
        _read_until(master, b"name? ", seen)
        os.write(master, b"labkit\n")
        _read_until(master, b"got labkit", seen)
        os.write(master, b"\x03")
        assert p.wait(timeout=60) == -signal.SIGINT, bytes(seen)
    finally:
        if p.poll() is None:
            p.kill()
        os.close(master)
    assert not alive(int(pidfile.read_text()))
    outcome = json.loads((tmp_path / "run" / "manifest.json").read_text())["outcome"]
    assert outcome["signal"] == "SIGINT" and outcome["signals_received"] == []


@contextlib.contextmanager
def _bash_on_a_pty(cwd: Path) -> Iterator[tuple[int, bytearray]]:
    """An interactive bash on a pty (its controlling terminal): yields the pty's master
    and what has been read from it."""
    import fcntl
    import pty
    import termios

    master, slave = pty.openpty()

    def controlling_terminal() -> None:
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    bash = subprocess.Popen(["bash", "--norc", "--noprofile", "-i"], cwd=cwd,
                            stdin=slave, stdout=slave, stderr=slave,
                            env={**os.environ, "PS1": "$ "}, preexec_fn=controlling_terminal)
    os.close(slave)
    try:
        yield master, bytearray()
        os.write(master, b"exit\n")
        bash.wait(timeout=60)
    finally:
        if bash.poll() is None:
            bash.kill()
        os.close(master)


TWO_QUESTIONS = ("print('got', input('first? '), flush=True)\n"
                 "print('got', input('second? '), flush=True)\n")


@pytest.mark.parametrize("background", [False, True])
def test_a_stopped_job_in_a_shell_resumes_with_fg(tmp_path: Path, background: bool) -> None:
    # in the foreground, Ctrl-Z stops the program's group (it holds the terminal); in the
    # background, the program stops reading the terminal. Either way labkit stops alike, so
    # that bash reports the job stopped, and `fg` gives the program the terminal again.
    import shlex

    (tmp_path / "prog.py").write_text(TWO_QUESTIONS)
    py = shlex.quote(PY)
    command = f"{py} -m labkit capture --gc --out run -- {py} prog.py"
    with _bash_on_a_pty(tmp_path) as (master, seen):
        if background:
            os.write(master, f"set -b; {command} &\n".encode())
        else:
            os.write(master, f"{command}\n".encode())
            _read_until(master, b"first? ", seen)
            os.write(master, b"\x1a")
        _read_until(master, b"Stopped", seen)
        os.write(master, b"fg\n")
        os.write(master, b"a\n")
        _read_until(master, b"got a", seen)
        os.write(master, b"b\n")
        _read_until(master, b"got b", seen)
        os.write(master, b"echo rc=$?\n")
        _read_until(master, b"rc=0", seen)
    outcome = json.loads((tmp_path / "run" / "manifest.json").read_text())["outcome"]
    assert outcome["returncode"] == 0 and outcome["reason"] == "exited"
