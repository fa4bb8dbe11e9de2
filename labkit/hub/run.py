"""``labkit hub``: start JupyterHub for a room of learners, and leave nothing behind.

:func:`start_hub` creates the learners (:mod:`labkit.hub.learners`) and their cgroups
(:mod:`labkit.hub.caps`), writes the hub's state folder (:mod:`labkit.hub.config`), says
where to log in and which caps hold, then runs JupyterHub (with its proxy and the idle
culler) until it ends or labkit is stopped (Ctrl-C, SIGTERM, SIGHUP). Then it stops the hub,
kills whatever the learners still run, removes their cgroups and deletes their users; their
homes stay. When labkit itself is SIGKILLed, JupyterHub still gets SIGTERM
(``PR_SET_PDEATHSIG``) and stops its servers; the learners' users are then reused and the
cgroups removed by the next ``labkit hub``.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import psutil

from labkit.errors import InputError
from labkit.hub import caps as cgroups
from labkit.hub.config import HubSettings, hub_config, write_config
from labkit.hub.learners import Learner, create_learners, remove_users

PROXY_ENV = "LABKIT_HUB_PROXY"
PROXY_LOCAL = Path(".hub-proxy/node_modules/.bin/configurable-http-proxy")
PASSWORD_ENV = "LABKIT_HUB_PASSWORD"
_PR_SET_PDEATHSIG = 1


def find_proxy(given: Path | None) -> Path:
    """configurable-http-proxy: ``given``, else ``$LABKIT_HUB_PROXY``, else the project's
    ``.hub-proxy/`` (``scripts/install-hub-proxy``), else one on PATH."""
    candidates = [given] if given else [
        Path(p) for p in (os.environ.get(PROXY_ENV), str(PROXY_LOCAL),
                          shutil.which("configurable-http-proxy")) if p]
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return path.resolve()
    raise InputError("JupyterHub's proxy (configurable-http-proxy) is not installed; run "
                     "scripts/install-hub-proxy, or give --proxy PATH")


def _check_jupyterhub() -> None:
    for module in ("jupyterhub", "jupyterhub_idle_culler"):
        if importlib.util.find_spec(module) is None:
            raise InputError(f"{module} is not installed; pip install 'labkit[hub]'")


def check_reachable(*paths: Path) -> None:
    """Refuse, in one line, a Python or labkit that the learners (other users) cannot
    reach: every folder above it must let others through (``o+x``)."""
    for path in paths:
        real = path.resolve()
        for folder in reversed(real.parents):
            if not os.stat(folder).st_mode & 0o001:
                raise InputError(
                    f"the learners cannot reach {real}: {folder} is private to its owner; "
                    f"install labkit outside it, or let others through: chmod o+x {folder}")


LOCK = Path("/run/lock/labkit-hub.lock")


def _lock_machine() -> int:
    """Hold the machine's hub lock (one hub per machine: learners are machine-wide users);
    returns its descriptor, released when labkit exits."""
    import fcntl

    LOCK.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        owner = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
        os.close(fd)
        raise InputError(f"another labkit hub runs on this machine (pid {owner}); its "
                         "learners are this machine's users: stop it first") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def _die_with_parent() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def _wait_ready(url: str, proc: subprocess.Popen[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise InputError(f"JupyterHub exited ({proc.returncode}) while starting; see "
                             "jupyterhub.log in the state folder (--state)")
        with contextlib.suppress(OSError), urllib.request.urlopen(f"{url}/hub/api/",
                                                                  timeout=2) as r:
            if r.status == 200:
                return
        time.sleep(0.5)
    raise InputError(f"JupyterHub did not answer at {url} within {timeout_s:.0f} s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM JupyterHub (it stops the servers, the proxy and the culler), then SIGKILL
    whatever it started that is still alive, sessions of their own included."""
    try:
        children = psutil.Process(proc.pid).children(recursive=True)
    except psutil.Error:
        children = []
    if proc.poll() is None:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=30)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    for child in children:
        with contextlib.suppress(psutil.Error):
            child.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)


def start_hub(count: int, *, ip: str = "127.0.0.1", port: int = 8000,
              password: str | None = None, request: cgroups.CapRequest | None,
              idle_timeout_s: int = 3600, state: Path | None = None,
              proxy: Path | None = None,
              say: Callable[[str], None] = print) -> int:
    """Run a hub for ``count`` learners until it ends or labkit is stopped; returns
    JupyterHub's exit code. Everything it created except the homes is removed on return."""
    _check_jupyterhub()
    chp = find_proxy(proxy)
    import labkit

    check_reachable(Path(sys.executable), Path(labkit.__file__))
    from labkit.lab import check_port

    if ip == "127.0.0.1":
        check_port(port)
    password = password or os.environ.get(PASSWORD_ENV) or secrets.token_urlsafe(9)
    if state is not None:
        from labkit.outputs import check_dir_output

        state = check_dir_output(state, flag="--state")
    lock = _lock_machine()
    try:
        return _run(count, ip, port, password, request, idle_timeout_s, state, chp, say)
    finally:
        os.close(lock)


def _run(count: int, ip: str, port: int, password: str,
         request: cgroups.CapRequest | None,
         idle_timeout_s: int, state: Path | None, chp: Path,
         say: Callable[[str], None]) -> int:
    own_state = state is None
    state = Path(tempfile.mkdtemp(prefix="labkit-hub-")) if state is None else state
    state.mkdir(parents=True, exist_ok=True)
    cgroups.remove_stale()
    learners: list[Learner] = []
    caps = cgroups.Caps("none")
    proc = None
    try:
        learners = create_learners(count)
        caps = (cgroups.setup([lr.name for lr in learners], request) if request is not None
                else cgroups.no_caps())
        token = secrets.token_hex(32)
        settings = HubSettings(ip, port, idle_timeout_s, chp, token)
        config = write_config(state, hub_config(state, settings, learners, caps), caps,
                              learners, token)
        env = {**os.environ, PASSWORD_ENV: password}
        with open(state / "jupyterhub.log", "ab") as log:
            proc = subprocess.Popen([sys.executable, "-m", "jupyterhub", "-f", str(config)],
                                    cwd=state, env=env, stdout=log, stderr=log,
                                    stdin=subprocess.DEVNULL, start_new_session=True,
                                    preexec_fn=_die_with_parent)
        url = f"http://{'127.0.0.1' if ip in ('0.0.0.0', '') else ip}:{port}"
        _wait_ready(url, proc, 120)
        say(f"hub: {url}/ for {count} learners: {learners[0].name} .. {learners[-1].name}, "
            f"password {password}")
        say(f"homes: {learners[0].home.parent}/labkit-NN (kept after the class)")
        say(f"caps per learner (cgroup {caps.version}):")
        for line in caps.lines():
            say(f"  {line}")
        say(f"state: {state} (trainer API token in trainer-token); idle servers stop after "
            f"{idle_timeout_s} s")
        say("ready")
        return proc.wait()
    finally:
        if proc is not None:
            _stop(proc)
        cgroups.remove(caps)
        remove_users(learners)
        if own_state:
            shutil.rmtree(state, ignore_errors=True)
