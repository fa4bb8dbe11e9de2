"""``labkit hub``: a real JupyterHub with real Unix learners, cgroup caps, the room's login
and a learner's server running a kernel. One hub (two learners) serves the whole module."""

from __future__ import annotations

import contextlib
import http.cookiejar
import json
import pwd
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent
PROXY = ROOT / ".hub-proxy/node_modules/.bin/configurable-http-proxy"
MEMORY_CAP_MIB = 400


@dataclass
class Hub:
    url: str
    token: str
    password: str
    state: Path
    proc: subprocess.Popen[str]
    out: list[str]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_hub(tmp: Path, learners: int, *extra: str) -> Iterator[Hub]:
    """``labkit hub`` as a trainer starts it; yields once it says ``ready``, stops it
    (SIGTERM, as Ctrl-C) afterwards."""
    assert PROXY.exists(), "no configurable-http-proxy: `make hub` (scripts/install-hub-proxy)"
    port, password = _free_port(), secrets.token_urlsafe(8)
    state = tmp / "state"
    proc = subprocess.Popen(
        [sys.executable, "-m", "labkit", "hub", str(learners), "--port", str(port),
         "--password", password, "--state", str(state), "--proxy", str(PROXY), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp)
    out: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            out.append(line.rstrip("\n"))
            if line.strip() == "ready":
                break
        assert out and out[-1] == "ready", "\n".join(out)
        token = (state / "trainer-token").read_text().strip()
        yield Hub(f"http://127.0.0.1:{port}", token, password, state, proc, out)
    finally:
        stop_hub(proc)


def stop_hub(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise


def login(url: str, name: str, password: str) -> tuple[urllib.request.OpenerDirector, str]:
    """Log in through the hub's form, as a browser does; returns the opener (its
    cookies) and the URL it ended on."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    with opener.open(f"{url}/hub/login", timeout=30) as r:
        page = r.read().decode()
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page).group(1)
    body = urllib.parse.urlencode({"username": name, "password": password,
                                   "_xsrf": xsrf}).encode()
    try:
        with opener.open(f"{url}/hub/login", data=body, timeout=120) as r:
            return opener, r.url
    except urllib.error.HTTPError as exc:
        return opener, f"HTTP {exc.code}"


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    with running_hub(tmp_path_factory.mktemp("hub"), 2, "--memory-cap",
                     str(MEMORY_CAP_MIB), "--cpus", "0.5", "--pids", "512") as h:
        yield h


def _machine_has_v1(controller: str) -> bool:
    return (Path("/sys/fs/cgroup") / controller / "tasks").exists()


def test_hub_creates_learners_with_private_homes_and_notebooks(hub: Hub) -> None:
    learners = json.loads((hub.state / "learners.json").read_text())
    assert [lr["name"] for lr in learners] == ["labkit-01", "labkit-02"]
    for lr in learners:
        entry = pwd.getpwnam(lr["name"])
        home = Path(lr["home"])
        assert home == Path("/home") / lr["name"] and entry.pw_dir == str(home)
        st = home.stat()
        assert st.st_uid == entry.pw_uid and st.st_mode & 0o777 == 0o700
        notebooks = {p.name for p in (home / "labkit-notebooks").iterdir()}
        assert {"10-pool-misuse.py", "jupytext.toml"} <= notebooks
        assert (home / "labkit-notebooks" / "10-pool-misuse.py").stat().st_uid == entry.pw_uid
    assert any(line.startswith("hub: http://127.0.0.1:") for line in hub.out), hub.out


def test_the_idle_culler_runs_as_a_hub_service(hub: Hub) -> None:
    log = hub.state / "jupyterhub.log"
    deadline = time.monotonic() + 60
    while "/hub/api/users" not in "".join(
            ln for ln in log.read_text(errors="replace").splitlines(keepends=True)
            if "(idle-culler@" in ln):
        assert time.monotonic() < deadline, "the idle culler never asked the hub for users"
        time.sleep(1)


def test_hub_says_which_caps_hold(hub: Hub) -> None:
    caps = json.loads((hub.state / "caps.json").read_text())
    said = "\n".join(hub.out)
    for cap in caps["caps"]:
        assert f"{cap['name']} {cap['value']}: " + ("holds" if cap["held"] else "NOT held") \
            in said
        if caps["version"] == "v1" and _machine_has_v1(cap["name"]):
            assert cap["held"], cap  # a v1 controller mounted here: labkit (root) holds it
    for d in caps["group_dirs"]:
        assert Path(d, "labkit-01").is_dir()


def test_room_login_takes_the_shared_password_and_learners_only(hub: Hub) -> None:
    _, where = login(hub.url, "labkit-02", "wrong-" + hub.password)
    assert "/hub/login" in where or where.startswith("HTTP 403"), where
    _, where = login(hub.url, "root", hub.password)
    assert "/hub/login" in where or where.startswith("HTTP 403"), where
    _, where = login(hub.url, "labkit-02", hub.password)
    assert "/user/labkit-02/" in where or "/hub/spawn" in where, where
    from labkit.hub.client import HubClient

    client = HubClient(hub.url, hub.token)
    assert client.user("labkit-02")["last_activity"] is not None  # the hub knows it logged in


def test_a_learners_server_runs_a_kernel_as_the_learner_inside_the_caps(hub: Hub) -> None:
    from labkit.hub.client import HubClient, run_cells

    client = HubClient(hub.url, hub.token)
    client.start_server("labkit-01")
    token = client.user_token("labkit-01")
    hog_mib = MEMORY_CAP_MIB * 2
    cells = ["import getpass, os; print(getpass.getuser(), os.getcwd())",
             "print(open('/proc/self/cgroup').read())",
             "import subprocess, sys\n"
             f"cp = subprocess.run([sys.executable, '-c', 'b = b\"x\" * ({hog_mib} << 20)'])\n"
             "print('hog exit', cp.returncode)",
             "import labkit; print('labkit', labkit.__version__)"]
    results = run_cells(hub.url, "labkit-01", token, cells, timeout_s=120)
    texts = ["".join(o.get("text", "") for o in r.outputs) for r in results]
    assert [r.status for r in results] == ["ok"] * 4, texts
    assert texts[0].split() == ["labkit-01", "/home/labkit-01"]
    caps = json.loads((hub.state / "caps.json").read_text())
    held = {c["name"] for c in caps["caps"] if c["held"]}
    for controller in held:
        assert re.search(rf":{controller}:.*/labkit-hub-[0-9]+-[0-9]+/labkit-01$",
                         texts[1], re.M), texts[1]
    if "memory" in held:  # twice the cap: the kernel's child is killed, the kernel lives
        assert texts[2].strip() == "hog exit -9", texts[2]
    else:
        assert texts[2].strip() == "hog exit 0", texts[2]
    assert texts[3].startswith("labkit ")


def test_a_second_hub_on_the_machine_is_refused_in_one_line(hub: Hub, tmp_path: Path) -> None:
    cp = subprocess.run([sys.executable, "-m", "labkit", "hub", "1", "--port",
                         str(_free_port()), "--proxy", str(PROXY)],
                        capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert cp.returncode == 2 and cp.stdout == "", (cp.returncode, cp.stdout, cp.stderr)
    assert cp.stderr.count("\n") == 1 and "another labkit hub runs" in cp.stderr, cp.stderr


def test_stopping_the_hub_removes_users_groups_and_processes_and_keeps_homes(
        hub: Hub) -> None:
    learners = json.loads((hub.state / "learners.json").read_text())
    caps = json.loads((hub.state / "caps.json").read_text())
    uids = {lr["uid"] for lr in learners}
    children = psutil.Process(hub.proc.pid).children(recursive=True)
    assert children, "the hub runs JupyterHub, its proxy and servers"
    stop_hub(hub.proc)
    assert hub.proc.returncode is not None
    time.sleep(0.5)
    alive = [p for p in children if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not alive, alive
    left = [p.pid for p in psutil.process_iter(["uids"]) if p.info["uids"]
            and p.info["uids"].real in uids]
    assert not left, left
    for lr in learners:
        with pytest.raises(KeyError):
            pwd.getpwnam(lr["name"])
        assert (Path(lr["home"]) / "labkit-notebooks" / "10-pool-misuse.py").is_file()
    for d in caps["group_dirs"]:
        assert not Path(d).exists(), d
