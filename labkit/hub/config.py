"""The hub's configuration, written into its state folder: ``hub.json`` (every setting,
as data) and the ``jupyterhub_config.py`` that loads it.

The room's password is not in either: JupyterHub gets it through its environment
(:mod:`labkit.hub.auth`). The trainer's API token (a JupyterHub service with admin scopes
on users and servers) is in ``hub.json``, readable by root only, and in ``trainer-token``.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from labkit.hub.caps import Caps
from labkit.hub.learners import NOTEBOOKS, Learner
from labkit.outputs import write_text_atomic

CONFIG_PY = """\
# Written by labkit hub: every setting is in hub.json beside this file.
import json
import pathlib

for _section, _values in json.loads(
        pathlib.Path(__file__).with_name("hub.json").read_text()).items():
    for _key, _value in _values.items():
        c[_section][_key] = _value
"""

TRAINER_SCOPES = ["admin:users", "admin:servers", "tokens", "access:servers", "list:users",
                  "read:users"]
CULLER_SCOPES = ["list:users", "read:users:activity", "read:servers", "delete:servers"]


@dataclass(frozen=True)
class HubSettings:
    """Where the hub listens and how long an idle server lives."""

    ip: str
    port: int
    idle_timeout_s: int
    proxy: Path
    trainer_token: str


def free_port() -> int:
    """A port free on 127.0.0.1 now (for the hub's internal API and the proxy's)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def hub_config(state: Path, settings: HubSettings, learners: list[Learner],
               caps: Caps) -> dict[str, dict[str, object]]:
    """Every JupyterHub setting for this class, by section."""
    bindir = Path(sys.executable).parent
    lab_settings = resources.files("labkit").joinpath("lab_settings")
    python = sys.executable
    return {
        "JupyterHub": {
            "ip": settings.ip, "port": settings.port,
            "hub_ip": "127.0.0.1", "hub_port": free_port(),
            "authenticator_class": "labkit.hub.auth.RoomAuthenticator",
            "spawner_class": "labkit.hub.spawner.LabSpawner",
            "db_url": f"sqlite:///{state / 'jupyterhub.sqlite'}",
            "cookie_secret_file": str(state / "jupyterhub_cookie_secret"),
            "pid_file": str(state / "jupyterhub.pid"),
            "cleanup_servers": True, "cleanup_proxy": True,
            "services": [
                {"name": "labkit-trainer", "api_token": settings.trainer_token},
                {"name": "idle-culler",
                 "command": [python, "-m", "jupyterhub_idle_culler",
                             f"--timeout={settings.idle_timeout_s}",
                             f"--cull-every={max(10, min(300, settings.idle_timeout_s // 4))}"]},
            ],
            "load_roles": [
                {"name": "labkit-trainer", "scopes": TRAINER_SCOPES,
                 "services": ["labkit-trainer"]},
                {"name": "idle-culler", "scopes": CULLER_SCOPES, "services": ["idle-culler"]},
            ],
        },
        "Authenticator": {"allowed_users": [lr.name for lr in learners]},
        "ConfigurableHTTPProxy": {
            "command": [str(settings.proxy)],
            "api_url": f"http://127.0.0.1:{free_port()}",
        },
        "Spawner": {
            "cmd": [str(bindir / "jupyterhub-singleuser")],
            "default_url": "/lab",
            "notebook_dir": f"~/{NOTEBOOKS}",
            "args": [f"--LabApp.app_settings_dir={lab_settings}"],
            "http_timeout": 120, "start_timeout": 180,
        },
        "LabSpawner": {"cgroup_dirs": caps.group_dirs},
    }


def write_config(state: Path, config: dict[str, dict[str, object]], caps: Caps,
                 learners: list[Learner], token: str) -> Path:
    """Write the state folder's files (root-only); returns the config file's path."""
    os.chmod(state, 0o700)
    write_text_atomic(state / "hub.json", json.dumps(config, indent=1))
    write_text_atomic(state / "caps.json", json.dumps(caps.to_json(), indent=1))
    write_text_atomic(state / "learners.json", json.dumps(
        [{"name": lr.name, "uid": lr.uid, "home": str(lr.home)} for lr in learners], indent=1))
    write_text_atomic(state / "trainer-token", token + "\n")
    write_text_atomic(state / "jupyterhub_config.py", CONFIG_PY)
    return state / "jupyterhub_config.py"
